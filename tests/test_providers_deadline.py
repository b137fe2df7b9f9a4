"""The overall deadline of one HTTP exchange: trickled answers are cut, whatever the phase."""

from __future__ import annotations

import socket
import threading
import time
from typing import Iterator

import httpx
import pytest

from recraft_build.providers.deadline import DeadlineExceeded, exchange, read_all


class Trickler:
    """A raw TCP server answering every connection one byte every ``delay`` seconds.

    ``headers_first`` sends the status line and headers at once (only the body
    trickles). ``closed`` is set when a write fails: the client hung up.
    """

    def __init__(self, body: bytes = b"x" * 400, *, delay: float = 0.02, headers_first: bool = False):
        self.body = body
        self.delay = delay
        self.headers_first = headers_first
        self.closed = threading.Event()
        self.sent = 0
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}/slow"

    def __enter__(self) -> "Trickler":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._sock.close()

    def _serve(self) -> None:
        try:
            conn, _ = self._sock.accept()
        except OSError:
            return
        with conn:
            conn.recv(65536)
            head = f"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {len(self.body)}\r\n\r\n".encode()
            try:
                if self.headers_first:
                    conn.sendall(head)
                    head = b""
                for i in range(len(head) + len(self.body)):
                    conn.sendall((head + self.body)[i : i + 1])
                    self.sent += 1
                    time.sleep(self.delay)
            except OSError:
                self.closed.set()


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=httpx.Timeout(30.0)) as c:
        yield c


@pytest.mark.parametrize("headers_first", [True, False])
def test_a_trickled_answer_is_cut_at_the_deadline(client: httpx.Client, headers_first: bool) -> None:
    # 400 bytes at one every 20 ms would take 8 s; each byte comes well within the
    # read timeout, so only the overall deadline can end it.
    with Trickler(headers_first=headers_first) as server:
        request = client.build_request("GET", server.url)
        with pytest.raises(DeadlineExceeded) as info:
            exchange(client, request, deadline=0.3)
        assert isinstance(info.value, httpx.ReadTimeout)  # callers treat it as a lost answer
        assert "deadline" in str(info.value)
        if headers_first:
            # The body was being read: the abandoned exchange hangs up instead of
            # reading the rest in the background.
            assert server.closed.wait(10)
            assert server.sent < len(server.body)


def test_an_answer_within_the_deadline_is_returned_read_and_closed(client: httpx.Client) -> None:
    with Trickler(b"hello", delay=0.001, headers_first=True) as server:
        response = exchange(client, client.build_request("GET", server.url), deadline=30)
    assert response.status_code == 200 and response.content == b"hello"
    assert response.is_closed and response.text == "hello"


def test_no_deadline_runs_in_the_calling_thread() -> None:
    threads: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        threads.append(threading.current_thread().name)
        return httpx.Response(200, json={"ok": True}, headers={"X-Request-Id": "r1"})

    with httpx.Client(transport=httpx.MockTransport(handler)) as c:
        response = exchange(c, c.build_request("POST", "https://api.test/x"), deadline=None)
    assert response.json() == {"ok": True} and response.headers["x-request-id"] == "r1"
    assert threads == [threading.current_thread().name]


def test_what_the_transport_or_the_reader_raises_reaches_the_caller() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with httpx.Client(transport=httpx.MockTransport(refuse)) as c:
        with pytest.raises(httpx.ConnectError):
            exchange(c, c.build_request("GET", "https://api.test/x"), deadline=5)

    class TooBig(Exception):
        pass

    def reader(response: httpx.Response, cancelled: object) -> bytes:
        raise TooBig()

    with httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(200, content=b"abc"))) as c:
        with pytest.raises(TooBig):
            exchange(c, c.build_request("GET", "https://api.test/x"), deadline=5, reader=reader)


def test_a_compressed_body_comes_back_decoded_with_its_wire_headers_dropped() -> None:
    import gzip

    raw = gzip.compress(b'{"a": 1}')
    handler = lambda r: httpx.Response(200, content=raw, headers={"Content-Encoding": "gzip", "Content-Type": "application/json"})  # noqa: E731
    with httpx.Client(transport=httpx.MockTransport(handler)) as c:
        response = exchange(c, c.build_request("GET", "https://api.test/x"), deadline=5, reader=read_all)
    assert response.json() == {"a": 1}
    assert "content-encoding" not in response.headers
    assert response.headers["content-length"] == str(len(b'{"a": 1}'))


def test_redirects_are_not_followed_and_client_auth_is_not_applied() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(302, headers={"Location": "https://elsewhere.test/"})

    with httpx.Client(transport=httpx.MockTransport(handler), auth=("user", "pass"), follow_redirects=True) as c:
        response = exchange(c, c.build_request("GET", "https://api.test/x"), deadline=5)
    assert response.status_code == 302
    assert len(seen) == 1 and "authorization" not in seen[0].headers
