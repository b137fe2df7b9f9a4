"""Every example under examples/ validates and plans, through the real command line."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from recraft_build.cli import main
from recraft_build.spec.loader import load_spec

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted(ROOT.glob("examples/*/assets.yaml"))


def run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(argv, stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.parent.name)
def test_example_validates(example: Path):
    code, _, err = run(["validate", "-f", str(example)])
    assert code == 0, err


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.parent.name)
def test_example_plans_with_a_cost_estimate(example: Path, tmp_path: Path, monkeypatch):
    # plan is pure: the token is only there to choose the paid provider's prices.
    monkeypatch.setenv("RECRAFT_API_TOKEN", "not-a-real-token")
    monkeypatch.delenv("RECRAFT_API_BASE", raising=False)
    code, out, err = run(["plan", "-f", str(example), "--json", "--provider", "recraft",
                          "--cache-dir", str(tmp_path / "cache"), "-o", str(tmp_path / "out")])
    assert code == 0, err
    plan = json.loads(out)
    names = [a.name for a in load_spec(example).assets]
    assert [a["name"] for a in plan["assets"]] == names
    assert all(a["status"] == "generate" for a in plan["assets"])
    summary = plan["summary"]
    assert summary["credits"] > 0
    assert summary["usd"] == pytest.approx(summary["credits"] / 1000)
    assert not (tmp_path / "out").exists()  # planning writes nothing
