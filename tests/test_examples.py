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


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.parent.name)
def test_example_builds_offline_with_its_atlases_and_typescript_module(example: Path, tmp_path: Path, monkeypatch):
    import shutil
    import subprocess

    from PIL import Image

    work = tmp_path / example.parent.name
    shutil.copytree(example.parent, work, ignore=shutil.ignore_patterns("build", "src", "*.lock", ".recraft-build"))
    monkeypatch.delenv("RECRAFT_API_TOKEN", raising=False)
    monkeypatch.delenv("REPLICATE_API_TOKEN", raising=False)
    spec = load_spec(work / "assets.yaml")
    args = ["-f", str(work / "assets.yaml"), "--cache-dir", str(tmp_path / "cache")]
    code, _, err = run(["build", *args])
    assert code == 0, err
    out = work / "build"
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(manifest["assets"]) == {a.name for a in spec.assets}
    for atlas in spec.atlases:
        for scale in atlas.scales:
            logical = f"{atlas.path}{'' if scale == 1 else f'@{scale:g}x'}.json"
            doc = json.loads((out / manifest["files"][logical]).read_text())
            with Image.open((out / manifest["files"][logical]).parent / doc["meta"]["image"]) as page:
                size = page.size
            assert sorted(doc["frames"]) == sorted(f.name for f in atlas.frames)
            for f in doc["frames"].values():
                r = f["frame"]
                assert r["x"] + r["w"] <= size[0] and r["y"] + r["h"] <= size[1]
    if spec.manifest.typescript:
        module = work / spec.manifest.typescript
        assert all(f'readonly "{a.name}": Asset;' in module.read_text() for a in spec.assets)
        tsc = shutil.which("tsc")
        if tsc:  # (test_manifests.py says why it is skipped without it)
            done = subprocess.run([tsc, "--noEmit", "--strict", "--target", "es2017", str(module)],
                                  capture_output=True, text=True, timeout=300)
            assert done.returncode == 0, done.stdout
    code, text, err = run(["build", "--json", *args])
    assert code == 0 and {a["status"] for a in json.loads(text)["assets"]} == {"up-to-date"}, err
