"""Quality of local background removal on synthetic pictures with a known true alpha.

Run from the repository root:

    /work/venv/bin/python benchmarks/bg_removal_quality.py [--count 40] [--size 256]

For each background kind (white, off-white, light gradient) and each compression
(JPEG q88, WebP q88, and a harsh JPEG q70 with stronger noise) it prints the mean and
worst IoU of the recovered alpha (thresholded at half opacity), the mean soft IoU
(sum of min / sum of max of the alpha maps, stricter on edges) and the time per
picture. The pictures come from tests/synthetic_pictures.py (seeded, reproducible).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from synthetic_pictures import BACKGROUND_KINDS, iou, make_icon, soft_iou  # noqa: E402

from recraft_build.errors import StepError  # noqa: E402
from recraft_build.steps.background import remove_background  # noqa: E402
from recraft_build.steps.images import decode  # noqa: E402

VARIANTS = {
    "jpeg q88": {"codec": "jpeg", "quality": 88, "noise": 2.0},
    "webp q88": {"codec": "webp", "quality": 88, "noise": 2.0},
    "jpeg q70 + noise 4": {"codec": "jpeg", "quality": 70, "noise": 4.0},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=40, help="pictures per kind and variant")
    parser.add_argument("--size", type=int, default=256, help="side of each picture, px")
    args = parser.parse_args()
    print(f"{args.count} pictures of {args.size}x{args.size} per row")
    print(f"{'background':<10} {'compression':<20} {'mean IoU':>8} {'min IoU':>8} {'soft IoU':>8} {'ms/pic':>7}")
    for kind in BACKGROUND_KINDS:
        for label, variant in VARIANTS.items():
            scores, softs, times, failures = [], [], [], 0
            for seed in range(args.count):
                picture, truth = make_icon(kind, 1000 + seed, args.size, **variant)
                img = decode(picture)
                start = time.perf_counter()
                try:
                    out = remove_background(img)
                except StepError:
                    failures += 1
                    scores.append(0.0)
                    softs.append(0.0)
                    continue
                times.append(time.perf_counter() - start)
                alpha = np.asarray(out)[..., 3] / 255
                scores.append(iou(alpha, truth))
                softs.append(soft_iou(alpha, truth))
            note = f"  ({failures} failed)" if failures else ""
            print(f"{kind:<10} {label:<20} {statistics.mean(scores):8.4f} {min(scores):8.4f} "
                  f"{statistics.mean(softs):8.4f} {1000 * statistics.mean(times):7.1f}{note}")
    # Speed at the size generators deliver.
    picture, _ = make_icon("gradient", 1, 1024)
    img = decode(picture)
    runs = []
    for _ in range(3):
        start = time.perf_counter()
        remove_background(img)
        runs.append(time.perf_counter() - start)
    print(f"1024x1024: {1000 * min(runs):.0f} ms per picture (best of 3)")


if __name__ == "__main__":
    main()
