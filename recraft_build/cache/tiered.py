"""The local store in front of a remote cache (:class:`TieredStore`).

Works with any remote built on :class:`~recraft_build.cache.remote_base.RemoteBase`
(HTTP, S3, a folder) and implements :class:`~recraft_build.cache.base.CacheStore`, so
the engine cannot tell it from the local store alone.
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from recraft_build.cache.base import CacheStore, Closeable, GcResult, StoreInfo, VerifyResult
from recraft_build.cache.codec import canonical_json, encode_ac_entry, read_json
from recraft_build.cache.remote_base import HEX64, PutResult, RemoteBase, referenced_blobs
from recraft_build.cache.roots import Root

__all__ = ["TieredStore", "UploadSummary"]


@dataclass(frozen=True)
class UploadSummary:
    """What :meth:`TieredStore.flush` reports, counted since the store was made.

    ``bytes`` is what was actually sent (blobs and records); the ``*_downloaded`` fields
    count remote hits copied into the local store; ``present`` counts blobs the
    remote already had; ``failed`` counts blobs and records that were not uploaded
    because of an error (each was warned about, or follows one that was); ``skipped``
    counts uploads not tried because uploads were off or the remote unavailable.
    """

    blobs_uploaded: int = 0
    records_uploaded: int = 0
    present: int = 0
    failed: int = 0
    skipped: int = 0
    bytes: int = 0
    blobs_downloaded: int = 0
    records_downloaded: int = 0
    bytes_downloaded: int = 0

    @property
    def uploaded(self) -> int:
        return self.blobs_uploaded + self.records_uploaded


class TieredStore:
    """The local store in front of a remote cache, with the local store's API.

    * Lookups go local, then remote. A remote blob is verified (by the remote's
      :class:`~recraft_build.cache.remote_base.RemoteBase`) and copied into the local store. A remote record is used only when every blob it
      references is (or can be made) local: they are fetched, verified and stored first,
      so a record in the local store never points at a missing blob.
    * ``put_blob``/``put_record`` store locally first (their return and errors are the
      local store's), then upload in the background. A record's upload waits for the
      uploads of the blobs it references, and uploads (from the local copy) those that
      were not put in this build, so a remote never holds a record whose blobs it lacks
      because of us; a failed blob upload holds its record back. A blob is uploaded at
      most once per store, however many threads put it.
    * :meth:`flush` waits for every upload and returns an :class:`UploadSummary`. Upload
      failures are warnings, never exceptions.
    * ``info``/``gc``/``verify``/``key_lock`` and the gc roots are the local store's.
    * :meth:`close` flushes, stops the upload threads, closes the local store, and then
      closes ``client`` when one was given: the HTTP or S3 client the remote talks
      through, which the store then owns (the caller must not close it).
    """

    def __init__(
        self,
        local: CacheStore,
        remote: RemoteBase,
        *,
        client: Closeable | None = None,
        upload_threads: int = 4,
    ):
        self.local = local
        self.remote = remote
        self._client = client
        # Two pools so that a record job waiting for blob jobs can never starve them:
        # blob jobs never wait on anything.
        self._blob_pool = ThreadPoolExecutor(
            max(1, upload_threads), thread_name_prefix="recraft-upload-blob"
        )
        self._record_pool = ThreadPoolExecutor(
            max(1, upload_threads), thread_name_prefix="recraft-upload-record"
        )
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._pending = 0
        self._blob_jobs: dict[str, Future[PutResult]] = {}
        self._record_jobs: dict[str, Future[PutResult]] = {}
        self._counts = {name: 0 for name in UploadSummary.__dataclass_fields__}
        self._closed = False
        # Parallel downloads of a record's blobs (and :meth:`warm`), made on first need.
        self._fetch_threads = max(8, upload_threads)
        self._fetch_pool: ThreadPoolExecutor | None = None
        self._remote_has: set[str] = set()  # blobs the remote said it has (see warm)

    # ----- reads

    def get_blob(self, digest: str) -> bytes | None:
        """Local bytes, else verified remote bytes (then stored locally), else None."""
        data = self.local.get_blob(digest)
        if data is not None or not HEX64.fullmatch(digest or ""):
            return data
        data = self.remote.get_blob(digest)
        if data is not None:
            self.local.put_blob(data)
            self._count("blobs_downloaded")
            self._count("bytes_downloaded", len(data))
        return data

    def has_blob(self, digest: str) -> bool:
        """Local, or the remote says it has it (a later get may still miss if it lies)."""
        if self.local.has_blob(digest):
            return True
        if digest in self._remote_has:
            return True
        return bool(HEX64.fullmatch(digest or "")) and self.remote.has_blob(digest)

    def known_blob(self, digest: str) -> bool:
        """Local, or the remote said so in this build: :meth:`has_blob` without asking."""
        return digest in self._remote_has or self.local.has_blob(digest)

    def warm(self, digests: "Iterable[str]", *, fetch: "Iterable[str]" = ()) -> None:
        """Ask the remote about the ``digests`` not held locally, and download the
        ``fetch`` ones (verified, into the local store, as :meth:`get_blob` does), all at
        once over the kept-alive connections: a plan about to ask :meth:`has_blob` of
        each, and a restore about to read them (a fresh clone's), then ask no one in turn.

        Only positive answers are remembered (a blob uploaded meanwhile is still found);
        a blob that cannot be fetched is a miss, as in :meth:`get_blob`.
        """
        fetched = [d for d in dict.fromkeys(fetch) if HEX64.fullmatch(d or "") and not self.local.has_blob(d)]
        wanted = [d for d in dict.fromkeys(digests) if HEX64.fullmatch(d or "") and d not in self._remote_has]
        skip = set(fetched)
        wanted = [d for d in wanted if d not in skip and not self.local.has_blob(d)]
        if not wanted and not fetched:
            return
        with self._lock:
            if self._fetch_pool is None:
                self._fetch_pool = ThreadPoolExecutor(self._fetch_threads, thread_name_prefix="recraft-fetch")
            pool = self._fetch_pool
        jobs = [(self.get_blob, d) for d in fetched] + [(self.remote.has_blob, d) for d in wanted]
        answers = list(pool.map(lambda job: job[0](job[1]), jobs))
        for digest, present in zip(wanted, answers[len(fetched):]):
            if present:
                self._remote_has.add(digest)

    def has_record(self, key: str) -> bool:
        """Local (the store's index), or the remote says it has one (HEAD)."""
        return self.local.has_record(key) or self.remote.has_record(key)

    def get_record(self, key: str) -> dict[str, Any] | None:
        """Local record, else a remote one whose blobs are all fetched locally, else None."""
        record = self.local.get_record(key)
        if record is not None:
            return record
        record = self.remote.get_record(key)
        if record is None:
            return None
        digests = referenced_blobs(record)
        bad = [d for d in digests if not HEX64.fullmatch(d)]
        if bad:
            self.remote.warn(
                f"remote cache {self.remote.url} has an action record for key {key[:12]} "
                f"naming a malformed blob digest ({bad[0][:20]!r}); ignored it"
            )
            return None
        missing = [d for d in digests if not self.local.has_blob(d)]
        for digest, data in zip(missing, self._fetch_blobs(missing)):
            if data is None:
                if self.remote.available:
                    self.remote.warn(
                        f"remote cache {self.remote.url} has an action record for key "
                        f"{key[:12]} but not its blob {digest[:12]} (or only a corrupt "
                        "copy); ignored the record"
                    )
                return None
            self.local.put_blob(data)
            self._count("blobs_downloaded")
            self._count("bytes_downloaded", len(data))
        self.local.put_record(key, record)
        self._count("records_downloaded")
        return record

    def _fetch_blobs(self, digests: list[str]) -> list[bytes | None]:
        """The remote's verified bytes of each digest (None for a miss), fetched at once
        over the kept-alive connections when there are several (the candidates of an
        ``n: 4`` asset, the files of a favicon set): one round trip, not one per blob."""
        if len(digests) < 2:
            return [self.remote.get_blob(d) for d in digests]
        with self._lock:
            if self._fetch_pool is None:
                self._fetch_pool = ThreadPoolExecutor(self._fetch_threads, thread_name_prefix="recraft-fetch")
            pool = self._fetch_pool
        return list(pool.map(self.remote.get_blob, digests))

    # ----- writes

    def put_blob(self, data: bytes) -> str:
        """Store locally (returns the digest), then upload in the background."""
        digest = self.local.put_blob(data)
        if self.remote.can_write:
            self._blob_job(digest)
        return digest

    def put_record(self, key: str, record: Mapping[str, Any]) -> None:
        """Store locally, then upload in the background after the blobs it references."""
        self.local.put_record(key, record)
        if not self.remote.can_write:
            return
        # A JSON round trip: a private copy the caller cannot change under the upload.
        snapshot = read_json(canonical_json(record))
        digests = [d for d in referenced_blobs(snapshot) if HEX64.fullmatch(d)]
        # Blob jobs are made now (in the caller's thread) so that the record job only
        # ever waits; a digest already uploading is joined, not sent twice.
        blob_jobs = [self._blob_job(d) for d in digests]
        with self._lock:
            previous = self._record_jobs.get(key)
            self._pending += 1
            future = self._record_pool.submit(
                self._upload_record, key, snapshot, digests, blob_jobs, previous
            )
            self._record_jobs[key] = future
        future.add_done_callback(self._job_done)

    def _blob_job(self, digest: str) -> Future[PutResult]:
        # One job per digest for the life of the store: a second put joins the first,
        # and a failed upload is not retried (what refused it once will refuse again).
        with self._lock:
            job = self._blob_jobs.get(digest)
            if job is not None:
                return job
            self._pending += 1
            job = self._blob_pool.submit(self._upload_blob, digest)
            self._blob_jobs[digest] = job
        job.add_done_callback(self._job_done)
        return job

    def _job_done(self, _future: Future[PutResult]) -> None:
        with self._idle:
            self._pending -= 1
            if self._pending == 0:
                self._idle.notify_all()

    def _count(self, field: str, amount: int = 1) -> None:
        with self._lock:
            self._counts[field] += amount

    def _upload_blob(self, digest: str) -> PutResult:
        try:
            if not self.remote.can_write:
                result = PutResult.SKIPPED
            else:
                # Read back from the local store rather than holding every queued
                # picture in memory while a slow remote drains the queue.
                data = self.local.get_blob(digest)
                if data is None:
                    self.remote.warn(
                        f"blob {digest[:12]} vanished from the local cache before its "
                        "upload to the remote cache; not uploaded"
                    )
                    result = PutResult.FAILED
                else:
                    result = self.remote.put_blob(data, digest=digest)
                    if result is PutResult.UPLOADED:
                        self._count("bytes", len(data))
        except Exception as exc:  # an upload must never break the build
            self.remote.warn(f"upload of blob {digest[:12]} failed: {exc}")
            result = PutResult.FAILED
        self._count(
            {
                PutResult.UPLOADED: "blobs_uploaded",
                PutResult.PRESENT: "present",
                PutResult.SKIPPED: "skipped",
                PutResult.FAILED: "failed",
            }[result]
        )
        return result

    def _upload_record(
        self,
        key: str,
        record: dict[str, Any],
        digests: list[str],
        blob_jobs: list[Future[PutResult]],
        previous: Future[PutResult] | None,
    ) -> PutResult:
        try:
            if previous is not None:
                # An earlier put of the same key: let it land first, so the last put wins.
                previous.result()
            results = [job.result() for job in blob_jobs]
            missing = [
                d
                for d, r in zip(digests, results)
                if r not in (PutResult.UPLOADED, PutResult.PRESENT)
            ]
            if missing:
                # The remote must never hold a record whose blobs it lacks. When uploads
                # were switched off, that was warned about once already: stay quiet.
                if self.remote.can_write:
                    self.remote.warn(
                        f"action record {key[:12]} not uploaded: its blob "
                        f"{missing[0][:12]} could not be uploaded"
                    )
                    result = PutResult.FAILED
                else:
                    result = PutResult.SKIPPED
            else:
                result = self.remote.put_record(key, record)
                if result is PutResult.UPLOADED:
                    self._count("bytes", len(encode_ac_entry(key, record)))
        except Exception as exc:  # an upload must never break the build
            self.remote.warn(f"upload of action record {key[:12]} failed: {exc}")
            result = PutResult.FAILED
        self._count(
            {
                PutResult.UPLOADED: "records_uploaded",
                PutResult.PRESENT: "present",
                PutResult.SKIPPED: "skipped",
                PutResult.FAILED: "failed",
            }[result]
        )
        return result

    def flush(self, timeout: float | None = None) -> UploadSummary:
        """Wait until every upload started so far has finished; the totals so far.

        With ``timeout`` (seconds) it returns when that runs out even if uploads are
        still going (their counts are then not final).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._idle:
            while self._pending:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    break
                self._idle.wait(remaining)
            return UploadSummary(**self._counts)

    # ----- pass-through

    def key_lock(self, key: str, *, timeout: float | None = None) -> AbstractContextManager[None]:
        return self.local.key_lock(key, timeout=timeout)

    def batch(self) -> AbstractContextManager[None]:
        """Does nothing: each put commits locally at once, because the background
        uploads it starts read the local copy from other threads, which would not see
        an uncommitted one."""
        return nullcontext()

    def info(self) -> StoreInfo:
        return self.local.info()

    def gc(self, keep_keys: set[str], keep_digests: set[str], *, dry_run: bool = False) -> GcResult:
        """The local store's gc (the remote is shared: it is never collected from here)."""
        return self.local.gc(keep_keys, keep_digests, dry_run=dry_run)

    def verify(self) -> VerifyResult:
        return self.local.verify()

    def register_root(self, lock_path: str | os.PathLike[str]) -> None:
        self.local.register_root(lock_path)

    def roots(self) -> list[Root]:
        return self.local.roots()

    def remove_root(self, root: Root) -> None:
        self.local.remove_root(root)

    def close(self) -> None:
        """Finish the uploads, stop the threads, close the local store, then the
        ``client`` it owns (if any). Safe twice."""
        if self._closed:
            return
        self._closed = True
        try:
            self.flush()
            self._blob_pool.shutdown(wait=True)
            self._record_pool.shutdown(wait=True)
            if self._fetch_pool is not None:
                self._fetch_pool.shutdown(wait=True)
            self.local.close()
        finally:
            if self._client is not None:
                self._client.close()

    def __enter__(self) -> "TieredStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
