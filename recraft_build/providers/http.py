"""Network discipline shared by both protocols: timeouts, retries, deadlines, errors.

The rule this module exists for: **a flaky network may cost time; money paid twice
is always counted and reported, never silent.**

What is retried (with exponential backoff and jitter, ``Retry-After`` honoured as
seconds or an HTTP date; the timing is :mod:`recraft_build.retry`'s, shared with the
remote caches), up to ``max_retries`` times:

* any request, when the failure happened before the request reached the server:
  ``httpx.ConnectError``, ``ConnectTimeout``, ``PoolTimeout``, ``ProxyError``, and a
  ``WriteError``/``WriteTimeout`` (the body was not completely handed to the network,
  so the server cannot have accepted the request);
* any request answered 429, 408, 502 or 503: the server (or its gateway) says it did
  not do the work;
* any request answered **500 with the API's own error body** (``api_error``: a JSON
  error object from Recraft, problem details from Replicate): the application
  itself refused the call, and APIs bill work they did, not errors they answered
  (recraft-api.md 1.8 and 3.2; an assumption, marked uncertain there);
* idempotent requests (GET: polls, listings, downloads) on every other 5xx and on a
  lost answer (``ReadTimeout``, ``ReadError``, ``RemoteProtocolError``, the overall
  deadline).

**Ambiguous paid calls.** When a paid POST (a generation, a tool call, a style, a
prediction create) was sent but its answer was lost (read timeout, the overall
deadline, connection reset or closed after sending) or came back 500 without the
API's error body or 504 (the server or its gateway got the request and then failed
or gave up), the call *may have been billed*. By default (``resend_ambiguous``) it
is sent again, at most ``max_resends`` times per call; each such resend is counted in
the call's :class:`CallStats` (``resends``), which the provider hands to the engine
in its result, so the build can count it against ``--max-credits`` and report it
("possibly billed twice"). With ``resend_ambiguous`` off (the strict rule), or once
the resends are used up, :func:`send` raises
:class:`~recraft_build.errors.AmbiguousError`, the asset fails and nothing is cached.
The Replicate provider resends nothing blindly: it first looks the prediction up
(``providers/replicate.py``).

**Overall deadline.** Besides the per-read timeouts, every exchange has a total
deadline (``response_deadline`` for API calls, ``download_deadline`` for result
files; :mod:`.deadline`): a server trickling its answer one byte at a time is cut
there, as a lost answer.

Never retried: 400, 401, 403, 404, 422 and every other 4xx (the request itself is
wrong; resending it cannot help).

Statuses map to the error tree: 401/403 -> :class:`AuthError` naming the env var to
set; other 4xx -> :class:`RequestRejected` with the server's text; retries run out
-> :class:`TransientError`. Every message names the provider, the status and the
request id (from ``X-Request-Id``, ``X-Recraft-Requestid``... when the server sent
one), and never contains a token. Reading error bodies is :mod:`.errortext`'s job,
client-side rate limits :mod:`.ratelimit`'s; both are re-exported here.
"""

from __future__ import annotations

import random
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, fields, replace
from typing import Any, Callable, Iterator, Mapping

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
from recraft_build.providers.deadline import DeadlineExceeded, exchange
from recraft_build.providers.errortext import (
    OFFICIAL_BASES,
    PROXY_PREFIXES,
    REQUEST_ID_HEADERS,
    auth_message,
    base_url_advice,
    error_text,
    origin_path,
    rejected_message,
    request_id_of,
)
from recraft_build.providers.ratelimit import RateLimiter
from recraft_build.providers.redact import Secret, redact_text
from recraft_build.retry import Backoff, Retrier, retry_after_of

__all__ = [
    "AUTH_SCHEMES",
    "CallContext",
    "CallStats",
    "DeadlineExceeded",
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

# Failures before the request reached the server: always safe to retry.
_NOT_SENT = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.ProxyError,
    httpx.WriteError,
    httpx.WriteTimeout,
)
# Failures after the request was sent: the answer is lost. (DeadlineExceeded is a
# ReadTimeout: the overall deadline passed.)
_ANSWER_LOST = (
    httpx.ReadTimeout,
    httpx.ReadError,
    httpx.RemoteProtocolError,
    httpx.CloseError,
)

