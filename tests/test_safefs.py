"""Atomic writes with the umask, and folders walked without following symlinks."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from recraft_build.engine.lock import atomic_write_bytes
from recraft_build.engine.safefs import TEMP_PREFIX, USE_DIR_FD, Folder, NotFollowed, inside, write_atomic


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_atomic_write_honours_the_umask_and_leaves_no_temp(tmp_path, umask_022):
    atomic_write_bytes(tmp_path / "sub" / "a.json", b"{}")
    assert (tmp_path / "sub" / "a.json").read_bytes() == b"{}"
    assert oct(os.stat(tmp_path / "sub" / "a.json").st_mode & 0o777) == oct(0o644)
    assert os.listdir(tmp_path / "sub") == ["a.json"]


def test_a_failed_write_removes_its_temp_file(tmp_path):
    (tmp_path / "a.png").mkdir()  # renaming a file over a folder fails
    with pytest.raises(OSError):
        write_atomic(tmp_path, "a.png", b"x", durable=True)
    assert [p.name for p in tmp_path.iterdir()] == ["a.png"]


def test_a_long_name_still_gets_a_temp_file(tmp_path):
    name = "n" * 250 + ".png"
    write_atomic(tmp_path, name, b"x", durable=False)
    assert (tmp_path / name).read_bytes() == b"x"


def test_posix_walks_folders_by_descriptor():
    if sys.platform.startswith(("linux", "darwin", "freebsd")):
        assert USE_DIR_FD


@pytest.mark.parametrize("by_fd", [True, False], ids=["dir-fd", "checked-paths"])
def test_walk_refuses_symlinks_and_files_on_the_way(tmp_path, by_fd):
    root = tmp_path / "root"
    (root / "a").mkdir(parents=True)
    (root / "file").write_bytes(b"x")
    os.symlink(tmp_path, root / "a" / "link")

    def top() -> Folder:
        folder = Folder.open_root(root)
        if by_fd:
            assert folder.fd is not None, "this platform should walk folders by descriptor"
        else:  # the path-checking variant used where dir_fd is missing (Windows)
            folder.close()
            folder = Folder(root, None)
        return folder

    with top() as t:
        with pytest.raises(NotFollowed) as info:
            t.walk(["a", "link", "b"], create=True)
        assert info.value.rel == "a/link" and info.value.what == "a symlink"
        with pytest.raises(NotFollowed) as info:
            t.walk(["file", "b"])
        assert info.value.what == "not a folder"
        with t.walk(["a", "new", "deeper"], create=True) as deep:
            deep.write_atomic("x.png", b"data")
            assert deep.sha256("x.png")[0] == "3a6eb0790f39ac87c94f3856b2dd2c5d110e6811602261a9a923d3bb23adc8b7"
        with t.walk(["a"]) as a:
            with pytest.raises(NotFollowed):
                a.sha256("link")
    assert (root / "a" / "new" / "deeper" / "x.png").read_bytes() == b"data"
    assert not [p for p in root.rglob(f"{TEMP_PREFIX}*")]
    assert not (tmp_path / "b").exists()


def test_inside_follows_symlinks(tmp_path):
    (tmp_path / "p" / "real").mkdir(parents=True)
    os.symlink(tmp_path / "p" / "real", tmp_path / "p" / "in")
    os.symlink(tmp_path, tmp_path / "p" / "out")
    assert inside(tmp_path / "p", tmp_path / "p" / "in")
    assert inside(tmp_path / "p", tmp_path / "p")
    assert inside(tmp_path / "p", tmp_path / "p" / "not-yet")
    assert not inside(tmp_path / "p", tmp_path / "p" / "out")
    assert not inside(tmp_path / "p", Path(str(tmp_path / "p") + "-sibling"))
