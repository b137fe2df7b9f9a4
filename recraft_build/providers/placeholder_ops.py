"""The offline placeholder's pictures made from other pictures.

A child's placeholder shows what it was made from: it *is* its input picture, changed
in a plain, operation-specific way, inside a coloured frame with a label
(``PLACEHOLDER image_to_image of 3f2a9c1e``: the operation and the input's digest):

* ``image_to_image``: the input tinted toward the candidate's colour, more with a
  higher ``strength`` (Kontext has none: half way);
* ``replace_background``: the input's background (the pixels near its corner colour,
  and transparent ones) filled with the candidate's colour, the subject kept;
* ``generate_background`` and ``inpaint``: the area the mask marks white filled with
  the candidate's colour (inpaint in stripes, so the two look different);
* ``variate``: the input, hue-turned a step per candidate, mirrored for odd ones, at
  the requested size when the spec gives one.

Deterministic: the same request (prompt, operation, strength, seed...) and the same
input and mask bytes give the same bytes. Candidate ``i`` takes a colour a golden-ratio
step further round the wheel. A vector request (a vector style or model) gives an SVG
that embeds the picture (a raster ``data:`` image, which the SVG checks allow).
"""

from __future__ import annotations

import base64
import colorsys
import hashlib
import io
import json
from typing import Any

from PIL import Image, ImageDraw, ImageFont, ImageOps

from recraft_build.domain import GenerationRequest, Picture

__all__ = ["derived_pictures"]

_GOLDEN = 0.6180339887498949
_MAX_SIDE = 4096


def _seed(request: GenerationRequest, image: bytes, mask: bytes | None) -> bytes:
    fields = {
        "prompt": request.prompt, "model": request.model, "operation": request.operation,
        "strength": request.strength, "seed": request.seed, "style": request.style,
        "substyle": request.substyle, "size": request.size, "aspect_ratio": request.aspect_ratio,
        "image": hashlib.sha256(image).hexdigest(),
        "mask": hashlib.sha256(mask).hexdigest() if mask is not None else None,
    }
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).digest()


def _colour(base: bytes, index: int) -> tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb((base[0] / 256 + index * _GOLDEN) % 1.0, 0.7, 0.85)
    return round(r * 255), round(g * 255), round(b * 255)


def _open(picture: Picture) -> Image.Image:
    if picture.is_svg:
        raise ValueError("the placeholder takes a raster input picture, not an SVG")
    with Image.open(io.BytesIO(picture.data)) as im:
        im.load()
        if max(im.size) > _MAX_SIDE:
            raise ValueError(f"the input picture is {im.size[0]}x{im.size[1]}, over {_MAX_SIDE} px a side")
        return im.convert("RGBA")


def _mask(mask: Picture | None, size: tuple[int, int]) -> Image.Image:
    if mask is None:
        return Image.new("L", size, 0)
    with Image.open(io.BytesIO(mask.data)) as im:
        im.load()
        gray = ImageOps.grayscale(im.convert("RGBA").convert("RGB"))
    if gray.size != size:
        raise ValueError(f"the mask is {gray.size[0]}x{gray.size[1]}, the picture {size[0]}x{size[1]}")
    return gray.point(lambda v: 255 if v >= 128 else 0)


def _background(img: Image.Image) -> Image.Image:
    """A mask of the input's background: transparent pixels, and pixels close to the
    colour of its top-left corner."""
    corner = img.getpixel((0, 0))
    rgb = img.convert("RGB")
    r, g, b = rgb.split()
    near = [band.point(lambda v, c=c: 255 if abs(v - c) <= 40 else 0) for band, c in zip((r, g, b), corner[:3])]
    close = Image.eval(Image.merge("RGB", near).convert("L"), lambda v: 255 if v == 255 else 0)
    alpha = img.getchannel("A").point(lambda v: 255 if v < 16 else 0)
    return Image.composite(Image.new("L", img.size, 255), close, alpha)


