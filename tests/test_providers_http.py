"""Network discipline: retries, the careful rule for paid POSTs, rate limits, errors."""

from __future__ import annotations

import threading
import time
from typing import Any, Callable

import httpx
import pytest

from fakeserver import FakeClock
from recraft_build.errors import (
    AmbiguousError,
    AuthError,
    BadResultError,
    PlanError,
    ProviderError,
    RequestRejected,
    TransientError,
)
from recraft_build.providers.http import (
    CallContext,
    CallStats,
    HttpPolicy,
    RateLimiter,
    check_base_url,
    error_text,
    json_of,
    request_id_of,
    retry_after_seconds,
    send,
)
from recraft_build.providers.redact import Secret

TOKEN = "sk-live-SECRET-abcdef123456"
#: The strict rule: an ambiguous paid call is never sent again.
STRICT = HttpPolicy(max_retries=4, resend_ambiguous=False)
URL = "https://api.example.test/v1/images/generations"


class Script:
    """A MockTransport handler answering from a list of steps (the last one repeats).

    A step is an ``httpx.Response`` factory (a callable taking the request) or an
    exception instance to raise.
    """

    def __init__(self, *steps: Any):
        self.steps = list(steps)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        step = self.steps.pop(0) if len(self.steps) > 1 else self.steps[0]
        if isinstance(step, Exception):
            raise step
        return step(request)


def answer(status: int, body: Any = None, *, text: str | None = None, headers: dict[str, str] | None = None) -> Callable[[httpx.Request], httpx.Response]:
    def make(request: httpx.Request) -> httpx.Response:
        if text is not None:
            return httpx.Response(status, text=text, headers=headers)
        return httpx.Response(status, json=body if body is not None else {"ok": True}, headers=headers)

    return make


def call(script: Script, *, paid: bool = True, method: str = "POST", policy: HttpPolicy | None = None, clock: FakeClock | None = None, ctx: CallContext | None = None, **kw: Any) -> httpx.Response:
    clock = clock or FakeClock()
    client = httpx.Client(transport=httpx.MockTransport(script))
    return send(
        client,
        method,
        URL,
        ctx=ctx or CallContext("recraft", secret=Secret(TOKEN), token_env="RECRAFT_API_TOKEN"),
        policy=policy or HttpPolicy(max_retries=4),
        paid=paid,
        what="generation (POST /images/generations)",
        asset="hero",
        sleep=clock.sleep,
        rand=lambda: 0.5,
        json_body={"prompt": "x"} if method == "POST" else None,
        **kw,
    )


# -- policy -------------------------------------------------------------------------


def test_backoff_grows_exponentially_and_is_capped() -> None:
    p = HttpPolicy(backoff_base=1.0, backoff_cap=5.0, jitter=0.2)
    delays = [p.backoff(k, lambda: 0.5) for k in range(6)]
    assert delays == [1.0, 2.0, 4.0, 5.0, 5.0, 5.0]


def test_backoff_jitter_stays_within_bounds() -> None:
    p = HttpPolicy(backoff_base=1.0, jitter=0.2)
    assert p.backoff(0, lambda: 0.0) == pytest.approx(0.8)
    assert p.backoff(0, lambda: 0.999999) == pytest.approx(1.2, abs=1e-5)


def test_policy_from_options_reads_numbers_and_refuses_junk() -> None:
    p = HttpPolicy.from_options({"read_timeout": 30, "max_retries": 2, "unrelated": "x"})
    assert (p.read_timeout, p.max_retries) == (30.0, 2)
    with pytest.raises(PlanError, match="read_timeout"):
        HttpPolicy.from_options({"read_timeout": "soon"})
    with pytest.raises(PlanError, match="negative"):
        HttpPolicy.from_options({"max_retries": -1})


# -- retries ------------------------------------------------------------------------


def test_429_with_retry_after_is_honoured_then_succeeds() -> None:
    clock = FakeClock()
    script = Script(answer(429, text="slow down", headers={"Retry-After": "7"}), answer(200))
    response = call(script, clock=clock)
    assert response.status_code == 200
    assert len(script.requests) == 2
    assert 7.0 <= clock.sleeps[0] < 7.5


