"""The spec's publishing sections: ``atlases:`` and ``manifest:``, checked and resolved.

Both are read after the assets are expanded, since an atlas names its frames by asset
name or glob (``from: "enemy-*"``). What is resolved here, once, with every problem
placed at its line:

* each atlas's frames: for each matching asset, its raster output file at each scale
  (a path ending ``@2x.png`` is the ``2`` scale; at one scale the first ``.png``
  output wins, else the first raster one), and the scales the atlas writes;
* the files an atlas writes may not be another output's or another atlas's, nor
  recraft-build's own (``manifest.json``);
* the TypeScript module's path: relative, inside the spec's folder through symlinks
  (a spec from a pull request cannot write elsewhere), ending in ``.ts``.
"""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path as FsPath
from typing import Any, Iterable, Mapping, Sequence

from recraft_build.domain import Asset, AtlasFrame, AtlasSpec, ManifestSpec
from recraft_build.engine.manifests import output_scale
from recraft_build.engine.outputs import reserved_names
from recraft_build.engine.safefs import inside
from recraft_build.spec.outputs import output_path_problem, relative_path_problem, same_file_key
from recraft_build.spec.problems import ProblemLog

__all__ = ["RASTER_FORMATS", "load_atlases", "load_manifest"]

#: Output formats an atlas can take a frame from.
RASTER_FORMATS = frozenset({"png", "webp", "jpg"})
_DEFAULTS = {"max_size": 2048, "padding": 2, "extrude": 0, "trim": False,
             "power_of_two": False, "format": "hash", "css": False}


def _frame_files(asset: Asset) -> dict[float, str]:
    """scale -> the asset's raster output at that scale (the first .png, else the first)."""
    chosen: dict[float, tuple[bool, str]] = {}
    for out in asset.outputs:
        if out.favicon or out.format not in RASTER_FORMATS:
            continue
        scale = output_scale(out.path)
        seen = chosen.get(scale)
        if seen is None or (not seen[0] and out.format == "png"):
            chosen[scale] = (out.format == "png", out.path)
    return {scale: path for scale, (_, path) in chosen.items()}


def load_atlases(log: ProblemLog, section: Any, assets: Sequence[Asset], *,
                 touched: Any) -> tuple[AtlasSpec, ...]:
    """The ``atlases:`` entries, resolved against the expanded ``assets``.

    ``touched(path)`` says whether the schema reported a problem at or inside ``path``
    (such entries are skipped: the schema already said what is wrong).
    """
    if not isinstance(section, list):
        return ()
    names = [a.name for a in assets]
    by_name = {a.name: a for a in assets}
    output_keys = {same_file_key(o.path): (a.name, o.path) for a in assets for o in a.outputs}
    atlases: list[AtlasSpec] = []
    taken: dict[str, int] = {}
    for i, raw in enumerate(section):
        base = ("atlases", i)
        if not isinstance(raw, dict) or touched(base):
            continue
        path = raw["path"].strip()
        problem = output_path_problem(path + ".png")
        if problem is not None:
            log.add(base + ("path",), f"atlas path {path!r} {problem[0]}", problem[1])
            continue
        if path.rsplit("/", 1)[-1].lower().endswith((".png", ".json", ".css")):
            log.add(base + ("path",), f"atlas path {path!r} has an extension",
                    "write the path without one: sprites/enemies writes sprites/enemies.png "
                    "and sprites/enemies.json")
            continue
        key = same_file_key(path)
        if key in taken:
            log.add(base + ("path",), f"atlas path {path!r} is also atlases[{taken[key]}]'s",
                    "give each atlas its own path")
            continue
        taken[key] = i
        if f"{path}.json" in reserved_names() or f"{path}.css" in reserved_names():
            log.add(base + ("path",), f"atlas path {path!r} would write recraft-build's own file",
                    "choose another name")
            continue
        clash = _clashing_output(path, output_keys)
        if clash is not None:
            log.add(base + ("path",), f"atlas {path!r} would write {clash[1]}, an output of "
                    f"asset '{clash[0]}'", "give the atlas another path")
            continue
        patterns = [raw["from"]] if isinstance(raw["from"], str) else list(raw["from"])
        frames = _frames(log, base, patterns, not isinstance(raw["from"], str), names, by_name)
        if frames is None:
            continue
        scales = _scales(log, base, raw.get("scales"), frames)
        if scales is None:
            continue
        options = {k: raw.get(k, default) for k, default in _DEFAULTS.items()}
        if options["power_of_two"] and options["max_size"] & (options["max_size"] - 1):
            log.add(base + ("max_size",), f"max_size {options['max_size']} is not a power of two, "
                    "but power_of_two is set", "use 1024, 2048, 4096...")
            continue
        atlases.append(AtlasSpec(path=path, frames=frames, scales=scales,
                                 where=log.where(base), **options))
    return tuple(atlases)


