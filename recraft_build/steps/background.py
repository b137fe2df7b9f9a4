"""Local background removal: model the background from the border, flood it away.

This is the default method (``method: flood``). ``remove_background`` also takes
``key`` (cut out a key colour the picture was drawn on, :mod:`.keying`) and
``method: learned`` (U²-Net, :mod:`.matting`); :func:`remove_background` picks.

How it works (numpy only, about 120 ms of CPU for a 1024 x 1024 picture):

1. **Model the background.** Pixels in a thin band along the picture's border are
   fitted, per channel, with a quadratic surface in x and y (``1, x, y, xy, x², y²``),
   robustly: start from the commonest border colour, refit on the pixels that agree,
   tighten. This covers a plain colour, an off-white tint, linear and radial light
   gradients, and ignores the part of the border an object touches. When less than a
   quarter of the border fits, there is no plain background and the step fails
   (use ``engine: provider`` for photos and busy pictures).
2. **Flood from the border.** After a light 3x3 blur (JPEG and WebP noise), a pixel
   is background-like when no channel is further than ``tolerance`` from the
   modelled background. The background is what is background-like *and connected
   to the border* (4-connected; runs of pixels joined into components, so the cost
   hardly depends on the shape), so a white highlight inside the object stays. The
   model is then refitted on the whole flooded background and the flood repeated,
   which corrects the extrapolation of a gradient towards the middle.
3. **Soft edge.** On a two-pixel ring of the object's edge, alpha is measured, not
   guessed: an edge pixel is ``a * F + (1 - a) * B``, so its distance from the
   background divided by the nearby object colour's distance is ``a``. Edge colours
   are un-mixed from the background (no white fringe on a dark shape). ``feather``
   then blurs the edge by that many pixels (premultiplied, so no dark halo).

Parameters: ``tolerance`` 0..255 (default: automatic from the noise measured on the
border, at least 12), ``feather`` 0..20 pixels (default 0: only the measured ramp).
A picture whose border is already mostly transparent is returned unchanged.
Limits: a background region enclosed by the object (the inside of a ring) is kept,
as the connected-region rule requires; an object the colour of the background at
its edge loses that part of its edge; a drop shadow is kept, opaque. A key colour
(``key: auto``) solves all three for pictures still to be generated.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
from PIL import Image, ImageFilter

from recraft_build.errors import StepError

__all__ = ["fit_background", "flood_from_border", "opaque_or_clear", "remove_background"]

#: Smallest share of the border that must fit the background model.
MIN_BACKGROUND_SHARE = 0.25
_RING = 2  # width of the soft-edge ring, px
_LOCAL = 3  # radius of the "nearby object colour" window, px
_MAX_SAMPLES = 40_000


#: Values of the ``method`` parameter.
METHODS = ("flood", "key", "learned")


def remove_background(img: Image.Image, params: Mapping[str, Any] | None = None) -> Image.Image:
    """Return ``img`` as ``RGBA`` with its background made transparent.

    ``params`` may hold ``tolerance`` (0..255) and ``feather`` (0..20), and choose the
    method: ``key`` (a ``#rrggbb`` colour: cut out that key colour, see
    :mod:`~recraft_build.steps.keying`, with ``shadow: keep | drop``), ``method:
    learned`` (U²-Net, :mod:`~recraft_build.steps.matting`), else the border flood
    described above. Raises :class:`StepError` for bad parameters and when the
    picture does not fit the method (no plain border, not on the key colour).
    """
    params = params or {}
    method = _method(params)
    if method == "key":
        from recraft_build.steps.keying import key_out

        return key_out(img, params)
    if method == "learned":
        from recraft_build.steps.matting import matte

        return matte(img, params)
    tolerance = _number(params, "tolerance", 0, 255)
    feather = _number(params, "feather", 0, 20) or 0.0
    rgba = img.convert("RGBA")
    src = np.asarray(rgba)
    height, width = src.shape[:2]
    band = max(2, round(min(height, width) * 0.01))
    in_alpha = src[..., 3].astype(np.float32) / 255
    if _border(in_alpha, band).mean() < 0.5:
        return rgba.copy()  # already cut out: nothing to remove
    # uint8: every use subtracts a float32 model first, so the values are those of a
    # float32 copy, without making one.
    rgb = src[..., :3]
    smooth = np.asarray(rgba.convert("RGB").filter(ImageFilter.BoxBlur(1)), dtype=np.float32)

    border_mask = np.zeros((height, width), bool)
    border_mask[:band], border_mask[-band:], border_mask[:, :band], border_mask[:, -band:] = (True,) * 4
    coeffs, share, noise = fit_background(smooth, border_mask)
    if share < MIN_BACKGROUND_SHARE:
        raise StepError(
            f"no plain background found: only {share:.0%} of the picture's border is one "
            "colour or a smooth gradient; use engine: provider for this picture"
        )
    tol = float(tolerance) if tolerance is not None else float(np.clip(3 * noise + 6, 12, 60))

    model = _evaluate(coeffs, height, width)
    background = np.ascontiguousarray(flood_from_border(_distance(smooth, model), tol, border_mask))
    if background.all():
        raise StepError(
            f"the whole picture matched the background (tolerance {tol:g}); no object "
            "was found: lower the tolerance, or drop the step for this picture"
        )
    # Refit on the whole flooded background: a gradient's middle is no longer guessed.
    if background.sum() >= 64:
        coeffs, _share, _noise = fit_background(smooth, background, robust=False)
        model = _evaluate(coeffs, height, width)
        background = np.ascontiguousarray(flood_from_border(_distance(smooth, model), tol, border_mask))

    index, ring_alpha, ring_colour = _soft_edge(rgb, model, background, noise)
    if feather == 0 and in_alpha.min() == 1:
        # The common case, straight to bytes: plain pixels copied, the ring rounded.
        out = opaque_or_clear(src, background)
        flat = out.reshape(-1, 4)
        ring_colour = np.where((ring_alpha > 0)[:, None], ring_colour, 0)
        flat[index, :3] = np.clip(np.rint(ring_colour), 0, 255).astype(np.uint8)
        flat[index, 3] = np.clip(np.rint(ring_alpha * 255), 0, 255).astype(np.uint8)
        return Image.fromarray(out, "RGBA")
    alpha = (~background).astype(np.float32)
    colour = rgb.astype(np.float32)
    alpha.ravel()[index] = ring_alpha
    colour.reshape(-1, 3)[index] = ring_colour
    if feather > 0:
        alpha, colour = _feather(alpha, colour, feather)
    alpha = alpha * in_alpha
    colour = np.where(alpha[..., None] > 0, colour, 0)
    out = np.dstack([colour, alpha * 255])
    return Image.fromarray(np.clip(np.rint(out), 0, 255).astype(np.uint8), "RGBA")


def _method(params: Mapping[str, Any]) -> str:
    """The removal method the parameters ask for; StepError for a contradiction."""
    key = params.get("key")
    method = params.get("method") or ("key" if key is not None else "flood")
    if method not in METHODS:
        raise StepError(f"method must be one of {', '.join(METHODS)}, not {method!r}")
    if key == "auto":
        # The spec loader replaces auto by the colour it asked the generator for.
        raise StepError("key: auto was not resolved to a colour (it is only resolved for "
                        "assets loaded from a spec); give the key as #rrggbb")
    if method == "key" and key is None:
        raise StepError("method: key needs key: auto or a key colour #rrggbb")
    if method != "key" and key is not None:
        raise StepError(f"key applies to method: key, not method: {method}; remove one of them")
    if method != "key" and params.get("shadow") is not None:
        raise StepError("shadow applies with a key colour only (the other methods cannot "
                        "tell a shadow from the subject); add key: auto, or remove shadow")
    for name in ("tolerance", "feather"):
        _number(params, name, 0, 255 if name == "tolerance" else 20)
    return method


def _number(params: Mapping[str, Any], key: str, low: float, high: float) -> float | None:
    value = params.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise StepError(f"{key} must be a number from {low:g} to {high:g}, not {value!r}")
    return float(value)


def _border(values: np.ndarray, band: int) -> np.ndarray:
    return np.concatenate([
        values[:band].ravel(), values[-band:].ravel(),
        values[band:-band, :band].ravel(), values[band:-band, -band:].ravel(),
    ])


# --------------------------------------------------------------------------- model


def _terms(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Quadratic surface terms for coordinates scaled to [-1, 1]."""
    return np.stack([np.ones_like(x), x, y, x * y, x * x, y * y], axis=-1)


