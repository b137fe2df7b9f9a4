"""Sprite atlases: frames from the lock, packed into pages, written like an export.

An atlas (``atlases:`` in the spec, resolved to an :class:`~recraft_build.domain.AtlasSpec`)
takes one raster output file of each of its assets at each scale. What it writes, for
``path: sprites/enemies`` and scales ``[1, 2]``:

* ``sprites/enemies.png`` (+ ``enemies-1.png``, ``enemies-2.png``... when the frames
  need more pages), and ``sprites/enemies@2x.png`` (+ ``enemies-1@2x.png``...);
* one JSON per page in TexturePacker's "JSON (Hash)" format (``format: array``: "JSON
  (Array)"): ``frames.NAME.frame/rotated/trimmed/spriteSourceSize/sourceSize`` and
  ``meta.app/version/image/format/size/scale``, which Phaser 3 (``load.atlas``) and
  PixiJS (``Assets.load``) read directly. Several pages are linked as TexturePacker's
  multipack does: each page's JSON lists the others in ``meta.related_multi_packs``
  (PixiJS loads them all from the first);
* with ``css: true``, ``sprites/enemies.css``: one class per frame
  (``.enemies-NAME``), its ``@2x`` pages for screens of 2 dppx and more through
  media queries (each scale is packed on its own, so each has its own positions).

Frames are never rotated. Content-addressed: the atlas's key (:func:`atlas_key`) holds
its parameters and the sha256 of each frame file as the lock pins it; its files are
blobs in the store under an ``atlas`` export record, so an unchanged atlas is found up
to date by a record read and a stat of its files (no frame is decoded), and a deleted
atlas file is written back from the store without packing. Writes go through
:func:`~recraft_build.engine.outputs.write_output` (atomic, never through a symlink).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from recraft_build.cache.records import ExportFile, ExportRecord, RecordReader
from recraft_build.domain import AtlasSpec
from recraft_build.engine import keys
from recraft_build.engine.atlaspack import PackError
from recraft_build.engine.lock import Lock
from recraft_build.engine.manifests import hashed_path
from recraft_build.engine.outputs import OutputState, write_output
from recraft_build.errors import OutputError

__all__ = ["ATLAS_VERSION", "AtlasFile", "AtlasResult", "Atlases", "FramePlace", "atlas_key", "frame_digests"]

#: The packer's and writer's version: part of every atlas key (bump it when the bytes change).
ATLAS_VERSION = 1
#: The names of an atlas's files in its cache record: a page, a page's JSON, the CSS.
_ROLE = re.compile(r"s(\d+(?:\.\d+)?)-(page|data)-(\d+)\.(png|json)|(sheet\.css)")


@dataclass(frozen=True)
class AtlasFile:
    """One file of an atlas: ``role`` names it in the cache record (``s2-page-1.png``),
    ``logical`` is its path without a content hash, ``path`` the file written."""

    role: str
    logical: str
    path: str
    sha256: str
    bytes: int
    format: str
    width: int | None = None
    height: int | None = None
    scale: float | None = None
    page: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path, "logical": self.logical, "sha256": self.sha256, "bytes": self.bytes,
            "format": self.format, "width": self.width, "height": self.height, "scale": self.scale,
            "page": self.page,
        }


@dataclass(frozen=True)
class FramePlace:
    """Where a frame lies at one scale: its page's image and JSON (output paths) and its
    rectangle on the page."""

    image: str
    json: str
    x: int
    y: int
    w: int
    h: int


@dataclass
class AtlasResult:
    """One atlas after a build (or a status check): ``status`` is ``up-to-date``,
    ``written``, ``waiting`` (a frame's asset is not built yet) or ``failed``, with the
    ``reason``. ``frames`` maps frame name -> scale -> :class:`FramePlace`."""

    spec: AtlasSpec
    status: str
    key: str | None = None
    reason: str = ""
    files: list[AtlasFile] = field(default_factory=list)
    frames: dict[str, dict[float, FramePlace]] = field(default_factory=dict)
    efficiency: float | None = None  # frame pixels / page pixels, when packed now

    def to_json(self) -> dict[str, Any]:
        return {"path": self.spec.path, "status": self.status, "key": self.key, "reason": self.reason or None,
                "files": [f.path for f in self.files]}


def frame_digests(spec: AtlasSpec, lock: Lock) -> tuple[list[tuple[str, float, str, str]], list[str]]:
    """``([(frame, scale, logical path, sha256)], [frame names not built yet])`` from the
    lock, for every frame at every scale of the atlas."""
    found: list[tuple[str, float, str, str]] = []
    missing: list[str] = []
    for frame in spec.frames:
        entry = lock.asset(frame.name)
        ok = entry is not None
        for scale in spec.scales:
            path = frame.files[scale]
            out = entry.output(path) if entry is not None else None
            if out is None or len(out.files) != 1:
                ok = False
                break
            found.append((frame.name, scale, path, out.files[0].sha256))
        if not ok:
            missing.append(frame.name)
    return found, missing


def atlas_key(spec: AtlasSpec, digests: Sequence[tuple[str, float, str, str]], hashed: bool) -> str:
    """The atlas's key: its parameters and each frame file's digest (see ``keys.atlas_key``)."""
    params = {
        "path": spec.path, "scales": list(spec.scales), "max_size": spec.max_size, "padding": spec.padding,
        "extrude": spec.extrude, "trim": spec.trim, "power_of_two": spec.power_of_two,
        "format": spec.format, "css": spec.css, "hashed_names": hashed,
    }
    return keys.atlas_key(params, ATLAS_VERSION, [(f"{n}@{s:g}", d) for n, s, _, d in digests])


def _scale_tag(scale: float) -> str:
    return f"s{scale:g}"


def _role_logical(spec: AtlasSpec, role: str) -> tuple[str, float | None, int | None]:
    """A record role -> (logical output path, scale, page)."""
    m = _ROLE.fullmatch(role)
    if m is None:
        raise OutputError(f"atlas {spec.path!r}: unknown file role {role!r} in its cache record")
    if m.group(5):
        return f"{spec.path}.css", None, None
    scale, page = float(m.group(1)), int(m.group(3))
    scale = int(scale) if scale.is_integer() else scale  # JSON shows 2, not 2.0
    name = spec.path + (f"-{page}" if page else "") + ("" if scale == 1 else f"@{scale:g}x")
    return f"{name}.{m.group(4)}", scale, page


def _disk(logical: str, role: str, sha256: str, key: str, hashed: bool) -> str:
    """The file written for ``logical``: with hashed names, pages by their own content,
    the JSON and CSS (which name the pages) by the atlas's key."""
    if not hashed:
        return logical
    return hashed_path(logical, sha256 if role.endswith(".png") else key)


class Atlases:
    """Builds (or checks) the spec's atlases in one output folder. I/O comes in: the
    ``store`` (blobs and records), the output ``state`` (stat cache), ``read_output``
    (bytes of an output file, or None) for frames the store lost."""

    def __init__(self, *, store: Any, out: Any, state: OutputState, lock: Lock, hashed: bool,
                 read_output: Callable[[str], bytes | None], warn: Callable[[str], None]):
        self.store = store
        self.out = out
        self.state = state
        self.lock = lock
        self.hashed = hashed
        self.read_output = read_output
        self.records = RecordReader(store, warn)

    def check(self, spec: AtlasSpec, stale: frozenset[str] = frozenset()) -> AtlasResult:
        """What a build would do to ``spec``, without writing: up-to-date or why not.
        ``stale`` names the assets the build will remake (their frames will change)."""
        digests, missing = frame_digests(spec, self.lock)
        if missing:
            return AtlasResult(spec, "waiting", reason=f"waiting for {_names(missing)} (not built yet)")
        key = atlas_key(spec, digests, self.hashed)
        changing = [f.name for f in spec.frames if f.name in stale]
        if changing:
            return AtlasResult(spec, "stale", key, f"frames to rebuild: {_names(changing)}")
        rec = self._record(key)
        if rec is None:
            return AtlasResult(spec, "stale", key, "frames or options changed: to pack")
        files = self._files(spec, key, rec)
        for f in files:
            if self.state.observe(f.path) != f.sha256:
                return AtlasResult(spec, "stale", key, f"atlas file missing or edited: {f.path}", files)
        return AtlasResult(spec, "up-to-date", key, files=files)

    def build(self, spec: AtlasSpec) -> AtlasResult:
        """Make ``spec``'s files up to date: nothing when they are, from the store when it
        has them, else pack. Raises OutputError (naming the atlas) when it cannot."""
        digests, missing = frame_digests(spec, self.lock)
        if missing:
            return AtlasResult(spec, "waiting", reason=f"waiting for {_names(missing)} (not built yet)")
        key = atlas_key(spec, digests, self.hashed)
        rec = self._record(key)
        if rec is not None:
            files = self._files(spec, key, rec)
            stale = [f for f in files if self.state.observe(f.path) != f.sha256]
            blobs = {f.path: self.store.get_blob(f.sha256) for f in stale}
            if all(b is not None for b in blobs.values()):
                for f in stale:
                    self._write(f, blobs[f.path])  # type: ignore[arg-type]
                return AtlasResult(spec, "written" if stale else "up-to-date", key, files=files)
        files, frames, blobs, efficiency = self._pack(spec, key, digests)
        record = ExportRecord("atlas", tuple(ExportFile(f.role, f.sha256, f.bytes, f.format, f.width, f.height)
                                             for f in files))
        self.store.put_record(key, record.to_json())
        for f in files:
            if self.state.observe(f.path) != f.sha256:
                self._write(f, blobs[f.role])
        return AtlasResult(spec, "written", key, files=files, frames=frames, efficiency=efficiency)

    def frames_of(self, result: AtlasResult) -> dict[str, dict[float, FramePlace]]:
        """The frame places of an atlas found up to date (read from its JSON files)."""
        if result.frames or not result.files:
            return result.frames
        places: dict[str, dict[float, FramePlace]] = {}
        images = {(f.scale, f.page): f.path for f in result.files if f.format == "png"}
        for f in result.files:
            if f.format != "json":
                continue
            data = self.store.get_blob(f.sha256) or self.read_output(f.path)
            if data is None or keys.digest_bytes(data) != f.sha256:
                continue  # (the manifest then lacks this page's frames; the files are fine)
            doc = json.loads(data)
            entries = doc["frames"].items() if isinstance(doc["frames"], dict) else \
                ((e["filename"], e) for e in doc["frames"])
            for name, entry in entries:
                r = entry["frame"]
                places.setdefault(name, {})[f.scale or 1.0] = FramePlace(
                    images[(f.scale, f.page)], f.path, r["x"], r["y"], r["w"], r["h"])
        result.frames = places
        return places

    # -- inside ---------------------------------------------------------------------
    def _record(self, key: str) -> ExportRecord | None:
        rec = self.records.export(key)
        if rec is None or rec.kind != "atlas":
            return None
        # A record (perhaps from a shared cache) naming files no atlas writes is a miss.
        return rec if all(_ROLE.fullmatch(f.name) for f in rec.files) else None

    def _files(self, spec: AtlasSpec, key: str, rec: ExportRecord) -> list[AtlasFile]:
        files = []
        for f in rec.files:
            logical, scale, page = _role_logical(spec, f.name)
            files.append(AtlasFile(f.name, logical, _disk(logical, f.name, f.sha256, key, self.hashed), f.sha256,
                                   f.bytes or 0, f.format or "", f.width, f.height, scale, page))
        return files

    def _write(self, f: AtlasFile, data: bytes) -> None:
        write_output(self.out, f.path, data)
        self.state.record(f.path, f.sha256)

    def _frame_bytes(self, spec: AtlasSpec, name: str, logical: str, digest: str) -> bytes:
        data = self.store.get_blob(digest)
        if data is None:
            data = self.read_output(hashed_path(logical, digest) if self.hashed else logical)
            if data is not None and keys.digest_bytes(data) != digest:
                data = None
        if data is None:
            raise OutputError(f"atlas {spec.path!r}: frame {name!r} ({logical}, {digest[:12]}) is neither in the "
                              "cache nor in the output folder (rebuild that asset: recraft-build build "
                              f"{name})")
        return data

    def _pack(self, spec: AtlasSpec, key: str, digests: Sequence[tuple[str, float, str, str]]
              ) -> tuple[list[AtlasFile], dict[str, dict[float, FramePlace]], dict[str, bytes], float]:
        from recraft_build.engine import atlasdraw  # Pillow only when an atlas is packed

        files: list[AtlasFile] = []
        blobs: dict[str, bytes] = {}
        frames: dict[str, dict[float, FramePlace]] = {}
        used = total = 0
        sheets: list[atlasdraw.Sheet] = []
        for scale in spec.scales:
            pictures = [(n, self._frame_bytes(spec, n, p, d)) for n, s, p, d in digests if s == scale]
            try:
                sheet = atlasdraw.draw(pictures, spec, scale)
            except PackError as exc:
                raise OutputError(f"atlas {spec.path!r} at scale {scale:g}: {exc} (raise max_size, or make the "
                                  "frame smaller)") from exc
            sheets.append(sheet)
            used += sheet.frame_pixels
            total += sum(p.width * p.height for p in sheet.pages)
            page_files: list[AtlasFile] = []
            for n, page in enumerate(sheet.pages):
                role = f"{_scale_tag(scale)}-page-{n}.png"
                page_files.append(self._file(spec, key, role, page.png, "png", page.width, page.height))
                blobs[role] = page.png
            jsons = [_role_logical(spec, f"{_scale_tag(scale)}-data-{n}.json")[0] for n in range(len(sheet.pages))]
            json_paths = [_disk(j, "x.json", "", key, self.hashed) for j in jsons]
            for n, page in enumerate(sheet.pages):
                others = [_basename(p) for i, p in enumerate(json_paths) if i != n]
                data = atlasdraw.page_json(sheet, n, _basename(page_files[n].path), others, spec.format, scale)
                role = f"{_scale_tag(scale)}-data-{n}.json"
                files.append(page_files[n])
                files.append(self._file(spec, key, role, data, "json"))
                blobs[role] = data
                for name, rect in page.frames.items():
                    frames.setdefault(name, {})[scale] = FramePlace(page_files[n].path, json_paths[n], *rect)
        if spec.css:
            pages = {scale: [f.path for f in files if f.scale == scale and f.format == "png"] for scale in spec.scales}
            data = atlasdraw.css(spec, sheets, pages, _basename)
            files.append(self._file(spec, key, "sheet.css", data, "css"))
            blobs["sheet.css"] = data
        for f in files:
            self.store.put_blob(blobs[f.role])
        return files, frames, blobs, (used / total if total else 0.0)

    def _file(self, spec: AtlasSpec, key: str, role: str, data: bytes, fmt: str,
              width: int | None = None, height: int | None = None) -> AtlasFile:
        logical, scale, page = _role_logical(spec, role)
        digest = keys.digest_bytes(data)
        return AtlasFile(role, logical, _disk(logical, role, digest, key, self.hashed), digest, len(data), fmt,
                         width, height, scale, page)


def _basename(path: str) -> str:
    return path.rsplit("/", 1)[-1]


def _names(names: Sequence[str]) -> str:
    shown = ", ".join(repr(n) for n in names[:3])
    return shown + (f" and {len(names) - 3} more" if len(names) > 3 else "")
