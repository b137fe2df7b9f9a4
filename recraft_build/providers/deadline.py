"""An overall deadline for one HTTP exchange: a trickling server cannot hold a call.

httpx bounds each read (the read timeout) but not a whole response: a server that
sends one byte a second never trips a read timeout and can hold a call for hours.
:func:`exchange` sends one request and reads its whole answer (headers and body) on a
helper thread, and waits at most ``deadline`` seconds for it. Past that it raises
:class:`DeadlineExceeded`, an ``httpx.ReadTimeout``, so the callers' rules for a lost
answer apply unchanged (a GET is retried; a paid POST is ambiguous: it may have been
billed).

The abandoned helper is told to stop: it closes the response between two chunks, and
when the socket is reachable it is shut down at once, so a stalled read ends too
(a response is only shut down while its helper still holds it, never after the
connection went back to the pool, where another request could be using it). A
server that trickles the *headers* keeps its helper thread and one pooled connection
until its read ends or the client is closed; the caller has moved on by then.
"""

from __future__ import annotations

import socket
import threading
from typing import Callable

import httpx

__all__ = ["DeadlineExceeded", "Reader", "exchange", "read_all"]

#: Reads a response's body: ``reader(response, cancelled)`` returns the bytes,
#: checking ``cancelled()`` between chunks (and stopping when it is true). It may
#: raise to refuse the body (too big, not an image...); the error reaches the caller.
Reader = Callable[[httpx.Response, Callable[[], bool]], bytes]

# Headers that described the body as it came over the wire: the body handed back is
# decoded and complete, so they would now be wrong.
_WIRE_HEADERS = frozenset({b"content-encoding", b"content-length", b"transfer-encoding"})


class DeadlineExceeded(httpx.ReadTimeout):
    """The whole answer did not arrive within the deadline (a kind of read timeout)."""


class _Cancelled(Exception):
    """Raised inside the helper when the caller gave up; never leaves this module."""


def read_all(response: httpx.Response, cancelled: Callable[[], bool]) -> bytes:
    """The default :data:`Reader`: the whole (decoded) body, chunk by chunk."""
    chunks = []
    for chunk in response.iter_bytes():
        if cancelled():
            raise _Cancelled()
        chunks.append(chunk)
    return b"".join(chunks)


def _complete(response: httpx.Response, body: bytes) -> httpx.Response:
    """A closed, fully read copy of ``response`` holding ``body``."""
    headers = [(k, v) for k, v in response.headers.raw if k.lower() not in _WIRE_HEADERS]
    extensions = {k: v for k, v in response.extensions.items() if k in ("http_version", "reason_phrase")}
    return httpx.Response(
        response.status_code,
        headers=headers,
        content=body,
        request=response.request,
        extensions=extensions,
    )


def _shutdown(response: httpx.Response) -> None:
    """Best effort: end a blocked read on ``response``'s connection at once."""
    stream = response.extensions.get("network_stream")
    get = getattr(stream, "get_extra_info", None)
    if get is None:
        return
    try:
        sock = get("socket")
        if isinstance(sock, socket.socket):
            # The plain socket method, also for an SSLSocket: only the transport is
            # shut down; the TLS object stays with the thread that is reading.
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except Exception:  # noqa: BLE001 - already closed, not a socket...: nothing to stop
        pass


class _Exchange:
    """One request on its helper thread, and what the caller may do to it."""

    def __init__(self, client: httpx.Client, request: httpx.Request, reader: Reader):
        self._client = client
        self._request = request
        self._reader = reader
        self._lock = threading.Lock()
        self.done = threading.Event()
        self._abandoned = False
        self._live: httpx.Response | None = None
        self._result: httpx.Response | None = None
        self._error: BaseException | None = None

    def cancelled(self) -> bool:
        return self._abandoned

    def run(self) -> None:
        try:
            response = self._client.send(self._request, stream=True, auth=None, follow_redirects=False)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller as is
            self._finish(None, exc)
            return
        with self._lock:
            abandoned = self._abandoned
            if not abandoned:
                self._live = response
        if abandoned:
            response.close()
            self._finish(None, _Cancelled())
            return
        result: httpx.Response | None = None
        error: BaseException | None = None
        try:
            result = _complete(response, self._reader(response, self.cancelled))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller as is
            error = exc
        finally:
            with self._lock:
                self._live = None  # from here on the connection may be reused: hands off
            response.close()
        self._finish(result, error)

    def _finish(self, result: httpx.Response | None, error: BaseException | None) -> None:
        with self._lock:
            self._result, self._error = result, error
            self.done.set()

    def outcome(self) -> httpx.Response:
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result

    def abandon(self) -> bool:
        """Give up on the exchange; True when it had finished after all."""
        with self._lock:
            if self.done.is_set():
                return True
            self._abandoned = True
            if self._live is not None:
                _shutdown(self._live)
        return False


def exchange(
    client: httpx.Client,
    request: httpx.Request,
    *,
    deadline: float | None,
    reader: Reader = read_all,
) -> httpx.Response:
    """Send ``request`` and read its answer with ``reader``; return it read and closed.

    ``deadline`` (seconds; None or 0: none) bounds the whole exchange, from sending
    to the last byte of the body; past it :class:`DeadlineExceeded` is raised. The
    response handed back holds the decoded body (its wire headers dropped), so
    ``.json()``, ``.text`` and ``.content`` work. Redirects are never followed and the
    client's own ``auth`` is never applied (API calls carry their header themselves).
    Whatever ``client.send`` or ``reader`` raises is raised here, unchanged.
    """
    job = _Exchange(client, request, reader)
    if not deadline:
        job.run()
        return job.outcome()
    helper = threading.Thread(target=job.run, name="recraft-build-http", daemon=True)
    helper.start()
    if job.done.wait(deadline) or job.abandon():
        return job.outcome()
    raise DeadlineExceeded(
        f"the answer was not complete after {deadline:g} s (the overall deadline)", request=request
    )
