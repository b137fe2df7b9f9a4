from __future__ import annotations

import json
import os

import pytest

from recraft_build.errors import OutputError
from recraft_build.engine.outputs import OutputState, safe_output_path, sweep_temp_files, write_manifest, write_output


@pytest.mark.parametrize("bad", ["/etc/passwd", "../x.png", "a/../../x.png", "a\\b.png", "manifest.json"])
def test_paths_leaving_the_folder_are_refused(tmp_path, bad):
    with pytest.raises(OutputError):
        safe_output_path(tmp_path, bad)


def test_symlink_pointing_outside_is_refused(tmp_path):
    out = tmp_path / "out"
    outside = tmp_path / "outside"
    out.mkdir()
    outside.mkdir()
    os.symlink(outside, out / "icons")
    with pytest.raises(OutputError, match="outside the output folder"):
        write_output(out, "icons/a.png", b"x")
    assert list(outside.iterdir()) == []


def test_write_is_atomic_and_creates_folders(tmp_path):
    p = write_output(tmp_path, "a/b/c.png", b"data")
    assert p.read_bytes() == b"data"
    assert [x.name for x in (tmp_path / "a" / "b").iterdir()] == ["c.png"]


def test_sweep_removes_partial_files(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / ".rbtmp-x.png.abc").write_bytes(b"partial")
    (tmp_path / "d" / "keep.png").write_bytes(b"ok")
    assert sweep_temp_files(tmp_path) == 1
    assert [x.name for x in (tmp_path / "d").iterdir()] == ["keep.png"]


def test_state_detects_hand_edits_and_survives_reload(tmp_path):
    write_output(tmp_path, "a.png", b"one")
    st = OutputState(tmp_path)
    first = st.observe("a.png")
    st.record("a.png", first)
    st.save()
    st2 = OutputState(tmp_path)
    assert st2.observe("a.png") == first
    (tmp_path / "a.png").write_bytes(b"two!")
    assert st2.observe("a.png") != first
    assert st2.observe("missing.png") is None


def test_manifest_sorted_and_rewritten_only_on_change(tmp_path):
    files = {"b": [{"path": "z.png", "sha256": "1"}, {"path": "a.png", "sha256": "2"}], "a": []}
    assert write_manifest(tmp_path, files) is True
    data = json.loads((tmp_path / "manifest.json").read_text())
    assert list(data["assets"]) == ["a", "b"]
    assert [f["path"] for f in data["assets"]["b"]["outputs"]] == ["a.png", "z.png"]
    assert write_manifest(tmp_path, files) is False
