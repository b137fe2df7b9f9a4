"""Planning along the asset graph (recraft_build.engine.graphplan): pure, with plain
stand-ins for the lock, the cache and the output tree."""

from __future__ import annotations

import dataclasses

from recraft_build.cache.records import RecordReader
from recraft_build.domain import FILE_MODEL, Asset, GenerationRequest, ImageInput, OutputSpec
from recraft_build.engine import keys
from recraft_build.engine.inputs import SourcePicture
from recraft_build.engine.lockdata import LockedAsset
from recraft_build.engine.plan import PlanInputs, ProviderInfo, make_plan

from engine_fakes import DictRecords, FlatPricing, asset, make_spec

REAL = ProviderInfo("recraft", "recraft", True, frozenset())
PARENT_PICTURE = "c" * 64
SKETCH = SourcePicture("art/sketch.png", "e" * 64, "image/png", 600, 400, 1234)


def child(name: str, parent: str, prompt: str = "at night") -> Asset:
    return Asset(
        name=name,
        request=GenerationRequest(model="recraftv3", prompt=prompt, operation="image_to_image", strength=0.4),
        outputs=(OutputSpec(path=f"{name}.png", format="png"),),
        image=ImageInput(asset=parent),
    )


def file_asset(name: str = "sketch") -> Asset:
    return Asset(name=name, request=GenerationRequest(FILE_MODEL, "", operation=FILE_MODEL),
                 outputs=(OutputSpec(path=f"{name}.png", format="png"),), image=ImageInput(file=SKETCH.path))


def entry(a: Asset, digest: str, family: str = "recraft") -> dict:
    export_key = keys.step_key("export", {"format": "png"}, 1, digest)
    return {
        "generation": {"key": keys.generation_key(family, a.request), "family": family,
                       "request": keys.request_fields(a.request), "candidates": [{"sha256": digest}], "pick": 0},
        "steps": [],
        "outputs": [{"path": f"{a.name}.png", "key": export_key, "steps": [],
                     "files": [{"path": f"{a.name}.png", "sha256": "f" * 64}]}],
    }


def plan(spec, lock=None, *, blobs=(), files=None, targets=None, force=False):
    files = files if files is not None else {}
    inputs = PlanInputs(
        provider=REAL,
        records=RecordReader(DictRecords()),
        blob_present=lambda d: d in set(blobs),
        observe=lambda p: files.get(p),
        pricing=FlatPricing(),
        sources={SKETCH.path: SKETCH},
    )
    typed = {name: LockedAsset.from_json(e) for name, e in (lock or {}).items()}
    return make_plan(spec, typed, inputs, targets=targets, force=force)


def test_a_child_of_a_new_parent_is_generated_after_it_and_priced(tmp_path):
    spec = make_spec(tmp_path, [child("night", "knight"), asset("knight")])
    p = plan(spec)
    assert [a.name for a in p.assets] == ["knight", "night"]
    night = p.assets[1]
    assert night.status == "generate" and night.after == ("knight",) and night.gen_key == ""
    assert night.credits == 40 and p.credits == 80
    resolved = p.resolve(night, {"knight": PARENT_PICTURE})
    assert resolved.asset.request.image == PARENT_PICTURE and resolved.after == ()
    with_input = dataclasses.replace(night.asset.request, image=PARENT_PICTURE)
    assert resolved.gen_key == keys.generation_key("recraft", with_input)


def test_a_child_of_an_up_to_date_parent_has_its_key_at_once(tmp_path):
    knight = asset("knight")
    spec = make_spec(tmp_path, [knight, child("night", "knight")])
    files = {"knight.png": "f" * 64}
    p = plan(spec, {"knight": entry(knight, PARENT_PICTURE)}, blobs=[PARENT_PICTURE], files=files)
    knight_plan, night = p.assets
    assert knight_plan.status == "up-to-date" and knight_plan.picked == PARENT_PICTURE
    assert night.status == "generate" and night.asset.request.image == PARENT_PICTURE and night.after == ()
    # built: the child's own lock entry makes it up to date; a new pick of the parent does not
    built = dataclasses.replace(night.asset.request)
    lock = {"knight": entry(knight, PARENT_PICTURE),
            "night": entry(dataclasses.replace(night.asset, request=built), "d" * 64)}
    assert [a.status for a in plan(spec, lock, blobs=[PARENT_PICTURE], files={**files, "night.png": "f" * 64}).assets] \
        == ["up-to-date", "up-to-date"]
    repicked = dict(lock, knight=entry(knight, "9" * 64))
    statuses = [(a.name, a.status, a.reasons) for a in plan(spec, repicked, blobs=["9" * 64],
                                                            files={**files, "night.png": "f" * 64}).assets]
    assert statuses[1] == ("night", "generate", ["changed: image"])


def test_a_child_whose_pinned_input_is_in_no_cache_is_marked(tmp_path):
    knight = asset("knight")
    spec = make_spec(tmp_path, [knight, child("night", "knight")])
    p = plan(spec, {"knight": entry(knight, PARENT_PICTURE)}, blobs=[], files={"knight.png": "f" * 64})
    night = p.assets[1]
    assert night.missing_input == ("knight", PARENT_PICTURE)
    assert "is in no cache" in night.reasons[-1]


def test_a_file_asset_is_restored_from_its_file_never_generated(tmp_path):
    sketch = file_asset()
    spec = make_spec(tmp_path, [sketch, child("sketch-night", "sketch")])
    p = plan(spec)  # nothing in any cache
    first, second = p.assets
    assert first.status == "restore" and first.gen_key == keys.file_key(SKETCH.sha256)
    assert first.credits == 0 and first.candidates[0].sha256 == SKETCH.sha256
    assert "picture from file art/sketch.png" in first.reasons
    # its child knows its input at once (the file's digest), and is not refused
    assert second.after == () and second.asset.request.image == SKETCH.sha256 and second.missing_input is None


def test_targets_bring_in_stale_ancestors_and_force_only_rerolls_targets(tmp_path):
    knight = asset("knight")
    spec = make_spec(tmp_path, [knight, child("night", "knight"), child("poster", "night"), asset("other")])
    assert [a.name for a in plan(spec, targets=["poster"]).assets] == ["knight", "night", "poster"]
    lock = {"knight": entry(knight, PARENT_PICTURE)}
    files = {"knight.png": "f" * 64}
    p = plan(spec, lock, blobs=[PARENT_PICTURE], files=files, targets=["night"])
    assert [a.name for a in p.assets] == ["night"]
    forced = plan(spec, lock, blobs=[PARENT_PICTURE], files=files, targets=["night"], force=True)
    assert [(a.name, a.roll) for a in forced.assets] == [("night", 1)]
