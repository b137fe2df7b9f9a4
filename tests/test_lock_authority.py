"""The lock is the authority: an approved picture is never repainted or swapped behind
the user's back, whatever a cache or a remote says (issue 11)."""

from __future__ import annotations

import io
import json
import shutil

import pytest

from fakeserver import FakeServer, use_fake_recraft
from nginx import nginx_cache  # noqa: F401  (fixture)
from recraft_build.cli import main

TOKEN = "sk-authority-test-token"

SPEC = """\
version: 1
output_dir: out
defaults: {model: recraftv3, style: digital_illustration, size: 1024x1024}
assets:
  - name: ui-heart
    prompt: "a red heart icon"
    steps: [{resize: {width: 64}}]
    output: heart.png
  - name: ui-star
    prompt: "a gold star icon"
    output: star.png
"""


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def server():
    with FakeServer(token=TOKEN) as s:
        yield s


@pytest.fixture
def env(monkeypatch, server):
    use_fake_recraft(monkeypatch, server)


def _teammate(tmp_path, src):
    mate = tmp_path / "mate"
    mate.mkdir()
    shutil.copy(src / "assets.yaml", mate / "assets.yaml")
    shutil.copy(src / "assets.lock", mate / "assets.lock")
    return mate


def test_a_pinned_picture_no_cache_holds_is_refused_not_repainted(tmp_path, env, server):
    me = tmp_path / "me"
    me.mkdir()
    (me / "assets.yaml").write_text(SPEC)
    assert run("build", "-f", str(me / "assets.yaml"), "--cache-dir", str(tmp_path / "c1"))[0] == 0
    paid = server.paid_calls
    mate = _teammate(tmp_path, me)
    lock_before = (mate / "assets.lock").read_text()
    for targets in ([], ["ui-heart"]):
        code, _, err = run("build", "-f", str(mate / "assets.yaml"), "--cache-dir", str(tmp_path / "c2"), *targets)
        assert code == 3, err
        assert "ui-heart" in err and "in no cache" in err and "reroll ui-heart" in err and "--remote-cache" in err
        assert (mate / "assets.lock").read_text() == lock_before
        assert not (mate / "out").exists()
    assert server.paid_calls == paid
    # plan says so before anyone builds
    code, out, _ = run("plan", "-f", str(mate / "assets.yaml"), "--cache-dir", str(tmp_path / "c2"), "--json")
    assert code == 0
    assert {a["name"]: a["pinned_missing"] for a in json.loads(out)["assets"]} == {"ui-heart": True, "ui-star": True}
    # reroll is the explicit way to pay for a new picture
    code, _, err = run("reroll", "-f", str(mate / "assets.yaml"), "--cache-dir", str(tmp_path / "c2"), "ui-heart")
    assert code == 0, err
    assert server.paid_calls == paid + 1


def test_a_folder_remote_filled_elsewhere_restores_byte_identical_for_free(tmp_path, env, server):
    me = tmp_path / "me"
    me.mkdir()
    (me / "assets.yaml").write_text(SPEC)
    team = tmp_path / "team-cache"
    team.mkdir()
    assert run("build", "-f", str(me / "assets.yaml"), "--cache-dir", str(tmp_path / "c1"),
               "--remote-cache", str(team))[0] == 0
    paid = server.paid_calls
    mate = _teammate(tmp_path, me)
    code, _, err = run("build", "-f", str(mate / "assets.yaml"), "--cache-dir", str(tmp_path / "c2"),
                       "--remote-cache", f"file://{team}", "--frozen")
    assert code == 0, err
    assert server.paid_calls == paid
    for name in ("heart.png", "star.png"):
        assert (mate / "out" / name).read_bytes() == (me / "out" / name).read_bytes()