def _coords(index: np.ndarray, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.divmod(index, width)
    return (xs / max(width - 1, 1)) * 2 - 1, (ys / max(height - 1, 1)) * 2 - 1


def _evaluate(coeffs: np.ndarray, height: int, width: int) -> np.ndarray:
    """The modelled background for every pixel (H x W x 3), by broadcasting.

    The terms are added in a fixed order, in place: the same float32 values on every
    run (cached results depend on them).
    """
    x = (np.arange(width, dtype=np.float32) / max(width - 1, 1)) * 2 - 1
    y = (np.arange(height, dtype=np.float32) / max(height - 1, 1)) * 2 - 1
    c = coeffs.astype(np.float32)
    xx, yy = x[None, :, None], y[:, None, None]
    # (Each product is formed as written, left to right, then added in place: fresh
    # full-size temporaries cost more than the arithmetic.)
    out = np.add(c[0] + c[1] * xx, c[2] * yy)
    temp = np.multiply(c[3] * xx, yy)
    out += temp
    out += c[4] * xx * xx
    out += c[5] * yy * yy
    return out


def opaque_or_clear(rgba: np.ndarray, clear: np.ndarray) -> np.ndarray:
    """H x W x 4 uint8: ``rgba``'s colour made opaque, and all zeros where ``clear``.

    Whole pixels are handled as little-endian uint32 words (one pass, not four)."""
    height, width = clear.shape
    pixels = np.ascontiguousarray(rgba).view("<u4")[..., 0]
    out = np.where(clear, np.uint32(0), pixels | np.uint32(0xFF000000))
    return out.view(np.uint8).reshape(height, width, 4)


def _distance(img: np.ndarray, model: np.ndarray) -> np.ndarray:
    """Largest per-channel difference from the modelled background (H x W)."""
    diff = np.subtract(img, model)
    np.abs(diff, out=diff)
    out = diff[..., 0].copy()
    np.maximum(out, diff[..., 1], out=out)
    np.maximum(out, diff[..., 2], out=out)
    return out


def fit_background(
    img: np.ndarray, where: np.ndarray, *, robust: bool = True, max_samples: int = _MAX_SAMPLES
) -> tuple[np.ndarray, float, float]:
    """Fit the quadratic background model to ``img`` at the pixels ``where`` is True.

    Returns ``(coeffs, share, noise)``: 6 x 3 coefficients, the share of the sampled
    pixels the model explains, and a noise level (95th percentile of their residual).
    ``robust`` starts from the commonest colour and drops pixels that disagree
    (an object touching the border); otherwise every sampled pixel is trusted.
    At most ``max_samples`` pixels are used, evenly spaced.
    """
    height, width = img.shape[:2]
    index = np.flatnonzero(where.ravel())
    if index.size > max_samples:
        # Even, deterministic subsampling keeps the fit cheap on big pictures.
        index = index[:: -(-index.size // max_samples)]
    colours = img.reshape(-1, 3)[index].astype(np.float64)
    terms = _terms(*_coords(index, height, width))
    if robust:
        bins = (colours // 16).astype(np.int64)
        keys = bins[:, 0] * 256 + bins[:, 1] * 16 + bins[:, 2]
        common = np.bincount(keys).argmax()
        inliers = np.abs(colours - colours[keys == common].mean(axis=0)).max(axis=1) <= 24
        thresholds: tuple[float | None, ...] = (32.0, 20.0, None)
    else:
        inliers = np.ones(len(index), bool)
        thresholds = ()
    coeffs = _lstsq(terms, colours, inliers)
    residual = np.abs(colours - terms @ coeffs).max(axis=1)
    for limit in thresholds:
        if limit is None:
            # Final cut from the noise actually measured on the agreeing pixels.
            limit = float(np.clip(np.percentile(residual[inliers], 95) * 2.5, 6, 24))
        inliers = residual <= limit
        if inliers.sum() < 6:
            break
        coeffs = _lstsq(terms, colours, inliers)
        residual = np.abs(colours - terms @ coeffs).max(axis=1)
    share = float(inliers.mean())
    noise = float(np.percentile(residual[inliers], 95)) if inliers.any() else 255.0
    return coeffs, share, noise


def _lstsq(terms: np.ndarray, colours: np.ndarray, rows: np.ndarray) -> np.ndarray:
    a, b = terms[rows], colours[rows]
    if len(a) < 60:
        # Too few points for a surface: a plain colour is the honest model.
        coeffs = np.zeros((6, 3))
        coeffs[0] = b.mean(axis=0) if len(b) else 255.0
        return coeffs
    coeffs, *_ = np.linalg.lstsq(a, b, rcond=None)
    return coeffs


# --------------------------------------------------------------------------- flood


def _row_runs(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """Label horizontal runs of True: each run gets its own number (0 = False)."""
    starts = mask.copy()
    starts[:, 1:] &= ~mask[:, :-1]
    labels = np.cumsum(starts.ravel(), dtype=np.int32).reshape(mask.shape)
    labels *= mask
    return labels, int(labels.max())


def _components(u: np.ndarray, v: np.ndarray, n: int) -> np.ndarray:
    """Connected components of a graph on nodes ``0..n-1`` with edges ``u[i] - v[i]``:
    the smallest node of each node's component (hooking plus pointer jumping, so the
    number of rounds grows with the log of the graph's size, not its diameter)."""
    parent = np.arange(n, dtype=np.int64)
    while len(u):
        pu, pv = parent[u], parent[v]
        differ = pu != pv
        if not differ.any():
            break
        u, v, pu, pv = u[differ], v[differ], pu[differ], pv[differ]
        np.minimum.at(parent, np.maximum(pu, pv), np.minimum(pu, pv))
        while True:
            jumped = parent[parent]
            if np.array_equal(jumped, parent):
                break
            parent = jumped
    return parent


def flood_from_border(distance: np.ndarray, tolerance: float, seeds_region: np.ndarray) -> np.ndarray:
    """Pixels within ``tolerance`` that are 4-connected to a within-tolerance seed pixel.

    Horizontal runs of within-tolerance pixels are the nodes of a graph, joined where
    runs of neighbouring rows overlap (one edge per overlap, found where the pair of
    run labels changes along the row). Components of that graph that hold a seed are
    the result. The work is a few passes over the picture plus work on the runs, so
    the shape's complexity (how often the background turns) costs little.
    """
    mask = distance <= tolerance
    labels, n = _row_runs(mask)
    seeded = np.zeros(n + 1, bool)
    seeded[labels[mask & seeds_region]] = True
    seeded[0] = False
    if not seeded.any():
        return np.zeros(mask.shape, bool)
    upper, lower = labels[:-1], labels[1:]
    both = (upper > 0) & (lower > 0)
    first = both.copy()
    first[:, 1:] &= ~(both[:, :-1] & (upper[:, 1:] == upper[:, :-1]) & (lower[:, 1:] == lower[:, :-1]))
    u, v = upper[first].astype(np.int64), lower[first].astype(np.int64)
    root = _components(u, v, n + 1)
    hit = np.zeros(n + 1, bool)
    hit[root[seeded]] = True
    hit = hit[root]
    hit[0] = False
    return hit[labels]


# --------------------------------------------------------------------------- edge


def _windows(values: np.ndarray, radius: int, axis: int):
    """The 2r+1 shifted views of ``values`` along ``axis`` (edges repeat)."""
    pad = [(radius, radius) if a == axis else (0, 0) for a in (0, 1)]
    padded = np.pad(values, pad, mode="edge")
    size = values.shape[axis]
    for k in range(2 * radius + 1):
        yield padded[k:k + size] if axis == 0 else padded[:, k:k + size]


def _shift_max(values: np.ndarray, radius: int) -> np.ndarray:
    """Max filter over a (2r+1)^2 window (separable, edges repeat).

    Per axis, windows double (1, 2, 4 ... pixels: each the max of two shifted
    halves), and the window of 2r+1 is the max of two overlapping power-of-two
    windows: about log2(2r+1) passes instead of 2r+1.
    """
    out = values
    for axis in (0, 1):
        out = _max_1d(out, radius, axis)
    return out


def _max_1d(values: np.ndarray, radius: int, axis: int) -> np.ndarray:
    if radius <= 0:
        return values
    size = 2 * radius + 1
    pad = [(radius, radius) if a == axis else (0, 0) for a in range(values.ndim)]
    acc = np.pad(values, pad, mode="edge")
    n = values.shape[axis]
    span = 1
    while span * 2 <= size:
        length = acc.shape[axis] - span
        head = acc[:length] if axis == 0 else acc[:, :length]
        tail = acc[span:] if axis == 0 else acc[:, span:]
        acc = np.maximum(head, tail)
        span *= 2
    rest = size - span
    head = acc[:n] if axis == 0 else acc[:, :n]
    tail = acc[rest:rest + n] if axis == 0 else acc[:, rest:rest + n]
    return np.maximum(head, tail)


def _soft_edge(
    rgb: np.ndarray, model: np.ndarray, background: np.ndarray, noise: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The edge ring's pixels (flat indices), their alpha (0..1) and un-mixed colour.

    Every other pixel is plain: alpha 0 on the background, 1 on the object, with its
    own colour. Only the ring is computed, pixel by pixel, with the same float32
    arithmetic whatever the picture's size (cached results depend on the values).
    """
    obj = ~background
    ring = obj & _shift_max(background.view(np.uint8), _RING).view(bool)
    index = np.flatnonzero(ring)
    if not len(index):
        return index, np.zeros(0, np.float32), np.zeros((0, 3), np.float32)
    dist = _distance(rgb, model)
    # The object's own colour nearby (the inside of the edge), measured as distance.
    inner = obj & ~ring
    nearby = _shift_max(np.where(inner, dist, 0).astype(np.float32), _RING + _LOCAL).ravel()[index]
    if (nearby <= 0).any():
        around = _shift_max(np.where(obj, dist, 0).astype(np.float32), _LOCAL).ravel()[index]
        nearby = np.where(nearby > 0, nearby, around)
    d = dist.ravel()[index]
    floor = min(noise, 8.0)
    measured = np.clip((d - floor) / np.maximum(nearby - floor, 1e-3), 0, 1)
    # A ring pixel with no clearly different object colour nearby stays opaque.
    alpha = np.where(nearby > floor + 8, measured, 1.0).astype(np.float32)
    # Un-mix: F = B + (C - B) / a.
    c = rgb.reshape(-1, 3)[index].astype(np.float32)
    b = model.reshape(-1, 3)[index]
    unmixed = b + (c - b) / np.maximum(alpha, 1e-3)[:, None]
    colour = np.where((alpha > 0)[:, None], np.clip(unmixed, 0, 255), c)
    return index, alpha, colour


def _gaussian(values: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of a 2-D float array (edges repeat)."""
    reach = max(1, int(np.ceil(3 * sigma)))
    taps = np.exp(-0.5 * (np.arange(-reach, reach + 1) / sigma) ** 2)
    taps /= taps.sum()
    out = values.astype(np.float32)
    for axis in (0, 1):
        acc = np.zeros_like(out)
        for weight, view in zip(taps, _windows(out, reach, axis)):
            acc += np.float32(weight) * view
        out = acc
    return out


def _feather(alpha: np.ndarray, colour: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """Blur the edge by ``radius`` px, premultiplied so clear pixels add no dark halo."""
    sigma = radius / 2
    soft = _gaussian(alpha, sigma)
    premultiplied = np.dstack([_gaussian(colour[..., c] * alpha, sigma) for c in range(3)])
    spread = premultiplied / np.maximum(soft, 1e-6)[..., None]
    colour = np.where((alpha >= 0.999)[..., None], colour, spread)
    return np.clip(soft, 0, 1), colour
