"""The planner is pure: plain dicts and functions stand in for the lock, cache and files."""

from __future__ import annotations

import pytest

from recraft_build.engine import keys
from recraft_build.errors import PlanError
from recraft_build.cache.records import RecordReader
from recraft_build.engine.lockdata import LockedAsset
from recraft_build.engine.plan import PlanInputs, ProviderInfo, make_plan, resolve_engine

from engine_fakes import DictRecords, FlatPricing, asset, make_spec

REAL = ProviderInfo("recraft", "recraft", True, frozenset({"remove_background", "vectorize"}))
OFFLINE = ProviderInfo("placeholder", "placeholder", False, frozenset())


def plan(spec, lock=None, *, provider=REAL, records=None, blobs=(), files=None, force=False, targets=None):
    files = files or {}
    store = records if isinstance(records, DictRecords) else DictRecords(records)
    inputs = PlanInputs(
        provider=provider,
        records=RecordReader(store),
        blob_present=lambda d: d in set(blobs),
        observe=lambda p: files.get(p),
        pricing=FlatPricing(),
    )
    typed = {name: LockedAsset.from_json(entry) for name, entry in (lock or {}).items()}
    return make_plan(spec, typed, inputs, force=force, targets=targets)


def locked_entry(spec_asset, family="recraft", digest="c" * 64, files=None):
    req = spec_asset.request
    export_key = keys.step_key("export", {"format": "png"}, 1, digest)
    return {
        "generation": {
            "key": keys.generation_key(family, req),
            "family": family,
            "request": keys.request_fields(req),
            "candidates": [{"sha256": digest}],
            "pick": 0,
        },
        "steps": [],
        "outputs": [{"path": f"{spec_asset.name}.png", "key": export_key, "steps": [],
                     "files": files or [{"path": f"{spec_asset.name}.png", "sha256": "f" * 64}]}],
    }


def test_new_assets_generate_and_are_priced(tmp_path):
    spec = make_spec(tmp_path, [asset("a", n=3), asset("b", prompt="q")])
    p = plan(spec)
    assert [a.status for a in p.assets] == ["generate", "generate"]
    assert p.assets[0].reasons == ["new asset"]
    assert p.credits == 160
    assert p.to_json()["summary"]["usd"] == 0.16


def test_placeholder_is_free(tmp_path):
    assert plan(make_spec(tmp_path, [asset("a")]), provider=OFFLINE).credits == 0


def test_up_to_date_when_lock_and_files_match(tmp_path):
    a = asset("a")
    p = plan(make_spec(tmp_path, [a]), {"a": locked_entry(a)}, files={"a.png": "f" * 64})
    assert p.assets[0].status == "up-to-date" and p.credits == 0


def test_changed_prompt_names_the_field(tmp_path):
    a = asset("a")
    changed = asset("a", prompt="new prompt")
    p = plan(make_spec(tmp_path, [changed]), {"a": locked_entry(a)}, files={"a.png": "f" * 64})
    assert p.assets[0].status == "generate"
    assert p.assets[0].reasons == ["changed: prompt"]


def test_hand_edited_output_is_restored(tmp_path):
    a = asset("a")
    p = plan(make_spec(tmp_path, [a]), {"a": locked_entry(a)}, files={"a.png": "e" * 64}, blobs={"c" * 64})
    assert p.assets[0].status == "restore"
    assert any("edited by hand" in r for r in p.assets[0].reasons)


def test_missing_picture_everywhere_means_generate(tmp_path):
    a = asset("a")
    p = plan(make_spec(tmp_path, [a]), {"a": locked_entry(a)}, files={})
    assert p.assets[0].status == "generate"
    assert p.assets[0].pinned_missing
    assert any("pinned in the lock is in no cache" in r for r in p.assets[0].reasons)


def test_cached_record_without_lock_restores(tmp_path):
    a = asset("a")
    key = keys.generation_key("recraft", a.request)
    p = plan(make_spec(tmp_path, [a]), records={key: {"kind": "generate", "candidates": [{"sha256": "d" * 64}]}}, blobs={"d" * 64})
    assert p.assets[0].status == "restore" and p.credits == 0


def test_lock_made_by_real_provider_is_honoured_offline(tmp_path):
    a = asset("a")
    p = plan(make_spec(tmp_path, [a]), {"a": locked_entry(a)}, provider=OFFLINE, files={"a.png": "f" * 64})
    assert p.assets[0].status == "up-to-date"
    assert p.assets[0].family == "recraft"


def test_force_and_targets(tmp_path):
    a, b = asset("a"), asset("b", prompt="q")
    spec = make_spec(tmp_path, [a, b])
    p = plan(spec, {"a": locked_entry(a)}, files={"a.png": "f" * 64}, force=True, targets=["a"])
    assert [x.name for x in p.assets] == ["a"]
    assert p.assets[0].status == "generate"


def test_provider_step_priced_and_engine_resolved(tmp_path):
    a = asset("a", steps=[("remove_background", {"engine": "provider"})])
    p = plan(make_spec(tmp_path, [a]))
    assert p.assets[0].steps[0].params["engine"] == "provider"
    assert p.credits == 50


def test_the_default_engine_does_not_depend_on_the_provider(tmp_path):
    # The offline preview runs what the real build runs: auto is the local engine.
    a = asset("a", steps=["remove_background", "vectorize"])
    real = plan(make_spec(tmp_path, [a]))
    offline = plan(make_spec(tmp_path, [a]), provider=OFFLINE)
    for p in (real, offline):
        assert [s.params["engine"] for s in p.assets[0].steps] == ["local", "local"]
    assert real.credits == 40 and offline.credits == 0
    assert [s.key for s in real.assets[0].steps] == [s.key for s in offline.assets[0].steps] == [None, None]


