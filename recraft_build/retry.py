"""When to try again: exponential backoff with jitter, and the server's ``Retry-After``.

One rule for every client in the package that retries over the network: the
providers' HTTP layer (``providers/http.py``, ``providers/download.py``) and the
remote caches (``cache/http.py``, ``cache/s3.py``). Each decides for itself *whether*
a failure is worth another try (a paid POST is not, a cache read is); this module
only says *how long to wait*, and waits.

* :class:`Backoff` is the pure schedule: retry ``k`` (0-based) waits
  ``min(cap, base * 2**k)`` scaled by a random factor in ``[1 - jitter, 1 + jitter]``;
  when the server named a wait (``Retry-After``), that wait, capped at
  ``retry_after_cap``, plus at most ``base * jitter`` so that clients told the same
  date do not all come back in the same instant.
* :func:`parse_retry_after` reads a ``Retry-After`` value in both of its forms
  (RFC 9110 10.2.3): delay-seconds (``"120"``) or an HTTP date
  (``"Wed, 21 Oct 2015 07:28:00 GMT"``), measured against the answer's own ``Date``
  header when there is one (so a skewed local clock does not matter).
* :class:`Retrier` binds a schedule to the I/O it needs, passed in: ``sleep``, the
  wall ``clock`` (for HTTP dates) and ``rand`` (for jitter). Tests pass fakes.
"""

from __future__ import annotations

import email.utils
import math
import random
import time
from dataclasses import dataclass
from datetime import timezone
from typing import Callable, Mapping

__all__ = ["Backoff", "Retrier", "parse_retry_after", "retry_after_of"]


@dataclass(frozen=True)
class Backoff:
    """A retry schedule (all figures in seconds; ``jitter`` a fraction below 1).

    ``ValueError`` for a negative figure or a ``jitter`` of 1 or more (a caller's
    policy checks its own user-facing settings first and says which option is wrong).
    """

    base: float = 0.5
    cap: float = 30.0
    jitter: float = 0.0
    retry_after_cap: float = math.inf

    def __post_init__(self) -> None:
        for name in ("base", "cap", "jitter", "retry_after_cap"):
            value = getattr(self, name)
            if not value >= 0:  # also refuses NaN
                raise ValueError(f"backoff {name} must not be negative (got {value})")
        if self.jitter >= 1:
            raise ValueError(f"backoff jitter must be below 1 (got {self.jitter})")

    def backoff(self, retry: int, rand: Callable[[], float] = random.random) -> float:
        """Seconds before retry number ``retry`` (0-based) when the server named no wait.

        ``rand()`` returns a float in ``[0, 1)``; it is called once, and only when
        ``jitter`` is not 0.
        """
        # 2**retry overflows a float only after about a thousand retries; cap the exponent.
        wait = min(self.cap, self.base * (2.0 ** min(retry, 1000)))
        if not self.jitter:
            return wait
        return max(0.0, wait * (1 - self.jitter + 2 * self.jitter * rand()))

    def delay(
        self,
        retry: int,
        *,
        retry_after: float | None = None,
        rand: Callable[[], float] = random.random,
    ) -> float:
        """Seconds before retry number ``retry``: the server's ``retry_after`` (seconds,
        as :func:`parse_retry_after` gives it), capped at ``retry_after_cap``, plus a
        little jitter; else :meth:`backoff`."""
        if retry_after is None:
            return self.backoff(retry, rand)
        wait = min(max(0.0, retry_after), self.retry_after_cap)
        if self.jitter:
            wait += self.base * self.jitter * rand()
        return wait


def parse_retry_after(
    value: str | None,
    *,
    date: str | None = None,
    clock: Callable[[], float] = time.time,
) -> float | None:
    """Seconds a ``Retry-After`` header value asks for, or None (absent or unreadable).

    ``value`` is delay-seconds (a decimal fraction is accepted too) or an HTTP date.
    A date is measured against ``date`` (the answer's ``Date`` header) when that
    parses, else against ``clock()`` (the wall clock, seconds since the epoch). Never
    negative: a date in the past, or a negative number, is 0. Infinite or NaN values
    are unreadable.
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    when = _http_date(value)
    if when is None:
        return None
    now = _http_date(date) if date else None
    if now is None:
        now = clock()
    return max(0.0, when - now)


def retry_after_of(
    headers: Mapping[str, str], *, clock: Callable[[], float] = time.time
) -> float | None:
    """:func:`parse_retry_after` of a response's headers (``Retry-After`` and ``Date``).

    ``headers`` may be case-insensitive (httpx) or a plain dict with lowercase names
    (botocore's ``HTTPHeaders``).
    """
    return parse_retry_after(_header(headers, "retry-after"), date=_header(headers, "date"), clock=clock)


class Retrier:
    """A :class:`Backoff` with the I/O it needs: ``sleep``, the wall ``clock`` and ``rand``.

    Thread-safe as long as the callables are (the defaults are).
    """

    def __init__(
        self,
        backoff: Backoff,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        rand: Callable[[], float] = random.random,
    ):
        self.backoff = backoff
        self._sleep = sleep
        self._clock = clock
        self._rand = rand

    def retry_after(self, headers: Mapping[str, str]) -> float | None:
        """The wait a response's headers ask for (see :func:`retry_after_of`), or None."""
        return retry_after_of(headers, clock=self._clock)

    def delay(self, retry: int, retry_after: float | None = None) -> float:
        """Seconds before retry number ``retry`` (see :meth:`Backoff.delay`)."""
        return self.backoff.delay(retry, retry_after=retry_after, rand=self._rand)

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` with the injected ``sleep``."""
        self._sleep(seconds)

    def wait(self, retry: int, retry_after: float | None = None) -> float:
        """Wait before retry number ``retry``; return the seconds waited."""
        seconds = self.delay(retry, retry_after)
        self._sleep(seconds)
        return seconds


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        value = headers.get(name.title())
    return value


def _http_date(text: str) -> float | None:
    """Seconds since the epoch of an HTTP date (any of RFC 9110's three forms), or None."""
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None:  # pragma: no cover - older Pythons returned None instead of raising
        return None
    if when.tzinfo is None:  # "-0000" or no zone: an HTTP date is always GMT
        when = when.replace(tzinfo=timezone.utc)
    try:
        return when.timestamp()
    except (OverflowError, OSError, ValueError):
        return None
