"""Key-colour background removal: cut out a picture drawn on a known key colour.

``remove_background: {key: "#ff00ff"}`` (or ``key: auto``, which asks the generator
for that background, see :mod:`recraft_build.steps.keycolor`). Because the key is a
colour the subject does not use, colour alone tells background from subject, so
unlike the border flood this removes background wherever it shows (inside rings and
between an arm and a body), keeps white and pale subject parts that touch the edge,
and turns a shadow cast on the background into a real semi-transparent shadow.

How it works (numpy, about 100 ms of CPU for a 1024 x 1024 picture):

1. **The real background.** Generators honour a background colour only roughly, and
   light it: the border pixels near the requested key are fitted with the same
   quadratic surface as the border flood (:func:`background.fit_background`). Fewer
   than a quarter of them near the key means the picture is not on the key: the
   step fails and says so.
2. **Key or not.** Every pixel is measured against the segment from the background
   ``B`` to ``SHADOW_FLOOR * B`` (the key and its shadows): ``s`` is how dark it is
   relative to ``B`` (1 = plain key, 0.6 = a 40 % shadow), ``r`` its distance from
   the segment. Pixels within the tolerance of the segment are background, wherever
   they are, when they are plain key (``s`` >= 0.8) or form a region with plain key
   or a 4 x 4 block wholly of them (a shadow, a hole in shadow); this keeps the thin,
   dark key-like seams that compression makes where two subject colours meet.
3. **Soft edge.** On a ring around the boundary (2 px each side, 4 px from 384 px
   up), each pixel is a mix ``C = a F + (1 - a) s B`` of the subject colour ``F``
   (carried outwards from the nearest solid subject pixels) and the local, possibly
   shadowed, background ``s B``. Where ``F`` is well off the line through black and
   ``B`` (on which every shade of the key lies), ``a`` is measured across that line,
   which no shadow changes; otherwise (dark or key-hued subject colours) it is the
   projection of ``C - sB`` on ``F - sB``, with the shade ``s`` averaged from the
   background nearby. Edge colours are un-mixed from the background, then *spill*
   (a leftover tint of the key) is taken out: no colour on the rim leans further
   towards the key than the subject colour next to it.
4. **Shadow.** ``shadow: keep`` (default): the shadow becomes black at the opacity it
   darkened the key by (``1 - s``), under the subject, so the cut-out over any
   background looks as it did over the key. ``shadow: drop``: alpha is 0 there.

Limits: a subject colour close to the key or to a darker shade of it (dark purple on
a magenta key) is taken for background or shadow: choose another key.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
from PIL import Image, ImageFilter

from recraft_build.errors import StepError
from recraft_build.steps.background import (
    _feather,
    _shift_max,
    fit_background,
    flood_from_border,
    opaque_or_clear,
)
from recraft_build.steps.keycolor import SHADOW_FLOOR, hex_rgb, rgb_hex

__all__ = ["SHADOWS", "key_out"]

#: Values of the ``shadow`` parameter.
SHADOWS = ("keep", "drop")

_NEAR_KEY = 110.0  # a border pixel this close (RGB) to the key's segment is background
_MIN_KEY_SHARE = 0.25
_RING = 2  # half-width of the soft-edge ring, px, below _WIDE_FROM px
_WIDE_RING = 4  # from _WIDE_FROM px: soft edges (glows, 3D renders) are wider there
_WIDE_FROM = 384
_OFF_LINE = 60.0  # RGB distance of a subject colour from the key's line to measure across it
_PLAIN_SHADE = 0.8  # a pixel this light (relative to the key) is plain key, not shadow
_BLOCK = 4  # px: the grid on which region connectivity and the local shade are judged
_FIT_SAMPLES = 8000


def _block_sum(values: np.ndarray, factor: int) -> np.ndarray:
    """Sum over ``factor`` x ``factor`` blocks (the picture padded with zeros to fit),
    in float32. A picture that fits the blocks exactly is summed in place, without the
    padded copy (the same sums, in the same order)."""
    h, w = values.shape
    hb, wb = -(-h // factor), -(-w // factor)
    if (hb * factor, wb * factor) == (h, w) and values.dtype == np.float32 and values.flags.c_contiguous:
        padded = values
    else:
        padded = np.zeros((hb * factor, wb * factor), np.float32)
        padded[:h, :w] = values
    return padded.reshape(hb, factor, wb, factor).sum(axis=(1, 3))


def _box_sum(values: np.ndarray, radius: int) -> np.ndarray:
    """Sum over a (2r+1)^2 window of a small 2-D array (edges clipped)."""
    out = values
    for axis in (0, 1):
        padded = np.pad(out, [(radius, radius) if a == axis else (0, 0) for a in (0, 1)])
        cum = np.cumsum(padded, axis=axis, dtype=np.float64)
        cum = np.concatenate([np.zeros_like(cum.take([0], axis=axis)), cum], axis=axis)
        n = out.shape[axis]
        hi = cum.take(np.arange(2 * radius + 1, n + 2 * radius + 1), axis=axis)
        lo = cum.take(np.arange(0, n), axis=axis)
        out = (hi - lo).astype(np.float32)
    return out


def _evaluate_model(coeffs: np.ndarray, height: int, width: int) -> np.ndarray:
    """The background surface (H x W x 3), or its plain colour (1 x 1 x 3) when flat.

    A flat model (under half a level of change anywhere) is kept as one colour: the
    per-pixel arithmetic below then broadcasts instead of reading a full array.
    """
    spread = np.abs(coeffs[1:]).sum(axis=0).max()
    if spread < 0.5:
        return coeffs[0].astype(np.float32).reshape(1, 1, 3)
    x = (np.arange(width, dtype=np.float32) / max(width - 1, 1)) * 2 - 1
    y = (np.arange(height, dtype=np.float32) / max(height - 1, 1)) * 2 - 1
    c = coeffs.astype(np.float32)
    xx, yy = x[None, :, None], y[:, None, None]
    return c[0] + c[1] * xx + c[2] * yy + c[3] * xx * yy + c[4] * xx * xx + c[5] * yy * yy


def _dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-pixel dot product of two (broadcastable) H x W x 3 arrays."""
    if b.shape[:2] == (1, 1):
        return a @ b.reshape(3)
    return np.einsum("ijk,ijk->ij", a, np.broadcast_to(b, a.shape))


