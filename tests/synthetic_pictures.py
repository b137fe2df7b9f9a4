"""Synthetic test pictures with a known true alpha, for the post-processing steps.

Shared by tests/test_steps_background.py, tests/test_steps_vectorize.py and the
benchmarks in benchmarks/ (which put this folder on sys.path). Everything is seeded,
so a given (kind, seed, size) always makes the same picture.

The pictures imitate what image generators produce for "on a plain background"
prompts: one centred object (union of shapes, anti-aliased, often with a dark
outline and a pure-white highlight inside) over white, off-white or a light gradient,
with sensor-like noise and JPEG or WebP compression.
"""

from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFilter

from recraft_build.domain import Picture

__all__ = [
    "BACKGROUND_KINDS", "as_picture", "iou", "make_flat_art", "make_icon", "make_object", "mean_abs_error",
    "on_white", "soft_iou", "ssim",
]

BACKGROUND_KINDS = ("white", "offwhite", "gradient")
_SUPER = 4  # supersampling factor for anti-aliased shapes


def _shape(draw: ImageDraw.ImageDraw, rng: np.random.Generator, cx: float, cy: float,
           r: float, fill: int | tuple[int, ...]) -> None:
    kind = rng.integers(0, 4)
    if kind == 0:
        rx, ry = r * rng.uniform(0.6, 1.0), r * rng.uniform(0.6, 1.0)
        draw.ellipse((cx - rx, cy - ry, cx + rx, cy + ry), fill=fill)
    elif kind == 1:
        rx, ry = r * rng.uniform(0.5, 0.9), r * rng.uniform(0.5, 0.9)
        draw.rounded_rectangle((cx - rx, cy - ry, cx + rx, cy + ry), radius=r * 0.2, fill=fill)
    elif kind == 2:
        points = []
        spikes = int(rng.integers(5, 8))
        for i in range(spikes * 2):
            rad = r if i % 2 == 0 else r * 0.5
            ang = math.pi * i / spikes
            points.append((cx + rad * math.cos(ang), cy + rad * math.sin(ang)))
        draw.polygon(points, fill=fill)
    else:
        n = int(rng.integers(5, 9))
        angles = np.sort(rng.uniform(0, 2 * math.pi, n))
        points = [(cx + r * rng.uniform(0.6, 1.0) * math.cos(a), cy + r * rng.uniform(0.6, 1.0) * math.sin(a))
                  for a in angles]
        draw.polygon(points, fill=fill)


