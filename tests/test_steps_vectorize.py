"""Tests for recraft_build.steps.vectorize: tracing with vtracer, and its fidelity."""

from __future__ import annotations

import re

import numpy as np
import pytest
from PIL import Image, ImageDraw

from recraft_build.errors import StepError
from recraft_build.steps.images import decode, rasterize_svg, svg_info
from recraft_build.steps.vectorize import vectorize
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
