"""Network discipline shared by both protocols: timeouts, retries, rate limits, errors.

The rule this module exists for: **a flaky network may cost time, never money twice.**

What is retried (with exponential backoff and jitter, ``Retry-After`` honoured as
seconds or an HTTP date; the timing is :mod:`recraft_build.retry`'s, shared with the
remote caches):

* any request, when the failure happened before the request reached the server:
  ``httpx.ConnectError``, ``ConnectTimeout``, ``PoolTimeout``, ``ProxyError``, and a
  ``WriteError``/``WriteTimeout`` (the body was not completely handed to the network,
  so the server cannot have accepted the request);
* any request answered 429, 408, 502 or 503: the server (or its gateway) says it did
  not do the work;
* idempotent requests (GET: polls, downloads) on every other 5xx and on a lost
  answer (``ReadTimeout``, ``ReadError``, ``RemoteProtocolError``).

**The careful rule for a paid POST** (a generation, a tool call, a style creation, a
prediction create): when the request was sent but its answer was lost (read timeout,
connection reset or closed after sending, or a 500/504, which say the server or its
gateway got the request and then failed or gave up), the call *may have been billed*.
It is never resent automatically: :func:`send` raises
:class:`~recraft_build.errors.AmbiguousError`, the asset fails, nothing is cached,
and the message tells the user to check the account's usage; the next build tries
the asset again (one deliberate, visible retry instead of a silent double charge).
For Replicate a lost create could in principle be recovered by listing recent
predictions; we keep the rule simple and the same for both protocols.

Never retried: 400, 401, 403, 404, 422 and every other 4xx (the request itself is
wrong; resending it cannot help).

Statuses map to the error tree: 401/403 -> :class:`AuthError` naming the env var to
set; other 4xx -> :class:`RequestRejected` with the server's text; retries run out
-> :class:`TransientError`. Every message names the provider, the status and the
request id (from ``X-Request-Id``, ``X-Recraft-Requestid``... when the server sent
one), and never contains a token.
"""

from __future__ import annotations

import json
import random
import threading
import time
from dataclasses import dataclass, field, fields, replace
from typing import Any, Callable, Mapping

import httpx

from recraft_build.errors import (
    AmbiguousError,
    AuthError,
    BadResultError,
    PlanError,
    ProviderError,
    RequestRejected,
    TransientError,
)
from recraft_build.providers.redact import Secret, redact_text
from recraft_build.retry import Backoff, Retrier, retry_after_of

__all__ = [
    "AUTH_SCHEMES",
    "CallContext",
    "HttpPolicy",
    "OFFICIAL_BASES",
    "PROXY_PREFIXES",
    "RateLimiter",
    "REQUEST_ID_HEADERS",
    "base_url_advice",
    "check_base_url",
    "error_text",
    "json_of",
    "request_id_of",
    "retry_after_seconds",
    "send",
]

#: How a token is put into the ``Authorization`` header.
AUTH_SCHEMES = ("bearer", "raw")

#: Response headers that may carry the server's id for a request, most specific first.
REQUEST_ID_HEADERS = (
    "x-recraft-requestid",
    "x-recraft-request-id",
    "x-request-id",
    "request-id",
    "x-amzn-requestid",
    "x-correlation-id",
    "cf-ray",
)

# Failures before the request reached the server: always safe to retry.
_NOT_SENT = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.ProxyError,
    httpx.WriteError,
    httpx.WriteTimeout,
)
# Failures after the request was sent: the answer is lost.
_ANSWER_LOST = (
    httpx.ReadTimeout,
    httpx.ReadError,
    httpx.RemoteProtocolError,
    httpx.CloseError,
)

# Longest server text kept in a message; error pages can be huge.
_MAX_TEXT = 300
# Longest request id kept in a message.
_MAX_REQUEST_ID = 200


