"""The output tree: safe paths, atomic writes, the stat cache and the manifest.

* Every path is relative to the output folder and checked to stay inside it, also
  through symlinks (a symlinked folder pointing outside is refused).
* Files are written atomically: a temp file ``.rbtmp-*`` in the same folder, then
  rename. A build killed mid-write leaves such a temp file at worst;
  :func:`sweep_temp_files` removes them at the next build.
* :class:`OutputState` remembers ``(size, mtime_ns, sha256)`` of each file written, in
  ``.recraft-build-state.json`` in the output folder, so a no-op build stats files
  instead of re-reading them (re-hashing only when size or mtime changed).
* ``manifest.json`` maps each asset to its files (path, format, width, height,
  sha256, bytes), sorted, for game engines and bundlers.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path, PurePosixPath
from typing import Any, Iterable, Mapping

from recraft_build.errors import OutputError
from recraft_build.engine.lock import atomic_write_bytes

__all__ = [
    "MANIFEST_NAME",
    "STATE_NAME",
    "OutputState",
    "file_sha256",
    "reserved_names",
    "safe_output_path",
    "sweep_temp_files",
    "write_manifest",
    "write_output",
]

MANIFEST_NAME = "manifest.json"
STATE_NAME = ".recraft-build-state.json"
TEMP_PREFIX = ".rbtmp-"


def reserved_names() -> frozenset[str]:
    """Files in the output folder that belong to recraft-build itself."""
    return frozenset({MANIFEST_NAME, STATE_NAME})


def safe_output_path(root: Path, rel: str) -> Path:
    """``root / rel`` after checking it cannot leave ``root``.

    Refuses absolute paths, ``..`` segments, and any existing component (folder or the
    file itself) that is a symlink resolving outside the (resolved) root.
    Raises OutputError naming the path.
    """
    p = PurePosixPath(rel)
    if p.is_absolute() or ".." in p.parts or not p.parts or "\\" in rel:
        raise OutputError(f"output path {rel!r} must be relative and stay inside {root}")
    if rel in reserved_names():
        raise OutputError(f"output path {rel!r} is reserved for recraft-build's own file")
    root_real = Path(os.path.realpath(root))
    target = Path(root, *p.parts)
    real = Path(os.path.realpath(target))
    if real != root_real and root_real not in real.parents:
        raise OutputError(
            f"output path {rel!r} resolves to {real}, outside the output folder {root_real} "
            "(a symlink in the output folder points elsewhere; remove it)"
        )
    if target.is_symlink():
        raise OutputError(f"output path {rel!r} is a symlink; recraft-build will not write through it")
    return target


def write_output(root: Path, rel: str, data: bytes) -> Path:
    """Write ``data`` to ``root/rel`` atomically after the safety check; return the path."""
    target = safe_output_path(root, rel)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        # Re-check after creating folders: a race must not let a symlink slip in.
        safe_output_path(root, rel)
        atomic_write_bytes(target, data, durable=False)
    except OSError as exc:
        raise OutputError(f"cannot write output {rel!r} in {root}: {exc.strerror or exc}") from exc
    return target


def sweep_temp_files(root: Path) -> int:
    """Remove temp files a killed build left in the output tree; return how many."""
    if not root.is_dir():
        return 0
    removed = 0
    for dirpath, _dirnames, filenames in os.walk(root):
        for name in filenames:
            if name.startswith(TEMP_PREFIX):
                try:
                    os.unlink(os.path.join(dirpath, name))
                    removed += 1
                except OSError:
                    pass
    return removed


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class OutputState:
    """The stat cache of files this tool wrote in one output folder.

    ``observe(rel)`` answers "what sha256 does this file have now?" cheaply: a stat,
    and a re-hash only when size or mtime differ from what was recorded. None means the
    file is missing (or is not a regular file).
    """

    def __init__(self, root: Path):
        self.root = Path(root)
        self._root_str = str(self.root)
        self._path = self.root / STATE_NAME
        self._files: dict[str, list[Any]] = {}
        self._dirty = False
        try:
            data = json.loads(self._path.read_text(encoding="utf-8"))
            if isinstance(data, dict) and isinstance(data.get("files"), dict):
                self._files = data["files"]
        except (OSError, ValueError):
            self._files = {}  # a lost stat cache only costs re-hashing

    def observe(self, rel: str) -> str | None:
        # One lstat, plain string paths: this runs for every output of a no-op build.
        path = os.path.join(self._root_str, rel)
        try:
            st = os.lstat(path)
        except OSError:
            return None
        if not stat.S_ISREG(st.st_mode):
            return None  # missing, a folder, or a symlink (never trusted as an output)
        known = self._files.get(rel)
        if known and known[0] == st.st_size and known[1] == st.st_mtime_ns:
            return str(known[2])
        digest = file_sha256(Path(path))
        self._files[rel] = [st.st_size, st.st_mtime_ns, digest]
        self._dirty = True
        return digest

    def record(self, rel: str, digest: str) -> None:
        """Remember the file just written at ``rel`` with ``digest``."""
        st = (self.root / rel).stat()
        self._files[rel] = [st.st_size, st.st_mtime_ns, digest]
        self._dirty = True

    def known_paths(self) -> list[str]:
        """Every file this tool recorded writing in the folder."""
        return sorted(self._files)

    def forget(self, rel: str) -> None:
        if self._files.pop(rel, None) is not None:
            self._dirty = True

    def save(self) -> None:
        if not self._dirty or not self.root.is_dir():
            return
        text = json.dumps({"version": 1, "files": self._files}, sort_keys=True)
        try:
            atomic_write_bytes(self._path, text.encode("utf-8"))
        except OSError:
            return  # the stat cache is an optimisation; losing it costs a re-hash
        self._dirty = False


def write_manifest(root: Path, assets: Mapping[str, Iterable[Mapping[str, Any]]]) -> bool:
    """Write ``manifest.json`` (sorted) if its content changed; True if written.

    ``assets`` maps asset name -> files, each ``{path, format, width, height, sha256, bytes}``.
    """
    data = {
        "version": 1,
        "assets": {
            name: {"outputs": sorted((dict(f) for f in files), key=lambda f: f["path"])}
            for name, files in sorted(assets.items())
        },
    }
    text = json.dumps(data, sort_keys=True, indent=2) + "\n"
    path = root / MANIFEST_NAME
    try:
        if path.read_text(encoding="utf-8") == text:
            return False
    except OSError:
        pass
    root.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, text.encode("utf-8"))
    return True
