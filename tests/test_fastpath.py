"""The no-op fast path: answered from the stamp only when nothing that decides the answer
changed; one test per input proves a change is seen (then the full path runs).

Builds run in-process through ``cli.run`` (the full path) and ``cli.main`` (fast path
first), offline with the placeholder provider and SVG outputs (quick).
``fastpath.answer`` returns None whenever it does not answer, which is what most tests
check; a few compare its output with the full path's byte for byte.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from recraft_build import cli
from recraft_build.engine import fastpath
from recraft_build.engine.fastpath import answer, memo_path, parse_request, stamp_path

SPEC = """\
version: 1
output_dir: out
defaults: {model: recraftv3, style: vector_illustration, size: 1024x1024}
assets:
  - name: "tile-{{ item }}"
    matrix: {item: [a, b, c]}
    prompt: "a map tile {{ item }}"
    output: "tiles/{{ item }}.svg"
"""

STYLED = """\
version: 1
output_dir: out
defaults: {model: recraftv3, size: 1024x1024}
styles:
  brand:
    style: digital_illustration
    references: [refs/brand.png]
assets:
  - name: logo
    style: brand
    prompt: "a logo"
    outputs: [{path: logo.png, steps: [{resize: {width: 32}}]}]
"""


def settle() -> None:
    """Let file times move past the writer's margin: a file changed just before a
    command started is (rightly) not trusted by the stamp."""
    time.sleep(0.08)


@pytest.fixture
def project(tmp_path, monkeypatch):
    for name in ("RECRAFT_API_TOKEN", "REPLICATE_API_TOKEN", "RECRAFT_BUILD_REMOTE_CACHE",
                 "RECRAFT_BUILD_REMOTE_CACHE_MODE", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RECRAFT_BUILD_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "assets.yaml").write_text(SPEC)
    settle()
    return tmp_path


def full(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.run(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def fast(*argv: str) -> tuple[int | None, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = answer(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


def built(*argv: str) -> None:
    code, _out, err = full("build", *argv)
    assert code == 0, err
    settle()


def test_an_unchanged_tree_is_answered_exactly_as_the_full_path_answers(project):
    built()
    assert Path(stamp_path("assets.yaml")).is_file()
    for argv in (["build"], ["build", "--json"], ["status"], ["status", "--json"], ["build", "-j", "4", "--frozen"]):
        expected = full(*argv)  # (which also remembers the answer of its own form)
        settle()
        got = fast(*argv)
        assert got == expected, argv
    # Through the real entry point too.
    out, err = io.StringIO(), io.StringIO()
    assert cli.main(["build", "--json"], stdout=out, stderr=err) == 0
    assert json.loads(out.getvalue())["summary"]["up_to_date"] == 3


def test_the_stamp_is_written_by_the_build_that_did_the_work(project):
    code, _out, err = full("build")
    assert code == 0 and "generated 3" in err
    settle()
    code, _out, err = fast("build")
    assert code == 0 and "up to date 3" in err


def test_spec_change_is_seen(project):
    built()
    (project / "assets.yaml").write_text(SPEC.replace("a map tile", "a map tile!"))
    assert fast("build")[0] is None
    assert fast("status")[0] is None
    settle()  # (an input changed within a few ms of the start is not trusted)
    built()  # the full path writes a new stamp...
    assert fast("build")[0] == 0  # ...and the next no-op is fast again


def test_spec_rewritten_with_the_same_bytes_takes_the_full_path(project):
    built()
    (project / "assets.yaml").write_text(SPEC)  # same bytes, new inode time: not sure, so full
    assert fast("build")[0] is None


def test_lock_change_is_seen(project):
    built()
    lock = project / "assets.lock"
    data = json.loads(lock.read_text())
    data["assets"]["tile-a"]["generation"]["pick"] = 0
    data["assets"]["tile-a"]["generation"]["credits"] = 5
    lock.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    assert fast("build")[0] is None


def test_lock_removed_is_seen(project):
    built()
    (project / "assets.lock").unlink()
    assert fast("build")[0] is None


@pytest.mark.parametrize("change", ["edit", "delete", "touch", "same-size-edit"])
def test_output_change_is_seen(project, change):
    built()
    target = project / "out" / "tiles" / "b.svg"
    if change == "edit":
        target.write_text("<svg/>")
    elif change == "delete":
        target.unlink()
    elif change == "touch":
        st = target.stat()
        os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    else:
        data = bytearray(target.read_bytes())
        st = target.stat()
        data[-2:-1] = b" "
        target.write_bytes(bytes(data))
        os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns + 1))
    assert fast("build")[0] is None
    code, _out, err = full("build")
    assert code == 0
    if change in ("edit", "delete", "same-size-edit"):
        assert "restored 1" in err or "generated 1" in err
    settle()
    assert fast("build")[0] == 0  # the build that put it back left a stamp


def test_manifest_removed_is_seen(project):
    built()
    (project / "out" / "manifest.json").unlink()
    assert fast("build")[0] is None
    built()
    assert (project / "out" / "manifest.json").exists()


def test_style_reference_change_is_seen(project):
    (project / "refs").mkdir()
    (project / "refs" / "brand.png").write_bytes(_png())
    (project / "assets.yaml").write_text(STYLED)
    settle()
    built()
    assert fast("build")[0] == 0
    (project / "refs" / "brand.png").write_bytes(_png(color=(9, 9, 9)))
    assert fast("build")[0] is None


FROM_FILE = """\
version: 1
output_dir: out
assets:
  - name: sketch
    image: {file: art/sketch.png}
    outputs: [{path: sketch.png, steps: [{resize: {width: 16}}]}]
