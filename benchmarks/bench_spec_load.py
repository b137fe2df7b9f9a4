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


def refused(label: str, text: str) -> None:
    """A hostile spec (issue 12): how long until it is refused, and the peak memory."""
    start = time.perf_counter()
    try:
        parse_spec(text, "hostile.yaml", base_dir=Path("."))
    except SpecError as exc:
        took = time.perf_counter() - start
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"{label} refused in {took:.3f} s ({len(exc.problems)} problem(s))"
              f"  peak rss {rss:,.0f} MB")
    else:
        raise AssertionError(f"{label} was accepted")


def templated(n: int) -> None:
    """A matrix whose prompt is a full template (loops, filters, tests: the guarded path)."""
    text = SPEC.format(items=", ".join(f"item{i}" for i in range(n)), tiers="1").replace(
        'prompt: "flat game icon',
        'prompt: "{% for w in [color, item] %}{{ w | upper }} {% endfor %}'
        '{% if tier is defined %}tier {{ tier }} {% endif %}flat game icon')
    start = time.perf_counter()
    spec = parse_spec(text, "bench.yaml", base_dir=Path("."))
    took = time.perf_counter() - start
    print(f"{len(spec.assets):>7,} assets, templated prompt  {took:7.3f} s")


def hostile() -> None:
    one = "version: 1\nassets:\n  - name: hero\n    prompt: '{}'\n    output: hero.png\n"
    refused("nested range(100000) loops", one.format(
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"))
    refused("'%*d' % (10**9, 1)", one.format("{{ ''%*d'' % (1000000000, 1) }}"))
    refused("a list doubled 27 times", one.format(
        "{% set ns = namespace(l=[1]) %}{% for i in range(27) %}"
        "{% set ns.l = ns.l + ns.l %}{% endfor %}{{ ns.l | length }}"))
    refused("a 4.9 MB template", one.format("{{ a }}" * 700_000))
    refused("200,000 empty asset entries (600 KB)", "version: 1\nassets:\n" + "- \n" * 200_000)
    refused("99,999 broken asset entries", "version: 1\nassets:\n" + "- {}\n" * 99_999)
    items = ", ".join(f"i{k}" for k in range(1000))
    refused("100,000 assets with a 100,000-step prompt each",
            "version: 1\nassets:\n  - name: \"a-{{ i }}-{{ j }}\"\n"
            f"    matrix: {{i: [{items}], j: [{', '.join(str(k) for k in range(100))}]}}\n"
            "    prompt: \"{% for x in range(100000) %}{% endfor %}{{ i }}\"\n"
            "    output: \"{{ i }}/{{ j }}.png\"\n")


if __name__ == "__main__":
    sys.setrecursionlimit(10_000)
    bomb()
    huge_matrix()
    for items, tiers in ((10, 1), (100, 10), (1000, 10)):
        case(items, tiers)
    literal(5000)
    templated(10_000)  # x 10 colors
    hostile()
