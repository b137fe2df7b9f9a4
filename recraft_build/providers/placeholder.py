"""The offline placeholder provider: marked stand-in pictures, made in-process.

``recraft-build`` picks it when no token is set (``--provider auto``), so a build runs
end to end with no account, no network and no cost. Its family is ``placeholder``,
which goes into every cache key, so its pictures are never taken for a real model's.

Each picture is:

* deterministic from the request: the same request gives the same bytes on every run
  (fixed PNG encoder settings, no timestamps); ``n`` is left out of the seed, so
  asking for more candidates keeps the first ones as they were;
* the request's size (``request.width_height()``), a PNG, or an SVG with a
  ``viewBox`` when the request is for a vector picture (``request.vector``);
* plainly a placeholder: the word ``PLACEHOLDER``, the prompt's words (wrapped,
  cut with an ellipsis when long) and ``#<candidate> · <W>x<H>`` are drawn in;
  pictures too small for legible text (under about 90 px) carry the shape only;
* one distinct central object (circle, rounded square, triangle, diamond, hexagon
  or star, filled and outlined) on a plain background with a plain margin, so that
  background removal has real work to do. The background is the request's
  ``controls.background_color`` when set, else a light tint; the object takes the
  request's ``controls.colors`` in turn when set, else a colour from the seed. On a
  saturated background (a key colour from ``remove_background: {key: auto}``) the
  object and its outline keep clear of the key and its shadows, so the offline
  preview keys out as a real generation would;
* different for each candidate: candidate ``i`` has the next shape and a hue a
  golden-ratio step further round the colour wheel.

Raster pictures are palette PNGs (mode ``P``, four colours, text drawn without
anti-aliasing): a 1024x1024 picture takes a few milliseconds, most of it drawing, as
a palette image encodes several times faster than RGB. Steps that need RGB(A) must
convert what they open (they must for real providers' pictures anyway).
"""

from __future__ import annotations

import colorsys
import dataclasses
import functools
import hashlib
import io
import json
import math
import threading
from dataclasses import dataclass
from typing import Any, Mapping, Sequence
from xml.sax.saxutils import escape

from PIL import Image, ImageDraw, ImageFont, PngImagePlugin

from recraft_build.domain import GenerationRequest, Picture
from recraft_build.errors import RequestRejected
from recraft_build.providers.base import GenerationResult, Provider
from recraft_build.steps import keycolor

__all__ = ["PlaceholderProvider"]

#: Bumped when the pictures change on purpose (goes into every seed).
PLACEHOLDER_VERSION = 1

#: Largest side we draw; larger requests are refused (no real model makes them).
MAX_SIDE = 8192

_TITLE = "PLACEHOLDER"
_SHAPES = ("circle", "rounded_square", "triangle", "diamond", "hexagon", "star")
_GOLDEN = 0.6180339887498949
# Palette indices of the four colours a raster placeholder uses.
_BG, _FILL, _EDGE, _INK = 0, 1, 2, 3
_SVG_FONTS = "DejaVu Sans, Helvetica, Arial, sans-serif"
_KEY_CLEARANCE = 100.0  # RGB distance an object keeps from a key background's colours

RGB = tuple[int, int, int]


