"""A small keep-alive HTTP/1.1 client for the remote cache, on the standard library.

Restoring 1,000 assets from a remote cache is about 5,000 small requests, and with
httpx each one costs about 0.3 ms of CPU in Python (URL and header models, the
connection pool's bookkeeping, h11's state machine): more than the bytes. This client
does what :class:`~recraft_build.cache.http.RemoteCache` needs, at about a sixth of
that, with ``http.client``:

* connections are kept alive and shared by every thread (a pool per scheme, host and
  port, at most ``max_connections`` open at once, idle ones reused most recently used
  first); a connection the server closed while idle is noticed before reuse, and a
  request that meets one closed at that very moment is sent again once on a new
  connection (every request of the cache protocol is idempotent);
* the subset of ``httpx.Client`` that ``RemoteCache`` calls:
  ``request(method, url, content=..., headers=..., timeout=httpx.Timeout)`` returns an
  object with ``status_code``, ``headers`` (case-insensitive) and ``content``; failures
  raise httpx's own exceptions (``ConnectTimeout``, ``ReadTimeout``, ``ConnectError``,
  ``ReadError``, ``RemoteProtocolError``), so ``RemoteCache`` cannot tell the two apart;
* TLS with httpx's own default context (``httpx.create_ssl_context()``: certifi's CAs,
  ``SSL_CERT_FILE``/``SSL_CERT_DIR`` honoured); a ``user:password@`` in the URL is
  sent as Basic auth, as httpx does, unless an ``Authorization`` header is given;
  redirects are not followed (httpx's default either).

It does not speak to proxies: :func:`proxies_configured` tells the caller to use httpx
when the environment names one (``HTTP_PROXY`` and friends).
"""

from __future__ import annotations

import base64
import http.client
import select
import socket
import threading
from typing import Any, Mapping
from urllib.parse import unquote, urlsplit

import httpx

__all__ = ["KeepAliveClient", "proxies_configured"]

_PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy")


def proxies_configured(env: Mapping[str, str]) -> bool:
    """Whether ``env`` names a proxy (httpx would use it; this client cannot)."""
    return any((env.get(name) or env.get(name.upper()) or "").strip() for name in _PROXY_VARIABLES)


class _Response:
    __slots__ = ("status_code", "headers", "content")

    def __init__(self, status_code: int, headers: Any, content: bytes):
        self.status_code = status_code
        self.headers = headers
        self.content = content


class _Origin:
    """The idle connections to one scheme://host:port, and how to make a new one."""

    def __init__(self, scheme: str, host: str, port: int | None, ssl_context: Any):
        self.scheme, self.host, self.port = scheme, host, port
        self.ssl_context = ssl_context
        self.idle: list[http.client.HTTPConnection] = []

    def new(self, connect_timeout: float | None) -> http.client.HTTPConnection:
        if self.scheme == "https":
            return http.client.HTTPSConnection(self.host, self.port, timeout=connect_timeout, context=self.ssl_context)
        return http.client.HTTPConnection(self.host, self.port, timeout=connect_timeout)


def _closed_by_peer(conn: http.client.HTTPConnection) -> bool:
    """Whether an idle connection was closed (or sent something) while it waited.

    poll(), not select(): select cannot watch a descriptor numbered past FD_SETSIZE
    (1024), which a long-lived process reaches.
    """
    sock = conn.sock
    if sock is None:
        return True
    try:
        if hasattr(select, "poll"):
            poller = select.poll()
            poller.register(sock, select.POLLIN)
            return bool(poller.poll(0))
        readable, _, _ = select.select([sock], [], [], 0)  # pragma: no cover - Windows
    except (OSError, ValueError):
        return True
    return bool(readable)


