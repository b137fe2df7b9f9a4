"""The review server over real HTTP on loopback: who may write, what may be read."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys

import pytest

from recraft_build.errors import UsageError
from recraft_build.review import TOKEN_HEADER, ReviewServer

from review_fixtures import make_project


@pytest.fixture
def project(tmp_path):
    return make_project(tmp_path)


@pytest.fixture
def server(project):
    srv = ReviewServer(project.spec, **project.kw()).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """A server the read-only tests share (building a project per test is slow)."""
    project = make_project(tmp_path_factory.mktemp("shared"))
    srv = ReviewServer(project.spec, **project.kw()).start()
    yield srv
    srv.stop()


def request(srv, method, path, body=None, headers=None, *, host=None):
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
    try:
        hdrs = {"Host": host or f"127.0.0.1:{srv.port}"}
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        hdrs.update(headers or {})
        # skip_host: send exactly our Host header (the server must check it).
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for k, v in hdrs.items():
            conn.putheader(k, v)
        if data is not None:
            conn.putheader("Content-Length", str(len(data)))
        conn.endheaders(data)
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def pick(srv, asset, index, **headers):
    hdrs = {TOKEN_HEADER: srv.token, "Origin": srv.origin}
    hdrs.update(headers)
    return request(srv, "POST", "/api/pick", {"asset": asset, "index": index}, hdrs)


def test_the_page_carries_its_token_and_a_strict_policy(shared):
    server = shared
    status, headers, body = request(server, "GET", "/gallery/")
    assert status == 200
    html = body.decode()
    data = json.loads(re.search(r'type="application/json">(.*?)</script>', html, re.S).group(1))
    assert data["review"]["token"] == server.token
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert request(server, "GET", "/")[0] == 302


def test_a_pick_through_the_api_changes_the_lock_on_disk(server, project):
    status, _h, body = pick(server, "icon-sword", 2)
    assert status == 200, body
    assert json.loads(body)["ok"] is True
    assert project.generation("icon-sword")["pick"] == 2
    state = json.loads(request(server, "GET", "/api/state")[2])
    sword = next(a for a in state["assets"] if a["name"] == "icon-sword")
    assert sword["pick"] == 2 and sword["state"] == "changed"


def test_a_write_without_the_token_is_refused(server, project):
    text = project.lock.read_text()
    status, _h, body = request(server, "POST", "/api/pick", {"asset": "icon-sword", "index": 1}, {"Origin": server.origin})
    assert status == 403
    assert "token" in json.loads(body)["error"]
    assert pick(server, "icon-sword", 1, **{TOKEN_HEADER: "guess"})[0] == 403
    assert project.lock.read_text() == text


def test_a_write_from_another_origin_or_host_is_refused(server, project):
    text = project.lock.read_text()
    assert pick(server, "icon-sword", 1, Origin="http://evil.example")[0] == 403
    assert pick(server, "icon-sword", 1, **{"Sec-Fetch-Site": "cross-site"})[0] == 403
    # A DNS-rebinding page reaches us under its own name: refused, even for reading.
    assert request(server, "GET", "/gallery/", host=f"evil.example:{server.port}")[0] == 403
    assert project.lock.read_text() == text


def test_bad_requests_say_what_is_wrong(server, project):
    hdrs = {TOKEN_HEADER: server.token}
    status, _h, body = pick(server, "icon-sword", 7)
    assert status == 400 and "INDEX must be 0 to 2" in json.loads(body)["error"]
    status, _h, body = pick(server, "nope", 0)
    assert status == 400 and "no asset named 'nope'" in json.loads(body)["error"]
    assert request(server, "POST", "/api/pick", b"{not json", hdrs)[0] == 400
    assert request(server, "POST", "/api/pick", {"asset": "icon-sword", "index": "1"}, hdrs)[0] == 400
    assert request(server, "POST", "/api/pick", {"asset": "icon-sword", "index": 1},
                   {**hdrs, "Content-Type": "text/plain"})[0] == 415
    assert request(server, "GET", "/api/pick")[0] == 405


@pytest.mark.parametrize(
    "path",
    [
        "/../assets.lock",
        "/%2e%2e/assets.lock",
        "/gallery/%2e%2e/%2e%2e/assets.yaml",
        "/icons/..%2f..%2fassets.lock",
        "/.recraft-build-state.json",
        "/icons%5c..%5c..%5cassets.lock",
        "/%00",
    ],
)
def test_paths_outside_the_output_folder_are_refused(shared, path):
    status, _h, body = request(shared, "GET", path)
    assert status in (403, 404)
    assert b"version" not in body  # neither the lock nor the spec


def test_a_symlink_out_of_the_output_folder_is_refused(server, project, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    os.symlink(secret, project.out / "link.txt")
    os.symlink(tmp_path, project.out / "up")
    assert request(server, "GET", "/link.txt")[0] == 403
    assert request(server, "GET", "/up/secret.txt")[0] == 403


def test_output_files_and_gallery_pictures_are_served_as_inert_data(server, project):
    status, headers, body = request(server, "GET", "/icons/sword.png")
    assert status == 200 and body == (project.out / "icons/sword.png").read_bytes()
    assert headers["Content-Type"] == "image/png"
    assert "sandbox" in headers["Content-Security-Policy"]
    img = next((project.out / "gallery" / "img").iterdir()).name
    assert request(server, "GET", f"/gallery/img/{img}")[0] == 200
    assert request(server, "GET", "/icons/nothing.png")[0] == 404


def test_only_loopback_addresses(project):
    with pytest.raises(UsageError, match="loopback only"):
        ReviewServer(project.spec, host="0.0.0.0", **project.kw())


def test_stop_frees_the_port(project):
    srv = ReviewServer(project.spec, **project.kw()).start()
    port = srv.port
    srv.stop()
    srv.stop()
    with pytest.raises(OSError):
        http.client.HTTPConnection("127.0.0.1", port, timeout=5).connect()


def test_a_refused_write_does_not_poison_the_connection(server):
    # An early 403 leaves the body unread; the next request must not be parsed from it.
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        body = json.dumps({"asset": "coin", "index": 1})
        conn.request("POST", "/api/pick", body, {"Content-Type": "application/json"})
        resp = conn.getresponse()
        assert resp.status == 403
        resp.read()
        conn.request("GET", "/icons/sword.png")
        assert conn.getresponse().status == 200
    finally:
        conn.close()


def test_cli_review_prints_the_url_and_stops_on_ctrl_c(project):
    env = dict(os.environ)
    env.pop("RECRAFT_API_TOKEN", None)
    env.pop("REPLICATE_API_TOKEN", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "recraft_build", "review", "-f", str(project.spec), "--cache-dir", str(project.cache)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        url = proc.stdout.readline().strip()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/gallery/", url), url
        port = int(url.split(":")[2].split("/")[0])
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", "/gallery/")
        assert conn.getresponse().status == 200
        conn.close()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