class PlaceholderProvider(Provider):
    """Offline, free, deterministic stand-in pictures (see the module docstring).

    Stateless and thread-safe. Supports no tool operation (``supports`` is always
    False), so the engine runs every step locally on its pictures.
    """

    family = "placeholder"
    paid = False
    in_process = True

    def __init__(self, name: str = "placeholder") -> None:
        self.name = name

    def supports(self, operation: str) -> bool:
        """Always False: a placeholder tool result would only pretend to work."""
        return False

    def generate(self, request: GenerationRequest, *, asset: str) -> GenerationResult:
        """``request.n`` marked pictures, the same bytes for the same request, 0 credits."""
        try:
            width, height = request.width_height()
        except (TypeError, ValueError) as exc:
            raise RequestRejected(
                f"cannot read the picture size from size={request.size!r} "
                f"aspect_ratio={request.aspect_ratio!r} (write size as WxH, e.g. 1024x1024)",
                provider=self.name,
                asset=asset,
            ) from exc
        if not (1 <= width <= MAX_SIDE and 1 <= height <= MAX_SIDE):
            raise RequestRejected(
                f"placeholder size {width}x{height} is out of range "
                f"(each side must be 1 to {MAX_SIDE} pixels)",
                provider=self.name,
                asset=asset,
            )
        if request.n < 1:
            raise RequestRejected(
                f"n must be at least 1, not {request.n}", provider=self.name, asset=asset
            )
        base = _request_seed(request)
        pictures = [
            _make_picture(request, base, index, width, height) for index in range(request.n)
        ]
        return GenerationResult(pictures=pictures, credits=0, meta={"placeholder": True})

    def generate_from_image(
        self, request: GenerationRequest, image: Picture, *, mask: Picture | None = None, asset: str
    ) -> GenerationResult:
        """``request.n`` marked pictures made from ``image`` (and ``mask``) that show it:
        see :mod:`.placeholder_ops`. Deterministic, free, offline."""
        from recraft_build.providers.placeholder_ops import derived_pictures

        try:
            pictures = derived_pictures(request, image, mask)
        except (ValueError, OSError) as exc:
            raise RequestRejected(f"{request.operation}: {exc}", provider=self.name, asset=asset) from exc
        return GenerationResult(pictures=pictures, credits=0, meta={"placeholder": True})


# -- seeds and colours -------------------------------------------------------------------


def _plain(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return dict(obj)
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    raise TypeError(f"cannot seed a placeholder from a {type(obj).__name__}")


def _request_seed(request: GenerationRequest) -> bytes:
    """sha256 of everything in the request except ``n`` (see the module docstring)."""
    fields = {
        f.name: getattr(request, f.name) for f in dataclasses.fields(request) if f.name != "n"
    }
    canonical = json.dumps(
        {"placeholder": PLACEHOLDER_VERSION, "request": fields},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=_plain,
    )
    return hashlib.sha256(canonical.encode("utf-8")).digest()


def _candidate_seed(base: bytes, index: int) -> bytes:
    return hashlib.sha256(base + index.to_bytes(4, "big")).digest()


def _hex_color(value: Any) -> RGB | None:
    if isinstance(value, str) and len(value) == 7 and value.startswith("#"):
        try:
            return (int(value[1:3], 16), int(value[3:5], 16), int(value[5:7], 16))
        except ValueError:
            return None
    return None


def _hsv(h: float, s: float, v: float) -> RGB:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, s, v)
    return (round(r * 255), round(g * 255), round(b * 255))


def _luma(c: RGB) -> float:
    return (0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]) / 255


def _distance(a: RGB, b: RGB) -> float:
    return math.sqrt(sum((x - y) ** 2 for x, y in zip(a, b)))


@dataclass(frozen=True)
class _Look:
    """What one candidate looks like: its four colours and its shape."""

    background: RGB
    fill: RGB
    edge: RGB
    ink: RGB
    shape: str


def _look(request: GenerationRequest, base: bytes, index: int) -> _Look:
    controls = request.controls or {}
    hue0 = base[0] / 256
    background = _hex_color(controls.get("background_color")) or _hsv(hue0 + 0.5, 0.05, 0.97)
    ink: RGB = (40, 40, 48) if _luma(background) > 0.5 else (236, 236, 240)
    if keycolor.is_key_like(background):
        # On a key, pure black or white ink: farthest from the key's shadows too.
        ink = (0, 0, 0) if _luma(background) > 0.5 else (255, 255, 255)
    palette = [c for c in (_hex_color(v) for v in (controls.get("colors") or ())) if c]
    if palette:
        fill = palette[index % len(palette)]
    else:
        fill = _hsv(hue0 + index * _GOLDEN, 0.62, 0.82)
    if _distance(fill, background) < 80:
        # The object must stand out from the background for removal to find it.
        fill = ink
    edge: RGB = tuple(round(c * 0.55) for c in fill)  # type: ignore[assignment]
    if keycolor.is_key_like(background) and min(
        keycolor.key_distance(fill, background), keycolor.key_distance(edge, background)
    ) < _KEY_CLEARANCE:
        # A key background (remove_background key: auto): the object, and its darker
        # outline, keep clear of the key and its shadows, as the keyer removes those.
        fill = ink
        edge = tuple(round(c * 0.55) for c in fill)  # type: ignore[assignment]
    shape = _SHAPES[(base[1] + index) % len(_SHAPES)]
    return _Look(background, fill, edge, ink, shape)