def test_retry_after_as_http_date_uses_the_response_date() -> None:
    headers = {"Retry-After": "Wed, 21 Oct 2015 07:28:10 GMT", "Date": "Wed, 21 Oct 2015 07:28:00 GMT"}
    response = httpx.Response(429, headers=headers)
    assert retry_after_seconds(response, wall_clock=lambda: 0.0) == pytest.approx(10.0)
    assert retry_after_seconds(httpx.Response(429, headers={"Retry-After": "soon"})) is None
    assert retry_after_seconds(httpx.Response(429)) is None


@pytest.mark.parametrize("status", [429, 502, 503, 408])
def test_paid_post_is_resent_when_the_server_says_it_did_no_work(status: int) -> None:
    script = Script(answer(status, text="busy"), answer(status, text="busy"), answer(200))
    assert call(script).status_code == 200
    assert len(script.requests) == 3


@pytest.mark.parametrize(
    "exc",
    [httpx.ConnectError("refused"), httpx.ConnectTimeout("slow connect"), httpx.PoolTimeout("pool"), httpx.WriteError("broken pipe")],
)
def test_paid_post_is_resent_when_it_never_reached_the_server(exc: Exception) -> None:
    script = Script(exc, answer(200))
    assert call(script).status_code == 200
    assert len(script.requests) == 2


@pytest.mark.parametrize(
    "exc",
    [httpx.ReadTimeout("timed out"), httpx.RemoteProtocolError("Server disconnected"), httpx.ReadError("connection reset")],
)
def test_paid_post_whose_answer_was_lost_is_never_resent(exc: Exception) -> None:
    script = Script(exc, answer(200))
    with pytest.raises(AmbiguousError) as info:
        call(script, policy=STRICT)
    assert len(script.requests) == 1
    message = str(info.value)
    assert "may have been billed" in message
    assert "asset 'hero'" in message and "provider recraft" in message
    assert "next build" in message
    assert isinstance(info.value.__cause__, httpx.HTTPError)


@pytest.mark.parametrize("status", [500, 504])
def test_paid_post_answered_500_or_504_is_ambiguous_and_not_resent(status: int) -> None:
    script = Script(answer(status, text="boom", headers={"X-Request-Id": "req-9"}), answer(200))
    with pytest.raises(AmbiguousError) as info:
        call(script, policy=STRICT)
    assert len(script.requests) == 1
    assert info.value.status == status
    assert info.value.request_id == "req-9"
    assert "request id req-9" in str(info.value)


@pytest.mark.parametrize(
    "fault",
    [httpx.ReadTimeout("timed out"), httpx.RemoteProtocolError("Server disconnected"), answer(500, text="boom"), answer(504, text="gw")],
)
def test_ambiguous_paid_post_is_resent_by_default_and_counted(fault: Any) -> None:
    notes: list[str] = []
    stats = CallStats()
    ctx = CallContext("recraft", secret=Secret(TOKEN), on_retry=notes.append)
    script = Script(fault, answer(200))
    assert call(script, ctx=ctx, stats=stats).status_code == 200
    assert len(script.requests) == 2
    assert stats.resends == 1  # the engine counts it: it may have been billed twice
    assert len(notes) == 1 and "billed twice" in notes[0]


def test_resends_are_bounded_and_the_error_says_how_often_it_may_have_been_billed() -> None:
    stats = CallStats()
    script = Script(httpx.RemoteProtocolError("gone"))
    with pytest.raises(AmbiguousError) as info:
        call(script, policy=HttpPolicy(max_retries=4, max_resends=2), stats=stats)
    assert len(script.requests) == 3 and stats.resends == 2
    assert "billed up to 3 times" in str(info.value)


def test_a_500_with_the_api_error_body_is_retried_as_not_billed() -> None:
    stats = CallStats()
    api_body = answer(500, {"code": "internal_error", "message": "try again"})
    script = Script(api_body, api_body, answer(200))
    response = call(script, policy=STRICT, stats=stats, api_error=lambda r: "code" in r.json())
    assert response.status_code == 200 and len(script.requests) == 3
    assert stats.resends == 0  # a refusal, not a lost answer


