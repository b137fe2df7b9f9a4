"""Local vectorizing: trace a raster picture into SVG with vtracer or potrace.

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

Other parameters:

* ``tracer``: ``vtracer`` (default; colour) or ``potrace`` (black-and-white line
  art: smaller and closer files, see ``benchmarks/README.md``). potrace traces the
  dark shapes (brightness below ``threshold``, default 128, after compositing on
  white) in one colour: black, or the palette's darkest colour; it needs Debian's
  ``potrace`` program (``apt-get install potrace``). Of the tuning parameters it
  takes ``filter_speckle`` (potrace's turd size) and ``corner_threshold`` (mapped to
  its corner parameter); the vtracer-only ones are refused.
* ``snap`` 0..64 (default 12): a traced colour within this many levels (in every
  channel) of white, black or a ``palette`` colour becomes exactly that colour.
  vtracer's colour quantisation turns pure white into ``#FEFEFE``, a tint over
  every white area; snapping removes it. 0 turns snapping off.
* ``palette``: a list of ``#rrggbb`` colours to snap to, or ``auto``: the asset's
  ``controls.colors`` (the spec loader fills them in).

Transparent pixels stay transparent: colour mode keys them out, so the SVG has no
background shape there. Binary mode traces dark shapes (drawn black) over nothing,
after compositing the picture on white. Partial transparency is not kept: vtracer
draws every shape opaque. The SVG always has a ``viewBox`` (``0 0 w h``) and is
checked to parse before it is returned.
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess
from typing import Any, Mapping, Sequence

from PIL import Image

from recraft_build.errors import StepError
from recraft_build.steps.images import parse_svg

__all__ = ["DEFAULTS", "TRACERS", "snap_colours", "vectorize"]

#: Values of the ``tracer`` parameter.
TRACERS = ("vtracer", "potrace")
#: Default of ``snap``: levels per channel within which a colour snaps.
DEFAULT_SNAP = 12
_VTRACER_ONLY = ("color_mode", "color_precision", "path_mode", "layer_difference",
                 "length_threshold", "splice_threshold")
_FILL = re.compile(rb'fill="#([0-9A-Fa-f]{6})"')
_POTRACE_TIMEOUT = 60.0

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

    Raises :class:`StepError` for bad parameters or when the tracer fails.
    """
    params = params or {}
    tracer = params.get("tracer", "vtracer")
    if tracer not in TRACERS:
        raise StepError(f"tracer must be one of {', '.join(TRACERS)}, not {tracer!r}")
    snap = params.get("snap", DEFAULT_SNAP)
    if isinstance(snap, bool) or not isinstance(snap, (int, float)) or not 0 <= snap <= 64:
        raise StepError(f"snap must be a number from 0 to 64, not {snap!r}")
    palette = _palette(params.get("palette"))
    if tracer == "potrace":
        svg = _potrace(img, params, palette)
    else:
        svg = _vtracer(img, params)
    if snap > 0:
        svg = snap_colours(svg, [(255, 255, 255), (0, 0, 0), *palette], float(snap))
    return parse_svg(svg)


def _palette(value: Any) -> list[tuple[int, int, int]]:
    if value is None:
        return []
    if value == "auto":
        raise StepError("palette: auto was not resolved (it takes the asset's controls.colors "
                        "when the spec is loaded); give the colours as a list of #rrggbb")
    if not isinstance(value, (list, tuple)):
        raise StepError(f"palette must be auto or a list of #rrggbb colours, not {value!r}")
    out = []
    for item in value:
        if not isinstance(item, str) or not re.fullmatch(r"#[0-9a-fA-F]{6}", item):
            raise StepError(f"palette colours must be #rrggbb, not {item!r}")
        out.append((int(item[1:3], 16), int(item[3:5], 16), int(item[5:7], 16)))
    return out


