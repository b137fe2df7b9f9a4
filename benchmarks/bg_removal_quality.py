"""Quality and speed of local background removal on real icons with a known true alpha.

Run from the repository root (fetches the icon packages with npm the first time):

    python benchmarks/bg_removal_quality.py [--count 250] [--sizes 512,1024] [--count-1024 60]
        [--methods flood,key,learned] [--conditions white,key,...] [--csv out.csv]

Each icon (see benchmarks/real_icons.py: flat, gradient-shaded and 3D-rendered emoji)
is composited the way a generator draws it: on a background, with mild noise
(sigma 1.5), optionally a soft drop shadow, then stored as PNG, JPEG q85 or WebP q85.
Per condition and method it prints the mean IoU of the recovered alpha against the
true alpha (both thresholded at half opacity), the share of icons with IoU >= 0.98,
the mean alpha error in levels (0..255, over every pixel) and the time per picture
of the removal itself (decoding and encoding excluded).

Conditions: ``white``, ``offwhite`` (#f4f1ea), ``gradient`` (a soft vertical light
gradient), ``white-jpeg``, ``white-webp``, ``white-shadow``; ``key`` (the colour
``key: auto`` picks from the icon's name), ``key-jpeg``, ``key-webp``, ``key-lit``
(the key lit unevenly, 12 % darker at the bottom), ``key-shadow-keep`` and
``key-shadow-drop`` (a soft drop shadow; the truth includes it for keep),
``key-shadow-jpeg`` (keep). ``*-holes`` and ``*-whiteparts`` rows repeat a
condition on the icons with enclosed background (rings, loops) and with white
parts on their outline. The flood runs on the non-key conditions (its truth never
includes a shadow), the key on the key ones, the learned engine on both.
"""

from __future__ import annotations

import argparse
import csv
import io
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))

from real_icons import Icon, load_mix  # noqa: E402

from recraft_build.errors import StepError  # noqa: E402
from recraft_build.steps.background import flood_from_border, remove_background  # noqa: E402
from recraft_build.steps.keycolor import hex_rgb, pick_key  # noqa: E402

NOISE = 1.5
SHADOW_OPACITY = 0.45

# name -> (background, codec, shadow, key mode)
CONDITIONS: dict[str, tuple[str, str, str | None]] = {
    "white": ("white", "png", None),
    "offwhite": ("offwhite", "png", None),
    "gradient": ("gradient", "png", None),
    "white-jpeg": ("white", "jpeg", None),
    "white-webp": ("white", "webp", None),
    "white-shadow": ("white", "png", "drop"),
    "key": ("key", "png", None),
    "key-jpeg": ("key", "jpeg", None),
    "key-webp": ("key", "webp", None),
    "key-lit": ("key-lit", "png", None),
    "key-shadow-keep": ("key", "png", "keep"),
    "key-shadow-drop": ("key", "png", "drop"),
    "key-shadow-jpeg": ("key", "jpeg", "keep"),
}
SUBSETS = {"holes": "white", "whiteparts": "white"}


def background(kind: str, size: int, key: str) -> np.ndarray:
    """H x W x 3 float32 background of ``kind``."""
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
    raise ValueError(kind)


def _blur(alpha: np.ndarray, sigma: float) -> np.ndarray:
    img = Image.fromarray(np.clip(alpha * 255, 0, 255).astype(np.uint8), "L")
    from PIL import ImageFilter

    return np.asarray(img.filter(ImageFilter.GaussianBlur(sigma)), np.float32) / 255


def compose(art: np.ndarray, kind: str, codec: str, shadow: str | None, key: str,
            seed: int) -> tuple[bytes, np.ndarray, np.ndarray]:
    """The picture as stored (bytes), the subject's true alpha and the alpha with shadow."""
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
    else:
        img.save(buf, "PNG", compress_level=1)
    return buf.getvalue(), alpha, with_shadow


def has_holes(alpha: np.ndarray) -> bool:
    """Background enclosed by the subject (a ring's inside) of a visible size."""
    size = alpha.shape[0]
    border = np.zeros(alpha.shape, bool)
    border[0], border[-1], border[:, 0], border[:, -1] = True, True, True, True
    outside = flood_from_border(alpha, 0.5, border)
    holes = (alpha <= 0.5) & ~outside
    return holes.sum() >= 0.0005 * size * size


