"""Tests for recraft_build.steps.background: local background removal and its quality."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

from recraft_build.errors import StepError
from recraft_build.steps.background import flood_from_border, remove_background
from recraft_build.steps.images import decode, to_picture
from synthetic_pictures import iou, make_icon, soft_iou

QUALITY_SEEDS = range(5)


def _alpha(img: Image.Image) -> np.ndarray:
    return np.asarray(img)[..., 3] / 255


def _disc(size=96, fill=(20, 20, 20), bg=(255, 255, 255), box=(24, 24, 72, 72), outline=None, scale=4):
    """An anti-aliased disc (drawn large, reduced) and its true alpha."""
    big = Image.new("RGB", (size * scale, size * scale), bg)
    mask = Image.new("L", big.size, 0)
    b = tuple(v * scale for v in box)
    ImageDraw.Draw(big).ellipse(b, fill=fill, outline=outline, width=3 * scale if outline else 0)
    ImageDraw.Draw(mask).ellipse(b, fill=255)
    small = big.resize((size, size), Image.Resampling.BOX)
    truth = np.asarray(mask.resize((size, size), Image.Resampling.BOX)) / 255
    return small, truth


# --------------------------------------------------------------------------- quality floors


@pytest.mark.parametrize(("kind", "floor"), [("white", 0.95), ("offwhite", 0.95), ("gradient", 0.90)])
@pytest.mark.parametrize("codec", ["jpeg", "webp"])
def test_mean_iou_floor_on_generated_looking_pictures(kind, floor, codec):
    scores = []
    for seed in QUALITY_SEEDS:
        picture, truth = make_icon(kind, seed, 128, codec=codec)
        scores.append(iou(_alpha(remove_background(decode(picture))), truth))
    assert np.mean(scores) >= floor, scores


def test_soft_alpha_matches_the_true_coverage_closely():
    picture, truth = make_icon("white", 7, 128, codec="png", noise=1.0)
    alpha = _alpha(remove_background(decode(picture)))
    assert soft_iou(alpha, truth) >= 0.95


# --------------------------------------------------------------------------- behaviour


def test_white_highlight_inside_the_object_stays():
    img = Image.new("RGB", (100, 100), "white")
    draw = ImageDraw.Draw(img)
    draw.ellipse((20, 20, 80, 80), fill=(30, 60, 150), outline=(10, 10, 10), width=3)
    draw.ellipse((40, 40, 55, 50), fill="white")  # same colour as the background
    alpha = _alpha(remove_background(img))
    assert alpha[45, 47] == 1.0  # the highlight is not a hole
    assert alpha[5, 5] == 0.0 and alpha[95, 50] == 0.0
    assert alpha[50, 30] == 1.0


def test_edge_is_a_ramp_with_unmixed_colour():
    img, truth = _disc()
    out = np.asarray(remove_background(img))
    alpha = out[..., 3] / 255
    partial = (alpha > 0.1) & (alpha < 0.9)
    assert partial.sum() > 20  # anti-aliased, not a jagged cut
    # Edge pixels carry the object's dark colour, not a white fringe.
    assert out[partial][:, :3].max() < 80
    assert np.abs(alpha - truth).mean() < 0.02


def test_feather_widens_the_ramp_without_a_dark_halo():
    img, _ = _disc(fill=(240, 40, 40))
    sharp = np.asarray(remove_background(img))
    soft = np.asarray(remove_background(img, {"feather": 6}))
    count = lambda a: int(((a[..., 3] > 10) & (a[..., 3] < 245)).sum())  # noqa: E731
    assert count(soft) > 2 * count(sharp)
    edge = (soft[..., 3] > 10) & (soft[..., 3] < 245)
    assert soft[edge][:, 0].min() > 180  # still red, not darkened towards black


def test_tolerance_decides_what_counts_as_background():
    img = Image.new("RGB", (80, 80), "white")
    ImageDraw.Draw(img).rectangle((20, 20, 60, 60), fill=(215, 215, 215))  # pale grey object
    assert _alpha(remove_background(img))[40, 40] == 1.0
    with pytest.raises(StepError, match="whole picture matched the background"):
        remove_background(img, {"tolerance": 60})


def test_gradient_background_and_object_touching_the_border():
    h = w = 120
    y, x = np.mgrid[0:h, 0:w]
    bg = np.dstack([250 - 0.3 * x, 248 - 0.2 * y, 245 - 0.1 * (x + y) / 2])
    img = bg.copy()
    obj = (x > 70) & (y > 30) & (y < 90)  # runs off the right edge
    img[obj] = (40, 90, 160)
    out = _alpha(remove_background(Image.fromarray(img.astype(np.uint8), "RGB")))
    assert iou(out, obj.astype(float)) > 0.97


def test_enclosed_background_is_kept_as_documented():
    img = Image.new("RGB", (90, 90), "white")
    ImageDraw.Draw(img).ellipse((15, 15, 75, 75), outline=(0, 0, 0), width=6)
    alpha = _alpha(remove_background(img))
    assert alpha[45, 45] == 1.0  # the inside of a ring is not connected to the border
    assert alpha[2, 2] == 0.0


def test_busy_picture_without_a_plain_background_fails_with_advice():
    rng = np.random.default_rng(3)
    noise = Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8), "RGB")
    with pytest.raises(StepError, match="no plain background.*engine: provider"):
        remove_background(noise)


def test_already_cut_out_picture_is_returned_unchanged():
    img = Image.new("RGBA", (40, 40), (0, 0, 0, 0))
    ImageDraw.Draw(img).rectangle((10, 10, 30, 30), fill=(255, 255, 255, 255))
    out = remove_background(img)
    assert np.array_equal(np.asarray(out), np.asarray(img))


def test_input_alpha_is_respected():
    img, _ = _disc()
    rgba = img.convert("RGBA")
    rgba.putalpha(128)
    out = _alpha(remove_background(rgba))
    assert out.max() <= 0.51


def test_same_input_same_bytes():
    picture, _ = make_icon("gradient", 2, 96)
    first = to_picture(remove_background(decode(picture))).data
    second = to_picture(remove_background(decode(picture))).data
    assert first == second


@pytest.mark.parametrize("params", [{"tolerance": 300}, {"feather": -1}, {"feather": "wide"}])
def test_bad_parameters(params):
    img, _ = _disc()
    with pytest.raises(StepError, match="must be a number"):
        remove_background(img, params)


def test_flood_follows_connected_regions_around_turns():
    # A spiral-ish corridor: background pixels reachable only through several turns.
    d = np.full((9, 9), 100.0)
    path = [(0, 4), (1, 4), (2, 4), (2, 5), (2, 6), (3, 6), (4, 6), (4, 5), (4, 4), (4, 3), (5, 3), (6, 3)]
    for p in path:
        d[p] = 0
    d[8, 8] = 0  # background-like but not connected to any seed
    seeds = np.zeros_like(d, bool)
    seeds[0, :] = True
    reached = flood_from_border(d, 5, seeds)
    assert all(reached[p] for p in path)
    assert reached.sum() == len(path)


# --------------------------------------------------------------------------- building blocks


def _reference_flood(distance: np.ndarray, tolerance: float, seeds: np.ndarray) -> np.ndarray:
    """Breadth-first 4-connected flood, pixel by pixel: the definition."""
    from collections import deque

    mask = distance <= tolerance
    out = np.zeros(mask.shape, bool)
    queue = deque(zip(*np.nonzero(mask & seeds)))
    for y, x in queue:
        out[y, x] = True
    while queue:
        y, x = queue.popleft()
        for ny, nx in ((y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)):
            if 0 <= ny < mask.shape[0] and 0 <= nx < mask.shape[1] and mask[ny, nx] and not out[ny, nx]:
                out[ny, nx] = True
                queue.append((ny, nx))
    return out


@pytest.mark.parametrize("seed", range(12))
def test_flood_matches_the_pixel_by_pixel_definition(seed):
    rng = np.random.default_rng(seed)
    h, w = (int(v) for v in rng.integers(3, 70, 2))
    noise = Image.fromarray((rng.random((h, w)) * 255).astype(np.uint8))
    distance = np.asarray(noise.filter(ImageFilter.GaussianBlur(float(rng.uniform(0, 3)))), np.float32)
    tolerance = float(np.percentile(distance, rng.uniform(20, 80)))
    seeds = np.zeros((h, w), bool)
    if seed % 2:
        seeds[0], seeds[-1], seeds[:, 0], seeds[:, -1] = True, True, True, True
    else:
        seeds[rng.integers(0, h, 4), rng.integers(0, w, 4)] = True
    assert np.array_equal(flood_from_border(distance, tolerance, seeds),
                          _reference_flood(distance, tolerance, seeds))


def test_flood_follows_a_spiral():
    # A maze-like shape: many turns, one connected corridor.
    size = 61
    wall = np.zeros((size, size), bool)
    for k in range(0, size // 2, 4):
        wall[k, k:size - k] = wall[size - 1 - k, k:size - k] = True
        wall[k:size - k, k] = wall[k:size - k, size - 1 - k] = True
        if k + 2 < size - k:
            wall[k + 2, k] = False  # a gap into the next ring
    seeds = np.zeros_like(wall)
    seeds[size // 2, size // 2] = True
    distance = wall.astype(np.float32)
    assert np.array_equal(flood_from_border(distance, 0.5, seeds), _reference_flood(distance, 0.5, seeds))


@pytest.mark.parametrize("radius", [1, 2, 5, 7])
def test_max_filter_matches_the_window_definition(radius):
    from recraft_build.steps.background import _shift_max

    rng = np.random.default_rng(radius)
    values = (rng.random((23, 31)) * 100).astype(np.float32)
    padded = np.pad(values, radius, mode="edge")
    expected = np.array([[padded[y:y + 2 * radius + 1, x:x + 2 * radius + 1].max()
                          for x in range(values.shape[1])] for y in range(values.shape[0])])
    assert np.array_equal(_shift_max(values, radius), expected)
