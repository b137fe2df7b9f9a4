"""The spec's JSON Schema: loading it, and turning its errors into Problems.

The schema (``recraft_build/data/recraft-build.schema.json``, a byte-identical copy
of ``schemas/recraft-build.schema.json``) is the authority for the spec's *shape*.
:func:`schema_problems` validates a loaded document with every error reported, each
translated from jsonschema's wording into a message a spec author can act on:
``unknown key 'promt' (did you mean 'prompt'?)``, ``expected an integer, got a
string``, ``unknown step 'rezise' (did you mean 'resize'?)``, each with the line and
column of the offending key or value.

Some fields may hold a template that gives their value (``colors: "{{ palette }}"``,
the schema's ``valueTemplate``); :func:`value_problems` checks the value such a
template gave, per asset, against the same field's schema.
"""

from __future__ import annotations

import difflib
import functools
import json
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Iterable, Iterator, Mapping

import jsonschema

from recraft_build.errors import Problem
from recraft_build.steps.catalog import STEP_NAMES, STEPS
from recraft_build.spec.yamlload import YamlDocument

__all__ = [
    "SCHEMA_RESOURCE",
    "VALUE_TEMPLATE_REF",
    "SchemaReport",
    "load_schema",
    "schema_problems",
    "suggest",
    "value_problems",
]

#: Where the packaged schema lives, relative to the ``recraft_build`` package.
SCHEMA_RESOURCE = "data/recraft-build.schema.json"
#: The alternative a field offers for "or a template that gives the value".
VALUE_TEMPLATE_REF = "#/$defs/valueTemplate"

# Human words for the patterns the schema uses (keep in step with the schema file).
_PATTERN_WORDS = {
    "^#[0-9a-fA-F]{6}$": "a color like #ff8800",
    "^(#[0-9a-fA-F]{6}([0-9a-fA-F]{2})?|transparent)$":
        "a color like #ff8800, #ff880080 or transparent",
    "^[1-9][0-9]{0,4}x[1-9][0-9]{0,4}$": "a size like 1024x1024",
    "^[1-9][0-9]{0,3}:[1-9][0-9]{0,3}$": "an aspect ratio like 16:9",
    "^[A-Za-z_][A-Za-z0-9_]*$":
        "a name of letters, digits and _ that does not start with a digit",
    "^[A-Za-z][A-Za-z0-9_-]*$": "a name of letters, digits, _ and - that starts with a letter",
    "^[a-z][a-z0-9_-]*$": "a lowercase name of letters, digits, _ and -",
    "^[A-Z_][A-Z0-9_]*$": "an environment variable name like MY_PROXY_TOKEN",
    "^https?://[^\\s/]+": "an http:// or https:// URL",
    "^[^\\s\"'<>`]*$": "a URL without spaces, quotes, < or >",
    "^[^\\s\"'<>`\\\\]*$": "a URL path without spaces, quotes, <, > or backslashes",
}
_UUID_PATTERN_START = "^[0-9a-fA-F]{8}-"

# Keys people put at the wrong level, and where they belong.
_MISPLACED_IN_ASSET = {
    **{k: "is an output option: put it under outputs[]" for k in
       ("path", "quality", "lossless", "strip_metadata", "optimize", "scales", "favicon")},
    **{k: "is a step: write it in a list, steps: [" + k + "]" for k in STEP_NAMES},
    "vars": "vars go at the top level of the spec",
    "output_dir": "output_dir goes at the top level of the spec",
    "default": "did you mean the top-level 'defaults'?",
}
_MISPLACED_IN_OUTPUT = {
    **{k: "is a step: write it in this output's list, steps: [" + k + "]" for k in STEP_NAMES},
    **{k: "is an asset field, not an output option" for k in
       ("prompt", "model", "style", "substyle", "size", "aspect_ratio", "n", "name")},
}
_STEP_HINTS = {
    "optimize": "optimize is an output option: outputs[].optimize",
    "quality": "quality is an output option: outputs[].quality",
    "rasterize": "an SVG picture is rasterized automatically for a png/webp/jpg output",
    "compress": "compression is an output option: outputs[].quality or outputs[].optimize",
}
_PARAM_EXAMPLES = {
    "resize": "write {resize: {width: 128}}",
    "crop": "write {crop: {aspect: '1:1'}}",
    "pad": "write {pad: {margin: 16}}",
}
_NAME_OWNERS = {
    "vars": "variable name", "matrix": "matrix key", "styles": "style name",
    "providers": "provider name",
}
_TYPE_WORDS = {
    "object": "a mapping", "array": "a list", "string": "a string", "integer": "an integer",
    "number": "a number", "boolean": "true or false", "null": "null",
}


