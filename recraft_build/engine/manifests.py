"""What a game or bundler imports: ``manifest.json``, a typed TypeScript module, and the
content-hashed file names they map.

* **File names.** With ``manifest: {hashed_names: true}`` every output file is written
  as ``NAME.HASH.EXT`` (``hero.3f2a9c1e.webp``, the first 8 hex digits of its sha256)
  instead of ``NAME.EXT``; favicon sets keep their names (browsers and the web app
  manifest ask for them by name). The lock always records the logical name, so turning
  the option on or off never changes the lock; :func:`output_path` is the one rule
  from a logical name to the file written, used by the executor, the planner's
  up-to-date check, ``clean`` and the manifest.
* **manifest.json** (written by :func:`~recraft_build.engine.outputs.write_manifest`):
  per asset its matrix variables, tags and pick, and per file its ``path`` (the file
  written), ``logical`` name, format, size, sha256, bytes, scale and the atlas frame it
  lives in; ``atlases`` lists each atlas's files and frames; ``files`` maps every
  logical name to the file written.
* **The TypeScript module** (``manifest: {typescript: src/assets.ts}``): the same
  data with literal key types (``interface Assets { readonly "enemy-goblin": Asset }``),
  so ``assets["enemy-goblin"].src`` type-checks, and a removed asset is a compile error
  (``asset("name")`` refuses unknown names under any compiler settings).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from recraft_build.domain import Asset, ManifestSpec, OutputSpec, Spec
from recraft_build.engine.lock import Lock, atomic_write_bytes
from recraft_build.engine.lockdata import LockedFile
from recraft_build.engine.safefs import inside
from recraft_build.errors import OutputError

__all__ = [
    "FileView",
    "atlas_manifest",
    "file_views",
    "hashed_path",
    "manifest_assets",
    "output_path",
    "output_scale",
    "typescript_module",
    "write_typescript",
]

_HASH_CHARS = 8
_SCALED = re.compile(r"@(\d+(?:\.\d+)?)x\.[^./]+$")


def hashed_path(rel: str, digest: str) -> str:
    """``icons/sword.png`` + digest -> ``icons/sword.3f2a9c1e.png`` (8 hex digits)."""
    folder, _, name = rel.rpartition("/")
    stem, dot, ext = name.rpartition(".")
    tag = digest[:_HASH_CHARS]
    new = f"{stem}.{tag}.{ext}" if dot and stem else f"{name}.{tag}"
    return f"{folder}/{new}" if folder else new


def output_path(manifest: ManifestSpec, output: OutputSpec, rel: str, digest: str) -> str:
    """The file written for file ``rel`` (logical, output-relative) of ``output`` with
    content ``digest``: hashed when the spec asks for it, except in a favicon set."""
    if manifest.hashed_names and not output.favicon:
        return hashed_path(rel, digest)
    return rel


def output_scale(path: str) -> float:
    """The scale an output path is for: ``icons/x@2x.png`` -> 2, ``icons/x.png`` -> 1
    (an int when whole, so JSON shows ``2``, not ``2.0``)."""
    m = _SCALED.search(path)
    scale = float(m.group(1)) if m else 1.0
    return int(scale) if scale.is_integer() else scale


@dataclass(frozen=True)
class FileView:
    """One file of the output tree the spec names: its asset and output, the lock's
    file (``file.path`` is the logical name) and ``path``, the file written."""

    asset: Asset
    output: OutputSpec
    file: LockedFile
    path: str
    scale: float


def file_views(spec: Spec, lock: Lock) -> Iterator[FileView]:
    """Every file of every output the spec names, as the lock records it (assets and
    outputs the lock does not know yet are left out), in spec order."""
    for a in spec.assets:
        entry = lock.asset(a.name)
        if entry is None:
            continue
        for o in a.outputs:
            lo = entry.output(o.path)
            if lo is None:
                continue
            for f in lo.files:
                yield FileView(a, o, f, output_path(spec.manifest, o, f.path, f.sha256), output_scale(o.path))


def manifest_assets(spec: Spec, lock: Lock, frames: Mapping[tuple[str, str], Mapping[str, Any]]
                    ) -> dict[str, dict[str, Any]]:
    """``manifest.json``'s ``assets``: name -> matrix, tags, pick and outputs (files).

    ``frames`` maps (asset name, logical file path) -> the atlas frame that file is in.
    """
    assets: dict[str, dict[str, Any]] = {}
    for view in file_views(spec, lock):
        a, f = view.asset, view.file
        item = assets.get(a.name)
        if item is None:
            entry = lock.asset(a.name)
            item = assets[a.name] = {
                "matrix": dict(a.matrix),
                "tags": list(a.tags),
                "pick": entry.generation.pick if entry is not None else None,
                "outputs": [],
            }
        item["outputs"].append({
            "path": view.path,
            "logical": f.path,
            "format": f.format,
            "width": f.width,
            "height": f.height,
            "sha256": f.sha256,
            "bytes": f.bytes,
            "scale": view.scale,
            "atlas": frames.get((a.name, f.path)),
        })
    return assets


# -- TypeScript ---------------------------------------------------------------------------------

_TS_PRELUDE = """\
// Generated by recraft-build from {spec}: do not edit (run `recraft-build build`).
// Paths are relative to the output folder{prefix}.

