"""Local vectorizing: trace a raster picture into SVG with vtracer.

Parameters (all optional; the defaults are vtracer's own, pinned here so that a new
vtracer release cannot silently change cached results):

==================  ==========================  =======
parameter           meaning                     default
==================  ==========================  =======
color_mode          ``color`` or ``binary``     color
color_precision     1..8 significant bits/chan  6
filter_speckle      0..128, drop patches < px²  4
path_mode           spline, polygon, none       spline
layer_difference    0..255 colour step          16
corner_threshold    0..180 degrees              60
length_threshold    3.5..10                     4.0
splice_threshold    0..180 degrees              45
==================  ==========================  =======

Transparent pixels stay transparent: colour mode keys them out, so the SVG has no
background shape there. Binary mode traces dark shapes (drawn black) over nothing,
after compositing the picture on white. Partial transparency is not kept: vtracer
draws every shape opaque. The SVG always has a ``viewBox`` (``0 0 w h``) and is
checked to parse before it is returned.
"""

from __future__ import annotations

import io
from typing import Any, Mapping

from PIL import Image

from recraft_build.errors import StepError
from recraft_build.steps.images import parse_svg

__all__ = ["DEFAULTS", "vectorize"]

#: The tracing parameters and their defaults (vtracer 0.6 defaults, pinned).
DEFAULTS: Mapping[str, Any] = {
    "color_mode": "color",
    "color_precision": 6,
    "filter_speckle": 4,
    "path_mode": "spline",
    "layer_difference": 16,
    "corner_threshold": 60,
    "length_threshold": 4.0,
    "splice_threshold": 45,
}

_CHOICES = {"color_mode": ("color", "binary"), "path_mode": ("spline", "polygon", "none")}
_RANGES = {
    "color_precision": (1, 8),
    "filter_speckle": (0, 128),
    "layer_difference": (0, 255),
    "corner_threshold": (0, 180),
    "length_threshold": (3.5, 10),
    "splice_threshold": (0, 180),
}
#: Decimal places of path coordinates: 2 is sub-pixel exact and keeps files small.
_PATH_PRECISION = 2
_MAX_ITERATIONS = 10


def _options(params: Mapping[str, Any]) -> dict[str, Any]:
    """The spec's parameters (checked, defaults filled) as vtracer keyword arguments."""
    merged = {**DEFAULTS, **{k: v for k, v in params.items() if k in DEFAULTS}}
    for key, choices in _CHOICES.items():
        if merged[key] not in choices:
            raise StepError(f"{key} must be one of {', '.join(choices)}, not {merged[key]!r}")
    for key, (low, high) in _RANGES.items():
        value = merged[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
            raise StepError(f"{key} must be a number from {low:g} to {high:g}, not {value!r}")
    return {
        "colormode": merged["color_mode"],
        "hierarchical": "stacked",
        "mode": merged["path_mode"],
        "filter_speckle": int(merged["filter_speckle"]),
        "color_precision": int(merged["color_precision"]),
        "layer_difference": int(merged["layer_difference"]),
        "corner_threshold": int(merged["corner_threshold"]),
        "length_threshold": float(merged["length_threshold"]),
        "splice_threshold": int(merged["splice_threshold"]),
        "max_iterations": _MAX_ITERATIONS,
        "path_precision": _PATH_PRECISION,
    }


def vectorize(img: Image.Image, params: Mapping[str, Any] | None = None) -> bytes:
    """Trace ``img`` (RGB or RGBA) into SVG bytes with a viewBox.

    Raises :class:`StepError` for bad parameters or when vtracer fails.
    """
    options = _options(params or {})
    if options["colormode"] == "binary" and img.mode == "RGBA":
        # Binary mode thresholds brightness; clear pixels must read as light, not black.
        white = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, img).convert("RGB")
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=1)
    try:
        import vtracer

        svg = vtracer.convert_raw_image_to_svg(buf.getvalue(), img_format="png", **options)
    except Exception as exc:  # vtracer raises bare Exceptions from Rust; none are ours
        raise StepError(f"vtracer could not trace the picture: {exc}") from exc
    return parse_svg(svg.encode("utf-8"))
