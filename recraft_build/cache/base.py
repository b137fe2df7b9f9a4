"""What the rest of the package needs of a cache store: the Protocols, and their data.

* :class:`BuildStore`: what a build uses (the executor, the planner's record and blob
  lookups in ``api``, the gallery): blobs by sha256, action records by key, a per-key
  lock, ``close``. Implemented by the local store (:class:`recraft_build.cache.local.Store`)
  and by :class:`recraft_build.cache.tiered.TieredStore` (local in front of a remote).
* :class:`CacheStore`: a :class:`BuildStore` plus what the ``cache`` commands use
  (``info``, ``gc``, ``verify``) and the gc roots (``register_root``, ``roots``,
  ``remove_root``). What ``api.open_store`` returns.

The **reference convention** (:func:`referenced_digests`) is part of the contract: a
record references a blob by holding its digest as a string value under a key named
``"sha256"``, at any depth (inside nested objects and lists); a list of strings under
``"sha256"`` references each of them. ``gc`` keeps what a kept record references, and
the tiered store fetches (and uploads) a record's blobs by it.
"""

from __future__ import annotations

import os
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Protocol

if TYPE_CHECKING:
    from recraft_build.cache.roots import Root

__all__ = [
    "BuildStore",
    "CacheStore",
    "Closeable",
    "GcResult",
    "StoreInfo",
    "VerifyResult",
    "referenced_digests",
]


def referenced_digests(record: Any) -> set[str]:
    """Every blob digest ``record`` references (see the module's reference convention)."""
    found: set[str] = set()
    stack = [record]
    while stack:
        item = stack.pop()
        if isinstance(item, Mapping):
            for key, value in item.items():
                if key == "sha256":
                    if isinstance(value, str):
                        found.add(value)
                        continue
                    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
                        found.update(value)
                        continue
                stack.append(value)
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return found


@dataclass(frozen=True)
class StoreInfo:
    """What ``cache info`` shows.

    ``bytes`` is the store's size on disk as diskcache counts it (database pages plus
    value files): the figure ``size_limit`` is compared with.
    """

    directory: Path
    blobs: int
    records: int
    bytes: int
    size_limit: int | None


@dataclass(frozen=True)
class GcResult:
    """What :meth:`CacheStore.gc` removed (``blobs``, ``records``, ``bytes`` of blob and
    record data) and what it kept. ``orphan_files`` counts value files left behind by
    a process killed mid-write (their bytes are included in ``bytes``). With
    ``dry_run`` nothing was removed: the figures say what would have been."""

    blobs: int
    records: int
    bytes: int
    kept_blobs: int
    kept_records: int
    orphan_files: int = 0
    dry_run: bool = False


@dataclass(frozen=True)
class VerifyResult:
    """What :meth:`CacheStore.verify` found: ``checked`` blobs re-hashed, ``corrupt`` the
    digests of those that did not match or had lost their file (all dropped), sorted;
    the same for records."""

    checked: int
    corrupt: list[str] = field(default_factory=list)
    records_checked: int = 0
    corrupt_records: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.corrupt and not self.corrupt_records


class Closeable(Protocol):
    """Anything with a ``close()``: an ``httpx.Client``, a boto3 client."""

    def close(self) -> None: ...


class BuildStore(Protocol):
    """The content-addressed store as a build uses it. Thread-safe.

    * ``put_blob(data)`` stores bytes and returns their sha256 (lowercase hex).
    * ``get_blob(digest)`` returns bytes that hash to ``digest``, or None (missing,
      damaged, or not a digest); never wrong bytes.
    * ``has_blob(digest)``: whether the store has (or says it has) the blob; a later
      ``get_blob`` may still miss (a damaged entry, a remote that lied).
    * ``put_record(key, record)`` stores a JSON-able mapping; ``get_record(key)``
      returns it (as a dict) or None.
    * ``key_lock(key)`` is an exclusive lock across threads and processes, held around
      "look up, else make and store" so a picture is paid for once.
    * ``batch()`` is a context manager: the calling thread's ``put_blob`` and
      ``put_record`` calls inside it may be made durable together (all or none), so
      a record put with the blobs it names is never visible without them. It may also
      do nothing. Keep it short: other writers may wait for it.
    * ``close()`` releases the store (and finishes background work). Safe twice.
    """

    def put_blob(self, data: bytes) -> str: ...

    def get_blob(self, digest: str) -> bytes | None: ...

    def has_blob(self, digest: str) -> bool: ...

    def put_record(self, key: str, record: Mapping[str, Any]) -> None: ...

    def get_record(self, key: str) -> dict[str, Any] | None: ...

    def key_lock(self, key: str, *, timeout: float | None = None) -> AbstractContextManager[None]: ...

    def batch(self) -> AbstractContextManager[None]: ...

    def close(self) -> None: ...


class CacheStore(BuildStore, Protocol):
    """A :class:`BuildStore` with the maintenance the ``cache`` commands need.

    * ``has_record(key)``: whether a record is indexed (not read, not checked).
    * ``info()``, ``verify()``: counts and sizes; re-hash everything, dropping damage.
    * ``gc(keep_keys, keep_digests, dry_run=...)``: remove every record not kept and
      every blob neither kept nor referenced by a kept record (see
      :func:`referenced_digests`); with ``dry_run`` only count.
    * ``register_root(lock_path)``: record a lock file whose pins ``cache gc`` keeps
      (see :mod:`recraft_build.cache.roots`); ``roots()`` lists them and
      ``remove_root(root)`` forgets one.
    """

    def has_record(self, key: str) -> bool: ...

    def info(self) -> StoreInfo: ...

    def gc(self, keep_keys: set[str], keep_digests: set[str], *, dry_run: bool = False) -> GcResult: ...

    def verify(self) -> VerifyResult: ...

    def register_root(self, lock_path: str | os.PathLike[str]) -> None: ...

    def roots(self) -> list["Root"]: ...

    def remove_root(self, root: "Root") -> None: ...
