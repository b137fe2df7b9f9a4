"""Decoding and encoding pictures, safely: the one place bytes become pixels.

Every step works on :class:`PIL.Image.Image` objects in mode ``RGB`` or ``RGBA`` and
hands back a :class:`~recraft_build.domain.Picture`. This module is the boundary where
Pillow, expat and resvg errors become :class:`~recraft_build.errors.StepError`.

Limits and choices (the contract other modules rely on):

* :data:`MAX_PIXELS` (64 MP, e.g. 8192 x 8192) is the largest picture decoded or
  rendered. The size is read from the header *before* any pixel is decoded, so a
  decompression bomb is refused without exhausting memory. Pillow's own global guard
  (``Image.MAX_IMAGE_PIXELS``) is left at its default, still on as a second line, and is
  not changed here because it is process-global state.
* :func:`decode` applies the EXIF orientation and converts ICC-tagged pictures to sRGB
  (``srgb=True``), because exported files carry no metadata by default and would
  otherwise look rotated or shifted in colour.
* SVG is parsed with expat and refused when it has a DOCTYPE or entity declarations
  (billion-laughs, external entities) or any active content: scripts, event
  attributes, ``javascript:`` links, ``<foreignObject>``, references to external files
  (``<image href="/etc/...">``)... The rule is :mod:`recraft_build.steps.svgsafe`,
  applied in :func:`svg_info`, which every SVG a step makes or exports goes through
  (vectorize's output included); downloads use the same rule.
* :func:`to_picture` encodes deterministically: the same pixels always give the same
  bytes (no timestamps, no text chunks, fixed zlib level), since results are cached and
  locked by their sha256.
"""

from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass
from typing import Mapping
from xml.parsers import expat

from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from recraft_build.domain import Picture, media_type_for_format
from recraft_build.errors import StepError
from recraft_build.steps.svgsafe import SvgGuard, UnsafeSvg

__all__ = [
    "MAX_PIXELS",
    "SvgInfo",
    "check_pixels",
    "decode",
    "parse_color",
    "parse_svg",
    "picture_size",
    "rasterize_svg",
    "set_svg_root_attributes",
    "svg_info",
    "svg_text",
    "to_picture",
]

#: Largest picture (in pixels) decoded or rendered: 64 MP, e.g. 8192 x 8192.
MAX_PIXELS = 8192 * 8192

#: zlib level for lossless intermediates: a balance of speed and cache size.
_PNG_LEVEL = 6

_SVG_NS = "http://www.w3.org/2000/svg"
# CSS absolute units in px at 96 dpi (what resvg and browsers use).
_UNITS = {"": 1.0, "px": 1.0, "in": 96.0, "cm": 96 / 2.54, "mm": 96 / 25.4,
          "pt": 96 / 72, "pc": 16.0}
_LENGTH_RE = re.compile(r"^\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*([a-z%]*)\s*$")
_START_TAG_RE = re.compile(
    rb"<(?P<name>[A-Za-z_][\w.:-]*)(?P<attrs>(?:\s+[\w.:-]+\s*=\s*(?:\"[^\"]*\"|'[^']*'))*)\s*(?P<end>/?>)"
)
_ATTR_RE = re.compile(rb"\s+(?P<key>[\w.:-]+)\s*=\s*(?P<value>\"[^\"]*\"|'[^']*')")
_XML_DECL_RE = re.compile(rb"^\s*<\?xml[^>]*\?>")
_ENCODING_RE = re.compile(rb"encoding\s*=\s*[\"']([A-Za-z0-9._-]+)[\"']")


def check_pixels(width: int, height: int, max_pixels: int = MAX_PIXELS) -> None:
    """Raise :class:`StepError` unless ``width`` x ``height`` is a sane picture size.

    The one pixel-limit check: downloads call it too (with the same default), so a
    picture a provider delivers is never refused later by a step for its size.
    """
    if width < 1 or height < 1:
        raise StepError(f"a picture of {width}x{height} pixels is empty")
    if width * height > max_pixels:
        raise StepError(
            f"a {width}x{height} picture ({width * height / 1e6:.1f} MP) is larger than "
            f"the limit of {max_pixels / 1e6:.1f} MP ({max_pixels:,} pixels); use a smaller size"
        )


