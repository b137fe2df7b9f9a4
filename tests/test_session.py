"""The session: the environment read once, the same provider for plan and build."""

from __future__ import annotations

import gc

import pytest

from recraft_build import api
from recraft_build.settings import Settings, choose_provider, env_value

SPEC = "version: 1\nassets:\n  - name: hero\n    prompt: a hero\n    output: hero.png\n"


@pytest.mark.parametrize("blank", ["", "   ", "\t\n"])
def test_a_blank_token_is_unset_for_plan_and_build_alike(tmp_path, blank):
    # Regression: plan read the variable unstripped (recraft family) while build stripped
    # it (placeholder), so a placeholder picture was cached under a recraft key.
    spec = tmp_path / "assets.yaml"
    spec.write_text(SPEC)
    env = {"RECRAFT_API_TOKEN": blank}
    kw = dict(cache_dir=tmp_path / "cache", env=env)
    planned = api.plan(spec, **kw)
    assert (planned.provider.name, planned.provider.family) == ("placeholder", "placeholder")
    built = api.build(spec, **kw)
    assert [a.status for a in built.assets] == ["generated"]
    lock = (tmp_path / "assets.lock").read_text()
    assert '"family": "placeholder"' in lock
    # With a real token, the placeholder picture is not taken for a real one.
    real = api.plan(spec, cache_dir=tmp_path / "cache", env={"RECRAFT_API_TOKEN": "r8_real"})
    assert real.provider.family == "recraft"
    assert [a.status for a in real.assets] == ["generate"]


def test_choose_provider_is_the_one_auto_rule():
    assert choose_provider("auto", {}) == "placeholder"
    assert choose_provider("auto", {"REPLICATE_API_TOKEN": " t "}) == "replicate"
    assert choose_provider("auto", {"RECRAFT_API_TOKEN": "x", "REPLICATE_API_TOKEN": "y"}) == "recraft"
    assert choose_provider("replicate", {}) == "replicate"
    assert env_value({"A": "  v \n"}, "A") == "v"


def test_settings_resolve_remote_and_provider_from_the_environment():
    s = Settings(env={"RECRAFT_BUILD_REMOTE_CACHE": " http://c:8080 ", "RECRAFT_BUILD_REMOTE_CACHE_MODE": "read"})
    assert s.remote_url() == "http://c:8080" and s.remote_access() == "read"
    assert Settings(remote_cache="http://x", env={}).remote_url() == "http://x"
    assert Settings(env={}).remote_access() == "read-write"


def test_a_session_leaves_no_frozen_objects_behind(tmp_path):
    spec = tmp_path / "assets.yaml"
    spec.write_text(SPEC)
    before = gc.get_freeze_count()
    for _ in range(3):
        api.plan(spec, cache_dir=tmp_path / "cache", env={})
    assert gc.get_freeze_count() <= before


def test_unknown_options_are_refused():
    with pytest.raises(TypeError, match="jbos"):
        api.build("x.yaml", jbos=3)


def test_plan_warms_a_remote_with_the_pictures_of_missing_outputs(tmp_path):
    """A fresh clone: the files the lock pins are fetched at once, before the plan looks
    for them; a tree with its outputs asks nothing."""
    import json
    import shutil

    from recraft_build.cache.local import Store
    from recraft_build.engine.session import Session

    spec = tmp_path / "assets.yaml"
    spec.write_text(SPEC.replace("hero.png", "hero.svg").replace("a hero", "a hero\n    style: vector_illustration"))
    api.build(spec, cache_dir=tmp_path / "cache", env={})
    hero = json.loads((tmp_path / "assets.lock").read_text())["assets"]["hero"]
    picked = hero["generation"]["candidates"][0]["sha256"]
    files = [f["sha256"] for o in hero["outputs"] for f in o["files"]]
    asked: list[list[str]] = []
    fetched: list[list[str]] = []

    class Warmable(Store):
        def warm(self, digests, *, fetch=()):
            asked.append(list(digests))
            fetched.append(list(fetch))

    def open_store(settings, warn):
        return Warmable(tmp_path / "cache", warn=warn)

    with Session.open(spec, Settings(env={}), open_store=open_store) as session:
        session.plan()
    assert asked == []  # outputs on disk: nothing to ask
    shutil.rmtree(tmp_path / "build")
    with Session.open(spec, Settings(env={}), open_store=open_store) as session:
        session.plan()
    assert asked == [[]] and fetched == [files] and files and picked not in files
