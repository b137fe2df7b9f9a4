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
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

from icon_pictures import alpha_error, compose, has_holes, has_white_parts, iou  # noqa: E402
from real_icons import Icon, load_mix  # noqa: E402

from recraft_build.errors import StepError  # noqa: E402
from recraft_build.steps.background import remove_background  # noqa: E402
from recraft_build.steps.keycolor import pick_key  # noqa: E402

# name -> (background, codec, shadow)
CONDITIONS: dict[str, tuple[str, str, bool]] = {
    "white": ("white", "png", False),
    "offwhite": ("offwhite", "png", False),
    "gradient": ("gradient", "png", False),
    "white-jpeg": ("white", "jpeg", False),
    "white-webp": ("white", "webp", False),
    "white-shadow": ("white", "png", True),
    "key": ("key", "png", False),
    "key-jpeg": ("key", "jpeg", False),
    "key-webp": ("key", "webp", False),
    "key-lit": ("key-lit", "png", False),
    "key-shadow-keep": ("key", "png", True),
    "key-shadow-drop": ("key", "png", True),
    "key-shadow-jpeg": ("key", "jpeg", True),
}


def learned_remover() -> Callable[[Any], Any]:
    from recraft_build.steps.matting import matte

    return lambda img: matte(img, {})


def run(methods: list[str], conditions: list[str], size: int, icons: list[Icon],
        writer: Any, forced_key: str | None = None) -> None:
    print(f"\n{len(icons)} icons, {size} x {size}")
    print("| condition | method | icons | mean IoU | IoU >= 0.98 | alpha error (levels) | worst IoU | ms/picture |")
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
                key = forced_key or pick_key(icon.prompt)
                img, truth, truth_shadow = compose(arts[ident], kind, codec, shadow, key, n)
                drop = base.endswith("drop")
                params: dict[str, Any] = {}
                if method == "key":
                    params = {"key": key, "shadow": "drop" if drop else "keep"}
                start = time.perf_counter()
                try:
                    out = learned(img) if method == "learned" else remove_background(img, params)
                    alpha = np.asarray(out, np.float32)[..., 3] / 255
                except StepError:
                    alpha = np.zeros(truth.shape, np.float32)
                times.append(time.perf_counter() - start)
                target = truth_shadow if (method == "key" and not drop) else truth
                scores.append(iou(alpha, target))
                errors.append(alpha_error(alpha, target))
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
    parser.add_argument("--key", help="use this key colour for every icon instead of key: auto's pick")
    args = parser.parse_args()
    writer = None
    if args.csv:
        handle = args.csv.open("w", newline="")
        writer = csv.writer(handle)
        writer.writerow(["size", "condition", "method", "set", "icon", "key", "iou", "alpha_error"])
    for size in (int(s) for s in args.sizes.split(",")):
        count = args.count if size < 1024 else args.count_1024
        run(args.methods.split(","), args.conditions.split(","), size, load_mix(count), writer, args.key)


if __name__ == "__main__":
    main()
