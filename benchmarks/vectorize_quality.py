"""Fidelity, size and speed of local vectorizing on real icons (vtracer and potrace).

Run from the repository root (fetches the icon packages with npm the first time):

    python benchmarks/vectorize_quality.py [--count 60] [--size 512] [--speed-size 1024]

Sets (benchmarks/real_icons.py): flat emoji (twemoji), gradient-shaded emoji
(Fluent "Color"), and black line art (Fluent "High Contrast"). Each icon is drawn on
white, traced, the SVG rendered back with resvg at the same size and compared:
SSIM (luma, 7x7 box windows; 1.0 = identical) and mean absolute error per channel
(0..255), plus the SVG's size and the time of the step. Rows: vtracer with and
without colour snapping (``snap: 0`` is the old behaviour), ``path_mode:
polygon``, binary mode, and ``tracer: potrace`` for the line art.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

from real_icons import load_set  # noqa: E402
from synthetic_pictures import mean_abs_error, ssim  # noqa: E402

from recraft_build.steps.images import rasterize_svg  # noqa: E402
from recraft_build.steps.vectorize import vectorize  # noqa: E402

ROWS: dict[str, list[tuple[str, dict[str, Any]]]] = {
    "twemoji": [("vtracer, snap 12 (default)", {}), ("vtracer, snap 0 (before)", {"snap": 0}),
                ("vtracer, path_mode polygon", {"path_mode": "polygon"})],
    "fluent": [("vtracer, snap 12 (default)", {}), ("vtracer, snap 0 (before)", {"snap": 0}),
               ("vtracer, color_precision 8", {"color_precision": 8})],
    "lineart": [("vtracer, snap 12 (default)", {}), ("vtracer binary", {"color_mode": "binary"}),
                ("potrace", {"tracer": "potrace"})],
}


def on_white(art: np.ndarray) -> Image.Image:
    alpha = art[..., 3:] / 255
    rgb = art[..., :3] * alpha + 255 * (1 - alpha)
    return Image.fromarray(np.clip(np.rint(rgb), 0, 255).astype(np.uint8), "RGB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=60, help="icons per set")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--speed-size", type=int, default=1024, help="side for the timing column")
    args = parser.parse_args()
    print(f"{args.count} icons per set, {args.size} x {args.size} on white; "
          f"time per picture at {args.speed_size} px (median)")
    print("| set | tracer and settings | SSIM | MAE | white-area error | SVG kB | ms/picture |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for set_name, rows in ROWS.items():
        icons = load_set(set_name, args.count)
        pictures = [on_white(icon.render(args.size)) for icon in icons]
        big = [on_white(icon.render(args.speed_size)) for icon in icons[:12]]
        for label, params in rows:
            ssims, maes, whites, sizes, times = [], [], [], [], []
            for img in pictures:
                svg = vectorize(img, params)
                back = np.asarray(rasterize_svg(svg, *img.size, aspect="none"), np.float32)
                ref = np.asarray(img.convert("RGBA"), np.float32)
                ssims.append(ssim(ref, back))
                maes.append(mean_abs_error(ref, back))
                white = ref[..., :3].min(axis=2) == 255
                shown = back[..., :3] * back[..., 3:] / 255 + 255 * (1 - back[..., 3:] / 255)
                whites.append(float(np.abs(shown[white] - 255).mean()) if white.any() else 0.0)
                sizes.append(len(svg))
            for img in big:
                start = time.perf_counter()
                vectorize(img, params)
                times.append(time.perf_counter() - start)
            print(f"| {set_name} | {label} | {statistics.mean(ssims):.3f} | {statistics.mean(maes):.2f} | "
                  f"{statistics.mean(whites):.2f} | {statistics.mean(sizes) / 1000:.1f} | "
                  f"{1000 * statistics.median(times):.0f} |", flush=True)


if __name__ == "__main__":
    main()
