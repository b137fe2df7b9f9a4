"""The engine's entry point to post-processing: run a step, check it, export.

The executor calls :func:`run_step` for each step of a chain, :func:`check_step_output`
on the result before it is cached, then :func:`export` (or :func:`favicon`) for each
output file. Everything here is a pure function of its inputs (plus the provider
call for provider-backed steps), so results can be cached by the keys ``keys``
builds from :data:`STEP_VERSIONS` and :data:`EXPORT_VERSION`.

Engines. ``remove_background`` and ``vectorize`` run locally or on the provider;
``upscale`` only on the provider; ``resize``, ``crop``, ``trim`` and ``pad`` only
locally. The planner resolves ``params["engine"]`` (``plan.resolve_engine``) and the
executor passes a provider only to steps that run on it; so here ``engine: provider``
uses the provider given, ``engine: local`` runs locally, and a missing or ``auto``
engine uses the provider given when it supports the operation, else runs locally.

SVG inputs: the steps take them as they are. ``resize`` renders the SVG straight at
the target size (crisp); the other raster steps render it at its natural size.

Errors. Every :class:`StepError` leaving this module names the asset and the step.
A provider's own errors (:class:`~recraft_build.errors.ProviderError`) pass through
unchanged, so the executor can tell a rejected request from a lost paid one.
"""

from __future__ import annotations

from typing import Any, Mapping

from recraft_build.domain import Picture, media_type_for_format
from recraft_build.errors import StepError
from recraft_build.providers.base import Provider
from recraft_build.domain import sniff_media_type
from recraft_build.steps import background, geometry, vectorize
from recraft_build.steps.catalog import EngineChoiceError, choose_engine, provider_operation
from recraft_build.steps.export import encode, favicon_set
from recraft_build.steps.images import decode, parse_svg, picture_size, svg_info, to_picture
from recraft_build.steps.versions import EXPORT_VERSION, STEP_VERSIONS

__all__ = [
    "EXPORT_VERSION",
    "STEP_VERSIONS",
    "check_step_output",
    "engine_for",
    "export",
    "favicon",
    "run_step",
    "picture_size",
]

# Versions live in .versions so planning can read them without importing the steps.



def _named(exc: StepError, step: str, asset: str) -> None:
    """Fill in the step and asset of ``exc`` (the inner modules do not know them)."""
    if not exc.step:
        exc.step = step
    if not exc.asset:
        exc.asset = asset


def engine_for(name: str, params: Mapping[str, Any], provider: Provider | None) -> str:
    """``"local"`` or ``"provider"``: where step ``name`` runs (``catalog.choose_engine``)."""
    try:
        return choose_engine(name, params, provider, check=False)[0]
    except EngineChoiceError as exc:
        raise StepError(str(exc), step=name) from exc


def run_step(
    name: str,
    params: Mapping[str, Any],
    picture: Picture,
    *,
    provider: Provider | None,
    asset: str,
) -> tuple[Picture, float | None]:
    """Run one step on ``picture``; return the result and the credits it cost.

    Credits are None for local steps (and when the provider did not say). Raster
    results are PNG; vectorize results are SVG. Raises :class:`StepError` (naming
    ``asset`` and the step) when the step cannot apply or fails;
    :class:`~recraft_build.errors.ProviderError` from a provider passes through.
    """
    try:
        if name not in STEP_VERSIONS:
            known = ", ".join(sorted(STEP_VERSIONS))
            raise StepError(f"unknown step {name!r}; the steps are {known}")
        if name == "vectorize" and picture.is_svg:
            raise StepError(
                "the picture is already an SVG; vectorize applies to raster pictures "
                "(remove the step, or put it on a raster chain)"
            )
        engine = engine_for(name, params, provider)
        options = {k: v for k, v in params.items() if k != "engine"}
        if engine == "provider":
            return _run_provider(name, options, picture, provider, asset)
        return _run_local(name, options, picture, provider), None
    except StepError as exc:
        _named(exc, name, asset)
        raise