def test_poisoned_records_never_change_an_output(tmp_path, env, server):
    """Swap the step and export records of one asset for another's (as a hostile shared
    cache could): the lock's digests win, with --frozen and without."""
    from recraft_build.cache.local import Store

    me = tmp_path / "me"
    me.mkdir()
    (me / "assets.yaml").write_text(SPEC)
    cache = tmp_path / "c1"
    assert run("build", "-f", str(me / "assets.yaml"), "--cache-dir", str(cache))[0] == 0
    lock = json.loads((me / "assets.lock").read_text())["assets"]
    heart, star = lock["ui-heart"], lock["ui-star"]
    good = (me / "out" / "heart.png").read_bytes()
    store = Store(cache)
    try:
        star_export = store.get_record(star["outputs"][0]["key"])
        # heart's export now claims to be star's picture; its resize step points at star's candidate
        store.put_record(heart["outputs"][0]["key"], star_export)
        store.put_record(heart["steps"][0]["key"] if heart["steps"] else heart["outputs"][0]["steps"][0]["key"], {
            "kind": "step", "step": "resize",
            "output": {"sha256": star["generation"]["candidates"][0]["sha256"], "media_type": "image/png"},
        })
        # and a favicon-style extra file smuggled into the export record
        bad = dict(star_export)
        bad["files"] = list(bad["files"]) + [{"name": "index.html", "sha256": star_export["files"][0]["sha256"]}]
        store.put_record(star["outputs"][0]["key"], bad)
    finally:
        store.close()
    (me / "out" / "heart.png").unlink()
    (me / "out" / "star.png").unlink()
    for extra in (["--frozen"], []):
        code, _, err = run("build", "-f", str(me / "assets.yaml"), "--cache-dir", str(cache), *extra)
        assert code == 0, err
        assert (me / "out" / "heart.png").read_bytes() == good
        assert not list((me / "out").rglob("index.html"))
        assert json.loads((me / "assets.lock").read_text())["assets"] == lock
        code, out, _ = run("status", "-f", str(me / "assets.yaml"), "--cache-dir", str(cache))
        assert code == 0 and "stale" not in out


def test_replicate_limits_are_refused_up_front_with_the_line(tmp_path, monkeypatch):
    monkeypatch.setenv("REPLICATE_API_TOKEN", "r8_test")
    monkeypatch.delenv("RECRAFT_API_TOKEN", raising=False)
    spec = tmp_path / "assets.yaml"
    spec.write_text(
        "version: 1\nassets:\n  - name: hero\n    prompt: a hero\n    output: hero.png\n"
        "  - name: logo\n    prompt: a logo\n    negative_prompt: text\n    output: logo.png\n"
    )
    code, _, err = run("plan", "-f", str(spec), "--provider", "replicate", "--cache-dir", str(tmp_path / "c"))
    assert code == 3
    # The field's own line (8), not the asset's (6).
    assert f"{spec}:8:" in err and f"{spec}:6:" not in err and "negative_prompt" in err and "'logo'" in err and "hero" not in err.split("problem")[0].replace("'logo'", "")
    code, _, err = run("validate", "-f", str(spec), "--provider", "replicate")
    assert code == 3 and "negative_prompt" in err
    assert run("validate", "-f", str(spec))[0] == 0


def test_a_refused_field_inherited_from_defaults_points_at_the_defaults_line(tmp_path, monkeypatch):
    monkeypatch.setenv("REPLICATE_API_TOKEN", "r8_test")
    spec = tmp_path / "assets.yaml"
    spec.write_text(
        "version: 1\ndefaults:\n  model: recraftv3\n  controls:\n    colors: ['#ff0000']\n"
        "assets:\n  - name: hero\n    prompt: a hero\n    output: hero.png\n"
    )
    code, _, err = run("validate", "-f", str(spec), "--provider", "replicate")
    assert code == 3 and "controls" in err and "'hero'" in err
    assert f"{spec}:4:" in err or f"{spec}:5:" in err, err
    assert f"{spec}:7:" not in err


