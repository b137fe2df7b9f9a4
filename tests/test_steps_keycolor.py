"""Tests for recraft_build.steps.keycolor: picking key colours and resolving key: auto."""

from __future__ import annotations

from pathlib import Path

import pytest

from recraft_build.engine import keys
from recraft_build.errors import SpecError
from recraft_build.spec.loader import parse_spec
from recraft_build.steps.keycolor import (
    KEY_CANDIDATES,
    SAFE_DISTANCE,
    SHADOW_FLOOR,
    hex_rgb,
    is_key_like,
    key_distance,
    pick_key,
    prompt_colours,
)


def _spec(body: str, tmp_path: Path):
    text = "version: 1\ndefaults: {model: recraftv3, size: 1024x1024}\nassets:\n" + body
    return parse_spec(text, "assets.yaml", base_dir=tmp_path)


def test_key_distance_is_zero_on_the_key_and_its_shadows_only():
    key = hex_rgb("#ff00ff")
    assert key_distance(key, key) == 0
    assert key_distance((128, 0, 128), key) < 1  # the key half in shadow
    assert key_distance((0, 0, 0), key) > 80  # black is darker than any shadow
    assert key_distance((255, 255, 255), key) > 250
    assert key_distance(tuple(SHADOW_FLOOR * k for k in key), key) < 1


def test_prompt_colours_reads_colour_words_and_coloured_things():
    assert prompt_colours("a PURPLE potion") == [hex_rgb("#8a2be2"), hex_rgb("#a020f0")]
    assert prompt_colours("a frog on grass") == [hex_rgb("#4caf50"), hex_rgb("#4caf50")]
    assert prompt_colours("a sword") == []


def test_pick_key_prefers_magenta_and_avoids_named_colours():
    assert pick_key("a sword") == KEY_CANDIDATES[0] == "#ff00ff"
    assert pick_key("a purple potion") != "#ff00ff"
    assert pick_key("a violet flower") != "#ff00ff"
    green_and_purple = pick_key("a green dragon with purple wings")
    assert green_and_purple not in ("#ff00ff", "#00ff00")
    # controls.colors count like prompt colours
    assert pick_key("a sword", ["#e040e0"]) != "#ff00ff"


def test_pick_key_takes_the_farthest_candidate_when_none_is_safe():
    everything = [c for c in KEY_CANDIDATES]
    key = pick_key("", everything)
    assert key in KEY_CANDIDATES
    nearest = min(key_distance(hex_rgb(c), hex_rgb(key)) for c in everything)
    assert nearest < SAFE_DISTANCE


def test_is_key_like():
    assert all(is_key_like(hex_rgb(c)) for c in KEY_CANDIDATES)
    assert not is_key_like((255, 255, 255)) and not is_key_like((244, 241, 234))


def test_key_auto_sets_the_background_colour_and_the_step_key(tmp_path):
    spec = _spec(
        "  - name: potion\n"
        "    prompt: a purple potion\n"
        "    controls: {colors: ['#2B2D42']}\n"
        "    steps: [{remove_background: {key: auto, shadow: drop}}]\n"
        "    outputs:\n"
        "      - path: potion.png\n"
        "      - path: potion.svg\n"
        "        steps: [{remove_background: {key: auto}}, {vectorize: {palette: auto}}]\n",
        tmp_path,
    )
    (asset,) = spec.assets
    key = pick_key("a purple potion", ["#2b2d42"])
    assert key != "#ff00ff"
    assert asset.request.controls == {"colors": ["#2b2d42"], "background_color": key}
    assert asset.steps[0].params == {"key": key, "shadow": "drop"}
    svg_steps = asset.outputs[1].steps
    assert svg_steps[0].params == {"key": key}
    assert svg_steps[1].params == {"palette": ["#2b2d42"]}


def test_assets_without_key_auto_keep_their_request_and_generation_key(tmp_path):
    body = ("  - name: sword\n    prompt: a sword\n    controls: {colors: ['#2b2d42']}\n"
            "    steps: [remove_background, {vectorize: {palette: ['#ffffff']}}]\n"
            "    output: sword.svg\n")
    spec = _spec(body, tmp_path)
    (asset,) = spec.assets
    assert asset.request.controls == {"colors": ["#2b2d42"]}
    assert asset.steps[0].params == {}
    assert asset.steps[1].params == {"palette": ["#ffffff"]}
    # The same request as a spec without the new feature gives: the same key.
    plain = _spec("  - name: sword\n    prompt: a sword\n    controls: {colors: ['#2b2d42']}\n"
                  "    output: sword.png\n", tmp_path).assets[0]
    assert keys.generation_key("recraft", asset.request) == keys.generation_key("recraft", plain.request)


def test_key_auto_with_an_explicit_background_colour_is_a_spec_error(tmp_path):
    with pytest.raises(SpecError) as info:
        _spec("  - name: coin\n    prompt: a coin\n    controls: {background_color: '#ffffff'}\n"
              "    steps: [{remove_background: {key: auto}}]\n    output: coin.png\n", tmp_path)
    (problem,) = info.value.problems
    assert problem.line == 7 and "steps[0]" in problem.path
    assert "#ffffff" in problem.message and "background_color" in problem.hint


def test_palette_auto_without_colours_is_a_spec_error(tmp_path):
    with pytest.raises(SpecError) as info:
        _spec("  - name: coin\n    prompt: a coin\n    output: coin.png\n"
              "    steps: [{vectorize: {palette: auto}}]\n", tmp_path)
    (problem,) = info.value.problems
    assert "controls.colors" in problem.message


def test_the_schema_refuses_a_bad_key(tmp_path):
    with pytest.raises(SpecError) as info:
        _spec("  - name: coin\n    prompt: a coin\n    output: coin.png\n"
              "    steps: [{remove_background: {key: green}}]\n", tmp_path)
    assert any("key" in p.path for p in info.value.problems)
