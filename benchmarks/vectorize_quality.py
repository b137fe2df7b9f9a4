"""Fidelity and size of local vectorizing (vtracer) on synthetic flat-colour art.

Run from the repository root:

    /work/venv/bin/python benchmarks/vectorize_quality.py [--count 40] [--size 256]

Each picture is traced, the SVG rendered back with resvg at the same size, and both
compared composited on white: SSIM (luma, 7x7 box windows; 1.0 = identical) and the
mean absolute error per channel (0..255). Sizes: the traced SVG, the same after
``optimize: true`` (scour), and the source as PNG for scale. The pictures come from
tests/synthetic_pictures.py (seeded, reproducible).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from synthetic_pictures import make_flat_art, mean_abs_error, ssim  # noqa: E402

from recraft_build.domain import Picture  # noqa: E402
from recraft_build.steps.export import encode  # noqa: E402
from recraft_build.steps.images import decode, rasterize_svg  # noqa: E402
from recraft_build.steps.vectorize import vectorize  # noqa: E402

SETTINGS = {
    "default (color, spline)": {},
    "path_mode polygon": {"path_mode": "polygon"},
    "color_precision 8": {"color_precision": 8},
    "color_mode binary": {"color_mode": "binary"},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=40, help="pictures per row")
    parser.add_argument("--size", type=int, default=256, help="side of each picture, px")
    args = parser.parse_args()
    print(f"{args.count} pictures of {args.size}x{args.size} per row")
    print(f"{'input':<12} {'settings':<24} {'SSIM':>6} {'MAE':>6} {'SVG kB':>7} {'opt kB':>7} "
          f"{'PNG kB':>7} {'ms/pic':>7}")
    for transparent in (False, True):
        for label, params in SETTINGS.items():
            ssims, maes, sizes, optimized, pngs, times = [], [], [], [], [], []
            for seed in range(args.count):
                picture = make_flat_art(2000 + seed, args.size, transparent=transparent)
                img = decode(picture)
                start = time.perf_counter()
                svg = vectorize(img, params)
                times.append(time.perf_counter() - start)
                back = np.asarray(rasterize_svg(svg, *img.size, aspect="none"))
                ref = np.asarray(img.convert("RGBA"))
                ssims.append(ssim(ref, back))
                maes.append(mean_abs_error(ref, back))
                sizes.append(len(svg))
                optimized.append(len(encode(Picture(svg, "image/svg+xml"), "svg", {"optimize": True})))
                pngs.append(len(picture.data))
            kind = "transparent" if transparent else "on white"
            print(f"{kind:<12} {label:<24} {statistics.mean(ssims):6.3f} {statistics.mean(maes):6.2f} "
                  f"{statistics.mean(sizes) / 1000:7.1f} {statistics.mean(optimized) / 1000:7.1f} "
                  f"{statistics.mean(pngs) / 1000:7.1f} {1000 * statistics.mean(times):7.1f}")


if __name__ == "__main__":
    main()
