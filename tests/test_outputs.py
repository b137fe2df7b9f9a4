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


# -- symlinks below the output folder are never followed -----------------------------


def test_a_symlinked_folder_pointing_inside_the_tree_is_not_followed_either(tmp_path):
    out = tmp_path / "out"
    (out / "real").mkdir(parents=True)
    os.symlink(out / "real", out / "icons")
    with pytest.raises(OutputError, match="'icons'"):
        write_output(out, "icons/a.png", b"x")
    assert list((out / "real").iterdir()) == []
    with pytest.raises(OutputError, match="symlink"):
        safe_output_path(out, "icons/a.png")


def test_a_deeper_symlinked_folder_is_named(tmp_path):
    out = tmp_path / "out"
    outside = tmp_path / "outside"
    (out / "a").mkdir(parents=True)
    outside.mkdir()
    os.symlink(outside, out / "a" / "b")
    with pytest.raises(OutputError, match="'a/b'"):
        write_output(out, "a/b/c/d.png", b"x")
    assert list(outside.iterdir()) == []


def test_the_output_file_itself_as_a_symlink_is_refused(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"keep")
    os.symlink(victim, out / "a.png")
    with pytest.raises(OutputError, match="symlink"):
        write_output(out, "a.png", b"x")
    assert victim.read_bytes() == b"keep"


def test_the_output_folder_itself_may_be_a_symlink(tmp_path):
    """`-o` may point anywhere, through a symlink too: only what is below it is guarded."""
    real = tmp_path / "real"
    real.mkdir()
    os.symlink(real, tmp_path / "out")
    write_output(tmp_path / "out", "icons/a.png", b"x")
    assert (real / "icons" / "a.png").read_bytes() == b"x"


def test_check_output_root_resolves_symlinks(tmp_path):
    from recraft_build.engine.outputs import check_output_root
    from recraft_build.errors import SpecError

    spec_dir = tmp_path / "project"
    (spec_dir / "dist").mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    check_output_root(spec_dir, spec_dir / "build", spec_file="assets.yaml")  # not made yet: fine
    os.symlink(spec_dir / "dist", spec_dir / "build")
    check_output_root(spec_dir, spec_dir / "build", spec_file="assets.yaml")  # stays inside: fine
    os.symlink(elsewhere, spec_dir / "out")
    with pytest.raises(SpecError) as info:
        check_output_root(spec_dir, spec_dir / "out", spec_file="assets.yaml")
    assert info.value.exit_code == 3
    assert str(elsewhere) in str(info.value) and "output_dir" in str(info.value)


BUILD_SPEC = """\
version: 1
assets:
  - name: hero
    prompt: "a banner"
    size: 1024x1024
    outputs:
      - path: icons/hero.png
"""


@pytest.fixture
def offline(tmp_path, monkeypatch):
    monkeypatch.delenv("RECRAFT_API_TOKEN", raising=False)
    monkeypatch.delenv("REPLICATE_API_TOKEN", raising=False)
    monkeypatch.setenv("RECRAFT_BUILD_CACHE", str(tmp_path / "cache"))
    project = tmp_path / "project"
    project.mkdir()
    (project / "assets.yaml").write_text(BUILD_SPEC)
    return project


def run(*args: str) -> tuple[int, str, str]:
    import io

    from recraft_build.cli import main

    out, err = io.StringIO(), io.StringIO()
    return main(list(args), stdout=out, stderr=err), out.getvalue(), err.getvalue()


def test_build_refuses_a_default_build_folder_that_is_a_symlink_outside(offline, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    os.symlink(elsewhere, offline / "build")
    spec = str(offline / "assets.yaml")
    for command in (["build"], ["plan"], ["clean"]):
        code, _, err = run(*command, "-f", spec)
        assert code == 3, (command, err)
        assert str(elsewhere) in err and "Traceback" not in err
    assert list(elsewhere.iterdir()) == []
    # -o is the user's own choice: it may go anywhere, through a symlink too.
    code, _, err = run("build", "-f", spec, "-o", str(offline / "build"))
    assert code == 0, err
    assert (elsewhere / "icons" / "hero.png").is_file()


def test_build_refuses_a_symlinked_folder_inside_the_tree(offline, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (offline / "build").mkdir()
    os.symlink(elsewhere, offline / "build" / "icons")
    code, _, err = run("build", "-f", str(offline / "assets.yaml"), "--json")
    assert code == 1
    assert "'icons'" in err and "symlink" in err
    assert list(elsewhere.iterdir()) == []


# -- file modes follow the umask ------------------------------------------------------


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_built_files_honour_the_umask(offline, umask, mode):
    old = os.umask(umask)
    try:
        code, _, err = run("build", "-f", str(offline / "assets.yaml"))
    finally:
        os.umask(old)
    assert code == 0, err
    build = offline / "build"
    for path in (build / "icons" / "hero.png", build / "manifest.json", build / ".recraft-build-state.json",
                 offline / "assets.lock"):
        assert oct(os.stat(path).st_mode & 0o777) == oct(mode), path
    assert oct(os.stat(build / "icons").st_mode & 0o777) == oct(0o777 & ~umask)


@pytest.mark.parametrize("rel", ["CON.png", "icons/nul.txt", "a/.rbtmp-x.png", "a/./b.png", 'a"b.png', "a//b.png"])
def test_output_parts_refuses_what_the_spec_refuses(tmp_path, rel):
    """One rule for names in the output tree: a manifest or lock from a pull request
    cannot name a file the spec could not (recraft_build.relpath)."""
    from recraft_build.engine.outputs import output_parts
    from recraft_build.relpath import output_path_problem

    assert output_path_problem(rel) is not None
    with pytest.raises(OutputError) as info:
        output_parts(tmp_path, rel)
    assert repr(rel) in str(info.value)
