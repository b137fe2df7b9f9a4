"""Downloads and picture checks: only usable pictures come back, never with a token sent."""

from __future__ import annotations

import base64
import io
from typing import Any

import httpx
import pytest
from PIL import Image

from fakeserver import FakeClock, FakeServer, local_client, make_raster, make_svg
from recraft_build.errors import BadResultError
from recraft_build.providers.download import Downloader, PictureCheckError, check_picture, sniff_media_type
from recraft_build.providers.http import CallContext, HttpPolicy
from recraft_build.providers.redact import Secret

TOKEN = "rk-SECRET-download-0123456789"
PNG = make_raster(64, 48, "PNG", "a")
WEBP = make_raster(64, 48, "WEBP", "b")


def jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (32, 32), (10, 20, 30)).save(buf, "JPEG")
    return buf.getvalue()


def downloader(handler: Any, *, client: httpx.Client | None = None, max_bytes: int = 50 * 1024 * 1024, clock: FakeClock | None = None) -> Downloader:
    client = client or httpx.Client(transport=httpx.MockTransport(handler))
    clock = clock or FakeClock()
    ctx = CallContext("recraft", secret=Secret(TOKEN), token_env="RECRAFT_API_TOKEN")
    return Downloader(client, ctx=ctx, policy=HttpPolicy(max_retries=3), max_bytes=max_bytes, sleep=clock.sleep, rand=lambda: 0.5)


# -- check_picture --------------------------------------------------------------------


@pytest.mark.parametrize("data,media_type", [(PNG, "image/png"), (WEBP, "image/webp"), (jpeg(), "image/jpeg"), (make_svg(10, 20), "image/svg+xml")])
def test_good_pictures_pass_with_the_right_media_type(data: bytes, media_type: str) -> None:
    body, found = check_picture(data)
    assert found == media_type and body == data
    assert sniff_media_type(data) == media_type


def test_the_bytes_decide_when_the_content_type_disagrees() -> None:
    assert check_picture(WEBP, content_type="image/png")[1] == "image/webp"


def test_svg_without_viewbox_gets_one_from_width_and_height() -> None:
    body, media_type = check_picture(make_svg(300, 200, view_box=False))
    assert media_type == "image/svg+xml"
    assert b'viewBox="0 0 300 200"' in body
    # The result is still valid, and the rest of the file is untouched.
    assert check_picture(body)[0] == body
    assert body.replace(b' viewBox="0 0 300 200"', b"") == make_svg(300, 200, view_box=False)


def test_svg_with_px_units_and_a_leading_comment() -> None:
    svg = b'<!-- made by x <svg --><svg xmlns="http://www.w3.org/2000/svg" width="64px" height="32px"><rect/></svg>'
    body, _ = check_picture(svg)
    assert body.startswith(b'<!-- made by x <svg --><svg viewBox="0 0 64 32" xmlns=')


