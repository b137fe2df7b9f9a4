"""No-op and cold build benchmarks (issues: the build engine, and the no-op at the speed of the disk).

Measures, on this machine, in one run:

1. For each spec size (``--assets``, default 1,000 and 10,000 matrix-expanded assets
   with SVG outputs, all up to date), the real commands as fresh processes, run
   interleaved (one of each per round, so load on a shared machine hits them alike)
   and reported as medians:

   * the anchors: the interpreter's own start-up (``python -c pass``, same
     interpreter) and ``make -r`` on an equivalent Makefile (one target per output,
     each depending on the spec);
   * ``recraft-build build`` and ``status`` on the unchanged tree (the fast path,
     answered from the stamp), with their peak memory;
   * the same no-op ``build`` through the full path (the stamp removed first), for
     comparison.

   The fast answer is checked against the full path's, byte for byte, once per size.
2. A cold build of ``--cold`` placeholder assets (1024x1024 PNG pictures, a resize to
   128 px, PNG outputs), ``-j 2``, as a fresh process with an empty cache: wall and
   CPU time. With ``--baseline DIR`` (another checkout of recraft-build) the same build
   also runs with that code, interleaved, as the anchor. ``--profile`` adds where the
   time goes (cProfile of an in-process build, CPU time per thread).

Usage::

    python benchmarks/noop_build.py [--assets 1000,10000] [--runs 7] [--cold 1000] [--cold-runs 2]
                                    [--baseline DIR] [--profile]

Prints Markdown tables; the figures in benchmarks/README.md come from it.
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

ROOT = Path(__file__).resolve().parent.parent


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


def run_measured(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float, float, int]:
    """(wall seconds, CPU seconds, peak RSS MiB, exit code) of one child process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status)


def makefile_for(spec_dir: Path, n_targets: int) -> None:
    """An equivalent Makefile: one target per output, each depending on the spec."""
    targets = sorted(str(p.relative_to(spec_dir)) for p in (spec_dir / "out" / "tiles").rglob("*.svg"))
    assert len(targets) == n_targets, (len(targets), n_targets)
    lines = ["all: " + " ".join(targets), ""]
    for t in targets:
        lines.append(f"{t}: assets.yaml\n\t@touch $@\n")
    (spec_dir / "Makefile").write_text("\n".join(lines))


def stamp_file(spec_dir: Path) -> Path:
    return spec_dir / ".recraft-build" / "noop" / "assets.yaml.stamp"


def fmt(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} s (min {min(values):.3f}, max {max(values):.3f})"


def noop_rows(n_assets: int, work: Path, env: dict[str, str], runs: int) -> list[str]:
    py = sys.executable
    cmd = [py, "-m", "recraft_build"]
    noop = work / f"noop-{n_assets}"
    noop.mkdir()
    (noop / "assets.yaml").write_text(noop_spec(n_assets))
    time.sleep(0.1)  # inputs younger than the stamp's margin are (rightly) not trusted
    t0 = time.perf_counter()
    wall, _cpu, _rss, code = run_measured(cmd + ["build", "-j", "2"], noop, env)
    assert code == 0, f"first build exited {code}"
    first = time.perf_counter() - t0
    time.sleep(0.1)

    # The fast answer is the full path's answer, byte for byte.
    for argv in (["build", "--json"], ["status"]):
        stamp_file(noop).unlink(missing_ok=True)
        full = subprocess.run(cmd + argv, cwd=noop, env=env, capture_output=True, text=True, check=True)
        fast = subprocess.run(cmd + argv, cwd=noop, env=env, capture_output=True, text=True, check=True)
        assert (fast.stdout, fast.stderr) == (full.stdout, full.stderr), argv
    check = subprocess.run(cmd + ["build", "--json"], cwd=noop, env=env, capture_output=True, text=True, check=True)
    assert json.loads(check.stdout)["summary"]["up_to_date"] == n_assets

    makefile_for(noop, n_assets)
    make = shutil.which("make")
    if make:
        subprocess.run([make, "-r", "-s"], cwd=noop, check=True, stdout=subprocess.DEVNULL)

    series: dict[str, list[float]] = {k: [] for k in ("python", "make", "build", "status", "full")}
    rss: dict[str, list[float]] = {"build": [], "status": [], "full": []}
    for _ in range(runs):
        series["python"].append(run_measured([py, "-c", "pass"], noop, env)[0])
        if make:
            series["make"].append(run_measured([make, "-r", "-s"], noop, env)[0])
        for key, argv in (("build", ["build"]), ("status", ["status"])):
            wall, _cpu, peak, code = run_measured(cmd + argv, noop, env)
            assert code == 0
            series[key].append(wall)
            rss[key].append(peak)
        stamp_file(noop).unlink()  # the full path, which writes the stamp again
        wall, _cpu, peak, code = run_measured(cmd + ["build"], noop, env)
        assert code == 0
        series["full"].append(wall)
        rss["full"].append(peak)
        time.sleep(0.06)

    py_median = statistics.median(series["python"])
    rows = [
        f"| {n_assets} assets: interpreter start-up, `python -c pass` (anchor) | {fmt(series['python'])} | |",
    ]
    if make:
        rows.append(f"| {n_assets} assets: `make -r` no-op, {n_assets} targets (anchor) | {fmt(series['make'])} | |")
    for key, label in (("build", "no-op `build` (fast path)"), ("status", "`status`, unchanged tree (fast path)")):
        ratio = statistics.median(series[key]) / py_median
        rows.append(
            f"| {n_assets} assets: {label} | {fmt(series[key])}; {ratio:.2f}x start-up; "
            f"peak RSS {max(rss[key]):.0f} MiB | <= 3x start-up, <= 60 MB |"
        )
    rows.append(
        f"| {n_assets} assets: no-op `build`, full path (stamp removed) | {fmt(series['full'])}; "
        f"peak RSS {max(rss['full']):.0f} MiB | |"
    )
    rows.append(f"| {n_assets} assets: first build (SVG placeholders, -j 2) | {first:.1f} s | |")
    return rows