class KeepAliveClient:
    """A thread-safe pool of kept-alive HTTP/1.1 connections (see the module docstring).

    ``max_connections`` bounds the connections open at once over all origins (a
    request waits for one to be free); ``ssl_context`` defaults to httpx's.
    """

    def __init__(self, *, max_connections: int = 16, ssl_context: Any = None):
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        self._ssl_context = ssl_context
        self._origins: dict[tuple[str, str, int | None], _Origin] = {}
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(max_connections)

    # -- the httpx.Client subset ----------------------------------------------------------
    def request(
        self,
        method: str,
        url: str,
        *,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: httpx.Timeout | None = None,
    ) -> _Response:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise httpx.UnsupportedProtocol(f"not an http(s) URL: {parts.scheme}://{parts.hostname or ''}")
        sent = dict(headers or {})
        if parts.username is not None and not any(k.lower() == "authorization" for k in sent):
            pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode("utf-8")
            sent["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        origin = self._origin(parts.scheme, parts.hostname, parts.port)
        connect_timeout = timeout.connect if timeout is not None else None
        read_timeout = timeout.read if timeout is not None else None
        self._slots.acquire()
        try:
            for attempt in (0, 1):
                conn, reused = self._take(origin, connect_timeout, read_timeout)
                try:
                    conn.request(method, target, body=content, headers=sent)
                    answer = conn.getresponse()
                    body = answer.read()
                except (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected) as exc:
                    conn.close()
                    if reused and attempt == 0:
                        continue  # the server closed the idle connection just now: once more, afresh
                    raise httpx.ReadError(f"{type(exc).__name__}: {exc}") from exc
                except socket.timeout as exc:
                    conn.close()
                    raise httpx.ReadTimeout(f"timed out after {read_timeout}s") from exc
                except http.client.HTTPException as exc:
                    conn.close()
                    raise httpx.RemoteProtocolError(f"{type(exc).__name__}: {exc}") from exc
                except OSError as exc:
                    conn.close()
                    raise httpx.ReadError(f"{type(exc).__name__}: {exc}") from exc
                except BaseException:
                    conn.close()
                    raise
                if answer.will_close:
                    conn.close()
                else:
                    self._give_back(origin, conn)
                return _Response(answer.status, answer.headers, body)
            raise AssertionError("unreachable")  # pragma: no cover
        finally:
            self._slots.release()

    def close(self) -> None:
        """Close every idle connection. Safe twice; requests after it open new ones."""
        with self._lock:
            origins = list(self._origins.values())
            self._origins.clear()
        for origin in origins:
            for conn in origin.idle:
                conn.close()
            origin.idle.clear()

    def __enter__(self) -> "KeepAliveClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the pool ---------------------------------------------------------------------------
    def _origin(self, scheme: str, host: str, port: int | None) -> _Origin:
        key = (scheme, host, port)
        with self._lock:
            origin = self._origins.get(key)
            if origin is None:
                context = None
                if scheme == "https":
                    if self._ssl_context is None:
                        self._ssl_context = httpx.create_ssl_context()
                    context = self._ssl_context
                origin = self._origins[key] = _Origin(scheme, host, port, context)
            return origin

    def _take(
        self, origin: _Origin, connect_timeout: float | None, read_timeout: float | None
    ) -> tuple[http.client.HTTPConnection, bool]:
        while True:
            with self._lock:
                conn = origin.idle.pop() if origin.idle else None
            if conn is None:
                break
            if _closed_by_peer(conn):
                conn.close()
                continue
            conn.sock.settimeout(read_timeout)
            return conn, True
        conn = origin.new(connect_timeout)
        try:
            conn.connect()
        except socket.timeout as exc:
            conn.close()
            raise httpx.ConnectTimeout(f"no connection to {origin.host} within {connect_timeout}s") from exc
        except OSError as exc:
            conn.close()
            raise httpx.ConnectError(f"cannot connect to {origin.host}: {exc.strerror or exc}") from exc
        if conn.sock is not None:
            conn.sock.settimeout(read_timeout)
            if hasattr(socket, "TCP_NODELAY"):
                try:
                    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                except OSError:  # pragma: no cover
                    pass
        return conn, False

    def _give_back(self, origin: _Origin, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            origin.idle.append(conn)

