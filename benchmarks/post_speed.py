"""Speed of local background removal and vectorizing on real 1024 px icons.

Run from the repository root (fetches the icon packages with npm the first time):

    OPENBLAS_NUM_THREADS=1 python benchmarks/post_speed.py [--count 8] [--runs 5]

For each method it prints the median over the icons of the best of ``--runs`` calls,
as wall time and as this process's CPU time (``time.process_time``: on a shared,
busy machine the wall time mostly measures the other work; potrace runs in a child
process, so its CPU time is not counted and only its wall time means something).
"remove_background step" also decodes the input and encodes the PNG intermediate,
as the executor does. OPENBLAS_NUM_THREADS=1 keeps BLAS from spinning threads for
the tiny least-squares fits (a build runs pictures in parallel anyway).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

from icon_pictures import compose  # noqa: E402
from real_icons import load_set  # noqa: E402

from recraft_build.steps import registry  # noqa: E402
from recraft_build.steps.background import remove_background  # noqa: E402
from recraft_build.steps.images import to_picture  # noqa: E402
from recraft_build.steps.vectorize import vectorize  # noqa: E402


def best(fn: Callable[[], Any], runs: int) -> tuple[float, float]:
    wall, cpu = [], []
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return min(wall), min(cpu)


def on_white(art: np.ndarray) -> Image.Image:
    alpha = art[..., 3:] / 255
    return Image.fromarray(np.clip(np.rint(art[..., :3] * alpha + 255 * (1 - alpha)), 0, 255).astype(np.uint8))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=8, help="icons per set")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--learned", action="store_true", help="also time method: learned")
    args = parser.parse_args()
    icons = load_set("fluent", args.count) + load_set("twemoji", args.count)
    lines = load_set("lineart", args.count)
    rows: dict[str, list[tuple[float, float]]] = {}

    def add(label: str, fn: Callable[[], Any]) -> None:
        rows.setdefault(label, []).append(best(fn, args.runs))

    for icon in icons:
        art = icon.render(1024)
        white, *_ = compose(art, "white", "jpeg")
        keyed, *_ = compose(art, "key", "jpeg", True)
        add("remove_background, flood (white, JPEG)", lambda: remove_background(white))
        add("remove_background, key (JPEG, shadow keep)", lambda: remove_background(keyed, {"key": "#ff00ff"}))
        add("remove_background, key, shadow drop", lambda: remove_background(keyed, {"key": "#ff00ff", "shadow": "drop"}))
        if args.learned:
            add("remove_background, learned (white)", lambda: remove_background(white, {"method": "learned"}))
        picture = to_picture(keyed)
        add("remove_background step, key (decode + PNG encode)", lambda: registry.run_step(
            "remove_background", {"key": "#ff00ff"}, picture, provider=None, asset="bench"))
        on_white_picture = to_picture(white)
        add("remove_background step, flood (decode + PNG encode)", lambda: registry.run_step(
            "remove_background", {}, on_white_picture, provider=None, asset="bench"))
        flat = on_white(art)
        add(f"vectorize, vtracer ({icon.set})", lambda: vectorize(flat))
    for icon in lines:
        img = on_white(icon.render(1024))
        add("vectorize, vtracer (line art)", lambda: vectorize(img))
        add("vectorize, vtracer binary (line art)", lambda: vectorize(img, {"color_mode": "binary"}))
        add("vectorize, potrace (line art)", lambda: vectorize(img, {"tracer": "potrace"}))
    print(f"1024 x 1024, median over {args.count} icons per set of the best of {args.runs}")
    print("| step | wall ms | CPU ms |")
    print("|---|---:|---:|")
    for label, values in rows.items():
        wall = statistics.median(v[0] for v in values)
        cpu = statistics.median(v[1] for v in values)
        print(f"| {label} | {1000 * wall:.0f} | {1000 * cpu:.0f} |")


if __name__ == "__main__":
    main()