def test_a_picture_swapped_in_the_lock_by_hand_is_reported(tmp_path, monkeypatch):
    monkeypatch.delenv("RECRAFT_API_TOKEN", raising=False)
    monkeypatch.delenv("REPLICATE_API_TOKEN", raising=False)
    spec = tmp_path / "assets.yaml"
    spec.write_text(SPEC)
    cache = str(tmp_path / "c")
    assert run("build", "-f", str(spec), "--cache-dir", cache)[0] == 0
    subprocess_git(tmp_path, "init", "-q")
    subprocess_git(tmp_path, "add", "assets.lock")
    subprocess_git(tmp_path, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "lock")
    data = json.loads((tmp_path / "assets.lock").read_text())
    heart, star = data["assets"]["ui-heart"], data["assets"]["ui-star"]
    heart["generation"]["candidates"] = star["generation"]["candidates"]  # another (cached) picture
    (tmp_path / "assets.lock").write_text(json.dumps(data, indent=2, sort_keys=True))
    code, out, _ = run("status", "-f", str(spec), "--cache-dir", cache)
    assert "edited" in out and "ui-heart" in out and "edited by hand" in out
    code, out, _ = run("status", "-f", str(spec), "--cache-dir", cache, "--json")
    assets = {a["name"]: a for a in json.loads(out)["assets"]}
    assert assets["ui-heart"]["hand_edited"] and not assets["ui-star"]["hand_edited"]
    code, out, _ = run("diff", "-f", str(spec))
    assert code == 0 and "edited by hand" in out and "ui-heart" in out


def subprocess_git(cwd, *args):
    import subprocess

    subprocess.run(["git", *args], cwd=cwd, check=True)


def test_poisoned_records_on_a_shared_nginx_remote_never_change_an_output(tmp_path, env, server, nginx_cache):
    """A hostile writer to the team's nginx cache swaps the action records of one asset
    (its generation, step and export) for another's. A fresh clone restoring from it,
    with --frozen and without, writes the approved bytes or refuses; it never writes
    the swapped picture and never pays."""
    me = tmp_path / "me"
    me.mkdir()
    (me / "assets.yaml").write_text(SPEC)
    assert run("build", "-f", str(me / "assets.yaml"), "--cache-dir", str(tmp_path / "c1"),
               "--remote-cache", nginx_cache.url)[0] == 0
    lock = json.loads((me / "assets.lock").read_text())["assets"]
    heart, star = lock["ui-heart"], lock["ui-star"]
    good = {name: (me / "out" / name).read_bytes() for name in ("heart.png", "star.png")}
    records = {p.name: p for p in nginx_cache.root.rglob("*") if p.is_file() and p.parent.name == "ac"}
    heart_keys = [heart["generation"]["key"], heart["outputs"][0]["key"],
                  *(s["key"] for s in heart["steps"] + heart["outputs"][0]["steps"])]
    star_export = records[star["outputs"][0]["key"]].read_bytes()
    star_generation = records[star["generation"]["key"]].read_bytes()
    swapped = 0
    for key in heart_keys:
        if key in records:
            body = star_generation if key == heart["generation"]["key"] else star_export
            records[key].write_bytes(body)
            swapped += 1
    assert swapped >= 2, sorted(records)
    paid = server.paid_calls
    for n, extra in enumerate((["--frozen"], [])):
        mate = tmp_path / f"mate{n}"
        mate.mkdir()
        shutil.copy(me / "assets.yaml", mate / "assets.yaml")
        shutil.copy(me / "assets.lock", mate / "assets.lock")
        code, _, err = run("build", "-f", str(mate / "assets.yaml"), "--cache-dir", str(tmp_path / f"cm{n}"),
                           "--remote-cache", nginx_cache.url, "--remote-cache-mode", "read", *extra)
        # The lock's digests name the right blobs, which the remote still holds: the
        # swapped records are ignored and each output restored or remade locally.
        assert code == 0, err
        for name, data in good.items():
            assert (mate / "out" / name).read_bytes() == data, (extra, name)
        assert json.loads((mate / "assets.lock").read_text())["assets"] == lock
    assert server.paid_calls == paid