def _segment(img: np.ndarray, model: np.ndarray, bb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(s, r)``: each pixel's shade relative to the background and its distance from
    the key's segment (see the module docstring)."""
    cb = _dot(img, model)
    s = cb / bb
    sc = np.clip(s, SHADOW_FLOOR, 1.0)
    r2 = _dot(img, img) - 2 * sc * cb + sc * sc * bb
    return s, np.sqrt(np.maximum(r2, 0, out=r2), out=r2)


def key_out(img: Image.Image, params: Mapping[str, Any]) -> Image.Image:
    """Cut ``img`` out of the key colour ``params["key"]`` (``#rrggbb``); RGBA result.

    Other ``params``: ``shadow`` (``keep``/``drop``), ``tolerance`` (0..255, RGB
    distance from the key still counted as key; default from the noise measured on
    the border) and ``feather`` (0..20 px). Raises :class:`StepError` when the
    picture is not on the key colour or holds nothing but the key.
    """
    key_hex = params["key"]
    try:
        key = np.array(hex_rgb(key_hex), np.float32)
    except (TypeError, ValueError, AttributeError):
        raise StepError(f"key must be auto or a colour #rrggbb, not {key_hex!r}") from None
    shadow = params.get("shadow", "keep")
    if shadow not in SHADOWS:
        raise StepError(f"shadow must be keep or drop, not {shadow!r}")
    tolerance = params.get("tolerance")
    feather = float(params.get("feather") or 0)

    rgba = img.convert("RGBA")
    src = np.asarray(rgba)
    height, width = src.shape[:2]
    band = max(2, round(min(height, width) * 0.01))
    border_mask = np.zeros((height, width), bool)
    border_mask[:band], border_mask[-band:], border_mask[:, :band], border_mask[:, -band:] = (True,) * 4
    has_alpha = src[..., 3].min() < 255
    if has_alpha and (src[..., 3][border_mask] / 255).mean() < 0.5:
        return rgba.copy()  # already cut out: nothing to remove
    smooth = np.asarray(rgba.convert("RGB").filter(ImageFilter.BoxBlur(1)), dtype=np.float32)

    # 1. The real background: the border pixels near the key, fitted.
    border_px = smooth[border_mask][None]
    _s, r_key = _segment(border_px, key.reshape(1, 1, 3), float(key @ key))
    near_px = r_key[0] <= _NEAR_KEY
    share = float(near_px.mean())
    if share < _MIN_KEY_SHARE:
        common = np.median(border_px[0], axis=0)
        raise StepError(
            f"the picture is not on the key colour {key_hex}: only {share:.0%} of its border "
            f"is near it (the border is mostly {rgb_hex(common)}); the generator did not "
            "honour controls.background_color, or the key is wrong: set key to the "
            "background's colour, or remove key to use the border flood"
        )
    near = np.zeros((height, width), bool)
    near[border_mask] = near_px
    coeffs, _share, noise = fit_background(smooth, near, max_samples=_FIT_SAMPLES)
    model = _evaluate_model(coeffs, height, width)
    flat_model = model.shape[:2] == (1, 1)
    bb = float(model.reshape(3) @ model.reshape(3)) if flat_model else _dot(model, model)

    # 2. Key or not, everywhere; regions must hold some plain key.
    s, r = _segment(smooth, model, bb)
    tol = float(tolerance) if tolerance is not None else float(np.clip(4 * noise + 12, 20, 72))
    candidate = r <= tol
    seeds = candidate & (s >= _PLAIN_SHADE)
    background = np.ascontiguousarray(_regions(r, tol, candidate, seeds))
    if background.all():
        raise StepError(
            f"the whole picture is the key colour {key_hex}: no subject was found; check the "
            "picture, or lower the tolerance"
        )

    # 3. The ring where alpha is measured, and the local shade of the background.
    reach = _WIDE_RING if min(height, width) >= _WIDE_FROM else _RING
    near_bg = _shift_max(background.view(np.uint8), reach).view(bool)
    near_fg = _shift_max((~background).view(np.uint8), reach).view(bool)
    ring = near_bg & near_fg
    sure_bg = background & ~ring
    sure_fg = ~background & ~ring
    ring_idx = np.flatnonzero(ring)
    shade = np.clip(s, 0.0, 1.0)
    ring_shade = _local_shade(shade, sure_bg, ring_idx, width)

    # Subject colour next to each ring pixel: carried outwards from the sure subject.
    rgb = src[..., :3]
    colour, known = _carry_colour(rgb, sure_fg, ring_idx, width, 2 * reach + 2)
    c = rgb.reshape(-1, 3)[ring_idx].astype(np.float32)
    b = np.broadcast_to(model.reshape(3), c.shape) if flat_model else model.reshape(-1, 3)[ring_idx]
    b_loc = b * ring_shade[:, None]
    f = colour
    fb = f - b_loc
    den = np.einsum("ij,ij->i", fb, fb)
    alpha_ring = np.einsum("ij,ij->i", c - b_loc, fb) / np.maximum(den, 1e-6)
    # Where the subject colour is well off the key's line (through black and the key),
    # measure across that line instead: a shadow moves a pixel along the line only,
    # so this alpha needs no estimate of the shade (which changes fast near the
    # subject, where a drop shadow is darkest).
    unit = b / np.linalg.norm(b, axis=1, keepdims=True)
    f_across = f - np.einsum("ij,ij->i", f, unit)[:, None] * unit
    c_across = c - np.einsum("ij,ij->i", c, unit)[:, None] * unit
    across = np.einsum("ij,ij->i", f_across, f_across)
    off_line = across >= _OFF_LINE * _OFF_LINE
    alpha_ring = np.where(off_line, np.einsum("ij,ij->i", c_across, f_across) / np.maximum(across, 1e-6),
                          alpha_ring)
    den = np.where(off_line, across, den)
    measurable = known & (den >= tol * tol)
    fallback = (~background.ravel()[ring_idx]).astype(np.float32)
    # Within the noise of 0 or 1 is 0 or 1: clean zeros beside the subject, no speckle.
    within = np.clip(3 * noise / np.sqrt(np.maximum(den, 1e-6)), 0.03, 0.2)
    alpha_ring = np.where(alpha_ring < within, 0.0, np.where(alpha_ring > 1 - within, 1.0, alpha_ring))
    alpha_ring = np.where(measurable, np.clip(alpha_ring, 0.0, 1.0), fallback).astype(np.float32)

    # Un-mix the edge colour, then take out spill: no more lean towards the key than
    # the subject colour next to it.
    unmixed = b_loc + (c - b_loc) / np.maximum(alpha_ring, 0.05)[:, None]
    unmixed = np.where((alpha_ring > 0.02)[:, None], unmixed, f)
    direction = key - key.mean()
    norm = float(np.linalg.norm(direction))
    if norm > 1e-3:
        direction /= norm
        lean = (unmixed - unmixed.mean(axis=1, keepdims=True)) @ direction
        allowed = (f - f.mean(axis=1, keepdims=True)) @ direction
        excess = np.maximum(lean - np.where(known, allowed, 0.0), 0.0)
        unmixed = unmixed - excess[:, None] * direction[None]
    unmixed = np.clip(unmixed, 0, 255)

    # 4. Assemble: subject as it was, background clear (or shadow), the ring measured.
    out = opaque_or_clear(src, background)
    flat = out.reshape(-1, 4)
    if shadow == "keep":
        # Shadow opacity = how much it darkened the key; a dead zone of the noise keeps
        # the plain key at exactly 0. A shadow is black at that opacity.
        dead = min(0.5, max(0.025, 4 * noise / float(np.sqrt(np.mean(bb)))))
        darkness = 1.0 - shade
        darkness[darkness <= dead] = 0.0
        out[..., 3] = np.where(sure_bg, np.rint(darkness * 255), out[..., 3]).astype(np.uint8)
        # The shade behind a ring pixel: that of the background next to it (the pixel's
        # own colour is a mix, and compression smears the subject's colour into it).
        ring_dark = 1.0 - ring_shade
        ring_dark = np.where(ring_dark > dead, ring_dark, 0.0)
        total = alpha_ring + (1 - alpha_ring) * ring_dark
        ring_rgb = unmixed * (alpha_ring / np.maximum(total, 1e-6))[:, None]
    else:
        total = alpha_ring
        ring_rgb = unmixed
    flat[ring_idx, 3] = np.rint(np.clip(total, 0, 1) * 255).astype(np.uint8)
    flat[ring_idx, :3] = np.rint(np.where((total > 0)[:, None], ring_rgb, 0)).astype(np.uint8)

    if feather > 0 or has_alpha:
        alpha = out[..., 3].astype(np.float32) / 255
        colour_all = out[..., :3].astype(np.float32)
        if feather > 0:
            alpha, colour_all = _feather(alpha, colour_all, feather)
        if has_alpha:
            alpha = alpha * (src[..., 3] / 255)
        colour_all = np.where(alpha[..., None] > 0, colour_all, 0)
        out = np.clip(np.rint(np.dstack([colour_all, alpha * 255])), 0, 255).astype(np.uint8)
    return Image.fromarray(out, "RGBA")


def _regions(r: np.ndarray, tol: float, candidate: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """Candidate pixels 4-connected to a seed (a pixel of the plain key) or to a
    ``_BLOCK`` x ``_BLOCK`` block made wholly of candidates (a shadow, a hole in
    shadow). A dark, thin key-like seam inside the subject (JPEG colour bleeding
    between two subject colours) is neither, so it stays subject."""
    height, width = candidate.shape
    factor = _BLOCK if min(height, width) >= 16 * _BLOCK else 1
    if height % factor or width % factor:
        whole = _block_sum(candidate.astype(np.float32), factor) >= factor * factor
    else:  # the blocks fit: "wholly candidates" without summing
        whole = candidate.reshape(height // factor, factor, width // factor, factor).all(axis=(1, 3))
    solid = np.repeat(np.repeat(whole, factor, axis=0), factor, axis=1)[:height, :width]
    return flood_from_border(r, tol, seeds | solid)


def _local_shade(shade: np.ndarray, sure_bg: np.ndarray, ring_idx: np.ndarray,
                 width: int) -> np.ndarray:
    """The background's shade next to each ring pixel: the mean over sure background
    in the surrounding blocks (1 where there is none). Shadows are soft, so blocks of
    ``_BLOCK`` px are fine enough."""
    factor = _BLOCK
    weight = _block_sum(sure_bg.astype(np.float32), factor)
    total = _block_sum(np.where(sure_bg, shade, np.float32(0)).astype(np.float32, copy=False), factor)
    weight, total = _box_sum(weight, 1), _box_sum(total, 1)
    ys, xs = np.divmod(ring_idx, width)
    w = weight[ys // factor, xs // factor]
    t = total[ys // factor, xs // factor]
    return np.where(w > 0.5, t / np.maximum(w, 1e-6), 1.0).astype(np.float32)


def _carry_colour(rgb: np.ndarray, sure_fg: np.ndarray, ring_idx: np.ndarray,
                  width: int, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """The subject colour next to each ring pixel: ``(colours, known)``.

    Colours spread from solid subject pixels into the ring one 4-neighbour step at a
    time (the mean of the neighbours already known), for up to ``steps`` steps;
    ring pixels still unreached (a line thinner than the ring) are not known.
    ``rgb`` is H x W x 3 (any numeric type); colours come back as float32.

    Each step works on the pixels still pending only, adding the neighbours' parts in
    a fixed order (left, right, up, down; a missing part adds an exact 0), so the
    float sums do not depend on which other pixels are pending.
    """
    n = len(ring_idx)
    total = rgb.shape[0] * rgb.shape[1]
    colours = np.zeros((n, 3), np.float32)
    known = np.zeros(n, bool)
    if n == 0:
        return colours, known
    flat = rgb.reshape(-1, 3)
    # Positions of the ring pixels, so neighbours inside the ring can be looked up.
    slot = np.full(total, -1, np.int64)
    slot[ring_idx] = np.arange(n)
    fg = sure_fg.ravel()
    col = ring_idx % width
    parts = []  # per neighbour: (from_fg, its colour or 0, ring slot or 0, in the ring)
    for offset, valid in ((-1, col > 0), (1, col < width - 1), (-width, ring_idx >= width),
                          (width, ring_idx < total - width)):
        nb = np.where(valid, ring_idx + offset, ring_idx)
        from_fg = valid & fg[nb]
        fg_colour = np.where(from_fg[:, None], flat[nb], 0).astype(np.float32)
        inner = slot[nb]
        in_ring = valid & (inner >= 0) & ~from_fg
        parts.append((from_fg, fg_colour, np.where(in_ring, inner, 0), in_ring))
    for _ in range(steps):
        pending = np.flatnonzero(~known)
        if not len(pending):
            break
        acc = np.zeros((len(pending), 3), np.float32)
        count = np.zeros(len(pending), np.float32)
        for from_fg, fg_colour, inner, in_ring in parts:
            acc += fg_colour[pending]
            count += from_fg[pending]
            slots = inner[pending]
            from_ring = in_ring[pending] & known[slots]
            acc += np.where(from_ring[:, None], colours[slots], 0)
            count += from_ring
        reached = count > 0
        colours[pending[reached]] = acc[reached] / count[reached, None]
        known[pending[reached]] = True
    return colours, known
    flat = rgb.reshape(-1, 3)
    # Positions of the ring pixels, so neighbours inside the ring can be looked up.
    slot = np.full(total, -1, np.int64)
    slot[ring_idx] = np.arange(n)
    fg = sure_fg.ravel()
    col = ring_idx % width
    neighbours = []
    for offset, valid in ((-1, col > 0), (1, col < width - 1), (-width, ring_idx >= width),
                          (width, ring_idx < total - width)):
        nb = np.where(valid, ring_idx + offset, ring_idx)
        neighbours.append((nb, valid))
    for _ in range(steps):
        pending = ~known
        if not pending.any():
            break
        acc = np.zeros((n, 3), np.float32)
        count = np.zeros(n, np.float32)
        for nb, valid in neighbours:
            from_fg = valid & fg[nb]
            acc[from_fg] += flat[nb[from_fg]]
            count[from_fg] += 1
            inner = slot[nb]
            from_ring = valid & (inner >= 0) & ~from_fg
            from_ring[from_ring] = known[inner[from_ring]]
            acc[from_ring] += colours[inner[from_ring]]
            count[from_ring] += 1
        reached = pending & (count > 0)
        colours[reached] = acc[reached] / count[reached, None]
        known |= reached
    return colours, known