@pytest.mark.parametrize(
    "svg,reason",
    [
        (b'<svg xmlns="http://www.w3.org/2000/svg"><rect/></svg>', "no viewBox"),
        (b'<svg xmlns="http://www.w3.org/2000/svg" width="50%" height="10"><rect/></svg>', "no viewBox"),
        (b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a "aaaa">]><svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 1 1">&a;</svg>', "DOCTYPE"),
        (b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 1 1"><script>alert(1)</script></svg>', "script"),
        (b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 0 1"/>', "viewBox"),
        (b"<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 1 1'><rect></svg>", "well-formed"),
    ],
)
def test_bad_svgs_are_refused(svg: bytes, reason: str) -> None:
    with pytest.raises(PictureCheckError, match=reason):
        check_picture(svg)


@pytest.mark.parametrize(
    "data,ctype,reason",
    [
        (b"<!DOCTYPE html><html><body>login</body></html>", None, "HTML page"),
        (PNG, "text/html; charset=utf-8", "HTML page"),
        (b'{"error": "expired"}', "application/json", "application/json"),
        (PNG[: len(PNG) // 2], "image/png", "does not decode"),
        (b"GIF89a" + b"\0" * 20, None, "not a PNG, WEBP, JPEG or SVG"),
        (b"", None, "empty"),
    ],
)
def test_non_pictures_are_refused(data: bytes, ctype: str | None, reason: str) -> None:
    with pytest.raises(PictureCheckError, match=reason):
        check_picture(data, content_type=ctype)


def test_expected_kind_is_enforced() -> None:
    with pytest.raises(PictureCheckError, match="expected an SVG"):
        check_picture(PNG, expect="svg")
    with pytest.raises(PictureCheckError, match="expected a raster"):
        check_picture(make_svg(4, 4), expect="raster")


def test_pixel_limit() -> None:
    with pytest.raises(PictureCheckError, match="pixel limit"):
        check_picture(PNG, max_pixels=100)


# -- fetch (MockTransport) --------------------------------------------------------------


def test_download_never_sends_credentials_even_if_the_client_has_them() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=PNG, headers={"content-type": "image/png"})

    client = httpx.Client(
        transport=httpx.MockTransport(handler),
        headers={"Authorization": f"Bearer {TOKEN}"},
        cookies={"session": "abc"},
        auth=("user", "pass"),
    )
    picture = downloader(handler, client=client).fetch("https://cdn.test/a.png?sig=1", asset="a", meta={"image_id": "i1"})
    assert picture.media_type == "image/png" and picture.data == PNG
    assert picture.meta == {"image_id": "i1"}
    assert "authorization" not in seen[0].headers
    assert "cookie" not in seen[0].headers


@pytest.mark.parametrize("status", [403, 404, 410])
def test_expired_or_missing_url_is_a_bad_result_without_retry(status: int) -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(status, text="AccessDenied")

    with pytest.raises(BadResultError, match="expired") as info:
        downloader(handler).fetch("https://cdn.test/a.png?X-Signature=secret-sig", asset="hero")
    assert len(calls) == 1
    assert info.value.status == status and info.value.asset == "hero"
    assert "secret-sig" not in str(info.value)  # the signed query is not shown


def test_server_errors_and_broken_bodies_are_retried() -> None:
    steps: list[Any] = [httpx.Response(503, text="busy"), httpx.RemoteProtocolError("peer closed"), httpx.Response(200, content=PNG)]

    def handler(request: httpx.Request) -> httpx.Response:
        step = steps.pop(0)
        if isinstance(step, Exception):
            raise step
        return step

    clock = FakeClock()
    assert downloader(handler, clock=clock).fetch("https://cdn.test/a.png", asset="a").data == PNG
    assert len(clock.sleeps) == 2


def test_retries_run_out_into_a_bad_result() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadError("reset")

    with pytest.raises(BadResultError, match="after 4 attempt"):
        downloader(handler).fetch("https://cdn.test/a.png", asset="a")


def test_declared_oversize_body_is_refused_before_reading() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=PNG, headers={"content-length": str(10**9)})

    with pytest.raises(BadResultError, match="over the 1000 byte limit"):
        downloader(handler, max_bytes=1000).fetch("https://cdn.test/a.png", asset="a")


def test_streamed_oversize_body_is_cut_off() -> None:
    def stream() -> Any:
        for _ in range(100):
            yield b"\x89PNG\r\n\x1a\n" + b"\0" * 1000

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=stream(), headers={"content-type": "image/png"})

    with pytest.raises(BadResultError, match="over the 5000 byte limit"):
        downloader(handler, max_bytes=5000).fetch("https://cdn.test/a.png", asset="a")


def test_html_page_instead_of_image() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<html>log in</html>", headers={"content-type": "text/html"})

    with pytest.raises(BadResultError, match="HTML page instead of an image"):
        downloader(handler).fetch("https://cdn.test/a.png", asset="a")


def test_b64_and_data_uri_pictures() -> None:
    d = downloader(lambda r: httpx.Response(500))
    encoded = base64.b64encode(PNG).decode()
    assert d.from_b64(encoded, asset="a").data == PNG
    assert d.from_b64("\n".join(encoded[i : i + 60] for i in range(0, len(encoded), 60)), asset="a").data == PNG
    assert d.fetch(f"data:image/png;base64,{encoded}", asset="a").data == PNG
    with pytest.raises(BadResultError, match="does not decode"):
        d.from_b64("not base64 !!", asset="a")
    with pytest.raises(BadResultError, match="not a usable picture"):
        d.from_b64(base64.b64encode(b"<html></html>").decode(), asset="a")


# -- fetch against the real local server --------------------------------------------------


@pytest.fixture
def server() -> Any:
    with FakeServer() as s:
        yield s


def stored_url(server: FakeServer, data: bytes = PNG, ctype: str = "image/png") -> str:
    return server._store(data, ctype, "png")


def real_downloader(max_bytes: int = 50 * 1024 * 1024) -> Downloader:
    return Downloader(local_client(), ctx=CallContext("recraft"), policy=HttpPolicy(max_retries=2), max_bytes=max_bytes, sleep=lambda s: None)


def test_fetch_from_the_server(server: FakeServer) -> None:
    assert real_downloader().fetch(stored_url(server), asset="a").data == PNG
    assert server.download_auth_seen == []


def test_expired_file_on_the_server(server: FakeServer) -> None:
    url = stored_url(server)
    server.expire_files()
    with pytest.raises(BadResultError, match="404"):
        real_downloader().fetch(url, asset="a")


def test_truncated_download_is_retried_then_succeeds(server: FakeServer) -> None:
    server.add_fault("download", "truncate", times=1)
    assert real_downloader().fetch(stored_url(server), asset="a").data == PNG
    assert server.counts["downloads"] == 2


@pytest.mark.parametrize("declare", [True, False])
def test_oversize_download_from_the_server(server: FakeServer, declare: bool) -> None:
    server.add_fault("download", "oversize", size=2_000_000, declare_length=declare)
    with pytest.raises(BadResultError, match="over the 100000 byte limit"):
        real_downloader(max_bytes=100_000).fetch(stored_url(server), asset="a")


def test_html_labelled_as_png_from_the_server(server: FakeServer) -> None:
    server.add_fault("download", "html_as_image")
    with pytest.raises(BadResultError, match="HTML page"):
        real_downloader().fetch(stored_url(server), asset="a")


def test_a_trickled_download_is_cut_at_its_deadline_and_fetched_again(server: FakeServer) -> None:
    # PNG is a few hundred bytes: at one byte every 50 ms it would take many seconds.
    server.add_fault("download", "trickle", delay=0.05, times=1)
    d = Downloader(local_client(), ctx=CallContext("recraft"), policy=HttpPolicy(max_retries=2, download_deadline=0.3), sleep=lambda s: None)
    assert d.fetch(stored_url(server), asset="a").data == PNG
    assert server.counts["downloads"] == 2


def test_redirects_are_followed_without_credentials() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.host == "img.test":
            return httpx.Response(302, headers={"Location": "https://cdn.test/file.png?sig=2"})
        return httpx.Response(200, content=PNG, headers={"Content-Type": "image/png"})

    client = httpx.Client(transport=httpx.MockTransport(handler), headers={"Authorization": f"Bearer {TOKEN}"}, cookies={"s": "1"})
    assert downloader(None, client=client).fetch("https://img.test/a.png?sig=1", asset="a").data == PNG
    assert [r.url.host for r in seen] == ["img.test", "cdn.test"]
    assert all("authorization" not in r.headers and "cookie" not in r.headers for r in seen)


def test_endless_redirects_are_a_bad_result() -> None:
    loop = lambda r: httpx.Response(302, headers={"Location": "https://img.test/again"})  # noqa: E731
    with pytest.raises(BadResultError, match="redirect"):
        downloader(loop).fetch("https://img.test/a.png", asset="a")


# -- one pixel limit, one SVG rule ------------------------------------------------------


def _png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height but which holds almost no data."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0")) + chunk(b"IEND", b"")


