"""The executor with a counting provider, byte-level steps and the real store."""

from __future__ import annotations

import json


from recraft_build.engine.executor import Budget, Executor
from recraft_build.engine.lock import Lock
from recraft_build.engine.outputs import OutputState
from recraft_build.cache.records import RecordReader
from recraft_build.engine.options import BuildOptions
from recraft_build.engine.plan import PlanInputs, ProviderInfo, make_plan
from recraft_build.cache.local import Store
from recraft_build.domain import OutputSpec

from engine_fakes import ByteSteps, CountingProvider, FlatPricing, asset, make_spec


def run(tmp_path, spec, provider, steps, *, force=False, keep_going=True, budget=None, targets=None):
    store = Store(tmp_path / "cache")
    lock = Lock.load(spec.lock_path)
    out = tmp_path / "out"
    state = OutputState(out)
    info = ProviderInfo(provider.name, provider.family, provider.paid, frozenset({"remove_background"}))
    inputs = PlanInputs(
        provider=info, records=RecordReader(store, memo=True), blob_present=store.has_blob,
        observe=state.observe, pricing=FlatPricing(),
    )
    plan = make_plan(spec, lock.entries(), inputs, force=force, targets=targets)
    ex = Executor(
        store=store, provider=provider, lock=lock, output_dir=out, state=state, steps=steps,
        pricing=FlatPricing(), options=BuildOptions(keep_going=keep_going), budget=budget,
    )
    try:
        return plan, ex.run(plan)
    finally:
        lock.save()
        store.close()


def test_first_build_generates_second_is_noop(tmp_path):
    spec = make_spec(tmp_path, [asset("a", steps=["trim"]), asset("b", prompt="other")])
    prov, steps = CountingProvider(), ByteSteps()
    plan, res = run(tmp_path, spec, prov, steps)
    assert [a.status for a in res.assets] == ["generated", "generated"]
    assert sorted(prov.calls) == ["a", "b"]
    assert (tmp_path / "out" / "a.png").read_bytes().startswith(b"p#0|trim")
    prov2 = CountingProvider()
    plan2, res2 = run(tmp_path, spec, prov2, ByteSteps())
    assert [a.status for a in plan2.assets] == ["up-to-date", "up-to-date"]
    assert prov2.calls == []


def test_identical_requests_pay_once(tmp_path):
    spec = make_spec(tmp_path, [asset(f"x{i}", prompt="same") for i in range(6)])
    prov = CountingProvider()
    _, res = run(tmp_path, spec, prov, ByteSteps())
    assert len(prov.calls) == 1
    assert {a.status for a in res.assets} == {"generated"}


def test_failure_is_isolated_and_keep_going(tmp_path):
    spec = make_spec(tmp_path, [asset("ok1"), asset("bad", prompt="q"), asset("ok2", prompt="r")])
    prov = CountingProvider(fail_on={"bad"})
    _, res = run(tmp_path, spec, prov, ByteSteps())
    by = {a.name: a for a in res.assets}
    assert by["bad"].status == "failed" and "boom" in by["bad"].error and "bad" in by["bad"].error
    assert by["ok1"].status == by["ok2"].status == "generated"
    lock = json.loads(spec.lock_path.read_text())
    assert set(lock["assets"]) == {"ok1", "ok2"}


def test_changing_a_step_reruns_only_the_step(tmp_path):
    spec = make_spec(tmp_path, [asset("a", steps=[("resize", {"width": 10})])])
    run(tmp_path, spec, CountingProvider(), ByteSteps())
    spec2 = make_spec(tmp_path, [asset("a", steps=[("resize", {"width": 20})])])
    prov, steps = CountingProvider(), ByteSteps()
    plan, res = run(tmp_path, spec2, prov, steps)
    assert plan.assets[0].status == "restore"
    assert prov.calls == [] and steps.runs == ["a:resize"]
    assert b"width', 20" in (tmp_path / "out" / "a.png").read_bytes()


