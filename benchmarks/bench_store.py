"""Throughput of the content-addressed store (prints figures; not a test).

Run: /work/venv/bin/python benchmarks/bench_store.py [--blobs 1000] [--blob-kb 50]
Uses a temporary folder, removed afterwards.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from recraft_build.cache.local import Store


def _timed(label: str, count: int, fn) -> None:
    start = time.perf_counter()
    fn()
    elapsed = time.perf_counter() - start
    print(f"{label:<34} {count:>7} ops {elapsed * 1000:>9.1f} ms  {elapsed / count * 1e6:>9.1f} us/op")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--blobs", type=int, default=1000)
    parser.add_argument("--blob-kb", type=int, default=50)
    args = parser.parse_args()
    blobs = [os.urandom(args.blob_kb * 1024) for _ in range(args.blobs)]
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "cache") as store:
        digests: list[str] = []
        _timed(f"put_blob ({args.blob_kb} KB)", len(blobs), lambda: digests.extend(store.put_blob(b) for b in blobs))
        _timed("put_blob again (already stored)", len(blobs), lambda: [store.put_blob(b) for b in blobs])
        _timed("has_blob", len(digests), lambda: [store.has_blob(d) for d in digests])
        _timed("get_blob (read + re-hash)", len(digests), lambda: [store.get_blob(d) for d in digests])
        records = 10 * len(blobs)
        _timed("put_record", records, lambda: [store.put_record(f"k{i}", {"candidates": [{"sha256": digests[i % len(digests)]}]}) for i in range(records)])
        _timed("get_record", records, lambda: [store.get_record(f"k{i}") for i in range(records)])
        _timed("key_lock, first use of each key", records, lambda: [_lock(store, f"k{i}") for i in range(records)])
        _timed("key_lock, keys used before", records, lambda: [_lock(store, f"k{i}") for i in range(records)])
        _timed("info", 1, store.info)
        _timed("verify (every blob and record)", 1, store.verify)
        keep = {f"k{i}" for i in range(records // 2)}
        _timed("gc (keep half the records)", 1, lambda: store.gc(keep, set()))


def _lock(store: Store, key: str) -> None:
    with store.key_lock(key):
        pass


if __name__ == "__main__":
    main()
