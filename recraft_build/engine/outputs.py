"""The output tree: safe paths, atomic writes, the stat cache and the manifest.

* Every path is relative to the output folder and checked to stay inside it. No
  symlink below the output folder is followed: an output whose folder in the tree is
  a symlink (wherever it points) is refused, and folders are walked one component at
  a time without following links (:mod:`recraft_build.engine.safefs`), so a link
  swapped in during the build cannot redirect a write either. The output folder
  itself may be a symlink: where it may be is decided by :func:`check_output_root`.
* Files are written atomically: a temp file ``.rbtmp-*`` in the same folder, then
  rename, with mode 0666 minus the umask. A build killed mid-write leaves such a temp
  file at worst; :func:`sweep_temp_files` removes them at the next build.
* :class:`OutputState` remembers ``(size, mtime_ns, sha256)`` of each file written, in
  ``.recraft-build-state.json`` in the output folder, so a no-op build stats files
  instead of re-reading them (re-hashing only when size or mtime changed), and the
  sha256 this tool wrote, so ``clean`` removes only files still holding it.
* ``manifest.json`` maps each asset to its files (path, format, width, height,
  sha256, bytes, and what :mod:`recraft_build.engine.manifests` adds), sorted, for
  game engines and bundlers.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Any, Callable, Mapping

from recraft_build.errors import OutputError, Problem, SpecError
from recraft_build.engine.lock import atomic_write_bytes
from recraft_build.engine.lockdata import LockedOutput
from recraft_build.steps.catalog import export_files_allowed
from recraft_build.engine.safefs import TEMP_PREFIX, Folder, NotFollowed, inside
from recraft_build.relpath import output_path_problem

__all__ = [
    "MANIFEST_NAME",
    "STATE_NAME",
    "OutputState",
    "check_output_root",
    "file_sha256",
    "manifest_entry",
    "output_parts",
    "reserved_names",
    "safe_output_path",
    "sweep_temp_files",
    "write_manifest",
    "write_output",
    "write_pinned",
]

MANIFEST_NAME = "manifest.json"
STATE_NAME = ".recraft-build-state.json"


def reserved_names() -> frozenset[str]:
    """Files in the output folder that belong to recraft-build itself."""
    return frozenset({MANIFEST_NAME, STATE_NAME})


def output_parts(root: Path, rel: str) -> tuple[str, ...]:
    """The components of the output path ``rel``, after checking its form.

    Refuses (OutputError naming the path and what is wrong) what
    :func:`recraft_build.relpath.output_path_problem` refuses (absolute, ``..``,
    empty, backslash, device and temp-file names...) and recraft-build's own files.
    Nothing is read from disk.
    """
    problem = output_path_problem(rel) if type(rel) is str else ("is not a string", "")
    if problem is not None:
        raise OutputError(f"output path {rel!r} {problem[0]}: it must be a relative path "
                          f"that stays inside {root}")
    if rel in reserved_names():
        raise OutputError(f"output path {rel!r} is reserved for recraft-build's own file")
    return tuple(rel.split("/"))


def _not_followed(root: Path, rel: str, exc: NotFollowed) -> OutputError:
    return OutputError(
        f"output path {rel!r} goes through {exc.rel!r}, which is {exc.what}; recraft-build does not "
        f"follow symlinks inside the output folder {root} (one could lead outside the output "
        "folder): replace it with a real folder"
    )


def safe_output_path(root: Path, rel: str) -> Path:
    """``root / rel`` after checking it cannot leave ``root``.

    Refuses what :func:`output_parts` refuses, and any existing component below
    ``root`` (a folder or the file itself) that is a symlink, wherever it points.
    Raises OutputError naming the path.
    """
    parts = output_parts(root, rel)
    target = Path(root, *parts)
    current = Path(root)
    for i, part in enumerate(parts):
        current = current / part
        try:
            st = os.lstat(current)
        except FileNotFoundError:
            break
        except OSError as exc:
            raise OutputError(f"cannot check output path {rel!r} in {root}: {exc.strerror or exc}") from exc
        if stat.S_ISLNK(st.st_mode):
            if i == len(parts) - 1:
                raise OutputError(f"output path {rel!r} is a symlink; recraft-build will not write through it")
            raise _not_followed(root, rel, NotFollowed("/".join(parts[: i + 1]), "a symlink"))
    return target


def write_output(root: Path, rel: str, data: bytes) -> Path:
    """Write ``data`` to ``root/rel`` atomically, never through a symlink; return the path.

    Missing folders are made; a folder in the tree that is a symlink (or not a
    folder), or a target that is a symlink, is an OutputError naming the path.
    """
    parts = output_parts(root, rel)
    try:
        with Folder.open_root(root, create=True) as top, top.walk(parts[:-1], create=True) as folder:
            try:
                if stat.S_ISLNK(folder.lstat(parts[-1]).st_mode):
                    raise OutputError(f"output path {rel!r} is a symlink; recraft-build will not write through it")
            except FileNotFoundError:
                pass
            folder.write_atomic(parts[-1], data, durable=False)
    except NotFollowed as exc:
        raise _not_followed(root, rel, exc) from exc
    except OSError as exc:
        raise OutputError(f"cannot write output {rel!r} in {root}: {exc.strerror or exc}") from exc
    return Path(root, *parts)


def write_pinned(
    root: Path,
    state: "OutputState",
    kind: str,
    key: str | None,
    locked: LockedOutput,
    fetch: Callable[[str], bytes | None],
    disk_name: Callable[[str, str], str],
) -> bool:
    """Write an output's files as the lock pins them, when ``key`` (the export key the
    plan reached, every key before it matching the lock) is the lock's: each file whose
    disk state is not already its digest, from ``fetch(sha256)`` (the store: bytes
    verified by digest, a remote's before they are used), under ``disk_name(path,
    sha256)``. True when every file is right; False, with nothing written, when a blob
    is in no cache or the files are not what an export of ``kind`` writes (the caller
    then walks the chain). Nothing is read from, or written to, the records."""
    prefix = locked.path.rstrip("/") + "/"
    names = ["" if f.path == locked.path else f.path[len(prefix):] for f in locked.files]
    if key is None or key != locked.key or not export_files_allowed(kind, names) or any(
        n and f.path != prefix + n for n, f in zip(names, locked.files)
    ):
        return False
    todo = []
    for f in locked.files:
        disk = disk_name(f.path, f.sha256)
        if state.observe(disk) != f.sha256:
            data = fetch(f.sha256)
            if data is None:
                return False
            todo.append((disk, f.sha256, data))
    for disk, digest, data in todo:
        write_output(root, disk, data)
        state.record(disk, digest)
    return True


def check_output_root(base: Path, out: Path, *, spec_file: str) -> None:
    """Refuse an output folder from the spec that resolves outside the spec's folder.

    ``base`` is the spec's folder, ``out`` the output folder the spec asks for (its
    ``output_dir``, or the default ``build/``). Symlinks are resolved: a ``build``
    that is a symlink to another folder (git carries symlinks in pull requests) is
    refused with a :class:`SpecError` (exit 3) naming both paths. ``-o`` on the
    command line is the user's own choice and is not checked here.
    """
    if inside(base, out):
        return
    raise SpecError(
        [
            Problem(
                spec_file,
                0,
                0,
                "output_dir",
                f"the output folder {out} resolves to {os.path.realpath(out)}, outside the spec's "
                f"folder {os.path.realpath(base)} (a symlink on the way points elsewhere)",
                "replace the symlink with a real folder, or choose the folder on the command line with -o OUT",
            )
        ]
    )


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

    Each entry is ``[size, mtime_ns, sha256 now, sha256 written]``: the last is what
    :meth:`record` wrote (None for a file only observed), so :meth:`written` tells a
    file this tool wrote from one a user put or changed there. An entry of an older
    state file, ``[size, mtime_ns, sha256]``, counts as written. The file is read as
    untrusted input: malformed entries are dropped.
    """

    def __init__(self, root: Path):
        self.root = Path(root)
        self._root_str = str(self.root)
        self._path = self.root / STATE_NAME
        self._files: dict[str, list[Any]] = {}
        self._meta: dict[str, str] = {}
        self._dirty = False
        try:
            data = json.loads(self._path.read_text(encoding="utf-8"))
            if isinstance(data, dict) and isinstance(data.get("files"), dict):
                self._files = {k: v for k, v in data["files"].items() if _valid_entry(k, v)}
            if isinstance(data, dict) and isinstance(data.get("meta"), dict):
                self._meta = {k: v for k, v in data["meta"].items() if isinstance(k, str) and isinstance(v, str)}
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
        written = (known[3] if len(known) > 3 else known[2]) if known else None
        self._files[rel] = [st.st_size, st.st_mtime_ns, digest, written]
        self._dirty = True
        return digest

    def record(self, rel: str, digest: str) -> None:
        """Remember the file just written at ``rel`` with ``digest``."""
        st = os.lstat(self.root / rel)
        self._files[rel] = [st.st_size, st.st_mtime_ns, digest, digest]
        self._dirty = True

    def recorded(self, rel: str) -> tuple[int, int, str] | None:
        """``(size, mtime_ns, sha256)`` remembered for ``rel`` (None when unknown); no I/O."""
        known = self._files.get(rel)
        return (int(known[0]), int(known[1]), str(known[2])) if known else None

    def known_paths(self) -> list[str]:
        """Every file recorded in the folder (written or only observed)."""
        return sorted(self._files)

    def written(self) -> dict[str, str]:
        """Path -> sha256 this tool wrote there, for every file it recorded writing."""
        out = {}
        for rel, entry in self._files.items():
            digest = entry[3] if len(entry) > 3 else entry[2]
            if digest:
                out[rel] = str(digest)
        return out

    def get_meta(self, name: str) -> str | None:
        """A small value kept with the stat cache (the manifest's fingerprint); a lost one
        only costs rewriting what it stood for."""
        return self._meta.get(name)

    def set_meta(self, name: str, value: str) -> None:
        if self._meta.get(name) != value:
            self._meta[name] = value
            self._dirty = True

    def forget(self, rel: str) -> None:
        if self._files.pop(rel, None) is not None:
            self._dirty = True

    def save(self) -> None:
        if not self._dirty or not self.root.is_dir():
            return
        state: dict[str, Any] = {"version": 1, "files": self._files}
        if self._meta:
            state["meta"] = self._meta
        text = json.dumps(state, sort_keys=True)
        try:
            atomic_write_bytes(self._path, text.encode("utf-8"))
        except OSError:
            return  # the stat cache is an optimisation; losing it costs a re-hash
        self._dirty = False


