"""How long the placeholder provider takes per picture (prints figures; not a test).

Run: /work/venv/bin/python benchmarks/bench_placeholder.py
"""

from __future__ import annotations

import statistics
import time

from recraft_build.domain import GenerationRequest
from recraft_build.providers.placeholder import PlaceholderProvider

PROMPT = "flat game icon of a sword in a cozy fantasy village, plain white background"


def _median_ms(request: GenerationRequest, rounds: int) -> tuple[float, float, int]:
    provider = PlaceholderProvider()
    provider.generate(request, asset="warm-up")
    times = []
    size = 0
    for i in range(rounds):
        # A different prompt each round, as in a real build (no caching inside).
        r = GenerationRequest(**{**request.__dict__, "prompt": f"{request.prompt} {i}"})
        start = time.perf_counter()
        result = provider.generate(r, asset="bench")
        times.append(time.perf_counter() - start)
        size = sum(len(p.data) for p in result.pictures)
    per = [t / request.n * 1000 for t in times]
    return statistics.median(per), min(per), size // request.n


def main() -> None:
    cases = [
        ("png 1024x1024 n=1", GenerationRequest(model="recraftv3", prompt=PROMPT)),
        ("png 1024x1024 n=4", GenerationRequest(model="recraftv3", prompt=PROMPT, n=4)),
        ("png 1820x1024 n=1", GenerationRequest(model="recraftv3", prompt=PROMPT, size="1820x1024")),
        ("png 2048x2048 n=1", GenerationRequest(model="recraftv3", prompt=PROMPT, size="2048x2048")),
        ("png 256x256 n=1", GenerationRequest(model="recraftv3", prompt=PROMPT, size="256x256")),
        ("svg 1024x1024 n=1", GenerationRequest(model="recraftv3", prompt=PROMPT, style="icon")),
    ]
    print(f"{'case':<20} {'median ms/picture':>18} {'min ms':>8} {'bytes':>8}")
    for label, request in cases:
        median, best, size = _median_ms(request, rounds=100)
        print(f"{label:<20} {median:>18.2f} {best:>8.2f} {size:>8}")


if __name__ == "__main__":
    main()