def test_deleted_output_restored_without_provider(tmp_path):
    spec = make_spec(tmp_path, [asset("a")])
    run(tmp_path, spec, CountingProvider(), ByteSteps())
    (tmp_path / "out" / "a.png").unlink()
    prov = CountingProvider()
    plan, res = run(tmp_path, spec, prov, ByteSteps())
    assert plan.assets[0].status == "restore" and "output missing: a.png" in plan.assets[0].reasons
    assert prov.calls == [] and (tmp_path / "out" / "a.png").exists()


def test_provider_step_is_paid_once_and_cached(tmp_path):
    spec = make_spec(tmp_path, [asset("a", steps=[("remove_background", {"engine": "provider"})])])
    prov = CountingProvider()
    plan, res = run(tmp_path, spec, prov, ByteSteps())
    assert plan.assets[0].credits == 50  # 40 generation + 10 background removal
    assert prov.calls == ["a", "a:remove_background"]
    assert res.assets[0].credits == 50
    (tmp_path / "out" / "a.png").unlink()
    prov2 = CountingProvider()
    run(tmp_path, spec, prov2, ByteSteps())
    assert prov2.calls == []


def test_budget_stops_before_a_paid_call(tmp_path):
    spec = make_spec(tmp_path, [asset("a", prompt="1"), asset("b", prompt="2"), asset("c", prompt="3")])
    prov = CountingProvider()
    _, res = run(tmp_path, spec, prov, ByteSteps(), budget=Budget(80))
    statuses = sorted(a.status for a in res.assets)
    assert statuses == ["failed", "generated", "generated"]
    assert len(prov.calls) == 2
    failed = [a for a in res.assets if a.status == "failed"][0]
    assert "max-credits" in failed.error


def test_favicon_output_writes_a_set(tmp_path):
    outs = (OutputSpec(path="fav", format="ico", favicon=True),)
    spec = make_spec(tmp_path, [asset("logo", outputs=outs)])
    _, res = run(tmp_path, spec, CountingProvider(), ByteSteps())
    assert sorted(o.path for o in res.assets[0].outputs) == ["fav/favicon.ico", "fav/icon-192.png"]
    assert (tmp_path / "out" / "fav" / "favicon.ico").exists()


def test_two_outputs_same_content_different_paths(tmp_path):
    outs = (OutputSpec(path="one/a.png", format="png"), OutputSpec(path="two/a.png", format="png"))
    spec = make_spec(tmp_path, [asset("a", outputs=outs)])
    run(tmp_path, spec, CountingProvider(), ByteSteps())
    assert (tmp_path / "out" / "one" / "a.png").read_bytes() == (tmp_path / "out" / "two" / "a.png").read_bytes()


def test_force_regenerates(tmp_path):
    spec = make_spec(tmp_path, [asset("a")])
    run(tmp_path, spec, CountingProvider(), ByteSteps())
    prov = CountingProvider()
    plan, _ = run(tmp_path, spec, prov, ByteSteps(), force=True)
    assert plan.assets[0].status == "generate" and plan.assets[0].reasons == ["--force"]


def test_force_pays_for_new_pictures_and_keeps_the_old(tmp_path):
    spec = make_spec(tmp_path, [asset("a")])
    run(tmp_path, spec, CountingProvider(), ByteSteps())
    first = json.loads(spec.lock_path.read_text())["assets"]["a"]["generation"]
    prov = CountingProvider()
    run(tmp_path, spec, prov, ByteSteps(), force=True)
    second = json.loads(spec.lock_path.read_text())["assets"]["a"]["generation"]
    assert prov.calls == ["a"]
    assert second["roll"] == 1 and second["key"] != first["key"]


def test_provider_step_on_an_output_is_counted_in_the_asset_cost(tmp_path):
    from recraft_build.domain import StepSpec

    outs = (OutputSpec(path="a.png", format="png", steps=(StepSpec("remove_background", {"engine": "provider"}),)),)
    spec = make_spec(tmp_path, [asset("a", outputs=outs)])
    prov = CountingProvider()
    _, res = run(tmp_path, spec, prov, ByteSteps())
    assert prov.calls == ["a", "a:remove_background"]
    assert res.assets[0].credits == 50
