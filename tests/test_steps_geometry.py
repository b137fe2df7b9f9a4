"""Tests for recraft_build.steps.geometry: resize, crop, trim and pad."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from recraft_build.domain import Picture
from recraft_build.errors import StepError
from recraft_build.steps import geometry
from recraft_build.steps.images import decode, picture_size
from synthetic_pictures import as_picture

SVG = (b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 100 50">'
       b'<rect width="100" height="50" fill="#00ff00"/><rect x="0" y="0" width="50" height="50" fill="#0000ff"/></svg>')


def run(name, params, picture):
    out = geometry.run(name, params, picture)
    assert out.media_type == "image/png"
    return out, decode(out)


def rgba_picture(size=(200, 100), fill=(255, 0, 0, 255)):
    return as_picture(Image.new("RGBA", size, fill))


# --------------------------------------------------------------------------- resize


@pytest.mark.parametrize(
    ("params", "size"),
    [({"width": 50}, (50, 25)), ({"height": 20}, (40, 20)),
     ({"width": 50, "height": 50}, (50, 25)),
     ({"width": 50, "height": 50, "fit": "inside"}, (50, 25)),
     ({"width": 50, "height": 50, "fit": "cover"}, (50, 50)),
     ({"width": 50, "height": 50, "fit": "contain"}, (50, 50)),
     ({"width": 50, "height": 50, "fit": "stretch"}, (50, 50)),
     ({"width": 400}, (400, 200))],
)
def test_resize_sizes(params, size):
    _, img = run("resize", params, rgba_picture())
    assert img.size == size
    assert geometry.expected_size("resize", params, (200, 100)) == size


def test_cover_crops_the_centre_and_contain_pads():
    img = Image.new("RGB", (200, 100), (0, 0, 255))
    ImageDraw.Draw(img).rectangle((0, 0, 49, 99), fill=(255, 0, 0))  # red left quarter
    pic = as_picture(img)
    _, cover = run("resize", {"width": 40, "height": 40, "fit": "cover"}, pic)
    assert cover.getpixel((2, 20))[0] < 10  # the red quarter was cropped away
    _, contain = run("resize", {"width": 40, "height": 40, "fit": "contain", "background": "#ffffff"}, pic)
    assert contain.getpixel((20, 2))[:3] == (255, 255, 255)  # padding band
    assert contain.getpixel((2, 20))[:3] == (255, 0, 0)
    _, clear = run("resize", {"width": 40, "height": 40, "fit": "contain"}, pic)
    assert clear.mode == "RGBA" and clear.getpixel((20, 2))[3] == 0


def test_resize_uses_premultiplied_alpha():
    # Clear pixels hide bright green; it must not bleed into the red edge.
    img = Image.new("RGBA", (64, 64), (0, 255, 0, 0))
    ImageDraw.Draw(img).rectangle((0, 0, 33, 63), fill=(255, 0, 0, 255))
    _, out = run("resize", {"width": 16}, as_picture(img))
    arr = np.asarray(out)
    edge = arr[(arr[..., 3] > 20) & (arr[..., 3] < 235)]
    assert len(edge) and edge[:, 1].max() < 40


@pytest.mark.parametrize("resample", ["nearest", "bilinear", "bicubic", "lanczos"])
def test_resample_filters(resample):
    img = Image.new("L", (8, 8), 0)
    img.putpixel((3, 3), 255)
    _, out = run("resize", {"width": 32, "resample": resample}, as_picture(img.convert("RGB")))
    values = set(np.asarray(out)[..., 0].ravel().tolist())
    assert (values <= {0, 255}) == (resample == "nearest")


def test_svg_resize_renders_crisply_at_the_target_size():
    pic = Picture(SVG, "image/svg+xml")
    _, out = run("resize", {"width": 400}, pic)
    assert out.size == (400, 200)
    # The blue/green boundary at x=200 is sharp (rendered, not upsampled).
    assert out.getpixel((198, 100))[:3] == (0, 0, 255)
    assert out.getpixel((201, 100))[:3] == (0, 255, 0)
    _, cover = run("resize", {"width": 50, "height": 50, "fit": "cover"}, pic)
    assert cover.size == (50, 50) and cover.getpixel((25, 2))[3] == 255
    _, contain = run("resize", {"width": 50, "height": 50, "fit": "contain", "background": "#ff0000"}, pic)
    assert contain.getpixel((25, 2))[:3] == (255, 0, 0) and contain.getpixel((10, 25))[:3] == (0, 0, 255)


@pytest.mark.parametrize(
    ("params", "message"),
    [({}, "width or a height"), ({"width": 0}, "at least 1"), ({"width": 2.5}, "whole number"),
     ({"width": 10, "fit": "fill"}, "fit must be one of"), ({"width": 10, "resample": "box"}, "resample"),
     ({"width": 100000, "height": 100000, "fit": "stretch"}, "larger than the limit")],
)
def test_resize_errors(params, message):
    with pytest.raises(StepError, match=message):
        geometry.run("resize", params, rgba_picture())


# --------------------------------------------------------------------------- crop


def test_crop_box():
    img = Image.new("RGB", (100, 80), "white")
    img.putpixel((10, 20), (1, 2, 3))
    _, out = run("crop", {"box": [10, 20, 30, 40]}, as_picture(img))
    assert out.size == (30, 40)
    assert out.getpixel((0, 0)) == (1, 2, 3)


@pytest.mark.parametrize(
    ("gravity", "corner"),
    [("center", (50, 0)), ("left", (0, 0)), ("right", (100, 0)), ("top", (50, 0))],
)
def test_crop_aspect_with_gravity(gravity, corner):
    assert geometry.crop_box((200, 100), {"aspect": "1:1", "gravity": gravity}) == (*corner, 100, 100)


def test_crop_aspect_vertical_gravity():
    assert geometry.crop_box((100, 200), {"aspect": "1:1", "gravity": "bottom"}) == (0, 100, 100, 100)
    assert geometry.crop_box((100, 200), {"aspect": "1:1", "gravity": "top"}) == (0, 0, 100, 100)
    assert geometry.crop_box((100, 200), {"aspect": "16:9"}) == (0, 72, 100, 56)


@pytest.mark.parametrize(
    ("params", "message"),
    [({"box": [150, 0, 100, 10]}, "outside the 200x100 picture"), ({"box": [0, 0, 0, 10]}, "empty"),
     ({"box": [0, 0, 10]}, "four whole numbers"), ({}, "either box"),
     ({"box": [0, 0, 1, 1], "aspect": "1:1"}, "either box"), ({"aspect": "wide"}, "16:9"),
     ({"aspect": "0:1"}, "16:9")],
)
def test_crop_errors(params, message):
    with pytest.raises(StepError, match=message):
        geometry.run("crop", params, rgba_picture())


def test_crop_on_svg_renders_first():
    _, out = run("crop", {"box": [0, 0, 10, 10]}, Picture(SVG, "image/svg+xml"))
    assert out.size == (10, 10) and out.getpixel((5, 5))[:3] == (0, 0, 255)


# --------------------------------------------------------------------------- trim


def test_trim_transparent_border_with_margin():
    img = Image.new("RGBA", (100, 100), (0, 0, 0, 0))
    ImageDraw.Draw(img).rectangle((30, 40, 59, 49), fill=(255, 0, 0, 255))
    _, out = run("trim", {"margin": 4}, as_picture(img))
    assert out.size == (30 + 8, 10 + 8)
    assert out.getpixel((0, 0))[3] == 0 and out.getpixel((4, 4)) == (255, 0, 0, 255)


def test_trim_uniform_border_with_tolerance_and_padding_margin():
    rng = np.random.default_rng(0)
    arr = np.full((60, 60, 3), 250, np.int16) + rng.integers(-3, 4, (60, 60, 3))
    arr[20:30, 5:55] = (0, 0, 0)
    img = Image.fromarray(arr.astype(np.uint8), "RGB")
    _, out = run("trim", {"tolerance": 10, "margin": 10}, as_picture(img))
    # The margin asked for is kept even where the picture had less (5 px at the sides).
    assert out.size == (50 + 20, 10 + 20)
    assert out.mode == "RGB" and abs(out.getpixel((0, 0))[0] - 250) <= 3
    _, strict = run("trim", {"tolerance": 0}, as_picture(img))
    assert strict.size[0] > 50  # noise counts as content at tolerance 0


def test_trim_of_a_blank_picture_fails_with_advice():
    with pytest.raises(StepError, match="nothing but background"):
        geometry.run("trim", {}, as_picture(Image.new("RGB", (10, 10), "white")))


# --------------------------------------------------------------------------- pad


@pytest.mark.parametrize(
    ("params", "layout"),
    [({"width": 300, "height": 300}, (300, 300, 50, 100)), ({"width": 300}, (300, 100, 50, 0)),
     ({"aspect": "1:1"}, (200, 200, 0, 50)), ({"aspect": "4:1"}, (400, 100, 100, 0)),
     ({"margin": 10}, (220, 120, 10, 10)), ({"margin": 10, "aspect": "1:1"}, (220, 220, 10, 60))],
)
def test_pad_layout(params, layout):
    assert geometry.pad_layout((200, 100), params) == layout


def test_pad_fills_only_the_new_area():
    img = Image.new("RGBA", (20, 20), (0, 0, 0, 0))
    ImageDraw.Draw(img).rectangle((5, 5, 14, 14), fill=(0, 0, 255, 255))
    _, out = run("pad", {"width": 40, "height": 40, "color": "#ff0000"}, as_picture(img))
    assert out.size == (40, 40)
    assert out.getpixel((2, 2)) == (255, 0, 0, 255)  # new area in the colour
    assert out.getpixel((11, 11))[3] == 0  # the picture's own transparency kept
    assert out.getpixel((20, 20)) == (0, 0, 255, 255)


def test_pad_opaque_picture_with_opaque_colour_stays_rgb():
    _, out = run("pad", {"margin": 2, "color": "#00ff00"}, as_picture(Image.new("RGB", (4, 4), "blue")))
    assert out.mode == "RGB" and out.size == (8, 8) and out.getpixel((0, 0)) == (0, 255, 0)


@pytest.mark.parametrize(
    ("params", "message"),
    [({"width": 100, "height": 100}, "smaller than the 200x100 picture"), ({}, "pad needs"),
     ({"width": 300, "aspect": "1:1"}, "not both"), ({"margin": 1, "color": "blue"}, "#rrggbb")],
)
def test_pad_errors(params, message):
    with pytest.raises(StepError, match=message):
        geometry.run("pad", params, rgba_picture())


def test_unknown_geometry_step():
    with pytest.raises(StepError, match="not a geometry step"):
        geometry.run("rotate", {}, rgba_picture())


def test_results_are_deterministic_and_sized_as_expected():
    pic = rgba_picture((123, 77))
    for name, params in [("resize", {"width": 61}), ("crop", {"aspect": "3:2"}), ("pad", {"aspect": "1:1"})]:
        a, b = geometry.run(name, params, pic), geometry.run(name, params, pic)
        assert a.data == b.data
        assert picture_size(a) == geometry.expected_size(name, params, (123, 77))
    assert geometry.expected_size("trim", {}, (10, 10)) is None


def test_large_downscales_reduce_first_and_stay_close_to_a_full_resample():
    # A busy picture (hard edges and noise) is the worst case for reducing by blocks.
    rng = np.random.default_rng(7)
    img = Image.fromarray((rng.random((1024, 1024, 3)) * 255).astype("uint8"))
    ImageDraw.Draw(img).ellipse((200, 150, 800, 900), fill=(250, 20, 20), outline=(0, 0, 0), width=9)
    full = np.asarray(img.resize((128, 128), Image.Resampling.LANCZOS)).astype(float)
    ours = np.asarray(geometry.resize(img, {"width": 128})).astype(float)
    assert ours.shape == full.shape
    assert np.abs(ours - full).mean() < 3  # the trade-off Pillow's thumbnail() makes
    assert not np.array_equal(ours, full)  # it did take the faster road (resize is version 2)
    # Below a 4x reduction nothing changes: bytes equal a full resample.
    small = geometry.resize(img, {"width": 300})
    assert np.array_equal(np.asarray(small), np.asarray(img.resize((300, 300), Image.Resampling.LANCZOS)))


def test_resize_is_version_2():
    from recraft_build.steps.versions import STEP_VERSIONS

    assert STEP_VERSIONS["resize"] == 2  # its bytes changed with the reducing gap: keys must too
