"""Pictures made from other pictures: what the providers share about image operations.

An asset with an input picture (``image:`` in the spec) asks its provider's
``generate_from_image(request, image, mask=..., asset=...)``; ``request.operation`` is
one of ``image_to_image``, ``replace_background``, ``generate_background``, ``inpaint``
or ``variate``. This module holds the protocol-independent part:

* the Recraft endpoints and their form fields (recraft-api.md 1.2): imageToImage,
  inpaint, replaceBackground, generateBackground take ``prompt``, ``n``, ``model``,
  style fields, ``negative_prompt``; imageToImage also ``strength`` (required),
  ``controls``, ``text_layout``, ``random_seed``; inpaint and generateBackground a
  ``mask``; variateImage only ``size`` (required), ``n`` and ``random_seed``. Files go
  as multipart fields ``image`` and ``mask`` (the OpenAPI names, which the official MCP
  server sends); nested values (``controls``, ``text_layout``) as JSON text. # [U]
* the input limits checked before any paid call (1.7): PNG, JPG or WEBP, at most 5 MB,
  16 megapixels, sides 256-4096 px; a mask the size of the picture, pure black and
  white (grays are rounded here, so a soft-edged mask drawn by hand still works);
* picking ``size`` for variateImage when the spec gives none: the V2/V3 size whose
  ratio is nearest the input's (deterministic, so the key, which holds the input's
  digest, still says everything).
"""

from __future__ import annotations

import io
import json
import math
from fractions import Fraction
from typing import Any, Mapping

from PIL import Image

from recraft_build.domain import GenerationRequest, Picture

__all__ = [
    "MAX_INPUT_BYTES",
    "RECRAFT_IMAGE_ENDPOINTS",
    "InputProblem",
    "check_input",
    "normalise_mask",
    "picture_dimensions",
    "recraft_image_form",
    "variate_size",
]

#: Our operation names -> Recraft endpoints (relative to the base URL).
RECRAFT_IMAGE_ENDPOINTS: Mapping[str, str] = {
    "image_to_image": "images/imageToImage",
    "inpaint": "images/inpaint",
    "replace_background": "images/replaceBackground",
    "generate_background": "images/generateBackground",
    "variate": "images/variateImage",
}

#: Upload limits (recraft-api.md 1.7, V3 era; the V4-era pages allow 10 MB).
MAX_INPUT_BYTES = 5 * 1024 * 1024
MAX_INPUT_PIXELS = 16 * 1024 * 1024
MIN_SIDE, MAX_SIDE = 256, 4096

# Fields of the generations body each endpoint takes (1.2); size only for variate.
_PROMPTED_FIELDS = ("prompt", "model", "n", "response_format", "style", "substyle", "style_id",
                    "negative_prompt", "random_seed")
_FIELDS: Mapping[str, tuple[str, ...]] = {
    "image_to_image": _PROMPTED_FIELDS + ("controls", "text_layout"),
    "inpaint": _PROMPTED_FIELDS,
    "replace_background": _PROMPTED_FIELDS,
    "generate_background": _PROMPTED_FIELDS,
    "variate": ("n", "response_format", "size", "random_seed"),
}


class InputProblem(ValueError):
    """An input picture the operation cannot take (raised before any call)."""


def picture_dimensions(picture: Picture) -> tuple[int, int]:
    """Width and height of a raster picture (InputProblem when it does not decode)."""
    try:
        with Image.open(io.BytesIO(picture.data)) as im:
            return im.size
    except Exception as exc:  # Pillow raises many kinds for a broken file
        raise InputProblem(f"the input picture does not decode ({exc})") from exc


