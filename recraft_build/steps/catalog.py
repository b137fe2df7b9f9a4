"""The catalogue of post-processing steps: names and what the spec loader must know.

This is the one Python place that lists the steps a spec may name. The JSON Schema
(``schemas/recraft-build.schema.json``) describes each step's parameters for editors
and validation; this module holds what the loader and planner need beyond the shape:

* which parameters are *geometry* (pixel sizes that an output's ``scales`` multiply),
* which provider operation a step maps to (for pricing and ``engine: provider``),
* what kind of picture a step produces (raster or vector), so the loader can refuse a
  raster picture written to an ``.svg`` output, or ``vectorize`` on a vector picture.

Picture kinds: every step except ``vectorize`` works on pixels. When such a step gets
a vector (SVG) picture, the engine rasterizes it first, so its result is raster.
``vectorize`` needs a raster picture and gives a vector one.

The step implementations live in other modules under ``recraft_build.steps``; this
module has no behaviour beyond the small pure helpers below.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Mapping, Protocol

__all__ = [
    "ENGINES",
    "FAVICON_FILES",
    "export_files_allowed",
    "STEPS",
    "STEP_NAMES",
    "EngineChoiceError",
    "StepInfo",
    "choose_engine",
    "provider_operation",
    "scale_params",
]


@dataclass(frozen=True)
class StepInfo:
    """What the loader and planner know about one step.

    ``geometry`` maps each geometry parameter to its smallest legal value after
    scaling (``resize.width`` stays >= 1, ``pad.margin`` >= 0). ``needs_params``
    is True when the bare name alone is not a valid step (``resize`` needs a width or
    a height). ``produces`` is ``"raster"`` or ``"vector"``. ``needs_raster`` is True
    for a step that refuses a vector input (``vectorize``). ``provider_only`` is True
    for steps that only a provider can run (``upscale``).
    """

    name: str
    summary: str
    geometry: Mapping[str, int]
    needs_params: bool
    produces: str
    needs_raster: bool = False
    provider_only: bool = False
    # Parameters the provider's version of the step takes; any other parameter is for
    # the local engine only, and an error with ``engine: provider``.
    provider_params: frozenset[str] = frozenset()


def _info(**kw: Any) -> StepInfo:
    kw["geometry"] = MappingProxyType(dict(kw.get("geometry", {})))
    return StepInfo(**kw)


#: Every step a spec may name, by name, in the order the docs present them.
STEPS: Mapping[str, StepInfo] = MappingProxyType(
    {
        "remove_background": _info(
            name="remove_background",
            summary="make the background transparent (local or through the provider)",
            needs_params=False,
            produces="raster",
        ),
        "vectorize": _info(
            name="vectorize",
            summary="trace a raster picture into SVG (local vtracer or the provider)",
            needs_params=False,
            produces="vector",
            needs_raster=True,
        ),
        "resize": _info(
            name="resize",
            summary="scale to a width and/or height",
            geometry={"width": 1, "height": 1},
            needs_params=True,
            produces="raster",
        ),
        "crop": _info(
            name="crop",
            # The crop box is in source pixels: an output's scale does not change
            # which part of the picture is kept, so ``box`` is deliberately absent.
            summary="cut a box or an aspect ratio out of the picture",
            needs_params=True,
            produces="raster",
        ),
        "trim": _info(
            name="trim",
            summary="cut away uniform borders, keeping a margin",
            geometry={"margin": 0},
            needs_params=False,
            produces="raster",
        ),
        "pad": _info(
            name="pad",
            summary="add borders to reach a size, an aspect ratio or a margin",
            geometry={"width": 1, "height": 1, "margin": 0},
            needs_params=True,
            produces="raster",
        ),
        "upscale": _info(
            name="upscale",
            summary="enlarge through the provider (crisp or creative)",
            needs_params=False,
            produces="raster",
            provider_only=True,
            provider_params=frozenset({"mode"}),
        ),
    }
)

#: Step names, in catalogue order.
STEP_NAMES: tuple[str, ...] = tuple(STEPS)


def provider_operation(name: str, params: Mapping[str, Any] | None = None) -> str | None:
    """The provider operation (see ``providers.base.OPERATIONS``) a step maps to.

    ``remove_background`` -> ``"remove_background"``, ``vectorize`` -> ``"vectorize"``,
    ``upscale`` -> ``"crisp_upscale"`` or ``"creative_upscale"`` by its ``mode``
    (crisp when not given: it is the cheap one). Local-only steps give None. Whether
    the provider is actually used depends on the step's ``engine`` and the provider.
    Raises KeyError for a name not in :data:`STEPS`.
    """
    STEPS[name]  # KeyError for an unknown step: a caller bug, not a user error
    params = params or {}
    if name in ("remove_background", "vectorize"):
        return name
    if name == "upscale":
        return "creative_upscale" if params.get("mode") == "creative" else "crisp_upscale"
    return None


def scale_params(name: str, params: Mapping[str, Any], scale: float) -> dict[str, Any]:
    """``params`` with the step's geometry parameters multiplied by ``scale``.

    Values are rounded half up to whole pixels and kept at or above each parameter's minimum
    (a 1-pixel resize at 0.5x stays 1 pixel). Other parameters are copied unchanged.
    ``scale == 1`` returns an equal copy, so ``name.png`` and the unscaled output
    have the same parameters (and so the same cache keys).
    """
    geometry = STEPS[name].geometry
    out = dict(params)
    if scale == 1:
        return out
    for key, minimum in geometry.items():
        value = out.get(key)
        # bool is an int subclass; the schema refuses it, but do not scale it anyway.
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            # Half up, not Python's half-to-even: 4.5 px -> 5, as people expect.
            out[key] = max(minimum, math.floor(value * scale + 0.5))
    return out


#: The values a step's ``engine`` parameter may take.
ENGINES = ("auto", "local", "provider")


class _Runs(Protocol):
    """What the engine choice needs of a provider (a Provider or a ProviderInfo)."""

    name: str
    paid: bool

    def supports(self, operation: str) -> bool: ...


class EngineChoiceError(ValueError):
    """A step's ``engine`` cannot be honoured; the message says why and what to do."""


