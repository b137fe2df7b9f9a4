"""Tests for recraft_build.steps.export: file formats, options and the favicon set."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image, ImageDraw

from recraft_build.domain import Picture
from recraft_build.errors import StepError
from recraft_build.steps.export import encode, favicon_set
from recraft_build.steps.images import svg_info
from synthetic_pictures import as_picture, make_flat_art

SVG = Picture(
    b'<?xml version="1.0" encoding="UTF-8"?>\n<!-- made by hand -->\n'
    b'<svg xmlns="http://www.w3.org/2000/svg" width="64" height="32">'
    b'<metadata>secret tool info</metadata>'
    b'<rect x="0.0000" y="0.0000" width="32.0000" height="32.0000" fill="#ff0000"/>'
    b'<circle cx="48" cy="16" r="10" fill="#0000ff"/></svg>',
    "image/svg+xml",
)


def opened(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def art(transparent: bool = True) -> Picture:
    return make_flat_art(1, 96, transparent=transparent)


# --------------------------------------------------------------------------- raster


@pytest.mark.parametrize(("fmt", "pil"), [("png", "PNG"), ("webp", "WEBP"), ("jpg", "JPEG"),
                                          ("jpeg", "JPEG"), ("ico", "ICO")])
def test_each_format_writes_what_it_says(fmt, pil):
    data = encode(art(), fmt)
    assert opened(data).format == pil


@pytest.mark.parametrize("fmt", ["png", "webp", "jpg", "ico"])
@pytest.mark.parametrize("options", [{}, {"optimize": True}, {"quality": 70}])
def test_same_picture_same_bytes(fmt, options):
    if fmt in ("png", "ico"):
        options = {k: v for k, v in options.items() if k != "quality"}
    assert encode(art(), fmt, options) == encode(art(), fmt, dict(options))


def test_png_is_lossless_and_optimize_only_shrinks():
    pic = art()
    plain, optimized = encode(pic, "png"), encode(pic, "png", {"optimize": True})
    assert len(optimized) <= len(plain)
    source = np.asarray(opened(pic.data).convert("RGBA"))
    for data in (plain, optimized, encode(pic, "png", {"optimize": 4})):
        assert np.array_equal(np.asarray(opened(data).convert("RGBA")), source)


def test_quality_trades_size_for_fidelity():
    pic = make_flat_art(2, 128, transparent=False)
    for fmt in ("webp", "jpg"):
        assert len(encode(pic, fmt, {"quality": 30})) < len(encode(pic, fmt, {"quality": 95}))


def test_lossless_webp_keeps_every_pixel():
    pic = art()
    out = np.asarray(opened(encode(pic, "webp", {"lossless": True})).convert("RGBA"))
    src = np.asarray(opened(pic.data).convert("RGBA"))
    visible = src[..., 3] > 0
    assert np.array_equal(out[visible], src[visible])


def test_webp_keeps_transparency():
    out = opened(encode(art(), "webp"))
    assert out.mode == "RGBA" and out.getpixel((0, 0))[3] == 0


def test_jpg_flattens_transparency_on_white():
    img = Image.new("RGBA", (32, 32), (0, 0, 0, 0))
    ImageDraw.Draw(img).rectangle((8, 8, 23, 23), fill=(0, 0, 0, 255))
    out = opened(encode(as_picture(img), "jpg"))
    assert out.mode == "RGB"
    assert min(out.getpixel((1, 1))) > 245 and max(out.getpixel((16, 16))) < 10


def test_opaque_rgba_is_written_without_alpha():
    out = opened(encode(as_picture(Image.new("RGBA", (8, 8), (1, 2, 3, 255))), "png"))
    assert out.mode == "RGB"


def test_metadata_is_stripped_by_default_and_kept_on_request():
    exif = Image.Exif()
    exif[0x010E] = "a private description"
    src = as_picture(Image.new("RGB", (16, 16), "red"), "jpeg", exif=exif.tobytes())
    for fmt in ("jpg", "webp", "png"):
        stripped = encode(src, fmt)
        assert b"a private description" not in stripped
        kept = encode(src, fmt, {"strip_metadata": False})
        assert b"a private description" in kept


def test_kept_exif_no_longer_asks_to_rotate_the_upright_picture():
    exif = Image.Exif()
    exif[0x0112] = 6
    src = as_picture(Image.new("RGB", (40, 20), "red"), "jpeg", exif=exif.tobytes())
    out = opened(encode(src, "jpg", {"strip_metadata": False}))
    assert out.size == (20, 40)
    assert out.getexif().get(0x0112, 1) == 1


def test_png_has_no_timestamp_or_text_chunks():
    data = encode(art(), "png", {"optimize": True})
    for chunk in (b"tIME", b"tEXt", b"iTXt", b"zTXt", b"eXIf"):
        assert chunk not in data


def test_ico_holds_16_32_48():
    out = opened(encode(art(), "ico"))
    assert sorted(out.info["sizes"]) == [(16, 16), (32, 32), (48, 48)]


def test_ico_of_a_small_picture_holds_only_sizes_that_fit():
    out = opened(encode(as_picture(Image.new("RGBA", (20, 10), (9, 9, 9, 255))), "ico"))
    assert sorted(out.info["sizes"]) == [(16, 16)]


@pytest.mark.parametrize(
    ("fmt", "options", "message"),
    [("gif", {}, "cannot write .gif"), ("jpg", {"lossless": True}, "webp only"),
     ("png", {"lossless": True}, "always lossless"), ("webp", {"quality": 0}, "quality"),
     ("webp", {"quality": 50.5}, "quality"), ("png", {"optimize": 9}, "optimize"),
     ("png", {"strip_metadata": "yes"}, "strip_metadata")],
)
def test_bad_options_are_named(fmt, options, message):
    with pytest.raises(StepError, match=message):
        encode(art(), fmt, options)


def test_svg_pictures_are_rendered_for_raster_formats():
    out = opened(encode(SVG, "png"))
    assert out.size == (64, 32)
    assert out.getpixel((10, 10))[:3] == (255, 0, 0)


# --------------------------------------------------------------------------- svg


def test_raster_to_svg_says_to_vectorize():
    with pytest.raises(StepError, match="add a vectorize step"):
        encode(art(), "svg")


def test_svg_export_strips_metadata_and_keeps_a_viewbox():
    out = encode(SVG, "svg")
    assert b"secret tool info" not in out and b"made by hand" not in out
    assert svg_info(out).viewbox == (0, 0, 64, 32)
    assert b"0.0000" in SVG.data and b"<rect" in out  # shapes stay; numbers may be normalised


def test_svg_export_keeping_metadata_only_adds_the_viewbox():
    out = encode(SVG, "svg", {"strip_metadata": False})
    assert b"secret tool info" in out
    assert svg_info(out).viewbox == (0, 0, 64, 32)


def test_svg_optimize_can_keep_metadata():
    out = encode(SVG, "svg", {"strip_metadata": False, "optimize": True})
    assert b"secret tool info" in out and b"made by hand" in out


def test_svg_optimize_is_smaller_renders_the_same_and_keeps_the_viewbox():
    traced = encode(SVG, "svg")
    optimized = encode(SVG, "svg", {"optimize": True})
    assert len(optimized) < len(traced)
    assert svg_info(optimized).viewbox == (0, 0, 64, 32)
    a = np.asarray(opened(encode(Picture(traced, "image/svg+xml"), "png")).convert("RGBA"))
    b = np.asarray(opened(encode(Picture(optimized, "image/svg+xml"), "png")).convert("RGBA"))
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 2
    assert encode(SVG, "svg", {"optimize": True}) == optimized


def test_svg_export_never_embeds_external_files():
    evil = Picture(b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 1 1">'
                   b'<image href="/etc/hostname"/></svg>', "image/svg+xml")
    with pytest.raises(StepError, match="external files are refused"):
        encode(evil, "svg", {"optimize": True})


# --------------------------------------------------------------------------- favicon


def test_favicon_set_from_a_raster():
    files = favicon_set(art())
    assert set(files) == {"favicon.ico", "apple-touch-icon.png", "icon-192.png", "icon-512.png",
                          "site.webmanifest", "favicon.html"}
    assert sorted(opened(files["favicon.ico"]).info["sizes"]) == [(16, 16), (32, 32), (48, 48)]
    apple = opened(files["apple-touch-icon.png"])
    assert apple.size == (180, 180) and apple.mode == "RGB"  # opaque
    assert apple.getpixel((0, 0)) == (255, 255, 255)
    assert opened(files["icon-192.png"]).size == (192, 192)
    icon512 = opened(files["icon-512.png"])
    assert icon512.size == (512, 512) and icon512.getpixel((0, 0))[3] == 0
    manifest = json.loads(files["site.webmanifest"])
    assert [i["src"] for i in manifest["icons"]] == ["icon-192.png", "icon-512.png"]
    assert manifest["icons"][1]["sizes"] == "512x512"


def test_favicon_set_from_an_svg_is_rendered_per_size_and_includes_the_svg():
    files = favicon_set(SVG, {"background": "#000000"})
    assert "icon.svg" in files
    info = svg_info(files["icon.svg"])
    assert info.pixel_size() == (64, 64)  # square, drawing centred
    icon = opened(files["icon-512.png"]).convert("RGBA")
    assert icon.getpixel((256, 10))[3] == 0  # wide picture centred on a clear square
    assert icon.getpixel((100, 256))[:3] == (255, 0, 0)
    assert opened(files["apple-touch-icon.png"]).getpixel((90, 5)) == (0, 0, 0)


def test_favicon_set_is_deterministic():
    assert favicon_set(art(), {"optimize": True}) == favicon_set(art(), {"optimize": True})


def test_favicon_set_writes_the_link_snippet_for_where_it_is_served():
    files = favicon_set(art(), {"url": "/static/fav/"})
    html = files["favicon.html"].decode()
    assert html.splitlines() == [
        '<link rel="icon" href="/static/fav/favicon.ico" sizes="32x32">',
        '<link rel="apple-touch-icon" href="/static/fav/apple-touch-icon.png">',
        '<link rel="manifest" href="/static/fav/site.webmanifest">',
    ]
    svg_html = favicon_set(SVG, {"url": "/f"})["favicon.html"].decode()
    assert '<link rel="icon" href="/f/icon.svg" type="image/svg+xml">' in svg_html


def test_favicon_snippet_escapes_what_the_spec_gives():
    html = favicon_set(art(), {"url": "/a&b/", "webmanifest": {"theme_color": "#112233"}})["favicon.html"].decode()
    assert 'href="/a&amp;b/favicon.ico"' in html
    assert '<meta name="theme-color" content="#112233">' in html


def test_webmanifest_takes_name_and_colours_and_the_apple_icon_its_background():
    app = {"name": "Tidewater trips", "short_name": "Tidewater", "theme_color": "#0b3d91",
           "background_color": "#f4f1de"}
    files = favicon_set(art(), {"webmanifest": app})
    manifest = json.loads(files["site.webmanifest"])
    assert {k: manifest[k] for k in app} == app
    assert [i["src"] for i in manifest["icons"]] == ["icon-192.png", "icon-512.png"]
    apple = opened(files["apple-touch-icon.png"]).convert("RGB")
    assert apple.getpixel((0, 0)) == (0xF4, 0xF1, 0xDE)
    # Without the fields, the webmanifest is as before (icons only).
    assert set(json.loads(favicon_set(art())["site.webmanifest"])) == {"icons"}
