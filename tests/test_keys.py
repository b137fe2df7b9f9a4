"""Cache keys are pinned: a change here re-generates (re-pays for) every picture."""

from __future__ import annotations

import dataclasses

import pytest

from recraft_build.engine import keys
from recraft_build.domain import GenerationRequest

REQ = GenerationRequest(
    model="recraftv3",
    prompt="flat game icon of a sword",
    style="digital_illustration",
    substyle="pixel_art",
    size="1024x1024",
    n=2,
    controls={"colors": ["#2b2d42"], "background_color": "#ffffff"},
)


def test_golden_generation_key():
    assert keys.generation_key("recraft", REQ) == "6d0e23c15171f9a1bd76bc11b2502a985bbbfef58389a859fe70b1570dc2df96"


def test_golden_placeholder_key_differs_from_real_family():
    assert keys.generation_key("placeholder", REQ) == "bc1fba752075cc3a1686df6b4de8fb631a3062a93b436bb413248b2cae0be0c5"


def test_golden_step_keys():
    assert keys.step_key("resize", {"width": 128}, 1, "a" * 64) == (
        "c25634ff9d4b85d7e65c285e51f43a84ac7537db925015d5c3e3bc510953db02"
    )
    assert keys.step_key("remove_background", {"engine": "provider"}, 1, "a" * 64, family="recraft") == (
        "536a29e1944dc02a23ec8d40438ca409669b7f9f59c86782bcca30473a53e77f"
    )


def test_golden_style_key():
    assert keys.style_key("recraft", "digital_illustration", ["b" * 64, "c" * 64]) == (
        "7dd23d50a48a40877452b479fb15e0c7e0b611f082af161b0185cee966667fe7"
    )


def test_key_independent_of_dict_order():
    a = dataclasses.replace(REQ, controls={"background_color": "#ffffff", "colors": ["#2b2d42"]})
    assert keys.generation_key("recraft", a) == keys.generation_key("recraft", REQ)
    assert keys.step_key("resize", {"height": 2, "width": 1}, 1, "d") == keys.step_key(
        "resize", {"width": 1, "height": 2}, 1, "d"
    )


@pytest.mark.parametrize(
    "change",
    [
        {"prompt": "flat game icon of a shield"},
        {"model": "recraftv2"},
        {"size": "1820x1024"},
        {"n": 3},
        {"seed": 7},
        {"substyle": "grain"},
        {"negative_prompt": "text"},
        {"controls": {"colors": ["#000000"]}},
    ],
)
def test_every_picture_parameter_changes_the_key(change):
    assert keys.generation_key("recraft", dataclasses.replace(REQ, **change)) != keys.generation_key("recraft", REQ)


def test_absent_optional_fields_do_not_enter_the_key():
    # None is dropped, so adding a new optional field later keeps old keys stable.
    payload = keys.request_fields(REQ)
    assert "seed" not in payload and "style_id" not in payload


def test_step_key_changes_with_params_version_input_and_engine_family():
    base = keys.step_key("resize", {"width": 128}, 1, "a" * 64)
    assert keys.step_key("resize", {"width": 64}, 1, "a" * 64) != base
    assert keys.step_key("resize", {"width": 128}, 2, "a" * 64) != base
    assert keys.step_key("resize", {"width": 128}, 1, "b" * 64) != base
    assert keys.step_key("resize", {"width": 128}, 1, "a" * 64, family="recraft") != base


def test_canonical_json_refuses_nan():
    with pytest.raises(ValueError):
        keys.canonical_json({"x": float("nan")})


# -- assets made from other pictures (issue 13) -----------------------------------------------

CHILD = GenerationRequest(
    model="recraftv3",
    prompt="the same knight at night",
    style="digital_illustration",
    operation="image_to_image",
    strength=0.4,
    image="a" * 64,
)


def test_golden_keys_of_a_child_and_of_a_file():
    assert keys.generation_key("recraft", CHILD) == (
        "764187e2f88c0924bee8cd10f5a832e9d5b4167c0838e5a9c1ee0f6e5634d843"
    )
    assert keys.file_key("b" * 64) == "efef878797405af586cf5a583fe36854151b44a98445477b66ababec465f48d1"


@pytest.mark.parametrize(
    "change",
    [{"image": "c" * 64}, {"mask": "d" * 64}, {"strength": 0.5}, {"operation": "replace_background"}],
)
def test_a_childs_key_holds_its_inputs(change):
    assert keys.generation_key("recraft", dataclasses.replace(CHILD, **change)) != keys.generation_key("recraft", CHILD)


def test_a_request_without_inputs_keeps_its_key():
    fields = keys.request_fields(REQ)
    assert not {"operation", "image", "mask", "strength"} & set(fields)
