"""Defaults merged into each asset, after leaving out what the schema refused.

A field the schema refused is left out of the meaning checks (they would only repeat
the mistake in other words) but *remembered* as refused, so that checks which depend
on it (the model's tables when the model is refused, the picture's kind after broken
steps) are skipped rather than guessed.

The merge rule (docs/spec.md, Defaults): an asset starts from ``defaults``; its own
fields win. ``controls`` merge key by key. ``size``/``aspect_ratio`` are one choice:
an asset that sets either replaces both from the defaults; likewise ``style``/
``style_id`` replace the defaults' ``style``, ``substyle`` and ``style_id``. ``null``
removes a default.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from recraft_build.domain import StepSpec
from recraft_build.spec import tables
from recraft_build.spec.problems import Path
from recraft_build.spec.schema import SchemaReport

__all__ = [
    "MERGED_FIELDS",
    "UNKNOWN_KIND",
    "CleanAsset",
    "CleanOutput",
    "Cleaned",
    "Merged",
    "Source",
    "clean",
    "clean_asset",
    "merge",
]

#: Fields merged from defaults into each asset.
MERGED_FIELDS = ("negative_prompt", "model", "style", "substyle", "style_id", "size",
                 "aspect_ratio", "n", "seed", "controls", "text_layout", "steps")
#: The picture kind when a step the schema refused hides it.
UNKNOWN_KIND = "unknown"


@dataclass(frozen=True)
class Cleaned:
    """A mapping without the keys the schema refused, and the names of those keys."""

    fields: Mapping[str, Any] = field(default_factory=dict)
    dropped: frozenset[str] = frozenset()


@dataclass(frozen=True)
class CleanOutput:
    """One output as written: ``path`` is where it is, ``path_field`` where its path is
    (the same for the ``output:`` shorthand)."""

    fields: Mapping[str, Any]
    dropped: frozenset[str]
    path: Path
    path_field: Path


@dataclass(frozen=True)
class CleanAsset:
    """One asset as written, usable for expansion: it has a name and a prompt."""

    index: int
    fields: Mapping[str, Any]
    dropped: frozenset[str]
    outputs: tuple[CleanOutput, ...]

    @property
    def path(self) -> Path:
        return ("assets", self.index)


@dataclass(frozen=True)
class Merged:
    """An asset's fields with the defaults merged in, and where each was written.

    ``origins`` maps each field (and ``controls.KEY``) to its path in the document;
    ``dropped`` names the fields the schema refused (in the asset or the defaults it
    inherits).
    """

    fields: dict[str, Any]
    origins: dict[str, Path]
    dropped: frozenset[str]


@dataclass
class Source:
    """One asset as written, merged with defaults, before matrix expansion.

    The meaning checks fill in what they learn: the custom style it refers to, whether
    the picture is vector, its kind after the asset's steps. ``ok`` is False when a
    problem already reported makes expanding it pointless.
    """

    asset: CleanAsset
    merged: Merged
    combos: int
    model: tables.ModelInfo
    style_ref: str | None = None
    vector: bool = False
    kind_after_steps: str = "raster"
    steps: tuple[StepSpec, ...] = ()
    ok: bool = True
    matrix_ok: bool = True
    #: How the picture is made when the asset takes an input picture
    #: (:class:`recraft_build.spec.inputs.InputMode`); None: from its prompt alone.
    inputs: Any = None

    @property
    def index(self) -> int:
        return self.asset.index

    @property
    def fields(self) -> dict[str, Any]:
        return self.merged.fields

    @property
    def origins(self) -> dict[str, Path]:
        return self.merged.origins

    @property
    def dropped(self) -> frozenset[str]:
        return self.merged.dropped


def clean(mapping: Any, path: Path, report: SchemaReport) -> Cleaned:
    """``mapping`` without the keys the schema found problems in (empty if not a mapping)."""
    if not isinstance(mapping, dict):
        return Cleaned()
    kept = {k: v for k, v in mapping.items() if not report.touches(path + (k,))}
    return Cleaned(kept, frozenset(mapping) - frozenset(kept))


def clean_asset(raw: Any, index: int, report: SchemaReport) -> CleanAsset | None:
    """One asset with its refused fields left out; None if it cannot be expanded."""
    path: Path = ("assets", index)
    if not isinstance(raw, dict):
        return None
    cleaned = clean(raw, path, report)
    fields = dict(cleaned.fields)
    if not isinstance(fields.get("name"), str):
        return None
    # A prompt, unless the picture comes from an input picture (``image:``); a refused
    # ``image`` leaves nothing to expand either.
    if not isinstance(fields.get("prompt"), str) and not (
            "prompt" not in raw and isinstance(fields.get("image"), dict)):
        return None
    if "matrix" in raw and "matrix" not in fields:
        return None  # a broken matrix cannot be expanded
    fields.pop("outputs", None)
    outputs: list[CleanOutput] = []
    if "output" in raw and "outputs" in raw:
        fields.pop("output", None)  # both given: the schema said so; check neither
    elif "output" in fields:
        where = path + ("output",)
        outputs.append(CleanOutput({"path": fields["output"]}, frozenset(), where, where))
    elif isinstance(raw.get("outputs"), list):
        for j, item in enumerate(raw["outputs"]):
            item_path = path + ("outputs", j)
            if not isinstance(item, dict) or not isinstance(item.get("path"), str) \
                    or report.touches(item_path + ("path",)):
                continue
            out = clean(item, item_path, report)
            outputs.append(CleanOutput(out.fields, out.dropped, item_path,
                                       item_path + ("path",)))
    return CleanAsset(index, fields, cleaned.dropped, tuple(outputs))


def merge(defaults: Cleaned, asset: CleanAsset) -> Merged:
    """Defaults merged into one asset's fields (the rule is in the module docstring)."""
    raw = asset.fields
    index = asset.index
    fields: dict[str, Any] = {}
    origins: dict[str, Path] = {}
    for key, value in defaults.fields.items():
        fields[key] = value
        origins[key] = ("defaults", key)
    if "size" in raw or "aspect_ratio" in raw:
        for key in ("size", "aspect_ratio"):
            fields.pop(key, None)
    if "style" in raw or "style_id" in raw:
        for key in ("style", "substyle", "style_id"):
            fields.pop(key, None)
    for key in MERGED_FIELDS:
        if key not in raw:
            continue
        value = raw[key]
        if key == "controls" and isinstance(value, dict) and isinstance(fields.get(key), dict):
            value = {**fields[key], **value}
        fields[key] = value
        origins[key] = ("assets", index, key)
    # Refused keys: the asset's own value (good or refused) replaces the defaults'.
    dropped = (defaults.dropped - frozenset(raw)) | asset.dropped
    for key in dropped:
        fields.pop(key, None)
    controls = fields.get("controls")
    if isinstance(controls, dict):
        own = raw.get("controls") if isinstance(raw.get("controls"), dict) else {}
        for key in controls:
            origins[f"controls.{key}"] = ((("assets", index) if key in own else ("defaults",))
                                          + ("controls", key))
    fields = {k: v for k, v in fields.items() if v is not None}
    return Merged(fields, origins, dropped)
