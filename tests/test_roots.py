"""Tests of recraft_build.cache.roots (gc roots) and of ``cache gc`` over them: projects
sharing one cache keep each other's pictures. Offline (placeholder provider)."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest

from recraft_build.cache.local import Store
from recraft_build.cache.roots import ROOTS_DIR, RootRegistry
from recraft_build.cli import main
from recraft_build.errors import StoreError

SPEC_A = """\
version: 1
output_dir: out
defaults: {model: recraftv3, style: digital_illustration, size: 1024x1024}
assets:
  - name: "icon-{{ item }}"
    matrix: {item: [sword, shield]}
    prompt: "flat game icon of a {{ item }}"
    steps: [{resize: {width: 64}}]
    output: "icons/{{ item }}.png"
  - name: banner
    prompt: "wide banner at dusk"
    output: banner.png
"""

SPEC_B = """\
version: 1
output_dir: out
defaults: {model: recraftv3, style: digital_illustration, size: 1024x1024}
assets:
  - name: "tile-{{ item }}"
    matrix: {item: [grass, water, sand]}
    prompt: "seamless {{ item }} tile"
    output: "tiles/{{ item }}.png"
"""


# -- the registry --------------------------------------------------------------------------


def test_register_is_idempotent_and_resolves_the_path(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (tmp_path / "link").symlink_to(project)
    registry = RootRegistry(tmp_path / "cache", host="builder-1")
    root = registry.register(project / "assets.lock")
    again = registry.register(tmp_path / "link" / "assets.lock")
    assert again == root and root.lock == project.resolve() / "assets.lock" and root.host == "builder-1"
    stamp = root.file.stat().st_mtime_ns
    registry.register(project / "assets.lock")
    assert root.file.stat().st_mtime_ns == stamp  # nothing written the second time
    other = registry.register(tmp_path / "other.lock")
    assert registry.list() == sorted([root, other], key=lambda r: str(r.lock))
    registry.remove(other)
    registry.remove(other)  # already gone is fine
    assert registry.list() == [root]
    assert [p.name for p in (tmp_path / "cache" / ROOTS_DIR).iterdir()] == [root.file.name]


def test_a_damaged_root_file_stops_gc_with_what_to_do(tmp_path: Path) -> None:
    registry = RootRegistry(tmp_path / "cache")
    root = registry.register(tmp_path / "assets.lock")
    root.file.write_text('{"lock": "relative.lock"}')
    with pytest.raises(StoreError, match="delete that file"):
        registry.list()
    registry.register(tmp_path / "assets.lock")  # registering the same lock repairs it
    assert [r.lock for r in registry.list()] == [root.lock]


def test_an_empty_registry_and_temp_files_are_nothing(tmp_path: Path) -> None:
    registry = RootRegistry(tmp_path / "cache")
    assert registry.list() == []
    (tmp_path / "cache" / ROOTS_DIR).mkdir(parents=True)
    (tmp_path / "cache" / ROOTS_DIR / ".tmp-abc-123").write_text("half")
    assert registry.list() == []


def test_the_store_warns_instead_of_failing_when_a_root_cannot_be_recorded(tmp_path: Path) -> None:
    warnings: list[str] = []
    with Store(tmp_path / "cache", warn=warnings.append) as store:
        (tmp_path / "cache" / ROOTS_DIR).write_text("a file where the roots folder should be")
        store.register_root(tmp_path / "assets.lock")
    assert len(warnings) == 1 and "gc root" in warnings[0] and "unless its lock is named" in warnings[0]


# -- cache gc over roots -------------------------------------------------------------------


@pytest.fixture
def shared_cache(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.delenv("RECRAFT_API_TOKEN", raising=False)
    monkeypatch.delenv("REPLICATE_API_TOKEN", raising=False)
    monkeypatch.delenv("RECRAFT_BUILD_REMOTE_CACHE", raising=False)
    cache = tmp_path / "cache"
    monkeypatch.setenv("RECRAFT_BUILD_CACHE", str(cache))
    return cache


def project(root: Path, spec: str) -> Path:
    root.mkdir()
    (root / "assets.yaml").write_text(spec)
    return root


def cli(cwd: Path, *args: str) -> tuple[int, dict | None, str, str]:
    out, err = io.StringIO(), io.StringIO()
    old = os.getcwd()
    os.chdir(cwd)
    try:
        code = main(list(args), stdout=out, stderr=err)
    finally:
        os.chdir(old)
    text = out.getvalue()
    data = json.loads(text) if "--json" in args and text.strip() else None
    return code, data, text, err.getvalue()


def to_generate(cwd: Path) -> int:
    code, data, _, err = cli(cwd, "plan", "--json")
    assert code == 0, err
    return sum(a["status"] == "generate" for a in data["assets"])


def cache_counts(cache: Path) -> tuple[int, int]:
    with Store(cache) as store:
        info = store.info()
    return info.blobs, info.records


def test_gc_in_one_project_keeps_what_another_projects_lock_pins(tmp_path: Path, shared_cache: Path) -> None:
    a = project(tmp_path / "a", SPEC_A)
    b = project(tmp_path / "b", SPEC_B)
    for p in (a, b):
        code, _, _, err = cli(p, "build")
        assert code == 0, err
    # Garbage: project a drops its banner, whose pictures only the cache still holds.
    (a / "assets.yaml").write_text(SPEC_A.split("  - name: banner")[0])
    assert cli(a, "build")[0] == 0
    # Project b's outputs are gone too, so its next build must restore from the cache.
    for png in (b / "out" / "tiles").iterdir():
        png.unlink()

    before = cache_counts(shared_cache)
    code, dry, _, err = cli(a, "cache", "gc", "--dry-run", "--json")
    assert code == 0, err
    assert dry["dry_run"] is True and dry["entries"] > 0 and dry["bytes"] > 0
    assert cache_counts(shared_cache) == before  # a dry run removes nothing
    assert sorted(dry["roots"]) == sorted(str(p.resolve() / "assets.lock") for p in (a, b))

    code, report, _, err = cli(a, "cache", "gc", "--json")
    assert code == 0, err
    assert report["dry_run"] is False
    assert (report["entries"], report["bytes"]) == (dry["entries"], dry["bytes"])  # as announced
    assert report["blobs"] > 0 and report["entries"] == report["blobs"] + report["records"]
    after = cache_counts(shared_cache)
    assert after == (before[0] - report["blobs"], before[1] - report["records"])

    assert to_generate(b) == 0  # the other project lost nothing
    assert to_generate(a) == 0
    code, _, text, err = cli(b, "build", "--json")
    data = json.loads(text)
    assert code == 0 and data["summary"]["generated"] == 0 and data["summary"]["restored"] == 3, err


def test_human_output_says_what_went_and_what_would(tmp_path: Path, shared_cache: Path) -> None:
    a = project(tmp_path / "a", SPEC_A)
    assert cli(a, "build")[0] == 0
    (a / "assets.yaml").write_text(SPEC_A.split("  - name: banner")[0])
    assert cli(a, "build")[0] == 0
    code, _, text, err = cli(a, "cache", "gc", "--dry-run")
    assert code == 0, err
    assert text.startswith("would remove ") and "bytes" in text and "nothing was removed" in text
    assert str(a.resolve() / "assets.lock") in text
    code, _, text, err = cli(a, "cache", "gc")
    assert code == 0, err
    assert text.startswith("removed ") and "picture(s)" in text and "nothing was removed" not in text
    code, _, text, _ = cli(a, "cache", "gc")
    assert text.startswith("removed 0 cache entries")


def test_a_root_whose_lock_is_gone_is_pruned_and_its_pictures_go(tmp_path: Path, shared_cache: Path) -> None:
    a = project(tmp_path / "a", SPEC_A)
    b = project(tmp_path / "b", SPEC_B)
    for p in (a, b):
        assert cli(p, "build")[0] == 0
    (b / "assets.lock").unlink()  # project b was deleted (or moved)

    code, dry, _, _ = cli(a, "cache", "gc", "--dry-run", "--json")
    assert code == 0 and dry["pruned_roots"] == [str(b.resolve() / "assets.lock")]
    assert len(RootRegistry(shared_cache).list()) == 2  # a dry run forgets nothing either

    code, report, _, _ = cli(a, "cache", "gc", "--json")
    assert code == 0 and report["pruned_roots"] == [str(b.resolve() / "assets.lock")]
    assert report["roots"] == [str(a.resolve() / "assets.lock")]
    assert [r.lock for r in RootRegistry(shared_cache).list()] == [a.resolve() / "assets.lock"]
    assert to_generate(a) == 0
    assert to_generate(b) == 3  # its pictures went with its root


def test_named_locks_are_extra_roots(tmp_path: Path, shared_cache: Path) -> None:
    a = project(tmp_path / "a", SPEC_A)
    assert cli(a, "build")[0] == 0
    # An old build whose cache never recorded a root (made before roots existed).
    for file in (shared_cache / ROOTS_DIR).iterdir():
        file.unlink()
    elsewhere = project(tmp_path / "elsewhere", SPEC_B)
    code, _, _, err = cli(elsewhere, "cache", "gc", str(a / "assets.lock"), "--json")
    assert code == 0, err
    assert to_generate(a) == 0
    code, _, _, err = cli(elsewhere, "cache", "gc", str(tmp_path / "missing.lock"))
    assert code == 2 and "does not exist" in err


def test_gc_refuses_to_empty_a_cache_nothing_pins(tmp_path: Path, shared_cache: Path) -> None:
    a = project(tmp_path / "a", SPEC_A)
    assert cli(a, "build")[0] == 0
    for file in (shared_cache / ROOTS_DIR).iterdir():
        file.unlink()
    empty = tmp_path / "empty"
    empty.mkdir()
    before = cache_counts(shared_cache)
    code, _, _, err = cli(empty, "cache", "gc")
    assert code == 2 and "no lock pins anything" in err and "Traceback" not in err
    assert cache_counts(shared_cache) == before


def test_a_root_lock_that_cannot_be_read_stops_gc(tmp_path: Path, shared_cache: Path) -> None:
    a = project(tmp_path / "a", SPEC_A)
    b = project(tmp_path / "b", SPEC_B)
    for p in (a, b):
        assert cli(p, "build")[0] == 0
    (a / "assets.yaml").write_text(SPEC_A.split("  - name: banner")[0])
    assert cli(a, "build")[0] == 0
    (b / "assets.lock").write_text("<<<<<<< HEAD\n{}\n=======\n{}\n>>>>>>> branch\n")
    before = cache_counts(shared_cache)
    code, _, _, err = cli(a, "cache", "gc")
    assert code == 3 and str(b / "assets.lock") in err and "gc root" in err
    assert cache_counts(shared_cache) == before
