"""Time of each post-processing step on a 1024 x 1024 picture (local engines).

Run from the repository root:

    /work/venv/bin/python benchmarks/steps_speed.py

Prints the best of three runs per step, including what the executor does around a
step (decode the input, encode the PNG intermediate, the pre-cache check), so the
"edit a resize" path (resize + check + export) can be read off directly.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from synthetic_pictures import make_icon  # noqa: E402

from recraft_build.steps import registry  # noqa: E402


def best(fn: Callable[[], Any], runs: int = 3) -> tuple[Any, float]:
    result, fastest = None, float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        result = fn()
        fastest = min(fastest, time.perf_counter() - start)
    return result, fastest


def main() -> None:
    source, _ = make_icon("gradient", 3, 1024, codec="webp")

    def step(name: str, params: dict[str, Any], picture: Any) -> Any:
        return registry.run_step(name, params, picture, provider=None, asset="bench")[0]

    rows = []
    cut, t = best(lambda: step("remove_background", {}, source))
    rows.append(("remove_background (webp in, png out)", t))
    _, t = best(lambda: registry.check_step_output("remove_background", {}, source, cut, asset="bench"))
    rows.append(("  its check before caching", t))
    small, t = best(lambda: step("resize", {"width": 128}, cut))
    rows.append(("resize 1024 -> 128", t))
    _, t = best(lambda: registry.check_step_output("resize", {"width": 128}, cut, small, asset="bench"))
    rows.append(("  its check before caching", t))
    _, t = best(lambda: registry.export(small, "png", {"optimize": True}, asset="bench"))
    rows.append(("export 128 px png, optimize: true", t))
    _, t = best(lambda: step("trim", {"margin": 8}, cut))
    rows.append(("trim", t))
    _, t = best(lambda: step("pad", {"aspect": "16:9"}, cut))
    rows.append(("pad to 16:9", t))
    svg, t = best(lambda: step("vectorize", {}, cut))
    rows.append(("vectorize (vtracer)", t))
    _, t = best(lambda: registry.export(svg, "svg", {"optimize": True}, asset="bench"))
    rows.append(("export svg, optimize: true (scour)", t))
    _, t = best(lambda: registry.export(cut, "png", {"optimize": True}, asset="bench"))
    rows.append(("export 1024 px png, optimize: true", t))
    _, t = best(lambda: registry.export(cut, "webp", {"quality": 90}, asset="bench"))
    rows.append(("export 1024 px webp q90", t))
    _, t = best(lambda: registry.favicon(cut, {"optimize": True}, asset="bench"))
    rows.append(("favicon set", t))
    for label, seconds in rows:
        print(f"{label:<40} {1000 * seconds:7.0f} ms")


if __name__ == "__main__":
    main()
