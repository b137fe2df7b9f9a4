"""Meaning checks of one asset against the model tables and the step catalogue.

The schema checks each field on its own; these check fields together: the style
against the model, the size against the model's list, each step against the
picture's kind, a rendered name or prompt against what a target or the model takes.
A problem with a value that came from ``defaults`` is placed in ``defaults`` and names
the asset it is wrong for (once per distinct problem).
"""

from __future__ import annotations

import re
from typing import Any, Iterable, Mapping

from recraft_build.domain import VECTOR_STYLES, StepSpec, StyleSpec
from recraft_build.spec import tables
from recraft_build.spec.merging import Source
from recraft_build.spec.problems import Path, ProblemLog
from recraft_build.spec.schema import suggest
from recraft_build.spec.templating import is_template
from recraft_build.steps.catalog import STEPS

__all__ = [
    "check_generation",
    "check_name",
    "check_prompt",
    "check_variable_names",
    "parse_steps",
    "step_kind",
]

_BAD_NAME_CHARS = re.compile(r"[*?\[\]\x00-\x1f\x7f]")


def check_variable_names(log: ProblemLog, names: Iterable[str], path: Path, what: str,
                         reserved: frozenset[str]) -> None:
    """Variables (``vars``, matrix keys) may not shadow the asset fields templates see."""
    for key in names:
        if key in reserved:
            log.add(path + (key,), f"'{key}' cannot be a {what}: it is an asset field "
                    "that templates already see", f"rename it, e.g. '{key}_name'", at_key=True)


def add_field_problem(log: ProblemLog, s: Source, key: str, message: str,
                      hint: str = "") -> None:
    """A problem with an asset's merged field, placed where the value was written.

    A value from ``defaults`` is wrong only for some assets (another model, say): the
    message names them, once per distinct problem.
    """
    path = s.origins.get(key, s.asset.path)
    if path[0] == "defaults":
        name = s.asset.fields.get("name")
        who = (f"asset '{name}'" if isinstance(name, str) and not is_template(name)
               else f"assets[{s.index}]")
        log.add_for(who, True, path, message, hint)
    else:
        log.add(path, message, hint)


def check_generation(log: ProblemLog, s: Source, styles: Mapping[str, StyleSpec]) -> None:
    """Model, style, size and controls against the model's table; sets ``s.style_ref``
    and ``s.vector``."""
    f, info = s.fields, s.model

    def bad(key: str, message: str, hint: str = "") -> None:
        add_field_problem(log, s, key, message, hint)

    style, substyle, style_id = f.get("style"), f.get("substyle"), f.get("style_id")
    v23 = "use a V2/V3 model (e.g. recraftv3) for custom styles"
    if style is not None and style_id is not None:
        bad("style_id", "give style or style_id, not both",
            "style_id already names a complete style: remove style")
    elif style is not None and style in styles:
        custom = styles[style]
        s.style_ref = style
        s.vector = info.vector or custom.base_style in VECTOR_STYLES
        if not info.custom_styles:
            bad("style", f"model {info.name} does not take custom styles", v23)
        elif custom.base_style not in info.styles:
            bad("style", f"custom style '{style}' is based on {custom.base_style}, which "
                f"{info.name} does not offer", _styles_hint(info))
        if substyle is not None:
            bad("substyle", "a substyle cannot refine a custom style", "remove substyle")
    elif style is not None:
        s.vector = info.vector or style in VECTOR_STYLES
        if style not in tables.BASE_STYLES:
            close = suggest(style, list(tables.BASE_STYLES) + list(styles))
            bad("style", f"unknown style '{style}'",
                close or "declare custom styles under 'styles:'")
        elif not info.styles:
            bad("style", f"model {info.name} takes no style",
                "remove style, or use recraftv3/recraftv2 for styles")
        elif style not in info.styles:
            bad("style", f"style '{style}' is not available for {info.name}",
                _styles_hint(info))
        elif substyle is not None and substyle not in info.styles[style]:
            allowed = info.styles[style]
            hint = suggest(substyle, allowed) or (
                f"substyles of {style} on {info.name}: {', '.join(allowed)}" if allowed
                else f"{style} has no substyles")
            bad("substyle", f"substyle '{substyle}' is not available for style {style} on "
                f"{info.name}", hint)
    else:
        s.vector = info.vector
        if substyle is not None:
            bad("substyle", "substyle needs a style", "add style (e.g. digital_illustration)")
    if style_id is not None and not info.custom_styles:
        bad("style_id", f"model {info.name} does not take style_id", v23)

    size, ratio = f.get("size"), f.get("aspect_ratio")
    ratios = f"aspect ratios: {', '.join(info.aspect_ratios)}"
    if size is not None and ratio is not None:
        bad("aspect_ratio", "give size or aspect_ratio, not both", "remove one")
    elif size is not None and not info.sizes:
        bad("size", f"model {info.name} takes aspect_ratio, not size", ratios)
    elif size is not None and size not in info.sizes:
        bad("size", f"size {size} is not available for {info.name}",
            f"sizes: {', '.join(info.sizes)}")
    elif ratio is not None and ratio not in info.aspect_ratios:
        bad("aspect_ratio", f"aspect ratio {ratio} is not available for {info.name}", ratios)

    if f.get("negative_prompt") is not None and not info.negative_prompt:
        bad("negative_prompt", f"model {info.name} does not take negative_prompt",
            "remove it, or use recraftv3/recraftv2")
    if f.get("text_layout") is not None and not info.text_layout:
        bad("text_layout", f"model {info.name} does not take text_layout",
            "text_layout needs recraftv3")
    seed, n = f.get("seed"), f.get("n", 1)
    if info.maker == "bfl" and isinstance(seed, int) and isinstance(n, int) and n > 1:
        # One prediction per picture: the same seed would give the same picture n times.
        bad("seed", f"model {info.name} makes one picture per call: a seed with n: {n} would repeat it",
            "remove seed (each picture then gets its own), or ask for n: 1")
    for key in f.get("controls") or {}:
        if key not in info.controls:
            bad(f"controls.{key}", f"model {info.name} does not take controls.{key}",
                f"{info.name} takes: {', '.join(sorted(info.controls))}")


