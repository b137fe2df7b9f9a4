"""Writing the final files: encode a picture as png, webp, jpg, ico or svg.

Output options (all optional):

``quality``         1..100, lossy WebP and JPEG (default 90). Ignored by lossless formats.
``lossless``        WebP only (default false); true on another format is an error.
``strip_metadata``  default true: no EXIF, ICC, XMP or text chunks (SVG: no
                    ``<metadata>``, comments or editor data, via scour). Pictures are
                    converted to sRGB when decoded, so nothing is lost by dropping
                    the profile. False keeps the EXIF and ICC profile of a picture that
                    reaches the export undecoded (intermediate PNGs carry none).
``optimize``        false (default), true or a level 0..6. PNG: lossless oxipng at that
                    level (true = 2). WebP: encoder effort (``method``; true = 6,
                    default 4). JPEG: optimised Huffman tables. SVG: scour clean-up
                    that keeps the viewBox (5 significant digits).

Choices: JPEG has no transparency, so a transparent picture is composited on white.
A fully opaque RGBA picture is written as RGB (smaller, same pixels). SVG pictures
are rendered at their natural size for raster formats; a raster picture cannot be
written as SVG (add a ``vectorize`` step). ICO holds 16, 32 and 48 px frames (only
those not larger than the picture), made from a square version of the picture;
``optimize`` does not apply to it.

Every encoder setting is fixed, so the same picture and options give the same bytes
(results are cached and locked by sha256).
"""

from __future__ import annotations

import html
import io
import json
import threading
from typing import Any, Mapping

from PIL import Image

from recraft_build.domain import Picture
from recraft_build.errors import StepError
from recraft_build.steps.catalog import FAVICON_FILES
from recraft_build.steps.images import (
    decode,
    parse_color,
    parse_svg,
    rasterize_svg,
    set_svg_root_attributes,
    svg_info,
    svg_text,
)

__all__ = ["FAVICON_FILES", "FORMATS", "encode", "favicon_set"]

#: Formats :func:`encode` writes.
FORMATS = frozenset({"png", "webp", "jpg", "jpeg", "ico", "svg"})
#: The files :func:`favicon_set` always writes (plus ``icon.svg`` for an SVG picture).

_DEFAULT_QUALITY = 90
_PNG_LEVEL = 9
_ICO_SIZES = (16, 32, 48)
# scour keeps its number precision in module globals (scour.scouringContext), so two
# threads cleaning SVGs with different settings would mix them up; one at a time.
_SCOUR_LOCK = threading.Lock()


# --------------------------------------------------------------------------- options


def _quality(options: Mapping[str, Any]) -> int:
    value = options.get("quality", _DEFAULT_QUALITY)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 100:
        raise StepError(f"quality must be a whole number from 1 to 100, not {value!r}")
    return value


def _optimize_level(options: Mapping[str, Any], default_on: int) -> int | None:
    """``optimize`` as a level: None when off, ``default_on`` for true, else 0..6."""
    value = options.get("optimize", False)
    if isinstance(value, bool):
        return default_on if value else None
    if isinstance(value, int) and 0 <= value <= 6:
        return value
    raise StepError(f"optimize must be true, false or a level from 0 to 6, not {value!r}")


def _flag(options: Mapping[str, Any], key: str, default: bool) -> bool:
    value = options.get(key, default)
    if not isinstance(value, bool):
        raise StepError(f"{key} must be true or false, not {value!r}")
    return value


# --------------------------------------------------------------------------- encode


def encode(picture: Picture, fmt: str, options: Mapping[str, Any] | None = None) -> bytes:
    """Encode ``picture`` as ``fmt`` (png, webp, jpg/jpeg, ico, svg) with ``options``.

    Raises :class:`StepError` for an unknown format, bad options, a raster picture
    asked for as SVG, or a picture that cannot be decoded.
    """
    options = options or {}
    fmt = fmt.lower()
    if fmt not in FORMATS:
        raise StepError(f"cannot write .{fmt} files; use png, webp, jpg, ico or svg")
    strip = _flag(options, "strip_metadata", True)
    lossless = _flag(options, "lossless", False)
    if lossless and fmt != "webp":
        raise StepError(f"lossless applies to webp only; .{fmt} is "
                        f"{'always lossless' if fmt in ('png', 'ico', 'svg') else 'lossy'}")
    if fmt == "svg":
        return _encode_svg(picture, strip=strip, optimize=_optimize_level(options, 1) is not None)
    img = decode(picture, srgb=strip)
    if fmt == "png":
        return _png(img, level=_optimize_level(options, 2), strip=strip)
    if fmt == "webp":
        return _webp(img, quality=_quality(options), lossless=lossless,
                     method=_optimize_level(options, 6), strip=strip)
    if fmt in ("jpg", "jpeg"):
        return _jpeg(img, quality=_quality(options), optimize=_optimize_level(options, 1) is not None,
                     strip=strip)
    return _ico(_square(img))


