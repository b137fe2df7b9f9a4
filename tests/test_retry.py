"""Tests of recraft_build.retry: the backoff schedule, Retry-After in both forms, the
Retrier with a fake clock and sleep (nothing here really waits)."""

from __future__ import annotations

import math

import pytest

from recraft_build.retry import Backoff, Retrier, parse_retry_after, retry_after_of

# 2015-10-21 07:28:00 GMT, and the same instant as an HTTP date.
EPOCH = 1445412480.0
DATE = "Wed, 21 Oct 2015 07:28:00 GMT"


class FakeClock:
    """A wall clock that only moves when the code under test sleeps."""

    def __init__(self, now: float = EPOCH) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def no_rand() -> float:
    raise AssertionError("rand() must not be called without jitter")


# -- the schedule --------------------------------------------------------------------


def test_backoff_doubles_up_to_the_cap_without_jitter() -> None:
    b = Backoff(base=0.25, cap=4.0)
    assert [b.backoff(k, no_rand) for k in range(7)] == [0.25, 0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert b.backoff(10_000, no_rand) == 4.0  # no overflow on absurd retry counts


def test_jitter_spreads_the_wait_within_its_bounds() -> None:
    b = Backoff(base=1.0, cap=30.0, jitter=0.2)
    assert b.backoff(0, lambda: 0.0) == pytest.approx(0.8)
    assert b.backoff(0, lambda: 0.5) == pytest.approx(1.0)
    assert b.backoff(0, lambda: 0.999999) == pytest.approx(1.2, abs=1e-5)
    assert b.backoff(3, lambda: 0.5) == pytest.approx(8.0)


def test_a_server_wait_replaces_the_backoff_and_is_capped() -> None:
    b = Backoff(base=0.5, cap=2.0, jitter=0.2, retry_after_cap=30.0)
    # The server's wait, plus at most base * jitter so that clients spread out.
    assert b.delay(0, retry_after=7.0, rand=lambda: 0.0) == 7.0
    assert b.delay(0, retry_after=7.0, rand=lambda: 0.999) == pytest.approx(7.0 + 0.5 * 0.2 * 0.999)
    assert b.delay(5, retry_after=3600.0, rand=lambda: 0.0) == 30.0
    assert b.delay(0, retry_after=-4.0, rand=lambda: 0.0) == 0.0
    assert Backoff(base=0.25).delay(0, retry_after=3.0, rand=no_rand) == 3.0


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="jitter"):
        Backoff(jitter=1.0)
    with pytest.raises(ValueError, match="base"):
        Backoff(base=-1.0)
    with pytest.raises(ValueError, match="cap"):
        Backoff(cap=math.nan)


# -- Retry-After -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("120", 120.0), (" 3 ", 3.0), ("1.5", 1.5), ("0", 0.0), ("-5", 0.0)],
)
def test_retry_after_in_seconds(value: str, seconds: float) -> None:
    assert parse_retry_after(value, clock=lambda: 0.0) == seconds


@pytest.mark.parametrize("value", [None, "", "soon", "inf", "nan", "1e999", "Wed, 99 Foo 2015"])
def test_unreadable_retry_after_is_none(value: str | None) -> None:
    assert parse_retry_after(value, clock=lambda: EPOCH) is None


def test_retry_after_as_an_http_date_is_measured_against_the_answers_date() -> None:
    # The local clock is a day off; the server's own Date header is what counts.
    assert parse_retry_after(
        "Wed, 21 Oct 2015 07:28:10 GMT", date=DATE, clock=lambda: EPOCH + 86400
    ) == pytest.approx(10.0)


def test_retry_after_as_an_http_date_without_a_date_header_uses_the_clock() -> None:
    clock = FakeClock(EPOCH - 20)
    assert parse_retry_after(DATE, clock=clock) == pytest.approx(20.0)
    assert parse_retry_after(DATE, date="not a date", clock=clock) == pytest.approx(20.0)
    # The other two date forms RFC 9110 still asks readers to accept:
    assert parse_retry_after("Wednesday, 21-Oct-15 07:28:00 GMT", clock=clock) == pytest.approx(20.0)
    assert parse_retry_after("Wed Oct 21 07:28:00 2015", clock=clock) == pytest.approx(20.0)


def test_a_date_in_the_past_means_now() -> None:
    assert parse_retry_after(DATE, clock=lambda: EPOCH + 600) == 0.0


def test_headers_are_read_whatever_their_case() -> None:
    assert retry_after_of({"retry-after": "4"}) == 4.0  # botocore's lowercase dict
    assert retry_after_of({"Retry-After": "4"}) == 4.0
    assert retry_after_of({"Retry-After": "Wed, 21 Oct 2015 07:28:05 GMT", "Date": DATE}) == pytest.approx(5.0)
    assert retry_after_of({}) is None


# -- the Retrier -------------------------------------------------------------------------


def test_retrier_waits_with_the_sleep_it_was_given() -> None:
    clock = FakeClock()
    retrier = Retrier(Backoff(base=0.5, cap=10.0), sleep=clock.sleep, clock=clock, rand=no_rand)
    waited = [retrier.wait(k) for k in range(3)]
    assert waited == clock.sleeps == [0.5, 1.0, 2.0]
    assert clock.now == EPOCH + 3.5


def test_retrier_honours_a_dated_retry_after_on_its_own_clock() -> None:
    clock = FakeClock()
    retrier = Retrier(
        Backoff(base=0.5, cap=10.0, retry_after_cap=60.0), sleep=clock.sleep, clock=clock, rand=no_rand
    )
    asked = retrier.retry_after({"Retry-After": "Wed, 21 Oct 2015 07:28:42 GMT"})
    assert asked == pytest.approx(42.0)
    assert retrier.wait(0, asked) == pytest.approx(42.0)
    asked = retrier.retry_after({"Retry-After": "Wed, 21 Oct 2015 09:00:00 GMT"})
    assert retrier.wait(1, asked) == 60.0  # capped
    assert clock.sleeps == [pytest.approx(42.0), 60.0]