def make_object(size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """An object's straight colour (H x W x 3, float) and true alpha (H x W, 0..1)."""
    big = size * _SUPER
    mask = Image.new("L", (big, big), 0)
    color = Image.new("RGB", (big, big), (0, 0, 0))
    fill_mask = Image.new("L", (big, big), 0)
    mdraw, cdraw, fdraw = ImageDraw.Draw(mask), ImageDraw.Draw(color), ImageDraw.Draw(fill_mask)
    outline = rng.random() < 0.7
    base = tuple(int(v) for v in rng.integers(20, 200, 3))
    for i in range(int(rng.integers(1, 4))):
        cx = big / 2 + rng.uniform(-0.12, 0.12) * big
        cy = big / 2 + rng.uniform(-0.12, 0.12) * big
        r = big * rng.uniform(0.18, 0.3)
        seed = int(rng.integers(0, 2**31))
        if outline:
            # The same shape drawn larger in a dark colour, then the fill inside it.
            _shape(mdraw, np.random.default_rng(seed), cx, cy, r + 3 * _SUPER, 255)
            _shape(cdraw, np.random.default_rng(seed), cx, cy, r + 3 * _SUPER, (25, 20, 30))
        _shape(mdraw, np.random.default_rng(seed), cx, cy, r, 255)
        _shape(fdraw, np.random.default_rng(seed), cx, cy, r, 255)
        shade = tuple(int(np.clip(v + rng.integers(-30, 30), 0, 255)) for v in base)
        _shape(cdraw, np.random.default_rng(seed), cx, cy, r, shade)
    # A pure-white highlight inside the object: it must survive background removal.
    hx, hy = big / 2 + rng.uniform(-0.05, 0.05) * big, big / 2 + rng.uniform(-0.05, 0.05) * big
    hr = big * 0.05
    spot = Image.new("L", (big, big), 0)
    ImageDraw.Draw(spot).ellipse((hx - hr, hy - hr * 0.6, hx + hr, hy + hr * 0.6), fill=255)
    # Only well inside the fill: a highlight that breaks the edge is background-connected.
    small = fill_mask.resize((size, size), Image.Resampling.BOX).point(lambda v: 255 if v == 255 else 0)
    inside = small.filter(ImageFilter.MinFilter(9)).resize((big, big), Image.Resampling.NEAREST)
    color.paste((255, 255, 255), (0, 0), ImageChops.multiply(spot, inside))
    alpha = np.asarray(mask.resize((size, size), Image.Resampling.BOX), dtype=np.float64) / 255
    # Straight colour: average colour over covered subpixels only.
    prem = np.asarray(color, dtype=np.float64) * (np.asarray(mask, dtype=np.float64)[..., None] / 255)
    prem = prem.reshape(size, _SUPER, size, _SUPER, 3).mean(axis=(1, 3))
    straight = np.where(alpha[..., None] > 0, prem / np.maximum(alpha[..., None], 1e-6), 0)
    return straight, alpha


def _background(kind: str, size: int, rng: np.random.Generator) -> np.ndarray:
    if kind == "white":
        return np.full((size, size, 3), 255.0)
    if kind == "offwhite":
        tint = rng.uniform(232, 250, 3)
        return np.broadcast_to(tint, (size, size, 3)).copy()
    if kind == "gradient":
        y, x = np.mgrid[0:size, 0:size] / (size - 1)
        a = rng.uniform(235, 252, 3)
        b = rng.uniform(205, 232, 3)
        if rng.random() < 0.5:
            ang = rng.uniform(0, 2 * math.pi)
            t = ((x - 0.5) * math.cos(ang) + (y - 0.5) * math.sin(ang)) / math.sqrt(0.5) + 0.5
        else:
            t = np.hypot(x - 0.5, y - 0.5) / math.sqrt(0.5)  # radial vignette
        t = np.clip(t, 0, 1)[..., None]
        return a * (1 - t) + b * t
    raise ValueError(kind)


def make_icon(kind: str, seed: int, size: int = 160, *, noise: float = 2.0,
              codec: str = "jpeg", quality: int = 88) -> tuple[Picture, np.ndarray]:
    """A picture of one object over a ``kind`` background, and its true alpha (0..1)."""
    rng = np.random.default_rng([seed, BACKGROUND_KINDS.index(kind)])
    fg, alpha = make_object(size, rng)
    bg = _background(kind, size, rng)
    img = fg * alpha[..., None] + bg * (1 - alpha[..., None])
    img = img + rng.normal(0, noise, img.shape)
    pil = Image.fromarray(np.clip(np.rint(img), 0, 255).astype(np.uint8), "RGB")
    buf = io.BytesIO()
    if codec == "jpeg":
        pil.save(buf, "JPEG", quality=quality)
        return Picture(buf.getvalue(), "image/jpeg"), alpha
    if codec == "webp":
        pil.save(buf, "WEBP", quality=quality)
        return Picture(buf.getvalue(), "image/webp"), alpha
    pil.save(buf, "PNG")
    return Picture(buf.getvalue(), "image/png"), alpha


def iou(alpha: np.ndarray, truth: np.ndarray) -> float:
    """Intersection over union of the two masks, each thresholded at half opacity."""
    a, t = alpha >= 0.5, truth >= 0.5
    union = np.logical_or(a, t).sum()
    return float(np.logical_and(a, t).sum() / union) if union else 1.0


def soft_iou(alpha: np.ndarray, truth: np.ndarray) -> float:
    """Soft IoU: sum(min) / sum(max) of the two alpha maps (stricter on edges)."""
    top = np.maximum(alpha, truth).sum()
    return float(np.minimum(alpha, truth).sum() / top) if top else 1.0


def on_white(rgba: np.ndarray) -> np.ndarray:
    """An RGBA array (0..255) composited on white, as float RGB."""
    arr = rgba.astype(np.float64)
    if arr.shape[-1] == 3:
        return arr
    a = arr[..., 3:4] / 255
    return arr[..., :3] * a + 255 * (1 - a)


def mean_abs_error(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference (0..255) of two pictures composited on white."""
    return float(np.abs(on_white(a) - on_white(b)).mean())


def ssim(a: np.ndarray, b: np.ndarray, window: int = 7) -> float:
    """Mean structural similarity of the two pictures' luma (on white), box windows.

    1.0 is identical; about 0.9 and above looks alike at a glance.
    """
    weights = np.array([0.299, 0.587, 0.114])
    x, y = on_white(a) @ weights, on_white(b) @ weights
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def mean(v: np.ndarray) -> np.ndarray:
        s = np.cumsum(np.cumsum(np.pad(v, ((1, 0), (1, 0))), axis=0), axis=1)
        w = window
        return (s[w:, w:] - s[:-w, w:] - s[w:, :-w] + s[:-w, :-w]) / (w * w)

    mx, my = mean(x), mean(y)
    vx, vy = mean(x * x) - mx * mx, mean(y * y) - my * my
    cov = mean(x * y) - mx * my
    num = (2 * mx * my + c1) * (2 * cov + c2)
    den = (mx * mx + my * my + c1) * (vx + vy + c2)
    return float((num / den).mean())


def make_flat_art(seed: int, size: int = 160, *, transparent: bool = False) -> Picture:
    """A clean, flat-colour illustration (what vector styles look like), as PNG."""
    rng = np.random.default_rng([seed, 99])
    fg, alpha = make_object(size, rng)
    if transparent:
        rgba = np.dstack([fg, alpha * 255])
    else:
        rgba = np.dstack([fg * alpha[..., None] + 255 * (1 - alpha[..., None]), np.full(alpha.shape, 255.0)])
    pil = Image.fromarray(np.clip(np.rint(rgba), 0, 255).astype(np.uint8), "RGBA")
    buf = io.BytesIO()
    pil.save(buf, "PNG")
    return Picture(buf.getvalue(), "image/png")


def as_picture(img: Image.Image, fmt: str = "png", **save: object) -> Picture:
    """Encode a Pillow image as a Picture (png, jpeg or webp)."""
    buf = io.BytesIO()
    img.save(buf, fmt.upper(), **save)
    media = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}[fmt]
    return Picture(buf.getvalue(), media)