# --------------------------------------------------------------------------- raster


def decode(picture: Picture, *, max_pixels: int = MAX_PIXELS, srgb: bool = True) -> Image.Image:
    """Decode ``picture`` into a loaded image in mode ``RGB`` or ``RGBA``.

    An SVG picture is rendered at its natural size. EXIF orientation is applied; with
    ``srgb`` an embedded ICC profile is converted to sRGB and dropped, otherwise it is
    kept in ``img.info`` (with ``exif``) for an export that keeps metadata.
    Raises :class:`StepError` for undecodable data or a picture above ``max_pixels``.
    """
    if picture.is_svg:
        return rasterize_svg(picture.data, max_pixels=max_pixels)
    if picture.pixels is not None:
        # Already decoded by whoever encoded ``data`` (no orientation, no profile in it):
        # the same pixels, without inflating them again.
        check_pixels(picture.pixels.width, picture.pixels.height, max_pixels)
        img = _normal_mode(picture.pixels)
        if img is picture.pixels:
            img = img.copy()  # callers may modify what decode returns
        img.info = {}
        return img
    try:
        img = Image.open(io.BytesIO(picture.data))
        # The header is read; refuse a bomb before a single pixel is decoded.
        check_pixels(img.width, img.height, max_pixels)
        img.load()
    except Image.DecompressionBombError as exc:
        raise StepError(
            f"the picture is too large to decode safely (limit {max_pixels / 1e6:.1f} MP)"
        ) from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise StepError(
            f"the {picture.media_type} picture cannot be decoded ({exc}); "
            "the file is damaged or not an image"
        ) from exc
    # After the transpose: its EXIF no longer says "rotate", so a kept copy cannot
    # make viewers rotate the picture a second time.
    img = ImageOps.exif_transpose(img)
    info = dict(img.info)
    if srgb and info.get("icc_profile"):
        img = _to_srgb(img, info["icc_profile"])
        info.pop("icc_profile", None)
    img = _normal_mode(img)
    # Only what an export that keeps metadata can use; nothing when converted.
    img.info = {} if srgb else {k: info[k] for k in ("icc_profile", "exif") if info.get(k)}
    return img


def _to_srgb(img: Image.Image, icc: bytes) -> Image.Image:
    """Convert from the embedded profile to sRGB; on a broken profile keep the pixels."""
    mode = img.mode
    if mode not in ("RGB", "RGBA", "CMYK", "L"):
        return img
    out_mode = "RGBA" if mode == "RGBA" else "RGB"
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        target = ImageCms.createProfile("sRGB")
        converted = ImageCms.profileToProfile(img, source, target, outputMode=out_mode)
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        # A damaged or exotic profile: the pixels as they are beat no picture.
        return img
    return converted if converted is not None else img


def _normal_mode(img: Image.Image) -> Image.Image:
    """Any Pillow mode -> ``RGB`` or ``RGBA`` (keeping transparency)."""
    mode = img.mode
    has_alpha = mode in ("RGBA", "LA", "La", "PA", "RGBa") or "transparency" in img.info
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # 16-bit grey: scale to 8 bits instead of letting convert() clip at 255.
        img = img.convert("I").point(lambda v: v * (1 / 257)).convert("L")
    elif mode == "F":
        img = img.convert("L")
    target = "RGBA" if has_alpha else "RGB"
    return img if img.mode == target else img.convert(target)


