"""The build's last phase: atlases, ``manifest.json`` and the TypeScript module.

Runs after the executor (``Session.build``), from the lock: what the lock pins is what
the atlases pack and the manifest lists. It is cheap when nothing changed: each atlas
is a key computed from the lock, one record read and a stat of its files, and the
manifest and module are rewritten only when an output or atlas changed, the manifest
or module is missing, or what they show that no key holds (tags, matrix values, the
``manifest:`` options, an atlas's files) changed since they were written (a
fingerprint kept in the output folder's state).

``clean`` asks :func:`named_files` which files the spec names: every output file (by
the name written, hashed or not) and every atlas file. Atlas files come from the
manifest's ``atlases`` entry when its key is the atlas's key now (computed from the
lock); otherwise (no manifest, or an atlas not rebuilt since its frames changed) every
file that could be one of the atlas's pages, JSON or CSS is kept, so ``clean`` never
removes a current atlas file.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from recraft_build.domain import AtlasSpec, Spec
from recraft_build.engine import keys
from recraft_build.engine.atlas import AtlasResult, Atlases, atlas_key, frame_digests
from recraft_build.engine.lock import Lock
from recraft_build.engine.manifests import (
    atlas_manifest,
    file_views,
    manifest_assets,
    typescript_module,
    write_typescript,
)
from recraft_build.engine.outputs import MANIFEST_NAME, OutputState, safe_output_path, write_manifest
from recraft_build.errors import OutputError

__all__ = ["Publisher", "named_files", "previous_atlases", "rewrite_manifest"]

_FINGERPRINT = "manifest"


def _read_output(root: Path) -> Callable[[str], bytes | None]:
    """Bytes of an output file (None when it cannot be read). Not through a symlink
    below ``root``; callers check the bytes against the digest they expect anyway."""

    def read(rel: str) -> bytes | None:
        try:
            return safe_output_path(root, rel).read_bytes()
        except (OSError, OutputError):
            return None

    return read


def previous_atlases(out: Path) -> dict[str, Any]:
    """The ``atlases`` of the manifest in ``out`` as written last (untrusted: only names
    are taken from it, and only when its key matches the atlas's key now)."""
    try:
        data = json.loads((Path(out) / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    atlases = data.get("atlases") if isinstance(data, dict) else None
    return atlases if isinstance(atlases, dict) else {}


def _current_key(spec: Spec, atlas: AtlasSpec, lock: Lock) -> str | None:
    digests, missing = frame_digests(atlas, lock)
    return None if missing else atlas_key(atlas, digests, spec.manifest.hashed_names)


def _atlas_pattern(atlas: AtlasSpec) -> re.Pattern[str]:
    """Every file name this atlas may write: pages, JSON, CSS, at any scale, hashed or not."""
    return re.compile(re.escape(atlas.path) + r"(-\d+)?(@\d+(\.\d+)?x)?(\.[0-9a-f]{8})?\.(png|json|css)")


def named_files(spec: Spec, lock: Lock, out: Path) -> tuple[set[str], Callable[[str], bool]]:
    """(the output files the spec names, a test for atlas files it may name); see the
    module docstring."""
    named = {v.path for v in file_views(spec, lock)}
    for a in spec.assets:
        # An output's own path (a favicon folder, or a file not in the lock yet); with
        # hashed names its file is never written under it, so an old copy is clean's.
        named |= {o.path for o in a.outputs if o.favicon or not spec.manifest.hashed_names}
    previous = previous_atlases(out)
    unsure: list[re.Pattern[str]] = []
    for atlas in spec.atlases:
        entry = previous.get(atlas.path)
        key = _current_key(spec, atlas, lock)
        if isinstance(entry, dict) and key is not None and entry.get("key") == key \
                and isinstance(entry.get("files"), list):
            named |= {f["path"] for f in entry["files"] if isinstance(f, dict) and isinstance(f.get("path"), str)}
        else:
            unsure.append(_atlas_pattern(atlas))
    return named, lambda rel: any(p.fullmatch(rel) for p in unsure)


def rewrite_manifest(spec: Spec, lock: Lock, out: Path) -> bool:
    """Rewrite ``manifest.json`` from the lock after ``clean`` (never create it): the
    atlases still in the spec keep what the last manifest said of them."""
    out = Path(out)
    try:
        data = json.loads((out / MANIFEST_NAME).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return False
    except (OSError, ValueError):
        data = {}
    previous = data.get("atlases") if isinstance(data, dict) and isinstance(data.get("atlases"), dict) else {}
    paths = {a.path for a in spec.atlases}
    atlases = {p: e for p, e in previous.items() if p in paths and isinstance(e, dict)}
    frames: dict[tuple[str, str], Any] = {}
    old_assets = data.get("assets") if isinstance(data, dict) and isinstance(data.get("assets"), dict) else {}
    for name, item in old_assets.items():
        for f in (item.get("outputs") or []) if isinstance(item, dict) else []:
            at = f.get("atlas") if isinstance(f, dict) else None
            if isinstance(at, dict) and at.get("atlas") in atlases and isinstance(f.get("logical"), str):
                frames[(name, f["logical"])] = at
    assets = manifest_assets(spec, lock, frames)
    return write_manifest(out, assets, atlases=atlases, files=_files_map(assets, atlases))


def _files_map(assets: Mapping[str, Any], atlases: Mapping[str, Any]) -> dict[str, str]:
    """``manifest.json``'s ``files``: every logical name -> the file written."""
    files = {f["logical"]: f["path"] for item in assets.values() for f in item["outputs"]}
    for entry in atlases.values():
        for f in entry.get("files", []) if isinstance(entry, dict) else []:
            if isinstance(f, dict) and isinstance(f.get("logical"), str) and isinstance(f.get("path"), str):
                files[f["logical"]] = f["path"]
    return files


class Publisher:
    """Atlases, manifest and module for one build of one spec into one output folder."""

    def __init__(self, spec: Spec, lock: Lock, *, store: Any, out: Path, state: OutputState,
                 warn: Callable[[str], None], notice: Callable[[str], None]):
        self.spec = spec
        self.lock = lock
        self.out = Path(out)
        self.state = state
        self.notice = notice
        self.atlases = Atlases(store=store, out=self.out, state=state, lock=lock,
                               hashed=spec.manifest.hashed_names, read_output=_read_output(self.out), warn=warn)

    def check(self, stale: frozenset[str] = frozenset()) -> list[AtlasResult]:
        """Each atlas's state, without writing (``status`` and ``plan``); ``stale`` names
        the assets the build will remake."""
        return [self.atlases.check(a, stale) for a in self.spec.atlases]

    def run(self, *, build_atlases: bool, changed: bool) -> list[str]:
        """Build the atlases (unless ``build_atlases`` is False: an interrupted build), then
        rewrite ``manifest.json`` and the module if needed. Returns the atlases' errors
        (the caller raises them once everything else is saved)."""
        errors: list[str] = []
        results: list[AtlasResult] = []
        previous: dict[str, Any] | None = None
        for atlas in self.spec.atlases if build_atlases else ():
            try:
                res = self.atlases.build(atlas)
            except OutputError as exc:
                errors.append(str(exc))
                res = AtlasResult(atlas, "failed", reason=str(exc))
            results.append(res)
            if res.status == "written":
                pages = ", ".join(f"{sum(1 for f in res.files if f.format == 'png' and f.scale == s)} at {s:g}x"
                                  for s in atlas.scales)
                how = (f", {res.efficiency:.0%} of the page area used" if res.efficiency is not None
                       else ", written back from the cache")
                self.notice(f"atlas {atlas.path}: {len(atlas.frames)} frame(s), page(s): {pages}{how}")
            elif res.status == "waiting":
                self.notice(f"atlas {atlas.path} not written: {res.reason}")
        fingerprint = self._fingerprint(results)
        must = (changed or any(r.status == "written" for r in results)
                or self.state.get_meta(_FINGERPRINT) != fingerprint
                or not (self.out / MANIFEST_NAME).exists()
                or bool(self.spec.manifest.typescript and not (self.spec.path.parent / self.spec.manifest.typescript).exists()))
        if must:
            previous = previous_atlases(self.out)
            kept = [r for r in results if r.status in ("written", "up-to-date")]
            for r in kept:
                self.atlases.frames_of(r)
            atlases, frames = atlas_manifest(kept)
            for atlas in self.spec.atlases:
                # An atlas not built this time keeps what the last manifest said of it.
                if atlas.path not in atlases and isinstance(previous.get(atlas.path), dict):
                    atlases[atlas.path] = previous[atlas.path]
            assets = manifest_assets(self.spec, self.lock, frames)
            if assets or atlases or (self.out / MANIFEST_NAME).exists():
                write_manifest(self.out, assets, atlases=atlases, files=_files_map(assets, atlases))
            if self.spec.manifest.typescript:
                try:
                    write_typescript(self.spec, typescript_module(self.spec, assets, atlases))
                except OutputError as exc:
                    errors.append(str(exc))
            self.state.set_meta(_FINGERPRINT, fingerprint)
            self.state.save()
        return errors

    def _fingerprint(self, results: Sequence[AtlasResult]) -> str:
        """What the manifest shows that no output key holds: tags, matrix values, the
        ``manifest:`` options, the TypeScript module's place and each atlas's key."""
        m = self.spec.manifest
        return keys.digest_bytes(keys.canonical_json({
            "options": [m.hashed_names, m.typescript or "", m.public_path],
            "assets": [[a.name, list(a.tags), dict(a.matrix)] for a in self.spec.assets],
            "atlases": [[r.spec.path, r.key or "", r.status] for r in results],
        }))