def snap_colours(svg: bytes, targets: Sequence[tuple[int, int, int]], within: float) -> bytes:
    """``svg`` with every ``fill="#rrggbb"`` within ``within`` levels (each channel) of
    one of ``targets`` replaced by the nearest such target (lower-case hex)."""
    if not targets:
        return svg
    cache: dict[bytes, bytes] = {}

    def replace(match: re.Match[bytes]) -> bytes:
        text = match.group(1)
        found = cache.get(text)
        if found is None:
            rgb = (int(text[0:2], 16), int(text[2:4], 16), int(text[4:6], 16))
            best, best_gap = None, within
            for target in targets:
                gap = max(abs(a - b) for a, b in zip(rgb, target))
                if gap <= best_gap:
                    best, best_gap = target, gap
            found = match.group(0) if best is None else b'fill="#%02x%02x%02x"' % best
            cache[text] = found
        return found

    return _FILL.sub(replace, svg)


def _vtracer(img: Image.Image, params: Mapping[str, Any]) -> bytes:
    options = _options(params)
    if options["colormode"] == "binary" and img.mode == "RGBA":
        # Binary mode thresholds brightness; clear pixels must read as light, not black.
        white = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, img).convert("RGB")
    if img.mode not in ("RGB", "RGBA"):
        img = img.convert("RGBA")
    if img.mode == "RGBA" and img.getchannel("A").getextrema()[0] == 255:
        img = img.convert("RGB")  # opaque: the alpha channel carries nothing
    buf = io.BytesIO()
    # Opaque pictures go as BMP: no compression to do and undo (a PNG round trip was a
    # fifth of the time); vtracer reads no alpha from BMP, so RGBA goes as PNG.
    fmt = "bmp" if img.mode == "RGB" else "png"
    img.save(buf, format=fmt.upper(), **({"compress_level": 1} if fmt == "png" else {}))
    try:
        import vtracer

        svg = vtracer.convert_raw_image_to_svg(buf.getvalue(), img_format=fmt, **options)
    except Exception as exc:  # vtracer raises bare Exceptions from Rust; none are ours
        raise StepError(f"vtracer could not trace the picture: {exc}") from exc
    return svg.encode("utf-8")


def _potrace(img: Image.Image, params: Mapping[str, Any],
             palette: Sequence[tuple[int, int, int]]) -> bytes:
    """Trace the dark shapes of ``img`` with Debian's ``potrace`` program."""
    refused = [k for k in _VTRACER_ONLY if k in params]
    if refused:
        raise StepError(f"{', '.join(refused)} apply to tracer: vtracer, not potrace; remove them")
    options = _options({k: v for k, v in params.items() if k in ("filter_speckle", "corner_threshold")})
    threshold = params.get("threshold", 128)
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 1 <= threshold <= 255:
        raise StepError(f"threshold must be a number from 1 to 255, not {threshold!r}")
    program = shutil.which("potrace")
    if program is None:
        raise StepError("tracer: potrace needs the potrace program, which is not installed "
                        "(apt-get install potrace), or use tracer: vtracer")
    rgba = img.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    grey = Image.alpha_composite(white, rgba).convert("L")
    ink = grey.point(lambda v: 255 if v >= threshold else 0).convert("1")
    pbm = io.BytesIO()
    ink.save(pbm, format="PPM")  # mode "1" is written as a binary PBM (P4)
    # potrace's corner parameter alphamax runs from 0 (all corners) to 1.3334 (none);
    # corner_threshold maps linearly, its default 60 degrees to potrace's default 1.0.
    alphamax = min(1.3334, options["corner_threshold"] / 60.0)
    argv = [program, "--svg", "--flat", "--output", "-", "--turdsize", str(options["filter_speckle"]),
            "--alphamax", f"{alphamax:.4f}", "-"]
    try:
        done = subprocess.run(argv, input=pbm.getvalue(), capture_output=True,
                              timeout=_POTRACE_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise StepError(f"potrace could not run: {exc}") from exc
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise StepError(f"potrace failed (exit {done.returncode}): {message[-1] if message else ''}")
    group = re.search(rb"<g\b.*?</g>", done.stdout, re.S)
    colour = min(palette, key=sum) if palette else (0, 0, 0)
    width, height = rgba.size
    body = group.group(0) if group else b""
    body = re.sub(rb'fill="#[0-9A-Fa-f]{6}"', b'fill="#%02x%02x%02x"' % colour, body)
    return (b'<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d">\n'
            % (width, height, width, height) + body + b"\n</svg>\n")