def has_white_parts(art: np.ndarray) -> bool:
    """White or near-white subject pixels on the outline (where the flood eats them)."""
    alpha = art[..., 3] / 255
    solid = alpha >= 0.5
    edge = solid & ~(np.roll(solid, 1, 0) & np.roll(solid, -1, 0) & np.roll(solid, 1, 1) & np.roll(solid, -1, 1))
    white = art[..., :3].min(axis=2) >= 230
    return (edge & white).sum() >= max(8, 0.01 * edge.sum())


def iou(alpha: np.ndarray, truth: np.ndarray) -> float:
    a, t = alpha >= 0.5, truth >= 0.5
    union = (a | t).sum()
    return float((a & t).sum() / union) if union else 1.0


def learned_remover() -> Callable[[Image.Image], Image.Image]:
    from recraft_build.steps.matting import matte

    return lambda img: matte(img, {})


def run(methods: list[str], conditions: list[str], size: int, icons: list[Icon],
        writer: Any) -> None:
    print(f"\n{len(icons)} icons, {size} x {size}")
    print(f"| condition | method | icons | mean IoU | IoU >= 0.98 | alpha error (levels) | worst IoU | ms/picture |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    arts = {icon.name + icon.set: icon.render(size) for icon in icons}
    subsets = {
        "holes": {k for k, art in arts.items() if has_holes(art[..., 3] / 255)},
        "whiteparts": {k for k, art in arts.items() if has_white_parts(art)},
    }
    learned = learned_remover() if "learned" in methods else None
    for condition in conditions:
        base, _, subset = condition.partition("@")
        kind, codec, shadow = CONDITIONS[base]
        is_key = kind.startswith("key")
        for method in methods:
            if method == "flood" and is_key or method == "key" and not is_key:
                continue
            scores, errors, times = [], [], []
            for n, icon in enumerate(icons):
                ident = icon.name + icon.set
                if subset and ident not in subsets[subset]:
                    continue
                key = pick_key(icon.prompt)
                data, truth, truth_shadow = compose(arts[ident], kind, codec, shadow, key, n)
                img = Image.open(io.BytesIO(data))
                img.load()
                params: dict[str, Any] = {}
                if method == "key":
                    params = {"key": key, "shadow": "drop" if shadow == "drop" else "keep"}
                start = time.perf_counter()
                try:
                    out = learned(img) if method == "learned" else remove_background(img, params)
                    alpha = np.asarray(out, np.float32)[..., 3] / 255
                except StepError:
                    alpha = np.zeros(truth.shape, np.float32)
                times.append(time.perf_counter() - start)
                target = truth_shadow if (method == "key" and shadow == "keep") else truth
                scores.append(iou(alpha, target))
                errors.append(float(np.abs(alpha - target).mean() * 255))
                if writer:
                    writer.writerow([size, condition, method, icon.set, icon.name, key, scores[-1], errors[-1]])
            if not scores:
                continue
            share = sum(s >= 0.98 for s in scores) / len(scores)
            print(f"| {condition} | {method} | {len(scores)} | {statistics.mean(scores):.4f} | "
                  f"{share:.1%} | {statistics.mean(errors):.2f} | {min(scores):.3f} | "
                  f"{1000 * statistics.median(times):.0f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=250, help="icons at the first size")
    parser.add_argument("--count-1024", type=int, default=60, help="icons at 1024 px (slow)")
    parser.add_argument("--sizes", default="512,1024")
    parser.add_argument("--methods", default="flood,key")
    default_conditions = list(CONDITIONS) + ["white@holes", "white@whiteparts", "key@holes",
                                             "key@whiteparts", "key-shadow-drop@holes"]
    parser.add_argument("--conditions", default=",".join(default_conditions))
    parser.add_argument("--csv", type=Path, help="also write one row per icon here")
    args = parser.parse_args()
    writer = None
    if args.csv:
        handle = args.csv.open("w", newline="")
        writer = csv.writer(handle)
        writer.writerow(["size", "condition", "method", "set", "icon", "key", "iou", "alpha_error"])
    for size in (int(s) for s in args.sizes.split(",")):
        count = args.count if size < 1024 else args.count_1024
        run(args.methods.split(","), args.conditions.split(","), size, load_mix(count), writer)


if __name__ == "__main__":
    main()
