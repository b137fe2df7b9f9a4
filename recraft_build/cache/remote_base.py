"""What every remote cache shares, whatever carries the bytes (HTTP, S3, a folder).

Layout
------
One layout for every remote, so a bucket, an nginx mirror and a folder look alike (and
one can be filled by copying another's files):

* ``cas/<sha256>``: a blob's bytes. A blob from a remote is checked against its digest
  before anyone sees it.
* ``ac/<name>``: an action record in our envelope,
  :func:`~recraft_build.cache.codec.encode_ac_entry` (canonical JSON of
  ``{"format": "recraft-build/ac/1", "key": KEY, "record": RECORD}``), not a Bazel
  ``ActionResult`` protobuf. ``name`` is :func:`remote_name` of the key: servers such
  as bazel-remote accept only 64 lowercase hex characters after ``/ac/`` and
  ``/cas/``; our keys already are sha256 hex digests and are used as they are, any
  other key string is sent as the sha256 of its UTF-8 bytes.

Failure model
-------------
The remote cache is an optimisation, so nothing here fails a build. Every problem
becomes a warning through the ``warn`` callback and a miss (or a skipped upload):
retries run out -> **unavailable** with one warning for the whole build, after which
every call is an immediate miss or no-op; wrong bytes for a blob, or an unreadable
record -> a warning and a miss. ``warn`` may be called from background upload
threads; calls are serialised here. Nothing ever puts a secret (a header value, the
password part of a URL) in a message. Each transport's module says which of its
answers mean what.
"""

from __future__ import annotations

import enum
import hashlib
import re
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping
from urllib.parse import urlsplit, urlunsplit

from recraft_build.cache.base import referenced_digests
from recraft_build.cache.codec import AC_FORMAT, decode_ac_entry, encode_ac_entry
from recraft_build.cache.policy import RemotePolicy, check_mode
from recraft_build.retry import Retrier

__all__ = [
    "AC_FORMAT",
    "HEX64",
    "PutResult",
    "RemoteBase",
    "Reply",
    "RetryLater",
    "check_digest",
    "redact_url",
    "referenced_blobs",
    "remote_name",
]

#: A sha256 hex digest, as blob names and our record keys are.
HEX64 = re.compile(r"[0-9a-f]{64}")
# "scheme://user:password@" in any text (an exception may quote the URL we called).
_USERINFO = re.compile(r"(://[^/\s:@]*):[^/\s@]*@")