@dataclass(frozen=True)
class HttpPolicy:
    """Timeouts and retry settings for one provider.

    Timeouts are in seconds. ``read_timeout`` must outlast a generation (the Recraft
    API answers when the picture is done, typically 5-60 s), because a read timeout
    on a paid POST is an ambiguous, possibly billed call. ``max_retries`` counts
    retries after the first attempt. The delay before retry ``k`` (0-based) is
    ``min(backoff_cap, backoff_base * 2**k)`` scaled by a random factor in
    ``[1 - jitter, 1 + jitter]``; a ``Retry-After`` from the server replaces it (plus
    a little jitter), and one longer than ``retry_after_cap`` ends the retries at once.
    ``paid_retry_statuses`` are the statuses on which a paid POST is resent (see the
    module docstring for why 500 and 504 are not among them).
    """

    connect_timeout: float = 10.0
    read_timeout: float = 180.0
    write_timeout: float = 60.0
    pool_timeout: float = 60.0
    max_retries: int = 6
    backoff_base: float = 0.5
    backoff_cap: float = 30.0
    jitter: float = 0.2
    retry_after_cap: float = 120.0
    paid_retry_statuses: frozenset[int] = field(
        default_factory=lambda: frozenset({408, 429, 502, 503})
    )
    idempotent_retry_statuses: frozenset[int] = field(
        default_factory=lambda: frozenset({408, 429, 500, 502, 503, 504})
    )

    #: Option names accepted by :meth:`from_options` (a profile's ``options``).
    OPTION_NAMES = (
        "connect_timeout",
        "read_timeout",
        "write_timeout",
        "pool_timeout",
        "max_retries",
        "backoff_base",
        "backoff_cap",
        "jitter",
        "retry_after_cap",
    )

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, (int, float)) and value < 0:
                raise PlanError(f"HTTP setting {f.name} must not be negative (got {value})")
        if self.jitter >= 1:
            raise PlanError(f"HTTP setting jitter must be below 1 (got {self.jitter})")

    @classmethod
    def from_options(cls, options: Mapping[str, Any], *, base: "HttpPolicy | None" = None) -> "HttpPolicy":
        """A policy from a profile's options; keys not about HTTP are ignored here."""
        changes: dict[str, Any] = {}
        for name in cls.OPTION_NAMES:
            if name in options and options[name] is not None:
                value = options[name]
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise PlanError(f"provider option {name} must be a number (got {value!r})")
                changes[name] = int(value) if name == "max_retries" else float(value)
        return replace(base or cls(), **changes)

    def timeout(self, *, read: float | None = None) -> httpx.Timeout:
        """An ``httpx.Timeout`` with these settings (``read`` overrides the read timeout)."""
        return httpx.Timeout(
            connect=self.connect_timeout,
            read=self.read_timeout if read is None else read,
            write=self.write_timeout,
            pool=self.pool_timeout,
        )

    def schedule(self) -> Backoff:
        """This policy's retry schedule (the one rule in :mod:`recraft_build.retry`)."""
        return Backoff(
            base=self.backoff_base,
            cap=self.backoff_cap,
            jitter=self.jitter,
            retry_after_cap=self.retry_after_cap,
        )

    def backoff(self, retry: int, rand: Callable[[], float]) -> float:
        """Seconds to wait before retry number ``retry`` (0-based), with jitter."""
        return self.schedule().backoff(retry, rand)


class _Bucket:
    """A token bucket that may go into debt: callers reserve, then sleep off the debt.

    Reserving first and sleeping outside the lock keeps the order of callers (FIFO
    in practice) and never holds the lock while sleeping.
    """

    def __init__(self, rate: float, burst: float, now: float):
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.last = now

    def reserve(self, amount: float, now: float) -> float:
        """Take ``amount`` tokens; return the seconds until they are really available."""
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        self.tokens -= amount
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate


