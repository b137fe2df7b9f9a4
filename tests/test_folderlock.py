"""The lock-file writers' lock: no predictable path, no symlink followed, no traceback."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest

from recraft_build.engine.folderlock import fallback_lock, folder_lock
from recraft_build.engine.lock import Lock
from test_lock import entry
from recraft_build.errors import LockError


class Clock:
    """A clock whose sleep advances it (so a 60 s timeout takes no time)."""

    def __init__(self) -> None:
        self.t = 0.0

    def now(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.t += s


def test_a_symlink_planted_at_the_old_temp_path_does_not_matter(tmp_path):
    """The old lock lived at /tmp/recraft-build-<hash>.flock: a symlink planted there
    crashed every save with a traceback. Nothing is opened there any more."""
    path = tmp_path / "assets.lock"
    ident = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:24]
    planted = Path(tempfile.gettempdir(), f"recraft-build-{ident}.flock")
    os.symlink(tmp_path / "no-such-folder" / "x", planted)
    try:
        lock = Lock(path, {"a": entry("a")})
        assert lock.save() is True
        assert Lock.load(path).asset("a") == entry("a")
        Lock.update(path, lambda l: l.set_asset("b", entry("b", pick=1)))
        assert Lock.load(path).asset("b").generation.pick == 1
    finally:
        planted.unlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["assets.lock"]  # nothing extra beside it


def test_the_lock_is_exclusive_and_times_out_with_a_clear_error(tmp_path):
    path = tmp_path / "assets.lock"
    held = threading.Event()
    release = threading.Event()

    def holder() -> None:
        with folder_lock(path):
            held.set()
            release.wait(10)

    t = threading.Thread(target=holder)
    t.start()
    try:
        assert held.wait(10)
        clock = Clock()
        with pytest.raises(LockError, match="held the lock file for 60 s"):
            with folder_lock(path, timeout=60, clock=clock.now, sleep=clock.sleep):
                pass  # pragma: no cover - never entered
        assert clock.t >= 60
    finally:
        release.set()
        t.join()
    with folder_lock(path, timeout=1):  # free again
        pass


def test_another_process_waits_for_the_lock(tmp_path):
    path = tmp_path / "assets.lock"
    code = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from recraft_build.engine.folderlock import folder_lock\n"
        "with folder_lock(Path(sys.argv[1]), timeout=0.2):\n"
        "    print('got it')\n"
    )
    with folder_lock(path):
        busy = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True)
    assert busy.returncode != 0 and "held the lock file" in busy.stderr
    free = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True)
    assert free.returncode == 0 and "got it" in free.stdout


def test_fallback_lock_file_beside_the_lock(tmp_path):
    """Where a folder cannot be locked (NFS, Windows), a lock file beside the lock is used."""
    path = tmp_path / "assets.lock"
    with fallback_lock(path, 1.0):
        assert (tmp_path / ".recraft-build" / "assets.lock.flock").is_file()
        with pytest.raises(LockError, match="held the lock file"):
            with fallback_lock(path, 0.1):
                pass  # pragma: no cover - never entered
    with fallback_lock(path, 1.0):
        pass


def test_fallback_refuses_a_symlinked_folder_or_file_without_a_traceback(tmp_path):
    path = tmp_path / "assets.lock"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    os.symlink(elsewhere, tmp_path / ".recraft-build")
    with pytest.raises(LockError, match="symlink"):
        with fallback_lock(path, 1.0):
            pass  # pragma: no cover - never entered
    assert list(elsewhere.iterdir()) == []
    (tmp_path / ".recraft-build").unlink()
    (tmp_path / ".recraft-build").mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    os.symlink(victim, tmp_path / ".recraft-build" / "assets.lock.flock")
    with pytest.raises(LockError, match="symlink"):
        with fallback_lock(path, 1.0):
            pass  # pragma: no cover - never entered
    assert victim.read_text() == "keep"