def parse_steps(log: ProblemLog, raw_steps: Iterable[Any], path: Path) -> tuple[StepSpec, ...]:
    """Steps as written (already valid for the schema) -> StepSpecs placed in the file."""
    out = []
    for k, raw in enumerate(raw_steps):
        if isinstance(raw, str):
            name, params = raw, {}
        else:
            name, params = next(iter(raw.items()))
            params = dict(params or {})
        out.append(StepSpec(name, params, log.where(path + (k,))))
    return tuple(out)


def step_kind(log: ProblemLog, kind: str, step: StepSpec, path: Path, *,
              asset_level: bool = True) -> str:
    """The picture kind after ``step``; a problem (at ``path``) if it cannot take ``kind``."""
    info = STEPS[step.name]
    if info.needs_raster and kind == "vector":
        already = "SVG (a vector model or style)" if asset_level else "SVG"
        log.add(path, f"{step.name} needs a raster picture, but the picture is already "
                f"{already}", "remove this step: the picture is vector")
    return info.produces


def check_name(log: ProblemLog, name: str, path: Path, in_matrix: bool) -> bool:
    """A rendered asset name: not empty, and no characters that select targets."""
    if not name:
        log.add_for(f"asset '{name}'", in_matrix, path, "the asset name renders empty",
                    "give every asset a name")
        return False
    if _BAD_NAME_CHARS.search(name):
        log.add_for(f"asset '{name}'", in_matrix, path, f"asset name {name!r} contains a "
                    "control character or one of * ? [ ]", "those characters select targets "
                    "on the command line; use letters, digits, - _ . /")
        return False
    return True


def check_prompt(log: ProblemLog, prompt: str, s: Source, path: Path, name: str,
                 in_matrix: bool) -> None:
    """A rendered prompt: not empty, and within the model's length."""
    who = f"asset '{name}'"
    if not prompt:
        log.add_for(who, in_matrix, path, "the prompt renders empty", "describe the picture")
    elif len(prompt) > s.model.prompt_max:
        hint = ("shorten it, or use a V4 model (10,000 characters)"
                if s.model.prompt_max < 10000 else "shorten it")
        log.add_for(who, in_matrix, path, f"the prompt is {len(prompt):,} characters; "
                    f"{s.model.name} takes at most {s.model.prompt_max:,}", hint)


def _styles_hint(info: tables.ModelInfo) -> str:
    return f"styles for {info.name}: {', '.join(info.styles)}"