class RateLimiter:
    """Client-side rate limits for one provider, shared by all worker threads.

    Three optional token buckets: requests per second (every HTTP attempt), images
    per minute (pictures asked for by generations) and creates per minute
    (Replicate prediction creates). ``None`` or 0 turns a limit off. Each bucket
    allows a burst of ``burst_seconds`` worth of its rate (at least the largest single
    request, 6 images), then throttles to the rate. The server's own 429 answers
    still get retried; this limiter only keeps them rare.

    ``clock`` and ``sleep`` are injected (tests pass a fake clock whose sleep
    advances it).

    ``on_wait`` (the provider's notice callback) hears about waits, so a build that
    slows down says why: a wait of :data:`NOTICE_AFTER` seconds or more gives one line,
    ``waiting 4 s for the rate limit (100 images/min)``, plus ``advice[bucket]`` if
    given (how to raise it); at most one line per :data:`NOTICE_EVERY` seconds, since
    every worker waits in turn once the limit is reached.
    """

    #: Shortest wait (seconds) that is reported through ``on_wait``.
    NOTICE_AFTER = 1.0
    #: Least time (seconds, on the limiter's clock) between two reported waits.
    NOTICE_EVERY = 30.0
    _UNITS = {"requests": ("requests/s", 1.0), "images": ("images/min", 60.0), "creates": ("creates/min", 60.0)}

    def __init__(
        self,
        *,
        requests_per_second: float | None = None,
        images_per_minute: float | None = None,
        creates_per_minute: float | None = None,
        burst_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        on_wait: Callable[[str], None] | None = None,
        advice: Mapping[str, str] | None = None,
    ):
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._on_wait = on_wait
        self._advice = dict(advice or {})
        self._last_notice: float | None = None
        now = clock()
        self._buckets: dict[str, _Bucket] = {}
        self._shown: dict[str, str] = {}
        for key, limit in (
            ("requests", requests_per_second),
            ("images", images_per_minute),
            ("creates", creates_per_minute),
        ):
            if limit is None or limit == 0:
                continue
            if limit < 0:
                raise PlanError(f"rate limit for {key} must be positive (got {limit})")
            unit, per = self._UNITS[key]
            rate = float(limit) / per
            burst = max(rate * burst_seconds, 6.0 if key == "images" else 1.0)
            self._buckets[key] = _Bucket(rate, burst, now)
            self._shown[key] = f"{limit:g} {unit}"

    @classmethod
    def unlimited(cls) -> "RateLimiter":
        """A limiter that never waits."""
        return cls()

    @property
    def limits(self) -> dict[str, float]:
        """The configured rates, per second, by bucket name (for messages and tests)."""
        return {k: b.rate for k, b in self._buckets.items()}

    def acquire(self, *, requests: int = 1, images: int = 0, creates: int = 0) -> float:
        """Block until the call may go; return the seconds waited (0 if none)."""
        wanted = {"requests": requests, "images": images, "creates": creates}
        notice = None
        with self._lock:
            now = self._clock()
            wait = 0.0
            slowest = ""
            for key, bucket in self._buckets.items():
                if wanted[key]:
                    needed = bucket.reserve(wanted[key], now)
                    if needed > wait:
                        wait, slowest = needed, key
            if (
                self._on_wait is not None
                and wait >= self.NOTICE_AFTER
                and (self._last_notice is None or now - self._last_notice >= self.NOTICE_EVERY)
            ):
                self._last_notice = now
                advice = self._advice.get(slowest)
                notice = (
                    f"waiting {wait:.0f} s for the rate limit ({self._shown[slowest]})"
                    + (f"; {advice}" if advice else "")
                )
        if notice is not None:
            assert self._on_wait is not None
            self._on_wait(notice)
        if wait > 0:
            self._sleep(wait)
        return wait