def _frame(img: Image.Image, colour: tuple[int, int, int], label: str) -> Image.Image:
    draw = ImageDraw.Draw(img)
    w, h = img.size
    border = max(2, round(min(w, h) * 0.03))
    for k in range(border):
        draw.rectangle((k, k, w - 1 - k, h - 1 - k), outline=colour + (255,))
    size = round(min(w, h) * 0.045)
    if size >= 9:
        try:
            font: Any = ImageFont.load_default(size=size)
        except (TypeError, OSError, AttributeError):
            font = ImageFont.load_default()
        # At the bottom: the input's own placeholder title stays readable at the top.
        x = border + max(2, size // 3)
        y = h - border - max(2, size // 3) - round(size * 1.2)
        while label and draw.textlength(label, font=font) > w - 2 * x:
            label = label[:-2] + "…"
        box = draw.textbbox((x, y), label, font=font)
        draw.rectangle((box[0] - 3, box[1] - 3, box[2] + 3, box[3] + 3), fill=colour + (255,))
        draw.text((x, y), label, font=font, fill=(255, 255, 255, 255))
    return img


def _one(request: GenerationRequest, src: Image.Image, mask: Image.Image, base: bytes, index: int) -> Image.Image:
    op = request.operation or "image_to_image"
    colour = _colour(base, index)
    solid = Image.new("RGBA", src.size, colour + (255,))
    if op == "image_to_image":
        strength = 0.5 if request.strength is None else float(request.strength)
        out = Image.blend(src, solid, 0.15 + 0.6 * strength)
    elif op == "replace_background":
        out = Image.composite(solid, src, _background(src))
    elif op == "generate_background":
        out = Image.composite(solid, src, mask)
    elif op == "inpaint":
        stripes = solid.copy()
        draw = ImageDraw.Draw(stripes)
        step = max(8, min(src.size) // 16)
        for x in range(-src.size[1], src.size[0], step * 2):
            draw.line((x, 0, x + src.size[1], src.size[1]), fill=(255, 255, 255, 255), width=max(1, step // 2))
        out = Image.composite(stripes, src, mask)
    else:  # variate
        hsv = src.convert("RGB").convert("HSV")
        h, s, v = hsv.split()
        turn = round((index + 1) * _GOLDEN * 255) % 256
        h = h.point(lambda x: (x + turn) % 256)
        out = Image.merge("HSV", (h, s, v)).convert("RGBA")
        out.putalpha(src.getchannel("A"))
        if index % 2:
            out = ImageOps.mirror(out)
        if request.size or request.aspect_ratio:
            out = ImageOps.fit(out, request.width_height(), Image.Resampling.BICUBIC)
    if request.aspect_ratio and op != "variate":  # Kontext's aspect_ratio reshapes the picture
        out = ImageOps.fit(out, request.width_height(), Image.Resampling.BICUBIC)
    return out


def _encode(img: Image.Image, request: GenerationRequest, label: str) -> Picture:
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=1, optimize=False)
    png = buf.getvalue()
    meta = {"placeholder": True, "made_from": label}
    if not request.vector:
        return Picture(png, "image/png", meta)
    w, h = img.size
    href = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    svg = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}">'
        f"<title>PLACEHOLDER {label}</title>"
        f'<image width="{w}" height="{h}" href="{href}"/></svg>\n'
    )
    return Picture(svg.encode("utf-8"), "image/svg+xml", meta)


def derived_pictures(request: GenerationRequest, image: Picture, mask: Picture | None = None) -> list[Picture]:
    """``request.n`` placeholder pictures made from ``image`` (see the module docstring).
    ValueError for an input it cannot draw from (an SVG, a mask of another size)."""
    base = _seed(request, image.data, mask.data if mask is not None else None)
    src = _open(image)
    mask_img = _mask(mask, src.size)
    label = f"{request.operation} of {hashlib.sha256(image.data).hexdigest()[:8]}"
    caption = f"PLACEHOLDER {label}" + (f": {request.prompt}" if request.prompt else "")
    out = []
    for index in range(request.n):
        picture = _frame(_one(request, src, mask_img, base, index), _colour(base, index), caption)
        out.append(_encode(picture, request, label))
    return out
