"""A shared remote cache on Bazel's HTTP cache protocol.

So a picture is paid for once per team, not once per machine. The protocol is the one
Bazel's ``--remote_cache=http://...`` speaks, so any server that speaks it works: a
stock nginx with WebDAV ``PUT``, bazel-remote, or object storage behind an HTTP gateway.

Wire format
-----------
``GET/PUT/HEAD {url}/cas/{sha256}`` for blobs and ``{url}/ac/{name}`` for action
records, in the layout and envelope of :mod:`recraft_build.cache.remote_base`. Bazel's
HTTP protocol stores opaque bytes under ``/ac/``, so nginx and object stores accept our
JSON envelope as it is. **bazel-remote** validates ``/ac/`` uploads as ``ActionResult``
protos by default and answers ``400`` to anything else: start it with
``--disable_http_ac_validation`` (or ``BAZEL_REMOTE_DISABLE_HTTP_AC_VALIDATION=1``).
Without it, blobs are still shared and one warning says how to share records too.

Failure model
-------------
As :mod:`recraft_build.cache.remote_base` says, nothing here fails a build:

* Connection errors, timeouts, ``429`` and ``5xx`` are retried with backoff (a
  ``Retry-After`` in seconds or as an HTTP date is honoured, capped); when the retries
  run out the client turns **unavailable** with one warning for the whole build.
* ``401/403`` on a read turns the client unavailable; on an upload it turns uploads off
  (a read-only credential is a normal setup); ``405/501`` on an upload turns uploads
  off (the server does not accept ``PUT``); each with one warning saying what to do.
* Nothing ever puts a header value (the auth token) or the password part of the URL in
  a message.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Callable, Mapping
from urllib.parse import urlsplit

import httpx

from recraft_build.cache.policy import RemotePolicy
from recraft_build.cache.remote_base import PutResult, RemoteBase, Reply, RetryLater, redact_url
from recraft_build.errors import UsageError

if TYPE_CHECKING:
    from recraft_build.cache.httpconn import KeepAliveClient

__all__ = ["REMOTE_AUTH_ENV", "RemoteCache", "auth_headers"]

#: Environment variable holding the whole value of the ``Authorization`` header sent to
#: the remote cache (``Bearer <token>``, or ``Basic <base64>`` for an nginx with
#: auth_basic). A password may also be put in the URL (``https://user:pw@host``).
REMOTE_AUTH_ENV = "RECRAFT_BUILD_REMOTE_CACHE_AUTH"

_RETRY_STATUSES = frozenset({429}) | frozenset(range(500, 600))
_OK_PUT = frozenset({200, 201, 204})


def auth_headers(env: Mapping[str, str]) -> dict[str, str]:
    """The headers to pass to :class:`RemoteCache`: ``Authorization`` from
    :data:`REMOTE_AUTH_ENV` when it is set and not blank, else none."""
    value = env.get(REMOTE_AUTH_ENV, "").strip()
    return {"Authorization": value} if value else {}


class RemoteCache(RemoteBase):
    """A client of one Bazel-HTTP-protocol cache at ``url``.

    ``client`` is owned by the caller (who closes it): an ``httpx.Client``, or the lean
    :class:`~recraft_build.cache.httpconn.KeepAliveClient` that answers the same
    ``request()``; ``headers`` are added to every
    request (e.g. ``{"Authorization": "Bearer ..."}`` read from an env var by the
    caller) and never appear in a message. ``mode`` is ``"read"`` (never writes: every
    ``put_*`` is a no-op without a request) or ``"read-write"``. ``sleep`` waits between
    retries; ``clock`` (the wall clock) measures a ``Retry-After`` given as an HTTP date.
    ``warn`` receives one-line warnings (see the module docstring).

    Thread-safe: the executor's workers and the upload threads share one object.
    No method raises for a remote problem; :class:`UsageError` only for a bad ``url``
    or ``mode`` at construction, ``ValueError`` for a malformed digest (a bug).
    """

    _copy = "the server's"

    def __init__(
        self,
        url: str,
        *,
        client: "httpx.Client | KeepAliveClient",
        mode: str = "read-write",
        headers: Mapping[str, str] | None = None,
        policy: RemotePolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        warn: Callable[[str], None] = lambda message: None,
        clock: Callable[[], float] = time.time,
    ):
        super().__init__(mode=mode, policy=policy, sleep=sleep, warn=warn, clock=clock)
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
    ) -> Reply | None:
        """One request with retries; None when the remote is (or just became) unusable."""
        policy = self._policy
        headers = dict(self._headers)
        if body is not None:
            headers["Content-Type"] = (
                "application/json" if path.startswith("ac/") else "application/octet-stream"
            )

        def attempt() -> Reply | RetryLater:
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
                return RetryLater(f"{type(exc).__name__} after {limit:g}s on {what}")
            except httpx.RequestError as exc:
                # Transport errors, and a body that cannot be decoded or a redirect
                # loop: all are "this server is not answering properly".
                return RetryLater(f"{type(exc).__name__} on {what}: {exc}")
            if response.status_code in _RETRY_STATUSES:
                return RetryLater(
                    f"HTTP {response.status_code} on {what}",
                    self.retry_after(response.headers),
                )
            return Reply(response.status_code, body=response.content)

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

    def _read_status(self, reply: Reply, what: str) -> None:
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

    def _put_status(self, reply: Reply, what: str, *, record: bool) -> PutResult:
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
