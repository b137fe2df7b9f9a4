"""The review server over real HTTP on loopback: who may read, who may write, what may be read."""

from __future__ import annotations

import http.client
import http.cookies
import json
import os
import re
import signal
import subprocess
import sys

import pytest

from recraft_build import api
from recraft_build.errors import UsageError
from recraft_build.review.access import nests_deeper
from recraft_build.review.server import MAX_JSON_DEPTH, TOKEN_HEADER, ReviewServer

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


def access_cookie(srv):
    """The Cookie header a browser sends once it opened the printed address."""
    return f"{srv.cookie_name}={srv.access_token}"


def request(srv, method, path, body=None, headers=None, *, host=None, cookie=True):
    """One request; with the server's access cookie unless ``cookie`` is False
    (or a string: that Cookie header instead)."""
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
    try:
        hdrs = {"Host": host or f"127.0.0.1:{srv.port}"}
        if cookie:
            hdrs["Cookie"] = access_cookie(srv) if cookie is True else cookie
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


def pick(srv, asset, index, *, cookie=True, path="/api/pick", **headers):
    hdrs = {TOKEN_HEADER: srv.token, "Origin": srv.origin}
    hdrs.update(headers)
    return request(srv, "POST", path, {"asset": asset, "index": index}, hdrs, cookie=cookie)


def refused_for_lack_of_access(response, srv) -> bool:
    """A 403 that says to open the printed address, and gives nothing away."""
    status, headers, body = response
    text = body.decode()
    return (
        status == 403
        and "printed" in text
        and "<html" not in text
        and srv.token not in text
        and srv.access_token not in text
        and "Set-Cookie" not in headers
    )


def test_the_printed_address_sets_the_cookie_and_leaves_the_token_out_of_the_address(shared):
    server = shared
    assert server.url == f"http://127.0.0.1:{server.port}/?token={server.access_token}"
    path = server.url.split(str(server.port), 1)[1]
    status, headers, _ = request(server, "GET", path, cookie=False)
    assert status == 302
    assert headers["Location"] == "/gallery/"
    jar = http.cookies.SimpleCookie(headers["Set-Cookie"])
    assert list(jar) == [f"rb_review_{server.port}"]
    morsel = jar[f"rb_review_{server.port}"]
    assert morsel.value == server.access_token
    assert morsel["httponly"] and morsel["samesite"] == "Strict" and morsel["path"] == "/"
    assert not morsel["domain"] and not morsel["secure"]
    # The browser then sends the cookie back: everything is served.
    cookie = f"{morsel.key}={morsel.value}"
    for what in ("/gallery/", "/api/state", "/icons/sword.png"):
        assert request(server, "GET", what, cookie=cookie)[0] == 200, what
    # Any page opened with the token lands on itself without it (other parameters kept).
    status, headers, _ = request(server, "GET", f"/icons/sword.png?v=2&token={server.access_token}", cookie=False)
    assert (status, headers["Location"]) == (302, "/icons/sword.png?v=2")
    # Never to another host, whatever the path looks like (browsers read "/\\x" as "//x").
    for odd in ("//evil.example/x", "////evil.example/x", "/\\evil.example/x"):
        status, headers, _ = request(server, "GET", f"{odd}?token={server.access_token}", cookie=False)
        where = headers["Location"]
        assert status == 302 and where.startswith("/") and where[1:2] not in ("/", "\\"), (odd, where)


def test_without_the_access_token_nothing_is_served(shared):
    server = shared
    img = next((server.gallery / "img").iterdir()).name
    for path in ("/", "/gallery/", "/api/state", "/icons/sword.png", f"/gallery/img/{img}", "/nothing.png"):
        response = request(server, "GET", path, cookie=False)
        assert refused_for_lack_of_access(response, server), (path, response[:2])
        assert response[1]["Content-Type"].startswith("text/plain")


def test_a_wrong_token_is_refused(shared):
    server = shared
    for query in ("token=guess", "token=", f"token={server.access_token.upper()}", f"token={server.token}",
                  f"token={server.access_token}&token=guess"):
        assert refused_for_lack_of_access(request(server, "GET", f"/?{query}", cookie=False), server), query
        # A wrong address is reported even to a browser that has the cookie.
        assert request(server, "GET", f"/gallery/?{query}")[0] == 403, query
    # The cookie must hold the token itself; the page's write token is not it.
    assert request(server, "GET", "/gallery/", cookie=f"{server.cookie_name}={server.token}")[0] == 403
    assert request(server, "GET", "/gallery/", cookie=f"{server.cookie_name}=")[0] == 403