def _run_provider(name: str, params: Mapping[str, Any], picture: Picture,
                  provider: Provider | None, asset: str) -> tuple[Picture, float | None]:
    operation = provider_operation(name, params)
    assert operation is not None
    if provider is None:
        raise StepError("engine: provider needs a provider; none is active (use engine: local)")
    if not provider.supports(operation):
        hint = "use engine: local" if name != "upscale" else "use the recraft or replicate provider"
        raise StepError(f"provider {provider.name} cannot run {operation}; {hint}")
    if picture.is_svg:
        # The provider tools take raster uploads: send the SVG rendered at its size.
        picture = to_picture(decode(picture))
    result = provider.transform(operation, picture, params, asset=asset)
    out = result.picture
    if out.is_svg:
        # Every SVG we keep has a viewBox; add one from width/height when missing.
        out = Picture(parse_svg(out.data), out.media_type, out.meta)
    elif out.media_type != "image/png":
        # Keep intermediates lossless and uniform: re-encode (e.g. WebP) as PNG.
        out = to_picture(decode(out), meta=out.meta)
    return out, result.credits


def _run_local(name: str, params: Mapping[str, Any], picture: Picture,
               provider: Provider | None) -> Picture:
    if name in geometry.GEOMETRY_STEPS:
        return geometry.run(name, params, picture)
    if name == "remove_background":
        return to_picture(background.remove_background(decode(picture), params))
    if name == "vectorize":
        svg = vectorize.vectorize(decode(picture), params)
        return Picture(svg, media_type_for_format("svg"))
    # upscale: no local engine.
    who = f"provider {provider.name} does not offer it" if provider is not None else "no provider is active"
    raise StepError(
        f"upscale has no local engine: it needs a provider with Recraft's crisp or creative "
        f"upscale, and {who}; set RECRAFT_API_TOKEN or REPLICATE_API_TOKEN, or enlarge with resize"
    )


def check_step_output(
    name: str,
    params: Mapping[str, Any],
    before: Picture,
    after: Picture,
    *,
    asset: str,
) -> None:
    """The checks a step's result passes before it is cached; :class:`StepError` if not.

    The result decodes (its bytes match its media type); an SVG parses and has a
    viewBox; vectorize gives SVG; resize, crop and pad give the size asked for;
    remove_background gives transparency; upscale does not shrink.
    """
    try:
        options = {k: v for k, v in params.items() if k != "engine"}
        if name == "vectorize" and not after.is_svg:
            raise StepError(f"vectorize gave a {after.media_type} picture, not an SVG")
        if after.is_svg:
            info = svg_info(after.data)
            if info.viewbox is None:
                raise StepError("the step's SVG has no viewBox")
            size = info.pixel_size()
            img = None
        else:
            sniffed = sniff_media_type(after.data)
            if sniffed is not None and sniffed != after.media_type:
                raise StepError(f"the step's result is labelled {after.media_type} but holds {sniffed}")
            img = decode(after)
            size = img.size
        expected = geometry.expected_size(name, options, picture_size(before)) \
            if name in ("resize", "crop", "pad") else None
        if expected is not None and size != expected:
            raise StepError(
                f"{name} gave a {size[0]}x{size[1]} picture instead of {expected[0]}x{expected[1]}"
            )
        if name == "remove_background" and img is not None:
            if img.mode != "RGBA" or img.getchannel("A").getextrema()[0] == 255:
                raise StepError("remove_background left no transparent pixel")
        if name == "upscale":
            w0, h0 = picture_size(before)
            if size[0] < w0 or size[1] < h0:
                raise StepError(f"upscale shrank the picture from {w0}x{h0} to {size[0]}x{size[1]}")
    except StepError as exc:
        _named(exc, name, asset)
        raise


def export(picture: Picture, fmt: str, options: Mapping[str, Any], *, asset: str) -> bytes:
    """Encode ``picture`` as an output file (see :mod:`recraft_build.steps.export`)."""
    try:
        return encode(picture, fmt, options)
    except StepError as exc:
        _named(exc, f"export {fmt}", asset)
        raise


def favicon(picture: Picture, options: Mapping[str, Any], *, asset: str) -> dict[str, bytes]:
    """The favicon set for ``picture``: file name -> bytes (see ``export.favicon_set``)."""
    try:
        return favicon_set(picture, options)
    except StepError as exc:
        _named(exc, "favicon", asset)
        raise
