from __future__ import annotations

import json

import pytest

from pathlib import Path

from recraft_build.errors import LockError
from recraft_build.engine.lock import Lock
from recraft_build.engine.lockdata import LockedAsset, LockedStyle

DATA = Path(__file__).parent / "data"


def entry(tag: str, pick: int = 0, n: int = 3) -> LockedAsset:
    """A valid lock entry, told apart by ``tag`` (one hex digit)."""
    return LockedAsset.from_json(raw(tag, pick, n))


def raw(tag: str, pick: int = 0, n: int = 3) -> dict:
    return {
        "generation": {
            "key": tag * 64, "family": "recraft", "provider": "recraft", "credits": 40,
            "request": {"prompt": "p"}, "pick": pick,
            "candidates": [{"sha256": f"{i}" * 64, "media_type": "image/png"} for i in range(n)],
        },
        "steps": [],
        "outputs": [{"path": "a.png", "key": "e" * 64, "steps": [], "files": [{"path": "a.png", "sha256": "f" * 64}]}],
    }


def test_missing_lock_is_empty_and_not_written(tmp_path):
    lock = Lock.load(tmp_path / "assets.lock")
    assert lock.asset_names() == []
    assert lock.save() is False
    assert not (tmp_path / "assets.lock").exists()


def test_round_trip_sorted_and_stable(tmp_path):
    path = tmp_path / "assets.lock"
    lock = Lock.load(path)
    lock.set_asset("b", entry("b"))
    lock.set_asset("a", entry("a"))
    assert lock.save() is True
    text = path.read_text()
    assert text.index('"a"') < text.index('"b"')
    assert json.loads(text)["version"] == 1
    again = Lock.load(path)
    assert again.asset("a") == entry("a")
    assert again.save() is False  # unchanged: not rewritten


def test_retain_drops_removed_assets(tmp_path):
    lock = Lock(tmp_path / "x.lock", {"a": entry("a"), "b": entry("b")})
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
    lock = Lock(tmp_path / "a.lock", {"a": entry("a")})
    lock.save()
    assert [p.name for p in tmp_path.iterdir()] == ["a.lock"]


def test_concurrent_writer_changes_to_other_assets_are_kept(tmp_path):
    path = tmp_path / "assets.lock"
    Lock(path, {"a": entry("a"), "b": entry("b")}).save()
    build = Lock.load(path)            # a long build has the lock in memory
    Lock.update(path, lambda l: l.set_asset("b", entry("b", pick=2)))   # a pick lands meanwhile
    build.set_asset("a", entry("a", pick=1))  # the build finishes asset a
    build.save()
    final = Lock.load(path)
    assert final.asset("a").generation.pick == 1
    assert final.asset("b").generation.pick == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["assets.lock"]


def test_text_is_exactly_sorted_indented_json(tmp_path):
    assets = {"b": raw("b"), "a": raw("a", n=1), "c\"q": raw("c", pick=1)}
    assets["b"]["generation"]["candidates"][0]["meta"] = {"z": None, "a": "é", "n": 1.5}
    styles = {"s": {"key": "d" * 64, "style_id": "id"}}
    lock = Lock(
        tmp_path / "a.lock",
        {k: LockedAsset.from_json(v) for k, v in assets.items()},
        {k: LockedStyle.from_json(v) for k, v in styles.items()},
    )
    expected = json.dumps({"version": 1, "assets": assets, "styles": styles}, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    assert lock.to_text() == expected
    lock.set_asset("a", entry("9"))
    assets["a"] = entry("9").to_json()
    expected = json.dumps({"version": 1, "assets": assets, "styles": styles}, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    assert lock.to_text() == expected


@pytest.mark.parametrize("name", ["website-v0.1.0.lock", "game-icons-v0.1.0.lock"])
def test_a_lock_written_by_the_previous_release_loads_and_is_kept_byte_for_byte(tmp_path, name):
    text = (DATA / name).read_text()
    path = tmp_path / "assets.lock"
    path.write_text(text)
    lock = Lock.load(path)
    assert lock.asset_names() and all(lock.asset(n).generation.candidates for n in lock.asset_names())
    assert lock.to_text() == text
    # Touching one entry rewrites only that entry.
    first = lock.asset_names()[0]
    e = lock.asset(first)
    lock.set_asset(first, e.with_generation(e.generation.replace(pick=0)))
    lock.save()
    new = json.loads(path.read_text())["assets"]
    old = json.loads(text)["assets"]
    assert {n: v for n, v in new.items() if n != first} == {n: v for n, v in old.items() if n != first}


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d["generation"].__setitem__("candidates", "x"), "generation.candidates"),
        (lambda d: d["generation"]["candidates"][1].__setitem__("sha256", "../../etc"), "generation.candidates[1].sha256"),
        (lambda d: d["generation"].__setitem__("pick", 7), "generation.pick"),
        (lambda d: d["generation"].__setitem__("pick", "1"), "generation.pick"),
        (lambda d: d["outputs"][0]["files"][0].__setitem__("path", "../victim.txt"), "outputs[0].files[0].path"),
        (lambda d: d["outputs"][0]["files"][0].__setitem__("path", "/etc/passwd"), "outputs[0].files[0].path"),
        # The spec's own rule for output names (recraft_build.relpath), not a looser copy:
        (lambda d: d["outputs"][0]["files"][0].__setitem__("path", "icons/CON.png"), "outputs[0].files[0].path"),
        (lambda d: d["outputs"][0].__setitem__("path", "icons/.rbtmp-x.png"), "outputs[0].path"),
        (lambda d: d["outputs"][0]["files"][0].__setitem__("path", "icons/./a.png"), "outputs[0].files[0].path"),
        (lambda d: d["outputs"][0]["files"][0].__setitem__("path", "a?.png"), "outputs[0].files[0].path"),
        (lambda d: d.__setitem__("steps", {"a": 1}), "steps"),
        (lambda d: d.pop("generation"), "generation"),
        (lambda d: d["outputs"][0].__setitem__("key", None), "outputs[0].key"),
    ],
)
def test_a_badly_shaped_entry_is_a_clear_lock_error(tmp_path, mutate, field):
    data = raw("a")
    mutate(data)
    path = tmp_path / "assets.lock"
    path.write_text(json.dumps({"version": 1, "assets": {"hero": data}, "styles": {}}))
    with pytest.raises(LockError) as info:
        Lock.load(path)
    message = str(info.value)
    assert str(path) in message and "'hero'" in message and field in message


