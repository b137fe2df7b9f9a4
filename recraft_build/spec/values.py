"""Fields whose value a template gives: ``colors: "{{ palette }}"``.

Text fields (``name``, ``prompt``, ``negative_prompt``, output paths) are always
templates. A few *value* fields may also be written as a template, so that ``vars``
and matrix values (which may be lists and mappings) can feed them:

* ``n``, ``seed``, ``text_layout``;
* each key of ``controls`` (``colors``, ``background_color``, ``artistic_level``,
  ``no_text``); ``controls`` itself stays a mapping, merged with the defaults' key by
  key as always.

When the whole field is one ``{{ expression }}``, the field takes the expression's
value itself (a list stays a list), not its text; any other template gives text.
The value is then checked per asset against the field's schema, as a written value
would be (a colour must be ``#rrggbb``), and a problem names the asset. Model,
style and size are not value fields: the model tables are checked once per asset as
written (write one asset per model instead).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from recraft_build.spec.merging import Merged
from recraft_build.spec.problems import Path
from recraft_build.spec.templating import is_template

__all__ = ["VALUE_CONTROLS", "VALUE_FIELDS", "ValueTemplate", "find_value_templates",
           "with_values"]

#: Asset fields that may be a template giving their value.
VALUE_FIELDS = ("n", "seed", "text_layout")
#: Keys of ``controls`` that may be a template giving their value.
VALUE_CONTROLS = ("colors", "background_color", "artistic_level", "no_text")

_ASSET = ("$defs", "asset", "properties")


@dataclass(frozen=True)
class ValueTemplate:
    """One value field written as a template, in one asset (or the defaults it uses).

    ``key`` is the field (``seed``) or ``controls.KEY``; ``path`` is where the
    template is written; ``pointer`` is the field in the JSON Schema.
    """

    key: str
    source: str
    path: Path
    pointer: tuple[str, ...]


def find_value_templates(merged: Merged) -> tuple[ValueTemplate, ...]:
    """The value fields of one merged asset that are templates."""
    fields, origins = merged.fields, merged.origins
    found = []
    for key in VALUE_FIELDS:
        value = fields.get(key)
        if isinstance(value, str) and is_template(value):
            found.append(ValueTemplate(key, value, origins[key], _ASSET + (key,)))
    controls = fields.get("controls")
    if isinstance(controls, dict):
        for key in VALUE_CONTROLS:
            value = controls.get(key)
            if isinstance(value, str) and is_template(value):
                found.append(ValueTemplate(f"controls.{key}", value, origins[f"controls.{key}"],
                                           _ASSET + ("controls", "properties", key)))
    return tuple(found)


def with_values(fields: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """``fields`` with each rendered value (``values``, keyed as ValueTemplate.key) in
    place; ``None`` removes the field, as in the spec."""
    out = dict(fields)
    for key, value in values.items():
        if key.startswith("controls."):
            controls = out["controls"] = dict(out["controls"])
            target, name = controls, key.split(".", 1)[1]
        else:
            target, name = out, key
        if value is None:
            target.pop(name, None)
        else:
            target[name] = value
    return out
