"""Provider throughput against the local fake server: wall time and connections.

Runs ``ASSETS`` generations (one picture each) from ``JOBS`` worker threads sharing
one provider (so one connection pool), against ``tests/fakeserver.py`` with a fixed
latency per generation, and prints:

* the wall time and its ratio to the ideal ``ASSETS / JOBS * LATENCY``
  (the issue's target: within 1.2x);
* the TCP connections the server accepted, per worker (target: at most 3).

This measures the provider layer (HTTP, rate limiter off, downloads, picture
checks) without the executor, cache or steps. Usage::

    /work/venv/bin/python benchmarks/bench_providers.py [--protocol recraft|replicate|both]
        [--assets 200] [--jobs 16] [--latency 0.5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from fakeserver import FakeServer  # noqa: E402

from recraft_build.domain import GenerationRequest, ProviderProfile  # noqa: E402
from recraft_build.providers.registry import make_provider  # noqa: E402


def run(protocol: str, assets: int, jobs: int, latency: float) -> dict[str, float]:
    with FakeServer(latency=latency, unique_images=False) as server:
        if protocol == "recraft":
            env = {"RECRAFT_API_TOKEN": server.token, "RECRAFT_API_BASE": server.recraft_base}
            options = {"requests_per_second": 0, "images_per_minute": 0}
        else:
            env = {"REPLICATE_API_TOKEN": server.token, "REPLICATE_API_BASE": server.replicate_base}
            options = {"requests_per_second": 0, "creates_per_minute": 0}
        profiles = {protocol: ProviderProfile(protocol, protocol, options=options)}
        # The registry's own client: the pool a real build uses.
        provider = make_provider(protocol, profiles=profiles, env=env)
        requests = [
            GenerationRequest(model="recraftv3", prompt=f"asset {i}", style="digital_illustration", size="1024x1024")
            for i in range(assets)
        ]
        per_call: list[float] = []

        def one(i: int) -> None:
            t0 = time.perf_counter()
            result = provider.generate(requests[i], asset=f"asset-{i}")
            per_call.append(time.perf_counter() - t0)
            assert len(result.pictures) == 1

        start = time.perf_counter()
        with ThreadPoolExecutor(jobs) as pool:
            list(pool.map(one, range(assets)))
        wall = time.perf_counter() - start
        provider.close()
        ideal = assets / jobs * latency
        return {
            "wall": wall,
            "ideal": ideal,
            "ratio": wall / ideal if ideal else float("nan"),
            "connections": server.counts["connections"],
            "per_worker": server.counts["connections"] / jobs,
            "paid_calls": server.paid_calls,
            "median_call": statistics.median(per_call),
        }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--protocol", choices=["recraft", "replicate", "both"], default="both")
    ap.add_argument("--assets", type=int, default=200)
    ap.add_argument("--jobs", type=int, default=16)
    ap.add_argument("--latency", type=float, default=0.5)
    args = ap.parse_args()
    protocols = ["recraft", "replicate"] if args.protocol == "both" else [args.protocol]
    print(f"{args.assets} assets, -j {args.jobs}, {args.latency} s per generation")
    for protocol in protocols:
        r = run(protocol, args.assets, args.jobs, args.latency)
        print(
            f"{protocol:9s} wall {r['wall']:.2f} s  ideal {r['ideal']:.2f} s  ratio {r['ratio']:.2f}x  "
            f"connections {r['connections']:.0f} ({r['per_worker']:.2f} per worker)  "
            f"paid calls {r['paid_calls']:.0f}  median call {r['median_call']:.3f} s"
        )


if __name__ == "__main__":
    main()