def picture_size(picture: Picture) -> tuple[int, int]:
    """Pixel size of ``picture`` without decoding its pixels.

    Raster: from the header (swapped for EXIF orientations that rotate by 90 degrees,
    as :func:`decode` applies them). SVG: its natural size (see :func:`svg_info`).
    """
    if picture.is_svg:
        return svg_info(picture.data).pixel_size()
    if picture.pixels is not None:
        return picture.pixels.size  # no orientation in such a picture (see Picture.pixels)
    try:
        with Image.open(io.BytesIO(picture.data)) as img:
            width, height = img.size
            if img.format == "PNG":
                # getexif() would decode a PNG to find a late eXIf chunk; only read an
                # early one, which is what encoders write.
                exif = Image.Exif()
                if img.info.get("exif"):
                    exif.load(img.info["exif"])
            else:
                exif = img.getexif()
            orientation = exif.get(0x0112, 1)
    except Image.DecompressionBombError as exc:
        raise StepError("the picture is too large to decode safely") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise StepError(
            f"the {picture.media_type} picture cannot be decoded ({exc})"
        ) from exc
    if orientation in (5, 6, 7, 8):
        return height, width
    return width, height


def to_picture(img: Image.Image, fmt: str = "png", meta: Mapping[str, object] | None = None) -> Picture:
    """Encode ``img`` losslessly as an intermediate picture (PNG by default).

    Deterministic: no metadata, no timestamps, a fixed zlib level. Only ``png`` is
    accepted; final formats are written by :mod:`recraft_build.steps.export`.
    """
    if fmt != "png":
        raise ValueError(f"intermediate pictures are PNG, not {fmt}")
    if img.mode not in ("RGB", "RGBA", "L", "LA"):
        img = _normal_mode(img)
    clean = img.copy()
    clean.info = {}
    buf = io.BytesIO()
    clean.save(buf, format="PNG", compress_level=_PNG_LEVEL)
    # ``clean`` is our own copy, never modified again: the next step or the export
    # decodes it from here instead of from the bytes.
    return Picture(buf.getvalue(), media_type_for_format("png"), dict(meta or {}), pixels=clean)


def parse_color(value: str) -> tuple[int, int, int, int]:
    """``"#rrggbb"``, ``"#rrggbbaa"``, ``"#rgb"`` or ``"transparent"`` -> RGBA tuple."""
    text = str(value).strip().lower()
    if text in ("transparent", "none"):
        return (0, 0, 0, 0)
    if re.fullmatch(r"#[0-9a-f]{3}", text):
        text = "#" + "".join(ch * 2 for ch in text[1:])
    if re.fullmatch(r"#[0-9a-f]{6}([0-9a-f]{2})?", text):
        r, g, b = (int(text[i:i + 2], 16) for i in (1, 3, 5))
        a = int(text[7:9], 16) if len(text) == 9 else 255
        return (r, g, b, a)
    raise StepError(
        f"{value!r} is not a colour; write \"#rrggbb\", \"#rrggbbaa\" or \"transparent\""
    )


# --------------------------------------------------------------------------- SVG


@dataclass(frozen=True)
class SvgInfo:
    """What :func:`svg_info` learned from an SVG's root element.

    ``width``/``height`` are in px (None when absent, relative or unusable);
    ``viewbox`` is ``(min_x, min_y, width, height)`` or None; ``root_offset`` is the
    byte offset of the root start tag in the document.
    """

    width: float | None
    height: float | None
    viewbox: tuple[float, float, float, float] | None
    root_offset: int
    width_percent: float | None = None
    height_percent: float | None = None

    def natural_size(self) -> tuple[float, float]:
        """The size the SVG asks to be drawn at, in px (resvg's rule).

        width/height when given (percentages of the viewBox), else the viewBox size.
        """
        vb_w = self.viewbox[2] if self.viewbox else None
        vb_h = self.viewbox[3] if self.viewbox else None
        w = self.width
        h = self.height
        if w is None and self.width_percent is not None and vb_w is not None:
            w = vb_w * self.width_percent / 100
        if h is None and self.height_percent is not None and vb_h is not None:
            h = vb_h * self.height_percent / 100
        if w is None and h is None:
            w, h = vb_w, vb_h
        elif w is None and h is not None:
            w = h * vb_w / vb_h if vb_w and vb_h else vb_w
        elif h is None and w is not None:
            h = w * vb_h / vb_w if vb_w and vb_h else vb_h
        if not w or not h or w <= 0 or h <= 0:
            raise StepError(
                "the SVG has no usable size: give its root a viewBox, or a width and height"
            )
        return w, h

    def pixel_size(self) -> tuple[int, int]:
        """:meth:`natural_size` rounded to whole pixels (at least 1)."""
        w, h = self.natural_size()
        return max(1, math.floor(w + 0.5)), max(1, math.floor(h + 0.5))


