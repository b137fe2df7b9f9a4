"""pick and reroll: the lock records the choice; a pick never pays, a reroll keeps the old set."""

from __future__ import annotations

import hashlib
import io
import json

import httpx
import pytest

from recraft_build.review import picking
from recraft_build.cli import main
from recraft_build.errors import BudgetError, PlanError, UsageError
from recraft_build.engine.lock import Lock
from recraft_build.cache.local import Store

from review_fixtures import SPEC, make_project


@pytest.fixture
def project(tmp_path):
    return make_project(tmp_path, git=False)


def test_pick_records_the_choice_and_rebuilds_outputs_from_the_cache(project):
    before = (project.out / "icons/sword.png").read_bytes()
    result = picking.pick(project.spec, "icon-sword", 2, **project.kw())
    assert [(a.name, a.status) for a in result.assets] == [("icon-sword", "restored")]
    assert result.summary()["generated"] == 0
    assert project.generation("icon-sword")["pick"] == 2
    after = (project.out / "icons/sword.png").read_bytes()
    assert after != before
    # The lock pins the new output, and picking 0 again gives back the very same bytes.
    files = project.lock_data()["assets"]["icon-sword"]["outputs"][0]["files"]
    assert files[0]["sha256"] == hashlib.sha256(after).hexdigest()
    picking.pick(project.spec, "icon-sword", 0, **project.kw())
    assert (project.out / "icons/sword.png").read_bytes() == before


def test_pick_touches_only_that_asset(project):
    lock_before = project.lock_data()
    shield = (project.out / "icons/shield.png").read_bytes()
    picking.pick(project.spec, "icon-sword", 1, **project.kw())
    lock_after = project.lock_data()
    assert lock_after["assets"]["icon-shield"] == lock_before["assets"]["icon-shield"]
    assert lock_after["assets"]["coin"] == lock_before["assets"]["coin"]
    assert (project.out / "icons/shield.png").read_bytes() == shield


def test_index_out_of_range_names_the_range_and_changes_nothing(project):
    text = project.lock.read_text()
    with pytest.raises(UsageError, match=r"3 candidate\(s\): INDEX must be 0 to 2, not 3"):
        picking.pick(project.spec, "icon-sword", 3, **project.kw())
    with pytest.raises(UsageError, match="0 to 2, not -1"):
        picking.pick(project.spec, "icon-sword", -1, **project.kw())
    assert project.lock.read_text() == text


def test_unknown_asset_suggests_close_names(project):
    with pytest.raises(UsageError, match=r"no asset named 'icon-swrod'.*did you mean icon-sword"):
        picking.pick(project.spec, "icon-swrod", 1, **project.kw())


def test_an_asset_never_built_asks_for_a_build_first(tmp_path):
    p = make_project(tmp_path, git=False, build=False)
    p.build("coin")
    with pytest.raises(UsageError, match=r"'icon-sword' has not been built yet.*recraft-build build icon-sword"):
        picking.pick(p.spec, "icon-sword", 1, **p.kw())
    with pytest.raises(UsageError, match="has not been built yet"):
        picking.reroll(p.spec, "icon-sword", **p.kw())


def test_exact_target_matches_only_its_own_name():
    import fnmatch

    names = ["a*", "ab", "a?", "a[b]", "ab]"]
    for name in names:
        assert [n for n in names if fnmatch.fnmatchcase(n, picking.exact_target(name))] == [name]


def test_pick_refuses_when_the_spec_changed_since_the_build(project):
    project.spec.write_text(SPEC.replace("flat game icon of a", "shiny icon of a"))
    text = project.lock.read_text()
    with pytest.raises(PlanError, match=r"'icon-sword' changed since its last build \(changed: prompt\)"):
        picking.pick(project.spec, "icon-sword", 1, **project.kw())
    assert project.lock.read_text() == text


def test_pick_never_generates_when_the_candidates_are_not_cached(project, tmp_path):
    text = project.lock.read_text()
    kw = {"cache_dir": tmp_path / "empty-cache", "env": {}}
    with pytest.raises(PlanError, match="not in the cache"):
        picking.pick(project.spec, "icon-sword", 1, **kw)
    assert project.lock.read_text() == text
    # Nothing was made in that cache either.
    with Store(tmp_path / "empty-cache") as store:
        cand = project.generation("icon-sword")["candidates"][1]["sha256"]
        assert not store.has_blob(cand)


def test_a_pick_during_a_build_is_not_lost(project):
    # A build holds the lock in memory while it runs, then saves its own asset.
    build_view = Lock.load(project.lock)
    entry = build_view.asset("coin")
    build_view.set_asset("coin", entry.with_generation(entry.generation.replace(credits=99)))
    picking.pick(project.spec, "icon-shield", 2, **project.kw())
    build_view.save()
    data = project.lock_data()["assets"]
    assert data["icon-shield"]["generation"]["pick"] == 2
    assert data["coin"]["generation"]["credits"] == 99


def test_reroll_makes_a_new_candidate_set_and_keeps_the_old_one_cached(project):
    old = project.generation("icon-sword")
    result = picking.reroll(project.spec, "icon-sword", **project.kw())
    assert [(a.name, a.status) for a in result.assets] == [("icon-sword", "generated")]
    new = project.generation("icon-sword")
    assert new["roll"] == 1
    assert new["key"] != old["key"]
    assert new["pick"] == 0
    assert len(new["candidates"]) == 3
    with Store(project.cache) as store:
        assert all(store.has_blob(c["sha256"]) for c in old["candidates"])
        assert store.get_record(old["key"]) is not None
    # A second reroll counts on.
    picking.reroll(project.spec, "icon-sword", **project.kw())
    assert project.generation("icon-sword")["roll"] == 2