@dataclass(frozen=True)
class SchemaReport:
    """Problems found by the schema, and the paths they are about.

    ``paths`` lets the caller skip semantic checks on parts already known to be
    malformed (which would only repeat the same mistake in other words).
    ``complete`` is False when validation stopped at a limit of problems.
    """

    problems: tuple[Problem, ...]
    paths: frozenset[tuple[Any, ...]]
    complete: bool = True
    _prefixes: frozenset[tuple[Any, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        prefixes = {p[:i] for p in self.paths for i in range(len(p) + 1)}
        object.__setattr__(self, "_prefixes", frozenset(prefixes))

    def touches(self, prefix: tuple[Any, ...]) -> bool:
        """True when some problem is at ``prefix`` or inside it."""
        return tuple(prefix) in self._prefixes


def load_schema() -> dict[str, Any]:
    """The packaged JSON Schema, parsed. Reads the file each call (it is small)."""
    text = resources.files("recraft_build").joinpath(SCHEMA_RESOURCE).read_text("utf-8")
    return json.loads(text)


def suggest(word: str, candidates: Iterable[str]) -> str:
    """``"did you mean 'prompt'?"`` for the closest candidate, or ``""``."""
    if not isinstance(word, str):
        return ""
    candidates = list(candidates)
    match = difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    if not match:
        match = [c for c in candidates if c.lower() == word.lower()]
    return f"did you mean '{match[0]}'?" if match else ""


def _is_strict_integer(checker: Any, instance: Any) -> bool:
    return isinstance(instance, int) and not isinstance(instance, bool)


# JSON Schema counts 2.0 as an integer; we do not, so that ``n: 2.0`` cannot give a
# request (and a cache key) different from ``n: 2``.
_Validator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator,
    type_checker=jsonschema.Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", _is_strict_integer),
)


def schema_problems(doc: YamlDocument, schema: Mapping[str, Any] | None = None, *,
                    limit: int | None = None) -> SchemaReport:
    """Validate ``doc.data`` against the schema; every error, placed and explained.

    Stricter than JSON Schema in one way: an integer field refuses ``2.0``. With
    ``limit``, validation stops once that many problems are found (the report's
    ``complete`` is then False): a spec with 100,000 broken entries is refused in
    the time it takes to find the first few hundred.
    """
    validator = _Validator(schema if schema is not None else load_schema())
    found: dict[tuple[Any, ...], None] = {}
    problems: dict[Problem, None] = {}  # ordered set: one error can surface twice
    for error in validator.iter_errors(doc.data):
        for path, problem in _explain(error, doc):
            found[path] = None
            problems[problem] = None
        if limit is not None and len(problems) >= limit:
            return SchemaReport(tuple(problems), frozenset(found), complete=False)
    return SchemaReport(tuple(problems), frozenset(found))


@functools.lru_cache(maxsize=None)
def _field_validator(pointer: tuple[str, ...]) -> Any:
    """A validator for the field at ``pointer`` in the packaged schema, without its
    value-template alternative (the value a template gave must be a real value)."""
    root = load_schema()
    node: Any = root
    for key in pointer:
        node = node[key]
    branches = [b for b in node.get("anyOf", [node]) if b.get("$ref") != VALUE_TEMPLATE_REF]
    sub = ({"anyOf": branches} if len(branches) > 1
           else {k: v for k, v in branches[0].items() if k != "description"})
    return _Validator({"$defs": root["$defs"], **sub})


def value_problems(doc: YamlDocument, path: tuple[Any, ...], value: Any,
                   pointer: tuple[str, ...]) -> list[Problem]:
    """Problems of ``value``, given by a template for the field at ``path`` in the
    document, against the field at ``pointer`` in the schema
    (``("$defs", "asset", "properties", "seed")``). Placed at ``path`` (and inside it:
    ``assets[0].controls.colors[1]``), each message saying the value came from the
    template."""
    problems: dict[Problem, None] = {}
    for error in _field_validator(tuple(pointer)).iter_errors(value):
        for _, p in _explain(error, doc, base=tuple(path)):
            problems[Problem(p.file, p.line, p.col, p.path,
                             f"the template gives {_show(value)}: {p.message}", p.hint)] = None
    return list(problems)


# -- error translation ----------------------------------------------------------------

def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    return type(value).__name__


def _show(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _in_steps(path: tuple[Any, ...]) -> bool:
    """True when ``path`` is one item of a ``steps`` list."""
    return len(path) >= 2 and path[-2] == "steps" and isinstance(path[-1], int)


def _field(path: tuple[Any, ...]) -> str:
    """The name of the field a path ends in (``assets[0].model`` -> ``model``)."""
    for part in reversed(path):
        if isinstance(part, str):
            return part
    return "value"


def _explain(error: jsonschema.ValidationError, doc: YamlDocument, base: tuple[Any, ...] = ()
             ) -> Iterator[tuple[tuple[Any, ...], Problem]]:
    path = base + tuple(error.absolute_path)
    v = error.validator
    value = error.validator_value
    instance = error.instance

    def at(msg: str, hint: str = "", *, where: tuple[Any, ...] = path, key: bool = False):
        return where, doc.problem(where, msg, hint, at_key=key)

    if v in ("anyOf", "oneOf"):
        yield from _explain_choice(error, doc, base)
    elif "propertyNames" in error.relative_schema_path:
        where = path + (instance,)
        owner = _NAME_OWNERS.get(_field(path), "key")
        words = _PATTERN_WORDS.get(value, f"a name matching {value}") if v == "pattern" else ""
        yield at(f"{_show(instance)} is not a valid {owner}", f"use {words}" if words else "",
                 where=where, key=True)
    elif v == "additionalProperties":
        known = list((error.schema.get("properties") or {}).keys())
        extras = [k for k in instance if k not in known] if isinstance(instance, dict) else []
        for key in extras:
            yield at(*_unknown_key(path, key, known), where=path + (key,), key=True)
    elif v == "required":
        missing = [k for k in value if not (isinstance(instance, dict) and k in instance)]
        for key in missing:
            yield at(f"missing required key '{key}'")
    elif v == "type":
        wanted = value if isinstance(value, list) else [value]
        words = " or ".join(_TYPE_WORDS.get(t, t) for t in wanted)
        hint = ""
        if instance is None and len(path) >= 2 and _in_steps(path[:-1]):
            hint = _PARAM_EXAMPLES.get(str(path[-1]), "")
        yield at(f"expected {words}, got {_kind(instance)}", hint)
    elif v == "enum":
        yield at(*_explain_enum(path, instance, value))
    elif v == "const":
        if path == ("version",):
            yield at(f"unsupported spec version {_show(instance)}",
                     "this recraft-build reads version: 1")
        else:
            yield at(f"must be {_show(value)}, not {_show(instance)}")
    elif v == "pattern":
        if isinstance(value, str) and value.startswith(_UUID_PATTERN_START):
            words = "a UUID like 0b5bd7ab-8c2c-4d7e-9c5e-2f0f7c3a9c11"
        else:
            words = _PATTERN_WORDS.get(value, f"text matching {value}")
        yield at(f"{_show(instance)} is not {words}")
    elif v in ("minimum", "exclusiveMinimum"):
        rel = "at least" if v == "minimum" else "more than"
        yield at(f"{_show(instance)} is too small: {_field(path)} must be {rel} {value}")
    elif v in ("maximum", "exclusiveMaximum"):
        rel = "at most" if v == "maximum" else "less than"
        yield at(f"{_show(instance)} is too large: {_field(path)} must be {rel} {value}")
    elif v == "minItems":
        yield at(f"needs at least {value} item{'s' if value != 1 else ''}")
    elif v == "maxItems":
        yield at(f"has {len(instance)} items; at most {value} allowed")
    elif v == "uniqueItems":
        yield at("has duplicate items", "list each value once")
    elif v == "minLength":
        yield at("must not be empty")
    elif v == "maxLength":
        yield at(f"is longer than {value} characters")
    elif v == "minProperties":
        yield at("must not be empty")
    elif v == "maxProperties":
        if _in_steps(path):
            yield at("a step mapping has exactly one key, the step's name",
                     "write each step as its own list item: [{resize: ...}, trim]")
        else:
            yield at(f"has more than {value} keys")
    elif v in ("items", "prefixItems", "unevaluatedItems") and isinstance(instance, list):
        yield at(f"has {len(instance)} items; too many")
    else:
        yield at(error.message)


def _unknown_key(path: tuple[Any, ...], key: str, known: list[str]) -> tuple[str, str]:
    if _in_steps(path):
        if key in _STEP_HINTS:
            return f"unknown step '{key}'", _STEP_HINTS[key]
        return (f"unknown step '{key}'",
                suggest(key, STEP_NAMES) or f"steps: {', '.join(STEP_NAMES)}")
    hint = suggest(key, known)
    is_asset = len(path) == 2 and path[0] == "assets"
    is_defaults = path == ("defaults",)
    is_output = len(path) == 4 and path[0] == "assets" and path[2] == "outputs"
    if not hint and (is_asset or is_defaults) and key in _MISPLACED_IN_ASSET:
        hint = f"{key} {_MISPLACED_IN_ASSET[key]}"
    elif not hint and is_defaults and key in ("name", "matrix", "output", "outputs", "prompt",
                                              "description"):
        hint = f"{key} belongs to each asset, not to defaults"
    elif not hint and is_output and key in _MISPLACED_IN_OUTPUT:
        hint = f"{key} {_MISPLACED_IN_OUTPUT[key]}"
    elif not hint and path == () and key in ("model", "style", "size", "prompt", "name"):
        hint = f"{key} belongs to an asset or to defaults"
    return f"unknown key '{key}'", hint


def _explain_enum(path: tuple[Any, ...], instance: Any, choices: list[Any]) -> tuple[str, str]:
    strings = [c for c in choices if isinstance(c, str)]
    if _in_steps(path):
        if isinstance(instance, str) and instance in STEPS:
            return (f"step '{instance}' needs parameters",
                    _PARAM_EXAMPLES.get(instance, f"write {{{instance}: {{...}}}}"))
        if isinstance(instance, str) and instance in _STEP_HINTS:
            return f"unknown step '{instance}'", _STEP_HINTS[instance]
        return (f"unknown step {_show(instance)}",
                suggest(instance, STEP_NAMES) or f"steps: {', '.join(STEP_NAMES)}")
    name = _field(path)
    hint = suggest(instance, strings)
    if not hint:
        shown = [str(c) for c in choices if c is not None]
        hint = ("one of: " + ", ".join(shown)) if len(shown) <= 12 else "see docs/spec.md"
    return f"unknown {name} {_show(instance)}", hint


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return {dict: "object", list: "array", str: "string", type(None): "null"}.get(
        type(value), "other")


def _fits(errors: list[jsonschema.ValidationError], instance: Any) -> bool:
    """Whether an alternative is about this kind of value (its failures are details).

    It does not fit when it wants another type, or is a list of values none of
    which has the instance's type (a list of names says nothing about a mapping).
    """
    for e in errors:
        if e.relative_path:
            continue
        if e.validator == "type":
            return False
        if e.validator == "enum" and _json_type(instance) not in {
                _json_type(c) for c in e.validator_value}:
            return False
    return True


def _explain_choice(error: jsonschema.ValidationError, doc: YamlDocument,
                    base: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Problem]]:
    """anyOf / oneOf: name the alternatives, or explain the one that fits the value.

    A "template that gives the value" alternative is never the one explained: a
    value that is not a template was meant as the value itself.
    """
    path = base + tuple(error.absolute_path)
    branches = error.validator_value
    instance = error.instance
    if all(isinstance(b, dict) and set(b) == {"required"} for b in branches):
        names = [n for b in branches for n in b["required"]]
        present = [n for n in names if isinstance(instance, dict) and n in instance]
        if names == ["prompt", "image"]:
            # An asset needs a prompt, unless its picture is (made from) an input picture
            # (docs/spec.md says so; the message stays the one every asset without a
            # prompt has always had).
            msg, hint = "missing required key 'prompt'", ""
        elif error.validator == "oneOf" and len(present) > 1:
            msg, hint = f"give only one of {' or '.join(present)}", f"remove '{present[-1]}'"
        elif error.validator == "oneOf":
            msg = f"needs one of {' or '.join(names)}"
            hint = ("say which file(s) to write, e.g. output: hero.png"
                    if names == ["output", "outputs"] else "")
        else:
            msg, hint = f"needs at least one of {', '.join(names)}", ""
        yield path, doc.problem(path, msg, hint)
        return
    groups: dict[int, list[jsonschema.ValidationError]] = {}
    for sub in error.context:
        index = sub.relative_schema_path[0]
        if isinstance(branches[index], dict) and branches[index].get("$ref") == VALUE_TEMPLATE_REF:
            continue
        groups.setdefault(index, []).append(sub)
    fitting = [errs for _, errs in sorted(groups.items()) if _fits(errs, instance)]
    if fitting:
        # The last fitting alternative is the general one (earlier ones are the
        # completion lists editors show, e.g. the built-in style names).
        for sub in fitting[-1]:
            yield from _explain(sub, doc, base)
        return
    wanted: list[str] = []
    for errs in groups.values():
        for e in errs:
            if e.relative_path:
                continue
            if e.validator == "type":
                types = e.validator_value if isinstance(e.validator_value, list) \
                    else [e.validator_value]
            elif e.validator == "enum":
                types = [_json_type(c) for c in e.validator_value]
            else:
                continue
            for t in types:
                word = _TYPE_WORDS.get(t, t)
                if word not in wanted:
                    wanted.append(word)
    if _in_steps(path):
        yield path, doc.problem(
            path, f"a step is a name or a one-key mapping, not {_kind(instance)}",
            "write remove_background, or {resize: {width: 128}}")
    elif wanted:
        yield path, doc.problem(path, f"expected {' or '.join(wanted)}, got {_kind(instance)}")
    else:
        yield path, doc.problem(path, error.message)
