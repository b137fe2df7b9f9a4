"""Tests of recraft_build.cache.http (the Bazel-HTTP remote cache client), the shared
remote base (cache.remote_base) and the tiered store (cache.tiered).

Most run against a real nginx with WebDAV PUT (tests/nginx.py; skipped with a reason
when nginx is not installed), some against a tiny in-process server that misbehaves
on purpose (slow, corrupting, recording the order of uploads), and the retry and auth
rules against httpx.MockTransport. Nothing touches the internet or needs a token.
"""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterator

import httpx
import pytest

from nginx import NginxCache, nginx_cache  # noqa: F401  (the fixture)
from cache_fakes import Provider, Warnings, action_key, build, sha
from recraft_build.errors import UsageError
from recraft_build.cache.codec import AC_FORMAT
from recraft_build.cache.http import REMOTE_AUTH_ENV, RemoteCache, auth_headers
from recraft_build.cache.policy import RemotePolicy
from recraft_build.cache.remote_base import PutResult, redact_url, referenced_blobs, remote_name
from recraft_build.cache.tiered import TieredStore
from recraft_build.cache.local import Store

TOKEN = "s3cr3t-token-value"


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client() as c:
        yield c


def remote_for(url: str, client: httpx.Client, warnings: Warnings, **kw: Any) -> RemoteCache:
    kw.setdefault("sleep", lambda seconds: None)
    return RemoteCache(url, client=client, warn=warnings, **kw)


def nginx_requests(server: NginxCache, method: str) -> list[str]:
    log = (server.prefix / "access.log").read_text(encoding="utf-8")
    return [line for line in log.splitlines() if f'"{method} ' in line]


# --------------------------------------------------------------------------- real nginx


def test_blob_and_record_round_trip_through_nginx(nginx_cache: NginxCache, client) -> None:
    warnings = Warnings()
    remote = remote_for(nginx_cache.url, client, warnings)
    data = b"\x89PNG fake picture bytes" * 100
    digest = sha(data)

    assert remote.get_blob(digest) is None
    assert not remote.has_blob(digest)
    assert remote.put_blob(data) is PutResult.UPLOADED
    assert (nginx_cache.root / "cas" / digest).read_bytes() == data
    assert remote.has_blob(digest)
    assert remote.get_blob(digest) == data
    assert remote.put_blob(data, check_first=True) is PutResult.PRESENT  # not sent twice
    big = bytes(range(256)) * 1024  # over policy.head_before_put: checked by default
    assert remote.put_blob(big) is PutResult.UPLOADED
    assert remote.put_blob(big) is PutResult.PRESENT
    assert len([r for r in nginx_requests(nginx_cache, "PUT") if sha(big) in r]) == 1

    key = action_key("hero")
    record = {"candidates": [{"sha256": digest, "media_type": "image/png"}], "credits": 1}
    assert remote.get_record(key) is None
    assert remote.put_record(key, record) is PutResult.UPLOADED
    assert remote.get_record(key) == record
    stored = json.loads((nginx_cache.root / "ac" / key).read_bytes())
    assert stored == {"format": AC_FORMAT, "key": key, "record": record}
    assert warnings == []


def test_two_cache_folders_share_one_remote(nginx_cache: NginxCache, client, tmp_path) -> None:
    names = [f"icon-{i}" for i in range(6)]
    warnings = Warnings()

    laptop = Provider()
    with TieredStore(Store(tmp_path / "a"), remote_for(nginx_cache.url, client, warnings)) as a:
        first = build(a, names, laptop)
        summary = a.flush()
    assert len(laptop.calls) == 6
    assert (summary.blobs_uploaded, summary.records_uploaded, summary.failed) == (6, 6, 0)

    ci = Provider()
    with TieredStore(Store(tmp_path / "b"), remote_for(nginx_cache.url, client, warnings)) as b:
        second = build(b, names, ci)
        summary_b = b.flush()
    assert ci.calls == []  # zero provider calls: everything came from the remote
    assert second == first
    assert (summary_b.records_downloaded, summary_b.blobs_downloaded) == (6, 6)
    assert summary_b.uploaded == 0
    assert warnings == []

    # The remote hits were copied into b's own folder: they survive without the remote.
    with Store(tmp_path / "b") as b_local:
        assert build(b_local, names, ci) == first
    assert ci.calls == []


