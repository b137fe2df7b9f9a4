"""Malformed specs give a SpecError (a clean list of problems), never another exception."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recraft_build.domain import Spec
from recraft_build.errors import Problem, SpecError
from recraft_build.spec.loader import parse_spec

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = [yaml.safe_load(p.read_text("utf-8")) for p in sorted(ROOT.glob("examples/*/assets.yaml"))]

FUZZ = settings(max_examples=100, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def check(text: str) -> None:
    """The contract: a Spec, or a SpecError whose problems are all well formed."""
    try:
        spec = parse_spec(text, "fuzz.yaml", base_dir=Path("/nonexistent"), max_assets=500)
    except SpecError as exc:
        assert exc.problems, "a SpecError must list at least one problem"
        for p in exc.problems:
            assert isinstance(p, Problem) and p.file == "fuzz.yaml" and p.message
            assert p.line >= 0 and p.col >= 0
        str(exc)
    else:
        assert isinstance(spec, Spec)


# Values a careless edit might leave anywhere.
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-10**12, 10**12),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["", "x", "{{ x }}", "{{", "{% if %}", "../a.png", "/a.png", "a.svg", "a.png",
                     "#12345", "#ffffff", "1024x1024", "16:9", "resize", "vectorize", "recraftv4",
                     "vector_illustration", "pixel_art", "icon", "a\\b.png", "favicon/", "0"]),
    st.text(max_size=20),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12,
)


def paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += paths(v, prefix + (i,))
    return out


def mutate(doc: Any, path: tuple, action: str, value: Any) -> Any:
    doc = copy.deepcopy(doc)
    if not path:
        return value
    parent = doc
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    if action == "delete":
        del parent[last]
    elif action == "replace":
        parent[last] = value
    elif action == "add" and isinstance(parent[last], dict):
        parent[last]["promt" if not isinstance(value, str) else value[:8] or "k"] = value
    elif action == "add" and isinstance(parent[last], list):
        parent[last].append(value)
    return doc


@FUZZ
@given(data=st.data())
def test_mutated_examples_fail_cleanly(data):
    doc = data.draw(st.sampled_from(EXAMPLES))
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(paths(doc)))
        action = data.draw(st.sampled_from(["delete", "replace", "add"]))
        doc = mutate(doc, path, action, data.draw(values))
    check(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))


@FUZZ
@given(st.text(alphabet=st.sampled_from(list("ab:- \n\t[]{},&*!|>'\"#%@`?~.0123456789<")),
               max_size=120))
def test_yaml_punctuation_soup_fails_cleanly(text):
    check("version: 1\n" + text)
    check(text)


@FUZZ
@given(st.text(max_size=200))
def test_any_text_fails_cleanly(text):
    check(text)


@FUZZ
@given(field=st.sampled_from(["name", "prompt", "negative_prompt", "output"]),
       template=st.text(alphabet=st.sampled_from(list("{}%#x. |()'\"+-*/~[]0123456789")),
                        max_size=40))
def test_random_templates_fail_cleanly(field, template):
    asset = {"name": "a", "prompt": "p", "output": "a.png", field: template}
    check(yaml.safe_dump({"version": 1, "assets": [asset]}))
