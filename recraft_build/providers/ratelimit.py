"""Client-side rate limits for one provider: token buckets shared by all worker threads.

The providers' limits (requests per second, images and creates per minute) keep the
server's own ``429`` answers rare; those are still retried by :mod:`.http`.
"""

from __future__ import annotations

import threading
import time
from typing import Callable, Mapping

from recraft_build.errors import PlanError

__all__ = ["RateLimiter"]


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
