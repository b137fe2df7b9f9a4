"""Geometry steps: resize, crop, trim and pad.

Each step is a pure function of a picture and its parameters and returns a PNG
picture (the lossless intermediate). Parameter names and defaults:

``resize``  ``width``, ``height`` (at least one, >= 1), ``fit`` (``inside``: keep the
            aspect within the box; ``cover``: fill the box and crop the centre;
            ``contain``: keep the aspect and pad to the exact box with ``background``;
            ``stretch``: exactly the box), ``resample`` (``lanczos``, ``bicubic``,
            ``bilinear``, ``nearest``), ``background`` (default transparent).
            Defaults: ``fit: inside``, ``resample: lanczos``. With only one side given
            the other follows the aspect ratio, whatever the fit.
``crop``    ``box: [x, y, w, h]`` in pixels, or ``aspect: "w:h"`` (the largest such
            region) placed by ``gravity`` (center, top, bottom, left, right).
``trim``    cuts away transparent borders (when the picture's border is mostly
            transparent) or borders of the border's colour, within ``tolerance``
            (0..255, default 8); keeps ``margin`` pixels (default 0) of background
            around what is left, padding with the background if needed.
``pad``     to ``width``/``height`` (a missing side keeps the picture's), or to the
            smallest canvas of ratio ``aspect``, after an optional ``margin`` on every
            side; the picture is centred; new area in ``color`` (default transparent).

SVG pictures: geometry steps rasterize. ``resize`` renders the SVG directly at the
target size (crisp, no resampling); crop, trim and pad render it at its natural size
first. The result is a PNG; to get an SVG output, vectorize afterwards or keep the
geometry steps on raster outputs.

Transparent pictures are resampled with premultiplied alpha, so transparent pixels'
hidden colours never bleed into the edge.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np
from PIL import Image

from recraft_build.domain import Picture
from recraft_build.errors import StepError
from recraft_build.steps.images import check_pixels, decode, parse_color, picture_size, rasterize_svg, to_picture

__all__ = [
    "GEOMETRY_STEPS",
    "crop",
    "crop_box",
    "expected_size",
    "pad",
    "pad_layout",
    "resize",
    "resize_size",
    "run",
    "trim",
]

#: The steps this module runs.
GEOMETRY_STEPS = frozenset({"resize", "crop", "trim", "pad"})

_RESAMPLE = {
    "lanczos": Image.Resampling.LANCZOS,
    "bicubic": Image.Resampling.BICUBIC,
    "bilinear": Image.Resampling.BILINEAR,
    "nearest": Image.Resampling.NEAREST,
}
_FITS = ("inside", "cover", "contain", "stretch")
# A downscale by a large factor first averages whole blocks of pixels (Image.reduce), then
# resamples what is left, at least twice the target size, with the chosen filter: the
# trade-off Pillow's own thumbnail() makes (reducing_gap=2). On 1024 -> 128 it is 8x
# faster than a full Lanczos pass and 47 dB PSNR from it (at most 15 levels apart on
# hard edges; identical below a 4x reduction). It changed resize's bytes: resize is
# version 2 in steps/versions.py.
_REDUCING_GAP = 2.0
_GRAVITIES = ("center", "top", "bottom", "left", "right")


# --------------------------------------------------------------------------- params


def _pos_int(params: Mapping[str, Any], key: str, *, minimum: int = 1) -> int | None:
    value = params.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
        raise StepError(f"{key} must be a whole number, not {value!r}")
    if value < minimum:
        raise StepError(f"{key} must be at least {minimum}, not {value}")
    return int(value)


def _choice(params: Mapping[str, Any], key: str,
            choices: tuple[str, ...] | Mapping[str, Any], default: str) -> str:
    value = params.get(key, default)
    if value not in choices:
        raise StepError(f"{key} must be one of {', '.join(choices)}, not {value!r}")
    return str(value)


def _ratio(text: Any) -> float:
    """``"16:9"`` -> 1.777...; StepError on anything else."""
    parts = str(text).split(":")
    try:
        a, b = (float(p) for p in parts)
    except ValueError:
        a = b = -1.0
    if len(parts) != 2 or not (a > 0 and b > 0) or not math.isfinite(a / b):
        raise StepError(f"aspect must look like \"16:9\", not {text!r}")
    return a / b


def _round(value: float) -> int:
    return max(1, math.floor(value + 0.5))


# --------------------------------------------------------------------------- sizes


def resize_size(size: tuple[int, int], params: Mapping[str, Any]) -> tuple[int, int]:
    """The output size of ``resize`` with ``params`` on a picture of ``size``."""
    w0, h0 = size
    width = _pos_int(params, "width")
    height = _pos_int(params, "height")
    fit = _choice(params, "fit", _FITS, "inside")
    if width is None and height is None:
        raise StepError("resize needs a width or a height (at least 1 pixel)")
    if width is None:
        assert height is not None
        return _round(height * w0 / h0), height
    if height is None:
        return width, _round(width * h0 / w0)
    if fit == "inside":
        scale = min(width / w0, height / h0)
        return min(width, _round(w0 * scale)), min(height, _round(h0 * scale))
    return width, height


def crop_box(size: tuple[int, int], params: Mapping[str, Any]) -> tuple[int, int, int, int]:
    """The ``(x, y, w, h)`` region ``crop`` keeps of a picture of ``size``."""
    w0, h0 = size
    box = params.get("box")
    aspect = params.get("aspect")
    if (box is None) == (aspect is None):
        raise StepError("crop needs either box: [x, y, w, h] or aspect: \"w:h\" (one of them)")
    if box is not None:
        if (
            not isinstance(box, (list, tuple))
            or len(box) != 4
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in box)
        ):
            raise StepError(f"box must be four whole numbers [x, y, width, height], not {box!r}")
        x, y, w, h = box
        if w < 1 or h < 1:
            raise StepError(f"crop box {list(box)} is empty; width and height must be at least 1")
        if x < 0 or y < 0 or x + w > w0 or y + h > h0:
            raise StepError(
                f"crop box {list(box)} reaches outside the {w0}x{h0} picture; "
                f"keep x + width <= {w0} and y + height <= {h0}"
            )
        return x, y, w, h
    ratio = _ratio(aspect)
    gravity = _choice(params, "gravity", _GRAVITIES, "center")
    if w0 / h0 > ratio:
        w, h = min(w0, _round(h0 * ratio)), h0
    else:
        w, h = w0, min(h0, _round(w0 / ratio))
    x = 0 if gravity == "left" else (w0 - w if gravity == "right" else (w0 - w) // 2)
    y = 0 if gravity == "top" else (h0 - h if gravity == "bottom" else (h0 - h) // 2)
    return x, y, w, h


def pad_layout(size: tuple[int, int], params: Mapping[str, Any]) -> tuple[int, int, int, int]:
    """``(canvas_w, canvas_h, x, y)``: the canvas ``pad`` makes and where the picture goes."""
    w0, h0 = size
    margin = _pos_int(params, "margin", minimum=0) or 0
    width = _pos_int(params, "width")
    height = _pos_int(params, "height")
    aspect = params.get("aspect")
    if width is None and height is None and aspect is None and not margin:
        raise StepError("pad needs width and/or height, an aspect \"w:h\", or a margin")
    if aspect is not None and (width is not None or height is not None):
        raise StepError("pad takes either width/height or aspect, not both")
    inner_w, inner_h = w0 + 2 * margin, h0 + 2 * margin
    cw, ch = inner_w, inner_h
    if width is not None or height is not None:
        cw = width if width is not None else inner_w
        ch = height if height is not None else inner_h
        if cw < inner_w or ch < inner_h:
            raise StepError(
                f"pad to {cw}x{ch} is smaller than the {inner_w}x{inner_h} picture"
                f"{' with its margin' if margin else ''}; resize first "
                "(resize with fit: contain pads to an exact box)"
            )
    elif aspect is not None:
        ratio = _ratio(aspect)
        if inner_w / inner_h < ratio:
            cw = max(inner_w, _round(inner_h * ratio))
        else:
            ch = max(inner_h, _round(inner_w / ratio))
    return cw, ch, (cw - w0) // 2, (ch - h0) // 2


def expected_size(name: str, params: Mapping[str, Any], size: tuple[int, int]) -> tuple[int, int] | None:
    """The size ``name`` must produce from a picture of ``size`` (None: not fixed)."""
    if name == "resize":
        return resize_size(size, params)
    if name == "crop":
        return crop_box(size, params)[2:]
    if name == "pad":
        return pad_layout(size, params)[:2]
    return None


# --------------------------------------------------------------------------- pixels


def _resample(img: Image.Image, size: tuple[int, int], method: Image.Resampling,
              box: tuple[float, float, float, float] | None = None) -> Image.Image:
    """Resize; Pillow premultiplies RGBA itself, so clear pixels' hidden colours never bleed."""
    if img.size == size and box is None:
        return img.copy()
    return img.resize(size, method, box=box, reducing_gap=_REDUCING_GAP)