def test_a_cookie_for_another_server_on_this_host_is_refused(shared, server):
    # Browsers send 127.0.0.1's cookies to every port: each server checks its own.
    other = server
    assert other.port != shared.port and other.access_token != shared.access_token
    assert request(shared, "GET", "/gallery/", cookie=access_cookie(other))[0] == 403
    assert request(shared, "GET", "/gallery/", cookie=f"{shared.cookie_name}={other.access_token}")[0] == 403
    assert request(shared, "GET", f"/?token={other.access_token}", cookie=False)[0] == 403
    # Both cookies side by side (as a browser sends them): each server finds its own,
    # and a wrong one planted under its name does not hide the right one.
    both = f"{access_cookie(other)}; {shared.cookie_name}=planted; {access_cookie(shared)}; junk"
    assert request(shared, "GET", "/gallery/", cookie=both)[0] == 200
    assert request(other, "GET", "/gallery/", cookie=both)[0] == 200


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
    # The access token in the query stands for the cookie (no redirect for a write).
    status, _h, body = pick(server, "icon-sword", 1, cookie=False, path=f"/api/pick?token={server.access_token}")
    assert status == 200, body
    assert project.generation("icon-sword")["pick"] == 1


def test_a_write_without_the_access_token_is_refused(server, project):
    text = project.lock.read_text()
    for cookie in (False, f"{server.cookie_name}=guess"):
        status, headers, body = pick(server, "icon-sword", 2, cookie=cookie)
        # JSON like every refused write, so the page can show why.
        assert status == 403 and "printed" in json.loads(body)["error"], body
        assert server.access_token not in body.decode()
    assert pick(server, "icon-sword", 2, cookie=False, path="/api/pick?token=guess")[0] == 403
    status, _h, body = request(server, "POST", "/api/reroll", {"asset": "coin"},
                               {TOKEN_HEADER: server.token, "Origin": server.origin}, cookie=False)
    assert status == 403
    assert project.lock.read_text() == text


def test_a_write_without_the_token_is_refused(server, project):
    text = project.lock.read_text()
    status, _h, body = request(server, "POST", "/api/pick", {"asset": "icon-sword", "index": 1}, {"Origin": server.origin})
    assert status == 403
    assert "review token" in json.loads(body)["error"]
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
    img = next((project.gallery / "img").iterdir()).name
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
        cookie = {"Cookie": access_cookie(server)}
        conn.request("POST", "/api/pick", body, {"Content-Type": "application/json", **cookie})
        resp = conn.getresponse()
        assert resp.status == 403
        resp.read()
        conn.request("GET", "/icons/sword.png", headers=cookie)
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
        printed = re.fullmatch(r"http://127\.0\.0\.1:(\d+)(/\?token=[A-Za-z0-9_-]{40,})", url)
        assert printed, url
        port, path = int(printed.group(1)), printed.group(2)

        def get(target, headers=None):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            try:
                conn.request("GET", target, headers=headers or {})
                resp = conn.getresponse()
                return resp.status, resp.getheader("Set-Cookie"), resp.read()
            finally:
                conn.close()

        status, _c, body = get("/gallery/")
        assert status == 403 and b"printed" in body  # not without the printed address
        status, set_cookie, _b = get(path)
        assert status == 302 and set_cookie
        assert get("/gallery/", {"Cookie": set_cookie.split(";")[0]})[0] == 200
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_deeply_nested_body_is_refused_with_a_short_message(server, project, capsys):
    text = project.lock.read_text()
    hdrs = {TOKEN_HEADER: server.token, "Origin": server.origin}
    deep = b"[" * 30_000 + b"]" * 30_000  # fits the size limit; Python's parser would recurse 30,000 deep
    status, _h, body = request(server, "POST", "/api/pick", deep, hdrs)
    assert status == 400
    message = json.loads(body)["error"]
    assert str(MAX_JSON_DEPTH) in message and len(message) < 200
    deep_object = b'{"asset": ' * 20 + b'"coin"' + b"}" * 20
    assert request(server, "POST", "/api/pick", deep_object, hdrs)[0] == 400
    # 100,000 levels do not even fit the size limit
    assert request(server, "POST", "/api/pick", b"[" * 100_000 + b"]" * 100_000, hdrs)[0] == 413
    assert "Traceback" not in capsys.readouterr().err
    assert project.lock.read_text() == text
    # brackets inside strings are text, not nesting: this body is read, and answered on its merits
    status, _h, body = request(server, "POST", "/api/pick", {"asset": "[" * 1000 + '\\"{', "index": 0}, hdrs)
    assert status == 400 and "no asset named" in json.loads(body)["error"]
    assert pick(server, "icon-sword", 2)[0] == 200


