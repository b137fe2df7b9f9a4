"""A folder as the shared remote cache: a shared drive, or a folder in the repository.

Selected by a ``--remote-cache`` (or ``RECRAFT_BUILD_REMOTE_CACHE``) that is a
``file:///absolute/path`` URL or a plain path (relative paths are taken from the
current folder). Same interface and failure model as the HTTP and S3 remotes
(:mod:`recraft_build.cache.remote_base`), so :class:`~recraft_build.cache.tiered.TieredStore`
uses it without knowing which it has.

Layout
------
The names of the HTTP protocol, so a folder and an nginx mirror look alike (a folder
served by nginx *is* an HTTP cache, and copying one's files fills the other):
``cas/<sha256>`` holds a blob's bytes (checked against the digest when read) and
``ac/<name>`` an action record in our JSON envelope. In a Git repository, track
``cas/`` with Git LFS (``git lfs track 'art-cache/cas/*'``); records are small JSON
and may stay in Git. A clone without LFS has pointer files instead of pictures: they
are recognised, and one warning says to run ``git lfs pull``.

Guarantees
----------
* **Atomic writes**: a file is written under a temp name (``.tmp-...``, beside its
  final name, created with the usual permissions so other users of a shared drive
  can read it), flushed to disk, then renamed over the final name; a reader sees the
  old file or the new one, never a part.
* **Verified reads**: as for every remote, a blob is returned only when its bytes hash
  to its digest; a record only when it is our envelope for the key asked.
* **Paths stay inside the folder**: every path is resolved (symbolic links followed)
  and refused when it leads out of the folder, with one warning; a write replaces a
  link rather than writing through it.
* The folder must exist: a missing one (a drive not mounted) makes the remote
  unavailable with one warning, as a server that is down does; ``cas/`` and ``ac/``
  are created when first written.

Failure model: a folder that cannot be read (permissions) is a miss with one warning;
one that cannot be written (permissions, a full or read-only disk) turns uploads off
with one warning; other I/O errors (a flaky network drive) are retried by the policy,
then the remote turns unavailable for the rest of the build.
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
import time
from pathlib import Path
from typing import Callable
from urllib.parse import unquote, urlsplit

from recraft_build.cache.policy import RemotePolicy
from recraft_build.cache.remote_base import PutResult, RemoteBase, Reply, RetryLater
from recraft_build.errors import UsageError

__all__ = ["FolderCache", "folder_path", "is_folder_location"]

# What Git LFS leaves in a clone made without it (git-lfs spec v1).
_LFS_POINTER = b"version https://git-lfs.github.com/spec/v1"
# Errors after which writing will keep failing: stop uploading for this build.
_WRITE_STOPPERS = frozenset({errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EFBIG})

# Reply codes of this transport (the status alone cannot tell them apart).
_OUTSIDE = "outside"  # a symbolic link leads out of the folder
_DENIED = "denied"  # permission denied
_STOPPED = "stopped"  # disk full, read-only...: see _WRITE_STOPPERS
_NOT_FILE = "not-a-file"  # a folder where a file should be, or the reverse
_LFS = "lfs-pointer"


def is_folder_location(location: str) -> bool:
    """Whether a ``--remote-cache`` value names a folder: a ``file:`` URL, or anything
    without a ``scheme://`` (a plain path)."""
    text = location.strip()
    return text.lower().startswith("file:") or "://" not in text


def folder_path(location: str) -> Path:
    """The absolute folder a ``file:`` URL or a plain path names (not resolved).

    :class:`UsageError` for a ``file:`` URL naming another machine, with a query, or
    without an absolute path, and for an empty value.
    """
    text = location.strip()
    if not text:
        raise UsageError("--remote-cache is empty (give an http(s):// URL, s3://BUCKET/PREFIX or a folder)")
    if not text.lower().startswith("file:"):
        return Path(os.path.abspath(os.path.expanduser(text)))
    parts = urlsplit(text)
    if parts.netloc not in ("", "localhost"):
        raise UsageError(
            f"--remote-cache {text!r} names a folder on another machine ({parts.netloc}); "
            "mount it here and give the local path (file:///mnt/share/cache)"
        )
    if parts.query or parts.fragment:
        raise UsageError(f"--remote-cache {text!r}: a file: URL takes no ?query or #fragment")
    path = unquote(parts.path)
    if not path.startswith("/"):
        raise UsageError(
            f"--remote-cache {text!r} has no absolute path (file:///absolute/path, with three slashes)"
        )
    return Path(path)


class _Outside(Exception):
    """A path that resolves to somewhere out of the folder."""


def _inside(path: str, root: str) -> bool:
    return path == root or os.path.commonpath([path, root]) == root


