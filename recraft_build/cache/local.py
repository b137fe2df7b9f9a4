"""The content-addressed store: blobs by sha256 and action records, on diskcache.

A **blob** is the bytes of one picture, stored under its sha256 (lowercase hex). A
**record** is a small JSON object stored under an action key (from ``keys``): what an
action produced, e.g. ``{"candidates": [{"sha256": ..., "media_type": ..., "size":
...}], "credits": 1, "image_ids": [...]}``. The store does not interpret records, with
one exception, the **reference convention** :meth:`Store.gc` relies on
(:func:`recraft_build.cache.base.referenced_digests`):

    A record references a blob by holding its digest as a string value under a key
    named ``"sha256"``, at any depth (inside nested objects and lists). A list of
    strings under ``"sha256"`` references each of them.

The store implements :class:`recraft_build.cache.base.CacheStore`; records are kept in
the checksummed framing of :func:`recraft_build.cache.codec.encode_local_record`.

Guarantees:

* ``put_blob`` returns only after the bytes are in the store (written and indexed;
  not fsynced, so a power cut may lose the newest entries, never corrupt old ones).
* Every read re-hashes: a blob whose bytes do not match its digest, or whose file has
  gone, is reported through ``warn``, dropped, and returned as a miss (``None``). A
  record carries its own checksum and is treated the same way. The store never
  crashes on, and never returns, a damaged entry.
* Two processes (two builds) may use one folder at once: diskcache keeps its index in
  SQLite (WAL mode) and writes each value file completely before indexing it.
  :meth:`Store.key_lock` gives a per-key exclusive lock across threads and processes,
  so two builds that need the same picture pay for it once.
* Eviction is off unless ``size_limit`` (bytes) is given; then the least recently
  used entries (blobs or records) go first. diskcache evicts in batches of up to ten
  entries when a write takes the store over the limit, so a limit only a few pictures
  wide can evict the entry just written: callers keep the bytes they hold rather
  than reading back what they put. A record whose blobs were evicted is still
  returned; callers check the blobs (:meth:`Store.has_blob`).
* diskcache, sqlite and file-system failures become :class:`~recraft_build.errors.StoreError`
  whose message names the folder and how to choose another.

On-disk layout of ``directory``: ``store/`` is diskcache's (``cache.db`` plus value
files, nothing else may be put there); ``locks/`` holds the empty lock files of
:meth:`Store.key_lock`, which are never deleted (deleting a lock file another process
is waiting on would break the exclusion); ``roots/`` holds the gc roots
(:mod:`recraft_build.cache.roots`).
"""

from __future__ import annotations

import hashlib
import os
import re
import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import diskcache
import filelock

from recraft_build.cache.base import GcResult, StoreInfo, VerifyResult, referenced_digests
from recraft_build.cache.codec import decode_local_record, encode_local_record
from recraft_build.cache.roots import Root, RootRegistry
from recraft_build.errors import StoreError

__all__ = [
    "GcResult",
    "Store",
    "StoreInfo",
    "VerifyResult",
    "default_cache_dir",
    "referenced_digests",
]

#: Environment variable naming the cache folder.
CACHE_ENV = "RECRAFT_BUILD_CACHE"

# Key prefixes inside the one diskcache: blobs and records share it so that one
# size limit and one LRU order cover both.
_BLOB = "blob:"
_RECORD = "record:"

_DIGEST_RE = re.compile(r"[0-9a-f]{64}")

# Value files that no index row names are debris of a process killed mid-write. They
# are only removed by gc once older than this, so a write in flight (file written,
# row not yet inserted) in another process is never touched.
_ORPHAN_AGE_SECONDS = 3600.0

_HINT = (
    f"check the folder's permissions and free space, or use another cache folder "
    f"with --cache-dir or {CACHE_ENV}"
)


