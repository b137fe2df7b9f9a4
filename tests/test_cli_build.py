"""End to end through the real command line, offline (placeholder provider).

Each test writes a spec in a temp folder, runs ``recraft-build`` (in-process through
``cli.main`` for speed, or as a real subprocess where exit codes and signals matter) and
checks what a user would see: statuses in ``--json``, files, the lock, the manifest.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from clirun import offline_project
from recraft_build.cli import main

SPEC = """\
version: 1
output_dir: out
defaults: {model: recraftv3, style: digital_illustration, size: 1024x1024}
vars: {world: "a cozy fantasy village"}
assets:
  - name: "icon-{{ item }}"
    matrix: {item: [sword, shield, potion]}
    prompt: "flat game icon of a {{ item }} in {{ world }}"
    steps: [remove_background]
    outputs:
      - path: "icons/{{ item }}.png"
        steps: [{resize: {width: 64}}]
  - name: hero
    prompt: "wide banner of {{ world }} at dusk"
    size: 1820x1024
    output: hero.webp
"""


@pytest.fixture
def project(tmp_path, monkeypatch):
    return offline_project(tmp_path, monkeypatch, SPEC)


def cli(*args: str) -> tuple[int, dict | None, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(args), stdout=out, stderr=err)
    text = out.getvalue()
    data = json.loads(text) if "--json" in args and text.strip() else None
    return code, data, err.getvalue()


def statuses(data: dict) -> dict[str, str]:
    return {a["name"]: a["status"] for a in data["assets"]}


def test_first_build_then_noop(project):
    code, data, err = cli("build", "--json")
    assert code == 0, err
    assert set(statuses(data).values()) == {"generated"}
    assert data["summary"]["generated"] == 4
    assert (project / "out" / "icons" / "sword.png").exists()
    assert (project / "out" / "hero.webp").exists()
    manifest = json.loads((project / "out" / "manifest.json").read_text())
    sword = manifest["assets"]["icon-sword"]["outputs"][0]
    assert sword["path"] == "icons/sword.png" and sword["width"] == 64 and sword["format"] == "png"
    lock = json.loads((project / "assets.lock").read_text())
    assert sorted(lock["assets"]) == ["hero", "icon-potion", "icon-shield", "icon-sword"]
    assert "placeholder" in err  # the one-line notice that the offline default is in use

    code, data, _ = cli("build", "--json")
    assert code == 0
    assert set(statuses(data).values()) == {"up-to-date"}
    assert data["summary"]["up_to_date"] == 4


def test_json_stdout_is_one_object(project):
    out, err = io.StringIO(), io.StringIO()
    assert main(["build", "--json"], stdout=out, stderr=err) == 0
    json.loads(out.getvalue())  # exactly one JSON document, nothing else


def test_editing_one_prompt_regenerates_exactly_that_asset(project):
    cli("build")
    spec = (project / "assets.yaml").read_text().replace("at dusk", "at dawn")
    (project / "assets.yaml").write_text(spec)
    code, data, _ = cli("status", "--json")
    hero = next(a for a in data["assets"] if a["name"] == "hero")
    assert hero["status"] == "generate" and hero["reasons"] == ["changed: prompt"]
    code, data, _ = cli("build", "--json")
    assert statuses(data) == {
        "icon-sword": "up-to-date",
        "icon-shield": "up-to-date",
        "icon-potion": "up-to-date",
        "hero": "generated",
    }


def test_editing_a_resize_reruns_only_the_step(project):
    cli("build")
    lock_before = json.loads((project / "assets.lock").read_text())
    (project / "assets.yaml").write_text(SPEC.replace("width: 64", "width: 32"))
    code, data, _ = cli("build", "--json")
    s = statuses(data)
    assert s["hero"] == "up-to-date"
    assert {s[f"icon-{i}"] for i in ("sword", "shield", "potion")} == {"restored"}
    lock_after = json.loads((project / "assets.lock").read_text())
    for name in ("icon-sword", "icon-shield", "icon-potion"):
        assert lock_after["assets"][name]["generation"] == lock_before["assets"][name]["generation"]
        # the asset-level remove_background result is reused, not re-run
        assert lock_after["assets"][name]["steps"] == lock_before["assets"][name]["steps"]
    manifest = json.loads((project / "out" / "manifest.json").read_text())
    assert manifest["assets"]["icon-sword"]["outputs"][0]["width"] == 32


def test_deleted_output_is_restored_from_the_cache(project):
    cli("build")
    (project / "out" / "hero.webp").unlink()
    code, data, _ = cli("build", "--json")
    assert statuses(data)["hero"] == "restored"
    assert (project / "out" / "hero.webp").exists()


def test_hand_edited_output_is_reported_then_overwritten(project):
    cli("build")
    target = project / "out" / "icons" / "sword.png"
    original = target.read_bytes()
    target.write_bytes(b"edited by hand")
    code, data, _ = cli("status", "--json")
    sword = next(a for a in data["assets"] if a["name"] == "icon-sword")
    assert any("edited by hand" in r for r in sword["reasons"])
    cli("build")
    assert target.read_bytes() == original


def test_fresh_cache_with_lock_and_outputs_is_up_to_date(project, monkeypatch):
    cli("build")
    monkeypatch.setenv("RECRAFT_BUILD_CACHE", str(project / "another-cache"))
    code, data, _ = cli("build", "--json")
    assert set(statuses(data).values()) == {"up-to-date"}


def test_frozen_fails_on_a_new_asset_naming_it(project):
    cli("build")
    (project / "assets.yaml").write_text(SPEC + '  - name: extra\n    prompt: "a new thing"\n    output: extra.png\n')
    code, data, err = cli("build", "--frozen")
    assert code == 3
    assert "extra" in err and "--frozen" in err
    assert not (project / "out" / "extra.png").exists()


def test_removed_asset_drops_out_of_the_lock_and_clean_removes_its_files(project):
    cli("build")
    (project / "assets.yaml").write_text(SPEC.split("  - name: hero")[0])
    cli("build")
    lock = json.loads((project / "assets.lock").read_text())
    assert "hero" not in lock["assets"]
    assert (project / "out" / "hero.webp").exists()  # build never deletes
    code, _, _ = cli("clean")
    assert code == 0
    assert not (project / "out" / "hero.webp").exists()
    assert (project / "out" / "icons" / "sword.png").exists()


def test_clean_never_touches_files_it_did_not_write(project):
    cli("build")
    (project / "out" / "notes.txt").write_text("mine")
    cli("clean")
    assert (project / "out" / "notes.txt").exists()


def test_targets_and_globs(project):
    code, data, _ = cli("build", "icon-s*", "--json")
    assert sorted(statuses(data)) == ["icon-shield", "icon-sword"]
    code, _, err = cli("build", "icon-swrd")
    assert code == 2 and "icon-sword" in err


def _corrupt_every_blob(cache: Path) -> int:
    """Flip bytes in every stored blob, whether diskcache keeps it in a file or in SQLite."""
    import sqlite3

    n = 0
    for p in cache.rglob("*.val"):
        data = bytearray(p.read_bytes())
        data[len(data) // 2] ^= 0xFF
        p.write_bytes(bytes(data))
        n += 1
    db = sqlite3.connect(next(cache.rglob("cache.db")))
    with db:
        rows = db.execute("SELECT rowid, value FROM Cache WHERE key LIKE 'blob:%' AND value IS NOT NULL").fetchall()
        for rowid, value in rows:
            if isinstance(value, bytes) and value:
                db.execute("UPDATE Cache SET value = ? WHERE rowid = ?", (value[:-1] + bytes([value[-1] ^ 0xFF]), rowid))
                n += 1
    db.close()
    return n


def test_corrupted_blob_is_detected_never_used(project):
    cli("build")
    hero = project / "out" / "hero.webp"
    original = hero.read_bytes()
    assert _corrupt_every_blob(project / "cache") > 0
    hero.unlink()
    code, data, err = cli("build", "--json")
    assert code == 0, err
    assert "corrupt" in err
    # the pinned picture was unusable, so it was made again (free offline), never served corrupt
    assert statuses(data)["hero"] == "generated"
    assert hero.read_bytes() == original  # the placeholder is deterministic
    out = io.StringIO()
    main(["cache", "verify", "--json"], stdout=out, stderr=io.StringIO())
    assert json.loads(out.getvalue())["checked"] > 0


def test_max_credits_refuses_before_any_call(project, monkeypatch):
    # A real provider pointed at a closed port: any call would fail loudly, so exit 3
    # with the budget message proves the refusal came before any call.
    monkeypatch.setenv("RECRAFT_API_TOKEN", "test-token")
    monkeypatch.setenv("RECRAFT_API_BASE", "http://127.0.0.1:9/v1")
    code, data, err = cli("plan", "--json")
    assert data["summary"]["credits"] > 0
    code, _, err = cli("build", "--max-credits", "10")
    assert code == 3 and "max-credits" in err
    assert not (project / "out").exists()


def test_real_entry_point_exit_codes(project):
    env = dict(os.environ)
    ok = subprocess.run([sys.executable, "-m", "recraft_build", "validate"], cwd=project, env=env, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    (project / "bad.yaml").write_text("version: 1\nassets:\n  - name: x\n    promt: y\n")
    bad = subprocess.run(
        [sys.executable, "-m", "recraft_build", "validate", "-f", "bad.yaml"], cwd=project, env=env, capture_output=True, text=True
    )
    assert bad.returncode == 3
    assert "bad.yaml:4:" in bad.stderr and "Traceback" not in bad.stderr
    usage = subprocess.run([sys.executable, "-m", "recraft_build", "build", "--jobs", "x"], cwd=project, env=env, capture_output=True, text=True)
    assert usage.returncode == 2 and "Traceback" not in usage.stderr


def test_cache_gc_keeps_what_the_lock_pins(project):
    cli("build")
    (project / "assets.yaml").write_text(SPEC.split("  - name: hero")[0])
    cli("build")
    out = io.StringIO()
    assert main(["cache", "gc", "--json"], stdout=out, stderr=io.StringIO()) == 0
    report = json.loads(out.getvalue())
    assert report["blobs"] > 0  # the hero's pictures went
    (project / "out" / "icons" / "sword.png").unlink()
    code, data, _ = cli("build", "--json")
    assert statuses(data)["icon-sword"] == "restored"  # what the lock pins stayed


def test_live_progress_on_a_terminal(project):
    """On a terminal the build shows rich's live bar; with a pipe, plain lines."""
    import pty

    env = dict(os.environ, TERM="xterm", COLUMNS="120")
    env.pop("NO_COLOR", None)
    pid, fd = pty.fork()
    if pid == 0:  # the child: stderr is the terminal
        os.execve(sys.executable, [sys.executable, "-m", "recraft_build", "build"], env)
    chunks = []
    while True:
        try:
            data = os.read(fd, 4096)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    _, status = os.waitpid(pid, 0)
    text = b"".join(chunks).decode("utf-8", "replace")
    assert os.waitstatus_to_exitcode(status) == 0, text
    assert "building" in text and "4/4" in text  # the bar's description and its count
    assert "generated 4" in text
    piped = subprocess.run([sys.executable, "-m", "recraft_build", "build", "--force"], cwd=project,
                           capture_output=True, text=True)
    assert "4/4" not in piped.stderr and "generated" in piped.stderr
