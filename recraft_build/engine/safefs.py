"""Writing and removing files without following symlinks, and with the user's umask.

Two rules live here, for every file recraft-build writes:

* **Atomic, umask-honouring writes.** A file is written to a temp file ``.rbtmp-*``
  in the same folder, then renamed over the target. The temp file is created with
  ``O_CREAT | O_EXCL | O_NOFOLLOW`` and mode ``0o666``, so the kernel applies the
  umask like for any other tool (0644 under umask 022); ``tempfile.mkstemp`` would
  make every output, the manifest and the lock 0600.
* **No symlink below an output root is followed.** :class:`Folder` is an open
  folder; every name below it is reached one component at a time with ``O_NOFOLLOW``
  (``openat``-style, through ``dir_fd``), so a folder in the tree that is a symlink
  is refused (:class:`NotFollowed`), never followed, even if it is swapped in while
  we work. The root itself is opened as given: where it may be is the caller's
  decision (see :func:`inside`).

Where the platform has no ``dir_fd`` support (Windows), :class:`Folder` falls back
to checking each component with ``lstat`` before using the path: the same rule,
without the protection against a symlink swapped in between check and use.
"""

from __future__ import annotations

import errno
import hashlib
import os
import secrets
import stat
from pathlib import Path
from typing import Sequence

from recraft_build.relpath import TEMP_PREFIX

__all__ = [
    "TEMP_PREFIX",
    "Folder",
    "NotFollowed",
    "inside",
    "write_atomic",
]

#: Prefix of the temp files atomic writes use (and the sweep of a killed build removes).

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_BINARY = getattr(os, "O_BINARY", 0)
#: Whether folders can be walked by file descriptor (POSIX); else by checked paths.
#: (``os.replace`` is not listed in ``supports_dir_fd``; it is ``renameat`` like ``os.rename``.)
USE_DIR_FD = bool(
    _NOFOLLOW
    and _DIRECTORY
    and {os.open, os.mkdir, os.stat, os.unlink, os.rmdir, os.rename} <= os.supports_dir_fd
)
# Longest part of the target's name kept in a temp file's name: the temp name must
# stay under the file system's 255-byte limit even for a long target name.
_TEMP_NAME_PART = 180


class NotFollowed(OSError):
    """A component below the root is a symlink or not a folder; it was not followed.

    ``rel`` is the path of that component relative to the root (``icons`` for
    ``icons/a.png`` when ``icons`` is a symlink).
    """

    def __init__(self, rel: str, what: str):
        self.rel = rel
        self.what = what
        super().__init__(errno.ELOOP, f"{rel!r} is {what}")


def inside(base: Path | str, path: Path | str) -> bool:
    """Whether ``path`` resolves (through every symlink) to ``base`` or below it."""
    real_base = os.path.realpath(base)
    real = os.path.realpath(path)
    return real == real_base or real.startswith(real_base.rstrip(os.sep) + os.sep)


def write_atomic(folder: Path | str, name: str, data: bytes, *, durable: bool, dir_fd: int | None = None) -> None:
    """Write ``data`` to ``name`` in ``folder`` atomically (temp file, then rename).

    With ``dir_fd`` the folder is that open folder and ``folder`` is only used in
    messages. ``durable`` fsyncs the data before the rename. The file gets mode
    ``0o666`` minus the umask. The temp file is removed if anything fails.
    """
    base = f"{TEMP_PREFIX}{name[:_TEMP_NAME_PART]}."
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC | _BINARY
    while True:
        tmp = base + secrets.token_hex(4)
        where = tmp if dir_fd is not None else os.path.join(folder, tmp)
        try:
            fd = os.open(where, flags, 0o666, dir_fd=dir_fd)
            break
        except FileExistsError:
            continue  # another writer's temp file: pick another name
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        if dir_fd is not None:
            os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        else:
            os.replace(where, os.path.join(folder, name))
    except BaseException:
        try:
            os.unlink(where, dir_fd=dir_fd)
        except FileNotFoundError:
            pass
        raise


