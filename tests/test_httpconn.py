"""The lean keep-alive client of the remote cache: the httpx subset RemoteCache uses,
against a real nginx and a local server that misbehaves on purpose."""

from __future__ import annotations

import hashlib
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from nginx import nginx_cache  # noqa: F401  (fixture)
from recraft_build.cache.http import RemoteCache
from recraft_build.cache.httpconn import KeepAliveClient, proxies_configured
from recraft_build.cache.policy import RemotePolicy
from recraft_build.cache.remote_base import PutResult

TIMEOUT = httpx.Timeout(5.0, connect=2.0)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # quiet
        pass

    def do_GET(self):
        server = self.server
        server.seen.append((self.command, self.path, dict(self.headers), self.client_address[1]))
        mode = server.mode
        if mode == "slow":
            time.sleep(1.0)
        if mode == "flaky" and len(server.seen) <= 2:
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.send_header("Retry-After", "0")
            self.end_headers()
            return
        body = b"hello " + self.path.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        if mode == "close":
            self.send_header("Connection", "close")
        self.end_headers()
        try:
            self.wfile.write(body)
        except BrokenPipeError:  # the client gave up (the timeout test)
            return
        if mode in ("close", "drop-idle"):
            self.close_connection = True  # drop-idle: closes without saying so

    do_HEAD = do_GET


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.seen = []
    httpd.mode = "ok"
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def url(httpd, path="/x"):
    return f"http://127.0.0.1:{httpd.server_address[1]}{path}"


def test_roundtrip_with_nginx_reuses_one_connection(nginx_cache):
    data = b"blob bytes" * 100
    digest = hashlib.sha256(data).hexdigest()
    with KeepAliveClient() as client:
        put = client.request("PUT", f"{nginx_cache.url}/cas/{digest}", content=data, timeout=TIMEOUT)
        assert put.status_code in (200, 201, 204)
        got = client.request("GET", f"{nginx_cache.url}/cas/{digest}", timeout=TIMEOUT)
        assert (got.status_code, got.content) == (200, data)
        head = client.request("HEAD", f"{nginx_cache.url}/cas/{digest}", timeout=TIMEOUT)
        assert head.status_code == 200 and head.content == b""
        assert client.request("GET", f"{nginx_cache.url}/cas/{'0' * 64}", timeout=TIMEOUT).status_code == 404
        origin = next(iter(client._origins.values()))
        assert len(origin.idle) == 1  # four requests, one kept-alive connection


def test_remote_cache_works_through_it(nginx_cache):
    with KeepAliveClient() as client:
        cache = RemoteCache(nginx_cache.url, client=client, mode="read-write")
        data = b"\x89PNG fake"
        assert cache.put_blob(data) is PutResult.UPLOADED
        assert cache.get_blob(hashlib.sha256(data).hexdigest()) == data
        assert cache.put_record("k" * 64, {"sha256": hashlib.sha256(data).hexdigest()}) is PutResult.UPLOADED
        assert cache.get_record("k" * 64) == {"sha256": hashlib.sha256(data).hexdigest()}


def test_threads_share_a_bounded_pool(server):
    with KeepAliveClient(max_connections=3) as client:
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda i: client.request("GET", url(server, f"/{i}"), timeout=TIMEOUT), range(80)))
    assert all(a.status_code == 200 and a.content == f"hello /{i}".encode() for i, a in enumerate(answers))
    ports = {port for *_rest, port in server.seen}
    assert len(ports) <= 3


def test_a_connection_the_server_dropped_is_replaced_not_reported(server):
    server.mode = "drop-idle"
    with KeepAliveClient() as client:
        for i in range(5):
            assert client.request("GET", url(server, f"/{i}"), timeout=TIMEOUT).content == f"hello /{i}".encode()
    assert len(server.seen) == 5  # each sent once: a dead connection is noticed before reuse


def test_connections_are_reused_past_a_thousand_open_files(server):
    import os

    held = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]  # descriptors past select()'s limit
    try:
        with KeepAliveClient() as client:
            for i in range(3):
                assert client.request("GET", url(server, f"/{i}"), timeout=TIMEOUT).status_code == 200
    finally:
        for fd in held:
            os.close(fd)
    assert len({port for *_rest, port in server.seen}) == 1


def test_connection_close_is_honoured(server):
    server.mode = "close"
    with KeepAliveClient() as client:
        client.request("GET", url(server), timeout=TIMEOUT)
        client.request("GET", url(server), timeout=TIMEOUT)
        assert all(not o.idle for o in client._origins.values())
    assert len({port for *_rest, port in server.seen}) == 2


def test_failures_are_httpx_exceptions(server):
    server.mode = "slow"
    with KeepAliveClient() as client:
        with pytest.raises(httpx.ReadTimeout):
            client.request("GET", url(server), timeout=httpx.Timeout(0.2, connect=1.0))
        free = server.server_address[1]
    server.shutdown()
    server.server_close()
    with KeepAliveClient() as client, pytest.raises(httpx.ConnectError):
        client.request("GET", f"http://127.0.0.1:{free}/x", timeout=TIMEOUT)
    with KeepAliveClient() as client, pytest.raises(httpx.UnsupportedProtocol):
        client.request("GET", "ftp://example.invalid/x", timeout=TIMEOUT)


def test_remote_cache_retries_through_it(server):
    server.mode = "flaky"
    slept = []
    with KeepAliveClient() as client:
        cache = RemoteCache(url(server, ""), client=client, mode="read", sleep=slept.append,
                            policy=RemotePolicy(retries=3, backoff=0.01))
        assert cache._fetch("cas/abc", "GET cas/abc") == b"hello /cas/abc"
    assert len(slept) == 2 and cache.available


def test_password_in_the_url_is_sent_as_basic_auth_unless_a_header_is_given(server):
    base = f"http://user:p%40ss@127.0.0.1:{server.server_address[1]}"
    with KeepAliveClient() as client:
        client.request("GET", base + "/a", timeout=TIMEOUT)
        client.request("GET", base + "/b", headers={"Authorization": "Bearer t"}, timeout=TIMEOUT)
    import base64

    assert server.seen[0][2]["Authorization"] == "Basic " + base64.b64encode(b"user:p@ss").decode()
    assert server.seen[1][2]["Authorization"] == "Bearer t"


def test_proxies_configured():
    assert not proxies_configured({})
    assert not proxies_configured({"HTTPS_PROXY": "  "})
    assert proxies_configured({"https_proxy": "http://proxy:3128"})
    assert proxies_configured({"ALL_PROXY": "socks5://p:1"})