class _Refused(Exception):
    """Raised inside expat callbacks; turned into StepError by :func:`svg_info`."""


def svg_info(data: bytes) -> SvgInfo:
    """Parse ``data`` as SVG and describe its root; refuse what is unsafe.

    Raises :class:`StepError` when the document does not parse, its root is not an
    ``<svg>`` element, it declares a DOCTYPE or entities, or it has active content
    (see :mod:`recraft_build.steps.svgsafe`: scripts, event attributes, links and
    references to external files...).
    """
    parser = expat.ParserCreate(namespace_separator=" ")
    root: dict[str, object] = {}
    guard = SvgGuard()

    def refuse_doctype(*_args: object) -> None:
        raise _Refused("it declares a DOCTYPE, which is refused (entities can expand or load files)")

    def refuse_entity(*_args: object) -> None:
        raise _Refused("it declares or references an external entity, which is refused")

    def start(name: str, attrs: dict[str, str]) -> None:
        if not root:
            uri, _, local = name.rpartition(" ")
            if local != "svg" or uri not in (_SVG_NS, ""):
                raise _Refused(f"its root element is <{local}>, not <svg>")
            root["attrs"] = attrs
            root["offset"] = parser.CurrentByteIndex
        guard.start(name, attrs)

    guard.attach(parser)
    parser.StartDoctypeDeclHandler = refuse_doctype
    parser.EntityDeclHandler = refuse_entity
    parser.ExternalEntityRefHandler = refuse_entity
    parser.StartElementHandler = start
    try:
        parser.Parse(data, True)
    except (_Refused, UnsafeSvg) as exc:
        raise StepError(f"the SVG is refused: {exc}") from exc
    except expat.ExpatError as exc:
        raise StepError(f"the SVG does not parse: {exc}") from exc
    if not root:
        raise StepError("the SVG has no root element")
    attrs: dict[str, str] = root["attrs"]  # type: ignore[assignment]
    width, width_pct = _length(attrs.get("width"))
    height, height_pct = _length(attrs.get("height"))
    return SvgInfo(
        width=width,
        height=height,
        viewbox=_viewbox(attrs.get("viewBox")),
        root_offset=int(root["offset"]),  # type: ignore[arg-type]
        width_percent=width_pct,
        height_percent=height_pct,
    )


def _length(value: str | None) -> tuple[float | None, float | None]:
    """``"64"``/``"64px"``/``"2in"`` -> (px, None); ``"50%"`` -> (None, 50.0)."""
    if value is None:
        return None, None
    match = _LENGTH_RE.match(value)
    if not match:
        return None, None
    number, unit = float(match.group(1)), match.group(2)
    if unit == "%":
        return None, number
    factor = _UNITS.get(unit)
    if factor is None or number <= 0 or not math.isfinite(number):
        return None, None
    return number * factor, None


def _viewbox(value: str | None) -> tuple[float, float, float, float] | None:
    if value is None:
        return None
    try:
        parts = [float(p) for p in re.split(r"[\s,]+", value.strip())]
    except ValueError:
        return None
    if len(parts) != 4 or parts[2] <= 0 or parts[3] <= 0 or not all(map(math.isfinite, parts)):
        return None
    return (parts[0], parts[1], parts[2], parts[3])


def _fmt(number: float) -> str:
    """Short, stable number formatting for attributes we write."""
    text = f"{number:.4f}".rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"