def test_a_500_is_ambiguous_when_the_body_is_not_the_api_s() -> None:
    # The same JSON under a gateway's text/plain label, or no recogniser at all.
    script = Script(answer(500, text='{"code": "x", "message": "y"}'))
    with pytest.raises(AmbiguousError):
        call(script, policy=STRICT, api_error=lambda r: r.headers.get("content-type") == "application/json")
    with pytest.raises(AmbiguousError):
        call(Script(answer(500, {"code": "x"})), policy=STRICT)
    assert len(script.requests) == 1


def test_a_500_with_the_api_error_body_on_a_get_is_retried_too() -> None:
    script = Script(answer(500, {"detail": "oops"}), answer(200))
    assert call(script, paid=False, method="GET", api_error=lambda r: True).status_code == 200


class SlowStream(httpx.SyncByteStream):
    """A body that comes one byte every ``delay`` seconds (real time)."""

    def __init__(self, size: int = 200, delay: float = 0.02):
        self.size, self.delay = size, delay

    def __iter__(self):  # type: ignore[no-untyped-def]
        for _ in range(self.size):
            time.sleep(self.delay)
            yield b" "


def trickle(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, headers={"Content-Type": "application/json"}, stream=SlowStream())


def test_a_trickled_get_is_cut_at_the_deadline_and_retried() -> None:
    script = Script(trickle, answer(200))
    response = call(script, paid=False, method="GET", deadline=0.2)
    assert response.status_code == 200 and len(script.requests) == 2


def test_a_trickled_paid_answer_is_ambiguous_at_the_deadline() -> None:
    script = Script(trickle, answer(200))
    with pytest.raises(AmbiguousError, match="deadline") as info:
        call(script, policy=STRICT, deadline=0.2)
    assert "may have been billed" in str(info.value) and len(script.requests) == 1
    stats = CallStats()
    script = Script(trickle, answer(200))
    assert call(script, deadline=0.2, stats=stats).status_code == 200  # the default: resent
    assert stats.resends == 1


def test_the_response_deadline_comes_from_the_policy() -> None:
    script = Script(trickle, answer(200))
    with pytest.raises(AmbiguousError, match="0.2 s"):
        call(script, policy=HttpPolicy(response_deadline=0.2, resend_ambiguous=False))


def test_policy_reads_the_resend_and_deadline_options() -> None:
    p = HttpPolicy.from_options({"resend_ambiguous": False, "max_resends": 1, "response_deadline": 30, "download_deadline": 0})
    assert (p.resend_ambiguous, p.max_resends, p.resends) == (False, 1, 0)
    assert p.deadline(p.response_deadline) == 30.0 and p.deadline(p.download_deadline) is None
    assert HttpPolicy().resends == 3 and HttpPolicy(max_resends=1).resends == 1
    with pytest.raises(PlanError, match="true or false"):
        HttpPolicy.from_options({"resend_ambiguous": "no"})
    with pytest.raises(PlanError, match="whole number"):
        HttpPolicy.from_options({"max_resends": 1.5})


@pytest.mark.parametrize("fault", [answer(500, text="boom"), answer(504, text="gw"), httpx.ReadTimeout("t"), httpx.RemoteProtocolError("gone")])
def test_get_is_retried_on_5xx_and_lost_answers(fault: Any) -> None:
    script = Script(fault, answer(200))
    assert call(script, paid=False, method="GET").status_code == 200
    assert len(script.requests) == 2


@pytest.mark.parametrize("status,cls", [(401, AuthError), (403, AuthError), (400, RequestRejected), (404, RequestRejected), (422, RequestRejected)])
def test_client_errors_are_never_retried(status: int, cls: type) -> None:
    script = Script(answer(status, text="nope"), answer(200))
    with pytest.raises(cls) as info:
        call(script)
    assert len(script.requests) == 1
    assert info.value.status == status
    assert "nope" in str(info.value)


def test_401_names_the_variable_to_set() -> None:
    script = Script(answer(401, text="request unauthorized"))
    with pytest.raises(AuthError) as info:
        call(script)
    message = str(info.value)
    assert "RECRAFT_API_TOKEN" in message and "request unauthorized" in message
    assert "HTTP 401" in message


def test_404_points_at_the_base_url() -> None:
    script = Script(answer(404, text="404 page not found"))
    with pytest.raises(RequestRejected, match="base URL"):
        call(script)


def test_rejection_carries_the_hint() -> None:
    script = Script(answer(400, text="invalid style foo"))
    with pytest.raises(RequestRejected, match="allowed: a, b"):
        call(script, hint=lambda status, text: "allowed: a, b" if "style" in text else None)


