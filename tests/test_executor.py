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


# -- spend: every paid call counted, whatever happens to its picture (issue 11) ----------
from dataclasses import dataclass as _dataclass  # noqa: E402

from recraft_build.cache.ledger import MemoryLedger  # noqa: E402
from recraft_build.domain import StepSpec  # noqa: E402
from recraft_build.errors import StepError  # noqa: E402
from recraft_build.providers.base import GenerationResult  # noqa: E402


def run_with(tmp_path, spec, provider, steps, *, ledger=None, budget=None, store=None):
    """Like ``run``, with a ledger (and optionally a store stand-in) of the test's own."""
    own = store is None
    store = store or Store(tmp_path / "cache")
    lock = Lock.load(spec.lock_path)
    out = tmp_path / "out"
    state = OutputState(out)
    info = ProviderInfo(provider.name, provider.family, provider.paid, frozenset({"remove_background"}))
    inputs = PlanInputs(
        provider=info, records=RecordReader(store, memo=True), blob_present=store.has_blob,
        observe=state.observe, pricing=FlatPricing(),
    )
    plan = make_plan(spec, lock.entries(), inputs)
    ex = Executor(
        store=store, provider=provider, lock=lock, output_dir=out, state=state, steps=steps,
        pricing=FlatPricing(), options=BuildOptions(keep_going=True), budget=budget, ledger=ledger,
    )
    try:
        return plan, ex.run(plan)
    finally:
        lock.save()
        if own:
            store.close()


class RejectingSteps(ByteSteps):
    """Steps whose checks refuse every provider result (a background left opaque...)."""

    def check_step_output(self, name, params, before, after, *, asset):
        if name == "remove_background":
            raise StepError("remove_background left no transparent pixel", step=name, asset=asset)


def test_calls_whose_result_the_checks_reject_are_counted(tmp_path):
    spec = make_spec(tmp_path, [asset("a", steps=[("remove_background", {"engine": "provider"})])])
    ledger = MemoryLedger()
    budget = Budget(None)
    _, res = run_with(tmp_path, spec, CountingProvider(), RejectingSteps(), ledger=ledger, budget=budget)
    assert res.assets[0].status == "failed" and "transparent" in res.assets[0].error
    assert [(e.asset, e.operation, e.credits) for e in ledger.entries()] == [
        ("a", "generate", 40), ("a", "remove_background", 10)
    ]
    assert res.summary()["credits"] == 50 and res.assets[0].credits == 50
    assert budget.spent == 50


def test_a_failed_assets_generation_counts_against_max_credits(tmp_path):
    # Each asset: a 40-credit picture, then a provider step that the checks reject.
    spec = make_spec(tmp_path, [asset(f"a{i}", prompt=str(i), steps=[("remove_background", {"engine": "provider"})])
                                for i in range(3)])
    prov = CountingProvider()
    _, res = run_with(tmp_path, spec, prov, RejectingSteps(), budget=Budget(100))
    # 50 + 50 spent; the third picture would pass 100: refused before the call.
    assert len([c for c in prov.calls if ":" not in c]) == 2
    assert res.summary()["credits"] == 100
    assert all(a.status == "failed" for a in res.assets)


@_dataclass(frozen=True)
class _ResentResult(GenerationResult):
    resends: int = 0


class ResendingProvider(CountingProvider):
    """Answers after re-sending the request once (what the HTTP layer reports)."""

    def generate(self, request, *, asset):
        res = super().generate(request, asset=asset)
        return _ResentResult(res.pictures, credits=res.credits, resends=1)


def test_resent_requests_are_reported_as_possibly_billed_twice(tmp_path):
    spec = make_spec(tmp_path, [asset("a"), asset("b", prompt="q")])
    _, res = run_with(tmp_path, spec, ResendingProvider(), ByteSteps())
    s = res.summary()
    assert s["credits"] == 80
    assert s["possibly_billed_twice"] == {"calls": 2, "credits": 80}


def test_spend_of_a_build_is_attributed_to_the_asset_that_paid(tmp_path):
    spec = make_spec(tmp_path, [asset("x0", prompt="same"), asset("x1", prompt="same")])
    _, res = run_with(tmp_path, spec, CountingProvider(), ByteSteps())
    assert sorted(a.credits for a in res.assets) == [0, 40]
    assert res.summary()["credits"] == 40 and res.summary()["calls"] == 1


class HidingStore:
    """A store that has lost some blobs (evicted, or gc'ed by hand)."""

    def __init__(self, inner, hidden):
        self.inner, self.hidden = inner, set(hidden)

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def has_blob(self, digest):
        return digest not in self.hidden and self.inner.has_blob(digest)

    def get_blob(self, digest):
        return None if digest in self.hidden else self.inner.get_blob(digest)


def test_up_to_date_outputs_are_not_paid_for_again_when_another_output_is_rebuilt(tmp_path):
    rb = (StepSpec("remove_background", {"engine": "provider"}),)
    outs = (OutputSpec(path="cut.png", format="png", steps=rb), OutputSpec(path="plain.png", format="png"))
    spec = make_spec(tmp_path, [asset("a", outputs=outs)])
    run_with(tmp_path, spec, CountingProvider(), ByteSteps())
    step_digest = json.loads(spec.lock_path.read_text())["assets"]["a"]["outputs"][0]["steps"][0]["sha256"]
    (tmp_path / "out" / "plain.png").unlink()
    prov = CountingProvider()
    store = Store(tmp_path / "cache")
    try:
        plan, res = run_with(tmp_path, spec, prov, ByteSteps(), store=HidingStore(store, {step_digest}))
    finally:
        store.close()
    assert plan.assets[0].status == "restore" and plan.credits == 0
    assert prov.calls == [] and res.summary()["credits"] == 0
    assert (tmp_path / "out" / "plain.png").exists()
    lock = json.loads(spec.lock_path.read_text())["assets"]["a"]
    assert lock["outputs"][0]["steps"][0]["sha256"] == step_digest  # kept as the lock had it