def _canvas(img: Image.Image, size: tuple[int, int], color: tuple[int, int, int, int]) -> Image.Image:
    """A new canvas of ``size`` in ``color``, RGBA unless both picture and colour are opaque."""
    mode = "RGBA" if img.mode == "RGBA" or color[3] < 255 else "RGB"
    return Image.new(mode, size, color if mode == "RGBA" else color[:3])


def resize(img: Image.Image, params: Mapping[str, Any]) -> Image.Image:
    """Resize ``img`` as ``params`` say (see the module docstring)."""
    w0, h0 = img.size
    out_w, out_h = resize_size((w0, h0), params)
    check_pixels(out_w, out_h)
    method = _RESAMPLE[_choice(params, "resample", _RESAMPLE, "lanczos")]
    fit = _choice(params, "fit", _FITS, "inside")
    one_side = params.get("width") is None or params.get("height") is None
    if one_side or fit in ("inside", "stretch"):
        return _resample(img, (out_w, out_h), method)
    if fit == "cover":
        # Crop the source to the box's aspect (float box: no rounding drift), then scale.
        target = out_w / out_h
        if w0 / h0 > target:
            cw = h0 * target
            box = ((w0 - cw) / 2, 0.0, (w0 + cw) / 2, float(h0))
        else:
            chh = w0 / target
            box = (0.0, (h0 - chh) / 2, float(w0), (h0 + chh) / 2)
        return _resample(img, (out_w, out_h), method, box=box)
    # contain: fit inside, then pad to the exact box.
    inner = resize_size((w0, h0), {"width": out_w, "height": out_h, "fit": "inside"})
    return _place(_resample(img, inner, method), (out_w, out_h), params.get("background"))


