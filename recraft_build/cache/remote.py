"""A shared remote cache on Bazel's HTTP cache protocol, and the store that uses it.

So a picture is paid for once per team, not once per machine. The protocol is the one
Bazel's ``--remote_cache=http://...`` speaks, so any server that speaks it works: a
stock nginx with WebDAV ``PUT``, bazel-remote, or object storage behind an HTTP gateway.

Wire format
-----------
* Blobs: ``GET/PUT/HEAD {url}/cas/{sha256}``; the body is the blob's bytes. A blob
  from the remote is checked against its digest before anyone sees it.
* Action records: ``GET/PUT/HEAD {url}/ac/{key}``; the body is **our** JSON, not a
  Bazel ``ActionResult`` protobuf: the canonical JSON (sorted keys, no spaces, UTF-8)
  of ``{"format": "recraft-build/ac/1", "key": KEY, "record": RECORD}``. The envelope
  lets a reader refuse an entry written for another key or by another format. Bazel's
  HTTP protocol stores opaque bytes under ``/ac/``, so nginx and object stores accept
  it as it is. **bazel-remote** validates ``/ac/`` uploads as ``ActionResult`` protos
  by default and answers ``400`` to anything else: start it with
  ``--disable_http_ac_validation`` (or ``BAZEL_REMOTE_DISABLE_HTTP_AC_VALIDATION=1``).
  Without it, blobs are still shared and one warning says how to share records too.
* Names: servers such as bazel-remote accept only 64 lowercase hex characters after
  ``/ac/`` and ``/cas/``. Our keys already are sha256 hex digests and are used as they
  are; any other key string is sent as the sha256 of its UTF-8 bytes.

Failure model
-------------
The remote cache is an optimisation, so nothing here fails a build. Every problem
becomes a warning through the ``warn`` callback and a miss (or a skipped upload):

* Connection errors, timeouts, ``429`` and ``5xx`` are retried with backoff; when the
  retries run out the client turns **unavailable** with one warning for the whole
  build, after which every call is an immediate miss or no-op.
* ``401/403`` on a read turns the client unavailable; on an upload it turns uploads off
  (a read-only credential is a normal setup); ``405/501`` on an upload turns uploads
  off (the server does not accept ``PUT``); each with one warning saying what to do.
* Wrong bytes for a blob, or an unreadable record: a warning, and a miss.

``warn`` may be called from background upload threads; calls are serialised here.
Nothing ever puts a header value (the auth token) or the password part of the URL in a
message.
"""

from __future__ import annotations

import enum
import hashlib
import json
import re
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Protocol
from urllib.parse import urlsplit, urlunsplit

import httpx

from recraft_build.errors import UsageError
from recraft_build.cache.local import referenced_digests

__all__ = [
    "AC_FORMAT",
    "LocalStore",
    "MODES",
    "PutResult",
    "REMOTE_AUTH_ENV",
    "REMOTE_CACHE_ENV",
    "RemoteCache",
    "RemotePolicy",
    "TieredStore",
    "UploadSummary",
    "auth_headers",
    "redact_url",
    "referenced_blobs",
    "remote_name",
]

#: ``--remote-cache-mode`` values.
MODES = ("read", "read-write")

#: Environment variable naming the remote cache URL (``--remote-cache`` wins over it).
REMOTE_CACHE_ENV = "RECRAFT_BUILD_REMOTE_CACHE"

#: Environment variable holding the whole value of the ``Authorization`` header sent to
#: the remote cache (``Bearer <token>``, or ``Basic <base64>`` for an nginx with
#: auth_basic). A password may also be put in the URL (``https://user:pw@host``).
REMOTE_AUTH_ENV = "RECRAFT_BUILD_REMOTE_CACHE_AUTH"

#: The ``format`` tag of our action-record envelope (bumped if the envelope changes).
AC_FORMAT = "recraft-build/ac/1"

_HEX64 = re.compile(r"[0-9a-f]{64}")
# "scheme://user:password@" in any text (an exception may quote the URL we called).
_USERINFO = re.compile(r"(://[^/\s:@]*):[^/\s@]*@")


# --------------------------------------------------------------------------- helpers


