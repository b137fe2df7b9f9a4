"""A fresh clone restoring every pinned picture from a local nginx remote cache.

The whole command path, as CI runs it: machine A builds ``--assets`` placeholder assets
(1024x1024 PNG pictures, a resize, PNG outputs) with ``--remote-cache`` in read-write
mode; then a fresh clone (the spec and the lock, no outputs) with an empty cache runs
``recraft-build build --frozen --remote-cache URL --remote-cache-mode read``.

Runs, interleaved ``--runs`` times, each in a new clone with an empty cache:

* the restore with this checkout's code (and with ``--baseline DIR``, another checkout
  of recraft-build, as the before);
* the anchors: the interpreter's start-up, and the same requests the restore made
  (read back from nginx's access log) sent by a bare ``http.client`` loop on 8 threads
  with kept-alive connections, doing nothing with the bytes: what the requests alone
  cost on this machine.

Prints a Markdown table with medians: wall time, the restoring process's CPU time (user
+ system), requests per asset, bytes moved into the clone's cache; and the load average
at the start and the end.

    python benchmarks/clone_restore.py [--assets 1000] [--jobs 8] [--runs 3] [--baseline DIR]

Needs nginx (Debian package ``nginx``).
"""

from __future__ import annotations

import argparse
import http.client
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from nginx import run_nginx  # noqa: E402


def spec(n: int) -> str:
    items = ", ".join(f"i{i}" for i in range(n))
    return f"""version: 1
output_dir: out
defaults: {{model: recraftv3, style: digital_illustration, size: 1024x1024}}
assets:
  - name: "icon-{{{{ item }}}}"
    matrix: {{item: [{items}]}}
    prompt: "a game icon number {{{{ item }}}}"
    outputs:
      - path: "icons/{{{{ item }}}}.png"
        steps: [{{resize: {{width: 128}}}}]
"""


def du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def log_lines(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def requests_in(lines: list[str]) -> list[tuple[str, str]]:
    """(method, path) of each request in nginx's combined log lines."""
    out = []
    for line in lines:
        try:
            method, path, _ = line.split('"', 2)[1].split(" ", 2)
        except ValueError:
            continue
        out.append((method, path))
    return out


def bare_fetch(url: str, reqs: list[tuple[str, str]], threads: int = 8) -> float:
    """Seconds to send ``reqs`` with http.client, ``threads`` kept-alive connections."""
    parts = urlsplit(url)
    chunks = [reqs[i::threads] for i in range(threads)]

    def work(chunk: list[tuple[str, str]]) -> None:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        for method, path in chunk:
            conn.request(method, path)
            conn.getresponse().read()
        conn.close()

    t0 = time.perf_counter()
    workers = [threading.Thread(target=work, args=(c,)) for c in chunks]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--assets", type=int, default=1000)
    ap.add_argument("--jobs", type=int, default=8)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--baseline", type=Path, help="another recraft-build checkout to restore with too (the before)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="rb-clone-"))
    env = {k: v for k, v in os.environ.items() if k not in ("RECRAFT_API_TOKEN", "REPLICATE_API_TOKEN")}
    env.pop("RECRAFT_BUILD_REMOTE_CACHE", None)
    cmd = [sys.executable, "-m", "recraft_build", "build", "-j", str(args.jobs)]
    variants: list[tuple[str, Path | None]] = [("this checkout", None)]
    if args.baseline:
        variants.append((f"baseline {args.baseline}", args.baseline))
    try:
        with run_nginx(work / "nginx") as nginx:
            log = nginx.prefix / "access.log"
            # Machine A, once per variant: a lock is restored by the code that wrote it
            # (another version may key its steps differently and rebuild them).
            seeded: dict[str, Path] = {}
            seeds: dict[str, float] = {}
            for label, path in variants:
                a = seeded[label] = work / f"machine-a-{len(seeded)}"
                a.mkdir()
                (a / "assets.yaml").write_text(spec(args.assets))
                e = dict(env)
                if path is not None:
                    e["PYTHONPATH"] = str(path)
                t0 = time.perf_counter()
                subprocess.run(cmd + ["--cache-dir", str(a / "cache"), "--remote-cache", nginx.url],
                               cwd=a, env=e, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                seeds[label] = time.perf_counter() - t0
            remote_bytes = du(Path(nginx.root))

            load0 = os.getloadavg()[0]
            walls: dict[str, list[float]] = {label: [] for label, _ in variants}
            cpus: dict[str, list[float]] = {label: [] for label, _ in variants}
            reqs: dict[str, int] = {}
            moved: dict[str, int] = {}
            anchors: dict[str, list[float]] = {"python": [], "bare": []}
            last_requests: list[tuple[str, str]] = []
            for r in range(args.runs):
                for label, path in variants:
                    clone = work / f"clone-{r}-{len(walls[label])}-{label[:4]}"
                    clone.mkdir()
                    shutil.copy(seeded[label] / "assets.yaml", clone / "assets.yaml")
                    shutil.copy(seeded[label] / "assets.lock", clone / "assets.lock")
                    e = dict(env)
                    if path is not None:
                        e["PYTHONPATH"] = str(path)
                    before = len(log_lines(log))
                    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
                    t0 = time.perf_counter()
                    run = subprocess.run(
                        cmd + ["--frozen", "--json", "--cache-dir", str(clone / "cache"), "--remote-cache", nginx.url,
                               "--remote-cache-mode", "read"],
                        cwd=clone, env=e, capture_output=True, text=True,
                    )
                    walls[label].append(time.perf_counter() - t0)
                    after = resource.getrusage(resource.RUSAGE_CHILDREN)
                    cpus[label].append(after.ru_utime - usage.ru_utime + after.ru_stime - usage.ru_stime)
                    assert run.returncode == 0, run.stderr[-2000:]
                    made = requests_in(log_lines(log)[before:])
                    reqs[label] = len(made)
                    moved[label] = du(clone / "cache")
                    if path is None:
                        last_requests = made
                    shutil.rmtree(clone, ignore_errors=True)
                t0 = time.perf_counter()
                subprocess.run([sys.executable, "-c", "pass"], check=True)
                anchors["python"].append(time.perf_counter() - t0)
                anchors["bare"].append(bare_fetch(nginx.url, last_requests))
        n = args.assets
        print(f"Restore of {n} assets from nginx ({os.cpu_count()} cores, load average {load0:.1f} at the start, "
              f"{os.getloadavg()[0]:.1f} at the end; medians of {args.runs} interleaved runs)\n")
        print("| measure | figure | target |")
        print("|---|---|---|")
        for label, values in walls.items():
            w = statistics.median(values)
            print(f"| fresh clone restoring {n} assets (`build --frozen`, -j {args.jobs}), {label} | {w:.1f} s "
                  f"({w / n * 1000:.1f} ms/asset; min {min(values):.1f}, max {max(values):.1f}); "
                  f"CPU {statistics.median(cpus[label]):.1f} s; {reqs[label] / n:.1f} "
                  f"requests/asset; {moved[label] / 1e6:.1f} MB into the cache | <= 3 s |")
        print(f"| anchor: the same {len(last_requests)} requests, bare http.client, 8 kept-alive connections | "
              f"{statistics.median(anchors['bare']):.2f} s | |")
        print(f"| anchor: interpreter start-up (`python -c pass`) | {statistics.median(anchors['python']):.3f} s | |")
        for label, seed in seeds.items():
            print(f"| seeding build on machine A, uploads included, {label} | {seed:.1f} s | |")
        print(f"| the remote cache after seeding | {remote_bytes / 1e6:.1f} MB | |")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