def test_nesting_is_counted_outside_strings_only():
    assert not nests_deeper(b'{"a": [1, {"b": [2]}]}', 4)
    assert nests_deeper(b'{"a": [1, {"b": [2]}]}', 3)
    assert not nests_deeper(b'{"a": "[[[[\\"[[[[", "b": "\\\\"}', 1)
    assert nests_deeper(b'{"a": "\\\\", "b": [[]]}', 2)
    assert not nests_deeper(b"]]]]][", 1)  # not JSON: the parser refuses it, nothing deep here


def test_pictures_are_served_from_the_gallery_folder_outside_the_output_folder(project, tmp_path):
    chosen = tmp_path / "review-gallery"
    with ReviewServer(project.spec, gallery_dir=chosen, **project.kw()) as srv:
        assert srv.gallery == chosen
        assert not (project.out / "gallery").exists() and not project.gallery.exists()
        names = sorted(p.name for p in (chosen / "img").iterdir())
        assert names
        status, headers, body = request(srv, "GET", f"/gallery/img/{names[0]}")
        assert status == 200 and body == (chosen / "img" / names[0]).read_bytes()
        assert "sandbox" in headers["Content-Security-Policy"]
        # the page's pictures all resolve
        state = json.loads(request(srv, "GET", "/api/state")[2])
        imgs = [c["img"] for a in state["assets"] for c in a["candidates"]]
        assert imgs and all(request(srv, "GET", f"/gallery/{rel}")[0] == 200 for rel in imgs)
        # a link planted among the pictures is not followed out of the folder
        secret = tmp_path / "secret.txt"
        secret.write_text("top secret")
        (chosen / "img" / ("0" * 64 + ".png")).symlink_to(secret)
        status, _h, body = request(srv, "GET", "/gallery/img/" + "0" * 64 + ".png")
        assert status == 403 and b"top secret" not in body


def test_a_vector_custom_style_rerolls_at_the_plan_s_price(tmp_path):
    from PIL import Image

    # a custom style made from a vector base gives vector pictures: twice a raster one's price
    spec = SPEC_WITH_STYLE
    p = make_project(tmp_path, spec=spec, git=False, build=False)
    (p.root / "refs").mkdir()
    Image.new("RGB", (64, 64), (200, 30, 30)).save(p.root / "refs" / "a.png")
    env = {"RECRAFT_API_TOKEN": "test-token"}  # a paid provider; nothing here calls it
    estimate = {a.name: a.credits for a in api.plan(p.spec, provider="recraft", env=env, cache_dir=p.cache).assets}
    assert estimate == {"logo": 80, "banner": 40}
    with ReviewServer(p.spec, provider="recraft", env=env, cache_dir=p.cache) as srv:
        status, _h, body = request(srv, "GET", "/gallery/")
    assert status == 200
    data = json.loads(re.search(r'type="application/json">(.*?)</script>', body.decode(), re.S).group(1))
    assert data["provider"] == "recraft"
    assert {a["name"]: a["reroll_credits"] for a in data["assets"]} == estimate


SPEC_WITH_STYLE = """\
version: 1
output_dir: out
defaults: {model: recraftv3, size: 1024x1024}
styles:
  house: {style: vector_illustration, references: [refs/a.png]}
assets:
  - name: logo
    prompt: "a fox logo"
    style: house
    output: logo.svg
  - name: banner
    prompt: "a fox banner"
    style: digital_illustration
    output: banner.png
"""


def test_a_client_that_goes_away_is_no_traceback(server, capsys):
    httpd = server._httpd
    try:
        raise ConnectionResetError(104, "Connection reset by peer")
    except ConnectionResetError:
        httpd.handle_error(None, ("127.0.0.1", 1))
    assert capsys.readouterr().err == ""
    try:
        raise ValueError("a bug")
    except ValueError:
        httpd.handle_error(None, ("127.0.0.1", 1))
    assert "ValueError: a bug" in capsys.readouterr().err  # a real bug still says so
