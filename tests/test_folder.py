"""Tests of recraft_build.cache.folder: a folder (shared drive, repository folder) as the
shared remote cache. Everything runs on tmp_path; nothing needs a server."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from cache_fakes import Provider, Warnings, action_key, build, sha
from recraft_build.cache.codec import encode_ac_entry
from recraft_build.cache.folder import FolderCache, folder_path, is_folder_location
from recraft_build.cache.local import Store
from recraft_build.cache.remote_base import PutResult
from recraft_build.cache.remotes import open_remote
from recraft_build.cache.tiered import TieredStore
from recraft_build.errors import UsageError

PICTURE = b"\x89PNG picture bytes " * 100


@pytest.fixture
def shared(tmp_path: Path) -> Path:
    folder = tmp_path / "shared"
    folder.mkdir()
    return folder


def folder_cache(location: str | Path, warnings: Warnings | None = None, **kw) -> FolderCache:
    kw.setdefault("sleep", lambda seconds: None)
    return FolderCache(str(location), warn=warnings if warnings is not None else Warnings(), **kw)


def files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


# -- locations ---------------------------------------------------------------------------


def test_locations_file_urls_and_plain_paths(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert folder_path("file:///srv/art%20cache") == Path("/srv/art cache")
    assert folder_path("file://localhost/srv/cache") == Path("/srv/cache")
    assert folder_path("art-cache") == tmp_path / "art-cache"
    assert folder_path(str(tmp_path / "x")) == tmp_path / "x"
    for location in ("file:///a", "./a", "/a", "C:/cache", "cache.internal"):
        assert is_folder_location(location)
    for location in ("http://h", "s3://b/p", "ftp://h/x"):
        assert not is_folder_location(location)


@pytest.mark.parametrize(
    ("location", "what"),
    [
        ("file://fileserver/share", "another machine"),
        ("file:relative/path", "absolute path"),
        ("file:///srv/cache?x=1", "query"),
        ("  ", "empty"),
    ],
)
def test_bad_locations_are_usage_errors(location: str, what: str) -> None:
    with pytest.raises(UsageError, match=what):
        folder_path(location)


def test_an_unknown_scheme_names_what_is_accepted() -> None:
    with pytest.raises(UsageError, match=r"http\(s\)://.*s3://.*folder"):
        open_remote("ftp://host/cache", env={}, mode="read-write", warn=Warnings())


def test_open_remote_picks_the_folder_without_a_client(shared: Path) -> None:
    remote, client = open_remote(f"file://{shared}", env={}, mode="read", warn=Warnings())
    assert isinstance(remote, FolderCache) and client is None
    assert remote.mode == "read" and remote.url == str(shared)


# -- the contract --------------------------------------------------------------------------


def test_blob_and_record_round_trip_in_the_http_layout(shared: Path) -> None:
    warnings = Warnings()
    remote = folder_cache(shared, warnings)
    digest = sha(PICTURE)
    key = action_key("hero")
    record = {"picture": {"sha256": digest}, "credits": 1}
    assert remote.put_blob(PICTURE) is PutResult.UPLOADED
    assert remote.put_record(key, record) is PutResult.UPLOADED
    assert files(shared) == [f"ac/{key}", f"cas/{digest}"]  # no temp file left behind
    # The same bytes as the HTTP and S3 remotes store: one folder can seed the other.
    assert (shared / "ac" / key).read_bytes() == encode_ac_entry(key, record)
    assert (shared / "cas" / digest).read_bytes() == PICTURE
    assert remote.get_blob(digest) == PICTURE
    assert remote.get_record(key) == record
    assert remote.has_blob(digest) and remote.has_record(key)
    assert not remote.has_blob(sha(b"other")) and remote.get_record(action_key("x")) is None
    assert warnings == []
    assert remote.traffic()["received"] >= len(PICTURE)


def test_a_big_blob_already_there_is_not_written_again(shared: Path) -> None:
    remote = folder_cache(shared)
    big = os.urandom(100 * 1024)
    assert remote.put_blob(big) is PutResult.UPLOADED
    stamp = (shared / "cas" / sha(big)).stat().st_mtime_ns
    assert remote.put_blob(big) is PutResult.PRESENT
    assert (shared / "cas" / sha(big)).stat().st_mtime_ns == stamp


def test_files_are_readable_by_the_drives_other_users(shared: Path) -> None:
    old = os.umask(0o022)
    try:
        folder_cache(shared).put_blob(PICTURE)
    finally:
        os.umask(old)
    assert (shared / "cas" / sha(PICTURE)).stat().st_mode & 0o777 == 0o644


def test_a_corrupt_blob_is_a_warned_miss(shared: Path) -> None:
    warnings = Warnings()
    remote = folder_cache(shared, warnings)
    remote.put_blob(PICTURE)
    path = shared / "cas" / sha(PICTURE)
    path.write_bytes(PICTURE[:-1] + b"!")
    assert remote.get_blob(sha(PICTURE)) is None
    assert len(warnings) == 1 and "wrong bytes" in warnings[0] and str(path) in warnings[0]


def test_a_record_for_another_key_is_refused(shared: Path) -> None:
    warnings = Warnings()
    remote = folder_cache(shared, warnings)
    remote.put_record(action_key("a"), {"x": 1})
    (shared / "ac" / action_key("a")).rename(shared / "ac" / action_key("b"))
    assert remote.get_record(action_key("b")) is None
    assert len(warnings) == 1 and "unreadable action record" in warnings[0]


def test_read_mode_never_writes(shared: Path) -> None:
    remote = folder_cache(shared, mode="read")
    assert remote.put_blob(PICTURE) is PutResult.SKIPPED
    assert remote.put_record(action_key("a"), {"x": 1}) is PutResult.SKIPPED
    assert files(shared) == []


def test_a_missing_folder_is_one_warning_then_quick_misses(tmp_path: Path) -> None:
    warnings = Warnings()
    remote = folder_cache(tmp_path / "not-mounted", warnings)
    assert remote.get_blob(sha(b"x")) is None
    assert remote.put_blob(PICTURE) is PutResult.SKIPPED
    assert remote.get_record(action_key("a")) is None
    assert not remote.available
    assert len(warnings) == 1 and "does not exist" in warnings[0]
    assert not (tmp_path / "not-mounted").exists()  # never created behind the user's back


def test_a_write_replaces_a_link_at_the_final_name_instead_of_writing_through_it(
    shared: Path, tmp_path: Path
) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious")
    (shared / "ac").mkdir()
    key = action_key("a")
    (shared / "ac" / key).symlink_to(victim)
    remote = folder_cache(shared)
    assert remote.put_record(key, {"x": 1}) is PutResult.UPLOADED
    assert victim.read_bytes() == b"precious"
    assert not (shared / "ac" / key).is_symlink()
    assert remote.get_record(key) == {"x": 1}


def test_links_out_of_the_folder_are_refused(shared: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    (outside / "cas").mkdir(parents=True)
    (outside / "cas" / sha(PICTURE)).write_bytes(PICTURE)
    (outside / "record.json").write_bytes(encode_ac_entry(action_key("a"), {"x": 1}))
    # A file linked out of the folder: a miss with one warning.
    (shared / "ac").mkdir()
    (shared / "ac" / action_key("a")).symlink_to(outside / "record.json")
    warnings = Warnings()
    remote = folder_cache(shared, warnings)
    assert remote.get_record(action_key("a")) is None
    assert not remote.has_record(action_key("a"))
    assert len(warnings) == 1 and "leads out of the folder" in warnings[0]
    # The whole cas/ folder linked out: reads miss, and the first upload turns uploads off.
    (shared / "cas").symlink_to(outside / "cas")
    assert remote.get_blob(sha(PICTURE)) is None
    assert remote.put_blob(b"new picture") is PutResult.FAILED
    assert not remote.can_write
    assert not (outside / "cas" / sha(b"new picture")).exists()
    assert sum("leads out of the folder" in w for w in warnings) == 3


def test_links_that_stay_inside_the_folder_are_followed(shared: Path) -> None:
    (shared / "store" / "cas").mkdir(parents=True)
    (shared / "cas").symlink_to(shared / "store" / "cas")
    remote = folder_cache(shared)
    assert remote.put_blob(PICTURE) is PutResult.UPLOADED
    assert (shared / "store" / "cas" / sha(PICTURE)).read_bytes() == PICTURE
    assert remote.get_blob(sha(PICTURE)) == PICTURE


def test_the_folder_itself_may_be_a_link(shared: Path, tmp_path: Path) -> None:
    (tmp_path / "mnt").symlink_to(shared)
    remote = folder_cache(tmp_path / "mnt")
    assert remote.put_blob(PICTURE) is PutResult.UPLOADED
    assert (shared / "cas" / sha(PICTURE)).exists()


def test_git_lfs_pointers_say_to_pull(shared: Path) -> None:
    digest = sha(PICTURE)
    (shared / "cas").mkdir()
    (shared / "cas" / digest).write_text(
        f"version https://git-lfs.github.com/spec/v1\noid sha256:{digest}\nsize {len(PICTURE)}\n"
    )
    warnings = Warnings()
    remote = folder_cache(shared, warnings)
    assert remote.get_blob(digest) is None
    assert remote.get_blob(digest) is None
    assert len(warnings) == 1 and "git lfs pull" in warnings[0]
    assert remote.available


def test_a_file_where_a_folder_should_be_turns_uploads_off_once(shared: Path) -> None:
    (shared / "cas").write_bytes(b"not a folder")
    warnings = Warnings()
    remote = folder_cache(shared, warnings)
    assert remote.put_blob(PICTURE) is PutResult.FAILED
    assert remote.put_blob(b"second") is PutResult.SKIPPED
    assert len(warnings) == 1 and "uploads are off" in warnings[0]


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_a_read_only_folder_turns_uploads_off_with_one_warning(shared: Path) -> None:
    shared.chmod(0o555)
    try:
        warnings = Warnings()
        remote = folder_cache(shared, warnings)
        assert remote.put_blob(PICTURE) is PutResult.FAILED
        assert remote.put_record(action_key("a"), {"x": 1}) is PutResult.SKIPPED
        assert len(warnings) == 1 and "permission denied" in warnings[0]
        assert remote.available  # reads go on
    finally:
        shared.chmod(0o755)


# -- two machines ---------------------------------------------------------------------------


def test_second_machine_restores_from_the_folder_with_zero_provider_calls(shared: Path, tmp_path: Path) -> None:
    names = [f"icon-{i}" for i in range(8)]
    provider = Provider()
    with TieredStore(Store(tmp_path / "laptop"), folder_cache(shared)) as laptop:
        made = build(laptop, names, provider)
        summary = laptop.flush()
    assert len(provider.calls) == 8 and summary.uploaded == 16 and summary.failed == 0
    warnings = Warnings()
    with TieredStore(Store(tmp_path / "ci"), folder_cache(shared, warnings, mode="read")) as ci:
        restored = build(ci, names, provider)
        assert ci.flush().records_downloaded == 8
    assert len(provider.calls) == 8  # nothing paid on the second machine
    assert restored == made and warnings == []
    assert all(name.startswith(("ac/", "cas/")) for name in files(shared))
    assert json.loads((shared / "ac" / action_key("icon-0")).read_bytes())["key"] == action_key("icon-0")