class FolderCache(RemoteBase):
    """The remote cache in a folder: ``location`` is ``file:///path`` or a path.

    ``mode`` is ``"read"`` (never writes) or ``"read-write"``; ``policy`` gives retries
    (for I/O errors of a network drive) and ``head_before_put``; ``sleep`` waits
    between retries; ``warn`` receives one-line warnings. The blob, record and state
    methods are :class:`~recraft_build.cache.remote_base.RemoteBase`'s; this class is
    the file-system transport under them. Thread-safe; no method raises for a
    problem of the folder.
    """

    _copy = "the folder's"

    def __init__(
        self,
        location: str,
        *,
        mode: str = "read-write",
        policy: RemotePolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        warn: Callable[[str], None] = lambda message: None,
        clock: Callable[[], float] = time.time,
    ):
        super().__init__(mode=mode, policy=policy, sleep=sleep, warn=warn, clock=clock)
        self._root = folder_path(location)
        self.url = str(self._root)
        self._where = f"folder {self._root}"

    def _describe(self, path: str) -> str:
        return os.path.join(self._root, path)

    # ----- paths

    def _real_root(self) -> str | None:
        """The folder with links resolved; None (the remote turned unavailable) when
        it is missing or not a folder."""
        real = os.path.realpath(self._root)
        try:
            mode = os.stat(real).st_mode
        except FileNotFoundError:
            self._go_unavailable("the folder does not exist: create it, mount the drive, or fix --remote-cache")
            return None
        if not stat.S_ISDIR(mode):
            self._go_unavailable("it is not a folder: fix --remote-cache")
            return None
        return real

    def _place(self, root: str, path: str) -> tuple[str, str]:
        """``(folder, file)`` of ``path`` (``cas/<hex>`` or ``ac/<hex>``) under ``root``:
        the sub-folder with links resolved, and the file's name in it. :class:`_Outside`
        when the sub-folder leads out of ``root``."""
        sub, _, name = path.partition("/")
        folder = os.path.realpath(os.path.join(root, sub))
        if not _inside(folder, root):
            raise _Outside(sub)
        return folder, os.path.join(folder, name)

    def _readable(self, root: str, path: str) -> str:
        """The real path of the file at ``path``; :class:`_Outside` when a link leads out."""
        _, file = self._place(root, path)
        real = os.path.realpath(file)
        if not _inside(real, root):
            raise _Outside(path)
        return real

    # ----- transport

    def _send(self, method: str, path: str, *, what: str, body: bytes | None = None) -> Reply | None:
        """One file-system operation with retries; None when the folder is (or just
        became) unusable. ``GET`` reads, ``HEAD`` checks, ``PUT`` writes atomically."""

        def attempt() -> Reply | RetryLater | None:
            self._count_traffic(requests=1, sent=len(body or b""))
            root = self._real_root()
            if root is None:
                return None
            try:
                if method == "GET":
                    with open(self._readable(root, path), "rb") as f:
                        data = f.read()
                    self._count_traffic(received=len(data))
                    if data.startswith(_LFS_POINTER) and len(data) < 1024:
                        return Reply(409, _LFS)
                    return Reply(200, body=data)
                if method == "HEAD":
                    return Reply(200 if os.path.isfile(self._readable(root, path)) else 404)
                assert body is not None
                self._write(root, path, body)
                return Reply(200)
            except _Outside as exc:
                return Reply(403, _OUTSIDE, str(exc).encode())
            except FileNotFoundError:
                return Reply(404)
            except PermissionError:
                return Reply(403, _DENIED)
            except (IsADirectoryError, NotADirectoryError, FileExistsError):
                # A folder where a file should be, or a file where a folder should be.
                return Reply(409, _NOT_FILE)
            except OSError as exc:
                if exc.errno in _WRITE_STOPPERS:
                    return Reply(507, _STOPPED, (exc.strerror or str(exc)).encode())
                return RetryLater(f"{type(exc).__name__} on {what}: {exc}")

        return self._retrying(attempt)

    def _write(self, root: str, path: str, body: bytes) -> None:
        """Write ``body`` to ``path`` atomically: a temp file beside it, then a rename
        (which replaces a link at the final name instead of following it)."""
        folder, file = self._place(root, path)
        os.makedirs(folder, exist_ok=True)
        tmp = os.path.join(folder, f".tmp-{os.path.basename(file)}-{secrets.token_hex(6)}")
        # 0o666 before the umask, as any tool's new file: a shared drive's other users read it.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(body)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, file)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise

    def _read_status(self, reply: Reply, what: str) -> None:
        if reply.status == 404:
            return  # a plain miss
        if reply.code == _OUTSIDE:
            self._warn_once(
                f"outside-{reply.body.decode()}",
                f"remote cache {self.url}: {reply.body.decode()} leads out of the folder "
                f"through a symbolic link (on {what}); ignored it (remove the link)",
            )
        elif reply.code == _LFS:
            self._warn_once(
                "lfs",
                f"remote cache {self.url} holds Git LFS pointer files, not the pictures "
                f"(on {what}); treated as misses (run `git lfs pull`, or install git-lfs)",
            )
        elif reply.code == _DENIED:
            self._warn_once(
                "read-denied",
                f"remote cache {self.url}: permission denied on {what}; treated as a miss "
                "(check the folder's permissions)",
            )
        else:
            self._warn_once(
                f"read-{reply.code}",
                f"remote cache {self.url}: {reply.code} on {what}; treated as a miss",
            )

    def _put_status(self, reply: Reply, what: str, *, record: bool) -> PutResult:
        if reply.status == 200:
            return PutResult.UPLOADED
        if reply.code in (_DENIED, _STOPPED, _OUTSIDE, _NOT_FILE):
            # Each of these will fail every later upload the same way: one warning.
            reason = {
                _DENIED: "permission denied",
                _OUTSIDE: f"{reply.body.decode()} leads out of the folder through a symbolic link",
                _NOT_FILE: "a file stands where a folder should be, or the reverse",
            }.get(reply.code, reply.body.decode())
            self._uploads_off()
            self._warn_once(
                "put-refused",
                f"remote cache {self.url} cannot be written ({reason}, on {what}); uploads "
                "are off for this build (use --remote-cache-mode read on machines that only "
                "read, or fix the folder)",
            )
            return PutResult.FAILED
        self.warn(
            f"remote cache {self.url} refused an upload ({reply.code or reply.status} on "
            f"{what}); the local copy is kept"
        )
        return PutResult.FAILED
