"""How long loading a spec takes, for matrices of growing size and a guarded alias bomb.

Run: python benchmarks/bench_spec_load.py
Prints one line per case: assets, seconds, assets per second, peak memory (ru_maxrss,
which only grows: read each line as "at most").
Figures depend on the machine; the point is the shape (linear, and refusals are instant).
"""

from __future__ import annotations

import resource
import sys
import time
from pathlib import Path

from recraft_build.errors import SpecError
from recraft_build.spec.loader import parse_spec

SPEC = """\
version: 1
defaults: {{model: recraftv3, style: digital_illustration, substyle: pixel_art, size: 1024x1024}}
vars: {{world: a cozy fantasy village}}
assets:
  - name: "icon-{{{{ item }}}}-{{{{ tier }}}}-{{{{ color }}}}"
    matrix:
      item: [{items}]
      tier: [{tiers}]
      color: [red, green, blue, gold, silver, black, white, teal, plum, rust]
    prompt: "flat game icon of a {{{{ color }}}} {{{{ item }}}}, tier {{{{ tier }}}}, in {{{{ world }}}}"
    n: 2
    steps: [remove_background, {{trim: {{margin: 8}}}}]
    outputs:
      - path: "icons/{{{{ item }}}}/{{{{ tier }}}}/{{{{ color }}}}.png"
        scales: [1, 2]
        steps: [{{resize: {{width: 64}}}}]
      - path: "icons/{{{{ item }}}}/{{{{ tier }}}}/{{{{ color }}}}.svg"
        steps: [vectorize]
"""


def case(n_items: int, n_tiers: int) -> None:
    items = ", ".join(f"item{i}" for i in range(n_items))
    tiers = ", ".join(str(t) for t in range(n_tiers))
    text = SPEC.format(items=items, tiers=tiers)
    start = time.perf_counter()
    spec = parse_spec(text, "bench.yaml", base_dir=Path("."))
    took = time.perf_counter() - start
    n = len(spec.assets)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{n:>7,} assets  {took:7.3f} s  {n / took:>9,.0f} assets/s  peak rss {rss:,.0f} MB")


def bomb() -> None:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 10):
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [" + ", ".join([f"*{prev}"] * 10) + "]")
    start = time.perf_counter()
    try:
        parse_spec("\n".join(lines), "bomb.yaml", base_dir=Path("."))
    except SpecError:
        pass
    print(f"alias bomb (10^10 values) refused in {time.perf_counter() - start:.4f} s")


def huge_matrix() -> None:
    text = SPEC.format(items=", ".join(f"i{i}" for i in range(1000)),
                       tiers=", ".join(str(t) for t in range(1000)))
    start = time.perf_counter()
    try:
        parse_spec(text, "huge.yaml", base_dir=Path("."))
    except SpecError:
        pass
    print(f"10,000,000-asset matrix refused in {time.perf_counter() - start:.4f} s")


def literal(n: int) -> None:
    """A spec that lists every asset by hand (YAML, schema and positions dominate)."""
    lines = ["version: 1", "defaults: {model: recraftv3, style: digital_illustration}",
             "assets:"]
    for i in range(n):
        lines += [f"  - name: asset-{i}",
                  f"    prompt: a small flat icon number {i}, plain white background",
                  "    n: 2",
                  "    controls: {colors: ['#112233', '#445566']}",
                  "    outputs:",
                  f"      - path: icons/{i}.png",
                  "        steps: [{resize: {width: 64}}]"]
    text = "\n".join(lines) + "\n"
    start = time.perf_counter()
    spec = parse_spec(text, "literal.yaml", base_dir=Path("."))
    took = time.perf_counter() - start
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{len(spec.assets):>7,} assets written out ({len(text) / 1e6:.1f} MB)  {took:7.3f} s"
          f"  peak rss {rss:,.0f} MB")


if __name__ == "__main__":
    sys.setrecursionlimit(10_000)
    bomb()
    huge_matrix()
    for items, tiers in ((10, 1), (100, 10), (1000, 10)):
        case(items, tiers)
    literal(5000)