class Folder:
    """An open folder under a root; names below it are never reached through a symlink.

    Use as a context manager (it holds a file descriptor). ``rel`` is the folder's
    path relative to the root (``""`` for the root), for messages.
    """

    def __init__(self, path: Path, fd: int | None, rel: str = ""):
        self.path = Path(path)
        self.fd = fd
        self.rel = rel

    # -- opening -------------------------------------------------------------------
    @classmethod
    def open_root(cls, root: Path | str, *, create: bool = False) -> "Folder":
        """Open ``root`` (following symlinks in it: the caller chose it).

        With ``create``, a missing root is made (with its parents). Raises
        ``FileNotFoundError`` when it is missing and ``create`` is false.
        """
        root = Path(root)
        if not USE_DIR_FD:
            if create:
                root.mkdir(parents=True, exist_ok=True)
            if not root.is_dir():
                raise FileNotFoundError(errno.ENOENT, "no such folder", str(root))
            return cls(root, None)
        flags = os.O_RDONLY | _DIRECTORY | _CLOEXEC
        try:
            return cls(root, os.open(root, flags))
        except FileNotFoundError:
            if not create:
                raise
        root.mkdir(parents=True, exist_ok=True)
        return cls(root, os.open(root, flags))

    def child(self, name: str, *, create: bool = False) -> "Folder":
        """The sub-folder ``name``, made first if missing and ``create`` is set.

        Raises :class:`NotFollowed` when ``name`` is a symlink or not a folder, and
        ``FileNotFoundError`` when it is missing and ``create`` is false.
        """
        rel = f"{self.rel}/{name}" if self.rel else name
        if self.fd is None:
            if create:
                try:
                    os.mkdir(self._name(name), 0o777)
                except FileExistsError:
                    pass
            st = os.lstat(self._name(name))
            if stat.S_ISLNK(st.st_mode):
                raise NotFollowed(rel, "a symlink")
            if not stat.S_ISDIR(st.st_mode):
                raise NotFollowed(rel, "not a folder")
            return Folder(self.path / name, None, rel)
        flags = os.O_RDONLY | _DIRECTORY | _NOFOLLOW | _CLOEXEC
        try:
            try:
                fd = os.open(name, flags, dir_fd=self.fd)
            except FileNotFoundError:
                if not create:
                    raise
                try:
                    os.mkdir(name, 0o777, dir_fd=self.fd)
                except FileExistsError:
                    pass  # made meanwhile by another writer: open what is there
                fd = os.open(name, flags, dir_fd=self.fd)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.EMLINK, errno.ENOTDIR):
                kind = "a symlink" if self._is_link(name) else "not a folder"
                raise NotFollowed(rel, kind) from exc
            raise
        return Folder(self.path / name, fd, rel)

    def walk(self, parts: Sequence[str], *, create: bool = False) -> "Folder":
        """The folder ``parts`` below this one (a new :class:`Folder`, even for no parts)."""
        current = Folder(self.path, os.dup(self.fd) if self.fd is not None else None, self.rel)
        for part in parts:
            try:
                nxt = current.child(part, create=create)
            finally:
                current.close()
            current = nxt
        return current

    # -- entries -------------------------------------------------------------------
    def lstat(self, name: str) -> os.stat_result:
        """The entry ``name`` itself (a symlink is not followed)."""
        return os.stat(self._name(name), dir_fd=self.fd, follow_symlinks=False)

    def sha256(self, name: str) -> tuple[str, os.stat_result]:
        """sha256 and stat of the regular file ``name``, opened without following a symlink.

        Raises :class:`NotFollowed` when it is a symlink or not a regular file.
        """
        rel = f"{self.rel}/{name}" if self.rel else name
        try:
            fd = os.open(self._name(name), os.O_RDONLY | _NOFOLLOW | _CLOEXEC | _BINARY, dir_fd=self.fd)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.EMLINK):  # EMLINK: FreeBSD's answer
                raise NotFollowed(rel, "a symlink") from exc
            raise
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise NotFollowed(rel, "not a regular file")
            h = hashlib.sha256()
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        return h.hexdigest(), st

    def write_atomic(self, name: str, data: bytes, *, durable: bool = False) -> None:
        """Write the file ``name`` here atomically (see :func:`write_atomic`)."""
        write_atomic(self.path, name, data, durable=durable, dir_fd=self.fd)

    def touch(self, name: str) -> None:
        """Create the empty file ``name`` if missing (never through a symlink; never truncates)."""
        fd = os.open(self._name(name), os.O_RDWR | os.O_CREAT | _NOFOLLOW | _CLOEXEC, 0o666, dir_fd=self.fd)
        os.close(fd)

    def unlink(self, name: str) -> None:
        os.unlink(self._name(name), dir_fd=self.fd)

    def rmdir(self, name: str) -> None:
        """Remove the empty folder ``name`` (a symlink is refused by the system)."""
        os.rmdir(self._name(name), dir_fd=self.fd)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> "Folder":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- helpers -------------------------------------------------------------------
    def _name(self, name: str) -> str:
        """What to pass to an ``os`` call: the bare name with a descriptor, else the path."""
        return name if self.fd is not None else str(self.path / name)

    def _is_link(self, name: str) -> bool:
        try:
            return stat.S_ISLNK(self.lstat(name).st_mode)
        except OSError:
            return False
