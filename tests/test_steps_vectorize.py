"""Tests for recraft_build.steps.vectorize: tracing with vtracer, and its fidelity."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pytest
from PIL import Image, ImageDraw

from recraft_build.errors import StepError
from recraft_build.steps.images import decode, rasterize_svg, svg_info
from icon_pictures import committed, render_svg
from recraft_build.steps.vectorize import snap_colours, vectorize
from synthetic_pictures import make_flat_art, mean_abs_error, ssim


def _render_back(svg: bytes, size: tuple[int, int]) -> np.ndarray:
    return np.asarray(rasterize_svg(svg, *size, aspect="none"))


@pytest.mark.parametrize("transparent", [False, True])
def test_traced_svg_looks_like_the_picture(transparent):
    ssims, errors = [], []
    for seed in range(4):
        img = decode(make_flat_art(seed, 128, transparent=transparent))
        svg = vectorize(img)
        back = _render_back(svg, img.size)
        ref = np.asarray(img.convert("RGBA"))
        ssims.append(ssim(ref, back))
        errors.append(mean_abs_error(ref, back))
    assert np.mean(ssims) >= 0.93, ssims
    assert np.mean(errors) <= 5.0, errors


def test_svg_has_a_viewbox_and_the_picture_size():
    img = Image.new("RGB", (70, 40), "white")
    ImageDraw.Draw(img).rectangle((10, 10, 50, 30), fill=(200, 0, 0))
    info = svg_info(vectorize(img))
    assert info.viewbox == (0, 0, 70, 40)
    assert info.pixel_size() == (70, 40)


def test_transparent_input_gives_a_transparent_background():
    img = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    ImageDraw.Draw(img).ellipse((16, 16, 48, 48), fill=(0, 120, 255, 255))
    back = _render_back(vectorize(img), img.size)
    assert back[2, 2, 3] == 0 and back[62, 62, 3] == 0
    assert back[32, 32].tolist() == [0, 120, 255, 255]


def test_binary_mode_draws_dark_shapes_in_black_only():
    img = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    ImageDraw.Draw(img).rectangle((10, 10, 40, 40), fill=(30, 30, 30, 255))
    svg = vectorize(img, {"color_mode": "binary"}).decode()
    fills = set(re.findall(r'fill="(#[0-9A-Fa-f]{6})"', svg))
    assert fills == {"#000000"}
    back = _render_back(svg.encode(), img.size)
    assert back[2, 2, 3] == 0  # transparent areas are not traced as black
    assert back[25, 25, 3] == 255


def test_path_mode_polygon_has_no_curves():
    img = Image.new("RGB", (64, 64), "white")
    ImageDraw.Draw(img).ellipse((8, 8, 56, 56), fill=(0, 0, 0))
    polygon = vectorize(img, {"path_mode": "polygon"}).decode()
    spline = vectorize(img).decode()
    assert " C" in spline and " C" not in polygon


def test_filter_speckle_drops_small_patches():
    img = Image.new("RGB", (64, 64), "white")
    draw = ImageDraw.Draw(img)
    draw.rectangle((4, 4, 5, 5), fill=(0, 0, 0))  # a 2x2 speck
    draw.rectangle((20, 20, 50, 50), fill=(0, 0, 0))
    kept = vectorize(img, {"filter_speckle": 0}).decode().count("<path")
    dropped = vectorize(img, {"filter_speckle": 16}).decode().count("<path")
    assert dropped < kept


def test_same_input_same_svg():
    img = decode(make_flat_art(5, 96))
    assert vectorize(img) == vectorize(img.copy())


@pytest.mark.parametrize(
    "params",
    [{"color_mode": "grey"}, {"path_mode": "bezier"}, {"color_precision": 0},
     {"length_threshold": 2}, {"corner_threshold": "sharp"}],
)
def test_bad_parameters_are_named(params):
    key = next(iter(params))
    with pytest.raises(StepError, match=key):
        vectorize(Image.new("RGB", (8, 8)), params)


# --------------------------------------------------------------------------- real icons


def _on_white(art: np.ndarray) -> Image.Image:
    alpha = art[..., 3:] / 255
    rgb = art[..., :3] * alpha + 255 * (1 - alpha)
    return Image.fromarray(np.clip(np.rint(rgb), 0, 255).astype(np.uint8), "RGB")


@pytest.mark.parametrize("folder", ["flat", "fluent"])
def test_real_icons_trace_closely(folder):
    ssims, errors = [], []
    for svg in committed(folder).values():
        img = _on_white(render_svg(svg, 160))
        back = _render_back(vectorize(img), img.size)
        ref = np.asarray(img.convert("RGBA"))
        ssims.append(ssim(ref, back))
        errors.append(mean_abs_error(ref, back))
    # Gradients flatten into bands: the shaded set is traced less closely.
    floor, most = (0.95, 4.0) if folder == "flat" else (0.93, 6.0)
    assert np.mean(ssims) >= floor, ssims
    assert np.mean(errors) <= most, errors


def test_white_is_traced_as_white_not_a_tint():
    img = _on_white(render_svg(committed("flat")["ghost"], 160))
    snapped = vectorize(img).decode()
    fills = set(re.findall(r'fill="(#[0-9A-Fa-f]{6})"', snapped))
    assert "#ffffff" in fills
    assert not any(f.lower() in ("#fefefe", "#fdfdfd", "#fcfcfc") for f in fills)
    back = _render_back(snapped.encode(), img.size)
    white = np.asarray(img).min(axis=2) == 255
    assert np.abs(back[..., :3][white].astype(int) - 255).mean() < 0.5


def test_snap_zero_keeps_the_traced_colours():
    img = Image.new("RGB", (64, 64), (250, 250, 250))
    ImageDraw.Draw(img).rectangle((16, 16, 48, 48), fill=(239, 35, 60))
    off = set(re.findall(r'fill="(#[0-9A-Fa-f]{6})"', vectorize(img, {"snap": 0}).decode()))
    on = set(re.findall(r'fill="(#[0-9A-Fa-f]{6})"', vectorize(img).decode()))
    assert "#ffffff" not in {f.lower() for f in off}
    assert "#ffffff" in on


def test_palette_colours_are_snapped_to_exactly():
    img = Image.new("RGB", (64, 64), "white")
    ImageDraw.Draw(img).rectangle((16, 16, 48, 48), fill=(236, 38, 63))  # near #ef233c
    fills = {f.lower() for f in re.findall(r'fill="(#[0-9A-Fa-f]{6})"',
                                           vectorize(img, {"palette": ["#EF233C"]}).decode())}
    assert "#ef233c" in fills
    far = {f.lower() for f in re.findall(r'fill="(#[0-9A-Fa-f]{6})"',
                                         vectorize(img, {"palette": ["#2b2d42"]}).decode())}
    assert "#ef233c" not in far and "#2b2d42" not in far


def test_snap_colours_picks_the_nearest_target_within_reach():
    svg = b'<svg><path fill="#FEFEFE"/><path fill="#0A0A0A"/><path fill="#808080"/></svg>'
    out = snap_colours(svg, [(255, 255, 255), (0, 0, 0)], 12)
    assert out == b'<svg><path fill="#ffffff"/><path fill="#000000"/><path fill="#808080"/></svg>'


@pytest.mark.parametrize(
    ("params", "fragment"),
    [({"snap": 100}, "snap"), ({"palette": "auto"}, "not resolved"), ({"palette": ["red"]}, "#rrggbb"),
     ({"tracer": "inkscape"}, "tracer"), ({"tracer": "potrace", "color_precision": 4}, "color_precision"),
     ({"tracer": "potrace", "threshold": 0}, "threshold")],
)
def test_bad_new_parameters_are_named(params, fragment):
    with pytest.raises(StepError, match=fragment):
        vectorize(Image.new("RGB", (8, 8)), params)


needs_potrace = pytest.mark.skipif(shutil.which("potrace") is None,
                                   reason="Debian's potrace program is not installed (.ci/run installs it)")


@needs_potrace
def test_potrace_traces_line_art_closer_and_smaller_than_vtracer_binary():
    ours, theirs, our_size, their_size = [], [], [], []
    for svg in committed("lineart").values():
        img = _on_white(render_svg(svg, 192))
        ref = np.asarray(img.convert("RGBA"))
        traced = vectorize(img, {"tracer": "potrace"})
        binary = vectorize(img, {"color_mode": "binary"})
        ours.append(ssim(ref, _render_back(traced, img.size)))
        theirs.append(ssim(ref, _render_back(binary, img.size)))
        our_size.append(len(traced))
        their_size.append(len(binary))
    assert np.mean(ours) >= 0.95, ours
    assert np.mean(ours) > np.mean(theirs)
    assert np.mean(our_size) < np.mean(their_size)


@needs_potrace
def test_potrace_svg_has_the_picture_size_and_the_palette_ink():
    img = Image.new("RGBA", (80, 50), (0, 0, 0, 0))
    ImageDraw.Draw(img).ellipse((10, 5, 70, 45), outline=(20, 20, 30, 255), width=4)
    svg = vectorize(img, {"tracer": "potrace", "palette": ["#2b2d42", "#ffd166"]})
    info = svg_info(svg)
    assert info.viewbox == (0, 0, 80, 50) and info.pixel_size() == (80, 50)
    assert set(re.findall(rb'fill="(#[0-9a-f]{6})"', svg)) == {b"#2b2d42"}
    back = _render_back(svg, img.size)
    assert back[2, 2, 3] == 0 and back[25, 12, 3] == 255  # clear outside, ink on the ring
    assert vectorize(img, {"tracer": "potrace"}) == vectorize(img.copy(), {"tracer": "potrace"})


def test_potrace_missing_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(StepError, match="apt-get install potrace"):
        vectorize(Image.new("RGB", (8, 8)), {"tracer": "potrace"})