def redact_url(url: str) -> str:
    """``url`` without a password (``http://user:secret@host`` -> ``http://user:***@host``)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    netloc = f"{parts.username}:***@{host}" if parts.username else f"***@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def remote_name(key: str) -> str:
    """The 64-hex name a record key is stored under in ``ac/`` (see the module docstring)."""
    if HEX64.fullmatch(key):
        return key
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def referenced_blobs(record: Any) -> list[str]:
    """The blob digests ``record`` references, sorted (the store's reference convention,
    :func:`recraft_build.cache.base.referenced_digests`)."""
    return sorted(referenced_digests(record))


def check_digest(digest: str) -> None:
    """``ValueError`` unless ``digest`` is a sha256 hex digest (a caller's bug)."""
    if not isinstance(digest, str) or not HEX64.fullmatch(digest):
        raise ValueError(f"not a sha256 hex digest: {digest!r}")


class PutResult(str, enum.Enum):
    """What an upload did."""

    UPLOADED = "uploaded"  # sent and accepted
    PRESENT = "present"  # the remote already had it; nothing sent
    SKIPPED = "skipped"  # read mode, uploads off, or remote unavailable
    FAILED = "failed"  # tried and refused (a warning was given)


class Reply:
    """One finished request: ``status`` (200 for success) with ``body``, and for S3 the
    error ``code`` (``""`` when there is none)."""

    __slots__ = ("status", "code", "body")

    def __init__(self, status: int, code: str = "", body: bytes = b""):
        self.status = status
        self.code = code
        self.body = body


@dataclass(frozen=True)
class RetryLater:
    """What one failed attempt says when it is worth another: the ``problem`` (for the
    warning if the retries run out) and the wait the server asked for, in seconds
    (``Retry-After``, read by :meth:`RemoteBase.retry_after`), if any."""

    problem: str
    retry_after: float | None = None


class RemoteBase:
    """The protocol-independent contract of a remote cache (HTTP:
    :class:`~recraft_build.cache.http.RemoteCache`; S3:
    :class:`~recraft_build.cache.s3.S3Cache`; a folder:
    :class:`~recraft_build.cache.folder.FolderCache`), which
    :class:`~recraft_build.cache.tiered.TieredStore` relies on whichever it is given:

    * **Digest verification**: a blob is returned only when its bytes hash to the digest
      asked for; anything else is a warning naming where the corrupt copy lives, and a
      miss. A malformed digest is a ``ValueError`` (a bug), before any request.
    * **The record envelope**: records are stored as
      :func:`~recraft_build.cache.codec.encode_ac_entry` under ``ac/`` +
      :func:`remote_name` of the key, and read back only when the envelope has our
      format and this very key.
    * **Read mode**: in ``"read"`` mode every ``put_*`` is :attr:`PutResult.SKIPPED`
      without a request; the same once uploads were turned off or the remote is gone.
    * **One warning, then unavailable**: retries by :class:`RemotePolicy` (waits by
      :class:`recraft_build.retry.Retrier`, with the ``sleep`` and ``clock`` given);
      when they run out (or the remote refuses us for good) one warning for the whole
      build, and every later call is an immediate miss or no-op. Warnings go through :meth:`warn`,
      serialised and scrubbed of passwords.

    A subclass sets ``url`` (what messages call the remote, with no secret in it) and
    implements the transport hooks (and sets ``_where``, how the "not usable" warning
    names the remote: ``url``, or more):

    * :meth:`_send` ``(method, path, *, what, body=None) -> Reply | None``: one
      ``GET``/``HEAD``/``PUT`` of ``path`` (``cas/<sha256>`` or ``ac/<name>``) with
      retries (usually through :meth:`_retrying`); None once the remote is unusable.
    * :meth:`_read_status` ``(reply, what)``: react to a read answered with other than
      200 (404 is a plain miss).
    * :meth:`_put_status` ``(reply, what, *, record) -> PutResult``: what an upload's
      answer means (success, or which warning and whether uploads turn off).
    * :meth:`_describe` ``(path) -> str``: where the object at ``path`` lives, for the
      message about a corrupt copy, whose owner ``_copy`` names ("the server's",
      "the bucket's").
    """

    url: str
    _where: str
    _copy = "the remote's"

    def __init__(
        self,
        *,
        mode: str,
        policy: RemotePolicy | None,
        sleep: Callable[[float], None],
        warn: Callable[[str], None],
        clock: Callable[[], float] = time.time,
    ):
        self.mode = check_mode(mode)
        self._policy = policy or RemotePolicy()
        self._retrier = Retrier(self._policy.schedule(), sleep=sleep, clock=clock)
        self._warn = warn
        self._lock = threading.Lock()
        self._warn_lock = threading.Lock()
        self._available = True
        self._blob_writes = mode == "read-write"
        self._record_writes = mode == "read-write"
        self._warned: set[str] = set()
        self._traffic = {"requests": 0, "sent": 0, "received": 0}

    # ----- state

    def traffic(self) -> dict[str, int]:
        """Totals so far: ``requests`` made (retries included), body bytes ``sent`` and
        ``received``."""
        with self._lock:
            return dict(self._traffic)

    @property
    def available(self) -> bool:
        """False once the remote was found unreachable (or refused us) in this build."""
        return self._available

    @property
    def can_write(self) -> bool:
        """True while blob uploads may happen (read-write mode, remote usable)."""
        return self._available and self._blob_writes

    def warn(self, message: str) -> None:
        """Pass one warning to the ``warn`` callback (serialised across threads).

        Every message is scrubbed on the way out: URL passwords (and whatever else
        :meth:`_scrub` knows to be secret) are replaced by ``***``, whatever quoted them.
        """
        message = self._scrub(_USERINFO.sub(r"\1:***@", message))
        with self._warn_lock:
            self._warn(message)

    def _scrub(self, message: str) -> str:
        """``message`` without the subclass's own secrets (none by default)."""
        return message

    def _warn_once(self, topic: str, message: str) -> None:
        with self._lock:
            if topic in self._warned:
                return
            self._warned.add(topic)
        self.warn(message)

    def _go_unavailable(self, reason: str) -> None:
        with self._lock:
            first = self._available
            self._available = False
        if first:
            self.warn(
                f"remote cache {self._where} is not usable ({reason}); continuing with "
                "the local cache only for the rest of this build"
            )

    def _uploads_off(self) -> None:
        with self._lock:
            self._blob_writes = self._record_writes = False

    def _count_traffic(self, *, requests: int = 0, sent: int = 0, received: int = 0) -> None:
        with self._lock:
            self._traffic["requests"] += requests
            self._traffic["sent"] += sent
            self._traffic["received"] += received

    def retry_after(self, headers: Mapping[str, str]) -> float | None:
        """The wait (seconds) an answer's ``Retry-After`` asks for, or None."""
        return self._retrier.retry_after(headers)

    def _retrying(self, attempt: Callable[[], Reply | RetryLater | None]) -> Reply | None:
        """Call ``attempt`` until it gives a reply, or None (it made the remote
        unusable), or the policy's retries run out on :class:`RetryLater` answers (then
        the remote turns unavailable). None at once when the remote is unusable."""
        policy = self._policy
        tries = 0
        while True:
            if not self._available:
                return None
            outcome = attempt()
            if not isinstance(outcome, RetryLater):
                return outcome
            if tries >= policy.retries:
                self._go_unavailable(outcome.problem)
                return None
            self._retrier.wait(tries, outcome.retry_after)
            tries += 1

    # ----- transport hooks (see the class docstring)

    def _send(
        self, method: str, path: str, *, what: str, body: bytes | None = None
    ) -> Reply | None:
        raise NotImplementedError

    def _read_status(self, reply: Reply, what: str) -> None:
        raise NotImplementedError

    def _put_status(self, reply: Reply, what: str, *, record: bool) -> PutResult:
        raise NotImplementedError

    def _describe(self, path: str) -> str:
        return path

    # ----- built on the hooks

    def _fetch(self, path: str, what: str) -> bytes | None:
        reply = self._send("GET", path, what=what)
        if reply is None:
            return None
        if reply.status == 200:
            return reply.body
        self._read_status(reply, what)
        return None

    def _exists(self, path: str, what: str) -> bool:
        reply = self._send("HEAD", path, what=what)
        if reply is None:
            return False
        if reply.status == 200:
            return True
        self._read_status(reply, what)
        return False

    def _put(self, path: str, body: bytes, what: str, *, record: bool) -> PutResult:
        reply = self._send("PUT", path, what=what, body=body)
        if reply is None:
            return PutResult.SKIPPED
        return self._put_status(reply, what, record=record)

    # ----- blobs

    def get_blob(self, digest: str) -> bytes | None:
        """The blob's bytes if the remote has them and they match ``digest``, else None."""
        check_digest(digest)
        data = self._fetch(f"cas/{digest}", f"GET cas/{digest[:12]}")
        if data is not None and hashlib.sha256(data).hexdigest() != digest:
            self.warn(
                f"remote cache {self.url} returned wrong bytes for blob {digest[:12]} "
                f"({len(data)} bytes that hash to something else); ignored it and will "
                f"make the picture locally ({self._copy} copy is corrupt: delete "
                f"{self._describe('cas/' + digest)} there)"
            )
            return None
        return data

    def has_blob(self, digest: str) -> bool:
        """Whether the remote says it has the blob (HEAD); False when unusable."""
        check_digest(digest)
        return self._exists(f"cas/{digest}", f"HEAD cas/{digest[:12]}")

    def put_blob(
        self, data: bytes, *, digest: str | None = None, check_first: bool | None = None
    ) -> PutResult:
        """Upload a blob under its sha256.

        ``check_first`` HEADs first and skips the upload when the remote has the blob;
        None (the default) does so for blobs of ``policy.head_before_put`` bytes or more.
        ``digest``, if given, must be the sha256 of ``data`` (ValueError otherwise).
        """
        actual = hashlib.sha256(data).hexdigest()
        if digest is not None and digest != actual:
            raise ValueError(f"blob digest {digest} does not match its bytes ({actual})")
        if not self.can_write:
            return PutResult.SKIPPED
        if check_first is None:
            check_first = len(data) >= self._policy.head_before_put
        if check_first and self.has_blob(actual):
            return PutResult.PRESENT
        return self._put(f"cas/{actual}", data, f"PUT cas/{actual[:12]}", record=False)

    # ----- action records

    def get_record(self, key: str) -> dict[str, Any] | None:
        """The action record stored for ``key``, or None (missing, unreadable, unusable)."""
        name = remote_name(key)
        body = self._fetch(f"ac/{name}", f"GET ac/{name[:12]}")
        if body is None:
            return None
        record = decode_ac_entry(body, key)
        if record is None:
            self.warn(
                f"remote cache {self.url} returned an unreadable action record for key "
                f"{key[:12]} (not a {AC_FORMAT} entry for this key); ignored it"
            )
            return None
        return record

    def has_record(self, key: str) -> bool:
        """Whether the remote says it has a record for ``key`` (HEAD)."""
        name = remote_name(key)
        return self._exists(f"ac/{name}", f"HEAD ac/{name[:12]}")

    def put_record(self, key: str, record: Mapping[str, Any]) -> PutResult:
        """Upload the action record for ``key`` (callers upload its blobs first)."""
        if not (self._available and self._record_writes):
            return PutResult.SKIPPED
        name = remote_name(key)
        return self._put(f"ac/{name}", encode_ac_entry(key, record), f"PUT ac/{name[:12]}", record=True)

    def close(self) -> None:
        """Nothing to release: a ``client`` belongs to the caller (or to the
        :class:`~recraft_build.cache.tiered.TieredStore` given it). Safe to call twice."""