def test_exhausted_retries_raise_transient_with_status_and_request_id() -> None:
    script = Script(answer(503, text="maintenance", headers={"X-Request-Id": "abc"}))
    with pytest.raises(TransientError) as info:
        call(script, policy=HttpPolicy(max_retries=2))
    assert len(script.requests) == 3
    assert info.value.status == 503 and info.value.request_id == "abc"
    assert "3 attempt(s)" in str(info.value)


def test_retry_after_longer_than_the_cap_stops_at_once() -> None:
    script = Script(answer(429, text="throttled", headers={"Retry-After": "3600"}))
    with pytest.raises(TransientError, match="3600 s"):
        call(script, policy=HttpPolicy(retry_after_cap=60))
    assert len(script.requests) == 1


def test_redirects_are_refused_not_followed() -> None:
    script = Script(answer(301, text="", headers={"Location": "https://elsewhere.test/v1/x?sig=1"}))
    with pytest.raises(RequestRejected, match="redirected to https://elsewhere.test/v1/x") as info:
        call(script)
    assert "sig=1" not in str(info.value)
    assert len(script.requests) == 1


def test_before_attempt_and_on_retry_are_called_for_each_attempt() -> None:
    attempts: list[int] = []
    notes: list[str] = []
    ctx = CallContext("recraft", secret=Secret(TOKEN), on_retry=notes.append)
    script = Script(answer(503, text="busy"), answer(200))
    call(script, ctx=ctx, before_attempt=attempts.append)
    assert attempts == [0, 1]
    assert len(notes) == 1 and "503" in notes[0] and "retrying" in notes[0]


def test_unusable_url_is_a_provider_error() -> None:
    client = httpx.Client()
    with pytest.raises(ProviderError, match="base URL"):
        send(client, "GET", "ftp://x.test/", ctx=CallContext("p"), policy=HttpPolicy(), paid=False, what="x")


# -- auth header and secrets ----------------------------------------------------------


def test_bearer_and_raw_auth_headers() -> None:
    script = Script(answer(200))
    call(script, ctx=CallContext("p", secret=Secret(TOKEN), auth="bearer"))
    call(script, ctx=CallContext("p", secret=Secret(TOKEN), auth="raw"))
    assert [r.headers["authorization"] for r in script.requests] == [f"Bearer {TOKEN}", TOKEN]


def test_unknown_auth_scheme_is_refused() -> None:
    with pytest.raises(PlanError, match="bearer, raw"):
        CallContext("p", auth="basic")


def test_token_echoed_by_the_server_never_reaches_a_message() -> None:
    errors: list[BaseException] = []
    for status in (401, 403, 422, 500):
        body = f"bad credentials: Bearer {TOKEN} (token {TOKEN})"
        with pytest.raises(ProviderError) as info:
            call(Script(answer(status, text=body, headers={"X-Request-Id": TOKEN})))
        errors.append(info.value)
    for err in errors:
        for text in (str(err), repr(err), str(err.args), str(err.request_id)):
            assert TOKEN not in text



@pytest.mark.parametrize("offset", [-12, -6, -3, -1, 0])
@pytest.mark.parametrize("as_json", [False, True])
def test_a_token_echoed_near_the_length_limit_is_masked_before_the_cut(offset: int, as_json: bool) -> None:
    """The server text is cut to 300 characters; a token straddling the cut must not
    leave its first characters behind (mask first, then cut)."""
    # The token starts at character 291 + offset: the cut at 297 falls inside it.
    lead = "x" * (290 + offset) + " "
    message = f"{lead}{TOKEN} was refused and the rest of a long explanation follows " + "y" * 200
    body = answer(422, {"detail": message}) if as_json else answer(422, text=message)
    with pytest.raises(ProviderError) as info:
        call(Script(body))
    text = str(info.value)
    for i in range(len(TOKEN) - 5):
        assert TOKEN[i : i + 6] not in text, TOKEN[i : i + 6]


def test_a_long_request_id_is_masked_before_the_cut() -> None:
    rid = "r" * 190 + TOKEN
    with pytest.raises(ProviderError) as info:
        call(Script(answer(422, text="no", headers={"X-Request-Id": rid})))
    assert info.value.request_id is not None and len(info.value.request_id) <= 200
    for i in range(len(TOKEN) - 5):
        assert TOKEN[i : i + 6] not in str(info.value)