def choose_engine(
    name: str, params: Mapping[str, Any], provider: _Runs | None, *, check: bool = True
) -> tuple[str, str | None]:
    """Where step ``name`` runs: ``("local", None)`` or ``("provider", operation)``.

    The one engine decision; the planner and the step runner both call it. The choice
    never depends on which provider is active or whether a token is set, so an offline
    preview runs the same steps as the real build: ``auto`` (or no ``engine``) is the
    local engine wherever the step has one (free), and the provider for ``upscale``,
    which has none. ``engine: provider`` asks for the provider's (paid) version.

    With ``check`` (the planner), raises :class:`EngineChoiceError` for an unknown
    engine, ``engine: provider`` on a local-only step or with parameters only the local
    engine reads, or a provider step the provider cannot run; without it (the step
    runner, whose own errors say more) only the first two raise.
    """
    info = STEPS.get(name)
    engine = params.get("engine") or "auto"
    if engine not in ENGINES:
        raise EngineChoiceError(f"engine must be auto, local or provider, not {engine!r}")
    op = provider_operation(name, params) if info is not None else None
    if op is None:
        if engine == "provider":
            raise EngineChoiceError(f"{name} has no provider engine; remove engine: provider")
        return "local", None
    assert info is not None
    can = provider is not None and provider.supports(op)
    if info.provider_only:
        if check or engine == "auto":
            engine = "provider" if (check or can) else "local"  # the runner says why it cannot
    elif engine == "auto":
        engine = "local"
    if check and engine == "provider":
        local_only = sorted(k for k in params if k != "engine" and k not in info.provider_params)
        if local_only:
            raise EngineChoiceError(
                f"{', '.join(local_only)} {'is a parameter' if len(local_only) == 1 else 'are parameters'} "
                f"of the local {name} engine, which engine: provider would ignore (remove "
                f"{'it' if len(local_only) == 1 else 'them'}, or use engine: local)"
            )
        if not can:
            who = f"provider {provider.name}" if provider is not None else "no active provider"
            hint = "use engine: local, or " if not info.provider_only else ""
            raise EngineChoiceError(
                f"step {name} needs provider operation {op}, which {who} cannot do "
                f"({hint}--provider recraft/replicate)"
            )
    return engine, (op if engine == "provider" else None)


#: The files a favicon output writes into its folder (``steps.export.favicon_set``;
#: ``icon.svg`` only for an SVG picture).
FAVICON_FILES = ("favicon.ico", "apple-touch-icon.png", "icon-192.png", "icon-512.png", "site.webmanifest",
                 "favicon.html", "icon.svg")


def export_files_allowed(kind: str, names: list[str]) -> bool:
    """True when an export record of ``kind`` names only files that export writes: one
    unnamed file for ``export``; names from :data:`FAVICON_FILES` for ``favicon``. A
    record from a shared cache can never add a file (an ``index.html``) to the tree."""
    if kind == "export":
        return names == [""]
    if kind == "favicon":
        return bool(names) and len(set(names)) == len(names) and set(names) <= set(FAVICON_FILES)
    return False