"""


def test_an_input_picture_change_is_seen(project):
    (project / "art").mkdir()
    (project / "art" / "sketch.png").write_bytes(_png())
    (project / "assets.yaml").write_text(FROM_FILE)
    settle()
    built()
    assert fast("build")[0] == 0
    (project / "art" / "sketch.png").write_bytes(_png(color=(9, 9, 9)))
    assert fast("build")[0] is None


def test_provider_option_is_part_of_the_answer(project):
    built()
    assert fast("build", "--provider", "placeholder")[0] is None
    assert fast("build", "--provider", "auto")[0] == 0  # the default, spelled out


def test_which_token_is_set_is_seen_never_its_value(project, monkeypatch):
    built()
    monkeypatch.setenv("RECRAFT_API_TOKEN", "   ")  # blank counts as unset, as everywhere
    assert fast("build")[0] == 0
    monkeypatch.setenv("RECRAFT_API_TOKEN", "sk-secret-value")
    assert fast("build")[0] is None  # auto would now mean recraft
    monkeypatch.delenv("RECRAFT_API_TOKEN")
    monkeypatch.setenv("REPLICATE_API_TOKEN", "r8-secret-value")
    assert fast("build")[0] is None
    monkeypatch.delenv("REPLICATE_API_TOKEN")
    assert fast("build")[0] == 0
    for path in (project / ".recraft-build").rglob("*"):
        if path.is_file():
            assert b"secret" not in path.read_bytes()


def test_cache_folder_and_remote_settings_are_seen(project, monkeypatch):
    built()
    monkeypatch.setenv("RECRAFT_BUILD_CACHE", str(project / "other-cache"))
    assert fast("build")[0] is None
    monkeypatch.setenv("RECRAFT_BUILD_CACHE", str(project / "cache"))
    assert fast("build")[0] == 0
    assert fast("build", "--cache-dir", str(project / "cache"))[0] is None
    monkeypatch.setenv("RECRAFT_BUILD_REMOTE_CACHE", "http://user:hunter2@cache.invalid:9")
    assert fast("build")[0] is None
    built()  # a no-op never talks to the remote, so this is quick and offline
    assert fast("build")[0] == 0
    monkeypatch.setenv("RECRAFT_BUILD_REMOTE_CACHE", "http://user:hunter3@cache.invalid:9")
    assert fast("build")[0] is None
    for path in (project / ".recraft-build").rglob("*"):
        if path.is_file():
            assert b"hunter" not in path.read_bytes()


def test_output_folder_and_working_folder_are_part_of_the_answer(project, tmp_path_factory):
    built()
    assert fast("build", "-o", "out")[0] is None
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    os.chdir(elsewhere)
    try:
        assert fast("build", "-f", str(project / "assets.yaml"))[0] is None
    finally:
        os.chdir(project)


def test_output_folder_swapped_for_a_copy_is_seen(project):
    built()
    shutil.copytree(project / "out", project / "copy", copy_function=shutil.copy2)  # same sizes and mtimes
    shutil.rmtree(project / "out")
    (project / "copy").rename(project / "out")
    assert fast("build")[0] is None


def test_tool_change_is_seen(project, monkeypatch):
    built()
    versions = Path(fastpath.__file__).parent.parent / "steps" / "versions.py"
    before = fastpath.tool_fingerprint()
    st = versions.stat()
    try:
        os.utime(versions, ns=(st.st_atime_ns, st.st_mtime_ns + 1))
        assert fastpath.tool_fingerprint() != before  # a step version edited, a reinstall...
        assert fast("build")[0] is None
    finally:
        os.utime(versions, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert fast("build")[0] == 0
    monkeypatch.setattr(fastpath.sys, "version", sys.version + " (another interpreter)")
    assert fast("build")[0] is None


def test_targets_and_shards_are_answered_only_for_the_same_selection(project):
    built()
    assert fast("build", "tile-a")[0] is None
    built("tile-a")
    code, _out, err = fast("build", "tile-a")
    assert code == 0 and "up to date 1" in err
    assert fast("build")[0] is None  # the stamp now speaks for tile-a only
    built("--shard", "2/3")
    assert fast("build", "--shard", "2/3")[0] == 0
    assert fast("build", "--shard", "1/3")[0] is None


def test_force_and_other_commands_always_take_the_full_path(project):
    built()
    for argv in (["build", "--force"], ["plan"], ["validate"], ["clean"], ["build", "--jobs=0"],
                 ["build", "-j0"], ["build", "--js"], ["build", "--max-credits", "-1"], ["status", "x"],
                 ["build", "tile-a", "--json", "tile-b"], ["build", "-f=assets.yaml"], ["build", "--json", "--json"]):
        assert fast(*argv)[0] is None, argv


def test_a_failed_build_leaves_no_stamp(project):
    built()
    (project / "assets.yaml").write_text(
        SPEC.replace('output: "tiles/{{ item }}.svg"', 'outputs: [{path: "tiles/{{ item }}.png", steps: [{crop: {box: [0, 0, 5000, 5000]}}]}]')
    )
    settle()
    code, _out, _err = full("build", "--keep-going")
    assert code == 1
    assert not Path(stamp_path("assets.yaml")).exists()
    assert fast("build", "--keep-going")[0] is None


def test_a_copied_or_committed_stamp_never_matches(project, tmp_path_factory):
    built()
    clone = tmp_path_factory.mktemp("clone") / "p"
    shutil.copytree(project, clone, copy_function=shutil.copy2, ignore=shutil.ignore_patterns("cache"))
    os.chdir(clone)
    try:
        # Same bytes and mtimes, the stamp included, but other inodes and ctimes.
        assert fast("build")[0] is None
    finally:
        os.chdir(project)


def test_a_stamp_of_another_user_is_ignored(project, monkeypatch):
    built()
    uid = os.getuid()
    monkeypatch.setattr(fastpath.os, "getuid", lambda: uid + 1)
    assert fast("build")[0] is None


def test_a_damaged_stamp_or_memo_takes_the_full_path(project):
    built()
    Path(memo_path("assets.yaml", "build")).write_bytes(b"not the token\n\"\"\n")
    assert fast("build")[0] is None
    built()
    stamp = Path(stamp_path("assets.yaml"))
    stamp.write_bytes(stamp.read_bytes()[:-40])
    assert fast("build")[0] is None
    stamp.write_bytes(b"\xff\xfe garbage")
    assert fast("build")[0] is None


def test_recogniser_agrees_with_argparse(project):
    """Every command line the recogniser accepts means to argparse what it means here."""
    from recraft_build.engine.stamp import NoopStamp

    lines = [
        ["build"], ["build", "--json"], ["build", "-f", "assets.yaml", "-o", "o"], ["build", "--file=a.yaml"],
        ["build", "-j", "3", "tile-*", "tile-b"], ["build", "tile-a", "--json"], ["build", "--output-dir=x", "--provider", "placeholder"],
        ["build", "--shard", "2/4", "--frozen", "--keep-going", "--max-credits", "10.5"],
        ["build", "--remote-cache", "http://h:1", "--remote-cache-mode", "read", "--cache-dir", "c"],
        ["status"], ["status", "--json", "-o", "o", "--provider=auto", "--cache-dir", "c"],
    ]
    for argv in lines:
        mine = parse_request(argv)
        assert mine is not None, argv
        args = cli.build_parser().parse_args(argv)
        theirs = NoopStamp.for_command(argv[0], args)
        assert theirs.request.identity("t", "/w") == mine.identity("t", "/w"), argv
        assert theirs.request.memo_kind == mine.memo_kind


_NO_PICTURE_LIBS = """
import sys, io, contextlib
from recraft_build import cli
with contextlib.redirect_stdout(io.StringIO()):
    try:
        code = cli.main(sys.argv[1:], stdout=io.StringIO(), stderr=io.StringIO())
    except SystemExit as exc:  # --help
        code = exc.code