def test_read_mode_never_writes(nginx_cache: NginxCache, client, tmp_path) -> None:
    warnings = Warnings()
    provider = Provider()
    remote = remote_for(nginx_cache.url, client, warnings, mode="read")
    with TieredStore(Store(tmp_path / "laptop"), remote) as store:
        build(store, ["a", "b", "c"], provider)
        summary = store.flush()
    assert remote.put_blob(b"direct") is PutResult.SKIPPED
    assert remote.put_record(action_key("x"), {"sha256": sha(b"direct")}) is PutResult.SKIPPED
    assert len(provider.calls) == 3
    assert summary.uploaded == 0 and summary.bytes == 0
    assert nginx_cache.files() == []
    assert nginx_requests(nginx_cache, "PUT") == []
    assert warnings == []


def test_read_mode_still_reads(nginx_cache: NginxCache, client, tmp_path) -> None:
    warnings = Warnings()
    with TieredStore(Store(tmp_path / "ci"), remote_for(nginx_cache.url, client, warnings)) as ci:
        build(ci, ["a", "b"], Provider())
    laptop = Provider()
    remote = remote_for(nginx_cache.url, client, warnings, mode="read")
    with TieredStore(Store(tmp_path / "laptop"), remote) as store:
        build(store, ["a", "b"], laptop)
    assert laptop.calls == []
    assert warnings == []


def test_blob_corrupted_on_the_server_is_ignored(nginx_cache: NginxCache, client, tmp_path) -> None:
    warnings = Warnings()
    names = ["sword"]
    with TieredStore(Store(tmp_path / "a"), remote_for(nginx_cache.url, client, warnings)) as a:
        good = build(a, names, Provider())
    digest = sha(good["sword"])
    (nginx_cache.root / "cas" / digest).write_bytes(b"bit rot")

    provider = Provider()
    with TieredStore(Store(tmp_path / "b"), remote_for(nginx_cache.url, client, warnings)) as b:
        assert b.get_blob(digest) is None
        assert not b.local.has_blob(digest)  # the wrong bytes never reach the local store
        again = build(b, names, provider)
    assert again == good  # made locally instead, right bytes
    assert provider.calls == ["sword"]
    assert any("wrong bytes" in w and digest[:12] in w for w in warnings)


def test_unreadable_record_on_the_server_is_ignored(nginx_cache: NginxCache, client, tmp_path) -> None:
    warnings = Warnings()
    remote = remote_for(nginx_cache.url, client, warnings)
    key = action_key("hero")
    (nginx_cache.root / "ac").mkdir(parents=True)
    (nginx_cache.root / "ac" / key).write_bytes(b"\x00not json")
    assert remote.get_record(key) is None
    other = action_key("other")
    (nginx_cache.root / "ac" / other).write_bytes(
        json.dumps({"format": AC_FORMAT, "key": key, "record": {}}).encode()
    )
    assert remote.get_record(other) is None  # an entry written for another key
    assert len(warnings) == 2 and all("unreadable action record" in w for w in warnings)


def test_remote_record_without_its_blob_is_a_miss(nginx_cache: NginxCache, client, tmp_path) -> None:
    warnings = Warnings()
    remote = remote_for(nginx_cache.url, client, warnings)
    key = action_key("hero")
    missing = sha(b"never uploaded")
    assert remote.put_record(key, {"picture": {"sha256": missing}}) is PutResult.UPLOADED
    with TieredStore(Store(tmp_path / "b"), remote) as store:
        assert store.get_record(key) is None
        assert store.local.get_record(key) is None  # no dangling record copied in
    assert len(warnings) == 1 and missing[:12] in warnings[0]