def default_cache_dir(env: Mapping[str, str]) -> Path:
    """The cache folder when ``--cache-dir`` is not given.

    ``$RECRAFT_BUILD_CACHE`` (``~`` expanded), else ``$XDG_CACHE_HOME/recraft-build``
    (ignored when empty or relative, as the XDG spec says), else
    ``~/.cache/recraft-build`` with ``~`` taken from ``$HOME`` when set.
    """
    own = env.get(CACHE_ENV, "")
    if own:
        return _expand_home(own, env)
    xdg = env.get("XDG_CACHE_HOME", "")
    if xdg and Path(xdg).is_absolute():
        return Path(xdg) / "recraft-build"
    home = env.get("HOME") or str(Path.home())
    return Path(home) / ".cache" / "recraft-build"


def _expand_home(path: str, env: Mapping[str, str]) -> Path:
    if path == "~" or path.startswith("~/"):
        home = env.get("HOME") or str(Path.home())
        return Path(home + path[1:])
    return Path(path).expanduser()


class Store:
    """Blobs and action records in ``directory`` (see the module docstring).

    ``size_limit``: bytes; None (the default) turns eviction off. ``warn`` receives
    one line per damaged entry found (the library never prints). Thread-safe: one
    Store may be shared by the executor's worker threads. Use as a context manager,
    or call :meth:`close`.
    """

    def __init__(
        self,
        directory: Path,
        *,
        size_limit: int | None = None,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        if size_limit is not None and size_limit <= 0:
            raise ValueError(f"size_limit must be a positive number of bytes, not {size_limit}")
        self.directory = Path(directory)
        self.size_limit = size_limit
        self._warn = warn or (lambda message: None)
        self._locks_dir = self.directory / "locks"
        self._roots = RootRegistry(self.directory)
        # Per-key thread locks (with a use count, so the dict does not grow without
        # bound): a file lock excludes processes, this excludes threads of ours.
        self._thread_locks: dict[str, list[Any]] = {}
        self._thread_locks_guard = threading.Lock()
        # One writer thread at a time: SQLite makes a second writer of the same process
        # wait in its busy handler, which sleeps in whole milliseconds (most of a cold
        # build's time went there). Other processes are still excluded by SQLite.
        # Reentrant: a thread in batch() holds it while its puts take it again.
        self._write_mutex = threading.RLock()
        settings: dict[str, Any] = {"eviction_policy": "none"}
        if size_limit is not None:
            settings = {"eviction_policy": "least-recently-used", "size_limit": size_limit}
        with self._guard("open"):
            self.directory.mkdir(parents=True, exist_ok=True)
            self._cache = diskcache.Cache(str(self.directory / "store"), **settings)

    # -- blobs ---------------------------------------------------------------------

    def put_blob(self, data: bytes) -> str:
        """Store ``data``; return its sha256 (lowercase hex). Idempotent.

        When the digest is already present its stored bytes are compared with
        ``data``, and a damaged copy is replaced, so putting repairs.
        """
        data = bytes(data)
        digest = hashlib.sha256(data).hexdigest()
        key = _BLOB + digest
        with self._guard(f"store blob {digest[:12]} in"):
            if key in self._cache and self._stored_equals(key, data):
                return digest
            with self._write_mutex:
                added = self._cache.add(key, data)
            if not added:
                # Someone (another thread or process) added it between our check and
                # our add; make sure what they stored is right.
                if not self._stored_equals(key, data):
                    with self._write_mutex:
                        self._cache.set(key, data)
        return digest

    def get_blob(self, digest: str) -> bytes | None:
        """The bytes stored under ``digest``, re-hashed; None when missing or damaged.

        A damaged entry (bytes that do not hash to ``digest``, or a value file that
        has gone) is reported through ``warn`` and dropped. A string that is not a
        lowercase sha256 hex digest is simply a miss.
        """
        if not _DIGEST_RE.fullmatch(digest or ""):
            return None
        key = _BLOB + digest
        with self._guard(f"read blob {digest[:12]} from"):
            data = self._cache.get(key)
            if data is None:
                if key in self._cache:
                    # The row exists but its file could not be read.
                    self._drop(key, f"blob {digest} has lost its file")
                return None
            if hashlib.sha256(data).hexdigest() != digest:
                self._drop(key, f"blob {digest} is corrupt (its bytes do not match its digest)")
                return None
        return bytes(data)

    def has_blob(self, digest: str) -> bool:
        """Whether a blob is indexed under ``digest``. Cheap: does not read or hash it."""
        if not _DIGEST_RE.fullmatch(digest or ""):
            return False
        with self._guard("look up a blob in"):
            return (_BLOB + digest) in self._cache

    # -- records -------------------------------------------------------------------

    def put_record(self, key: str, record: Mapping[str, Any]) -> None:
        """Store ``record`` (JSON-serialisable; Mappings and tuples allowed) under ``key``.

        Replaces any record under the same key. Raises TypeError/ValueError for a
        record JSON cannot represent (a programming error, not a user's).
        """
        value = encode_local_record(record)
        with self._guard(f"store record {key[:24]} in"):
            with self._write_mutex:
                self._cache.set(_RECORD + key, value)

    def get_record(self, key: str) -> dict[str, Any] | None:
        """The record stored under ``key``, or None.

        The record is returned even when blobs it names are missing (callers check).
        A damaged record is reported through ``warn``, dropped, and is a miss.
        """
        with self._guard(f"read record {key[:24]} from"):
            value = self._cache.get(_RECORD + key)
            if value is None:
                if (_RECORD + key) in self._cache:
                    self._drop(_RECORD + key, f"record {key} has lost its file")
                return None
            record = decode_local_record(value)
            if record is None:
                self._drop(_RECORD + key, f"record {key} is corrupt")
            return record

    def has_record(self, key: str) -> bool:
        """Whether a record is indexed under ``key`` (not read, not checked)."""
        with self._guard("look up a record in"):
            return (_RECORD + key) in self._cache

    @contextmanager
    def batch(self) -> Iterator[None]:
        """The calling thread's puts inside the block are one SQLite transaction.

        One commit instead of one per index write (an asset's blobs and records), and
        all or none of them: a record put with its blobs is never indexed without them
        (a failure inside rolls the block back and raises). Value files of large blobs
        are still written before the transaction that indexes them commits, so a crash
        leaves at most value files no row names, which gc removes. Other threads' writes
        wait for the block (reads do not): keep it to the puts.
        """
        with self._guard("write to"), self._write_mutex, self._cache.transact():
            yield

    # -- locking -------------------------------------------------------------------

    @contextmanager
    def key_lock(self, key: str, *, timeout: float | None = None) -> Iterator[None]:
        """Hold an exclusive lock on ``key`` across threads and processes.

        Used around "look up, else make and store" so that two builds (or two
        threads) needing the same key make it once: the second finds the first's
        record when it gets the lock. Blocks until the lock is free, or raises
        StoreError after ``timeout`` seconds. Not reentrant: do not take the same key
        twice in one thread. Locks on different keys are independent.
        """
        digest = hashlib.sha256(key.encode("utf-8")).hexdigest()
        path = self._locks_dir / digest[:2] / f"{digest}.lock"
        deadline = None if timeout is None else time.monotonic() + timeout
        entry = self._thread_lock_enter(digest)
        try:
            thread_lock: threading.Lock = entry[0]
            if not thread_lock.acquire(timeout=-1 if timeout is None else max(0.0, timeout)):
                raise self._lock_timeout(key, timeout)
            try:
                with self._guard("create a lock file in"):
                    path.parent.mkdir(parents=True, exist_ok=True)
                remaining = -1.0 if deadline is None else max(0.0, deadline - time.monotonic())
                file_lock = filelock.FileLock(str(path), timeout=remaining)
                try:
                    file_lock.acquire()
                except filelock.Timeout as exc:
                    raise self._lock_timeout(key, timeout) from exc
                except OSError as exc:
                    raise self._error("lock a key in", exc) from exc
                try:
                    yield
                finally:
                    file_lock.release()
            finally:
                thread_lock.release()
        finally:
            self._thread_lock_exit(digest)

    def _thread_lock_enter(self, digest: str) -> list[Any]:
        with self._thread_locks_guard:
            entry = self._thread_locks.get(digest)
            if entry is None:
                entry = self._thread_locks[digest] = [threading.Lock(), 0]
            entry[1] += 1
            return entry

    def _thread_lock_exit(self, digest: str) -> None:
        with self._thread_locks_guard:
            entry = self._thread_locks[digest]
            entry[1] -= 1
            if entry[1] == 0:
                del self._thread_locks[digest]

    def _lock_timeout(self, key: str, timeout: float | None) -> StoreError:
        return StoreError(
            f"timed out after {timeout:g}s waiting for the cache lock on key {key[:24]} in "
            f"{self.directory}: another build is making the same picture "
            "(wait for it, or use another cache folder with --cache-dir)"
        )

    # -- maintenance ---------------------------------------------------------------

    def info(self) -> StoreInfo:
        """Counts and size of the store (walks the index, not the data)."""
        with self._guard("read"):
            blobs = records = 0
            for key in self._cache.iterkeys():
                if isinstance(key, str) and key.startswith(_BLOB):
                    blobs += 1
                elif isinstance(key, str) and key.startswith(_RECORD):
                    records += 1
            volume = self._cache.volume()
        return StoreInfo(self.directory, blobs, records, volume, self.size_limit)

    def gc(self, keep_keys: set[str], keep_digests: set[str], *, dry_run: bool = False) -> GcResult:
        """Remove every record whose key is not in ``keep_keys`` and every blob that is
        neither in ``keep_digests`` nor referenced by a kept record.

        Also removes value files left by a process killed mid-write (older than an
        hour). With ``dry_run`` nothing is removed (not even a damaged kept record):
        the result counts what would go. Do not run gc while a build writes to the
        same cache: a blob stored by that build but not yet referenced by a record
        would be removed (the build would then pay for it again on its next run; it
        never gets a wrong picture).
        """
        removed_blobs = removed_records = removed_bytes = 0
        kept_records = 0
        keep = set(keep_digests)
        with self._guard("collect garbage in"):
            blob_keys: list[str] = []
            record_keys: list[str] = []
            for key in self._cache.iterkeys():
                if not isinstance(key, str):
                    continue
                if key.startswith(_BLOB):
                    blob_keys.append(key)
                elif key.startswith(_RECORD):
                    record_keys.append(key)
            for rkey in record_keys:
                key = rkey[len(_RECORD):]
                if key in keep_keys:
                    if dry_run:
                        record = decode_local_record(self._cache.get(rkey))
                    else:
                        record = self.get_record(key)
                    if record is None:
                        continue  # missing or damaged: dropped (and warned) already
                    kept_records += 1
                    keep.update(referenced_digests(record))
                    continue
                size = self._remove(rkey, dry_run)
                if size is not None:
                    removed_records += 1
                    removed_bytes += size
            kept_blobs = 0
            for bkey in blob_keys:
                if bkey[len(_BLOB):] in keep:
                    kept_blobs += 1
                    continue
                size = self._remove(bkey, dry_run)
                if size is not None:
                    removed_blobs += 1
                    removed_bytes += size
            orphans, orphan_bytes = self._remove_orphan_files(dry_run=dry_run)
        return GcResult(
            blobs=removed_blobs,
            records=removed_records,
            bytes=removed_bytes + orphan_bytes,
            kept_blobs=kept_blobs,
            kept_records=kept_records,
            orphan_files=orphans,
            dry_run=dry_run,
        )

    def verify(self) -> VerifyResult:
        """Re-hash every blob and check every record; drop (and warn about) damaged ones."""
        corrupt: list[str] = []
        corrupt_records: list[str] = []
        checked = records_checked = 0
        with self._guard("verify"):
            keys = [k for k in self._cache.iterkeys() if isinstance(k, str)]
            for key in keys:
                if key.startswith(_BLOB):
                    digest = key[len(_BLOB):]
                    if key not in self._cache:
                        continue  # removed meanwhile (another process)
                    checked += 1
                    if self.get_blob(digest) is None:
                        corrupt.append(digest)
                elif key.startswith(_RECORD):
                    rkey = key[len(_RECORD):]
                    if key not in self._cache:
                        continue
                    records_checked += 1
                    if self.get_record(rkey) is None:
                        corrupt_records.append(rkey)
        return VerifyResult(checked, sorted(corrupt), records_checked, sorted(corrupt_records))

    # -- gc roots ------------------------------------------------------------------

    def register_root(self, lock_path: str | os.PathLike[str]) -> None:
        """Record ``lock_path`` as a gc root of this cache (see :mod:`recraft_build.cache.roots`).

        Idempotent and cheap when already recorded (one small read). Never raises: a
        cache folder that cannot take the root is a warning, because the build that
        calls this has already succeeded; ``cache gc`` then simply does not know the
        project unless its lock is named.
        """
        try:
            self._roots.register(lock_path)
        except StoreError as exc:
            self._warn(f"{exc}; cache gc will not keep this project's pictures unless its lock is named")

    def roots(self) -> list[Root]:
        """The registered gc roots (StoreError when one cannot be read)."""
        return self._roots.list()

    def remove_root(self, root: Root) -> None:
        """Forget a gc root (its lock file stays as it is)."""
        self._roots.remove(root)

    def close(self) -> None:
        """Close the index. Safe to call twice.

        diskcache opens one SQLite connection per thread; this closes the calling
        thread's, and worker threads' connections close when those threads end.
        """
        with self._guard("close"):
            self._cache.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- helpers -------------------------------------------------------------------

    def _stored_equals(self, key: str, data: bytes) -> bool:
        stored = self._cache.get(key)
        return stored is not None and bytes(stored) == data

    def _drop(self, key: str, what: str) -> None:
        with self._write_mutex:
            self._cache.delete(key)
        self._warn(
            f"cache {self.directory}: {what}; dropped it, it will be restored or made again"
        )

    def _remove(self, key: str, dry_run: bool) -> int | None:
        """Delete the entry (only count it with ``dry_run``); its size in bytes, or None
        when it was not there (removed meanwhile by another process)."""
        size = self._entry_size(key)
        if dry_run:
            return size if key in self._cache else None
        with self._write_mutex:
            deleted = self._cache.delete(key)
        return size if deleted else None

    def _entry_size(self, key: str) -> int:
        """Bytes of the entry's value, without reading it (0 when it has gone)."""
        handle = self._cache.get(key, read=True)
        if handle is None:
            return 0
        if isinstance(handle, (bytes, str)):
            return len(handle)  # small values live in the database, not in a file
        try:
            return os.fstat(handle.fileno()).st_size
        finally:
            handle.close()

    def _remove_orphan_files(self, *, dry_run: bool = False) -> tuple[int, int]:
        root = Path(self._cache.directory)
        known: set[str] = set()
        for key in self._cache.iterkeys():
            handle = self._cache.get(key, read=True)
            if handle is None or isinstance(handle, (bytes, str)):
                continue  # gone, or held in the database rather than a file
            known.add(os.path.normpath(handle.name))
            handle.close()
        now = time.time()
        count = size = 0
        for dirpath, _dirs, files in os.walk(root):
            for filename in files:
                if not filename.endswith(".val"):
                    continue
                path = os.path.normpath(os.path.join(dirpath, filename))
                if path in known:
                    continue
                try:
                    st = os.stat(path)
                    if now - st.st_mtime < _ORPHAN_AGE_SECONDS:
                        continue
                    if not dry_run:
                        os.remove(path)
                except OSError:
                    continue  # gone meanwhile, or not ours to remove: leave it
                count += 1
                size += st.st_size
        return count, size

    def _error(self, action: str, exc: BaseException) -> StoreError:
        detail = str(exc) or type(exc).__name__
        hint = _HINT
        if isinstance(exc, diskcache.Timeout):
            detail = "the cache database stayed locked by another process for too long"
        elif isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, sqlite3.OperationalError):
            # "file is not a database", "database disk image is malformed"...
            detail = f"the cache database is damaged ({detail})"
            hint = (
                "move the folder aside and build again, which remakes (and may pay again for) "
                "the pictures not already in an output folder; or use another cache "
                f"folder with --cache-dir or {CACHE_ENV}"
            )
        return StoreError(f"cannot {action} the cache folder {self.directory}: {detail} ({hint})")

    @contextmanager
    def _guard(self, action: str) -> Iterator[None]:
        """Convert diskcache, sqlite and file-system failures into StoreError."""
        try:
            yield
        except StoreError:
            raise
        except (diskcache.Timeout, sqlite3.Error, OSError) as exc:
            raise self._error(action, exc) from exc
