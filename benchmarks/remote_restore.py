"""Benchmark: a fresh cache folder restoring N pictures from a local nginx remote cache.

What a fresh clone in CI does with ``--remote-cache``: every asset's action record is
looked up (local miss, remote hit), and its blobs are fetched, verified and copied into
the new local store. Prints the wall time of the restore and the bytes and requests
that crossed the wire; the seeding (a "CI" machine uploading the same N entries) is
printed too, for reference.

    /work/venv/bin/python benchmarks/remote_restore.py [--assets 1000] [--jobs 8] [--blob-size 4096]

Needs nginx (Debian package ``nginx``). Importable: :func:`run` returns the figures.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

_ROOT = Path(__file__).resolve().parent.parent
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))
if str(_ROOT / "tests") not in sys.path:
    sys.path.insert(0, str(_ROOT / "tests"))

from nginx import run_nginx  # noqa: E402  (tests/nginx.py)
from recraft_build.cache.http import RemoteCache  # noqa: E402
from recraft_build.cache.tiered import TieredStore  # noqa: E402
from recraft_build.cache.local import Store  # noqa: E402

__all__ = ["main", "run"]


def _picture(i: int, size: int) -> bytes:
    # Distinct, incompressible-ish bytes per asset, like real PNGs.
    seed = hashlib.sha256(str(i).encode()).digest()
    return (seed * (size // len(seed) + 1))[:size]


def _key(i: int) -> str:
    return hashlib.sha256(f"benchmark asset {i}".encode()).hexdigest()


def run(assets: int = 1000, jobs: int = 8, blob_size: int = 4096, workdir: Path | None = None) -> dict[str, Any]:
    """Seed a local nginx with ``assets`` records and blobs, then restore them into a
    fresh store with ``jobs`` threads; return the figures."""
    warnings: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(workdir or tmp)
        limits = httpx.Limits(max_connections=max(jobs, 4) * 2, max_keepalive_connections=max(jobs, 4) * 2)
        with run_nginx(base / "server") as server, httpx.Client(limits=limits) as client:
            # Seed, as CI would after a build.
            ci_remote = RemoteCache(server.url, client=client, warn=warnings.append)
            t0 = time.perf_counter()
            with TieredStore(Store(base / "ci"), ci_remote, upload_threads=jobs) as ci:
                for i in range(assets):
                    digest = ci.put_blob(_picture(i, blob_size))
                    ci.put_record(_key(i), {"picture": {"sha256": digest}, "credits": 1})
                seeded = ci.flush()
            seed_seconds = time.perf_counter() - t0

            # Restore into a fresh folder, as a fresh clone would.
            remote = RemoteCache(server.url, client=client, mode="read", warn=warnings.append)
            restored = 0
            t0 = time.perf_counter()
            with TieredStore(Store(base / "fresh"), remote) as fresh:

                def restore(i: int) -> bool:
                    record = fresh.get_record(_key(i))
                    return record is not None and fresh.get_blob(record["picture"]["sha256"]) is not None

                with ThreadPoolExecutor(jobs) as pool:
                    restored = sum(pool.map(restore, range(assets)))
                summary = fresh.flush()
            restore_seconds = time.perf_counter() - t0
            traffic = remote.traffic()
    return {
        "assets": assets,
        "jobs": jobs,
        "blob_size": blob_size,
        "seed_seconds": seed_seconds,
        "seed_bytes_sent": ci_remote.traffic()["sent"],
        "seed_requests": ci_remote.traffic()["requests"],
        "seed_uploaded": seeded.uploaded,
        "restored": restored,
        "restore_seconds": restore_seconds,
        "restore_bytes_received": traffic["received"],
        "restore_requests": traffic["requests"],
        "restore_blob_bytes": summary.bytes_downloaded,
        "warnings": warnings,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", type=int, default=1000)
    parser.add_argument("--jobs", type=int, default=8)
    parser.add_argument("--blob-size", type=int, default=4096)
    args = parser.parse_args(argv)
    r = run(args.assets, args.jobs, args.blob_size)
    n = r["assets"]
    print(f"remote restore: {n} assets ({r['blob_size']} B pictures), -j {r['jobs']}, local nginx")
    print(
        f"  seed (CI upload):  {r['seed_seconds']:.2f} s, {r['seed_requests']} requests, "
        f"{r['seed_bytes_sent'] / 1e6:.2f} MB sent, {r['seed_uploaded']} entries uploaded"
    )
    print(
        f"  restore (fresh):   {r['restore_seconds']:.2f} s wall, {r['restored']}/{n} restored, "
        f"{r['restore_requests']} requests, {r['restore_bytes_received'] / 1e6:.2f} MB received "
        f"({r['restore_blob_bytes'] / 1e6:.2f} MB of pictures), "
        f"{r['restore_seconds'] / max(n, 1) * 1e3:.2f} ms/asset"
    )
    for w in r["warnings"]:
        print(f"  warning: {w}")
    return 0 if r["restored"] == n and not r["warnings"] else 1


if __name__ == "__main__":
    sys.exit(main())