def test_an_output_the_lock_pins_is_written_from_its_cached_file_for_free(tmp_path):
    """Its provider step's result was evicted, but the file itself is in the cache: it
    is written from there, verified, and nothing before it runs or is paid for."""
    rb = (StepSpec("remove_background", {"engine": "provider"}),)
    outs = (OutputSpec(path="cut.png", format="png", steps=rb),)
    spec = make_spec(tmp_path, [asset("a", outputs=outs)])
    run_with(tmp_path, spec, CountingProvider(), ByteSteps())
    locked = json.loads(spec.lock_path.read_text())["assets"]["a"]
    good = (tmp_path / "out" / "cut.png").read_bytes()
    (tmp_path / "out" / "cut.png").unlink()
    prov = CountingProvider()
    store = Store(tmp_path / "cache")
    try:
        plan, res = run_with(tmp_path, spec, prov, ByteSteps(),
                             store=HidingStore(store, {locked["outputs"][0]["steps"][0]["sha256"]}))
    finally:
        store.close()
    assert plan.assets[0].status == "restore" and plan.credits == 0
    assert prov.calls == [] and res.summary()["credits"] == 0 and res.assets[0].status == "restored"
    assert (tmp_path / "out" / "cut.png").read_bytes() == good
    assert json.loads(spec.lock_path.read_text())["assets"]["a"] == locked


def test_an_evicted_provider_step_is_priced_by_the_plan_and_paid_by_the_build(tmp_path):
    rb = (StepSpec("remove_background", {"engine": "provider"}),)
    outs = (OutputSpec(path="cut.png", format="png", steps=rb),)
    spec = make_spec(tmp_path, [asset("a", outputs=outs)])
    run_with(tmp_path, spec, CountingProvider(), ByteSteps())
    locked = json.loads(spec.lock_path.read_text())["assets"]["a"]["outputs"][0]
    step_digest = locked["steps"][0]["sha256"]
    (tmp_path / "out" / "cut.png").unlink()
    prov = CountingProvider()
    store = Store(tmp_path / "cache")
    try:
        # The file's own blob went too: only the chain can make it again.
        hidden = {step_digest, locked["files"][0]["sha256"]}
        plan, res = run_with(tmp_path, spec, prov, ByteSteps(), store=HidingStore(store, hidden))
    finally:
        store.close()
    assert plan.assets[0].status == "restore"
    assert plan.credits == 10 == res.summary()["credits"]
    assert prov.calls == ["a:remove_background"]


def test_a_placeholder_build_hands_each_new_picture_to_its_steps_without_reading_it_back(tmp_path):
    # The picture just drawn goes to the first step as it is (already decoded), on the
    # worker that drew it: the cache is written, not read back. The files are the
    # ones the steps make from the stored bytes, byte for byte.
    import threading

    from recraft_build.domain import Picture
    from recraft_build.providers.placeholder import PlaceholderProvider
    from recraft_build.steps import registry

    class CountingStore(Store):
        reads = 0

        def get_blob(self, digest):
            CountingStore.reads += 1
            return super().get_blob(digest)

    names = [f"icon{i}" for i in range(6)]
    spec = make_spec(tmp_path, [
        asset(n, prompt=f"icon {n}", outputs=(OutputSpec(path=f"{n}.png", format="png", steps=(
            StepSpec("resize", {"width": 128}),)),)) for n in names
    ])
    store = CountingStore(tmp_path / "cache")
    provider = PlaceholderProvider()
    lock, out = Lock.load(spec.lock_path), tmp_path / "out"
    state = OutputState(out)
    info = ProviderInfo(provider.name, provider.family, provider.paid, frozenset())
    inputs = PlanInputs(provider=info, records=RecordReader(store, memo=True), blob_present=store.has_blob,
                        observe=state.observe, pricing=FlatPricing())
    plan = make_plan(spec, lock.entries(), inputs)
    workers = set()
    real_run_step = registry.run_step

    class Steps:
        def __getattr__(self, name):
            return getattr(registry, name)

        def run_step(self, *a, **kw):
            workers.add(threading.current_thread().name)
            return real_run_step(*a, **kw)

    ex = Executor(store=store, provider=provider, lock=lock, output_dir=out, state=state, steps=Steps(),
                  pricing=FlatPricing(), options=BuildOptions(jobs=2))
    try:
        res = ex.run(plan)
        assert [a.status for a in res.assets] == ["generated"] * len(names)
        assert CountingStore.reads == 0
        assert all(w.startswith("rb-cpu") for w in workers), workers
        entries = lock.entries()
        for n in names:
            stored = store.get_blob(entries[n].generation.candidates[0].sha256)
            small, _ = registry.run_step("resize", {"width": 128}, Picture(stored, "image/png"),
                                         provider=None, asset=n)
            assert (out / f"{n}.png").read_bytes() == registry.export(small, "png", {}, asset=n)
    finally:
        store.close()