/** One file of an asset. */
export interface AssetFile {{
  /** The file to load (content-hashed when the spec asks for it). */
  readonly src: string;
  readonly format: string;
  readonly width: number | null;
  readonly height: number | null;
  /** 1, or the output's scale (2 for `name@2x.png`). */
  readonly scale: number;
  readonly sha256: string;
}}

/** Where an asset's picture lies in a sprite atlas (at the atlas's first scale). */
export interface AtlasFrame {{
  readonly atlas: string;
  /** The frame's name in the atlas JSON (the asset's name). */
  readonly frame: string;
  /** The atlas JSON to load (Phaser `load.atlas`, PixiJS `Assets.load`) and its page. */
  readonly json: string;
  readonly image: string;
  readonly x: number;
  readonly y: number;
  readonly w: number;
  readonly h: number;
}}

export interface Asset {{
  readonly name: string;
  /** The asset's first file (at scale 1 when it has one). */
  readonly src: string;
  readonly width: number | null;
  readonly height: number | null;
  readonly tags: readonly string[];
  /** The asset's matrix variables (empty outside a matrix). */
  readonly matrix: {{ readonly [variable: string]: unknown }};
  /** Which candidate the lock pins. */
  readonly pick: number;
  /** Every file, by its logical output path. */
  readonly files: {{ readonly [path: string]: AssetFile }};
  readonly frame: AtlasFrame | null;
}}

/** A sprite atlas: its JSON files (one per page; the first links the others) and pages, per scale. */
export interface Atlas {{
  readonly json: string;
  readonly image: string;
  readonly css: string | null;
  readonly scales: {{ readonly [scale: string]: {{ readonly json: readonly string[]; readonly images: readonly string[] }} }};
}}
"""


def _lit(value: Any, indent: int | None = None) -> str:
    """``value`` as a TypeScript literal (JSON with non-ASCII escaped: valid TS anywhere),
    laid out over lines (indented by two more spaces) when ``indent`` is given."""
    text = json.dumps(value, ensure_ascii=True, sort_keys=False, indent=indent)
    return text.replace("\n", "\n  ") if indent else text


def typescript_module(spec: Spec, assets: Mapping[str, Mapping[str, Any]],
                      atlases: Mapping[str, Mapping[str, Any]]) -> str:
    """The module's text from ``manifest.json``'s ``assets`` and ``atlases``."""
    prefix = spec.manifest.public_path
    src = lambda p: prefix + p  # noqa: E731
    out = [_TS_PRELUDE.format(spec=_comment_safe(spec.path.name),
                              prefix=f", after the public path {_comment_safe(prefix)}" if prefix else "")]
    out.append("export interface Assets {")
    out += [f"  readonly {_lit(name)}: Asset;" for name in assets]
    out.append("}\n")
    out.append("export type AssetName = keyof Assets;\n")
    out.append("export const assets: Assets = {")
    for name, item in assets.items():
        files = item["outputs"]
        first = next((f for f in files if f["scale"] == 1), files[0])
        frame = next((f["atlas"] for f in files if f.get("atlas")), None)
        body = {
            "name": name, "src": src(first["path"]), "width": first["width"], "height": first["height"],
            "tags": item["tags"], "matrix": item["matrix"], "pick": item["pick"],
            "files": {f["logical"]: {"src": src(f["path"]), "format": f["format"], "width": f["width"],
                                     "height": f["height"], "scale": f["scale"], "sha256": f["sha256"]}
                      for f in files},
            "frame": None if frame is None else {**frame, "json": src(frame["json"]), "image": src(frame["image"])},
        }
        out.append(f"  {_lit(name)}: {_lit(body, 2)},")
    out.append("};\n")
    out.append("/** The asset called `name`: an unknown name is a compile error under any settings. */")
    out.append("export function asset<K extends AssetName>(name: K): Assets[K] {\n  return assets[name];\n}\n")
    out.append("export interface Atlases {")
    out += [f"  readonly {_lit(path)}: Atlas;" for path in atlases]
    out.append("}\n")
    out.append("export const atlases: Atlases = {")
    for path, item in atlases.items():
        scales = {k: {"json": [src(p) for p in v["json"]], "images": [src(p) for p in v["images"]]}
                  for k, v in item["scales"].items()}
        first = next(iter(scales.values()))
        body = {"json": first["json"][0], "image": first["images"][0],
                "css": src(item["css"]) if item.get("css") else None, "scales": scales}
        out.append(f"  {_lit(path)}: {_lit(body, 2)},")
    out.append("};\n")
    return "\n".join(out)


def _comment_safe(text: str) -> str:
    """Text for a ``//`` comment: one line, no control characters."""
    return "".join(ch if ch.isprintable() else "?" for ch in text)


