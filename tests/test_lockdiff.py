"""The lock diff: what a pull-request comment says about changed art."""

from __future__ import annotations

import io
import json
import subprocess

import pytest

from recraft_build.review import lockdiff, picking
from recraft_build.cli import main
from recraft_build.errors import LockError, UsageError

from review_fixtures import HAS_GIT, make_project

needs_git = pytest.mark.skipif(not HAS_GIT, reason="git is not installed")


def entry(key="k1", pick=0, n=3, credits=80, files=None, request=None, roll=0):
    gen = {
        "key": key,
        "family": "recraft",
        "pick": pick,
        "credits": credits,
        "request": request or {"model": "recraftv3", "prompt": "a sword"},
        "candidates": [{"sha256": f"{key}-{i}", "media_type": "image/png"} for i in range(n)],
    }
    if roll:
        gen["roll"] = roll
    return {
        "generation": gen,
        "outputs": [{"path": p, "files": [{"path": p, "sha256": d}]} for p, d in (files or {"a.png": "d1"}).items()],
    }


def kinds(d):
    return {c.name: c.kinds for c in d.changes}


def test_each_kind_of_change_is_named():
    base = {
        "same": entry(),
        "repick": entry(key="r", pick=0, files={"r.png": "x"}),
        "regen": entry(key="g1", request={"model": "recraftv3", "prompt": "old"}),
        "gone": entry(key="z"),
        "steps": entry(key="s", files={"s.png": "1", "s@2x.png": "2"}),
    }
    head = {
        "same": entry(),
        "repick": entry(key="r", pick=2, files={"r.png": "y"}),
        "regen": entry(key="g2", request={"model": "recraftv3", "prompt": "new"}, credits=120),
        "added": entry(key="n", credits=40),
        "steps": entry(key="s", files={"s.png": "1b", "s.svg": "3"}),
    }
    d = lockdiff.compare(base, head)
    assert kinds(d) == {
        "added": ["added"],
        "gone": ["removed"],
        "regen": ["regenerated"],
        "repick": ["re-picked", "outputs"],
        "steps": ["outputs"],
    }
    assert d.unchanged == 1
    by = {c.name: c for c in d.changes}
    assert (by["repick"].old_pick, by["repick"].new_pick) == (0, 2)
    assert by["regen"].reason == "changed: prompt"
    assert by["steps"].outputs_changed == ["s.png"]
    assert by["steps"].outputs_added == ["s.svg"]
    assert by["steps"].outputs_removed == ["s@2x.png"]
    # The cost counts new generations only (added + regenerated), not re-picks.
    assert d.credits == 160


def test_a_reroll_is_a_regeneration_with_its_reason():
    d = lockdiff.compare({"a": entry(key="k0")}, {"a": entry(key="k1", roll=1)})
    assert d.changes[0].kinds == ["regenerated"]
    assert "re-rolled" in d.changes[0].reason


def test_markdown_table_for_a_pull_request():
    base = {"icon-sword": entry(key="s"), "old": entry(key="o")}
    head = {"icon-sword": entry(key="s", pick=1, files={"a.png": "d2"}), "hero": entry(key="h", credits=80)}
    md = lockdiff.render_markdown(lockdiff.compare(base, head, base_label="main", head_label="HEAD"))
    lines = md.splitlines()
    assert lines[0].startswith("### ") and "`main`" in lines[0] and "`HEAD`" in lines[0]
    assert "| Asset | Change | Details | Credits |" in lines
    row = next(line for line in lines if "`icon-sword`" in line)
    assert "re-picked" in row and "#0 → #1 of 3" in row
    assert any("`hero`" in line and "added" in line and "| 80 |" in line for line in lines)
    assert any("`old`" in line and "removed" in line for line in lines)
    assert "80 credits" in md


def test_no_change_says_so():
    md = lockdiff.render_markdown(lockdiff.compare({"a": entry()}, {"a": entry()}))
    assert "No asset changed (1 unchanged)" in md
    assert "|" not in md


def test_names_from_a_pull_request_cannot_inject_markdown_or_html():
    evil = "x | <img src=x onerror=alert(1)> [link](http://e.vil) @team `tick`"
    md = lockdiff.render_markdown(lockdiff.compare({}, {evil: entry(files={"p|q.png": "1"})}))
    row = next(line for line in md.splitlines() if "img" in line)
    # The name is one code span; its pipe is escaped, so the table keeps four cells.
    cells = [c for c in row.replace("\\|", "").split("|")]
    assert len(cells) == 6  # leading and trailing empties + 4 cells
    assert "| `` x \\| <img src=x onerror=alert(1)> [link](http://e.vil) @team `tick` `` |" in row
    assert "`p\\|q.png`" in row