def set_svg_root_attributes(
    data: bytes, attributes: Mapping[str, str], *, info: SvgInfo | None = None
) -> bytes:
    """Return ``data`` with the root ``<svg>`` tag's attributes replaced or added.

    Only the root start tag is rewritten (textually), so namespaces, comments and
    formatting elsewhere stay byte-for-byte as they were.
    """
    info = info or svg_info(data)
    match = _START_TAG_RE.match(data, info.root_offset)
    if not match:
        raise StepError("the SVG's root tag cannot be rewritten (unusual encoding?); re-save it as UTF-8")
    names = {key.encode() for key in attributes}
    kept = [
        m.group(0)
        for m in _ATTR_RE.finditer(match.group("attrs"))
        if m.group("key") not in names
    ]
    added = [
        b" " + key.encode() + b'="' + _escape_attr(value).encode() + b'"'
        for key, value in attributes.items()
    ]
    tag = b"<" + match.group("name") + b"".join(kept) + b"".join(added) + match.group("end")
    return data[: match.start()] + tag + data[match.end():]


def _escape_attr(value: str) -> str:
    return value.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")


def parse_svg(data: bytes) -> bytes:
    """Check ``data`` is a safe, parseable SVG and return it with a ``viewBox``.

    When the root has no viewBox one is added from its width and height (``0 0 w h``
    in px), so the picture scales; without either, :class:`StepError` is raised.
    """
    info = svg_info(data)
    if info.viewbox is not None:
        return data
    if info.width is None or info.height is None:
        raise StepError(
            "the SVG has no viewBox and no absolute width and height to make one from; "
            "add a viewBox to its root element"
        )
    viewbox = f"0 0 {_fmt(info.width)} {_fmt(info.height)}"
    return set_svg_root_attributes(data, {"viewBox": viewbox}, info=info)


def svg_text(data: bytes) -> str:
    """SVG bytes -> str for resvg, without the XML declaration (its encoding is applied)."""
    declaration = _XML_DECL_RE.match(data)
    encoding = "utf-8"
    if declaration:
        found = _ENCODING_RE.search(declaration.group(0))
        if found:
            encoding = found.group(1).decode("ascii")
        data = data[declaration.end():]
    try:
        return data.decode(encoding).lstrip("\ufeff")
    except (LookupError, UnicodeDecodeError) as exc:
        raise StepError(f"the SVG is not valid {encoding} text") from exc


def rasterize_svg(
    data: bytes,
    width: int | None = None,
    height: int | None = None,
    *,
    aspect: str = "xMidYMid meet",
    max_pixels: int = MAX_PIXELS,
) -> Image.Image:
    """Render an SVG with resvg into an ``RGBA`` image.

    No size: its natural size. One of ``width``/``height``: the other follows the
    aspect ratio. Both: exactly ``width`` x ``height``, the drawing placed by
    ``aspect`` (an SVG ``preserveAspectRatio``: ``"xMidYMid meet"`` fits inside and
    leaves transparent bands, ``"xMidYMid slice"`` fills and crops, ``"none"``
    stretches). The size is checked against ``max_pixels`` before rendering.
    """
    data = parse_svg(data)
    info = svg_info(data)
    nat_w, nat_h = info.natural_size()
    if width is None and height is None:
        out_w, out_h = info.pixel_size()
    elif width is not None and height is not None:
        out_w, out_h = int(width), int(height)
    elif width is not None:
        out_w, out_h = int(width), max(1, math.floor(width * nat_h / nat_w + 0.5))
    else:
        assert height is not None
        out_w, out_h = max(1, math.floor(height * nat_w / nat_h + 0.5)), int(height)
    check_pixels(out_w, out_h, max_pixels)
    # Pin the exact pixel size in the document, so resvg's own rounding (and its
    # missing support for units like mm) cannot disagree with ours.
    attributes = {"width": str(out_w), "height": str(out_h)}
    if width is not None and height is not None:
        attributes["preserveAspectRatio"] = aspect
    sized = set_svg_root_attributes(data, attributes, info=info)
    try:
        import resvg_py

        png = resvg_py.svg_to_bytes(svg_string=svg_text(sized))
        img = Image.open(io.BytesIO(bytes(png)))
        img.load()
    except (ValueError, OSError) as exc:
        raise StepError(f"the SVG cannot be rendered: {exc}") from exc
    img = img.convert("RGBA") if img.mode != "RGBA" else img
    if img.size != (out_w, out_h):
        raise StepError(
            f"the SVG rendered at {img.width}x{img.height} instead of {out_w}x{out_h}"
        )
    img.info = {}
    return img