def auth_headers(env: Mapping[str, str]) -> dict[str, str]:
    """The headers to pass to :class:`RemoteCache`: ``Authorization`` from
    :data:`REMOTE_AUTH_ENV` when it is set and not blank, else none."""
    value = env.get(REMOTE_AUTH_ENV, "").strip()
    return {"Authorization": value} if value else {}


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
    """The 64-hex name a record key is stored under in ``/ac/`` (see module docstring)."""
    if _HEX64.fullmatch(key):
        return key
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def referenced_blobs(record: Any) -> list[str]:
    """The blob digests ``record`` references, sorted (the store's reference convention:
    string values, or lists of strings, under a key named ``sha256``, at any depth)."""
    return sorted(referenced_digests(record))


def _canonical_json(value: Any) -> bytes:
    # Not keys.canonical_json: that one drops None values (right for keys), while a
    # record must come back from the remote exactly as it was stored.
    return json.dumps(
        value,
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
        default=_json_default,
    ).encode("utf-8")


def _ac_body(key: str, record: Mapping[str, Any]) -> bytes:
    """The bytes stored under ``/ac/``: our envelope (see the module docstring)."""
    return _canonical_json({"format": AC_FORMAT, "key": key, "record": dict(record)})


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return dict(obj)
    raise TypeError(f"an action record cannot hold a {type(obj).__name__}: {obj!r}")


def _check_digest(digest: str) -> None:
    if not isinstance(digest, str) or not _HEX64.fullmatch(digest):
        raise ValueError(f"not a sha256 hex digest: {digest!r}")


# --------------------------------------------------------------------------- policy


@dataclass(frozen=True)
class RemotePolicy:
    """Timeouts and retries of remote-cache requests.

    ``connect_timeout`` and ``timeout`` (read, write and pool) are in seconds.
    A request failing with a connection error, a timeout, ``429`` or ``5xx`` is tried
    ``retries`` more times, waiting ``backoff * 2**attempt`` seconds (at most
    ``max_backoff``; a ``Retry-After`` header is honoured up to ``max_retry_after``).
    The defaults keep a dead server cheap: about 0.75 s once per build.
    ``head_before_put`` (bytes): a blob at least this big is first checked with a HEAD
    and not sent when the remote has it; a smaller one is just sent, because a HEAD
    costs a round trip just as the PUT does.
    """

    connect_timeout: float = 5.0
    timeout: float = 60.0
    retries: int = 2
    backoff: float = 0.25
    max_backoff: float = 4.0
    max_retry_after: float = 30.0
    head_before_put: int = 64 * 1024

    def httpx_timeout(self) -> httpx.Timeout:
        return httpx.Timeout(self.timeout, connect=self.connect_timeout)

    def delay(self, attempt: int, retry_after: str | None = None) -> float:
        """Seconds to wait before retry number ``attempt`` (0-based)."""
        if retry_after:
            try:
                return max(0.0, min(float(retry_after), self.max_retry_after))
            except ValueError:
                pass  # an HTTP date: rare for caches; fall back to our own backoff
        return min(self.max_backoff, self.backoff * (2**attempt))


class PutResult(str, enum.Enum):
    """What an upload did."""

    UPLOADED = "uploaded"  # sent and accepted
    PRESENT = "present"  # the remote already had it; nothing sent
    SKIPPED = "skipped"  # read mode, uploads off, or remote unavailable
    FAILED = "failed"  # tried and refused (a warning was given)


_RETRY_STATUSES = frozenset({429}) | frozenset(range(500, 600))
_OK_PUT = frozenset({200, 201, 204})


# --------------------------------------------------------------------------- client


class _Reply:
    """One finished request: ``status`` (200 for success) with ``body``, and for S3 the
    error ``code`` (``""`` when there is none)."""

    __slots__ = ("status", "code", "body")

    def __init__(self, status: int, code: str = "", body: bytes = b""):
        self.status = status
        self.code = code
        self.body = body


@dataclass(frozen=True)
class _Retry:
    """What one failed attempt says when it is worth another: the ``problem`` (for the
    warning if the retries run out) and the server's ``Retry-After``, if any."""

    problem: str
    retry_after: str | None = None


