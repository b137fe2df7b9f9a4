"""What the two HTTP providers share: settings, the token, one call helper, closing.

:class:`HttpProvider` holds the base URL (checked), the token (as a
:class:`~.redact.Secret`), the shared ``httpx.Client``, the retry policy, the rate
limiter, the injected ``sleep``/``clock``/``wall_clock``/``rand`` and a
:class:`~.download.Downloader`. :meth:`HttpProvider._call` sends one API request
through :func:`.http.send` (so the retry rules and the rules for ambiguous paid POSTs
apply), taking rate-limit tokens before each attempt, recognising the protocol's own
error bodies (:meth:`HttpProvider.api_error`), counting resends in the caller's
:class:`~.http.CallStats`, and returns the answer's JSON object.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from typing import Any, Callable, Iterator

import httpx

from recraft_build.errors import RequestRejected
from recraft_build.providers.base import Provider
from recraft_build.providers.download import DEFAULT_MAX_BYTES, Downloader
from recraft_build.providers.http import (
    CallContext,
    CallStats,
    HttpPolicy,
    RateLimiter,
    check_base_url,
    json_of,
    send,
)
from recraft_build.providers.redact import Secret

__all__ = ["HttpProvider"]


class HttpProvider(Provider):
    """Base of the providers that talk HTTP; see the protocol modules for the rest.

    ``token`` is a ``str`` or :class:`Secret`; ``auth`` is ``"bearer"`` or ``"raw"``.
    ``client`` is shared by all worker threads and closed by :meth:`close` only when
    ``owns_client`` is true. ``token_env`` is named when the server refuses the token.
    ``on_retry`` gets a line for each retried call. ``allow_http`` permits a plain
    ``http://`` base URL to another machine. ``resend_permit()`` is asked before a
    paid call whose answer was lost is sent again (the engine's credit limit: False
    keeps the strict rule for that call). ``clock`` is monotonic (poll deadlines,
    rate limits); ``wall_clock`` is the time of day (``Retry-After`` dates, and
    listing Replicate predictions created since a moment).

    ``max_in_flight`` (the build's ``-j``) caps the generations under way at once (what
    the engine's network workers run; tool calls made by its CPU workers are not
    counted): a Recraft POST, or a Replicate prediction from its create until it is
    done. The pictures' download and check come after the slot is given back, so a
    build may run more network workers than slots (:attr:`max_in_flight`), and one
    worker's next call starts while another still downloads: a round of calls is not
    held up by the previous round's downloads.
    """

    family = "recraft"
    paid = True
    #: The API protocol spoken (``recraft`` or ``replicate``), for advice in messages.
    protocol: str | None = None

    def __init__(
        self,
        name: str,
        *,
        base_url: str,
        token: str | Secret,
        auth: str = "bearer",
        client: httpx.Client,
        policy: HttpPolicy | None = None,
        limiter: RateLimiter | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rand: Callable[[], float] = random.random,
        wall_clock: Callable[[], float] = time.time,
        token_env: str | None = None,
        max_download_bytes: int = DEFAULT_MAX_BYTES,
        allow_http: bool = False,
        on_retry: Callable[[str], None] | None = None,
        owns_client: bool = False,
        resend_permit: Callable[[], bool] | None = None,
        max_in_flight: int | None = None,
    ):
        self.name = name
        self.base_url = check_base_url(base_url, provider=name, allow_http=allow_http)
        secret = token if isinstance(token, Secret) else Secret(token)
        self._ctx = CallContext(
            name, secret=secret, auth=auth, token_env=token_env, on_retry=on_retry,
            protocol=self.protocol, base_url=self.base_url,
        )
        self._client = client
        self._owns_client = owns_client
        self._policy = policy or HttpPolicy()
        self._limiter = limiter or RateLimiter.unlimited()
        self._sleep = sleep
        self._clock = clock
        self._rand = rand
        self._wall_clock = wall_clock
        self._downloader = Downloader(
            client, ctx=self._ctx, policy=self._policy, max_bytes=max_download_bytes,
            sleep=sleep, rand=rand, wall_clock=wall_clock,
        )
        self._resend_permit = resend_permit
        self._closed = False
        #: At most this many paid calls under way at once (None: no cap here).
        self.max_in_flight = max_in_flight if max_in_flight and max_in_flight > 0 else None
        self._slots = threading.BoundedSemaphore(self.max_in_flight) if self.max_in_flight else None
        self._holding = threading.local()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, base_url={self.base_url!r})"

    @contextlib.contextmanager
    def _slot(self) -> Iterator[None]:
        """Hold one of the ``max_in_flight`` slots for a generation (re-entrant within a
        thread)."""
        depth = getattr(self._holding, "depth", 0)
        self._holding.depth = depth + 1
        try:
            if self._slots is None or depth:
                yield
            else:
                with self._slots:
                    yield
        finally:
            self._holding.depth = depth

    def _call(
        self,
        method: str,
        path: str,
        *,
        what: str,
        asset: str | None,
        paid: bool,
        images: int = 0,
        creates: int = 0,
        policy: HttpPolicy | None = None,
        stats: CallStats | None = None,
        **kwargs: Any,
    ) -> tuple[dict[str, Any], httpx.Response]:
        """Send ``method {base}/{path}``; return ``(json object, response)``.

        Before each attempt one request token is taken, plus ``creates`` create
        tokens (each attempt is a create the server counts), plus ``images`` image
        tokens on the first attempt only (a refused attempt made no images; a resend
        after a lost answer is rare enough not to matter to the pace). Resends of a
        paid call are counted in ``stats``. ``kwargs`` go to :func:`.http.send`
        (``json_body``, ``data``, ``files``, ``headers``, ``timeout``, ``deadline``,
        ``hint``, ``resends``).
        """

        def before(attempt: int) -> None:
            self._limiter.acquire(requests=1, images=images if attempt == 0 else 0, creates=creates)

        response = send(
            self._client,
            method,
            f"{self.base_url}/{path}",
            ctx=self._ctx,
            policy=policy or self._policy,
            paid=paid,
            what=what,
            asset=asset,
            sleep=self._sleep,
            rand=self._rand,
            wall_clock=self._wall_clock,
            before_attempt=before,
            api_error=self.api_error,
            stats=stats,
            resend_permit=self._resend_permit,
            **kwargs,
        )
        return json_of(response, ctx=self._ctx, what=what, asset=asset, paid=paid), response

    def api_error(self, response: httpx.Response) -> bool:
        """Whether an error answer carries this protocol's own error body (then a 500
        was refused by the API itself, and not billed). None are known here."""
        return False

    def _reject(self, message: str, *, asset: str | None) -> RequestRejected:
        """A :class:`RequestRejected` raised before any call (nothing was sent or paid)."""
        err = self._ctx.error(RequestRejected, message, asset=asset)
        assert isinstance(err, RequestRejected)
        return err

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            if self._owns_client:
                self._client.close()