# -- layout --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Layout:
    """Where things go, in pixels. ``title_size`` 0 means no text."""

    width: int
    height: int
    margin: int
    title_size: int
    body_size: int
    foot_size: int
    title_top: float
    body_top: float
    max_lines: int
    cx: float
    cy: float
    radius: float


def _layout(width: int, height: int) -> _Layout:
    short = min(width, height)
    margin = max(1, round(short * 0.06))
    inner_w = width - 2 * margin
    title = round(min(short * 0.085, inner_w / 7.5))
    if title < 8:  # too small to read: shape only, in the whole inner box
        title = body = foot = 0
        top, bottom, max_lines = float(margin), float(height - margin), 0
        title_top = body_top = 0.0
    else:
        body = max(6, round(title * 0.45))
        foot = max(6, round(body * 0.8))
        max_lines = 3
        title_top = float(margin)
        top = margin + title * 1.5
        bottom = height - margin - (body * 0.25 + max_lines * body * 1.25 + foot * 1.5)
        body_top = bottom + body * 0.25
    mid_h = max(1.0, bottom - top)
    radius = max(1.0, 0.42 * min(inner_w, mid_h))
    return _Layout(
        width=width,
        height=height,
        margin=margin,
        title_size=title,
        body_size=body,
        foot_size=foot,
        title_top=title_top,
        body_top=body_top,
        max_lines=max_lines,
        cx=width / 2,
        cy=(top + bottom) / 2,
        radius=radius,
    )


def _wrap(words: Sequence[str], fits, max_lines: int) -> list[str]:
    """Greedy word wrap; ``fits(text)`` says whether a line fits. The last line ends in
    an ellipsis when words are left over; a word too long for a line is cut."""
    lines: list[str] = []
    current = ""
    rest = list(words)
    if rest and max_lines > 0 and fits(" ".join(rest)):
        # What the loop below would find (a line only widens as words join it), at
        # the cost of one measure instead of one per word: most prompts fit one line.
        return [" ".join(rest)]
    while rest and len(lines) < max_lines:
        word = rest[0]
        trial = f"{current} {word}" if current else word
        if fits(trial):
            current = trial
            rest.pop(0)
            continue
        if not current:  # one word wider than the line: cut it (binary search, as
            # a prompt may hold one very long "word")
            lo, hi = 1, len(word)
            while lo < hi:
                mid = (lo + hi + 1) // 2
                if fits(word[:mid] + "…"):
                    lo = mid
                else:
                    hi = mid - 1
            lines.append(word[:lo] + "…")
            rest.pop(0)
            continue
        lines.append(current)
        current = ""
    if current and len(lines) < max_lines:
        lines.append(current)
    if rest and lines:
        last = lines[-1].rstrip("…")
        while last and not fits(last + " …"):
            last = last[:-1].rstrip()
        lines[-1] = (last + " …") if last else "…"
    return lines


def _shape_points(shape: str, cx: float, cy: float, r: float) -> list[tuple[float, float]]:
    """Polygon corners for the polygon shapes (circle and rounded square excepted)."""
    if shape == "triangle":
        angles, radii = [-90, 30, 150], [r] * 3
        cy += r * 0.2  # a triangle's centre of area sits low; lift it visually
    elif shape == "diamond":
        angles, radii = [-90, 0, 90, 180], [r] * 4
    elif shape == "hexagon":
        angles, radii = [-90 + 60 * k for k in range(6)], [r] * 6
    else:  # star
        angles = [-90 + 36 * k for k in range(10)]
        radii = [r if k % 2 == 0 else r * 0.45 for k in range(10)]
    return [
        (cx + rad * math.cos(math.radians(a)), cy + rad * math.sin(math.radians(a)))
        for a, rad in zip(angles, radii)
    ]


# -- raster --------------------------------------------------------------------------


