"""A whole cold build against the local fake Recraft server with a fixed latency.

The real command path (spec, plan, executor, store, lock, steps, outputs) with the
real ``recraft`` (or ``replicate``) provider over HTTP on 127.0.0.1, against
``tests/fakeserver.py`` answering each generation after ``--latency`` seconds.
The server runs in a child process (a real server does not share the build's
interpreter). Prints the wall time beside the ideal ``ASSETS / JOBS x LATENCY``, the TCP
connections the server accepted per worker, and the paid calls (must equal ASSETS).

The client-side rate limiter is raised through a provider profile in the spec (the
built-in defaults, 100 images/minute for Recraft, would otherwise be what is measured).

Besides the wall time it prints the build's CPU time (this process: the server is
another), the load average, and where the time went: when the first paid call left and
when the last answer (the last picture's download) came back, from the start of
``api.build`` (``recraft_build.api`` itself is imported before the clock starts).

Usage::

    python benchmarks/cold_build_http.py [--assets 200] [--jobs 16] [--latency 0.5]
        [--protocol recraft|replicate] [--resize WIDTH]
"""

from __future__ import annotations

import argparse
import compileall
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

T_PROCESS = time.perf_counter()

from fakeserver import FakeServer  # noqa: E402

from recraft_build import api  # noqa: E402

T_IMPORTED = time.perf_counter()


def _timed_requests(log: list[tuple[float, float]]) -> None:
    """Record (start, end) of every request the build's httpx clients send: a
    measurement hook of this script only."""
    import httpx

    send = httpx.Client.send

    def timed(self: httpx.Client, request: httpx.Request, **kw: object) -> httpx.Response:
        start = time.perf_counter()
        try:
            return send(self, request, **kw)  # type: ignore[arg-type]
        finally:
            log.append((start, time.perf_counter()))

    httpx.Client.send = timed  # type: ignore[method-assign]


def spec(n: int, protocol: str, base: str, resize: int | None = None) -> str:
    steps = f"\n        steps: [{{resize: {{width: {resize}}}}}]" if resize else ""
    items = ", ".join(f"i{i}" for i in range(n))
    return f"""version: 1
output_dir: out
providers:
  local:
    protocol: {protocol}
    base_url: "{base}"
    token_env: BENCH_TOKEN
    rate_limit: {{requests_per_second: 10000, images_per_minute: 1000000, creates_per_minute: 1000000}}
defaults: {{model: recraftv3, style: digital_illustration, size: 1024x1024}}
assets:
  - name: "icon-{{{{ item }}}}"
    matrix: {{item: [{items}]}}
    prompt: "a game icon number {{{{ item }}}}"
    outputs:
      - path: "icons/{{{{ item }}}}.png"{steps}
"""


def _serve(conn, latency: float) -> None:
    """Child process: run the fake server until told to stop; send back its counters.

    The server runs in its own process so that it does not share the build's GIL
    (a real server is on another machine)."""
    with FakeServer(latency=latency, unique_images=False) as server:
        conn.send((server.token, server.recraft_base, server.replicate_base))
        conn.recv()
        conn.send((server.paid_calls, server.counts["connections"]))


def main() -> int:
    import multiprocessing as mp

    ap = argparse.ArgumentParser()
    ap.add_argument("--assets", type=int, default=200)
    ap.add_argument("--jobs", type=int, default=16)
    ap.add_argument("--latency", type=float, default=0.5)
    ap.add_argument("--protocol", choices=["recraft", "replicate"], default="recraft")
    ap.add_argument("--resize", type=int, default=None, help="add a resize step to WIDTH (local CPU work per asset)")
    args = ap.parse_args()
    # As installed by pip, which byte-compiles a package: this machine sets
    # PYTHONDONTWRITEBYTECODE, so without this every changed module would be compiled
    # again inside the clock (about 0.06 s), which no user's build pays.
    compileall.compile_dir(str(Path(api.__file__).parent), quiet=1)
    work = Path(tempfile.mkdtemp(prefix="rb-http-"))
    parent, child = mp.Pipe()
    proc = mp.get_context("spawn").Process(target=_serve, args=(child, args.latency), daemon=True)
    proc.start()
    try:
        token, recraft_base, replicate_base = parent.recv()
        base = recraft_base if args.protocol == "recraft" else replicate_base
        (work / "assets.yaml").write_text(spec(args.assets, args.protocol, base, args.resize))
        env = {"BENCH_TOKEN": token, "PATH": os.environ.get("PATH", "")}
        requests: list[tuple[float, float]] = []
        _timed_requests(requests)
        load0 = os.getloadavg()[0]
        t0, c0 = time.perf_counter(), time.process_time()
        result = api.build(work / "assets.yaml", env=env, provider="local", jobs=args.jobs, cache_dir=work / "cache")
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        s = result.summary()
        assert s["generated"] == args.assets and s["failed"] == 0, s
        parent.send("stop")
        paid, conns = parent.recv()
        ideal = args.assets / args.jobs * args.latency
        rounds = -(-args.assets // args.jobs) * args.latency
        what = f", resize to {args.resize}" if args.resize else ""
        print(f"| cold build, {args.assets} assets, -j {args.jobs}, {args.latency} s/generation, {args.protocol}{what} "
              f"| {wall:.2f} s; ideal {ideal:.2f} s ({wall / ideal:.2f}x); whole rounds {rounds:.2f} s "
              f"| {conns} connections ({conns / args.jobs:.2f} per worker) | {paid} paid calls |")
        first = min(start for start, _ in requests) - t0
        last = max(end for _, end in requests) - t0
        print(f"\nCPU {cpu:.2f} s; load average {load0:.1f} at the start, {os.getloadavg()[0]:.1f} at the end; "
              f"imports before the clock {T_IMPORTED - T_PROCESS:.2f} s. From the start of api.build: first "
              f"request sent at {first:.2f} s, last answer at {last:.2f} s, build returned at {wall:.2f} s "
              f"(between them {last - first:.2f} s for {rounds / args.latency:.0f} rounds: "
              f"{(last - first - rounds) / (rounds / args.latency) * 1000:.0f} ms over the latency per round).")
    finally:
        proc.join(timeout=10)
        if proc.is_alive():
            proc.terminate()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