def test_reroll_over_budget_is_refused_before_the_lock_changes(project):
    text = project.lock.read_text()
    env = {"RECRAFT_API_TOKEN": "test-token-not-real"}
    with pytest.raises(BudgetError, match="over --max-credits 1"):
        picking.reroll(project.spec, "icon-sword", cache_dir=project.cache, env=env, max_credits=1)
    assert project.lock.read_text() == text


def test_a_failed_reroll_puts_the_old_roll_back(project):
    text = project.lock.read_text()
    seen = []

    def refuse(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        return httpx.Response(401, json={"error": "bad token"})

    env = {"RECRAFT_API_TOKEN": "test-token-not-real"}
    with httpx.Client(transport=httpx.MockTransport(refuse)) as client:
        result = picking.reroll(project.spec, "icon-sword", cache_dir=project.cache, env=env, client=client)
    assert seen, "the provider was asked"
    assert [a.status for a in result.assets] == ["failed"]
    assert project.lock.read_text() == text


def test_cli_pick_and_reroll(project):
    out, err = io.StringIO(), io.StringIO()
    args = ["-f", str(project.spec), "--cache-dir", str(project.cache), "--provider", "placeholder"]
    assert main(["pick", "icon-shield", "1", *args], stdout=out, stderr=err) == 0
    assert "picked candidate 1 of icon-shield" in err.getvalue()
    assert project.generation("icon-shield")["pick"] == 1
    err = io.StringIO()
    assert main(["pick", "icon-shield", "9", *args], stdout=out, stderr=err) == 2
    assert "INDEX must be 0 to 2" in err.getvalue()
    out, err = io.StringIO(), io.StringIO()
    assert main(["reroll", "coin", "--json", *args], stdout=out, stderr=err) == 0
    assert json.loads(out.getvalue())["assets"][0]["status"] == "generated"
    assert project.generation("coin")["roll"] == 1


PAID_SPEC = """\
version: 1
output_dir: out
defaults: {model: recraftv3, style: digital_illustration, size: 1024x1024}
assets:
  - name: badge
    prompt: "a round badge"
    n: 3
    steps: [{remove_background: {engine: provider}}]
    output: badge.png
"""


def test_a_pick_that_needs_paid_provider_steps_asks_for_a_budget(tmp_path):
    from fakeserver import FakeServer

    p = make_project(tmp_path, spec=PAID_SPEC, git=False, build=False)
    with FakeServer() as server:
        env = {"RECRAFT_API_TOKEN": server.token, "RECRAFT_API_BASE": server.recraft_base}
        result = p.build(env=env)
        assert [a.status for a in result.assets] == ["generated"]
        paid = dict(server.counts)
        text = p.lock.read_text()
        # The new candidate needs the provider's remove_background: refused by default.
        with pytest.raises(PlanError, match=r"needs provider steps that cost about \d+ credits.*--max-credits"):
            picking.pick(p.spec, "badge", 1, cache_dir=p.cache, env=env)
        assert p.lock.read_text() == text
        assert dict(server.counts) == paid
        # Allowed within a budget: one tool call, no generation.
        picking.pick(p.spec, "badge", 1, cache_dir=p.cache, env=env, max_credits=100)
        assert p.generation("badge")["pick"] == 1
        assert server.counts["generations"] == paid.get("generations")
        assert server.counts["tools"] == paid.get("tools", 0) + 1
        # Back to 0: its remove_background is cached, so it is free again.
        picking.pick(p.spec, "badge", 0, cache_dir=p.cache, env=env)
        assert server.counts["tools"] == paid.get("tools", 0) + 1
    # A teammate without the token: the uncached step needs the provider that made it.
    with pytest.raises(PlanError, match="made by recraft while the active provider is placeholder"):
        picking.pick(p.spec, "badge", 2, cache_dir=p.cache, env={}, max_credits=100)
    assert p.generation("badge")["pick"] == 0


def test_a_file_asset_has_nothing_to_pick_or_reroll(tmp_path, monkeypatch):
    import io as _io

    from PIL import Image

    from recraft_build import api

    monkeypatch.delenv("RECRAFT_API_TOKEN", raising=False)
    monkeypatch.delenv("REPLICATE_API_TOKEN", raising=False)
    (tmp_path / "art").mkdir()
    buf = _io.BytesIO()
    Image.new("RGB", (32, 32), (10, 200, 10)).save(buf, format="PNG")
    (tmp_path / "art" / "logo.png").write_bytes(buf.getvalue())
    spec = tmp_path / "assets.yaml"
    spec.write_text("version: 1\nassets:\n  - name: logo\n    image: {file: art/logo.png}\n    output: logo.png\n")
    cache = tmp_path / "cache"
    assert not api.build(spec, cache_dir=cache).failed
    lock = (tmp_path / "assets.lock").read_text()
    for action in (lambda: picking.reroll(spec, "logo", cache_dir=cache), lambda: picking.pick(spec, "logo", 0, cache_dir=cache)):
        with pytest.raises(UsageError, match="picture file art/logo.png"):
            action()
    assert (tmp_path / "assets.lock").read_text() == lock