def _place(img: Image.Image, size: tuple[int, int], background: Any) -> Image.Image:
    """``img`` centred on a canvas of ``size`` in ``background`` (default transparent)."""
    color = parse_color(background if background is not None else "transparent")
    canvas = _canvas(img, size, color)
    canvas.paste(img.convert(canvas.mode), ((size[0] - img.width) // 2, (size[1] - img.height) // 2))
    return canvas


def crop(img: Image.Image, params: Mapping[str, Any]) -> Image.Image:
    """Keep the region :func:`crop_box` names."""
    x, y, w, h = crop_box(img.size, params)
    return img.crop((x, y, x + w, y + h))


def trim(img: Image.Image, params: Mapping[str, Any]) -> Image.Image:
    """Cut away transparent or uniform borders, keeping ``margin`` pixels around."""
    margin = _pos_int(params, "margin", minimum=0) or 0
    tolerance = _pos_int(params, "tolerance", minimum=0)
    tolerance = 8 if tolerance is None else min(tolerance, 255)
    arr = np.asarray(img)
    border = np.concatenate([arr[0], arr[-1], arr[:, 0], arr[:, -1]])
    if img.mode == "RGBA" and np.median(border[:, 3]) <= tolerance:
        # Mostly transparent border: what is left is what can be seen.
        content = arr[:, :, 3] > tolerance
        background = (0, 0, 0, 0)
    else:
        # A uniform border: its median colour is the background (robust to a stray pixel).
        ref = np.median(border, axis=0)
        diff = np.abs(arr.astype(np.int16) - ref.astype(np.int16)).max(axis=2)
        content = diff > tolerance
        channels = [int(v) for v in ref]
        background = tuple(channels + [255] * (4 - len(channels)))[:4]
    rows = np.flatnonzero(content.any(axis=1))
    cols = np.flatnonzero(content.any(axis=0))
    if rows.size == 0:
        raise StepError(
            f"trim found nothing but background (tolerance {tolerance}); "
            "lower the tolerance or remove the trim step"
        )
    left, right = int(cols[0]), int(cols[-1]) + 1
    top, bottom = int(rows[0]), int(rows[-1]) + 1
    out_w, out_h = right - left + 2 * margin, bottom - top + 2 * margin
    check_pixels(out_w, out_h)
    canvas = Image.new(img.mode, (out_w, out_h), background if img.mode == "RGBA" else background[:3])
    canvas.paste(img.crop((left, top, right, bottom)), (margin, margin))
    return canvas


def pad(img: Image.Image, params: Mapping[str, Any]) -> Image.Image:
    """Place ``img`` centred on the canvas :func:`pad_layout` computes."""
    cw, ch, _x, _y = pad_layout(img.size, params)
    check_pixels(cw, ch)
    return _place(img, (cw, ch), params.get("color"))


_STEPS = {"resize": resize, "crop": crop, "trim": trim, "pad": pad}


def run(name: str, params: Mapping[str, Any], picture: Picture) -> Picture:
    """Run geometry step ``name`` on ``picture``; the result is a PNG picture.

    An SVG is rendered at the target size for ``resize`` (crisp), at its natural size
    for the others.
    """
    step = _STEPS.get(name)
    if step is None:
        raise StepError(f"{name} is not a geometry step")
    if picture.is_svg and name == "resize":
        return to_picture(_resize_svg(picture, params))
    return to_picture(step(decode(picture), params))


def _resize_svg(picture: Picture, params: Mapping[str, Any]) -> Image.Image:
    """Render an SVG straight at the size ``resize`` asks for: crisp, no resampling."""
    size = picture_size(picture)
    out = resize_size(size, params)
    fit = _choice(params, "fit", _FITS, "inside")
    one_side = params.get("width") is None or params.get("height") is None
    if fit == "contain" and not one_side:
        inner = resize_size(size, {"width": out[0], "height": out[1], "fit": "inside"})
        return _place(rasterize_svg(picture.data, *inner, aspect="none"), out, params.get("background"))
    # inside/one side: the box has the drawing's aspect up to rounding, so fill it exactly.
    aspect = "xMidYMid slice" if fit == "cover" and not one_side else "none"
    return rasterize_svg(picture.data, *out, aspect=aspect)
