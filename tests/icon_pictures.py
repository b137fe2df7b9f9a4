"""Real icons composited the way generators draw them, with their true alpha.

Used by the background-removal and vectorize tests (on the small committed set in
``tests/data/icons``) and by the benchmarks (on sets fetched from npm, see
``benchmarks/real_icons.py``), so both measure the same thing.

A picture is an icon (H x W x 4, 0..255) on a background (white, off-white, a soft
gradient, a key colour, a key lit unevenly), optionally with a soft drop shadow,
with mild noise (generators never give flat colour), stored as PNG, JPEG or WebP.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from recraft_build.steps.background import flood_from_border
from recraft_build.steps.images import rasterize_svg
from recraft_build.steps.keycolor import hex_rgb

ICONS = Path(__file__).resolve().parent / "data" / "icons"
NOISE = 1.5
SHADOW_OPACITY = 0.45
BACKGROUNDS = ("white", "offwhite", "gradient", "key", "key-lit")


def render_svg(svg: bytes, size: int, fill: float = 0.8) -> np.ndarray:
    """The SVG centred on a transparent ``size`` x ``size`` canvas, taking ``fill`` of it."""
    inner = max(1, round(size * fill))
    art = rasterize_svg(svg, inner, inner)
    canvas = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    canvas.alpha_composite(art, ((size - inner) // 2, (size - inner) // 2))
    return np.asarray(canvas, dtype=np.float32)


def committed(folder: str) -> dict[str, bytes]:
    """The committed icons of ``folder`` (fluent, flat, lineart): name -> SVG bytes."""
    return {p.stem: p.read_bytes() for p in sorted((ICONS / folder).glob("*.svg"))}


def background(kind: str, size: int, key: str = "#ff00ff") -> np.ndarray:
    """H x W x 3 float32 background of ``kind`` (see :data:`BACKGROUNDS`)."""
    y = np.linspace(0, 1, size, dtype=np.float32)[:, None, None]
    if kind == "white":
        return np.full((size, size, 3), 255, np.float32)
    if kind == "offwhite":
        return np.broadcast_to(np.array([244, 241, 234], np.float32), (size, size, 3)).copy()
    if kind == "gradient":
        top, bottom = np.array([255, 255, 255], np.float32), np.array([226, 232, 240], np.float32)
        return np.broadcast_to(top + (bottom - top) * y, (size, size, 3)).copy()
    colour = np.array(hex_rgb(key), np.float32)
    if kind == "key":
        return np.broadcast_to(colour, (size, size, 3)).copy()
    if kind == "key-lit":
        x = np.linspace(-1, 1, size, dtype=np.float32)[None, :, None]
        light = 1.0 - 0.12 * y - 0.04 * x * x
        return np.broadcast_to(colour * light, (size, size, 3)).copy()
    raise ValueError(f"unknown background {kind!r}")


def _blur(alpha: np.ndarray, sigma: float) -> np.ndarray:
    img = Image.fromarray(np.clip(alpha * 255, 0, 255).astype(np.uint8), "L")
    return np.asarray(img.filter(ImageFilter.GaussianBlur(sigma)), np.float32) / 255


def compose(art: np.ndarray, kind: str, codec: str = "png", shadow: bool = False,
            key: str = "#ff00ff", seed: int = 0) -> tuple[Image.Image, np.ndarray, np.ndarray]:
    """``(picture, subject alpha, alpha with the shadow)``: ``art`` drawn on ``kind``.

    The shadow is the icon's silhouette moved down and right, blurred and laid on the
    background at :data:`SHADOW_OPACITY` (darkening it), as generators draw one.
    The picture is decoded from the stored bytes (so it carries the codec's noise).
    """
    size = art.shape[0]
    alpha = art[..., 3] / 255
    bg = background(kind, size, key)
    with_shadow = alpha
    if shadow:
        dx, dy = round(size * 0.02), round(size * 0.035)
        moved = np.zeros_like(alpha)
        moved[dy:, dx:] = alpha[:size - dy, :size - dx]
        shade = _blur(moved, size * 0.018) * SHADOW_OPACITY
        bg = bg * (1 - shade[..., None])
        with_shadow = alpha + (1 - alpha) * shade
    pic = art[..., :3] * alpha[..., None] + bg * (1 - alpha[..., None])
    rng = np.random.default_rng(seed)
    pic = pic + rng.normal(0, NOISE, pic.shape).astype(np.float32)
    img = Image.fromarray(np.clip(np.rint(pic), 0, 255).astype(np.uint8), "RGB")
    buf = io.BytesIO()
    if codec == "jpeg":
        img.save(buf, "JPEG", quality=85)
    elif codec == "webp":
        img.save(buf, "WEBP", quality=85)
    elif codec == "png":
        img.save(buf, "PNG", compress_level=1)
    else:
        raise ValueError(f"unknown codec {codec!r}")
    stored = Image.open(io.BytesIO(buf.getvalue()))
    stored.load()
    return stored, alpha, with_shadow


def has_holes(alpha: np.ndarray) -> bool:
    """Background enclosed by the subject (a ring's inside) of a visible size."""
    size = alpha.shape[0]
    border = np.zeros(alpha.shape, bool)
    border[0], border[-1], border[:, 0], border[:, -1] = True, True, True, True
    outside = flood_from_border(alpha, 0.5, border)
    return ((alpha <= 0.5) & ~outside).sum() >= 0.0005 * size * size


def has_white_parts(art: np.ndarray) -> bool:
    """White or near-white subject pixels on the outline (where a border flood eats)."""
    solid = art[..., 3] >= 128
    inside = np.roll(solid, 1, 0) & np.roll(solid, -1, 0) & np.roll(solid, 1, 1) & np.roll(solid, -1, 1)
    edge = solid & ~inside
    white = art[..., :3].min(axis=2) >= 230
    return (edge & white).sum() >= max(8, 0.01 * edge.sum())


def iou(alpha: np.ndarray, truth: np.ndarray) -> float:
    """Intersection over union of the two alphas thresholded at half opacity."""
    a, t = alpha >= 0.5, truth >= 0.5
    union = (a | t).sum()
    return float((a & t).sum() / union) if union else 1.0


def alpha_error(alpha: np.ndarray, truth: np.ndarray) -> float:
    """Mean absolute alpha error over every pixel, in levels (0..255)."""
    return float(np.abs(alpha - truth).mean() * 255)
