"""What each provider protocol can do: the one place capabilities are declared.

The planner (what ``plan`` and ``validate`` refuse, which step engines exist), the
providers themselves (``supports``, what a request may carry) and the price of a
build all read :data:`CAPABILITIES`; nothing else lists operations or refused fields.
Facts are from ``recraft-api.md`` (1.2 tools, 3.1 Replicate's Recraft models).

Besides tool operations and request fields, a protocol runs the models of some makers
(``domain.model_maker``: Recraft's API runs Recraft's models only; Replicate runs
Recraft's and Black Forest Labs' FLUX models) and some *image operations* (an asset made
from another picture: ``image_to_image``, ``inpaint``...): Recraft's API runs all five on
its models, Replicate only ``image_to_image`` through FLUX Kontext. What a model itself
takes (Kontext has no ``inpaint``) is the model table's business (``spec.tables``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from recraft_build.domain import IMAGE_OPERATIONS, Asset, GenerationRequest, ProviderProfile, model_maker
from recraft_build.errors import Problem, UsageError
from recraft_build.settings import choose_provider

__all__ = [
    "BUILTIN_NAMES",
    "CAPABILITIES",
    "PROTOCOLS",
    "Capabilities",
    "ProviderInfo",
    "capabilities_of",
    "provider_info",
    "refusals",
]

#: Provider names that are not profiles (a spec cannot redefine them).
BUILTIN_NAMES = ("auto", "recraft", "replicate", "placeholder")
#: The wire protocols a profile may speak.
PROTOCOLS = ("recraft", "replicate")


@dataclass(frozen=True)
class Capabilities:
    """One protocol's abilities.

    ``family`` is the model family its pictures are keyed under (placeholder pictures
    never share a key with real ones); ``paid`` says whether its calls cost credits;
    ``operations`` are the tool operations it runs (``remove_background``...);
    ``refuses`` are the request fields it cannot carry, with the reason shown to users.
    """

    protocol: str
    family: str
    paid: bool
    operations: frozenset[str]
    refuses: Mapping[str, str]
    #: Whose models it runs (``domain.model_maker``), and the reason shown for others.
    makers: frozenset[str] = frozenset({"recraft"})
    #: maker -> the image operations it runs on that maker's models.
    image_operations: Mapping[str, frozenset[str]] = field(default_factory=dict)
    #: maker -> fields of ``refuses`` it does carry for that maker's models (Replicate
    #: sends a seed to FLUX, not to Recraft's models).
    carries: Mapping[str, frozenset[str]] = field(default_factory=dict)
    #: What it does run, said when it refuses an image operation.
    image_note: str = ""

    def supports(self, operation: str) -> bool:
        return operation in self.operations

    def refused_fields(self, request: GenerationRequest) -> list[str]:
        """The fields of ``request`` this protocol cannot carry (empty when it can)."""
        carried = self.carries.get(model_maker(request.model), frozenset())
        found = []
        for name in self.refuses:
            if name not in carried and _is_set(request, name):
                found.append(name)
        return found

    def cannot_run(self, request: GenerationRequest) -> list[tuple[str, str]]:
        """``(field, reason)`` for the model or image operation of ``request`` this
        protocol cannot run (a picture from a file needs nothing: always empty)."""
        maker = model_maker(request.model)
        if maker == "file":
            return []
        if maker not in self.makers:
            where = "through Replicate (--provider replicate)" if maker == "bfl" else "through another provider"
            return [("model", f"model {request.model}: {_MAKER_NAMES.get(maker, maker)} models run {where}")]
        op = request.operation
        if op is not None and op not in self.image_operations.get(maker, frozenset()):
            return [("operation", f"operation {op} on model {request.model} ({self.image_note})")]
        return []


def _is_set(request: GenerationRequest, name: str) -> bool:
    if name == "style_id":
        return bool(request.style_id or request.style_ref)
    if name == "controls":
        return bool(request.controls) and any(v not in (None, [], {}) for v in request.controls.values())
    if name == "seed":
        return request.seed is not None
    return bool(getattr(request, name, None))


_RECRAFT_TOOLS = frozenset({"remove_background", "vectorize", "crisp_upscale", "creative_upscale", "image_to_image"})
_MAKER_NAMES = {"recraft": "Recraft", "bfl": "FLUX (Black Forest Labs)"}
_ALL_IMAGE_OPERATIONS = frozenset(IMAGE_OPERATIONS)

CAPABILITIES: Mapping[str, Capabilities] = {
    # recraft-api.md 1.2: imageToImage, inpaint, replaceBackground, generateBackground
    # and variateImage; Recraft's API does not run other makers' models (1.5).
    "recraft": Capabilities(
        "recraft", "recraft", True, _RECRAFT_TOOLS, {},
        makers=frozenset({"recraft"}), image_operations={"recraft": _ALL_IMAGE_OPERATIONS},
        image_note="Recraft's API runs the image operations on Recraft V2/V3 models",
    ),
    # recraft-api.md 3.1: Replicate's Recraft models take prompt, size/aspect_ratio and
    # style (V2/V3) only.
    "replicate": Capabilities(
        "replicate",
        "recraft",
        True,
        frozenset({"remove_background", "vectorize", "crisp_upscale", "creative_upscale"}),
        {
            "style_id": "custom styles (style_id, or a style from styles:)",
            "controls": "controls (colors, background_color...)",
            "negative_prompt": "negative_prompt",
            "text_layout": "text_layout",
            "seed": "seed",
        },
        # FLUX models on Replicate take a seed; FLUX Kontext is its image_to_image engine
        # (no known Replicate model runs Recraft's image operations).
        makers=frozenset({"recraft", "bfl"}),
        image_operations={"bfl": frozenset({"image_to_image"})},
        carries={"bfl": frozenset({"seed"})},
        image_note="Replicate runs only image_to_image, with flux-kontext-pro or flux-kontext-max",
    ),
    # Offline: no tool operation (a placeholder tool result would only pretend to work).
    # It stands in for every model and image operation (it draws from the input picture).
    "placeholder": Capabilities(
        "placeholder", "placeholder", False, frozenset(), {},
        makers=frozenset({"recraft", "bfl"}),
        image_operations={"recraft": _ALL_IMAGE_OPERATIONS, "bfl": _ALL_IMAGE_OPERATIONS},
    ),
}


def capabilities_of(protocol: str) -> Capabilities:
    """The capabilities of ``protocol`` (``recraft``, ``replicate`` or ``placeholder``)."""
    return CAPABILITIES[protocol]


@dataclass(frozen=True)
class ProviderInfo:
    """What planning needs to know of the active provider (no I/O): its name (a
    built-in or a profile), and its protocol's family, price and operations."""

    name: str
    family: str
    paid: bool
    operations: frozenset[str] = frozenset()
    protocol: str = ""

    @classmethod
    def of(cls, name: str, protocol: str) -> "ProviderInfo":
        caps = CAPABILITIES[protocol]
        return cls(name, caps.family, caps.paid, caps.operations, protocol)

    def supports(self, operation: str) -> bool:
        return operation in self.operations

    def refused_fields(self, request: GenerationRequest) -> list[str]:
        """The fields of ``request`` this provider's protocol cannot carry."""
        caps = CAPABILITIES.get(self.protocol)
        return caps.refused_fields(request) if caps is not None else []

    def refusal_text(self, fields: list[str]) -> str:
        caps = CAPABILITIES.get(self.protocol)
        return ", ".join(caps.refuses.get(f, f) for f in fields) if caps is not None else ", ".join(fields)

    def cannot_run(self, request: GenerationRequest) -> list[tuple[str, str]]:
        """``(field, reason)`` for the model or image operation of ``request`` this
        provider's protocol cannot run (see :meth:`Capabilities.cannot_run`)."""
        caps = CAPABILITIES.get(self.protocol)
        return caps.cannot_run(request) if caps is not None else []