def cold_rows(n: int, work: Path, env: dict[str, str], runs: int, baseline: Path | None) -> list[str]:
    variants = [("this checkout", None)] + ([("baseline " + str(baseline), baseline)] if baseline else [])
    results: dict[str, list[tuple[float, float]]] = {label: [] for label, _ in variants}
    for r in range(runs):
        for label, path in variants:
            cold = work / f"cold-{r}-{len(results[label])}-{abs(hash(label)) % 1000}"
            cold.mkdir()
            (cold / "assets.yaml").write_text(cold_spec(n))
            e = dict(env)
            e["RECRAFT_BUILD_CACHE"] = str(cold / "cache")
            if path is not None:
                e["PYTHONPATH"] = str(path)
            wall, cpu, _rss, code = run_measured([sys.executable, "-m", "recraft_build", "build", "-j", "2"], cold, e)
            assert code == 0, f"cold build exited {code}"
            results[label].append((wall, cpu))
            shutil.rmtree(cold, ignore_errors=True)
    rows = []
    for label, values in results.items():
        walls = [w for w, _ in values]
        cpus = [c for _, c in values]
        rows.append(
            f"| cold build, {n} placeholder PNG assets + resize to 128 (-j 2), {label} | "
            f"{statistics.median(walls):.1f} s wall ({statistics.median(walls) / n * 1000:.1f} ms/asset), "
            f"{statistics.median(cpus):.1f} s CPU | <= 8 s |"
        )
    return rows


def cold_profile(n: int, work: Path, env: dict[str, str]) -> str:
    """Where a cold build's time goes: CPU time per thread, summed over the threads."""
    import threading

    from recraft_build import api

    cold = work / "cold-profile"
    cold.mkdir()
    (cold / "assets.yaml").write_text(cold_spec(n))
    e = dict(env)
    e["RECRAFT_BUILD_CACHE"] = str(cold / "cache")
    profiles: list[cProfile.Profile] = []

    def start_thread_profile(*_a: object) -> None:
        prof = cProfile.Profile(time.thread_time)
        profiles.append(prof)
        prof.enable()

    threading.setprofile(start_thread_profile)
    api.build(cold / "assets.yaml", env=e, jobs=2)
    threading.setprofile(None)  # type: ignore[arg-type]
    s = io.StringIO()
    stats = pstats.Stats(profiles[0], stream=s)
    for extra in profiles[1:]:
        stats.add(extra)
    stats.sort_stats("tottime").print_stats(15)
    return "\n".join(line for line in s.getvalue().splitlines() if line.strip())[:5000]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--assets", type=lambda v: [int(x) for x in v.split(",") if x], default=[1_000, 10_000],
                    help="comma-separated spec sizes for the no-op runs (default 1000,10000; empty to skip)")
    ap.add_argument("--runs", type=int, default=7, help="interleaved rounds per no-op size (default 7)")
    ap.add_argument("--cold", type=int, default=1_000, help="assets of the cold build (0 to skip)")
    ap.add_argument("--cold-runs", type=int, default=1)
    ap.add_argument("--baseline", type=Path, help="another recraft-build checkout to run the cold build with too")
    ap.add_argument("--profile", action="store_true", help="profile the cold build (in-process)")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="rb-bench-"))
    env = dict(os.environ)
    for name in ("RECRAFT_API_TOKEN", "REPLICATE_API_TOKEN", "RECRAFT_BUILD_REMOTE_CACHE"):
        env.pop(name, None)
    env["RECRAFT_BUILD_CACHE"] = str(work / "cache")
    try:
        load = os.getloadavg()[0]
        print(f"## Build engine ({os.cpu_count()} cores, Python {sys.version.split()[0]}, load {load:.1f})\n")
        print("| measure | figure | target |")
        print("|---|---|---|")
        for n_assets in args.assets:
            for row in noop_rows(n_assets, work, env, args.runs):
                print(row, flush=True)
        if args.cold:
            for row in cold_rows(args.cold, work, env, args.cold_runs, args.baseline):
                print(row, flush=True)
        print(f"\n(load average at the end: {os.getloadavg()[0]:.1f})")
        if args.cold and args.profile:
            print("\nWhere the cold build's time goes (CPU time per thread, summed):\n")
            print("```")
            print(cold_profile(args.cold, work, env))
            print("```")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
