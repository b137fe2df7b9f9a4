"""Tests for recraft_build.cache.local: blobs, records, damage, gc, verify, locks, two processes."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import random
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from recraft_build.errors import StoreError
from recraft_build.cache.local import Store, default_cache_dir, referenced_digests

BIG = 100_000  # above diskcache's 32 KB threshold: stored as a value file
SMALL = 1_000  # below it: stored inside the SQLite database


def _data(seed: int, size: int = BIG) -> bytes:
    return random.Random(seed).randbytes(size)


def _value_files(directory: Path) -> list[Path]:
    return sorted((directory / "store").rglob("*.val"))


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def warnings() -> list[str]:
    return []


@pytest.fixture
def store(tmp_path: Path, warnings: list[str]):
    with Store(tmp_path / "cache", warn=warnings.append) as s:
        yield s


# -- blobs ---------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, SMALL, BIG])
def test_blob_round_trip(store: Store, size: int, warnings: list[str]) -> None:
    data = _data(1, size)
    digest = store.put_blob(data)
    assert digest == _sha(data)
    assert store.has_blob(digest)
    assert store.get_blob(digest) == data
    assert warnings == []


def test_put_blob_is_idempotent(store: Store) -> None:
    data = _data(2)
    assert store.put_blob(data) == store.put_blob(data)
    assert store.info().blobs == 1
    assert len(_value_files(store.directory)) == 1


def test_missing_blob_is_a_quiet_miss(store: Store, warnings: list[str]) -> None:
    digest = _sha(b"never stored")
    assert not store.has_blob(digest)
    assert store.get_blob(digest) is None
    assert store.get_blob("not-a-digest") is None
    assert not store.has_blob("")
    assert warnings == []


def test_corrupt_blob_file_is_a_warned_miss_and_is_dropped(
    store: Store, warnings: list[str]
) -> None:
    data = _data(3)
    digest = store.put_blob(data)
    (path,) = _value_files(store.directory)
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    path.write_bytes(bytes(raw))

    assert store.get_blob(digest) is None
    assert len(warnings) == 1
    assert digest in warnings[0] and "corrupt" in warnings[0]
    assert str(store.directory) in warnings[0]
    assert not store.has_blob(digest)  # dropped, so the next build makes it again
    # Putting the right bytes again repairs the entry.
    assert store.put_blob(data) == digest
    assert store.get_blob(digest) == data


def test_corrupt_small_blob_in_database_is_detected(store: Store, warnings: list[str]) -> None:
    data = _data(4, SMALL)
    digest = store.put_blob(data)
    db = sqlite3.connect(store.directory / "store" / "cache.db")
    with db:
        changed = db.execute(
            "UPDATE Cache SET value = ? WHERE key = ?", (data[:-1] + b"!", "blob:" + digest)
        ).rowcount
    db.close()
    assert changed == 1
    assert store.get_blob(digest) is None
    assert warnings and "corrupt" in warnings[0]


def test_blob_whose_file_vanished_is_a_warned_miss(store: Store, warnings: list[str]) -> None:
    digest = store.put_blob(_data(5))
    (path,) = _value_files(store.directory)
    path.unlink()
    assert store.get_blob(digest) is None
    assert warnings and "lost its file" in warnings[0]
    assert not store.has_blob(digest)


def test_put_repairs_a_damaged_copy_without_a_read_first(store: Store) -> None:
    data = _data(6)
    digest = store.put_blob(data)
    (path,) = _value_files(store.directory)
    path.write_bytes(b"garbage")
    store.put_blob(data)
    assert store.get_blob(digest) == data


# -- records -------------------------------------------------------------------------


def test_record_round_trip(store: Store) -> None:
    record = {
        "candidates": ({"sha256": "a" * 64, "media_type": "image/png", "size": 12},),
        "meta": {"image_ids": ["id-1"], "credits": 1.5, "note": "snow ☃"},
    }
    store.put_record("gen:1", record)
    got = store.get_record("gen:1")
    assert got == {
        "candidates": [{"sha256": "a" * 64, "media_type": "image/png", "size": 12}],
        "meta": {"image_ids": ["id-1"], "credits": 1.5, "note": "snow ☃"},
    }
    assert store.has_record("gen:1")
    store.put_record("gen:1", {"replaced": True})
    assert store.get_record("gen:1") == {"replaced": True}
    assert store.get_record("gen:other") is None


def test_record_is_returned_even_when_its_blobs_are_missing(store: Store) -> None:
    store.put_record("k", {"candidates": [{"sha256": "b" * 64}]})
    assert store.get_record("k") == {"candidates": [{"sha256": "b" * 64}]}
    assert not store.has_blob("b" * 64)


def test_record_must_be_json(store: Store) -> None:
    with pytest.raises(TypeError):
        store.put_record("k", {"bad": {1, 2}})
    with pytest.raises(ValueError):
        store.put_record("k", {"bad": float("nan")})
    assert store.get_record("k") is None


def test_damaged_record_is_a_warned_miss(store: Store, warnings: list[str]) -> None:
    store.put_record("k", {"credits": 1})
    db = sqlite3.connect(store.directory / "store" / "cache.db")
    with db:
        (value,) = db.execute("SELECT value FROM Cache WHERE key = ?", ("record:k",)).fetchone()
        # Still valid JSON after the edit: only the checksum can tell.
        damaged = bytes(value).replace(b'"credits":1', b'"credits":7')
        db.execute("UPDATE Cache SET value = ? WHERE key = ?", (damaged, "record:k"))
    db.close()
    assert store.get_record("k") is None
    assert warnings and "record k is corrupt" in warnings[0]
    assert not store.has_record("k")


# -- gc and verify -------------------------------------------------------------------


def test_referenced_digests_convention() -> None:
    record = {
        "sha256": "1" * 64,
        "candidates": [{"sha256": "2" * 64}, {"nested": {"sha256": ["3" * 64, "4" * 64]}}],
        "other": {"digest": "5" * 64, "sha256_of_something": "6" * 64},
    }
    assert referenced_digests(record) == {"1" * 64, "2" * 64, "3" * 64, "4" * 64}


def test_gc_keeps_what_is_reachable(store: Store) -> None:
    kept_nested = store.put_blob(_data(10))
    kept_listed = store.put_blob(_data(11, SMALL))
    kept_direct = store.put_blob(_data(12))
    only_dropped_record = store.put_blob(_data(13))
    unreferenced = store.put_blob(_data(14, SMALL))
    store.put_record("keep", {"candidates": [{"sha256": kept_nested}], "x": {"sha256": [kept_listed]}})
    store.put_record("drop", {"candidates": [{"sha256": only_dropped_record}]})

    result = store.gc({"keep", "not-in-store"}, {kept_direct})

    assert (result.records, result.blobs) == (1, 2)
    assert (result.kept_records, result.kept_blobs) == (1, 3)
    assert result.bytes >= BIG + SMALL
    assert store.get_record("keep") is not None
    assert store.get_record("drop") is None
    for digest in (kept_nested, kept_listed, kept_direct):
        assert store.get_blob(digest) is not None
    for digest in (only_dropped_record, unreferenced):
        assert not store.has_blob(digest)
    assert len(_value_files(store.directory)) == 2  # the dropped blob's file is gone
    info = store.info()
    assert (info.blobs, info.records) == (3, 1)


def test_gc_with_nothing_to_keep_empties_the_store(store: Store) -> None:
    store.put_blob(_data(15))
    store.put_record("r", {"sha256": _sha(_data(15))})
    result = store.gc(set(), set())
    assert (result.blobs, result.records) == (1, 1)
    info = store.info()
    assert (info.blobs, info.records) == (0, 0)


def test_gc_dry_run_counts_what_would_go_and_removes_nothing(store: Store) -> None:
    kept = store.put_blob(_data(17))
    dropped = store.put_blob(_data(18))
    store.put_record("keep", {"sha256": kept})
    store.put_record("drop", {"sha256": dropped})
    debris = store.directory / "store" / "ef" / "01"
    debris.mkdir(parents=True)
    (debris / "old.val").write_bytes(b"o" * 300)
    os.utime(debris / "old.val", (time.time() - 7200, time.time() - 7200))
    files_before = _value_files(store.directory)

    dry = store.gc({"keep"}, set(), dry_run=True)

    assert dry.dry_run and (dry.blobs, dry.records, dry.orphan_files) == (1, 1, 1)
    assert (dry.kept_blobs, dry.kept_records) == (1, 1)
    assert _value_files(store.directory) == files_before
    assert store.get_blob(dropped) is not None and store.get_record("drop") is not None
    real = store.gc({"keep"}, set())
    assert not real.dry_run
    assert (real.blobs, real.records, real.orphan_files, real.bytes) == (1, 1, 1, dry.bytes)
    assert real.bytes >= BIG + 300
    assert store.get_blob(dropped) is None and store.get_blob(kept) is not None


def test_gc_removes_old_debris_of_a_killed_write_but_not_a_fresh_one(store: Store) -> None:
    digest = store.put_blob(_data(16))
    debris_dir = store.directory / "store" / "ab" / "cd"
    debris_dir.mkdir(parents=True)
    old, fresh = debris_dir / "old.val", debris_dir / "fresh.val"
    old.write_bytes(b"o" * 500)
    fresh.write_bytes(b"f" * 500)  # may be another process's write in flight
    two_hours_ago = time.time() - 7200
    os.utime(old, (two_hours_ago, two_hours_ago))

    result = store.gc(set(), {digest})

    assert result.orphan_files == 1 and result.bytes == 500
    assert not old.exists() and fresh.exists()
    assert store.get_blob(digest) == _data(16)


def test_verify_finds_and_drops_corruption(store: Store, warnings: list[str]) -> None:
    good = [store.put_blob(_data(20 + i)) for i in range(2)]
    store.put_blob(_data(30, SMALL))
    clean = store.verify()
    assert clean.ok and clean.checked == 3 and clean.corrupt == []

    bad = store.put_blob(_data(31))
    files = _value_files(store.directory)
    for path in files:  # damage exactly the file holding `bad`
        if path.read_bytes() == _data(31):
            path.write_bytes(b"x" + path.read_bytes()[1:])
    store.put_record("r", {"ok": True})

    result = store.verify()
    assert result.checked == 4
    assert result.corrupt == [bad]
    assert result.records_checked == 1 and result.corrupt_records == []
    assert not result.ok
    assert any(bad in w for w in warnings)
    assert all(store.get_blob(d) is not None for d in good)
    assert store.verify().ok  # the corrupt entry was dropped


# -- info, size limit, errors ----------------------------------------------------------


def test_info_counts(store: Store, tmp_path: Path) -> None:
    info = store.info()
    assert info.directory == tmp_path / "cache"
    assert (info.blobs, info.records, info.size_limit) == (0, 0, None)
    store.put_blob(_data(40))
    store.put_record("a", {})
    info = store.info()
    assert (info.blobs, info.records) == (1, 1)
    assert info.bytes >= BIG


def test_size_limit_is_honoured_least_recently_used_first(tmp_path: Path) -> None:
    limit = 1_000_000
    digests = []
    with Store(tmp_path / "c", size_limit=limit) as s:
        # 2.4 MB into a 1 MB store. diskcache evicts ten entries at a time, so the
        # limit is many blobs wide, as it is in real use (GBs of MB-sized pictures).
        for i in range(60):
            digests.append(s.put_blob(_data(100 + i, 40_000)))
            s.get_blob(digests[0])  # keep the first one recently used
        info = s.info()
        assert info.bytes <= limit
        assert info.size_limit == limit
        assert s.get_blob(digests[0]) is not None
        assert s.get_blob(digests[-1]) is not None
        assert not s.has_blob(digests[1])  # least recently used: evicted


def test_no_size_limit_means_no_eviction_even_after_a_limited_run(tmp_path: Path) -> None:
    with Store(tmp_path / "c", size_limit=300_000) as s:
        s.put_blob(_data(200))
    with Store(tmp_path / "c") as s:
        digests = [s.put_blob(_data(300 + i)) for i in range(12)]
        assert all(s.has_blob(d) for d in digests)
        assert s.info().bytes > 1_000_000


def test_unusable_folder_raises_store_error_naming_it(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(StoreError) as err:
        Store(blocker / "cache")
    message = str(err.value)
    assert str(blocker / "cache") in message
    assert "RECRAFT_BUILD_CACHE" in message and "--cache-dir" in message
    assert err.value.__cause__ is not None


def test_damaged_database_raises_store_error_saying_what_to_do(tmp_path: Path) -> None:
    with Store(tmp_path / "c") as s:
        s.put_blob(b"x")
    db = tmp_path / "c" / "store" / "cache.db"
    for extra in db.parent.glob("cache.db-*"):  # WAL side files
        extra.unlink()
    db.write_bytes(b"this is not a database" * 300)
    with pytest.raises(StoreError, match="damaged") as err:
        Store(tmp_path / "c")
    assert str(tmp_path / "c") in str(err.value)
    assert "--cache-dir" in str(err.value)


def test_size_limit_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        Store(tmp_path / "c", size_limit=0)


def test_close_twice_and_reopen_keeps_data(tmp_path: Path) -> None:
    s = Store(tmp_path / "c")
    digest = s.put_blob(b"kept")
    s.put_record("r", {"sha256": digest})
    s.close()
    s.close()
    with Store(tmp_path / "c") as again:
        assert again.get_blob(digest) == b"kept"
        assert again.get_record("r") == {"sha256": digest}


def test_default_cache_dir() -> None:
    assert default_cache_dir({"RECRAFT_BUILD_CACHE": "/x/y", "XDG_CACHE_HOME": "/xdg"}) == Path("/x/y")
    assert default_cache_dir({"RECRAFT_BUILD_CACHE": "~/c", "HOME": "/home/u"}) == Path("/home/u/c")
    assert default_cache_dir({"XDG_CACHE_HOME": "/xdg", "HOME": "/h"}) == Path("/xdg/recraft-build")
    # Empty or relative XDG_CACHE_HOME is ignored, as the XDG spec says.
    assert default_cache_dir({"XDG_CACHE_HOME": "", "HOME": "/h"}) == Path("/h/.cache/recraft-build")
    assert default_cache_dir({"XDG_CACHE_HOME": "rel", "HOME": "/h"}) == Path("/h/.cache/recraft-build")
    assert default_cache_dir({"RECRAFT_BUILD_CACHE": "", "HOME": "/h"}) == Path("/h/.cache/recraft-build")


# -- locks ---------------------------------------------------------------------------


def test_key_lock_makes_threads_pay_once(store: Store) -> None:
    made = []
    barrier = threading.Barrier(8)

    def build() -> None:
        barrier.wait()
        with store.key_lock("gen:same"):
            if store.get_record("gen:same") is None:
                made.append(1)
                time.sleep(0.01)  # widen the window a broken lock would leave open
                store.put_record("gen:same", {"made": True})

    threads = [threading.Thread(target=build) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(made) == 1


def test_key_lock_different_keys_do_not_block(store: Store) -> None:
    got = []
    with store.key_lock("a"):
        t = threading.Thread(target=lambda: got.append(_try_lock(store, "b")))
        t.start()
        t.join()
        assert got == [True]
        assert _try_lock_other_thread(store, "a") is False


def _try_lock(store: Store, key: str, timeout: float = 10.0) -> bool:
    try:
        with store.key_lock(key, timeout=timeout):
            return True
    except StoreError:
        return False


def _try_lock_other_thread(store: Store, key: str) -> bool:
    out = []
    t = threading.Thread(target=lambda: out.append(_try_lock(store, key, timeout=0.1)))
    t.start()
    t.join()
    return out[0]


# Workers for the two-process tests live at module level so "spawn" can import them.


def _worker_put(directory: str, seeds: list[int], barrier) -> None:
    barrier.wait()
    with Store(Path(directory)) as s:
        for seed in seeds:
            s.put_blob(_data(seed, BIG if seed % 2 else SMALL))
            s.put_record(f"rec-{seed}", {"sha256": _sha(_data(seed, BIG if seed % 2 else SMALL))})


def _worker_hold(directory: str, key: str, held, release) -> None:
    with Store(Path(directory)) as s, s.key_lock(key):
        held.set()
        release.wait(60)


def _worker_count(directory: str, counter: str, barrier, rounds: int) -> None:
    path = Path(counter)
    with Store(Path(directory)) as s:
        barrier.wait()
        for _ in range(rounds):
            with s.key_lock("counter"):
                value = int(path.read_text())
                time.sleep(0.002)  # a broken lock would lose updates here
                path.write_text(str(value + 1))


def _spawn():
    return multiprocessing.get_context("spawn")


def test_two_processes_write_same_and_different_blobs_at_once(tmp_path: Path) -> None:
    ctx = _spawn()
    directory = tmp_path / "shared"  # created by the two racing processes themselves
    barrier = ctx.Barrier(2)
    shared = list(range(1000, 1016))
    procs = [
        ctx.Process(target=_worker_put, args=(str(directory), shared + list(range(2000, 2016)), barrier)),
        ctx.Process(target=_worker_put, args=(str(directory), list(reversed(shared)) + list(range(3000, 3016)), barrier)),
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0]

    warnings: list[str] = []
    with Store(directory, warn=warnings.append) as s:
        seeds = shared + list(range(2000, 2016)) + list(range(3000, 3016))
        for seed in seeds:
            data = _data(seed, BIG if seed % 2 else SMALL)
            assert s.get_blob(_sha(data)) == data
            assert s.get_record(f"rec-{seed}") == {"sha256": _sha(data)}
        info = s.info()
        assert (info.blobs, info.records) == (48, 48)
        assert s.verify().ok
    assert warnings == []
    # No stray value files: one file per big blob.
    assert len(_value_files(directory)) == sum(1 for seed in seeds if seed % 2)


def test_key_lock_excludes_another_process(tmp_path: Path) -> None:
    ctx = _spawn()
    held, release = ctx.Event(), ctx.Event()
    proc = ctx.Process(target=_worker_hold, args=(str(tmp_path / "c"), "gen:k", held, release))
    proc.start()
    try:
        assert held.wait(60)
        with Store(tmp_path / "c") as s:
            with pytest.raises(StoreError, match="another build"):
                with s.key_lock("gen:k", timeout=0.2):
                    pass
            assert _try_lock(s, "gen:other")
            release.set()
            proc.join(60)
            assert proc.exitcode == 0
            assert _try_lock(s, "gen:k")
    finally:
        release.set()
        proc.join(60)


def test_key_lock_serialises_two_processes(tmp_path: Path) -> None:
    ctx = _spawn()
    counter = tmp_path / "counter"
    counter.write_text("0")
    Store(tmp_path / "c").close()
    barrier = ctx.Barrier(2)
    procs = [
        ctx.Process(target=_worker_count, args=(str(tmp_path / "c"), str(counter), barrier, 25))
        for _ in range(2)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0]
    assert counter.read_text() == "50"


# -- batch ---------------------------------------------------------------------


@pytest.mark.parametrize("size", [SMALL, BIG])
def test_a_batch_stores_blobs_and_their_record_together(store: Store, tmp_path: Path, size: int) -> None:
    data = _data(11, size)
    with Store(tmp_path / "cache") as other:  # another build on the same cache
        with store.batch():
            digest = store.put_blob(data)
            store.put_record("k", {"sha256": digest})
            # Not visible to the other build until the batch ends.
            assert (other.has_blob(digest), other.get_record("k")) == (False, None)
        assert other.get_blob(digest) == data
        assert other.get_record("k") == {"sha256": digest}


def test_a_failed_batch_leaves_neither_the_blob_nor_its_record(store: Store) -> None:
    data = _data(12, SMALL)
    with pytest.raises(RuntimeError):
        with store.batch():
            digest = store.put_blob(data)
            store.put_record("k", {"sha256": digest})
            raise RuntimeError("the asset failed")
    assert not store.has_blob(digest)
    assert store.get_record("k") is None
    store.put_blob(data)  # and the store works on
    assert store.get_blob(digest) == data


def test_other_threads_write_while_and_after_a_batch_runs(store: Store) -> None:
    started, errors = threading.Event(), []

    def writer(i: int) -> None:
        started.wait()
        try:
            store.put_record(f"t{i}", {"i": i})
            store.put_blob(_data(100 + i, SMALL))
        except Exception as exc:  # pragma: no cover - the failure being tested for
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    with store.batch():
        started.set()
        time.sleep(0.05)  # the others wait for the batch, they do not fail
        store.put_record("mine", {"i": -1})
    for t in threads:
        t.join()
    assert errors == []
    assert [store.get_record(f"t{i}") for i in range(4)] == [{"i": i} for i in range(4)]
    assert store.get_record("mine") == {"i": -1}
