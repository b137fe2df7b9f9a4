"""Writing the no-op stamp: only what a full run certified, with trustworthy file times."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

import pytest

from recraft_build import api, cli
from recraft_build.engine import stamp as stamp_mod
from recraft_build.engine.fastpath import Request, answer, stamp_path
from recraft_build.engine.stamp import MARGIN_NS, MAX_WAIT_NS, NoopStamp

SPEC = """\
version: 1
output_dir: out
defaults: {model: recraftv3, style: vector_illustration, size: 1024x1024}
assets:
  - name: "tile-{{ item }}"
    matrix: {item: [a, b]}
    prompt: "a map tile {{ item }}"
    output: "tiles/{{ item }}.svg"
"""


@pytest.fixture
def project(tmp_path, monkeypatch):
    for name in ("RECRAFT_API_TOKEN", "REPLICATE_API_TOKEN", "RECRAFT_BUILD_REMOTE_CACHE",
                 "RECRAFT_BUILD_REMOTE_CACHE_MODE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RECRAFT_BUILD_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "assets.yaml").write_text(SPEC)
    time.sleep(0.08)
    return tmp_path


def fast(*argv: str) -> int | None:
    return answer(list(argv), io.StringIO(), io.StringIO())


def build_with(stamp: NoopStamp) -> None:
    result = api.build("assets.yaml", stamp=stamp)
    assert not result.failed


def test_a_spec_saved_just_before_the_command_is_not_trusted(project):
    (project / "assets.yaml").write_text(SPEC + "# saved a moment ago\n")
    stamp = NoopStamp(Request("build"))
    build_with(stamp)
    assert stamp.certified  # everything was built...
    assert not stamp.commit({"build": ("", "done\n")})  # ...but an edit in this tick could hide
    assert stamp.error is None
    assert not Path(stamp_path("assets.yaml")).exists()


def test_the_writer_waits_until_its_own_files_are_old_enough(project):
    stamp = NoopStamp(Request("build"))
    build_with(stamp)  # writes the lock and outputs just now
    waits: list[float] = []
    stamp._sleep = waits.append
    assert stamp.commit({"build": ("", "done\n")})
    assert len(waits) == 1 and 0 < waits[0] <= MARGIN_NS / 1e9
    assert fast("build") == 0


def test_no_stamp_when_the_wait_would_be_long(project):
    stamp = NoopStamp(Request("build"))
    build_with(stamp)
    lock_ctime = os.stat("assets.lock").st_ctime_ns
    stamp._clock = lambda: lock_ctime - MAX_WAIT_NS  # as if times ticked in seconds
    stamp._sleep = lambda seconds: pytest.fail("must not wait that long")
    assert not stamp.commit({"build": ("", "done\n")})
    assert not Path(stamp_path("assets.yaml")).exists()


def test_a_lock_written_by_someone_else_after_the_build_is_not_certified(project):
    stamp = NoopStamp(Request("build"))
    build_with(stamp)
    lock = project / "assets.lock"
    lock.write_text(lock.read_text().replace('"pick": 0', '"pick": 0 '))
    assert not stamp.commit({"build": ("", "done\n")})


def test_an_output_changed_between_capture_and_commit_is_not_certified(project):
    stamp = NoopStamp(Request("build"))
    build_with(stamp)
    (project / "out" / "tiles" / "a.svg").write_text("<svg/>")
    assert not stamp.commit({"build": ("", "done\n")})


def test_force_never_gets_a_stamp_and_a_free_build_within_budget_does(project):
    assert NoopStamp.for_command("build", cli.build_parser().parse_args(["build", "--force"])) is None
    stamp = NoopStamp(Request("build"))
    result = api.build("assets.yaml", stamp=stamp, max_credits=0)  # placeholder: free, builds
    assert not result.failed and stamp.certified


def test_status_adds_its_memo_without_replacing_an_equal_stamp(project):
    out, err = io.StringIO(), io.StringIO()
    assert cli.run(["build"], stdout=out, stderr=err) == 0
    time.sleep(0.08)
    token = Path(stamp_path("assets.yaml")).read_bytes().split(b"\n", 1)[0]
    assert fast("status", "--json") is None  # no memo of that form yet
    assert cli.run(["status", "--json"], stdout=io.StringIO(), stderr=io.StringIO()) == 0
    assert Path(stamp_path("assets.yaml")).read_bytes().split(b"\n", 1)[0] == token
    assert fast("status", "--json") == 0
    assert fast("build") == 0  # the build's memo is still bound to the same stamp


def test_key_input_files_name_the_spec_and_used_style_references(project):
    (project / "refs").mkdir()
    (project / "refs" / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    styles = "styles:\n  brand: {style: digital_illustration, references: [refs/a.png]}\n"
    (project / "assets.yaml").write_text(SPEC + styles)
    with api.open_session("assets.yaml", api.Settings(), None) as session:
        session.plan()
        assert stamp_mod.key_input_files(session) == [session.spec.path]  # an unused style is no input
    (project / "assets.yaml").write_text(
        SPEC + "  - {name: logo, style: brand, prompt: a logo, output: logo.png}\n" + styles
    )
    with api.open_session("assets.yaml", api.Settings(), None) as session:
        session.plan()
        assert stamp_mod.key_input_files(session) == [session.spec.path, session.spec.path.parent / "refs/a.png"]
