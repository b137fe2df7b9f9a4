from __future__ import annotations

import json

import pytest

from recraft_build.errors import LockError
from recraft_build.engine.lock import Lock


def test_missing_lock_is_empty_and_not_written(tmp_path):
    lock = Lock.load(tmp_path / "assets.lock")
    assert lock.asset_names() == []
    assert lock.save() is False
    assert not (tmp_path / "assets.lock").exists()


def test_round_trip_sorted_and_stable(tmp_path):
    path = tmp_path / "assets.lock"
    lock = Lock.load(path)
    lock.set_asset("b", {"generation": {"key": "k2", "pick": 0}})
    lock.set_asset("a", {"generation": {"key": "k1", "pick": 0}})
    assert lock.save() is True
    text = path.read_text()
    assert text.index('"a"') < text.index('"b"')
    assert json.loads(text)["version"] == 1
    again = Lock.load(path)
    assert again.asset("a") == {"generation": {"key": "k1", "pick": 0}}
    assert again.save() is False  # unchanged: not rewritten


def test_retain_drops_removed_assets(tmp_path):
    lock = Lock(tmp_path / "x.lock", {"a": {}, "b": {}})
    assert lock.retain(["a"]) == ["b"]
    assert lock.asset_names() == ["a"]


def test_merge_conflict_is_a_clear_error(tmp_path):
    path = tmp_path / "assets.lock"
    path.write_text('{\n<<<<<<< HEAD\n"version": 1\n=======\n')
    with pytest.raises(LockError, match="merge conflict"):
        Lock.load(path)


def test_wrong_version_is_refused(tmp_path):
    path = tmp_path / "assets.lock"
    path.write_text('{"version": 99, "assets": {}}')
    with pytest.raises(LockError, match="version 1"):
        Lock.load(path)


def test_save_is_atomic_no_temp_left(tmp_path):
    lock = Lock(tmp_path / "a.lock", {"a": {"x": 1}})
    lock.save()
    assert [p.name for p in tmp_path.iterdir()] == ["a.lock"]


def test_concurrent_writer_changes_to_other_assets_are_kept(tmp_path):
    path = tmp_path / "assets.lock"
    Lock(path, {"a": {"pick": 0}, "b": {"pick": 0}}).save()
    build = Lock.load(path)            # a long build has the lock in memory
    Lock.update(path, lambda l: l.set_asset("b", {"pick": 2}))   # a pick lands meanwhile
    build.set_asset("a", {"pick": 1})  # the build finishes asset a
    build.save()
    final = Lock.load(path)
    assert final.asset("a") == {"pick": 1}
    assert final.asset("b") == {"pick": 2}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["assets.lock"]


def test_text_is_exactly_sorted_indented_json(tmp_path):
    assets = {"b": {"x": [1, {"z": None, "a": "é"}]}, "a": {}, "c\"q": {"k": {"n": 1.5}}}
    styles = {"s": {"key": "k", "style_id": "id"}}
    lock = Lock(tmp_path / "a.lock", assets, styles)
    expected = json.dumps({"version": 1, "assets": assets, "styles": styles}, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    assert lock.to_text() == expected
    lock.set_asset("a", {"new": True})
    assets["a"] = {"new": True}
    expected = json.dumps({"version": 1, "assets": assets, "styles": styles}, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    assert lock.to_text() == expected
    assert Lock(tmp_path / "b.lock").to_text() == json.dumps({"version": 1, "assets": {}, "styles": {}}, sort_keys=True, indent=2) + "\n"