heavy = sorted(m for m in ("PIL", "numpy", "httpx", "jinja2", "yaml", "jsonschema", "diskcache") if m in sys.modules)
print(code, " ".join(heavy))
"""


def _modules_after(project: Path, *argv: str) -> tuple[int, set[str]]:
    run = subprocess.run([sys.executable, "-c", _NO_PICTURE_LIBS, *argv], cwd=project, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    code, _, names = run.stdout.strip().partition(" ")
    return int(code), set(names.split())


def test_the_fast_path_imports_no_library(project):
    built()
    assert _modules_after(project, "build") == (0, set())
    assert _modules_after(project, "status") == (0, set())
    _modules_after(project, "status", "--json")  # the first one remembers its answer
    settle()
    assert _modules_after(project, "status", "--json") == (0, set())


def test_help_validate_and_status_do_not_import_the_picture_libraries(project):
    built()
    (project / "assets.yaml").write_text(SPEC + "# changed: status takes the full path\n")
    settle()
    for argv in (["--help"], ["validate"], ["status"], ["status", "--json"]):
        code, heavy = _modules_after(project, *argv)
        assert code in (0, 2), argv
        assert not heavy & {"PIL", "numpy"}, (argv, heavy)


def _png(color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (32, 32), color).save(buf, format="PNG")
    return buf.getvalue()