def provider_info(name: str, *, profiles: Mapping[str, ProviderProfile], env: Mapping[str, str]) -> ProviderInfo:
    """What planning needs of provider ``name`` (``auto`` resolved by ``choose_provider``,
    as ``make_provider`` resolves it), without any I/O, token check or HTTP import.
    UsageError for a name that is neither built in nor a profile."""
    chosen = choose_provider(name, env)
    if chosen in profiles and chosen not in BUILTIN_NAMES:
        protocol = profiles[chosen].protocol
        return ProviderInfo.of(chosen, protocol if protocol in PROTOCOLS else "recraft")
    if chosen in ("recraft", "replicate", "placeholder"):
        return ProviderInfo.of(chosen, chosen)
    known = ", ".join(list(BUILTIN_NAMES) + sorted(n for n in profiles if n not in BUILTIN_NAMES))
    raise UsageError(f"unknown provider {name!r} (known: {known})")


#: Request field -> the spec fields that set it, first written first (``Asset.places``).
_SPEC_FIELDS = {"style_id": ("style_id", "style"), "operation": ("image",)}


def _field_problem(a: "Asset", f: str, spec_file: str, message: str, hint: str) -> Problem:
    """``message`` placed at the line of the spec field behind request field ``f``
    (the asset's own, or the ``defaults:`` one it inherits), else at the asset."""
    w = next((a.places[n] for n in _SPEC_FIELDS.get(f, (f,)) if n in a.places), None)
    if w is not None:
        return Problem(w.file, w.line, w.col, w.path, message, hint)
    w = a.where
    return Problem(w.file if w else spec_file, w.line if w else 0, w.col if w else 0,
                   f"{w.path}.{f}" if (w and w.path) else f, message, hint)


def refusals(assets: "list[Asset] | tuple[Asset, ...]", info: ProviderInfo, spec_file: str) -> list[Problem]:
    """A placed problem for each field of each asset that ``info``'s protocol cannot
    carry (Replicate: negative_prompt, controls, seed, text_layout, custom styles), and
    for each model or image operation it cannot run (FLUX through Recraft's API,
    ``inpaint`` through Replicate), so ``validate`` and ``plan`` refuse them before any
    call, at the line of the field (or of the ``defaults:`` entry it comes from)."""
    problems = []
    for a in assets:
        for f, reason in info.cannot_run(a.request):
            problems.append(_field_problem(
                a, f, spec_file,
                f"asset {a.name!r}: provider {info.name} ({info.protocol}) cannot run {reason}",
                "build it with a provider that can (see docs/spec.md, 'What each provider can do'), "
                "or leave it out of the targets",
            ))
        for f in info.refused_fields(a.request):
            problems.append(_field_problem(
                a, f, spec_file,
                f"asset {a.name!r}: provider {info.name} ({info.protocol}) cannot take "
                f"{CAPABILITIES[info.protocol].refuses.get(f, f)}",
                "remove it from the asset, or build with --provider recraft; see docs/spec.md, "
                "'What each provider can do'",
            ))
    return problems