def _metadata(img: Image.Image, strip: bool) -> dict[str, Any]:
    """Encoder keyword arguments that carry metadata over (none when stripping)."""
    if strip:
        return {}
    return {k: img.info[k] for k in ("icc_profile", "exif") if img.info.get(k)}


def _clean(img: Image.Image) -> Image.Image:
    """A copy without ``info`` (Pillow would otherwise write some of it) and, when
    fully opaque, without the alpha channel."""
    out = img.copy()
    out.info = {}
    if out.mode == "RGBA" and out.getchannel("A").getextrema() == (255, 255):
        out = out.convert("RGB")
    return out


def _png(img: Image.Image, *, level: int | None, strip: bool) -> bytes:
    buf = io.BytesIO()
    # oxipng recompresses from scratch, so zlib effort before it would be wasted.
    zlib_level = _PNG_LEVEL if level is None else 1
    _clean(img).save(buf, format="PNG", compress_level=zlib_level, **_metadata(img, strip))
    data = buf.getvalue()
    if level is None:
        return data
    import oxipng

    try:
        strip_chunks = oxipng.StripChunks.safe() if strip else oxipng.StripChunks.none()
        return oxipng.optimize_from_memory(data, level=level, strip=strip_chunks)
    except oxipng.PngError as exc:
        raise StepError(f"oxipng could not optimise the PNG: {exc}") from exc


def _webp(img: Image.Image, *, quality: int, lossless: bool, method: int | None, strip: bool) -> bytes:
    buf = io.BytesIO()
    _clean(img).save(
        buf, format="WEBP", quality=quality, lossless=lossless, alpha_quality=100,
        method=4 if method is None else method, exact=False, **_metadata(img, strip),
    )
    return buf.getvalue()


def _jpeg(img: Image.Image, *, quality: int, optimize: bool, strip: bool) -> bytes:
    clean = _clean(img)
    if clean.mode == "RGBA":
        # JPEG has no alpha: flatten on white, the usual page colour.
        white = Image.new("RGBA", clean.size, (255, 255, 255, 255))
        clean = Image.alpha_composite(white, clean).convert("RGB")
    buf = io.BytesIO()
    # Full-resolution colour at high quality; 4:2:0 below, as usual for photos.
    subsampling = 0 if quality >= 90 else 2
    clean.save(buf, format="JPEG", quality=quality, optimize=optimize,
               subsampling=subsampling, **_metadata(img, strip))
    return buf.getvalue()