@dataclass(frozen=True)
class CallContext:
    """Who is calling, for headers and messages.

    ``secret`` is the token (wrapped, never shown) and ``auth`` its scheme
    (``bearer``: ``Authorization: Bearer <token>``; ``raw``: the bare token, for
    proxies that want it). ``token_env`` is the environment variable a user should
    set when the server refuses the token. ``on_retry`` receives a one-line note each
    time a call is retried (the library never prints; the reporter may).
    ``protocol`` (``recraft`` or ``replicate``) and ``base_url`` let a 404 suggest the
    base URL that fits what was given (see :func:`base_url_advice`).
    """

    provider: str
    secret: Secret | None = None
    auth: str = "bearer"
    token_env: str | None = None
    on_retry: Callable[[str], None] | None = None
    protocol: str | None = None
    base_url: str | None = None

    def __post_init__(self) -> None:
        if self.auth not in AUTH_SCHEMES:
            raise PlanError(
                f"provider {self.provider}: auth must be one of {', '.join(AUTH_SCHEMES)} "
                f"(got {self.auth!r})"
            )

    def auth_headers(self) -> dict[str, str]:
        """The ``Authorization`` header for this provider (empty without a token)."""
        if not self.secret:
            return {}
        token = self.secret.reveal()
        return {"Authorization": token if self.auth == "raw" else f"Bearer {token}"}

    def clean(self, text: str) -> str:
        """``text`` with this context's token masked."""
        return redact_text(text, [self.secret] if self.secret else [])

    def error(
        self,
        cls: type[ProviderError],
        message: str,
        *,
        status: int | None = None,
        request_id: str | None = None,
        asset: str | None = None,
    ) -> ProviderError:
        """An error of class ``cls`` with the token masked out of every field."""
        return cls(
            self.clean(message),
            provider=self.provider,
            status=status,
            # Masked, then cut: cutting first could leave part of an echoed token.
            request_id=self.clean(request_id)[:_MAX_REQUEST_ID] if request_id else None,
            asset=asset,
        )

    def retried(self, note: str) -> None:
        if self.on_retry is not None:
            self.on_retry(self.clean(note))


def request_id_of(response: httpx.Response) -> str | None:
    """The server's id for this request, from the first header in :data:`REQUEST_ID_HEADERS`."""
    for name in REQUEST_ID_HEADERS:
        value = response.headers.get(name)
        if value:
            return value.strip()
    return None


