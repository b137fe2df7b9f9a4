"""How a remote cache is used: its mode (read or read-write) and its timeouts and retries.

Shared by every remote (HTTP, S3, folder); the timing rule itself is
:mod:`recraft_build.retry`'s, the same as the providers'.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Mapping

from recraft_build.errors import UsageError
from recraft_build.retry import Backoff

if TYPE_CHECKING:
    import httpx

__all__ = [
    "MODES",
    "REMOTE_CACHE_ENV",
    "REMOTE_MODE_ENV",
    "RemotePolicy",
    "check_mode",
    "remote_mode",
]

#: ``--remote-cache-mode`` values.
MODES = ("read", "read-write")

#: Environment variable naming the remote cache (``--remote-cache`` wins over it).
REMOTE_CACHE_ENV = "RECRAFT_BUILD_REMOTE_CACHE"

#: Environment variable giving the mode (``--remote-cache-mode`` wins over it).
REMOTE_MODE_ENV = "RECRAFT_BUILD_REMOTE_CACHE_MODE"


def check_mode(mode: str) -> str:
    """``mode`` when it is one of :data:`MODES`, else a :class:`UsageError` listing them."""
    if mode not in MODES:
        raise UsageError(f"--remote-cache-mode {mode!r} is not one of: {', '.join(MODES)}")
    return mode


def remote_mode(mode: str | None, env: Mapping[str, str]) -> str:
    """The mode to use: ``mode`` (the flag), else :data:`REMOTE_MODE_ENV`, else
    ``read-write`` (a picture paid for is shared at once; laptops may set ``read`` to
    leave writing to CI)."""
    return check_mode(mode or env.get(REMOTE_MODE_ENV, "").strip() or "read-write")


@dataclass(frozen=True)
class RemotePolicy:
    """Timeouts and retries of remote-cache requests.

    ``connect_timeout`` and ``timeout`` (read, write and pool) are in seconds.
    A request failing with a connection error, a timeout, ``429`` or ``5xx`` is tried
    ``retries`` more times, waiting ``backoff * 2**attempt`` seconds (at most
    ``max_backoff``; a ``Retry-After`` header, in seconds or as an HTTP date, is
    honoured up to ``max_retry_after``). ``jitter`` (a fraction below 1) spreads the
    waits; it is 0 by default because a cache's retries are few and short, and a
    dead cache should cost the same small time on every machine.
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
    jitter: float = 0.0

    def httpx_timeout(self) -> "httpx.Timeout":
        import httpx  # only remotes that speak HTTP need it: a no-op build never imports it

        return httpx.Timeout(self.timeout, connect=self.connect_timeout)

    def schedule(self) -> Backoff:
        """This policy's retry schedule (:class:`recraft_build.retry.Backoff`)."""
        return Backoff(
            base=self.backoff,
            cap=self.max_backoff,
            jitter=self.jitter,
            retry_after_cap=self.max_retry_after,
        )

    def delay(
        self,
        attempt: int,
        retry_after: float | None = None,
        rand: Callable[[], float] = random.random,
    ) -> float:
        """Seconds to wait before retry number ``attempt`` (0-based); ``retry_after`` is
        the server's wait in seconds (:func:`recraft_build.retry.parse_retry_after`)."""
        return self.schedule().delay(attempt, retry_after=retry_after, rand=rand)
