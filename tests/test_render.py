"""What a person reads: the plan, the build summary, errors once (issue 12's console items)."""

from __future__ import annotations

import io
import json

import pytest

from recraft_build.cli import main

SPEC = """\
version: 1
output_dir: out
defaults: {model: recraftv3, style: digital_illustration, size: 1024x1024}
assets:
  - name: "icon-{{ item }}"
    matrix: {item: [a, b]}
    prompt: "icon {{ item }}"
    outputs:
      - path: "icons/{{ item }}.png"
        steps: [{resize: {width: 64}}]
        scales: [1, 2]
"""


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.delenv("RECRAFT_API_TOKEN", raising=False)
    monkeypatch.delenv("REPLICATE_API_TOKEN", raising=False)
    monkeypatch.setenv("RECRAFT_BUILD_CACHE", str(tmp_path / "cache"))
    (tmp_path / "assets.yaml").write_text(SPEC)
    return tmp_path / "assets.yaml"


def test_plan_names_each_steps_output_and_engine(project):
    code, out, _ = run("plan", "-f", str(project))
    assert code == 0
    lines = [l.strip() for l in out.splitlines() if "step resize" in l]
    # one line per output file (1x and 2x), each naming it: no two identical lines
    assert len(lines) == 4 and len(set(lines)) == 4
    assert any("icons/a.png" in l for l in lines) and any("icons/a@2x.png" in l for l in lines)
    assert all("(local)" in l for l in lines)


def test_plan_without_a_token_shows_what_a_real_provider_would_cost(project):
    code, out, _ = run("plan", "-f", str(project))
    last = out.strip().splitlines()[-1]
    assert "0 credits" in last and "with provider placeholder" in last
    assert "with a real provider about 80 credits ($0.08)" in last
    code, out, _ = run("plan", "-f", str(project), "--json")
    assert json.loads(out)["summary"]["real_provider_credits"] == 80


def test_costs_are_called_credits_everywhere(project):
    _, out, _ = run("plan", "-f", str(project))
    assert " cr " not in out and "API units" not in out
    from recraft_build.cli import build_parser

    assert "API units" not in build_parser().format_help()


def test_summary_counts_failed_and_skipped_apart_and_prints_each_error_once(tmp_path, monkeypatch):
    from fakeserver import FakeServer

    spec = tmp_path / "assets.yaml"
    spec.write_text(
        "version: 1\noutput_dir: out\nassets:\n"
        "  - name: \"icon-{{ item }}\"\n    matrix: {item: [a, b, c, d, e, f]}\n"
        "    prompt: \"icon {{ item }}\"\n    output: \"{{ item }}.png\"\n"
    )
    with FakeServer(token="t") as server:
        monkeypatch.setenv("RECRAFT_API_TOKEN", "t")
        monkeypatch.setenv("RECRAFT_API_BASE", server.recraft_base)
        server.add_fault("generate", "status", status=400, body='{"code": "bad", "message": "no"}', content_type="application/json")
        code, out, err = run("build", "-f", str(spec), "--cache-dir", str(tmp_path / "c"), "-j", "1", "--json")
    assert code == 1
    summary = json.loads(out)["summary"]
    assert summary["failed"] >= 1 and summary["failed"] + summary["skipped"] == 6
    assert summary["skipped"] == 6 - summary["failed"]
    last = err.strip().splitlines()[-1]
    assert f"failed {summary['failed']}" in last and f"not built {summary['skipped']}" in last
    # every failure line once
    failure_lines = [l for l in err.splitlines() if l.strip().startswith("failed ")]
    assert len(failure_lines) == len(set(failure_lines)) == summary["failed"]