# Fonts are loaded once per size and per thread: loading one decodes the bundled font
# each time, and a FreeType face must not be used by two threads at once.
_fonts = threading.local()


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """Pillow's bundled font at ``size``; its fixed bitmap font without FreeType.
    The same object for the same size in one thread (do not share it across threads)."""
    cache: dict[int, Any] | None = getattr(_fonts, "by_size", None)
    if cache is None:
        cache = _fonts.by_size = {}
    font = cache.get(size)
    if font is None:
        try:
            font = ImageFont.load_default(size=size)
        except (TypeError, OSError, ImportError, AttributeError):
            font = ImageFont.load_default()
        cache[size] = font
    return font


#: Largest picture (pixels) whose fixed layer (:func:`_fixed_layer`) is kept, and how
#: many are kept: at most 12 x 2 MP of palette indices, 24 MB.
_LAYER_CACHE_PIXELS = 2 * 1024 * 1024
_LAYER_CACHE_SIZE = 12


@functools.lru_cache(maxsize=_LAYER_CACHE_SIZE)
def _cached_layer(lay: _Layout, shape: str, index: int, body_lines: int) -> Image.Image:
    return _fixed_layer(lay, shape, index, body_lines)


def _fixed_layer(lay: _Layout, shape: str, index: int, body_lines: int) -> Image.Image:
    """The palette indices of everything but the prompt's lines: the shape, the title
    and the foot (which sits below ``body_lines`` lines). The same for every request
    of one size, shape and candidate number, so a build draws it (and renders its
    text, which holds the GIL) once; colours are only in the palette. The prompt's
    lines are drawn over a copy: text only ever sets pixels to ``_INK``, so the order
    in which the three texts are drawn does not change a pixel."""
    image = Image.new("P", (lay.width, lay.height), _BG)
    draw = ImageDraw.Draw(image)
    cx, cy, r = lay.cx, lay.cy, lay.radius
    outline = max(1, round(r / 18))
    if shape == "circle":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=_FILL, outline=_EDGE, width=outline)
    elif shape == "rounded_square":
        s = r * 0.86
        draw.rounded_rectangle(
            (cx - s, cy - s, cx + s, cy + s), radius=s * 0.25, fill=_FILL, outline=_EDGE, width=outline
        )
    else:
        points = _shape_points(shape, cx, cy, r)
        draw.polygon(points, fill=_FILL, outline=_EDGE, width=outline)
    if lay.title_size:
        inner_w = lay.width - 2 * lay.margin
        _centered(draw, _TITLE, _font(lay.title_size), lay, lay.title_top, inner_w)
        foot = f"candidate {index} · {lay.width}x{lay.height}"
        y = lay.body_top + body_lines * lay.body_size * 1.25
        _centered(draw, foot, _font(lay.foot_size), lay, y, inner_w)
    return image


def _draw_png(
    request: GenerationRequest, look: _Look, seed_hex: str, index: int, lay: _Layout
) -> tuple[bytes, Image.Image]:
    """The PNG's bytes, and the image they encode (see ``Picture.pixels``)."""
    lines: list[str] = []
    widths: dict[str, float] = {}  # the wrap measures each line drawn: measure it once

    def width(text: str) -> float:
        w = widths.get(text)
        if w is None:
            w = widths[text] = body_font.getlength(text)
        return w

    if lay.title_size:
        inner_w = lay.width - 2 * lay.margin
        body_font = _font(lay.body_size)
        lines = _wrap(request.prompt.split(), lambda t: width(t) <= inner_w, lay.max_lines)
    if lay.width * lay.height <= _LAYER_CACHE_PIXELS:
        image = _cached_layer(lay, look.shape, index, len(lines)).copy()
    else:
        image = _fixed_layer(lay, look.shape, index, len(lines))
    image.putpalette([*look.background, *look.fill, *look.edge, *look.ink])
    if lines:
        draw = ImageDraw.Draw(image)
        y = lay.body_top
        for line in lines:
            _centered(draw, line, body_font, lay, y, inner_w, width(line))
            y += lay.body_size * 1.25

    info = PngImagePlugin.PngInfo()
    info.add_text("Software", "recraft-build placeholder")
    info.add_text("Comment", f"PLACEHOLDER seed {seed_hex}: {request.prompt}")
    out = io.BytesIO()
    # Fixed encoder settings: the same picture always encodes to the same bytes.
    image.save(out, format="PNG", compress_level=1, optimize=False, pnginfo=info)
    return out.getvalue(), image