def _valid_entry(rel: Any, entry: Any) -> bool:
    """Whether a state entry has the shape this module writes (see :class:`OutputState`)."""
    if not isinstance(rel, str) or not isinstance(entry, list) or len(entry) not in (3, 4):
        return False
    size, mtime, digest = entry[0], entry[1], entry[2]
    written = entry[3] if len(entry) > 3 else digest
    return (
        all(isinstance(v, int) and not isinstance(v, bool) for v in (size, mtime))
        and isinstance(digest, str)
        and (written is None or isinstance(written, str))
    )


def manifest_entry(file: Mapping[str, Any]) -> dict[str, Any]:
    """One file of ``manifest.json`` from one file of a lock entry's output."""
    return {
        "path": file["path"],
        "format": file.get("format"),
        "width": file.get("width"),
        "height": file.get("height"),
        "sha256": file["sha256"],
        "bytes": file.get("bytes"),
    }


def write_manifest(
    root: Path,
    assets: Mapping[str, Any],
    *,
    atlases: Mapping[str, Any] | None = None,
    files: Mapping[str, str] | None = None,
) -> bool:
    """Write ``manifest.json`` (sorted) if its content changed; True if written.

    ``assets`` maps asset name -> its files (each ``{path, format, width, height,
    sha256, bytes}``, more keys allowed), or -> a mapping with those files under
    ``outputs`` and more fields (``matrix``, ``tags``, ``pick``: see
    :mod:`recraft_build.engine.manifests`). ``atlases`` (atlas path -> its entry) and
    ``files`` (logical name -> the file written) are written when given.
    """

    def asset(value: Any) -> dict[str, Any]:
        extra = dict(value) if isinstance(value, Mapping) else {"outputs": value}
        extra["outputs"] = sorted((dict(f) for f in extra["outputs"]), key=lambda f: f["path"])
        return extra

    data: dict[str, Any] = {
        "version": 1,
        "assets": {name: asset(value) for name, value in sorted(assets.items())},
    }
    if atlases is not None:
        data["atlases"] = dict(atlases)
    if files is not None:
        data["files"] = dict(files)
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