def write_typescript(spec: Spec, text: str) -> bool:
    """Write the TypeScript module (the spec's ``manifest.typescript``) if its text
    changed; True if written. The path is checked again now (the spec's folder may have
    changed since it was loaded): it must resolve inside the spec's folder, and the
    file itself may not be a symlink. Raises OutputError otherwise."""
    rel = spec.manifest.typescript
    if not rel:
        return False
    base = spec.path.parent
    target = base / rel
    if not inside(base, target) or not inside(base, target.parent):
        raise OutputError(f"manifest.typescript {rel!r} leaves the spec's folder {base} (a symlink on the "
                          "way points elsewhere); replace the symlink with a real folder")
    if target.is_symlink():
        raise OutputError(f"manifest.typescript {rel!r} is a symlink; recraft-build will not write through it")
    data = text.encode("utf-8")
    try:
        if target.read_bytes() == data:
            return False
    except OSError:
        pass
    try:
        atomic_write_bytes(Path(target), data, durable=False)
    except OSError as exc:
        raise OutputError(f"cannot write the TypeScript module {target}: {exc.strerror or exc}") from exc
    return True


def atlas_manifest(results: Sequence[Any]) -> tuple[dict[str, Any], dict[tuple[str, str], dict[str, Any]]]:
    """``manifest.json``'s ``atlases`` and the frame of each (asset, logical file), from
    the atlases' results (:class:`~recraft_build.engine.atlas.AtlasResult` with frames)."""
    atlases: dict[str, Any] = {}
    frames: dict[tuple[str, str], dict[str, Any]] = {}
    for res in results:
        spec = res.spec
        scales: dict[str, dict[str, list[str]]] = {}
        for f in res.files:
            if f.scale is None:
                continue
            s = scales.setdefault(f"{f.scale:g}", {"json": [], "images": []})
            s["json" if f.format == "json" else "images"].append(f.path)
        css = next((f.path for f in res.files if f.format == "css"), None)
        atlases[spec.path] = {"key": res.key, "files": [f.to_json() for f in res.files], "scales": scales,
                              "css": css}
        by_name = {fr.name: fr for fr in spec.frames}
        for name, places in res.frames.items():
            frame = by_name.get(name)
            if frame is None:
                continue
            for scale, place in places.items():
                logical = frame.files.get(scale)
                if logical is not None:
                    frames[(name, logical)] = {"atlas": spec.path, "frame": name, "json": place.json,
                                               "image": place.image, "x": place.x, "y": place.y,
                                               "w": place.w, "h": place.h}
    return atlases, frames

