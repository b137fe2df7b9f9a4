"""Tests for recraft_build.steps.keying: cutting real icons out of a key colour.

Quality floors on the committed real icons (tests/data/icons, Fluent Emoji, MIT) at
192 px; the full benchmark (benchmarks/bg_removal_quality.py) has the figures.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
from PIL import Image, ImageDraw

from icon_pictures import alpha_error, committed, compose, has_holes, iou, render_svg
from recraft_build.errors import StepError
from recraft_build.steps.background import remove_background
from recraft_build.steps.keycolor import pick_key

SIZE = 320
COLOUR_SETS = ("fluent", "flat")


@functools.lru_cache(maxsize=None)
def _arts() -> dict[str, np.ndarray]:
    return {f"{folder}/{name}": render_svg(svg, SIZE)
            for folder in COLOUR_SETS for name, svg in committed(folder).items()}


def _alpha(img: Image.Image) -> np.ndarray:
    return np.asarray(img, np.float32)[..., 3] / 255


def _run(kind: str, codec: str, shadow: bool, mode: str) -> tuple[list[float], list[float]]:
    scores, errors = [], []
    for n, (name, art) in enumerate(sorted(_arts().items())):
        key = pick_key(name.split("/")[1].replace("-", " "))
        img, truth, with_shadow = compose(art, kind, codec, shadow, key, seed=n)
        alpha = _alpha(remove_background(img, {"key": key, "shadow": mode}))
        target = with_shadow if mode == "keep" else truth
        scores.append(iou(alpha, target))
        errors.append(alpha_error(alpha, target))
    return scores, errors


@pytest.mark.parametrize(
    ("kind", "codec", "shadow", "mode"),
    [
        ("key", "png", False, "keep"),
        ("key", "jpeg", False, "keep"),
        ("key", "webp", False, "keep"),
        ("key-lit", "png", False, "keep"),
        ("key", "png", True, "keep"),
        ("key", "png", True, "drop"),
        ("key", "jpeg", True, "drop"),
    ],
)
def test_key_floors_on_real_icons(kind, codec, shadow, mode):
    scores, errors = _run(kind, codec, shadow, mode)
    # 16 icons, holes and white parts included, at 256 px (the benchmark's 512 and
    # 1024 px do better). The ghost's purple mouth is a 42 % shadow of magenta: on the
    # magenta key it goes, as documented (the prompt does not say "purple").
    # JPEG and WebP blur chroma over 2 px, a lot for the thin parts at this size.
    assert sum(s >= 0.98 for s in scores) >= (14 if codec == "png" else 13), scores
    assert min(scores) >= 0.95, scores
    assert np.mean(scores) >= 0.985, scores
    assert np.mean(errors) <= 2.5, errors


def test_the_flood_fails_where_the_key_holds():
    # The reason for the key: on white, the border flood keeps the inside of a ring and
    # eats white parts on the outline; on the key both come out right.
    art = _arts()["fluent/ring"]
    img, truth, _ = compose(art, "white")
    flood = iou(_alpha(remove_background(img)), truth)
    img, truth, _ = compose(art, "key")
    keyed = iou(_alpha(remove_background(img, {"key": "#ff00ff"})), truth)
    assert keyed >= 0.98 > flood


def test_a_subject_in_a_shade_of_the_key_goes_unless_the_prompt_names_it():
    art = _arts()["fluent/ghost"]
    mouth = (np.abs(art[..., :3] - (137, 2, 156)).max(axis=2) < 30) & (art[..., 3] == 255)
    assert mouth.sum() > 100
    for prompt, kept in (("a ghost", False), ("a ghost with a purple mouth", True)):
        key = pick_key(prompt)
        img, _, _ = compose(art, "key", key=key)
        alpha = _alpha(remove_background(img, {"key": key}))
        assert bool(alpha[mouth].mean() > 0.99) is kept, prompt


def test_holes_are_removed_wherever_they_are():
    for name in ("fluent/ring", "fluent/doughnut", "fluent/bicycle", "flat/bicycle"):
        art = _arts()[name]
        truth = art[..., 3] / 255
        assert has_holes(truth), name
        img, _, _ = compose(art, "key")
        alpha = _alpha(remove_background(img, {"key": "#ff00ff"}))
        # clear background inside the icon, 3 px or more from the subject
        clear = truth == 0
        for axis in (0, 1):
            for shift in (-3, -2, -1, 1, 2, 3):
                clear &= np.roll(truth, shift, axis) == 0
        middle = np.zeros_like(clear)
        middle[SIZE // 5:-SIZE // 5, SIZE // 5:-SIZE // 5] = True
        assert (clear & middle).sum() > 30, name
        assert alpha[clear & middle].max() == 0, name


def test_white_parts_on_the_outline_stay():
    for name in ("fluent/ghost", "fluent/snowman-without-snow", "flat/ghost"):
        art = _arts()[name]
        white = (art[..., :3].min(axis=2) >= 230) & (art[..., 3] == 255)
        img, _, _ = compose(art, "key")
        alpha = _alpha(remove_background(img, {"key": "#ff00ff"}))
        assert white.sum() > 100, name
        assert (alpha[white] >= 0.99).mean() >= 0.99, name


def test_shadow_keep_is_a_soft_black_shadow_and_drop_removes_it():
    art = _arts()["fluent/red-apple"]
    img, truth, with_shadow = compose(art, "key", shadow=True)
    keep = np.asarray(remove_background(img, {"key": "#ff00ff"}), np.float32)
    drop = np.asarray(remove_background(img, {"key": "#ff00ff", "shadow": "drop"}), np.float32)
    # shadow 3 px or more from the subject (the edge ring is measured, not shadow)
    shadow_only = (truth == 0) & (with_shadow > 0.2)
    for axis in (0, 1):
        for shift in (-3, -2, -1, 1, 2, 3):
            shadow_only &= np.roll(truth, shift, axis) == 0
    assert shadow_only.sum() > 50
    # keep: the shadow's opacity as drawn (within a few levels), in black
    assert np.abs(keep[..., 3][shadow_only] / 255 - with_shadow[shadow_only]).mean() < 0.03
    assert keep[..., :3][shadow_only].mean() < 2 and keep[..., :3][shadow_only].max() <= 40
    # drop: gone
    assert drop[..., 3][shadow_only].max() == 0
    assert iou(drop[..., 3] / 255, truth) >= 0.98


def test_edge_colours_are_unmixed_with_no_key_spill():
    # A yellow disc on magenta: the rim must not carry a magenta tint.
    big = Image.new("RGB", (512, 512), (255, 0, 255))
    ImageDraw.Draw(big).ellipse((96, 96, 416, 416), fill=(250, 210, 40))
    img = big.resize((128, 128), Image.Resampling.BOX)
    out = np.asarray(remove_background(img, {"key": "#ff00ff"}), np.float32)
    rim = (out[..., 3] > 20) & (out[..., 3] < 235)
    assert rim.sum() > 40
    # magenta leans on red and blue against green; yellow has blue far below red
    assert (out[..., 2][rim] <= 80).all()
    assert np.abs(out[..., 1][rim] - 210).max() < 30


def test_a_picture_not_on_the_key_is_refused_with_what_the_border_shows():
    img = Image.new("RGB", (64, 64), (255, 255, 255))
    ImageDraw.Draw(img).ellipse((16, 16, 48, 48), fill=(0, 0, 0))
    with pytest.raises(StepError) as info:
        remove_background(img, {"key": "#00ff00"})
    message = str(info.value)
    assert "#00ff00" in message and "#ffffff" in message and "remove key" in message


def test_a_picture_of_only_the_key_is_refused():
    with pytest.raises(StepError, match="no subject"):
        remove_background(Image.new("RGB", (64, 64), (0, 255, 0)), {"key": "#00ff00"})


def test_a_cut_out_picture_is_returned_as_it_is():
    img = Image.new("RGBA", (32, 32), (0, 0, 0, 0))
    ImageDraw.Draw(img).ellipse((8, 8, 24, 24), fill=(200, 0, 0, 255))
    out = remove_background(img, {"key": "#ff00ff"})
    assert np.array_equal(np.asarray(out), np.asarray(img))


def test_jpeg_seams_between_subject_colours_are_not_holes():
    # Red beside blue, JPEG: chroma bleeding makes purple pixels where they meet,
    # near a magenta key's shadow. They are inside the subject, not background.
    big = Image.new("RGB", (256, 256), (255, 0, 255))
    draw = ImageDraw.Draw(big)
    draw.rectangle((48, 48, 127, 207), fill=(220, 0, 0))
    draw.rectangle((128, 48, 207, 207), fill=(0, 0, 220))
    img, _, _ = compose(np.dstack([np.asarray(big, np.float32), np.full((256, 256), 255.0)]),
                        "key", "jpeg")
    # (compose's own key background is hidden under the opaque picture)
    alpha = _alpha(remove_background(img, {"key": "#ff00ff"}))
    assert alpha[56:200, 56:200].min() == 1.0


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"key": "#ff00ff", "shadow": "soft"}, "shadow must be keep or drop"),
        ({"key": "purple"}, "key must be auto or a colour"),
        ({"key": "auto"}, "not resolved"),
        ({"method": "key"}, "needs key"),
        ({"shadow": "drop"}, "shadow applies with a key colour only"),
        ({"key": "#ff00ff", "method": "flood"}, "key applies to method: key"),
        ({"method": "magic"}, "method must be one of"),
    ],
)
def test_bad_parameters_are_refused_clearly(params, fragment):
    img = Image.new("RGB", (32, 32), (255, 0, 255))
    with pytest.raises(StepError, match=fragment):
        remove_background(img, params)