def _centered(
    draw: ImageDraw.ImageDraw, text: str, font: Any, lay: _Layout, y: float, inner_w: int,
    length: float | None = None,
) -> None:
    """Draw ``text`` centred at height ``y``; ``length`` is its width when known."""
    if length is None:
        length = font.getlength(text)
    if length > inner_w:
        return  # only with the bitmap fallback font, which cannot shrink: keep the margin plain
    draw.text((round(lay.width / 2 - length / 2), round(y)), text, font=font, fill=_INK)


# -- vector --------------------------------------------------------------------------


def _num(value: float) -> str:
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def _rgb_hex(c: RGB) -> str:
    return "#%02x%02x%02x" % c


def _draw_svg(request: GenerationRequest, look: _Look, seed_hex: str, index: int, lay: _Layout) -> bytes:
    w, h = lay.width, lay.height
    cx, cy, r = lay.cx, lay.cy, lay.radius
    fill, edge = _rgb_hex(look.fill), _rgb_hex(look.edge)
    stroke = _num(max(1.0, r / 18))
    paint = f'fill="{fill}" stroke="{edge}" stroke-width="{stroke}" stroke-linejoin="round"'
    if look.shape == "circle":
        body = f'<circle cx="{_num(cx)}" cy="{_num(cy)}" r="{_num(r)}" {paint}/>'
    elif look.shape == "rounded_square":
        s = r * 0.86
        body = (
            f'<rect x="{_num(cx - s)}" y="{_num(cy - s)}" width="{_num(2 * s)}" '
            f'height="{_num(2 * s)}" rx="{_num(s * 0.25)}" {paint}/>'
        )
    else:
        points = " ".join(f"{_num(x)},{_num(y)}" for x, y in _shape_points(look.shape, cx, cy, r))
        body = f'<polygon points="{points}" {paint}/>'

    texts: list[str] = []
    if lay.title_size:
        inner_w = w - 2 * lay.margin

        def fits(text: str, size: int) -> bool:
            # No font metrics in an SVG writer: ~0.6 em per character is generous.
            return len(text) * size * 0.6 <= inner_w

        def text_el(text: str, y: float, size: int, weight: str = "normal") -> str:
            # y is the top of the line; SVG places the baseline, about 0.8 em lower.
            return (
                f'<text x="{_num(w / 2)}" y="{_num(y + size * 0.8)}" font-size="{size}" '
                f'font-weight="{weight}">{escape(text)}</text>'
            )

        if fits(_TITLE, lay.title_size):
            texts.append(text_el(_TITLE, lay.title_top, lay.title_size, "bold"))
        lines = _wrap(request.prompt.split(), lambda t: fits(t, lay.body_size), lay.max_lines)
        for k, line in enumerate(lines):
            texts.append(text_el(line, lay.body_top + k * lay.body_size * 1.25, lay.body_size))
        foot = f"candidate {index} · {w}x{h}"
        if fits(foot, lay.foot_size):
            texts.append(
                text_el(foot, lay.body_top + len(lines) * lay.body_size * 1.25, lay.foot_size)
            )

    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}">',
        f"<title>{escape(f'PLACEHOLDER: {request.prompt}')}</title>",
        f"<desc>recraft-build placeholder, seed {seed_hex}</desc>",
        f'<rect width="{w}" height="{h}" fill="{_rgb_hex(look.background)}"/>',
        body,
    ]
    if texts:
        parts.append(
            f'<g font-family="{_SVG_FONTS}" fill="{_rgb_hex(look.ink)}" text-anchor="middle">'
        )
        parts.extend(texts)
        parts.append("</g>")
    parts.append("</svg>")
    return ("\n".join(parts) + "\n").encode("utf-8")


def _make_picture(
    request: GenerationRequest, base: bytes, index: int, width: int, height: int
) -> Picture:
    seed = _candidate_seed(base, index)
    seed_hex = seed[:8].hex()
    look = _look(request, base, index)
    lay = _layout(width, height)
    meta = {"placeholder": True, "seed": seed_hex}
    if request.vector:
        return Picture(_draw_svg(request, look, seed_hex, index, lay), "image/svg+xml", meta)
    data, image = _draw_png(request, look, seed_hex, index, lay)
    return Picture(data, "image/png", meta, pixels=image)
