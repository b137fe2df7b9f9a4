"""The JSON Schema files and the schema-error translation: recraft_build.spec.schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

import jsonschema
import pytest

from recraft_build.spec import tables
from recraft_build.spec.schema import load_schema, schema_problems
from recraft_build.steps.catalog import STEP_NAMES, STEPS
from recraft_build.spec.yamlload import load_yaml

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_FILE = ROOT / "schemas" / "recraft-build.schema.json"
PACKAGED_FILE = ROOT / "recraft_build" / "data" / "recraft-build.schema.json"
EXAMPLES = sorted(ROOT.glob("examples/*/assets.yaml"))


def test_the_two_copies_are_identical():
    assert SCHEMA_FILE.read_bytes() == PACKAGED_FILE.read_bytes()


def test_the_package_loads_its_copy():
    assert load_schema() == json.loads(SCHEMA_FILE.read_text("utf-8"))


def test_schema_is_valid_draft_2020_12():
    schema = load_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] and schema["title"]
    jsonschema.Draft202012Validator.check_schema(schema)


def _subschemas(node: Any, path: str = "#") -> Iterator[tuple[str, dict]]:
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            yield from _subschemas(value, f"{path}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _subschemas(value, f"{path}/{i}")


def test_every_property_has_a_description():
    missing = [
        f"{path}/properties/{name}"
        for path, node in _subschemas(load_schema())
        for name, prop in (node.get("properties") or {}).items()
        if isinstance(node.get("properties"), dict) and "description" not in prop
    ]
    assert missing == []


def test_every_fixed_shape_object_refuses_unknown_keys():
    loose = [
        path for path, node in _subschemas(load_schema())
        if isinstance(node.get("properties"), dict) and "additionalProperties" not in node
        and not path.endswith("/properties")
    ]
    assert loose == []


def test_enums_match_the_python_tables():
    defs = load_schema()["$defs"]
    assert defs["defaults"]["properties"]["model"]["enum"] == list(tables.MODELS)
    assert defs["defaults"]["properties"]["substyle"]["enum"] == \
        list(tables.ALL_SUBSTYLES) + [None]
    assert defs["defaults"]["properties"]["style"]["anyOf"][0]["enum"] == \
        list(tables.BASE_STYLES)
    assert defs["customStyle"]["properties"]["style"]["enum"] == list(tables.CUSTOM_STYLE_BASES)
    assert list(defs["stepMapping"]["properties"]) == list(STEP_NAMES)
    assert defs["stepName"]["enum"] == [n for n in STEP_NAMES if not STEPS[n].needs_params]
    # Asset and defaults share their field definitions.
    for name, prop in defs["defaults"]["properties"].items():
        assert defs["asset"]["properties"][name] == prop


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.parent.name)
def test_examples_validate_and_point_editors_at_the_schema(example: Path):
    text = example.read_text("utf-8")
    assert text.startswith("# yaml-language-server: $schema=../../schemas/recraft-build.schema.json")
    doc = load_yaml(text, str(example))
    jsonschema.Draft202012Validator(load_schema()).validate(doc.data)
    assert schema_problems(doc).problems == ()


def test_there_are_two_examples():
    assert {p.parent.name for p in EXAMPLES} >= {"game-icons", "website"}


# -- error translation -------------------------------------------------------------------

def problems(text: str) -> list[str]:
    return [str(p) for p in schema_problems(load_yaml(text, "a.yaml")).problems]


BASE = "version: 1\nassets:\n  - name: a\n    prompt: p\n    output: a.png\n"


def test_valid_minimal_spec_has_no_problems():
    assert problems(BASE) == []


def test_unknown_key_with_suggestion_at_the_key():
    assert problems(BASE + "    promt: hi\n") == [
        "a.yaml:6:5: assets[0].promt: unknown key 'promt' (did you mean 'prompt'?)"]


def test_misplaced_keys_say_where_they_belong():
    (p,) = problems(BASE + "    quality: 80\n")
    assert "quality is an output option" in p
    (p,) = problems("version: 1\ndefaults: {name: x}\nassets:\n  - {name: a, prompt: p, output: a.png}\n")
    assert "belongs to each asset" in p


def test_missing_required_and_wrong_version():
    out = problems("version: 2\nassets:\n  - name: a\n    output: a.png\n")
    assert "a.yaml:1:10: version: unsupported spec version 2 (this recraft-build reads version: 1)" in out
    assert "a.yaml:3:5: assets[0]: missing required key 'prompt'" in out


def test_type_and_range_errors():
    out = problems(BASE + "    n: 9\n    seed: soon\n")
    assert "a.yaml:6:8: assets[0].n: 9 is too large: n must be at most 6" in out
    assert "a.yaml:7:11: assets[0].seed: expected an integer or null, got a string" in out


def test_enum_error_suggests():
    (p,) = problems(BASE + "    model: recraftv33\n")
    assert "unknown model 'recraftv33'" in p and "did you mean 'recraftv3'?" in p


def test_pattern_errors_speak_human():
    (p,) = problems(BASE + "    controls: {colors: ['#12345']}\n")
    assert "assets[0].controls.colors[0]: '#12345' is not a color like #ff8800" in p
    (p,) = problems(BASE + "    size: 1024*1024\n")
    assert "is not a size like 1024x1024" in p
    (p,) = problems(BASE + "    style_id: nope\n")
    assert "is not a UUID" in p


def test_output_and_outputs_exactly_one():
    (p,) = problems("version: 1\nassets:\n  - {name: a, prompt: p}\n")
    assert "needs one of output or outputs" in p
    (p,) = problems(BASE + "    outputs: [{path: b.png}]\n")
    assert "give only one of output or outputs" in p


STEPS_SPEC = "version: 1\nassets:\n  - name: a\n    prompt: p\n    output: a.png\n    steps:\n"


@pytest.mark.parametrize(
    "step, expected",
    [
        ("rezise", "unknown step 'rezise' (did you mean 'resize'?)"),
        ("{rezise: {width: 3}}", "unknown step 'rezise' (did you mean 'resize'?)"),
        ("optimize", "unknown step 'optimize' (optimize is an output option: outputs[].optimize)"),
        ("resize", "step 'resize' needs parameters (write {resize: {width: 128}})"),
        ("{resize: }", "expected a mapping, got null (write {resize: {width: 128}})"),
        ("{resize: {}}", "needs at least one of width, height"),
        ("{resize: {width: 0}}", "0 is too small: width must be at least 1"),
        ("{resize: {width: 3, fit: squash}}", "unknown fit 'squash'"),
        ("{trim: {}, pad: {margin: 1}}", "a step mapping has exactly one key"),
        ("{crop: {box: [0, 0, 5, 5], aspect: '1:1'}}", "give only one of box or aspect"),
        ("{crop: {gravity: top}}", "needs one of box or aspect"),
        ("{pad: {color: red}}", "needs at least one of width, height, aspect, margin"),
        ("{pad: {margin: 2, color: red}}", "'red' is not a color like #ff8800, #ff880080 or transparent"),
        ("5", "a step is a name or a one-key mapping, not an integer"),
    ],
)
def test_step_errors(step, expected):
    out = problems(STEPS_SPEC + f"      - {step}\n")
    assert any(expected in p for p in out), out
    assert all(p.startswith("a.yaml:7:") for p in out), out


def test_property_names_are_checked_at_the_key():
    (p,) = problems(BASE.replace("version: 1\n", "version: 1\nvars: {my-var: 1}\n"))
    assert p.startswith("a.yaml:2:8: vars.my-var: 'my-var' is not a valid variable name")


def test_every_error_is_reported():
    text = ("version: 1\noutput_dri: x\nassets:\n  - name: a\n    promt: p\n    n: 0\n"
            "    output: a.png\n")
    out = problems(text)
    assert len(out) == 4  # output_dri, promt, missing prompt, n


def test_integers_are_strict():
    (p,) = problems(BASE + "    n: 2.0\n")
    assert "assets[0].n: expected an integer, got a number" in p
    assert problems(BASE + "    steps: [{trim: {margin: 2}}, {remove_background: {feather: 2}}]\n") \
        == []


# -- value fields may be templates ---------------------------------------------------------------

VALUE_FIELDS = ("    n: '{{ count }}'\n    seed: '{{ seed }}'\n    text_layout: '{{ words }}'\n"
                "    controls: {colors: '{{ palette }}', background_color: '#{{ hex }}',\n"
                "               artistic_level: '{{ level }}', no_text: '{% if x %}{% endif %}'}\n")


def test_value_fields_take_a_template_in_assets_and_defaults():
    assert problems(BASE + VALUE_FIELDS) == []
    defaults = VALUE_FIELDS.replace("\n    ", "\n  ").replace("               ", "             ")
    assert problems(BASE.replace("assets:", "defaults:\n" + defaults[2:] + "assets:")) == []


def test_a_value_field_that_is_not_a_template_keeps_its_message():
    (p,) = problems(BASE + "    controls: {colors: red}\n")
    assert p.endswith("assets[0].controls.colors: expected a list, got a string")
    (p,) = problems(BASE + "    n: many\n")
    assert p.endswith("assets[0].n: expected an integer, got a string")
    (p,) = problems(BASE + "    controls: {background_color: '{ bg }'}\n")
    assert "is not a color like #ff8800" in p


def test_value_problems_check_what_a_template_gave():
    from recraft_build.spec.schema import value_problems

    doc = load_yaml(BASE + "    controls: {colors: '{{ palette }}'}\n", "a.yaml")
    pointer = ("$defs", "asset", "properties", "controls", "properties", "colors")
    path = ("assets", 0, "controls", "colors")
    assert value_problems(doc, path, ["#ffffff"], pointer) == []
    (p,) = value_problems(doc, path, ["#ffffff", "red"], pointer)
    assert str(p) == ("a.yaml:6:24: assets[0].controls.colors[1]: the template gives "
                      "['#ffffff', 'red']: 'red' is not a color like #ff8800")
    (p,) = value_problems(doc, path, "{{ palette }}", pointer)  # a template is not a value
    assert "expected a list, got a string" in p.message