def _shorten(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_TEXT else text[: _MAX_TEXT - 3] + "..."


def error_text(response: httpx.Response, *, redact: Callable[[str], str] | None = None) -> str:
    """What the server said about a failure, in one short line.

    Handles Recraft's plain-text bodies (``request unauthorized``), JSON bodies
    (``{"error": ...}``, ``{"message": ...}``, ``{"code":..., "message":...}``) and
    Replicate's problem+json (``detail``, ``title``). An HTML error page becomes a
    note that it was HTML. Never raises.

    ``redact`` (e.g. :meth:`CallContext.clean`) masks secrets **before** the text is
    cut to its length limit: cutting first could split a token the server echoed, and
    the part before the cut would no longer match the token and would survive.
    """
    def shorten(text: str) -> str:
        return _shorten(redact(text) if redact is not None else text)

    try:
        raw = response.read()
    except httpx.HTTPError:
        return "(the error body could not be read)"
    text = raw.decode("utf-8", errors="replace").strip()
    if not text:
        return response.reason_phrase or "(empty body)"
    ctype = response.headers.get("content-type", "").lower()
    if "html" in ctype or text[:15].lower().startswith(("<!doctype html", "<html")):
        return f"an HTML page instead of an API answer ({response.reason_phrase or 'no reason'})"
    if "json" in ctype or text[:1] in "{[":
        try:
            data = json.loads(text)
        except ValueError:
            return shorten(text)
        found = _message_from_json(data)
        if found:
            return shorten(found)
    return shorten(text)


def _message_from_json(data: Any) -> str | None:
    if isinstance(data, str):
        return data
    if isinstance(data, list):
        parts = [m for m in (_message_from_json(x) for x in data[:5]) if m]
        return "; ".join(parts) or None
    if not isinstance(data, dict):
        return None
    if isinstance(data.get("loc"), list) and "msg" in data:
        # FastAPI-style validation entries keep the field they are about.
        return f"{'.'.join(str(p) for p in data['loc'])}: {data['msg']}"
    for key in ("detail", "message", "error", "msg", "title", "code"):
        if key in data:
            found = _message_from_json(data[key])
            if found:
                return found
    return None


def retry_after_seconds(response: httpx.Response, *, wall_clock: Callable[[], float] = time.time) -> float | None:
    """Seconds the server asked us to wait (``Retry-After``, delta or HTTP date), or None.

    An HTTP date is measured against the response's own ``Date`` header when it has
    one (so a skewed local clock does not matter), else against ``wall_clock``
    (:func:`recraft_build.retry.retry_after_of`).
    """
    return retry_after_of(response.headers, clock=wall_clock)


def _auth_message(ctx: CallContext, status: int, text: str, what: str) -> str:
    env = ctx.token_env or "the provider's token variable"
    if status == 401:
        return (
            f"{what} was refused: the token is missing or wrong (server said: {text}). "
            f"Set {env} to a valid token and run the build again"
        )
    return (
        f"{what} was forbidden (server said: {text}). The token in {env} is not allowed "
        "to do this, or the account has no credits left: check the account, or set "
        f"{env} to another token"
    )


#: Per protocol: the official base URL, and the path prefix a proxy of it usually has.
OFFICIAL_BASES = {"recraft": "https://external.api.recraft.ai/v1", "replicate": "https://api.replicate.com/v1"}
PROXY_PREFIXES = {"recraft": "/recraft/v1", "replicate": "/replicate/v1"}


def base_url_advice(base_url: str, protocol: str) -> str:
    """What to try when ``base_url`` answered 404, for a provider of ``protocol``.

    The base URL ends where the API's own paths begin (``.../images/generations``,
    ``.../models/...``), so it includes the version: the official APIs want ``/v1``,
    and proxies put their own prefix before it (ElkAPI ``/recraft/v1``, kkiai
    ``/replicate/v1``). The advice suggests the form that fits what was given.
    """
    official = OFFICIAL_BASES[protocol]
    prefix = PROXY_PREFIXES[protocol]
    bare_prefix = prefix[: -len("/v1")]
    other = next(p for name, p in PROXY_PREFIXES.items() if name != protocol)
    url = httpx.URL(base_url)
    origin = str(url.copy_with(path="/", query=None, fragment=None)).rstrip("/")
    path = url.path.rstrip("/")
    official_url = httpx.URL(official)
    if url.host == official_url.host:
        if path != official_url.path:
            return f"the official API's base URL is {official}"
        return "it is the official base URL, so the API itself does not know this endpoint"
    if path.endswith(other) or path.endswith(other[: -len("/v1")]):
        return (
            f"{path} is the other protocol's prefix: use {origin}{prefix} with the {protocol} "
            "protocol, or choose the provider (or profile protocol) that matches this proxy"
        )
    if path.endswith(bare_prefix):
        return f"add the API version: {origin}{path}/v1"
    if path.endswith(prefix):
        return (
            f"it already ends in {prefix}; check the proxy's documentation for the exact path "
            "(everything before /images/... or /models/... in its examples)"
        )
    if path in ("", "/v1"):
        return f"a proxy of the {protocol} API usually serves it under {prefix}: try {origin}{prefix}"
    return (
        f"for the official API use {official}; for a proxy, everything before "
        f"/{'images' if protocol == 'recraft' else 'models'}/... in its examples, usually {origin}{prefix}"
    )


def _rejected_message(status: int, text: str, what: str, url: str, ctx: CallContext | None = None) -> str:
    if status == 402:
        return f"{what} was refused for payment (server said: {text}). Top up the account's credits"
    if status == 404 and ctx is not None and ctx.base_url and ctx.protocol in PROXY_PREFIXES:
        return (
            f"{what} was rejected: not found (server said: {text}). Check the base URL "
            f"({ctx.base_url}): {base_url_advice(ctx.base_url, ctx.protocol)}"
        )
    if status == 404:
        return (
            f"{what} was rejected: not found (server said: {text}). Check the base URL "
            f"({_origin_path(url)}): a proxy usually needs its prefix, such as /recraft/v1 "
            "or /replicate/v1"
        )
    return f"{what} was rejected (server said: {text}). Fix the request in the spec; resending it as is cannot help"


def _origin_path(url: str) -> str:
    # Drop any query string: a signed URL's query is a credential of sorts.
    try:
        u = httpx.URL(url)
    except Exception:  # pragma: no cover - url came from httpx already
        return "(unparseable URL)"
    return str(u.copy_with(query=None, fragment=None))


def send(
    client: httpx.Client,
    method: str,
    url: str,
    *,
    ctx: CallContext,
    policy: HttpPolicy,
    paid: bool,
    what: str,
    asset: str | None = None,
    sleep: Callable[[float], None] = time.sleep,
    rand: Callable[[], float] = random.random,
    wall_clock: Callable[[], float] = time.time,
    before_attempt: Callable[[int], None] | None = None,
    hint: Callable[[int, str], str | None] | None = None,
    timeout: httpx.Timeout | None = None,
    headers: Mapping[str, str] | None = None,
    json_body: Any = None,
    data: Mapping[str, Any] | None = None,
    files: Any = None,
) -> httpx.Response:
    """Send one API request with the retry rules of this module; return a 2xx response.

    ``paid`` marks a POST that costs money (see the careful rule). ``what`` names
    the call in messages (``"generation (POST /images/generations)"``).
    ``before_attempt(n)`` runs before each attempt (0-based), e.g. to take a
    rate-limit token. ``hint(status, server_text)`` may return extra advice for a
    rejected request (an unknown style -> the allowed ones). Redirects are not
    followed: an API that redirects is misconfigured (or the base URL is), and a
    POST must not silently turn into a GET. The response body is read before
    returning.

    Raises :class:`AuthError`, :class:`RequestRejected`, :class:`AmbiguousError`,
    :class:`TransientError` or :class:`ProviderError` (a local problem such as an
    unusable base URL); every one chained to the httpx exception, if any.
    """
    all_headers = {**(dict(headers) if headers else {}), **ctx.auth_headers()}
    timeout = timeout or policy.timeout()
    retrier = Retrier(policy.schedule(), sleep=sleep, clock=wall_clock, rand=rand)
    attempts = policy.max_retries + 1
    last_problem = ""
    last_status: int | None = None
    last_request_id: str | None = None
    for attempt in range(attempts):
        if before_attempt is not None:
            before_attempt(attempt)
        delay: float | None = None
        try:
            response = client.request(
                method,
                url,
                headers=all_headers,
                json=json_body,
                data=data,
                files=files,
                timeout=timeout,
                follow_redirects=False,
            )
        except _NOT_SENT as exc:
            last_problem = f"could not reach the server ({type(exc).__name__}: {exc})"
            last_status, last_request_id = None, None
            cause: BaseException = exc
        except _ANSWER_LOST as exc:
            if paid:
                raise ctx.error(
                    AmbiguousError,
                    f"{what} was sent but its answer was lost ({type(exc).__name__}: {exc}); "
                    "it may have been billed. It was not resent, so you are not charged twice. "
                    "Check the account's usage; the next build will try this asset again",
                    asset=asset,
                ) from exc
            last_problem = f"the answer was lost ({type(exc).__name__}: {exc})"
            last_status, last_request_id = None, None
            cause = exc
        except httpx.HTTPError as exc:
            # UnsupportedProtocol, LocalProtocolError, InvalidURL...: our side is wrong.
            raise ctx.error(
                ProviderError,
                f"{what} could not be sent ({type(exc).__name__}: {exc}). Check the base URL "
                "and the provider settings",
                asset=asset,
            ) from exc
        else:
            status = response.status_code
            if 200 <= status < 300:
                response.read()
                return response
            text = error_text(response, redact=ctx.clean)
            request_id = request_id_of(response)
            response.close()
            if status in (401, 403):
                raise ctx.error(
                    AuthError,
                    _auth_message(ctx, status, text, what),
                    status=status,
                    request_id=request_id,
                    asset=asset,
                )
            retryable = policy.paid_retry_statuses if paid else policy.idempotent_retry_statuses
            if status >= 500 and paid and status not in retryable:
                raise ctx.error(
                    AmbiguousError,
                    f"{what} failed on the server side (server said: {text}) after the request "
                    "was received; it may have been billed. It was not resent, so you are not "
                    "charged twice. Check the account's usage; the next build will try this "
                    "asset again",
                    status=status,
                    request_id=request_id,
                    asset=asset,
                )
            if status not in retryable:
                if 300 <= status < 400:
                    where = response.headers.get("location", "(no location)")
                    message = (
                        f"{what} was redirected to {ctx.clean(_origin_path(where))}; set the "
                        "provider's base URL to the final address"
                    )
                else:
                    message = _rejected_message(status, text, what, url, ctx)
                    extra = hint(status, text) if hint is not None else None
                    if extra:
                        message = f"{message}. {extra}"
                raise ctx.error(
                    RequestRejected, message, status=status, request_id=request_id, asset=asset
                )
            last_problem = f"HTTP {status} ({text})"
            last_status, last_request_id = status, request_id
            cause = httpx.HTTPStatusError(last_problem, request=response.request, response=response)
            asked = retrier.retry_after(response.headers)
            if asked is not None:
                if asked > policy.retry_after_cap:
                    raise ctx.error(
                        TransientError,
                        f"{what}: the server asked to wait {asked:.0f} s before retrying "
                        f"({text}), longer than the {policy.retry_after_cap:.0f} s we wait. "
                        "Run the build again later, or lower -j and the provider's rate limits",
                        status=status,
                        request_id=request_id,
                        asset=asset,
                    ) from cause
                delay = retrier.delay(attempt, retry_after=asked)
        if attempt + 1 >= attempts:
            break
        if delay is None:
            delay = retrier.delay(attempt)
        ctx.retried(f"{what}: {last_problem}; retrying in {delay:.1f} s ({attempt + 1}/{policy.max_retries})")
        retrier.sleep(delay)
    advice = (
        "lower -j or the provider's rate limits, and run the build again"
        if last_status == 429
        else "check the network or the service status, and run the build again"
    )
    billed = "Nothing was billed for the failed attempts; " if paid else ""
    raise ctx.error(
        TransientError,
        f"{what} still failed after {attempts} attempt(s): {last_problem}. {billed}{advice}",
        status=last_status,
        request_id=last_request_id,
        asset=asset,
    ) from cause


_LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


def check_base_url(base_url: str, *, provider: str, allow_http: bool = False) -> str:
    """The base URL without a trailing slash, or :class:`PlanError` if it is unusable.

    Plain ``http://`` is refused except to this machine (``localhost``, 127.0.0.1,
    ::1) unless ``allow_http`` is set, because the token would cross the network in
    clear text. A base URL must not carry credentials (``user:pass@`` or a query).
    """
    try:
        url = httpx.URL(base_url)
    except Exception as exc:
        raise PlanError(f"provider {provider}: base URL {base_url!r} is not a URL ({exc})") from exc
    if url.scheme not in ("http", "https") or not url.host:
        raise PlanError(
            f"provider {provider}: base URL must start with https:// and name a host "
            f"(got {redact_text(str(url.copy_with(query=None, userinfo=b'')))!r})"
        )
    if url.userinfo or url.query:
        raise PlanError(
            f"provider {provider}: the base URL must not contain credentials or a query "
            "string; put the token in the environment variable the profile names"
        )
    if url.scheme == "http" and url.host not in _LOOPBACK_HOSTS and not allow_http:
        raise PlanError(
            f"provider {provider}: base URL {url} uses plain http, which would send the token "
            "unencrypted; use https (or set the profile option allow_http: true for a "
            "trusted local proxy)"
        )
    return str(url).rstrip("/")


def json_of(
    response: httpx.Response,
    *,
    ctx: CallContext,
    what: str,
    asset: str | None = None,
    paid: bool = False,
) -> dict[str, Any]:
    """The response's JSON object, or :class:`BadResultError` saying what came instead."""
    billed = " The call may have been billed." if paid else ""
    try:
        data = response.json()
    except ValueError as exc:
        ctype = response.headers.get("content-type", "?")
        raise ctx.error(
            BadResultError,
            f"{what} answered {response.status_code} with {ctype} that is not JSON.{billed} "
            "Check the provider's base URL",
            status=response.status_code,
            request_id=request_id_of(response),
            asset=asset,
        ) from exc
    if not isinstance(data, dict):
        raise ctx.error(
            BadResultError,
            f"{what} answered with JSON that is not an object.{billed}",
            status=response.status_code,
            request_id=request_id_of(response),
            asset=asset,
        )
    return data