def test_a_hand_edited_lock_does_not_crash_the_diff():
    bad = {"a": {"generation": {"key": "k", "pick": "<b>", "candidates": "no"}, "outputs": {"x": 1}}}
    d = lockdiff.compare({}, bad)
    assert d.changes[0].new_pick == 0
    assert "<b>" not in lockdiff.render_markdown(d)


@needs_git
def test_diff_against_head_after_a_pick(tmp_path):
    p = make_project(tmp_path)
    picking.pick(p.spec, "icon-sword", 2, **p.kw())
    md = lockdiff.diff(p.spec)
    assert "`icon-sword`" in md and "#0 → #2 of 3" in md
    assert "`coin`" not in md  # unchanged assets are only counted
    assert "2 unchanged" in md
    # Once committed, the working tree equals HEAD again; HEAD~1..HEAD still shows it.
    p.commit("pick")
    assert "No asset changed" in lockdiff.diff(p.spec)
    assert "#0 → #2" in lockdiff.diff(p.spec, base="HEAD~1", head="HEAD")


@needs_git
def test_cli_diff_prints_markdown_and_json(tmp_path):
    p = make_project(tmp_path)
    picking.pick(p.spec, "coin", 1, **p.kw())
    out, err = io.StringIO(), io.StringIO()
    assert main(["diff", "-f", str(p.spec)], stdout=out, stderr=err) == 0
    assert "`coin`" in out.getvalue() and "#0 → #1 of 2" in out.getvalue()
    out = io.StringIO()
    assert main(["diff", "-f", str(p.spec), "--json"], stdout=out, stderr=err) == 0
    data = json.loads(out.getvalue())
    assert data["summary"]["re-picked"] == 1
    assert data["assets"][0]["name"] == "coin"


@needs_git
def test_lock_not_yet_committed_means_everything_is_added(tmp_path):
    p = make_project(tmp_path, git=False)
    p.git("init", "-q")
    (p.root / "README").write_text("x")
    p.git("add", "README")
    p.git("commit", "-q", "-m", "readme")
    assert lockdiff.read_lock_at(p.lock, "HEAD") is None
    d = lockdiff.compute(p.spec)
    assert sorted(d.changes[i].kinds[0] for i in range(3)) == ["added"] * 3


@needs_git
def test_unknown_revision_and_not_a_repository_are_usage_errors(tmp_path):
    p = make_project(tmp_path)
    with pytest.raises(UsageError, match="'nope' does not exist"):
        lockdiff.diff(p.spec, base="nope")
    with pytest.raises(UsageError, match="must not start with '-'"):
        lockdiff.diff(p.spec, base="--output=/tmp/x")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "assets.lock").write_text('{"version": 1, "assets": {}}')
    with pytest.raises(UsageError, match="not inside a git work tree"):
        lockdiff.read_lock_at(outside / "assets.lock", "HEAD")
    out, err = io.StringIO(), io.StringIO()
    assert main(["diff", "-f", str(p.spec), "--base", "nope"], stdout=out, stderr=err) == 2
    assert "does not exist" in err.getvalue()


@needs_git
def test_a_committed_lock_with_conflict_markers_is_a_lock_error(tmp_path):
    p = make_project(tmp_path)
    p.lock.write_text("<<<<<<< HEAD\n{}\n=======\n{}\n>>>>>>> b\n")
    p.git("commit", "-q", "-am", "broken")
    with pytest.raises(LockError, match="not valid JSON"):
        lockdiff.read_lock_at(p.lock, "HEAD")


def test_git_missing_is_a_usage_error(tmp_path):
    def no_git(args, cwd):
        raise FileNotFoundError("git")

    with pytest.raises(UsageError, match="git is not installed"):
        lockdiff.read_lock_at(tmp_path / "assets.lock", "HEAD", git=no_git)


def test_git_is_asked_with_the_path_relative_to_the_lock_folder(tmp_path):
    calls = []

    def fake(args, cwd):
        calls.append((list(args), cwd))
        if args[0] == "rev-parse" and args[1] == "--is-inside-work-tree":
            return subprocess.CompletedProcess(args, 0, b"true\n", b"")
        if args[0] == "rev-parse":
            return subprocess.CompletedProcess(args, 0, b"abc123\n", b"")
        if args[0] == "cat-file":
            return subprocess.CompletedProcess(args, 0, b"", b"")
        return subprocess.CompletedProcess(args, 0, json.dumps({"version": 1, "assets": {"a": {}}}).encode(), b"")

    assert lockdiff.read_lock_at(tmp_path / "assets.lock", "main", git=fake) == {"a": {}}
    assert calls[-1] == (["show", "abc123:./assets.lock"], tmp_path)
    assert all(cwd == tmp_path for _args, cwd in calls)
