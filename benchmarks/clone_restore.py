"""A fresh clone restoring every pinned picture from a local nginx remote cache.

The whole command path, as CI runs it: machine A builds ``--assets`` placeholder assets
(1024x1024 PNG pictures, a resize, PNG outputs) with ``--remote-cache`` in read-write
mode; then a fresh clone (the spec and the lock, no outputs) with an empty cache runs
``recraft-build build --frozen --remote-cache URL --remote-cache-mode read``. Prints the
wall time of that restore and the bytes it moved into its cache (everything it fetched
from the remote is verified and copied into the local cache).

    python benchmarks/clone_restore.py [--assets 1000] [--jobs 8]

Needs nginx (Debian package ``nginx``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--assets", type=int, default=1000)
    ap.add_argument("--jobs", type=int, default=8)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="rb-clone-"))
    env = {k: v for k, v in os.environ.items() if k not in ("RECRAFT_API_TOKEN", "REPLICATE_API_TOKEN")}
    cmd = [sys.executable, "-m", "recraft_build", "build", "-j", str(args.jobs)]
    try:
        with run_nginx(work / "nginx") as nginx:
            a = work / "machine-a"
            a.mkdir()
            (a / "assets.yaml").write_text(spec(args.assets))
            t0 = time.perf_counter()
            subprocess.run(cmd + ["--cache-dir", str(work / "cache-a"), "--remote-cache", nginx.url],
                           cwd=a, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            seed = time.perf_counter() - t0
            remote_bytes = du(Path(nginx.root))

            clone = work / "clone"
            clone.mkdir()
            shutil.copy(a / "assets.yaml", clone / "assets.yaml")
            shutil.copy(a / "assets.lock", clone / "assets.lock")
            t0 = time.perf_counter()
            run = subprocess.run(
                cmd + ["--frozen", "--json", "--cache-dir", str(work / "cache-clone"), "--remote-cache", nginx.url,
                       "--remote-cache-mode", "read"],
                cwd=clone, env=env, capture_output=True, text=True,
            )
            wall = time.perf_counter() - t0
            assert run.returncode == 0, run.stderr[-2000:]
            moved = du(work / "cache-clone")
            outputs = du(clone / "out" / "icons")
        print(f"| fresh clone restoring {args.assets} assets from nginx (`build --frozen`, -j {args.jobs}) "
              f"| {wall:.1f} s ({wall / args.assets * 1000:.1f} ms/asset) | {moved / 1e6:.1f} MB into the cache "
              f"(remote holds {remote_bytes / 1e6:.1f} MB; outputs {outputs / 1e6:.1f} MB) | seeding build: {seed:.1f} s |")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