# -- error bodies -------------------------------------------------------------------


@pytest.mark.parametrize(
    "response,expected",
    [
        (httpx.Response(401, text="request unauthorized"), "request unauthorized"),
        (httpx.Response(422, json={"type": "about:blank", "title": "Invalid", "status": 422, "detail": "- input.style: bad"}), "- input.style: bad"),
        (httpx.Response(400, json={"error": {"message": "size is invalid", "code": "bad"}}), "size is invalid"),
        (httpx.Response(400, json={"detail": [{"loc": ["body", "n"], "msg": "too big"}]}), "body.n: too big"),
        (httpx.Response(502, text="<!DOCTYPE html><html>bad gateway</html>", headers={"content-type": "text/html"}), "HTML page"),
        (httpx.Response(500, text=""), "Internal Server Error"),
    ],
)
def test_error_text_handles_plain_json_problem_and_html(response: httpx.Response, expected: str) -> None:
    assert expected in error_text(response)


def test_error_text_is_shortened() -> None:
    assert len(error_text(httpx.Response(400, text="x" * 5000))) <= 300


def test_request_id_from_known_headers() -> None:
    assert request_id_of(httpx.Response(200, headers={"X-Recraft-Requestid": "r1"})) == "r1"
    assert request_id_of(httpx.Response(200, headers={"x-request-id": "r2"})) == "r2"
    assert request_id_of(httpx.Response(200)) is None


def test_json_of_refuses_non_json_and_non_objects() -> None:
    ctx = CallContext("p")
    with pytest.raises(BadResultError, match="not JSON.*may have been billed"):
        json_of(httpx.Response(200, text="<html>"), ctx=ctx, what="generation", paid=True)
    with pytest.raises(BadResultError, match="not an object"):
        json_of(httpx.Response(200, json=[1]), ctx=ctx, what="generation")
    assert json_of(httpx.Response(200, json={"a": 1}), ctx=ctx, what="x") == {"a": 1}


# -- base URL ---------------------------------------------------------------------------


def test_base_url_rules() -> None:
    assert check_base_url("https://api.test/v1/", provider="p") == "https://api.test/v1"
    assert check_base_url("http://127.0.0.1:8080/v1", provider="p") == "http://127.0.0.1:8080/v1"
    assert check_base_url("http://proxy.lan/v1", provider="p", allow_http=True) == "http://proxy.lan/v1"
    with pytest.raises(PlanError, match="plain http"):
        check_base_url("http://proxy.lan/v1", provider="p")
    with pytest.raises(PlanError, match="credentials"):
        check_base_url("https://user:pw@api.test/v1", provider="p")
    with pytest.raises(PlanError, match="https://"):
        check_base_url("api.test/v1", provider="p")


# -- rate limiter -----------------------------------------------------------------------


def test_rate_limiter_spaces_requests_after_the_burst() -> None:
    clock = FakeClock(start=0.0)
    limiter = RateLimiter(requests_per_second=5, clock=clock.now, sleep=clock.sleep)
    for _ in range(15):
        limiter.acquire()
    # A burst of 5, then 10 more at 5 per second: 2 s of (fake) waiting.
    assert clock.now() == pytest.approx(2.0)


def test_rate_limiter_counts_images_per_minute() -> None:
    clock = FakeClock(start=0.0)
    limiter = RateLimiter(images_per_minute=60, clock=clock.now, sleep=clock.sleep)
    limiter.acquire(images=6)  # the burst
    waited = limiter.acquire(images=6)
    assert waited == pytest.approx(6.0)  # one image per second


def test_rate_limiter_off_never_waits() -> None:
    clock = FakeClock(start=0.0)
    limiter = RateLimiter(clock=clock.now, sleep=clock.sleep)
    for _ in range(1000):
        limiter.acquire(images=6, creates=1)
    assert clock.sleeps == []
    assert limiter.limits == {}