# Longest request id kept in a message.
_MAX_REQUEST_ID = 200


@dataclass(frozen=True)
class HttpPolicy:
    """Timeouts, deadlines and retry settings for one provider.

    Timeouts are in seconds. ``read_timeout`` (the longest silence while reading)
    must outlast a generation (the Recraft API answers when the picture is done,
    typically 5-60 s), because a read timeout on a paid POST is an ambiguous, possibly
    billed call. ``response_deadline`` bounds a whole API answer and
    ``download_deadline`` a whole result file, however the bytes trickle in (0 turns
    a deadline off). ``max_retries`` counts retries after the first attempt. The
    delay before retry ``k`` (0-based) is ``min(backoff_cap, backoff_base * 2**k)``
    scaled by a random factor in ``[1 - jitter, 1 + jitter]``; a ``Retry-After`` from
    the server replaces it (plus a little jitter), and one longer than
    ``retry_after_cap`` ends the retries at once. ``paid_retry_statuses`` are the
    statuses on which a paid POST is resent as not billed (see the module docstring
    for 500 and 504). ``resend_ambiguous`` and ``max_resends`` say whether, and how
    many times per call, a paid POST whose answer was lost is sent again.
    """

    connect_timeout: float = 10.0
    read_timeout: float = 180.0
    write_timeout: float = 60.0
    pool_timeout: float = 60.0
    response_deadline: float = 180.0
    download_deadline: float = 60.0
    # Enough that a network failing 40 % of requests still lets nearly every call
    # through (0.4 ** 11: about 4 in 100,000), as replicate-python's 10 attempts do.
    max_retries: int = 10
    backoff_base: float = 0.5
    backoff_cap: float = 30.0
    jitter: float = 0.2
    retry_after_cap: float = 120.0
    resend_ambiguous: bool = True
    # Each resend may be billed; more than one per call only matters on a network
    # that loses a tenth of all answers, where one would fail about 1 call in 50.
    max_resends: int = 3
    paid_retry_statuses: frozenset[int] = field(
        default_factory=lambda: frozenset({408, 429, 502, 503})
    )
    idempotent_retry_statuses: frozenset[int] = field(
        default_factory=lambda: frozenset({408, 429, 500, 502, 503, 504})
    )

    #: Numeric option names accepted by :meth:`from_options` (a profile's ``options``).
    OPTION_NAMES = (
        "connect_timeout",
        "read_timeout",
        "write_timeout",
        "pool_timeout",
        "response_deadline",
        "download_deadline",
        "max_retries",
        "backoff_base",
        "backoff_cap",
        "jitter",
        "retry_after_cap",
        "max_resends",
    )
    #: True/false option names accepted by :meth:`from_options`.
    FLAG_NAMES = ("resend_ambiguous",)
    _WHOLE = frozenset({"max_retries", "max_resends"})

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
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
                if name in cls._WHOLE and value != int(value):
                    raise PlanError(f"provider option {name} must be a whole number (got {value!r})")
                changes[name] = int(value) if name in cls._WHOLE else float(value)
        for name in cls.FLAG_NAMES:
            if name in options and options[name] is not None:
                if not isinstance(options[name], bool):
                    raise PlanError(f"provider option {name} must be true or false (got {options[name]!r})")
                changes[name] = options[name]
        return replace(base or cls(), **changes)

    @property
    def resends(self) -> int:
        """How many times one paid call may be sent again after a lost answer."""
        return self.max_resends if self.resend_ambiguous else 0

    def deadline(self, seconds: float) -> float | None:
        """A deadline setting as :func:`.deadline.exchange` takes it (0 means none)."""
        return seconds or None

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



def retry_after_seconds(response: httpx.Response, *, wall_clock: Callable[[], float] = time.time) -> float | None:
    """Seconds the server asked us to wait (``Retry-After``, delta or HTTP date), or None.

    An HTTP date is measured against the response's own ``Date`` header when it has
    one (so a skewed local clock does not matter), else against ``wall_clock``
    (:func:`recraft_build.retry.retry_after_of`).
    """
    return retry_after_of(response.headers, clock=wall_clock)