class _RemoteBase:
    """The protocol-independent contract of a remote cache (:class:`RemoteCache` over
    HTTP, :class:`~recraft_build.cache.s3.S3Cache` over S3), which
    :class:`TieredStore` relies on whichever it is given:

    * **Digest verification**: a blob is returned only when its bytes hash to the digest
      asked for; anything else is a warning naming where the corrupt copy lives, and a
      miss. A malformed digest is a ``ValueError`` (a bug), before any request.
    * **The record envelope**: records are stored as :func:`_ac_body` (the module
      docstring) under ``ac/`` + :func:`remote_name` of the key, and read back only
      when the envelope has our format and this very key.
    * **Read mode**: in ``"read"`` mode every ``put_*`` is :attr:`PutResult.SKIPPED`
      without a request; the same once uploads were turned off or the remote is gone.
    * **One warning, then unavailable**: retries by :class:`RemotePolicy`; when they
      run out (or the remote refuses us for good) one warning for the whole build, and
      every later call is an immediate miss or no-op. Warnings go through :meth:`warn`,
      serialised and scrubbed of passwords.

    A subclass sets ``url`` (what messages call the remote, with no secret in it) and
    implements the transport hooks (and sets ``_where``, how the "not usable" warning
    names the remote: ``url``, or more):

    * :meth:`_send` ``(method, path, *, what, body=None) -> _Reply | None``: one
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
    ):
        if mode not in MODES:
            raise UsageError(
                f"--remote-cache-mode {mode!r} is not one of: {', '.join(MODES)}"
            )
        self.mode = mode
        self._policy = policy or RemotePolicy()
        self._sleep = sleep
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

    def _retrying(self, attempt: Callable[[], _Reply | _Retry | None]) -> _Reply | None:
        """Call ``attempt`` until it gives a reply, or None (it made the remote
        unusable), or the policy's retries run out on :class:`_Retry` answers (then the
        remote turns unavailable). None at once when the remote is unusable."""
        policy = self._policy
        tries = 0
        while True:
            if not self._available:
                return None
            outcome = attempt()
            if not isinstance(outcome, _Retry):
                return outcome
            if tries >= policy.retries:
                self._go_unavailable(outcome.problem)
                return None
            self._sleep(policy.delay(tries, outcome.retry_after))
            tries += 1

    # ----- transport hooks (see the class docstring)

    def _send(
        self, method: str, path: str, *, what: str, body: bytes | None = None
    ) -> _Reply | None:
        raise NotImplementedError

    def _read_status(self, reply: _Reply, what: str) -> None:
        raise NotImplementedError

    def _put_status(self, reply: _Reply, what: str, *, record: bool) -> PutResult:
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
        _check_digest(digest)
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
        _check_digest(digest)
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
        try:
            envelope = json.loads(body)
        except ValueError:
            envelope = None
        if (
            not isinstance(envelope, dict)
            or envelope.get("format") != AC_FORMAT
            or envelope.get("key") != key
            or not isinstance(envelope.get("record"), dict)
        ):
            self.warn(
                f"remote cache {self.url} returned an unreadable action record for key "
                f"{key[:12]} (not a {AC_FORMAT} entry for this key); ignored it"
            )
            return None
        record: dict[str, Any] = envelope["record"]
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
        return self._put(f"ac/{name}", _ac_body(key, record), f"PUT ac/{name[:12]}", record=True)

    def close(self) -> None:
        """Nothing to release: the ``client`` belongs to the caller. Safe to call twice."""


class RemoteCache(_RemoteBase):
    """A client of one Bazel-HTTP-protocol cache at ``url``.

    ``client`` is owned by the caller (who closes it); ``headers`` are added to every
    request (e.g. ``{"Authorization": "Bearer ..."}`` read from an env var by the
    caller) and never appear in a message. ``mode`` is ``"read"`` (never writes: every
    ``put_*`` is a no-op without a request) or ``"read-write"``. ``sleep`` waits between
    retries. ``warn`` receives one-line warnings (see the module docstring).

    Thread-safe: the executor's workers and the upload threads share one object.
    No method raises for a remote problem; :class:`UsageError` only for a bad ``url``
    or ``mode`` at construction, ``ValueError`` for a malformed digest (a bug).
    """

    _copy = "the server's"

    def __init__(
        self,
        url: str,
        *,
        client: httpx.Client,
        mode: str = "read-write",
        headers: Mapping[str, str] | None = None,
        policy: RemotePolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        warn: Callable[[str], None] = lambda message: None,
    ):
        super().__init__(mode=mode, policy=policy, sleep=sleep, warn=warn)
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UsageError(
                f"--remote-cache {redact_url(url)!r} is not an http:// or https:// URL "
                "(e.g. http://cache.internal:8080 or https://host/prefix)"
            )
        self._base = url.rstrip("/")
        self.url = redact_url(self._base)
        self._where = self.url
        self._client = client
        self._headers = dict(headers or {})

    def _scrub(self, message: str) -> str:
        """The values of our headers (the token) become ``***``."""
        for value in self._headers.values():
            if len(value) >= 4:  # never blank out a trivial value all over the text
                message = message.replace(value, "***")
                _, _, token = value.partition(" ")  # "Bearer <token>": the token alone too
                if len(token) >= 4:
                    message = message.replace(token, "***")
        return message

    # ----- transport

    def _send(
        self, method: str, path: str, *, what: str, body: bytes | None = None
    ) -> _Reply | None:
        """One request with retries; None when the remote is (or just became) unusable."""
        policy = self._policy
        headers = dict(self._headers)
        if body is not None:
            headers["Content-Type"] = (
                "application/json" if path.startswith("ac/") else "application/octet-stream"
            )

        def attempt() -> _Reply | _Retry:
            self._count_traffic(requests=1, sent=len(body or b""))
            try:
                response = self._client.request(
                    method,
                    f"{self._base}/{path}",
                    content=body,
                    headers=headers,
                    timeout=policy.httpx_timeout(),
                )
                self._count_traffic(received=len(response.content))
            except httpx.TimeoutException as exc:
                limit = (
                    policy.connect_timeout
                    if isinstance(exc, httpx.ConnectTimeout)
                    else policy.timeout
                )
                return _Retry(f"{type(exc).__name__} after {limit:g}s on {what}")
            except httpx.RequestError as exc:
                # Transport errors, and a body that cannot be decoded or a redirect
                # loop: all are "this server is not answering properly".
                return _Retry(f"{type(exc).__name__} on {what}: {exc}")
            if response.status_code in _RETRY_STATUSES:
                return _Retry(
                    f"HTTP {response.status_code} on {what}",
                    response.headers.get("Retry-After"),
                )
            return _Reply(response.status_code, body=response.content)

        return self._retrying(attempt)

    def _refused(self, status: int, what: str, *, write: bool) -> None:
        """React to 401/403: off for everything (a read) or for uploads (a write)."""
        if not write:
            self._go_unavailable(
                f"HTTP {status} on {what}: access refused; check the auth header's "
                "environment variable"
            )
            return
        self._uploads_off()
        self._warn_once(
            "put-refused",
            f"remote cache {self.url} refused an upload (HTTP {status} on {what}); "
            "uploads are off for this build (use --remote-cache-mode read on machines "
            "that only read, or check the auth header's environment variable)",
        )

    def _read_status(self, reply: _Reply, what: str) -> None:
        status = reply.status
        if status == 404:
            return  # a plain miss
        if status in (401, 403):
            self._refused(status, what, write=False)
            return
        self._warn_once(
            f"read-{status}",
            f"remote cache {self.url} answered HTTP {status} on {what}; treated as a miss",
        )

    def _put_status(self, reply: _Reply, what: str, *, record: bool) -> PutResult:
        status = reply.status
        if status in _OK_PUT:
            return PutResult.UPLOADED
        if status in (401, 403):
            self._refused(status, what, write=True)
            return PutResult.FAILED
        if status in (405, 501):
            self._uploads_off()
            self._warn_once(
                "put-unsupported",
                f"remote cache {self.url} does not accept uploads (HTTP {status} on "
                f"{what}); uploads are off for this build (for nginx: dav_methods PUT; "
                "create_full_put_path on;)",
            )
            return PutResult.FAILED
        if record and status == 400:
            with self._lock:
                self._record_writes = False
            self._warn_once(
                "ac-400",
                f"remote cache {self.url} refused an action record (HTTP 400 on {what}); "
                "pictures are still shared but records are not: for bazel-remote, start "
                "it with --disable_http_ac_validation (our records are JSON, not Bazel "
                "ActionResult protobufs)",
            )
            return PutResult.FAILED
        self.warn(
            f"remote cache {self.url} refused an upload (HTTP {status} on {what}); "
            "the local copy is kept"
        )
        return PutResult.FAILED


# --------------------------------------------------------------------------- tiered store


class LocalStore(Protocol):
    """What :class:`TieredStore` needs of the local store (``recraft_build.cache.local.Store``)."""

    def put_blob(self, data: bytes) -> str: ...
    def get_blob(self, digest: str) -> bytes | None: ...
    def has_blob(self, digest: str) -> bool: ...
    def put_record(self, key: str, record: Mapping[str, Any]) -> None: ...
    def get_record(self, key: str) -> dict[str, Any] | None: ...
    def key_lock(self, key: str, **kwargs: Any) -> AbstractContextManager[Any]: ...
    def close(self) -> None: ...


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

    * Lookups go local, then remote. A remote blob is verified (by :class:`RemoteCache`)
      and copied into the local store. A remote record is used only when every blob it
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
    * ``info``/``gc``/``verify``/``key_lock`` are the local store's. :meth:`close` flushes,
      stops the upload threads and closes the local store (not the remote's client).
    """

    def __init__(self, local: LocalStore, remote: RemoteCache, *, upload_threads: int = 4):
        self.local = local
        self.remote = remote
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

    # ----- reads

    def get_blob(self, digest: str) -> bytes | None:
        """Local bytes, else verified remote bytes (then stored locally), else None."""
        data = self.local.get_blob(digest)
        if data is not None or not _HEX64.fullmatch(digest or ""):
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
        return bool(_HEX64.fullmatch(digest or "")) and self.remote.has_blob(digest)

    def has_record(self, key: str) -> bool:
        """Local (the store's index), or the remote says it has one (HEAD)."""
        has_local = getattr(self.local, "has_record", None)
        if has_local is not None and has_local(key):
            return True
        return self.remote.has_record(key)

    def get_record(self, key: str) -> dict[str, Any] | None:
        """Local record, else a remote one whose blobs are all fetched locally, else None."""
        record = self.local.get_record(key)
        if record is not None:
            return record
        record = self.remote.get_record(key)
        if record is None:
            return None
        digests = referenced_blobs(record)
        bad = [d for d in digests if not _HEX64.fullmatch(d)]
        if bad:
            self.remote.warn(
                f"remote cache {self.remote.url} has an action record for key {key[:12]} "
                f"naming a malformed blob digest ({bad[0][:20]!r}); ignored it"
            )
            return None
        for digest in digests:
            if self.local.has_blob(digest):
                continue
            data = self.remote.get_blob(digest)
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
        snapshot = json.loads(_canonical_json(record))
        digests = [d for d in referenced_blobs(snapshot) if _HEX64.fullmatch(d)]
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
                    self._count("bytes", len(_ac_body(key, record)))
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

    def key_lock(self, key: str, **kwargs: Any) -> AbstractContextManager[Any]:
        return self.local.key_lock(key, **kwargs)

    def info(self, *args: Any, **kwargs: Any) -> Any:
        return self.local.info(*args, **kwargs)  # type: ignore[attr-defined]

    def gc(self, *args: Any, **kwargs: Any) -> Any:
        return self.local.gc(*args, **kwargs)  # type: ignore[attr-defined]

    def verify(self, *args: Any, **kwargs: Any) -> Any:
        return self.local.verify(*args, **kwargs)  # type: ignore[attr-defined]

    def close(self) -> None:
        """Finish the uploads, stop the threads, close the local store. Safe twice."""
        if self._closed:
            return
        self._closed = True
        self.flush()
        self._blob_pool.shutdown(wait=True)
        self._record_pool.shutdown(wait=True)
        self.local.close()

    def __enter__(self) -> "TieredStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