@pytest.mark.parametrize("size", [(8900, 8900), (8193, 8192), (100_000, 700)])
def test_a_picture_the_steps_could_not_decode_is_refused_at_download(size: tuple[int, int]) -> None:
    """Download and steps share one pixel limit (and one function checks it): an
    8900x8900 picture used to pass the download's 80 MP and then fail resize at 67 MP."""
    from recraft_build.steps.images import MAX_PIXELS

    assert size[0] * size[1] > MAX_PIXELS
    with pytest.raises(PictureCheckError, match="pixel limit"):
        check_picture(_png_claiming(*size))
    d = downloader(lambda r: httpx.Response(200, content=_png_claiming(*size), headers={"content-type": "image/png"}))
    with pytest.raises(BadResultError, match="pixel limit"):
        d.fetch("https://cdn.test/big.png", asset="a")


@pytest.mark.parametrize(
    "body",
    [
        '<rect onload="alert(1)"/>',
        '<a xlink:href="javascript:alert(1)"><rect/></a>',
        '<foreignObject><div xmlns="http://www.w3.org/1999/xhtml">x</div></foreignObject>',
        '<animate attributeName="x" dur="1s" onbegin="alert(1)"/>',
        '<image href="https://evil.example/x.png"/>',
    ],
)
def test_downloaded_svg_with_active_content_is_a_bad_result(body: str) -> None:
    svg = (
        '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
        f'viewBox="0 0 4 4">{body}</svg>'
    ).encode()
    d = downloader(lambda r: httpx.Response(200, content=svg, headers={"content-type": "image/svg+xml"}))
    with pytest.raises(BadResultError, match="refused") as info:
        d.fetch("https://cdn.test/v.svg", asset="logo", expect="svg")
    assert "nothing was cached" in str(info.value)


def test_pixel_limit_is_the_steps_limit():
    # Kept as a literal so that planning never imports Pillow; it must not drift.
    from recraft_build.providers.download import DEFAULT_MAX_PIXELS
    from recraft_build.steps.images import MAX_PIXELS

    assert DEFAULT_MAX_PIXELS == MAX_PIXELS
