"""Drawing an atlas: frames decoded, trimmed and extruded, pages composed and encoded,
and the text files that describe them (TexturePacker JSON, a CSS sprite sheet).

Pure: frame bytes in, page bytes and text out. Pixels are copied exactly (no
resampling, no compositing): a frame's rectangle on its page holds the same RGBA
values as its source file decoded. Every setting is fixed, so the same frames and
options give the same bytes.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from PIL import Image

from recraft_build.domain import AtlasSpec
from recraft_build.engine.atlaspack import PackError, pack_pages
from recraft_build.errors import OutputError

__all__ = ["Page", "Sheet", "css", "draw", "page_json"]

_APP = "recraft-build"
_FORMAT_VERSION = "1.0"
# Frames are our own output files, but a hostile cache could hold anything: refuse
# pictures past this many pixels before decoding them.
_MAX_FRAME_PIXELS = 64 * 1024 * 1024


@dataclass(frozen=True)
class _Frame:
    name: str
    image: Image.Image  # the (trimmed) pixels
    source: tuple[int, int]  # the file's width, height
    offset: tuple[int, int]  # where the trimmed pixels start in the file
    trimmed: bool


@dataclass(frozen=True)
class Page:
    """One encoded page and the rectangle (x, y, w, h) of each frame on it."""

    width: int
    height: int
    png: bytes
    frames: Mapping[str, tuple[int, int, int, int]]


@dataclass(frozen=True)
class Sheet:
    """An atlas at one scale: its pages, and each frame's source size and trim."""

    pages: tuple[Page, ...]
    sources: Mapping[str, tuple[int, int]]
    offsets: Mapping[str, tuple[int, int]]
    trimmed: Mapping[str, bool]
    frame_pixels: int


def _decode(name: str, data: bytes) -> Image.Image:
    try:
        img = Image.open(io.BytesIO(data))
        if img.width * img.height > _MAX_FRAME_PIXELS:
            raise OutputError(f"frame {name!r} is {img.width}x{img.height} px, too large for an atlas")
        img.load()
    except OutputError:
        raise
    except Exception as exc:  # Pillow raises assorted errors on bad data
        raise OutputError(f"frame {name!r} cannot be decoded as a picture: {exc}") from exc
    return img.convert("RGBA")


def _prepare(name: str, data: bytes, trim: bool) -> _Frame:
    img = _decode(name, data)
    size = img.size
    if not trim:
        return _Frame(name, img, size, (0, 0), False)
    box = img.getchannel("A").getbbox()
    if box is None:
        box = (0, 0, 1, 1)  # fully transparent: keep one clear pixel, as TexturePacker does
    if box == (0, 0, img.width, img.height):
        return _Frame(name, img, size, (0, 0), False)
    return _Frame(name, img.crop(box), size, (box[0], box[1]), True)


def _extruded(img: Image.Image, e: int) -> Image.Image:
    """``img`` with its edge pixels repeated ``e`` times on every side."""
    if e == 0:
        return img
    w, h = img.size
    tile = Image.new("RGBA", (w + 2 * e, h + 2 * e), (0, 0, 0, 0))
    tile.paste(img, (e, e))
    near = Image.Resampling.NEAREST
    tile.paste(img.crop((0, 0, w, 1)).resize((w, e), near), (e, 0))
    tile.paste(img.crop((0, h - 1, w, h)).resize((w, e), near), (e, e + h))
    tile.paste(img.crop((0, 0, 1, h)).resize((e, h), near), (0, e))
    tile.paste(img.crop((w - 1, 0, w, h)).resize((e, h), near), (e + w, e))
    for (sx, sy), (dx, dy) in (((0, 0), (0, 0)), ((w - 1, 0), (e + w, 0)),
                               ((0, h - 1), (0, e + h)), ((w - 1, h - 1), (e + w, e + h))):
        tile.paste(img.crop((sx, sy, sx + 1, sy + 1)).resize((e, e), near), (dx, dy))
    return tile


