"""No-op and cold build benchmarks (issue: the build engine).

Measures, on this machine, in one run:

1. A no-op ``recraft-build build`` of a 10,000-asset matrix-expanded spec whose outputs
   are all up to date: median wall time and peak memory (RSS) of the real command, over
   several runs, beside GNU make's no-op on an equivalent 10,000-target Makefile.
2. A cold build of 1,000 placeholder assets (PNG outputs, offline): wall time, and where
   the time goes (top functions from cProfile).

Usage::

    python benchmarks/noop_build.py [--assets 1000,10000] [--cold 1000] [--runs 5]

Prints a Markdown table; the figures in benchmarks/README.md come from it.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def noop_spec(n: int) -> str:
    side = max(d for d in range(1, int(n**0.5) + 1) if n % d == 0)  # exact: side x (n / side)
    rows = ", ".join(f"r{i}" for i in range(side))
    cols = ", ".join(f"c{i}" for i in range(n // side))
    return f"""version: 1
output_dir: out
defaults: {{model: recraftv3, style: vector_illustration, size: 1024x1024}}
assets:
  - name: "tile-{{{{ row }}}}-{{{{ col }}}}"
    matrix: {{row: [{rows}], col: [{cols}]}}
    prompt: "a map tile, {{{{ row }}}} {{{{ col }}}}"
    output: "tiles/{{{{ row }}}}/{{{{ col }}}}.svg"
"""


def cold_spec(n: int) -> str:
    names = ", ".join(f"i{i}" for i in range(n))
    return f"""version: 1
output_dir: out
defaults: {{model: recraftv3, style: digital_illustration, size: 1024x1024}}
assets:
  - name: "icon-{{{{ item }}}}"
    matrix: {{item: [{names}]}}
    prompt: "a game icon number {{{{ item }}}}"
    outputs:
      - path: "icons/{{{{ item }}}}.png"
        steps: [{{resize: {{width: 128}}}}]
"""


def run_measured(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float, int]:
    """(wall seconds, peak RSS MiB, exit code) of one child process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_maxrss / 1024, proc.returncode


def makefile_for(spec_dir: Path, n_targets: int) -> None:
    """An equivalent Makefile: one target per output, each depending on the spec."""
    targets = sorted(str(p.relative_to(spec_dir)) for p in (spec_dir / "out" / "tiles").rglob("*.svg"))
    assert len(targets) == n_targets, (len(targets), n_targets)
    lines = ["all: " + " ".join(targets), ""]
    for t in targets:
        lines.append(f"{t}: assets.yaml\n\t@touch $@\n")
    (spec_dir / "Makefile").write_text("\n".join(lines))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--assets", type=lambda v: [int(x) for x in v.split(",")], default=[1_000, 10_000],
                    help="comma-separated spec sizes for the no-op runs (default 1000,10000)")
    ap.add_argument("--cold", type=int, default=1_000)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()

    from recraft_build import api

    work = Path(tempfile.mkdtemp(prefix="rb-bench-"))
    env = dict(os.environ)
    env.pop("RECRAFT_API_TOKEN", None)
    env.pop("REPLICATE_API_TOKEN", None)
    env["RECRAFT_BUILD_CACHE"] = str(work / "cache")
    try:
        # --- 1. no-op at N assets, beside GNU make ------------------------------------
        # Every build here runs as its own process, so each child's peak RSS is its own
        # (a child forked from a big parent would inherit the parent's high-water mark).
        cmd = [sys.executable, "-m", "recraft_build", "build", "-f", "assets.yaml"]
        rows = []
        for n_assets in args.assets:
            noop = work / f"noop-{n_assets}"
            noop.mkdir()
            (noop / "assets.yaml").write_text(noop_spec(n_assets))
            t0 = time.perf_counter()
            w, _m, code = run_measured(cmd + ["-j", "2"], noop, env)
            assert code == 0, f"first build exited {code}"
            setup = time.perf_counter() - t0
            walls, rss = [], []
            for _ in range(args.runs):
                w, m, code = run_measured(cmd, noop, env)
                assert code == 0, f"no-op build exited {code}"
                walls.append(w)
                rss.append(m)
            check = subprocess.run(cmd + ["--json"], cwd=noop, env=env, capture_output=True, text=True, check=True)
            summary = json.loads(check.stdout)["summary"]
            assert summary["up_to_date"] == n_assets, summary  # the no-op really is one
            makefile_for(noop, n_assets)
            make = shutil.which("make")
            mwalls = []
            if make:
                subprocess.run([make, "-s", "-j1"], cwd=noop, check=True, stdout=subprocess.DEVNULL)
                for _ in range(args.runs):
                    w, _m, code = run_measured([make, "-s", "-j1"], noop, env)
                    mwalls.append(w)
            rows.append((n_assets, walls, rss, mwalls, setup))

        # --- 2. cold build ------------------------------------------------------------
        cold = work / "cold"
        cold.mkdir()
        (cold / "assets.yaml").write_text(cold_spec(args.cold))
        env_cold = dict(env)
        env_cold["RECRAFT_BUILD_CACHE"] = str(work / "cache-cold")
        # One profiler per worker thread: the work happens in the executor's threads.
        import threading

        profiles: list[cProfile.Profile] = []

        def start_thread_profile(*_a: object) -> None:
            prof = cProfile.Profile()
            profiles.append(prof)
            prof.enable()

        threading.setprofile(start_thread_profile)
        t0 = time.perf_counter()
        cres = api.build(cold / "assets.yaml", env=env_cold, jobs=2)
        cold_wall = time.perf_counter() - t0
        threading.setprofile(None)  # type: ignore[arg-type]
        assert cres.summary()["generated"] == args.cold, cres.summary()

        print(f"## Build engine ({os.cpu_count()} cores, Python {sys.version.split()[0]})\n")
        print("| measure | figure |")
        print("|---|---|")
        for n_assets, walls, rss, mwalls, setup in rows:
            print(f"| no-op build, {n_assets} assets: median wall ({args.runs} runs) | {statistics.median(walls):.3f} s (min {min(walls):.3f}, max {max(walls):.3f}) |")
            print(f"| no-op build, {n_assets} assets: peak RSS | {max(rss):.0f} MiB |")
            if mwalls:
                print(f"| GNU make no-op, {n_assets} targets (same run): median wall | {statistics.median(mwalls):.3f} s |")
            print(f"| first build of the {n_assets}-asset spec (SVG placeholders, -j2) | {setup:.1f} s |")
        print(f"| cold build, {args.cold} placeholder PNG assets with a resize (-j2, in-process) | {cold_wall:.1f} s ({cold_wall / args.cold * 1000:.1f} ms/asset) |")
        s = io.StringIO()
        stats = pstats.Stats(profiles[0], stream=s)
        for extra in profiles[1:]:
            stats.add(extra)
        stats.sort_stats("tottime").print_stats(12)
        print("\nWhere the cold build's time goes (main thread + workers, by own time):\n")
        print("```")
        print("\n".join(line for line in s.getvalue().splitlines() if line.strip())[:4000])
        print("```")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