def _clashing_output(path: str, outputs: Mapping[str, tuple[str, str]]) -> tuple[str, str] | None:
    """An output (asset, path) that is one of the atlas's files, page or scale, if any."""
    pattern = re.compile(re.escape(same_file_key(path)) + r"(-\d+)?(@\d+(\.\d+)?x)?\.(png|json|css)")
    for key, owner in outputs.items():
        if pattern.fullmatch(key):
            return owner
    return None


def _frames(log: ProblemLog, base: tuple[Any, ...], patterns: Iterable[str], listed: bool,
            names: Sequence[str], by_name: Mapping[str, Asset]) -> tuple[AtlasFrame, ...] | None:
    """The frames ``patterns`` name, in spec order, each with its file per scale."""
    chosen: list[str] = []
    seen: set[str] = set()
    for j, pattern in enumerate(patterns):
        hits = [n for n in names if n == pattern or fnmatch.fnmatchcase(n, pattern)]
        if not hits:
            log.add(base + ("from",) + ((j,) if listed else ()), f"{pattern!r} matches no asset",
                    "name assets by their name, or a glob like enemy-*")
            return None
        for n in hits:
            if n not in seen:
                seen.add(n)
                chosen.append(n)
    frames = []
    for name in chosen:
        files = _frame_files(by_name[name])
        if not files:
            log.add(base + ("from",), f"asset '{name}' has no raster output (png, webp or jpg) "
                    "to pack", "add a .png output to it, or leave it out of the atlas")
            return None
        frames.append(AtlasFrame(name, files))
    return tuple(frames)


def _scales(log: ProblemLog, base: tuple[Any, ...], asked: Any,
            frames: Sequence[AtlasFrame]) -> tuple[float, ...] | None:
    """The scales written: those asked for (each frame must have it), else those all share."""
    if asked:
        for k, scale in enumerate(asked):
            missing = [f.name for f in frames if float(scale) not in f.files]
            if missing:
                log.add(base + ("scales", k), f"asset '{missing[0]}'"
                        + (f" and {len(missing) - 1} more" if len(missing) > 1 else "")
                        + f" has no output at scale {scale:g}",
                        "add the scale to their outputs (outputs[].scales), or leave it out here")
                return None
        return tuple(float(s) for s in asked)
    common = set(frames[0].files)
    for f in frames[1:]:
        common &= set(f.files)
    if not common:
        log.add(base + ("from",), "the frames share no scale (each has raster outputs at "
                "different scales)", "give them outputs at the same scales, or set scales:")
        return None
    return tuple(sorted(common))


def load_manifest(log: ProblemLog, section: Any, base_dir: FsPath, *, touched: Any) -> ManifestSpec:
    """The ``manifest:`` section (defaults when absent); the TypeScript path is checked
    to be relative and to stay inside ``base_dir`` through symlinks."""
    if not isinstance(section, dict) or touched(("manifest",)):
        return ManifestSpec()
    ts = section.get("typescript")
    if ts is not None:
        ts = ts.strip()
        problem = relative_path_problem(ts)
        where = ("manifest", "typescript")
        if problem is not None:
            log.add(where, f"typescript path {ts!r} {problem[0]}",
                    "write a path relative to the spec's folder, e.g. src/assets.ts")
            ts = None
        elif not ts.endswith((".ts", ".mts", ".cts")) or ts.endswith(".d.ts"):
            log.add(where, f"typescript path {ts!r} does not end in .ts",
                    "write a module path like src/assets.ts")
            ts = None
        elif not inside(base_dir, base_dir / ts):
            log.add(where, f"typescript path {ts!r} leaves the spec's folder (a symlink on the way "
                    "points elsewhere)", "keep the module inside the spec's folder")
            ts = None
    return ManifestSpec(hashed_names=bool(section.get("hashed_names", False)), typescript=ts,
                        public_path=section.get("public_path", ""), where=log.where(("manifest",)))