@dataclass
class CallStats:
    """What one provider call did beyond its answer, for the result the engine reads.

    ``resends`` counts paid requests sent again after an ambiguous failure (each may
    have been billed twice). One value per provider call, used by one thread.
    """

    resends: int = 0

    @contextmanager
    def on_errors(self) -> Iterator[None]:
        """Within: a :class:`ProviderError` leaving the call carries ``resends`` too, so
        the engine counts what a failed call may have been billed."""
        try:
            yield
        except ProviderError as exc:
            exc.resends = max(exc.resends, self.resends)
            raise


def _billing_note(resent: int) -> str:
    """How a failed paid call's resends may have been billed, for a message."""
    if not resent:
        return ""
    return (
        f" It had already been sent again {resent} time(s) after lost answers, so it may "
        f"have been billed up to {resent + 1} times."
    )


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
    deadline: float | None = None,
    headers: Mapping[str, str] | None = None,
    json_body: Any = None,
    data: Mapping[str, Any] | None = None,
    files: Any = None,
    api_error: Callable[[httpx.Response], bool] | None = None,
    resends: int | None = None,
    stats: CallStats | None = None,
    resend_permit: Callable[[], bool] | None = None,
) -> httpx.Response:
    """Send one API request with the retry rules of this module; return a 2xx response.

    ``paid`` marks a POST that costs money (see the module docstring). ``what`` names
    the call in messages (``"generation (POST /images/generations)"``).
    ``before_attempt(n)`` runs before each attempt (0-based), e.g. to take a
    rate-limit token. ``hint(status, server_text)`` may return extra advice for a
    rejected request (an unknown style -> the allowed ones). ``deadline`` bounds each
    whole exchange (default: the policy's ``response_deadline``). ``api_error(response)``
    says whether an error answer carries the API's own error body (a 500 with it was
    not billed, and is retried). ``resends`` is how many times an ambiguous paid call
    may be sent again (default: the policy's; 0 is the strict rule); each resend is
    counted in ``stats``, and ``resend_permit()`` (the build's credit limit, say) is
    asked first: False keeps the strict rule for this one. Redirects are not followed: an API that redirects is
    misconfigured (or the base URL is), and a POST must not silently turn into a GET.
    The response returned has been read completely.

    Raises :class:`AuthError`, :class:`RequestRejected`, :class:`AmbiguousError`,
    :class:`TransientError` or :class:`ProviderError` (a local problem such as an
    unusable base URL); every one chained to the httpx exception, if any. Retries
    that run out after a resend raise :class:`AmbiguousError`, not
    :class:`TransientError`: the lost answer before it may have been billed.
    """
    all_headers = {**(dict(headers) if headers else {}), **ctx.auth_headers()}
    timeout = timeout or policy.timeout()
    if deadline is None:
        deadline = policy.deadline(policy.response_deadline)
    retrier = Retrier(policy.schedule(), sleep=sleep, clock=wall_clock, rand=rand)
    stats = stats if stats is not None else CallStats()
    resends_left = (policy.resends if resends is None else resends) if paid else 0
    resent = 0
    retries = 0  # transient retries so far (the backoff exponent counts resends too)
    last_problem = ""
    last_status: int | None = None
    last_request_id: str | None = None
    cause: BaseException | None = None
    for attempt in range(policy.max_retries + resends_left + 1):
        if before_attempt is not None:
            before_attempt(attempt)
        delay: float | None = None
        ambiguous: str | None = None
        try:
            request = client.build_request(
                method, url, headers=all_headers, json=json_body, data=data, files=files, timeout=timeout,
            )
            response = exchange(client, request, deadline=deadline)
        except _NOT_SENT as exc:
            last_problem = f"could not reach the server ({type(exc).__name__}: {exc})"
            last_status, last_request_id, cause = None, None, exc
        except _ANSWER_LOST as exc:
            last_problem = f"the answer was lost ({type(exc).__name__}: {exc})"
            last_status, last_request_id, cause = None, None, exc
            if paid:
                ambiguous = f"{what} was sent but its answer was lost ({type(exc).__name__}: {exc})"
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
                return response
            text = error_text(response, redact=ctx.clean)
            request_id = request_id_of(response)
            if status in (401, 403):
                raise ctx.error(
                    AuthError,
                    auth_message(ctx.token_env, status, text, what),
                    status=status,
                    request_id=request_id,
                    asset=asset,
                )
            retryable = policy.paid_retry_statuses if paid else policy.idempotent_retry_statuses
            # The API's own error body on a 500: it refused the call, nothing was done.
            unbilled = status == 500 and api_error is not None and api_error(response)
            last_problem = f"HTTP {status} ({text})"
            last_status, last_request_id = status, request_id
            cause = httpx.HTTPStatusError(last_problem, request=response.request, response=response)
            if status >= 500 and paid and status not in retryable and not unbilled:
                ambiguous = (
                    f"{what} failed on the server side (server said: {text}) after the request "
                    "was received"
                )
            elif status not in retryable and not unbilled:
                if 300 <= status < 400:
                    where = response.headers.get("location", "(no location)")
                    message = (
                        f"{what} was redirected to {ctx.clean(origin_path(where))}; set the "
                        "provider's base URL to the final address"
                    )
                else:
                    message = rejected_message(status, text, what, url, base_url=ctx.base_url, protocol=ctx.protocol)
                    extra = hint(status, text) if hint is not None else None
                    if extra:
                        message = f"{message}. {extra}"
                raise ctx.error(
                    RequestRejected, message, status=status, request_id=request_id, asset=asset
                )
            else:
                asked = retrier.retry_after(response.headers)
                if asked is not None:
                    if asked > policy.retry_after_cap:
                        raise ctx.error(
                            AmbiguousError if resent else TransientError,
                            f"{what}: the server asked to wait {asked:.0f} s before retrying "
                            f"({text}), longer than the {policy.retry_after_cap:.0f} s we wait. "
                            "Run the build again later, or lower -j and the provider's rate "
                            f"limits.{_billing_note(resent)}",
                            status=status,
                            request_id=request_id,
                            asset=asset,
                        ) from cause
                    delay = retrier.delay(retries, retry_after=asked)
        if ambiguous is not None:
            if resends_left > 0 and resend_permit is not None and not resend_permit():
                raise ctx.error(
                    AmbiguousError,
                    f"{ambiguous}; it may have been billed. It was not sent again: the build's "
                    f"credit limit (--max-credits) has no room for a second charge.{_billing_note(resent)} "
                    "Check the account's usage; the next build will try this asset again",
                    status=last_status,
                    request_id=last_request_id,
                    asset=asset,
                ) from cause
            if resends_left <= 0:
                raise ctx.error(
                    AmbiguousError,
                    _ambiguous_message(ambiguous, resent),
                    status=last_status,
                    request_id=last_request_id,
                    asset=asset,
                ) from cause
            resends_left -= 1
            resent += 1
            stats.resends += 1
            delay = retrier.delay(retries + resent - 1)
            ctx.retried(
                f"{ambiguous}; it may have been billed. Sending it again in {delay:.1f} s "
                f"(resend {resent}), so it may be billed twice"
            )
            retrier.sleep(delay)
            continue
        if retries >= policy.max_retries:
            break
        if delay is None:
            delay = retrier.delay(retries)
        retries += 1
        ctx.retried(f"{what}: {last_problem}; retrying in {delay:.1f} s ({retries}/{policy.max_retries})")
        retrier.sleep(delay)
    advice = (
        "lower -j or the provider's rate limits, and run the build again"
        if last_status == 429
        else "check the network or the service status, and run the build again"
    )
    if paid and resent:
        billed = f"{resent} resend(s) after lost answers may have been billed; "
    elif paid:
        billed = "Nothing was billed for the failed attempts; "
    else:
        billed = ""
    # After a lost answer the call's fate stays unknown, however the resends ended.
    raise ctx.error(
        AmbiguousError if resent else TransientError,
        f"{what} still failed after {retries + resent + 1} attempt(s): {last_problem}. {billed}{advice}",
        status=last_status,
        request_id=last_request_id,
        asset=asset,
    ) from cause


def _ambiguous_message(problem: str, resent: int) -> str:
    if resent:
        return (
            f"{problem}; it may have been billed.{_billing_note(resent)} It was not sent "
            "again. Check the account's usage; the next build will try this asset again"
        )
    return (
        f"{problem}; it may have been billed. It was not resent, so you are not charged "
        "twice. Check the account's usage; the next build will try this asset again"
    )


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
