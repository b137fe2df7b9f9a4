"""Tests for recraft_build.steps.images: safe decoding, SVG parsing and rendering."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageCms, ImageDraw

from recraft_build.domain import Picture
from recraft_build.errors import StepError
from recraft_build.steps.images import (
    MAX_PIXELS,
    decode,
    parse_color,
    parse_svg,
    picture_size,
    rasterize_svg,
    set_svg_root_attributes,
    svg_info,
    to_picture,
)
from synthetic_pictures import as_picture

SVG_NS = 'xmlns="http://www.w3.org/2000/svg"'


def svg(attrs: str, body: str = '<rect width="10" height="10" fill="red"/>') -> Picture:
    return Picture(f"<svg {SVG_NS} {attrs}>{body}</svg>".encode(), "image/svg+xml")


def _png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height but which holds almost no data."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0")) + chunk(b"IEND", b"")


# --------------------------------------------------------------------------- decode


@pytest.mark.parametrize(
    ("mode", "color", "expected_mode"),
    [("RGB", (10, 20, 30), "RGB"), ("RGBA", (10, 20, 30, 128), "RGBA"), ("L", 77, "RGB"),
     ("LA", (77, 100), "RGBA"), ("CMYK", (0, 0, 0, 0), "RGB")],
)
def test_decode_normalises_modes(mode, color, expected_mode):
    img = Image.new(mode, (4, 3), color)
    fmt = "jpeg" if mode == "CMYK" else "png"
    out = decode(as_picture(img, fmt))
    assert out.mode == expected_mode
    assert out.size == (4, 3)


def test_decode_keeps_palette_transparency():
    img = Image.new("P", (4, 4), 0)
    img.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    img.putpixel((0, 0), 1)
    out = decode(as_picture(img, "png", transparency=0))
    assert out.mode == "RGBA"
    assert out.getpixel((1, 1))[3] == 0
    assert out.getpixel((0, 0)) == (0, 255, 0, 255)


def test_decode_scales_16_bit_grey_instead_of_clipping():
    img = Image.new("I;16", (2, 2), 65535 // 2)
    out = decode(as_picture(img, "png"))
    assert out.mode == "RGB"
    assert 120 <= out.getpixel((0, 0))[0] <= 135


def test_decode_refuses_garbage_with_a_clear_message():
    with pytest.raises(StepError, match="cannot be decoded"):
        decode(Picture(b"not an image at all", "image/png"))


def test_decode_refuses_a_decompression_bomb_before_decoding():
    bomb = Picture(_png_claiming(9000, 8000), "image/png")  # 72 MP claimed, ~60 bytes
    with pytest.raises(StepError, match="larger than the limit"):
        decode(bomb)


def test_decode_limit_is_adjustable():
    with pytest.raises(StepError, match="larger than the limit"):
        decode(as_picture(Image.new("RGB", (100, 100))), max_pixels=5000)
    assert MAX_PIXELS == 8192 * 8192


def test_decode_applies_exif_orientation():
    img = Image.new("RGB", (40, 20), (255, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    pic = as_picture(img, "jpeg", exif=exif.tobytes())
    assert picture_size(pic) == (20, 40)
    assert decode(pic).size == (20, 40)


def test_decode_converts_icc_and_drops_it_unless_asked_to_keep():
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    pic = as_picture(Image.new("RGB", (8, 8), (200, 100, 50)), "png", icc_profile=icc)
    converted = decode(pic)
    assert "icc_profile" not in converted.info
    assert all(abs(a - b) <= 2 for a, b in zip(converted.getpixel((0, 0)), (200, 100, 50)))
    assert decode(pic, srgb=False).info["icc_profile"] == icc


def test_decode_renders_svg_at_natural_size():
    out = decode(svg('viewBox="0 0 10 10" width="30" height="30"'))
    assert out.size == (30, 30)
    assert out.getpixel((15, 15)) == (255, 0, 0, 255)


# --------------------------------------------------------------------------- encode


def test_to_picture_is_deterministic_png_without_metadata():
    img = Image.new("RGBA", (16, 16), (1, 2, 3, 4))
    img.info["dpi"] = (300, 300)
    img.info["comment"] = "hello"
    a, b = to_picture(img), to_picture(img.copy())
    assert a.data == b.data
    assert a.media_type == "image/png"
    assert a.data.startswith(b"\x89PNG")
    for chunk in (b"tEXt", b"tIME", b"pHYs", b"iCCP", b"zTXt", b"iTXt"):
        assert chunk not in a.data


def test_to_picture_refuses_lossy_intermediates():
    with pytest.raises(ValueError):
        to_picture(Image.new("RGB", (2, 2)), "jpeg")


@pytest.mark.parametrize(
    ("text", "rgba"),
    [("#ff0000", (255, 0, 0, 255)), ("#00FF0080", (0, 255, 0, 128)), ("transparent", (0, 0, 0, 0)),
     ("#abc", (170, 187, 204, 255))],
)
def test_parse_color(text, rgba):
    assert parse_color(text) == rgba


@pytest.mark.parametrize("text", ["red", "#12345", "rgb(1,2,3)", ""])
def test_parse_color_rejects_with_the_accepted_forms(text):
    with pytest.raises(StepError, match="#rrggbb"):
        parse_color(text)


# --------------------------------------------------------------------------- svg


@pytest.mark.parametrize(
    ("attrs", "size"),
    [('viewBox="0 0 100 50"', (100, 50)), ('width="64" height="32"', (64, 32)),
     ('width="64px" height="32px" viewBox="0 0 1 1"', (64, 32)),
     ('width="1in" height="0.5in"', (96, 48)), ('width="50%" height="50%" viewBox="0 0 30 20"', (15, 10)),
     ('width="200" viewBox="0 0 100 50"', (200, 100)), ('width="10.5" height="20.4"', (11, 20))],
)
def test_svg_natural_size(attrs, size):
    pic = svg(attrs)
    assert picture_size(pic) == size
    assert decode(pic).size == size


def test_parse_svg_adds_a_viewbox_from_width_and_height_only_to_the_root_tag():
    original = svg('width="64" height="32"', '<g><rect width="1" height="1"/></g><!-- keep -->').data
    fixed = parse_svg(original)
    assert svg_info(fixed).viewbox == (0, 0, 64, 32)
    assert fixed.endswith(original[original.index(b">") + 1:])  # everything after the root tag kept


def test_parse_svg_leaves_an_svg_with_viewbox_untouched():
    data = svg('viewBox="0 0 5 5"').data
    assert parse_svg(data) is data


def test_parse_svg_without_any_size_says_what_to_add():
    with pytest.raises(StepError, match="add a viewBox"):
        parse_svg(svg("").data)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]>'
         b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 1 1"><text>&b;</text></svg>', "DOCTYPE"),
        (f'<svg {SVG_NS} viewBox="0 0 1 1"><image href="/etc/passwd.png" width="1" height="1"/></svg>'.encode(),
         "external files are refused"),
        (f'<svg {SVG_NS} xmlns:xlink="http://www.w3.org/1999/xlink" viewBox="0 0 1 1">'
         '<image xlink:href="https://example.com/x.png"/></svg>'.encode(), "external files are refused"),
        (f'<svg {SVG_NS} viewBox="0 0 1 1"><script>alert(1)</script></svg>'.encode(), "script"),
        (b'<html><body/></html>', "not <svg>"),
        (b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 1 1"><rect></svg>', "does not parse"),
    ],
)
def test_svg_refusals(data, message):
    with pytest.raises(StepError, match=message):
        svg_info(data)


def test_svg_data_uri_images_are_allowed():
    data = f'<svg {SVG_NS} viewBox="0 0 1 1"><image href="data:image/png;base64,AAAA"/></svg>'.encode()
    assert svg_info(data).viewbox == (0, 0, 1, 1)


def test_set_root_attributes_replaces_and_adds():
    data = svg('width="10" height="10" viewBox="0 0 10 10"').data
    out = set_svg_root_attributes(data, {"width": "99", "preserveAspectRatio": "none"})
    info = svg_info(out)
    assert info.width == 99 and info.height == 10
    assert out.count(b"width=") == 2  # root's new width + the rect's own
    assert b'preserveAspectRatio="none"' in out


def test_rasterize_svg_sizes_and_fits():
    pic = svg('viewBox="0 0 20 10"', '<rect width="20" height="10" fill="#0000ff"/>')
    assert rasterize_svg(pic.data).size == (20, 10)
    assert rasterize_svg(pic.data, width=100).size == (100, 50)
    assert rasterize_svg(pic.data, height=30).size == (60, 30)
    meet = rasterize_svg(pic.data, 40, 40)
    assert meet.size == (40, 40)
    assert meet.getpixel((20, 2))[3] == 0 and meet.getpixel((20, 20)) == (0, 0, 255, 255)
    slice_ = rasterize_svg(pic.data, 40, 40, aspect="xMidYMid slice")
    assert slice_.getpixel((20, 2)) == (0, 0, 255, 255)


def test_rasterize_svg_is_crisp_at_any_size():
    pic = svg('viewBox="0 0 10 10"', '<rect x="0" y="0" width="5" height="10" fill="black"/>')
    big = rasterize_svg(pic.data, 400, 400)
    # The edge at x=200 is sharp: no resampling blur from a small render.
    assert big.getpixel((198, 200))[3] == 255 and big.getpixel((202, 200))[3] == 0


def test_rasterize_svg_refuses_huge_sizes_before_rendering():
    # Rendering this would take resvg most of a minute and 3.6 GB; it is refused first.
    pic = svg('viewBox="0 0 10 10" width="30000" height="30000"')
    with pytest.raises(StepError, match="larger than the limit"):
        rasterize_svg(pic.data)


def test_rasterized_svg_pixels_match_the_drawing():
    pic = svg('viewBox="0 0 4 4"', '<circle cx="2" cy="2" r="1.5" fill="#00ff00"/>')
    arr = np.asarray(rasterize_svg(pic.data, 64, 64))
    assert arr[32, 32].tolist() == [0, 255, 0, 255]
    assert arr[0, 0, 3] == 0


def test_picture_size_of_a_raster_reads_only_the_header():
    assert picture_size(Picture(_png_claiming(9000, 8000), "image/png")) == (9000, 8000)
    img = Image.new("RGB", (33, 17))
    ImageDraw.Draw(img).line((0, 0, 10, 10))
    assert picture_size(as_picture(img, "webp")) == (33, 17)
    with pytest.raises(StepError):
        picture_size(Picture(b"junk", "image/webp"))


def test_utf16_svg_needing_a_fix_is_refused_not_corrupted():
    data = f'<?xml version="1.0" encoding="UTF-16"?><svg {SVG_NS} width="4" height="4"/>'.encode("utf-16")
    assert svg_info(data).width == 4  # it parses...
    with pytest.raises(StepError, match="UTF-8"):
        parse_svg(data)  # ...but adding a viewBox would need a rewrite we only do in UTF-8


def test_to_picture_round_trips_pixels():
    img = Image.new("RGBA", (5, 5), (9, 8, 7, 6))
    img.putpixel((2, 2), (200, 100, 0, 255))
    out = decode(to_picture(img))
    assert np.array_equal(np.asarray(out), np.asarray(img))