def test_local_only_parameters_with_the_provider_engine_are_refused(tmp_path):
    a = asset("a", steps=[("vectorize", {"engine": "provider", "filter_speckle": 4})])
    with pytest.raises(PlanError, match="filter_speckle.*local vectorize engine"):
        plan(make_spec(tmp_path, [a]))


def test_upscale_needs_a_capable_provider(tmp_path):
    with pytest.raises(PlanError, match="crisp_upscale"):
        resolve_engine("upscale", {}, OFFLINE)
    with pytest.raises(PlanError, match="engine: local"):
        resolve_engine("vectorize", {"engine": "provider"}, OFFLINE)


def test_plan_makes_no_calls_beyond_its_lookups(tmp_path):
    spy = DictRecords()
    a = asset("a")
    plan(make_spec(tmp_path, [a]), records=spy)
    assert spy.asked == [keys.generation_key("recraft", a.request)]


def test_placeholder_pictures_are_replaced_once_a_real_provider_is_active(tmp_path):
    a = asset("a")
    p = plan(make_spec(tmp_path, [a]), {"a": locked_entry(a, family="placeholder")}, files={"a.png": "f" * 64})
    assert p.assets[0].status == "generate"
    assert p.assets[0].family == "recraft"
    assert any("placeholder" in r for r in p.assets[0].reasons)


# -- the estimate is what the build pays (issue 11) -----------------------------------------
from recraft_build.domain import OutputSpec, StepSpec  # noqa: E402

RB = StepSpec("remove_background", {"engine": "provider"})


def test_a_provider_step_shared_by_outputs_is_counted_once(tmp_path):
    outs = (
        OutputSpec(path="a.png", format="png", steps=(RB, StepSpec("resize", {"width": 64}))),
        OutputSpec(path="a@2x.png", format="png", steps=(RB, StepSpec("resize", {"width": 128}))),
        OutputSpec(path="fav", format="ico", favicon=True, steps=(RB,)),
        OutputSpec(path="b.svg", format="svg", steps=(RB, StepSpec("vectorize", {"engine": "provider"}))),
    )
    p = plan(make_spec(tmp_path, [asset("a", outputs=outs)]))
    # One generation, one removal shared by four outputs, one vectorize.
    assert p.credits == 40 + 10 + 10
    shared = [o.steps[0].shared for o in p.assets[0].outputs]
    assert shared == [False, True, True, True] and not p.assets[0].outputs[3].steps[1].shared
    assert p.to_json()["assets"][0]["outputs"][1]["steps"][0]["shared"] is True


def test_identical_requests_in_two_assets_are_paid_once(tmp_path):
    spec = make_spec(tmp_path, [asset("x", prompt="same", steps=[("remove_background", {"engine": "provider"})]),
                                asset("y", prompt="same", steps=[("remove_background", {"engine": "provider"})])])
    p = plan(spec)
    assert [a.credits for a in p.assets] == [50, 0] and p.credits == 50


def test_a_cached_provider_step_whose_result_is_gone_is_priced(tmp_path):
    from recraft_build.cache.records import StepOutput, StepRecord

    spec = make_spec(tmp_path, [asset("a", steps=[("remove_background", {"engine": "provider"})])])
    entry = locked_entry(spec.assets[0])
    entry["outputs"] = []  # the output is new: the picture must be re-processed
    typed = LockedAsset.from_json(entry)
    params = {"engine": "provider"}
    step_key = keys.step_key("remove_background", params, 1, "c" * 64, family="recraft")
    record = StepRecord("remove_background", StepOutput("d" * 64, "image/png", 1, 1, 1), 10).to_json()
    kept = plan(spec, {"a": entry}, records={step_key: record}, blobs=["c" * 64, "d" * 64])
    assert kept.assets[0].status == "restore" and kept.credits == 0
    gone = plan(spec, {"a": entry}, records={step_key: record}, blobs=["c" * 64])
    assert gone.assets[0].status == "restore" and gone.credits == 10
    assert gone.assets[0].steps[0].status == "run"
    assert typed.generation.key == gone.assets[0].gen_key


def test_custom_style_creation_is_priced_once_until_made(tmp_path):
    import dataclasses

    from recraft_build.domain import StyleSpec

    base = asset("a")
    styled = [dataclasses.replace(base, name=n, request=dataclasses.replace(base.request, prompt=n, style="", style_ref="brand"))
              for n in ("a", "b")]
    spec = dataclasses.replace(make_spec(tmp_path, styled),
                               styles={"brand": StyleSpec("brand", "digital_illustration", ("r.png",))})

    def with_styles(**kw):
        inputs = PlanInputs(provider=kw.get("provider", REAL), records=RecordReader(DictRecords(kw.get("records"))),
                            blob_present=lambda d: False, observe=lambda p: None, pricing=FlatPricing(),
                            style_keys={"brand": "s" * 64}, locked_styles=kw.get("locked", {}))
        return make_plan(spec, {}, inputs)

    p = with_styles()
    assert p.styles == {"brand": 10} and p.credits == 2 * 40 + 10
    assert p.to_json()["summary"]["styles_to_create"] == {"brand": 10}
    assert with_styles(locked={"brand": "s" * 64}).styles == {}
    assert with_styles(records={"s" * 64: {"kind": "style", "style_id": "x", "provider": "recraft"}}).styles == {}
    assert with_styles(locked={"brand": "t" * 64}).styles == {"brand": 10}  # another key: made again
    assert with_styles(provider=OFFLINE).credits == 0
