"""``build --shard K/N``: a stable split of the targets, and N CI jobs that together pay
for each picture once, then a ``--frozen`` job that assembles the single build's tree."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fakeserver import FakeServer
from nginx import nginx_cache  # noqa: F401  (fixture)
from recraft_build.cli import main
from recraft_build.engine.shards import Shard, parse_shard, select, shard_of
from recraft_build.errors import UsageError

TOKEN = "sk-shard-test-token"
ITEMS = "abcdefghijkl"
SPEC = f"""\
version: 1
output_dir: out
defaults: {{model: recraftv3, style: digital_illustration, size: 1024x1024}}
assets:
  - name: "icon-{{{{ item }}}}"
    matrix: {{item: [{", ".join(ITEMS)}]}}
    prompt: "flat game icon {{{{ item }}}}"
    steps: [{{resize: {{width: 48}}}}]
    output: "icons/{{{{ item }}}}.png"
"""


# -- the split -----------------------------------------------------------------------------
def test_parse_shard_accepts_k_of_n_and_refuses_the_rest():
    assert parse_shard("2/4") == Shard(2, 4)
    assert parse_shard(" 1 / 1 ") == Shard(1, 1)
    assert str(parse_shard("3/8")) == "3/8"
    for bad in ("0/4", "5/4", "1/0", "2", "a/b", "-1/4", "1/4/2", ""):
        with pytest.raises(UsageError):
            parse_shard(bad)


def test_the_split_is_stable_and_covers_every_name_once():
    # Pinned: the split must not change between versions, machines or Python builds
    # (a job matrix relies on it; Python's own hash() is salted per process).
    assert [shard_of(n, 4) for n in ("icon-sword", "icon-shield", "icon-potion", "hero")] == [2, 3, 3, 1]
    names = [f"asset-{i}" for i in range(500)]
    parts = [select(names, Shard(k, 5)) for k in range(1, 6)]
    assert sorted(sum(parts, [])) == sorted(names)
    assert all(len(p) > 60 for p in parts)  # roughly even
    assert parts[0] == [n for n in names if n in set(parts[0])]  # spec order kept


def test_a_group_stays_in_one_shard():
    # Issue 13's asset graph: a parent and what is made from it share the parent's shard.
    names = ["knight", "knight-night", "knight-winter", "dragon", "dragon-baby"]
    root = {n: n.split("-")[0] for n in names}
    placed = {n: k for k in range(1, 4) for n in select(names, Shard(k, 3), root.get)}
    assert placed["knight"] == placed["knight-night"] == placed["knight-winter"]
    assert placed["dragon"] == placed["dragon-baby"]


def test_bad_shard_on_the_command_line_is_a_usage_error(tmp_path, monkeypatch):
    monkeypatch.setenv("RECRAFT_BUILD_CACHE", str(tmp_path / "cache"))
    (tmp_path / "assets.yaml").write_text(SPEC)
    err = io.StringIO()
    assert main(["build", "-f", str(tmp_path / "assets.yaml"), "--shard", "5/4"], stdout=io.StringIO(), stderr=err) == 2
    assert "--shard" in err.getvalue()


def test_plan_shows_what_a_shard_would_build(tmp_path, monkeypatch):
    monkeypatch.delenv("RECRAFT_API_TOKEN", raising=False)
    monkeypatch.delenv("REPLICATE_API_TOKEN", raising=False)
    monkeypatch.setenv("RECRAFT_BUILD_CACHE", str(tmp_path / "cache"))
    (tmp_path / "assets.yaml").write_text(SPEC)
    seen = []
    for k in range(1, 4):
        out = io.StringIO()
        argv = ["plan", "-f", str(tmp_path / "assets.yaml"), "--shard", f"{k}/3", "--json"]
        assert main(argv, stdout=out, stderr=io.StringIO()) == 0
        seen.append([a["name"] for a in json.loads(out.getvalue())["assets"]])
    assert sorted(sum(seen, [])) == [f"icon-{c}" for c in ITEMS]


# -- N CI jobs against one remote cache, then the frozen assembly ---------------------------------
def _env(server: FakeServer) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RECRAFT_", "REPLICATE_"))}
    env["RECRAFT_API_TOKEN"] = TOKEN
    env["RECRAFT_API_BASE"] = server.recraft_base
    return env


def _checkout(root: Path) -> Path:
    root.mkdir(parents=True)
    (root / "assets.yaml").write_text(SPEC)
    return root


def _tree(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()
            and not p.name.startswith(".recraft-build")}


def test_four_shards_at_once_pay_each_picture_once_and_assemble_the_single_build(tmp_path, nginx_cache):
    with FakeServer(token=TOKEN) as server:
        env = _env(server)
        jobs = []
        for k in range(1, 5):
            job = _checkout(tmp_path / f"job-{k}")
            argv = [sys.executable, "-m", "recraft_build", "build", "--shard", f"{k}/4", "--json",
                    "--cache-dir", str(tmp_path / f"cache-{k}"), "--remote-cache", nginx_cache.url]
            jobs.append(subprocess.Popen(argv, cwd=job, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                         text=True))
        built: list[str] = []
        for proc in jobs:
            out, err = proc.communicate(timeout=240)
            assert proc.returncode == 0, err
            data = json.loads(out)
            assert all(a["status"] == "generated" for a in data["assets"]), data
            built += [a["name"] for a in data["assets"]]
        assert sorted(built) == [f"icon-{c}" for c in ITEMS]  # every asset by exactly one job
        assert server.counts["generations"] == len(ITEMS)  # each picture paid for once

        # The assembling job: a fresh checkout (no outputs, no lock from the shards), --frozen.
        final = _checkout(tmp_path / "assemble")
        run = subprocess.run(
            [sys.executable, "-m", "recraft_build", "build", "--frozen", "--json", "--cache-dir",
             str(tmp_path / "cache-final"), "--remote-cache", nginx_cache.url, "--remote-cache-mode", "read"],
            cwd=final, env=env, capture_output=True, text=True, timeout=240,
        )
        assert run.returncode == 0, run.stderr
        assert json.loads(run.stdout)["summary"]["restored"] == len(ITEMS)
        assert server.counts["generations"] == len(ITEMS)  # zero paid calls to assemble
        assert server.paid_calls == len(ITEMS)

    # The same spec built once, on one machine, by another (identical) provider.
    with FakeServer(token=TOKEN) as other:
        single = _checkout(tmp_path / "single")
        run = subprocess.run(
            [sys.executable, "-m", "recraft_build", "build", "--json", "--cache-dir", str(tmp_path / "cache-single")],
            cwd=single, env=_env(other), capture_output=True, text=True, timeout=240,
        )
        assert run.returncode == 0, run.stderr
    assembled, alone = _tree(final / "out"), _tree(single / "out")
    assert assembled.keys() == alone.keys() and len(assembled) == len(ITEMS) + 1  # + manifest.json
    assert assembled == alone
    locks = [json.loads((d / "assets.lock").read_text())["assets"] for d in (final, single)]
    assert {n: e["outputs"] for n, e in locks[0].items()} == {n: e["outputs"] for n, e in locks[1].items()}


def test_the_ci_example_runs_every_shard_then_a_frozen_assembly():
    """examples/ci/github-actions.yml: the commands the test above runs, as a job matrix."""
    import shlex

    import yaml

    from recraft_build.cli import build_parser

    workflow = yaml.safe_load((Path(__file__).resolve().parent.parent / "examples" / "ci" / "github-actions.yml").read_text())
    assert "RECRAFT_BUILD_REMOTE_CACHE" in workflow["env"]
    shard_job, assemble = workflow["jobs"]["shard"], workflow["jobs"]["assemble"]
    assert assemble["needs"] == "shard"
    (command,) = [s["run"] for s in shard_job["steps"] if s.get("run", "").startswith("recraft-build ")]
    values = shard_job["strategy"]["matrix"]["shard"]
    shards = []
    for value in values:
        args = build_parser().parse_args(shlex.split(command.replace("${{ matrix.shard }}", str(value)))[1:])
        assert args.command == "build" and not args.frozen
        shards.append(parse_shard(args.shard))
    assert sorted(shards) == [Shard(k, len(values)) for k in range(1, len(values) + 1)]
    (final,) = [s["run"] for s in assemble["steps"] if s.get("run", "").startswith("recraft-build ")]
    args = build_parser().parse_args(shlex.split(final)[1:])
    assert args.frozen and args.shard is None and args.remote_cache_mode == "read"
    assert args.provider == build_parser().parse_args(shlex.split(command.replace("${{ matrix.shard }}", "1"))[1:]).provider