def draw(pictures: Sequence[tuple[str, bytes]], spec: AtlasSpec, scale: float) -> Sheet:
    """Pack ``(frame name, file bytes)`` into pages as ``spec`` says.

    Raises :class:`~recraft_build.engine.atlaspack.PackError` when a frame is larger
    than a page may be, OutputError when a frame cannot be decoded.
    """
    frames = [_prepare(name, data, spec.trim) for name, data in pictures]
    e = spec.extrude
    sizes = [(f.image.width + 2 * e, f.image.height + 2 * e) for f in frames]
    for f, (w, h) in zip(frames, sizes):
        if w > spec.max_size or h > spec.max_size:
            raise PackError(f"frame {f.name!r} is {w}x{h} px" + (" with extrude" if e else "")
                            + f", larger than max_size {spec.max_size}")
    packed = pack_pages(sizes, spec.max_size, padding=spec.padding, power_of_two=spec.power_of_two)
    pages = []
    for pg in packed:
        canvas = Image.new("RGBA", (pg.width, pg.height), (0, 0, 0, 0))
        rects: dict[str, tuple[int, int, int, int]] = {}
        for p in pg.placements:
            f = frames[p.index]
            canvas.paste(_extruded(f.image, e), (p.x, p.y))
            rects[f.name] = (p.x + e, p.y + e, f.image.width, f.image.height)
        buf = io.BytesIO()
        canvas.save(buf, format="PNG", compress_level=9)
        pages.append(Page(pg.width, pg.height, buf.getvalue(), {f.name: rects[f.name] for f in frames
                                                               if f.name in rects}))
    return Sheet(
        pages=tuple(pages),
        sources={f.name: f.source for f in frames},
        offsets={f.name: f.offset for f in frames},
        trimmed={f.name: f.trimmed for f in frames},
        frame_pixels=sum(f.image.width * f.image.height for f in frames),
    )


def page_json(sheet: Sheet, n: int, image: str, related: Sequence[str], fmt: str, scale: float) -> bytes:
    """Page ``n`` of ``sheet`` in TexturePacker's JSON (Hash), or (Array) when ``fmt`` is
    ``array``. ``image`` is the page's file name and ``related`` the other pages' JSON
    file names (both relative to the JSON file)."""
    page = sheet.pages[n]
    entries = []
    for name, (x, y, w, h) in page.frames.items():
        ox, oy = sheet.offsets[name]
        sw, sh = sheet.sources[name]
        entries.append((name, {
            "frame": {"x": x, "y": y, "w": w, "h": h},
            "rotated": False,
            "trimmed": sheet.trimmed[name],
            "spriteSourceSize": {"x": ox, "y": oy, "w": w, "h": h},
            "sourceSize": {"w": sw, "h": sh},
        }))
    frames: Any = dict(entries) if fmt == "hash" else [{"filename": name, **e} for name, e in entries]
    meta: dict[str, Any] = {
        "app": _APP,
        "version": _FORMAT_VERSION,
        "image": image,
        "format": "RGBA8888",
        "size": {"w": page.width, "h": page.height},
        "scale": f"{scale:g}",
    }
    if related:
        meta["related_multi_packs"] = list(related)
    return (json.dumps({"frames": frames, "meta": meta}, indent=2, ensure_ascii=False) + "\n").encode()


def css_ident(text: str) -> str:
    """``text`` as a CSS identifier part: letters, digits, ``-`` and ``_`` kept, any other
    character escaped (``\\2f `` for ``/``), so an asset name can never break out of
    its selector."""
    out = []
    for ch in text:
        if ch.isascii() and (ch.isalnum() or ch in "-_"):
            out.append(ch)
        else:
            out.append(f"\\{ord(ch):x} ")
    ident = "".join(out)
    return ident if not ident[:1].isdigit() else f"\\3{ident[0]} {ident[1:]}"


def css(spec: AtlasSpec, sheets: Sequence[Sheet], pages: Mapping[float, Sequence[str]],
        basename: Callable[[str], str]) -> bytes:
    """A CSS sprite sheet: ``.BASENAME-FRAME`` per frame with its page, position and
    size at the first scale, and each higher scale's page and position for screens of
    at least that many dppx (sizes in CSS pixels: image pixels divided by the scale)."""
    base = spec.path.rsplit("/", 1)[-1]
    lines = [f"/* Sprite sheet {spec.path} written by recraft-build; do not edit. */"]
    first = spec.scales[0]
    for k, (scale, sheet) in enumerate(zip(spec.scales, sheets)):
        indent = "" if k == 0 else "  "
        if k:
            ratio = scale / first
            lines.append(f"@media (min-resolution: {ratio:g}dppx), (-webkit-min-device-pixel-ratio: {ratio:g}) {{")
        for n, page in enumerate(sheet.pages):
            url = basename(pages[scale][n])
            for name, (x, y, w, h) in page.frames.items():
                rule = [f'background-image: url("{url}")',
                        f"background-position: {-x / scale:g}px {-y / scale:g}px"]
                if scale != 1:
                    rule.append(f"background-size: {page.width / scale:g}px {page.height / scale:g}px")
                if k == 0:
                    rule += ["background-repeat: no-repeat", f"width: {w / scale:g}px", f"height: {h / scale:g}px"]
                lines.append(f"{indent}.{css_ident(base)}-{css_ident(name)} {{ {'; '.join(rule)}; }}")
        if k:
            lines.append("}")
    return ("\n".join(lines) + "\n").encode()