def _square(img: Image.Image) -> Image.Image:
    """``img`` centred on a transparent square (icons are square)."""
    if img.width == img.height:
        return img
    side = max(img.size)
    canvas = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    canvas.paste(img.convert("RGBA"), ((side - img.width) // 2, (side - img.height) // 2))
    return canvas


def _scaled(img: Image.Image, side: int) -> Image.Image:
    """A square picture at ``side`` px, resampled with premultiplied alpha."""
    if img.size == (side, side):
        return img.copy()
    # Pillow resizes RGBA with premultiplied alpha.
    return img.convert("RGBA").resize((side, side), Image.Resampling.LANCZOS)


def _ico(square: Image.Image, frames: Mapping[int, Image.Image] | None = None) -> bytes:
    """An ICO of the 16/32/48 px frames no larger than ``square`` (PNG-compressed).

    ``frames`` may hold ready-made frames by side (an SVG rendered at each size).
    """
    sizes = [s for s in _ICO_SIZES if s <= square.width] or [square.width]
    frames = frames or {}
    images = [_clean(frames[s] if s in frames else _scaled(square, s)).convert("RGBA") for s in sizes]
    buf = io.BytesIO()
    images[-1].save(buf, format="ICO", sizes=[(s, s) for s in sizes], append_images=images[:-1])
    return buf.getvalue()


# --------------------------------------------------------------------------- svg


def _encode_svg(picture: Picture, *, strip: bool, optimize: bool) -> bytes:
    if not picture.is_svg:
        raise StepError(
            f"a raster ({picture.media_type}) picture cannot be written as .svg; add a vectorize "
            "step to this output (after any resize, crop, trim or pad)"
        )
    data = parse_svg(picture.data)
    if not (strip or optimize):
        return data
    try:
        from scour import scour
    except ImportError as exc:  # pragma: no cover - scour is a dependency
        raise StepError("SVG clean-up needs the scour package (pip install scour)") from exc
    # scour reads its options from an argparse namespace; build it from its own parser
    # so every option has its documented default, then pin the ones that matter.
    opts = scour.parse_args([])
    opts.quiet = True
    opts.embed_rasters = False  # never fetch or read files named in the SVG
    opts.remove_metadata = strip
    opts.strip_comments = strip
    opts.keep_editor_data = not strip
    opts.enable_viewboxing = False  # keep width/height as they are; we keep the viewBox
    opts.strip_xml_prolog = False
    if not optimize:
        # Metadata only: no precision lost, ids, defs and groups kept (scour still
        # drops attributes that equal their defaults, which renders the same).
        opts.digits = 12
        opts.simple_colors = False
        opts.style_to_xml = False
        opts.group_collapse = False
        opts.keep_defs = True
        opts.renderer_workaround = True
    else:
        opts.digits = 5
        opts.shorten_ids = True
        opts.indent_type = "none"
        opts.newlines = False
    try:
        with _SCOUR_LOCK:
            cleaned = scour.scourString(svg_text(data), opts)
    except Exception as exc:  # scour raises assorted errors on odd documents
        raise StepError(f"the SVG could not be cleaned up: {exc}") from exc
    out = cleaned.encode("utf-8")
    return parse_svg(out)


# --------------------------------------------------------------------------- favicon


def favicon_set(picture: Picture, options: Mapping[str, Any] | None = None) -> dict[str, bytes]:
    """The usual favicon files for ``picture``, by file name.

    ``favicon.ico`` (16, 32, 48 px), ``apple-touch-icon.png`` (180 px, opaque: on
    ``options["background"]``, default white, since iOS fills transparency with
    black), ``icon-192.png`` and ``icon-512.png`` (transparency kept),
    ``site.webmanifest`` (naming the two icons, plus ``name``, ``short_name``,
    ``theme_color`` and ``background_color`` from ``options["webmanifest"]``; the
    background colour is also the apple icon's), ``favicon.html`` (the ``<link>`` tags,
    with the set served at ``options["url"]``), and ``icon.svg`` when the picture is an SVG. A picture that is
    not square is centred on a transparent square. An SVG is rendered at each size
    (crisp); a raster is resampled (Lanczos, premultiplied alpha). ``optimize``
    applies to the PNGs and the SVG as for :func:`encode`; no file carries metadata.
    """
    options = options or {}
    level = _optimize_level(options, 2)
    app = options.get("webmanifest") or {}
    background = parse_color(app.get("background_color") or options.get("background", "#ffffff"))
    square = None if picture.is_svg else _square(decode(picture))

    def at(side: int) -> Image.Image:
        if square is None:
            return _square(rasterize_svg(picture.data, side, side, aspect="xMidYMid meet"))
        return _scaled(square, side)

    files: dict[str, bytes] = {}
    ico_frames = {s: at(s) for s in _ICO_SIZES}
    files["favicon.ico"] = _ico(ico_frames[48], ico_frames)
    apple = at(180).convert("RGBA")
    base = Image.new("RGBA", apple.size, background[:3] + (255,))
    files["apple-touch-icon.png"] = _png(Image.alpha_composite(base, apple), level=level, strip=True)
    files["icon-192.png"] = _png(at(192), level=level, strip=True)
    files["icon-512.png"] = _png(at(512), level=level, strip=True)
    if picture.is_svg:
        svg = _encode_svg(picture, strip=True, optimize=level is not None)
        files["icon.svg"] = _square_svg(svg)
    manifest: dict[str, Any] = {
        "icons": [
            {"src": "icon-192.png", "sizes": "192x192", "type": "image/png"},
            {"src": "icon-512.png", "sizes": "512x512", "type": "image/png"},
        ]
    }
    manifest.update({k: app[k] for k in _WEBMANIFEST_FIELDS if app.get(k)})
    files["site.webmanifest"] = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
    files["favicon.html"] = _link_snippet(options.get("url", ""), svg=picture.is_svg,
                                          theme=app.get("theme_color"))
    return files


#: ``webmanifest`` output option fields copied into ``site.webmanifest``.
_WEBMANIFEST_FIELDS = ("name", "short_name", "theme_color", "background_color")


def _link_snippet(url: str, *, svg: bool, theme: str | None) -> bytes:
    """``favicon.html``: the ``<link>`` tags for a page's ``<head>``, the set served at
    ``url`` (a folder URL; "" means relative to the page). Values are HTML-escaped: the
    URL comes from the spec, which may come from a pull request."""
    base = url if not url or url.endswith("/") else url + "/"

    def href(name: str) -> str:
        return html.escape(base + name, quote=True)

    lines = [f'<link rel="icon" href="{href("favicon.ico")}" sizes="32x32">']
    if svg:
        lines.append(f'<link rel="icon" href="{href("icon.svg")}" type="image/svg+xml">')
    lines.append(f'<link rel="apple-touch-icon" href="{href("apple-touch-icon.png")}">')
    lines.append(f'<link rel="manifest" href="{href("site.webmanifest")}">')
    if theme:
        lines.append(f'<meta name="theme-color" content="{html.escape(theme, quote=True)}">')
    return ("\n".join(lines) + "\n").encode()


def _square_svg(data: bytes) -> bytes:
    """An SVG icon drawn centred in a square (browsers expect a square favicon)."""
    info = svg_info(data)
    w, h = info.natural_size()
    if abs(w - h) < 1e-6:
        return data
    side = max(w, h)
    return set_svg_root_attributes(
        data, {"width": f"{side:g}", "height": f"{side:g}", "preserveAspectRatio": "xMidYMid meet"},
        info=info,
    )
