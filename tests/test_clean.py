"""``clean`` removes only files this tool wrote, inside the output folder, unchanged.

The state file in the output folder lists what was written; it can be edited (or come
from a pull request), and folders in the tree can be swapped for symlinks. Each test
builds offline (placeholder provider), tampers with the tree, and checks that ``clean``
keeps and reports what it must not delete.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from clirun import run_cli
from recraft_build import api
from recraft_build.engine.clean import clean_outputs
from recraft_build.engine.lock import Lock
from recraft_build.engine.outputs import STATE_NAME, OutputState

SPEC = """\
version: 1
output_dir: out
defaults: {model: recraftv3, style: digital_illustration, size: 1024x1024}
assets:
  - name: "icon-{{ item }}"
    matrix: {item: [sword, shield]}
    prompt: "flat game icon of a {{ item }}"
    outputs:
      - path: "icons/{{ item }}.png"
        steps: [{resize: {width: 32}}]
  - name: hero
    prompt: "wide banner at dusk"
    size: 1820x1024
    output: hero.webp
"""
ONLY_ICONS = SPEC.split("  - name: hero")[0]
NO_SHIELD = SPEC.replace("[sword, shield]", "[sword]")


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.delenv("RECRAFT_API_TOKEN", raising=False)
    monkeypatch.delenv("REPLICATE_API_TOKEN", raising=False)
    monkeypatch.setenv("RECRAFT_BUILD_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "project"
    root.mkdir()
    monkeypatch.chdir(root)
    (root / "assets.yaml").write_text(SPEC)
    code, _, err = cli("build")
    assert code == 0, err
    return root


cli = run_cli


def clean_json() -> dict:
    code, out, err = cli("clean", "--json")
    assert code == 0, err
    return json.loads(out)


def edit_state(out: Path, change) -> None:
    path = out / STATE_NAME
    data = json.loads(path.read_text())
    change(data["files"])
    path.write_text(json.dumps(data))


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_removes_what_the_spec_no_longer_names_and_prunes_empty_folders(project):
    (project / "assets.yaml").write_text(SPEC.replace("icons/{{ item }}.png", "small/{{ item }}.png"))
    data = clean_json()
    assert sorted(data["removed"]) == ["icons/shield.png", "icons/sword.png"]
    assert data["kept"] == []
    assert not (project / "out" / "icons").exists()  # emptied, so removed
    assert (project / "out" / "hero.webp").exists()


def test_paths_leaving_the_output_folder_are_never_deleted(project, tmp_path):
    victim = project / "victim.txt"
    victim.write_bytes(b"precious")
    elsewhere = tmp_path / "elsewhere.txt"
    elsewhere.write_bytes(b"precious")
    digest = sha(b"precious")

    def plant(files):
        for rel in ("../victim.txt", str(elsewhere), "icons/../../victim.txt"):
            files[rel] = [8, 0, digest, digest]

    edit_state(project / "out", plant)
    data = clean_json()
    assert victim.read_bytes() == b"precious" and elsewhere.read_bytes() == b"precious"
    kept = {k["path"] for k in data["kept"]}
    assert {"../victim.txt", str(elsewhere), "icons/../../victim.txt"} <= kept
    assert data["removed"] == []
    # Such entries are dropped from the state: they can never be this tool's files.
    assert clean_json()["kept"] == []


def test_a_folder_replaced_by_a_symlink_is_not_followed(project, tmp_path):
    out = project / "out"
    other = tmp_path / "other"
    other.mkdir()
    # The same names and the very same bytes: only the symlink tells them apart.
    for name in ("sword.png", "shield.png"):
        (other / name).write_bytes((out / "icons" / name).read_bytes())
        (out / "icons" / name).unlink()
    (out / "icons").rmdir()
    os.symlink(other, out / "icons")
    (project / "assets.yaml").write_text(NO_SHIELD)
    data = clean_json()
    assert (other / "shield.png").exists() and (other / "sword.png").exists()
    assert data["removed"] == []
    assert [k["path"] for k in data["kept"]] == ["icons/shield.png"]
    assert "symlink" in data["kept"][0]["reason"]


def test_a_file_that_became_a_symlink_is_not_followed(project, tmp_path):
    out = project / "out"
    target = tmp_path / "target.webp"
    target.write_bytes((out / "hero.webp").read_bytes())
    (out / "hero.webp").unlink()
    os.symlink(target, out / "hero.webp")
    (project / "assets.yaml").write_text(ONLY_ICONS)
    data = clean_json()
    assert target.exists() and (out / "hero.webp").is_symlink()
    assert [k["path"] for k in data["kept"]] == ["hero.webp"]


def test_a_file_the_user_changed_is_kept_and_reported(project):
    out = project / "out"
    (out / "hero.webp").write_bytes(b"my own hero, drawn by hand")
    (project / "assets.yaml").write_text(ONLY_ICONS)
    code, text, err = cli("clean")
    assert code == 0, err
    assert (out / "hero.webp").read_bytes() == b"my own hero, drawn by hand"
    assert "kept hero.webp" in text and "changed" in text
    # Still reported next time (until the user deals with it); once gone, forgotten.
    assert [k["path"] for k in clean_json()["kept"]] == ["hero.webp"]
    (out / "hero.webp").unlink()
    data = clean_json()
    assert data["kept"] == [] and data["removed"] == []


def test_a_file_observed_but_never_written_is_not_a_candidate(project):
    """A file the user put where the spec names an output is seen by a build (the
    stat cache records its digest, and a build that fails saves it), but clean must
    not count it as written."""
    out = project / "out"
    (out / "extra.png").write_bytes(b"the user's file")
    st = OutputState(out)
    assert st.observe("extra.png") == sha(b"the user's file")
    st.save()
    data = clean_json()
    assert (out / "extra.png").read_bytes() == b"the user's file"
    assert "extra.png" not in data["removed"]


def test_manifest_is_rewritten_after_clean(project):
    out = project / "out"
    before = json.loads((out / "manifest.json").read_text())
    assert "hero" in before["assets"]
    (project / "assets.yaml").write_text(ONLY_ICONS)
    data = clean_json()
    assert data["removed"] == ["hero.webp"]
    after = json.loads((out / "manifest.json").read_text())
    paths = [f["path"] for files in after["assets"].values() for f in files["outputs"]]
    assert "hero.webp" not in paths and "hero" not in after["assets"]
    assert sorted(paths) == ["icons/shield.png", "icons/sword.png"]


def test_dry_run_reports_and_changes_nothing(project):
    out = project / "out"
    (project / "assets.yaml").write_text(ONLY_ICONS)
    (out / "icons" / "sword.png").write_bytes(b"changed")  # still named: not a candidate
    state_before = (out / STATE_NAME).read_bytes()
    manifest_before = (out / "manifest.json").read_bytes()
    code, text, _ = cli("clean", "--dry-run")
    assert code == 0 and "would remove hero.webp" in text
    assert (out / "hero.webp").exists()
    assert (out / STATE_NAME).read_bytes() == state_before
    assert (out / "manifest.json").read_bytes() == manifest_before


def test_clean_outputs_without_an_output_folder_does_nothing(tmp_path):
    (tmp_path / "assets.yaml").write_text(SPEC)
    spec = api.load(tmp_path / "assets.yaml")
    result = clean_outputs(spec, tmp_path / "missing", Lock(tmp_path / "assets.lock"))
    assert result.removed == [] and result.kept == []
    assert not (tmp_path / "missing").exists()


def test_clean_creates_nothing(project, tmp_path):
    """clean of a folder that was never built (lock entries exist) makes no folder or manifest."""
    elsewhere = tmp_path / "never-built"
    code, _, err = cli("clean", "-o", str(elsewhere))
    assert code == 0, err
    assert not elsewhere.exists()