def test_rate_limiter_is_thread_safe() -> None:
    clock = FakeClock(start=0.0)
    limiter = RateLimiter(creates_per_minute=600, clock=clock.now, sleep=lambda s: None)
    threads = [threading.Thread(target=lambda: [limiter.acquire(creates=1) for _ in range(50)]) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # 400 creates at 10 per second with a burst of 10: the last one waits 39 s.
    assert limiter.acquire(creates=1) == pytest.approx(39.1, abs=0.01)


def test_rate_limiter_refuses_negative_limits() -> None:
    with pytest.raises(PlanError):
        RateLimiter(requests_per_second=-1)


def test_rate_limiter_says_why_it_waits_once_in_a_while() -> None:
    now = [0.0]
    notes: list[str] = []
    limiter = RateLimiter(
        requests_per_second=5, images_per_minute=100, clock=lambda: now[0], sleep=lambda s: None,
        on_wait=notes.append, advice={"images": "set IMAGES_VAR to raise it"},
    )
    waits = []
    for _ in range(20):  # 20 rounds of 8 workers asking for a picture at the same moment
        waits += [limiter.acquire(images=1) for _ in range(8)]
        now[0] += 5.0
    assert max(waits) > 1
    assert notes, "a build slowed by the limit must say so"
    assert "waiting" in notes[0] and "rate limit (100 images/min)" in notes[0] and "IMAGES_VAR" in notes[0]
    # Most calls wait; the line is not repeated for each of them.
    assert len(notes) <= now[0] / RateLimiter.NOTICE_EVERY + 1


def test_rate_limiter_is_silent_for_short_waits() -> None:
    clock = FakeClock(start=0.0)
    notes: list[str] = []
    limiter = RateLimiter(requests_per_second=5, clock=clock.now, sleep=clock.sleep, on_wait=notes.append)
    for _ in range(20):
        limiter.acquire()  # waits of 0.2 s each: not worth a line
    assert notes == []


# -- 404 advice fits the base URL given --------------------------------------------------


@pytest.mark.parametrize(
    "protocol,base,expected",
    [
        ("recraft", "https://api.elkapi.com", "https://api.elkapi.com/recraft/v1"),
        ("recraft", "https://api.elkapi.com/v1", "https://api.elkapi.com/recraft/v1"),
        ("recraft", "https://api.elkapi.com/recraft", "https://api.elkapi.com/recraft/v1"),
        ("replicate", "https://www.kkiai.com/v1", "https://www.kkiai.com/replicate/v1"),
        ("replicate", "https://www.kkiai.com/recraft/v1", "https://www.kkiai.com/replicate/v1"),
        ("recraft", "https://external.api.recraft.ai", "https://external.api.recraft.ai/v1"),
        ("replicate", "https://api.replicate.com/", "https://api.replicate.com/v1"),
    ],
)
def test_404_suggests_the_base_url_that_fits(protocol: str, base: str, expected: str) -> None:
    ctx = CallContext("p", secret=Secret(TOKEN), protocol=protocol, base_url=base)
    with pytest.raises(RequestRejected) as info:
        call(Script(answer(404, text="404 page not found")), ctx=ctx)
    message = str(info.value)
    assert expected in message and base in message
    other = "/replicate/v1" if protocol == "recraft" else "/recraft/v1"
    origin = str(httpx.URL(base).copy_with(path="/")).rstrip("/")
    assert origin + other not in message.replace(base, "")  # never the other protocol's prefix


def test_retries_that_run_out_after_a_resend_leave_the_call_ambiguous() -> None:
    # The lost answer may have been billed, whatever the later attempts said.
    stats = CallStats()
    script = Script(httpx.RemoteProtocolError("gone"), answer(503, text="busy"))
    with pytest.raises(AmbiguousError, match="1 resend"):
        call(script, policy=HttpPolicy(max_retries=2), stats=stats)
    assert len(script.requests) == 4 and stats.resends == 1


def test_a_resend_asks_the_permit_first() -> None:
    asked: list[bool] = []

    def no_room() -> bool:
        asked.append(True)
        return False

    script = Script(httpx.RemoteProtocolError("gone"), answer(200))
    with pytest.raises(AmbiguousError, match="credit limit") as info:
        call(script, resend_permit=no_room)
    assert len(script.requests) == 1 and asked == [True] and info.value.resends == 0
    script = Script(httpx.RemoteProtocolError("gone"), answer(200))
    assert call(script, resend_permit=lambda: True).status_code == 200
    assert len(script.requests) == 2