def test_a_badly_shaped_lock_exits_3_in_every_command_that_reads_it(tmp_path):
    from recraft_build.cli import main

    spec = tmp_path / "assets.yaml"
    spec.write_text("version: 1\nassets:\n  - name: hero\n    prompt: a hero\n    output: hero.png\n")
    data = raw("a")
    data["generation"]["candidates"] = [{"sha256": 5}]
    (tmp_path / "assets.lock").write_text(json.dumps({"version": 1, "assets": {"hero": data}, "styles": {}}))
    cache = ["--cache-dir", str(tmp_path / "cache")]
    for argv in (["plan"], ["build"], ["status"], ["pick", "hero", "0"], ["reroll", "hero"], ["clean"],
                 ["gallery"], ["cache", "gc"]):
        args = argv + ["-f", str(spec)] + ([] if argv[0] in ("clean",) else cache)
        assert main(args) == 3, argv


def test_the_fast_path_and_the_checked_path_accept_the_same_entries():
    """Well-formed entries are read by a fast path; it must accept and build exactly
    what the field-by-field checker does, and leave every refusal to it."""
    import copy
    import itertools

    from recraft_build.engine.lockdata import _Unusual, _fast_asset
    from recraft_build.jsonshape import ShapeError

    base = raw("a")
    base["steps"] = [{"step": "trim", "key": "1" * 64, "sha256": "2" * 64}]
    base["outputs"][0]["steps"] = [{"step": "resize", "key": "3" * 64, "sha256": "4" * 64}]
    samples = [base]
    bad_values = [None, "", "x", 5, -1, 1.5, True, [], {}, "A" * 64, "../x", "/abs", "a//b", "C:x", "g" * 64,
                  "NUL.txt", "a/.rbtmp-b", "a/./b", "a\tb"]
    paths = [("generation", "key"), ("generation", "pick"), ("generation", "family"), ("generation", "provider"),
             ("generation", "credits"), ("generation", "roll"), ("generation", "request"), ("generation", "candidates"),
             ("steps",), ("outputs",)]
    for path, value in itertools.product(paths, bad_values):
        d = copy.deepcopy(base)
        target = d
        for k in path[:-1]:
            target = target[k]
        target[path[-1]] = value
        samples.append(d)
    for field, value in itertools.product(["sha256", "media_type", "width", "meta"], bad_values):
        d = copy.deepcopy(base)
        d["generation"]["candidates"][0][field] = value
        samples.append(d)
    for field, value in itertools.product(["path", "sha256", "bytes", "format"], bad_values):
        d = copy.deepcopy(base)
        d["outputs"][0]["files"][0][field] = value
        samples.append(d)
    for field, value in itertools.product(["path", "key", "files", "steps"], bad_values):
        d = copy.deepcopy(base)
        d["outputs"][0][field] = value
        samples.append(d)
    for d in samples:
        try:
            checked = LockedAsset._checked(d, "")
        except ShapeError:
            checked = None
        try:
            fast = _fast_asset(d)
        except _Unusual:
            fast = None
        if fast is not None:
            assert checked is not None and fast == checked, d


def test_unchanged_on_disk_follows_reads_writes_and_other_writers(tmp_path):
    path = tmp_path / "assets.lock"
    assert Lock.load(path).unchanged_on_disk()  # no file, nothing in memory
    lock = Lock.load(path)
    lock.set_asset("a", entry("a"))
    assert not lock.unchanged_on_disk()  # unsaved
    lock.save()
    assert lock.unchanged_on_disk()
    other = Lock.load(path)
    assert other.unchanged_on_disk()
    other.set_asset("b", entry("b"))
    other.save()
    assert not lock.unchanged_on_disk()  # someone else wrote the file
    both = Lock.load(path)
    assert both.unchanged_on_disk()
    assert both.retain(["a"]) == ["b"]
    assert not both.unchanged_on_disk()  # dropped in memory, not yet saved


def test_rewriting_the_same_entries_leaves_the_lock_in_step_with_its_file(tmp_path):
    # A restore re-records entries equal to the lock's: nothing to write, nothing unsaved.
    path = tmp_path / "assets.lock"
    lock = Lock.load(path)
    lock.set_asset("a", entry("a"))
    lock.save()
    again = Lock.load(path)
    stamp = path.stat().st_mtime_ns
    again.set_asset("a", entry("a"))
    assert again.unchanged_on_disk()  # nothing unsaved
    assert again.save() is False  # same bytes: not written
    assert again.unchanged_on_disk() and path.stat().st_mtime_ns == stamp