def check_input(picture: Picture, operation: str) -> tuple[int, int]:
    """The picture's size, after checking the limits above (InputProblem otherwise)."""
    if picture.is_svg:
        raise InputProblem(f"{operation} needs a raster picture (PNG, JPG or WEBP), got an SVG")
    if len(picture.data) > MAX_INPUT_BYTES:
        raise InputProblem(
            f"the input picture is {len(picture.data):,} bytes, over the API's {MAX_INPUT_BYTES:,} byte "
            "limit (add steps to the asset it comes from, or use a smaller file)"
        )
    width, height = picture_dimensions(picture)
    if not (MIN_SIDE <= width <= MAX_SIDE and MIN_SIDE <= height <= MAX_SIDE) or width * height > MAX_INPUT_PIXELS:
        raise InputProblem(
            f"the input picture is {width}x{height}; {operation} takes sides of {MIN_SIDE}-{MAX_SIDE} px "
            f"and at most 16 megapixels"
        )
    return width, height


def normalise_mask(mask: Picture, size: tuple[int, int]) -> Picture:
    """The mask as the API wants it: a grayscale PNG of pure 0/255 pixels (grays rounded
    at 128; transparent counts as black), the size of the picture (InputProblem if not)."""
    if mask.is_svg:
        raise InputProblem("the mask must be a raster picture (PNG, JPG or WEBP), not an SVG")
    try:
        with Image.open(io.BytesIO(mask.data)) as im:
            im.load()
            if im.size != size:
                raise InputProblem(
                    f"the mask is {im.size[0]}x{im.size[1]}, the picture {size[0]}x{size[1]}: "
                    "they must be the same size"
                )
            if im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info:
                rgba = im.convert("RGBA")
                black = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
                gray = Image.alpha_composite(black, rgba).convert("L")
            else:
                gray = im.convert("L")
    except InputProblem:
        raise
    except Exception as exc:
        raise InputProblem(f"the mask does not decode ({exc})") from exc
    binary = gray.point(lambda v: 255 if v >= 128 else 0)
    out = io.BytesIO()
    binary.save(out, format="PNG", compress_level=6, optimize=False)
    return Picture(out.getvalue(), "image/png")


# V2/V3 sizes by ratio (recraft-api.md 1.6), for variateImage's required size.
_V3_SIZES = (
    "1024x1024", "2048x1024", "1024x2048", "1536x1024", "1024x1536", "1365x1024", "1024x1365",
    "1280x1024", "1024x1280", "1024x1707", "1707x1024", "1434x1024", "1024x1434", "1820x1024",
    "1024x1820",
)


def _ratio(size: str) -> float:
    w, _, h = size.partition("x")
    return int(w) / int(h)


def variate_size(request: GenerationRequest, input_size: tuple[int, int]) -> str:
    """variateImage's ``size``: the request's, else the V2/V3 size of its aspect ratio,
    else the size whose ratio is nearest the input picture's (ties: the list's order)."""
    if request.size:
        return request.size
    if request.aspect_ratio:
        a, _, b = request.aspect_ratio.partition(":")
        want = float(Fraction(int(a), int(b)))
    else:
        want = input_size[0] / input_size[1]
    return min(_V3_SIZES, key=lambda s: abs(math.log(_ratio(s)) - math.log(want)))


def recraft_image_form(request: GenerationRequest, body: Mapping[str, Any], input_size: tuple[int, int]) -> dict[str, str]:
    """The multipart text fields of ``request.operation``'s endpoint, from the JSON body a
    generation of the same request would send (``recraft.recraft_body``: colours and the
    like already converted), keeping the fields that endpoint takes (see the module
    docstring), plus ``strength`` for imageToImage."""
    op = request.operation or ""
    form: dict[str, str] = {}
    for name in _FIELDS[op]:
        value = body.get(name)
        if name == "size" and op == "variate":
            value = variate_size(request, input_size)
        if value is None:
            continue
        form[name] = json.dumps(value, separators=(",", ":")) if isinstance(value, (dict, list)) else str(value)
    if op == "image_to_image" and request.strength is not None:
        form["strength"] = f"{float(request.strength):g}"
    return form
