"""The cross-process lock that serialises writers of one lock file.

:func:`folder_lock` takes an exclusive ``flock`` on the **folder** that holds the lock
file (``assets.lock`` -> the spec's folder):

* the folder is never replaced by the lock's atomic rename (a lock on the lock file
  itself would be lost with the old inode);
* nothing extra appears beside the spec;
* there is no predictable path in a shared temp folder, where another user could
  plant a symlink (the old ``/tmp/recraft-build-<hash>.flock`` crashed the build).

Every process that writes the lock (a build, ``pick``, the review server) takes the
same lock, across users of a shared folder too. ``flock`` locks belong to the open
file description, so two threads of one process exclude each other as well.

Where a folder cannot be locked (NFS emulates ``flock`` with POSIX write locks, which
a folder opened read-only cannot take; Windows has no ``flock``), a lock file
``.recraft-build/<lock name>.flock`` beside the lock is used instead, reached
without following a symlink.
"""

from __future__ import annotations

import errno
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from recraft_build.errors import LockError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["FALLBACK_FOLDER", "fallback_lock", "folder_lock"]

#: Folder beside the lock for the fallback lock file (also recraft-build's other local files).
FALLBACK_FOLDER = ".recraft-build"

# flock answers meaning "this file system cannot lock a folder" (not "someone holds it").
_CANNOT_LOCK_FOLDER = frozenset({errno.EBADF, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP})
_POLL = 0.05


def _timeout_error(lock_path: Path, timeout: float) -> LockError:
    return LockError(
        f"{lock_path}: another recraft-build has held the lock file for {timeout:g} s; "
        "wait for it to finish"
    )


@contextmanager
def folder_lock(
    lock_path: Path,
    *,
    timeout: float = 60.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[None]:
    """Hold the exclusive lock for writers of ``lock_path`` (see the module docstring).

    Raises :class:`~recraft_build.errors.LockError` (exit 3) after ``timeout`` seconds
    of waiting, or when the folder or the fallback lock file cannot be used (naming
    the path and what to do).
    """
    lock_path = Path(lock_path)
    folder = lock_path.parent
    if fcntl is None:
        with fallback_lock(lock_path, timeout):
            yield
        return
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise LockError(f"{lock_path}: cannot open its folder to lock it: {exc.strerror or exc}") from exc
    try:
        try:
            _flock(fd, lock_path, timeout, clock, sleep)
        except OSError as exc:
            if exc.errno not in _CANNOT_LOCK_FOLDER:
                raise LockError(f"{lock_path}: cannot lock its folder: {exc.strerror or exc}") from exc
            os.close(fd)
            fd = -1
            with fallback_lock(lock_path, timeout):
                yield
            return
        yield  # closing the descriptor (below) releases the lock
    finally:
        if fd >= 0:
            os.close(fd)


def _flock(fd: int, lock_path: Path, timeout: float, clock: Callable[[], float], sleep: Callable[[float], None]) -> None:
    """Take an exclusive flock on ``fd``, polling until ``timeout``."""
    deadline = None
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            now = clock()
            if deadline is None:
                deadline = now + timeout
            elif now >= deadline:
                raise _timeout_error(lock_path, timeout) from None
            sleep(_POLL)


@contextmanager
def fallback_lock(lock_path: Path, timeout: float) -> Iterator[None]:
    """``.recraft-build/<lock name>.flock`` beside the lock, opened without following symlinks.

    For file systems that cannot lock a folder. A symlink at ``.recraft-build`` or at
    the lock file is refused with a :class:`~recraft_build.errors.LockError`.
    """
    from filelock import FileLock, Timeout

    from recraft_build.engine.safefs import Folder, NotFollowed

    folder = lock_path.parent
    flock_path = folder / FALLBACK_FOLDER / f"{lock_path.name}.flock"
    try:
        with Folder.open_root(folder) as top, top.walk([FALLBACK_FOLDER], create=True) as sub:
            # Create it here, refusing a symlink; filelock then opens a regular file.
            sub.touch(flock_path.name)
    except NotFollowed as exc:
        raise LockError(
            f"{lock_path}: {folder / exc.rel} is {exc.what}; recraft-build keeps its lock file there "
            "and does not follow it (remove it)"
        ) from exc
    except OSError as exc:
        raise LockError(
            f"{lock_path}: cannot open the lock file {flock_path}: {exc.strerror or exc} "
            "(a symlink there is refused; remove it)"
        ) from exc
    try:
        with FileLock(str(flock_path)).acquire(timeout=timeout):
            yield
    except Timeout as exc:
        raise _timeout_error(lock_path, timeout) from exc