def test_concurrent_uploads_of_the_same_blob(nginx_cache: NginxCache, client) -> None:
    warnings = Warnings()
    remote = remote_for(nginx_cache.url, client, warnings)
    data = bytes(range(256)) * 4096  # 1 MiB, so the PUTs overlap
    barrier = threading.Barrier(12)
    results: list[PutResult] = []

    def upload() -> None:
        barrier.wait()
        results.append(remote.put_blob(data, check_first=False))

    threads = [threading.Thread(target=upload) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [PutResult.UPLOADED] * 12
    assert (nginx_cache.root / "cas" / sha(data)).read_bytes() == data
    assert remote.get_blob(sha(data)) == data
    assert warnings == []


def test_tiered_store_uploads_a_blob_once_however_many_threads_put_it(
    nginx_cache: NginxCache, client, tmp_path
) -> None:
    warnings = Warnings()
    data = b"same picture" * 1000
    with TieredStore(Store(tmp_path / "a"), remote_for(nginx_cache.url, client, warnings)) as store:
        barrier = threading.Barrier(10)

        def put() -> None:
            barrier.wait()
            store.put_blob(data)

        threads = [threading.Thread(target=put) for _ in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        summary = store.flush()
    assert summary.blobs_uploaded == 1 and summary.failed == 0
    assert summary.bytes == len(data)
    assert len([r for r in nginx_requests(nginx_cache, "PUT") if sha(data) in r]) == 1
    assert nginx_cache.files() == [f"cas/{sha(data)}"]


def test_two_machines_upload_the_same_blob_at_once(nginx_cache: NginxCache, client, tmp_path) -> None:
    warnings = Warnings()
    stores = [
        TieredStore(Store(tmp_path / name), remote_for(nginx_cache.url, client, warnings))
        for name in ("a", "b", "c")
    ]
    barrier = threading.Barrier(len(stores))

    def run(store: TieredStore) -> None:
        barrier.wait()
        build(store, ["shared"], Provider())
        store.close()

    threads = [threading.Thread(target=run, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    data = Provider()("shared")
    assert (nginx_cache.root / "cas" / sha(data)).read_bytes() == data
    assert warnings == []


# --------------------------------------------------------------------------- misbehaving servers


class CacheServer:
    """An in-memory Bazel-HTTP cache on 127.0.0.1 that can be told to misbehave.

    ``delay(method, path)`` returns seconds to stall (waiting on an event that teardown
    sets, so no test waits longer than it must); ``corrupt`` serves wrong bytes for
    ``/cas/``; ``status(method, path)`` may force a status; ``events`` records
    ``("start"|"done", method, path)`` in the order the server saw them.
    """

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}
        self.events: list[tuple[str, str, str]] = []
        self.corrupt = False
        self.delay: Callable[[str, str], float] = lambda method, path: 0.0
        self.status: Callable[[str, str], int | None] = lambda method, path: None
        self.release = threading.Event()
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self, method: str) -> None:
                path = self.path.lstrip("/")
                body = b""
                if method == "PUT":
                    body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                server._event("start", method, path)
                stall = server.delay(method, path)
                if stall:
                    server.release.wait(stall)
                forced = server.status(method, path)
                if forced is not None:
                    reply: tuple[int, bytes, int | None] = (forced, b"", None)
                elif method == "PUT":
                    with server._lock:
                        server.data[path] = body
                    reply = (201, b"", None)
                elif path in server.data:
                    payload = server.data[path]
                    if server.corrupt and path.startswith("cas/"):
                        payload = b"X" + payload[1:]
                    reply = (200, payload if method == "GET" else b"", len(payload))
                else:
                    reply = (404, b"", None)
                # Logged before the reply goes out: once the client has its answer the log
                # already shows this request done (else the client's next request could be
                # logged first, and a test reading the log right away could miss it).
                server._event("done", method, path)
                self._reply(*reply)

            def _reply(self, status: int, body: bytes, length: int | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(len(body) if length is None else length))
                self.end_headers()
                if body:
                    self.wfile.write(body)

            def do_GET(self) -> None:
                self._handle("GET")

            def do_HEAD(self) -> None:
                self._handle("HEAD")

            def do_PUT(self) -> None:
                self._handle("PUT")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=lambda: self._server.serve_forever(poll_interval=0.05), daemon=True)
        self._thread.start()

    def _event(self, what: str, method: str, path: str) -> None:
        with self._lock:
            self.events.append((what, method, path))

    def stop(self) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def server() -> Iterator[CacheServer]:
    s = CacheServer()
    yield s
    s.stop()


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"  # nothing listens there now


def test_remote_that_is_down_gives_one_warning_and_local_work_goes_on(client, tmp_path) -> None:
    warnings = Warnings()
    sleeps: list[float] = []
    remote = RemoteCache(
        closed_port_url(), client=client, warn=warnings, sleep=sleeps.append,
        policy=RemotePolicy(retries=2),
    )
    provider = Provider()
    names = [f"asset-{i}" for i in range(20)]
    with TieredStore(Store(tmp_path / "a"), remote) as store:
        built = build(store, names, provider)
        summary = store.flush()
        assert all(store.local.get_record(action_key(n)) for n in names)  # nothing lost
    assert len(built) == 20 and len(provider.calls) == 20
    assert len(warnings) == 1
    assert "not usable" in warnings[0] and "local cache only" in warnings[0]
    assert remote.traffic()["requests"] == 3  # one call and its 2 retries, then quick misses
    assert len(sleeps) == 2
    assert summary.uploaded == 0 and summary.failed == 0


def test_slow_remote_times_out_into_a_miss(server: CacheServer, client, tmp_path) -> None:
    warnings = Warnings()
    data = b"picture"
    server.data[f"cas/{sha(data)}"] = data
    server.delay = lambda method, path: 30.0  # far longer than the timeout below
    remote = remote_for(
        server.url, client, warnings,
        policy=RemotePolicy(timeout=0.2, connect_timeout=2.0, retries=1),
    )
    assert remote.get_blob(sha(data)) is None
    assert not remote.available
    provider = Provider()
    with TieredStore(Store(tmp_path / "a"), remote) as store:
        build(store, ["slow"], provider)
    assert provider.calls == ["slow"]
    assert len(warnings) == 1 and "ReadTimeout" in warnings[0]


def test_corrupting_remote_is_caught_by_the_digest(server: CacheServer, client, tmp_path) -> None:
    warnings = Warnings()
    provider = Provider()
    with TieredStore(Store(tmp_path / "ci"), remote_for(server.url, client, warnings)) as ci:
        good = build(ci, ["hero"], provider)
    server.corrupt = True
    with TieredStore(Store(tmp_path / "laptop"), remote_for(server.url, client, warnings)) as laptop:
        again = build(laptop, ["hero"], provider)
        assert laptop.local.get_record(action_key("hero"))["picture"]["sha256"] == sha(good["hero"])
    assert again == good
    assert provider.calls == ["hero", "hero"]  # paid again rather than use wrong bytes
    assert any("wrong bytes" in w for w in warnings)


def test_blobs_reach_the_remote_before_the_record_that_points_to_them(
    server: CacheServer, client, tmp_path
) -> None:
    # Blob uploads are made slow, so a record upload that did not wait would overtake.
    server.delay = lambda method, path: 0.2 if (method, path[:4]) == ("PUT", "cas/") else 0.0
    warnings = Warnings()
    local = Store(tmp_path / "a")
    # One blob that was already local before this build: it too must be sent first.
    old = b"picked last week"
    local.put_blob(old)
    with TieredStore(local, remote_for(server.url, client, warnings), upload_threads=4) as store:
        for i in range(5):
            a = store.put_blob(f"candidate {i} a".encode())
            b = store.put_blob(f"candidate {i} b".encode())
            store.put_record(
                action_key(str(i)),
                {"candidates": [{"sha256": a}, {"sha256": b}], "pick": {"sha256": sha(old)}},
            )
        summary = store.flush()
    assert summary.records_uploaded == 5 and summary.failed == 0
    done = [path for what, method, path in server.events if (what, method) == ("done", "PUT")]
    for what, method, path in server.events:
        if (what, method) == ("start", "PUT") and path.startswith("ac/"):
            position = server.events.index((what, method, path))
            finished_before = {
                p for w, m, p in server.events[:position] if (w, m) == ("done", "PUT")
            }
            record = json.loads(server.data[path])["record"]
            for digest in referenced_blobs(record):
                assert f"cas/{digest}" in finished_before, (path, digest)
    assert f"cas/{sha(old)}" in done
    assert warnings == []


def test_failed_blob_upload_is_a_warning_and_holds_back_its_record(
    server: CacheServer, client, tmp_path
) -> None:
    big = b"too big for this server" * 100
    server.status = lambda method, path: 413 if (method, path) == ("PUT", f"cas/{sha(big)}") else None
    warnings = Warnings()
    with TieredStore(Store(tmp_path / "a"), remote_for(server.url, client, warnings)) as store:
        d = store.put_blob(big)
        store.put_record(action_key("big"), {"sha256": d})
        small = store.put_blob(b"fine")
        store.put_record(action_key("small"), {"sha256": small})
        summary = store.flush()
        assert store.get_blob(d) == big  # the picture is not lost
    assert f"ac/{action_key('big')}" not in server.data
    assert f"ac/{action_key('small')}" in server.data
    assert summary.failed == 2 and summary.records_uploaded == 1
    assert any("HTTP 413" in w for w in warnings)
    assert any("not uploaded" in w and action_key("big")[:12] in w for w in warnings)


# --------------------------------------------------------------------------- MockTransport


class Recorder:
    """A MockTransport handler: answers from a script, records every request."""

    def __init__(self, answer: Callable[[httpx.Request], httpx.Response]) -> None:
        self.answer = answer
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.answer(request)


def mock_remote(answer, warnings: Warnings, sleeps: list[float] | None = None, **kw: Any):
    recorder = Recorder(answer)
    client = httpx.Client(transport=httpx.MockTransport(recorder))
    remote = RemoteCache(
        kw.pop("url", "https://cache.example/team"),
        client=client,
        warn=warnings,
        sleep=(sleeps.append if sleeps is not None else (lambda s: None)),
        headers={"Authorization": f"Bearer {TOKEN}"},
        **kw,
    )
    return remote, recorder


def test_retries_5xx_with_backoff_then_succeeds() -> None:
    data = b"blob"
    statuses = iter([503, 502, 200])

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(next(statuses), content=data)

    warnings, sleeps = Warnings(), []
    remote, recorder = mock_remote(answer, warnings, sleeps, policy=RemotePolicy(retries=3))
    assert remote.get_blob(sha(data)) == data
    assert len(recorder.requests) == 3
    assert sleeps == [0.25, 0.5]
    assert warnings == [] and remote.available


def test_429_honours_retry_after() -> None:
    answers = iter([httpx.Response(429, headers={"Retry-After": "3"}), httpx.Response(404)])
    warnings, sleeps = Warnings(), []
    remote, _ = mock_remote(lambda r: next(answers), warnings, sleeps)
    assert remote.get_blob(sha(b"x")) is None
    assert sleeps == [3.0]
    assert warnings == []


def test_retry_after_as_an_http_date_is_honoured_and_capped() -> None:
    """The date is measured against the answer's own Date header (not the local clock)."""
    date = "Wed, 21 Oct 2015 07:28:00 GMT"
    answers = iter(
        [
            httpx.Response(503, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:07 GMT", "Date": date}),
            httpx.Response(429, headers={"Retry-After": "Wed, 21 Oct 2015 09:00:00 GMT", "Date": date}),
            httpx.Response(404),
        ]
    )
    warnings, sleeps = Warnings(), []
    remote, _ = mock_remote(
        lambda r: next(answers), warnings, sleeps, policy=RemotePolicy(retries=2, max_retry_after=30.0),
        clock=lambda: 0.0,  # a wall clock decades off: must not matter
    )
    assert remote.get_blob(sha(b"x")) is None
    assert sleeps == [pytest.approx(7.0), 30.0]
    assert warnings == []


def test_retries_run_out_then_every_call_is_a_quick_miss() -> None:
    warnings, sleeps = Warnings(), []
    remote, recorder = mock_remote(lambda r: httpx.Response(503), warnings, sleeps)
    assert remote.get_blob(sha(b"x")) is None
    made = len(recorder.requests)
    assert made == 3
    assert remote.get_record(action_key("a")) is None
    assert not remote.has_blob(sha(b"y"))
    assert remote.put_blob(b"z") is PutResult.SKIPPED
    assert len(recorder.requests) == made
    assert len(warnings) == 1 and "HTTP 503" in warnings[0]


def test_auth_header_is_sent_on_every_request_and_never_shown() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(201 if request.method == "PUT" else 404)

    warnings = Warnings()
    remote, recorder = mock_remote(answer, warnings)
    data = b"pic"
    remote.get_blob(sha(data))
    remote.put_blob(data, check_first=True)
    remote.put_record(action_key("a"), {"sha256": sha(data)})
    remote.get_record(action_key("a"))
    methods = sorted({r.method for r in recorder.requests})
    assert methods == ["GET", "HEAD", "PUT"]
    assert all(r.headers["Authorization"] == f"Bearer {TOKEN}" for r in recorder.requests)
    assert [str(r.url) for r in recorder.requests if r.method == "PUT"] == [
        f"https://cache.example/team/cas/{sha(data)}",
        f"https://cache.example/team/ac/{action_key('a')}",
    ]

    denied = Warnings()
    remote, _ = mock_remote(lambda r: httpx.Response(401), denied)
    assert remote.get_blob(sha(data)) is None
    assert len(denied) == 1 and "HTTP 401" in denied[0] and TOKEN not in denied[0]


def test_password_in_the_url_is_never_shown() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        # A transport error quoting everything it knows, credentials included.
        raise httpx.ConnectError(
            f"cannot reach {request.url} with {request.headers['Authorization']}",
            request=request,
        )

    warnings = Warnings()
    remote, _ = mock_remote(answer, warnings, url="https://ci:hunter2@cache.example")
    assert remote.get_blob(sha(b"x")) is None
    assert remote.url == "https://ci:***@cache.example"
    assert len(warnings) == 1 and "cannot reach" in warnings[0]
    assert "hunter2" not in warnings[0] and TOKEN not in warnings[0]
    assert redact_url("http://host:8080/x") == "http://host:8080/x"


def test_read_mode_sends_no_put() -> None:
    warnings = Warnings()
    remote, recorder = mock_remote(lambda r: httpx.Response(404), warnings, mode="read")
    assert remote.put_blob(b"x") is PutResult.SKIPPED
    assert remote.put_record(action_key("a"), {}) is PutResult.SKIPPED
    assert not remote.can_write
    assert recorder.requests == []


def test_refused_upload_turns_uploads_off_but_keeps_reading() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(403) if request.method == "PUT" else httpx.Response(200, content=b"ok")

    warnings = Warnings()
    remote, recorder = mock_remote(answer, warnings)
    assert remote.put_blob(b"a", check_first=False) is PutResult.FAILED
    assert remote.put_blob(b"b", check_first=False) is PutResult.SKIPPED
    assert remote.get_blob(sha(b"ok")) == b"ok"
    assert len([r for r in recorder.requests if r.method == "PUT"]) == 1
    assert len(warnings) == 1 and "--remote-cache-mode read" in warnings[0]


def test_server_without_put_says_how_to_enable_it() -> None:
    warnings = Warnings()
    remote, _ = mock_remote(
        lambda r: httpx.Response(405 if r.method == "PUT" else 404), warnings
    )
    assert remote.put_blob(b"a") is PutResult.FAILED
    assert remote.put_record(action_key("a"), {}) is PutResult.SKIPPED
    assert len(warnings) == 1 and "dav_methods PUT" in warnings[0]


def test_bazel_remote_ac_validation_is_explained_once_and_blobs_go_on() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.method == "PUT":
            return httpx.Response(400 if "/ac/" in request.url.path else 200)
        return httpx.Response(404)

    warnings = Warnings()
    remote, _ = mock_remote(answer, warnings)
    assert remote.put_record(action_key("a"), {}) is PutResult.FAILED
    assert remote.put_record(action_key("b"), {}) is PutResult.SKIPPED
    assert remote.put_blob(b"still shared") is PutResult.UPLOADED
    assert len(warnings) == 1 and "--disable_http_ac_validation" in warnings[0]


def test_bad_mode_or_url_is_a_usage_error(client) -> None:
    with pytest.raises(UsageError, match="read-write"):
        RemoteCache("http://cache", client=client, mode="write")
    with pytest.raises(UsageError, match="http:// or https://"):
        RemoteCache("ftp://cache", client=client)
    with pytest.raises(UsageError) as info:
        RemoteCache("s3://user:hunter2@bucket", client=client)
    assert "hunter2" not in str(info.value)


def test_put_blob_refuses_a_wrong_digest(client) -> None:
    remote = RemoteCache("http://cache", client=client)
    with pytest.raises(ValueError):
        remote.put_blob(b"abc", digest=sha(b"abd"))


def test_remote_names_are_64_hex() -> None:
    key = action_key("a")
    assert remote_name(key) == key
    assert remote_name("step:resize:abc") == sha(b"step:resize:abc")


def test_referenced_blobs_follows_the_store_convention() -> None:
    a, b, c = sha(b"a"), sha(b"b"), sha(b"c")
    record = {"candidates": [{"sha256": b}, {"sha256": a}], "x": {"y": {"sha256": [c, a]}}}
    assert referenced_blobs(record) == sorted({a, b, c})


def test_the_last_record_put_for_a_key_is_the_one_the_remote_keeps(
    server: CacheServer, client, tmp_path
) -> None:
    slow = b"slow first candidate"
    server.delay = lambda method, path: 0.3 if (method, path) == ("PUT", f"cas/{sha(slow)}") else 0.0
    key = action_key("hero")
    with TieredStore(Store(tmp_path / "a"), remote_for(server.url, client, Warnings())) as store:
        store.put_record(key, {"pick": {"sha256": store.put_blob(slow)}})
        store.put_record(key, {"pick": {"sha256": store.put_blob(b"re-picked")}})
        store.flush()
    assert json.loads(server.data[f"ac/{key}"])["record"] == {"pick": {"sha256": sha(b"re-picked")}}


def test_tiered_store_passes_maintenance_to_the_local_store(client, tmp_path) -> None:
    remote = RemoteCache(closed_port_url(), client=client, mode="read")
    store = TieredStore(Store(tmp_path / "a"), remote)
    digest = store.put_blob(b"kept")
    store.put_record(action_key("a"), {"sha256": digest})
    assert (store.info().blobs, store.info().records) == (1, 1)
    assert store.verify().ok
    assert store.gc(keep_keys=set(), keep_digests=set()).blobs == 1
    store.close()
    store.close()  # safe twice


def test_tiered_store_closes_the_client_it_owns_after_the_uploads(tmp_path) -> None:
    events: list[str] = []

    class Client(httpx.Client):
        def close(self) -> None:
            events.append("client closed")
            super().close()

    def answer(request: httpx.Request) -> httpx.Response:
        events.append(request.method)
        return httpx.Response(201 if request.method == "PUT" else 404)

    client = Client(transport=httpx.MockTransport(answer))
    remote = RemoteCache("https://cache.example", client=client, sleep=lambda s: None)
    store = TieredStore(Store(tmp_path / "a"), remote, client=client)
    store.put_blob(b"picture")
    store.close()
    store.close()  # safe twice: closed once
    assert events == ["PUT", "client closed"]
    assert client.is_closed


def test_auth_header_comes_from_the_environment() -> None:
    assert auth_headers({REMOTE_AUTH_ENV: f"Bearer {TOKEN}"}) == {"Authorization": f"Bearer {TOKEN}"}
    assert auth_headers({REMOTE_AUTH_ENV: "  "}) == {}
    assert auth_headers({}) == {}


def test_the_blobs_of_a_record_are_fetched_at_once(server: CacheServer, client, tmp_path) -> None:
    from recraft_build.cache.codec import encode_ac_entry

    blobs = [b"candidate one", b"candidate two", b"candidate three"]
    for data in blobs:
        server.data[f"cas/{sha(data)}"] = data
    key = action_key("four candidates")
    record = {"candidates": [{"sha256": sha(data)} for data in blobs]}
    server.data[f"ac/{remote_name(key)}"] = encode_ac_entry(key, record)
    # Each blob GET stalls a little, so requests in flight together overlap in the log.
    server.delay = lambda method, path: 0.3 if method == "GET" and path.startswith("cas/") else 0.0
    warnings = Warnings()
    with TieredStore(Store(tmp_path / "c"), remote_for(server.url, client, warnings, mode="read")) as store:
        assert store.get_record(key) == record
        assert all(store.local.get_blob(sha(data)) == data for data in blobs)
    order = [what for what, method, path in server.events if path.startswith("cas/")]
    assert order[:3] == ["start", "start", "start"]  # all three in flight before any answer
    assert warnings == []


def test_warm_asks_about_many_blobs_at_once_and_remembers_what_the_remote_has(
    server: CacheServer, client, tmp_path
) -> None:
    present = [b"pinned one", b"pinned two", b"pinned three"]
    for data in present:
        server.data[f"cas/{sha(data)}"] = data
    absent = sha(b"never uploaded")
    server.delay = lambda method, path: 0.3 if method == "HEAD" else 0.0
    with TieredStore(Store(tmp_path / "c"), remote_for(server.url, client, Warnings(), mode="read")) as store:
        store.local.put_blob(b"already here")
        store.warm([sha(d) for d in present] + [absent, sha(b"already here")])
        heads = [e for e in server.events if e[1] == "HEAD"]
        assert len(heads) == 2 * 4  # the local blob is not asked about
        assert [what for what, _m, _p in heads[:4]] == ["start"] * 4  # all in flight at once
        server.delay = lambda method, path: 0.0
        assert all(store.has_blob(sha(d)) for d in present)
        assert len([e for e in server.events if e[1] == "HEAD"]) == 8  # answered from memory
        assert not store.has_blob(absent)  # a miss is asked again (it may arrive meanwhile)
        assert len([e for e in server.events if e[1] == "HEAD"]) == 10


def test_warm_fetches_the_named_blobs_at_once_verified_into_the_local_store(
    server: CacheServer, client, tmp_path
) -> None:
    """A fresh clone's restore: the files the lock pins come down together, each checked
    against its digest before it is kept; a corrupt copy is a warned miss."""
    files = [b"file one", b"file two", b"file three"]
    for data in files:
        server.data[f"cas/{sha(data)}"] = data
    server.data[f"cas/{sha(b'the real bytes')}"] = b"tampered bytes"
    server.delay = lambda method, path: 0.3 if method == "GET" else 0.0
    warnings = Warnings()
    with TieredStore(Store(tmp_path / "c"), remote_for(server.url, client, warnings, mode="read")) as store:
        store.warm([], fetch=[sha(d) for d in files] + [sha(b"the real bytes")])
        gets = [e for e in server.events if e[1] == "GET"]
        assert [what for what, _m, _p in gets[:4]] == ["start"] * 4  # all in flight at once
        assert all(store.local.get_blob(sha(d)) == d for d in files)
        assert not store.local.has_blob(sha(b"the real bytes"))
        assert len(warnings) == 1 and "wrong bytes" in warnings[0]
        server.delay = lambda method, path: 0.0
        before = len(server.events)
        assert all(store.get_blob(sha(d)) == d for d in files)
        assert len(server.events) == before  # read from the local store: nothing asked
