"""Key colours: the background recraft-build asks for so that it can key it out.

recraft-build makes the pictures it cuts out, so it can ask the generator for a
background colour the subject will not use (``controls.background_color``) and then
remove exactly that colour (:mod:`recraft_build.steps.keying`). This module holds the
rules both sides share, in plain Python (no numpy: the spec loader and the
placeholder provider import it):

* :data:`SHADOW_FLOOR` and :func:`key_distance`: what counts as "the key". A shadow
  cast on the key darkens it, so the key is not one colour but the segment from
  ``SHADOW_FLOOR * key`` to ``key`` (a shadow up to 55 % dark). A subject colour near
  that segment would be taken for background or shadow: the picker keeps away
  from them, the placeholder never draws them, the keyer removes them.
* :func:`pick_key`: ``key: auto``: the first of :data:`KEY_CANDIDATES` (magenta,
  green, blue, cyan, ...) far from every colour the request names, in
  ``controls.colors`` or as a colour word in the prompt ("purple", "grass" ...).
* :func:`resolve_steps`: what the spec loader calls for each asset: it replaces
  ``key: auto`` by the picked colour in the asset's ``remove_background`` steps and
  returns the request's ``controls`` with that ``background_color``; it also gives
  ``vectorize`` steps that say ``palette: auto`` the asset's ``controls.colors``.

Opt-in by design: an asset whose steps say neither ``key: auto`` nor ``palette:
auto`` keeps its request and steps, and so its cache keys, exactly as before.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from typing import Any, Iterable, Mapping, Sequence

from recraft_build.domain import StepSpec, Where

__all__ = [
    "AutoKeyError",
    "KEY_CANDIDATES",
    "SAFE_DISTANCE",
    "SHADOW_FLOOR",
    "hex_rgb",
    "is_key_like",
    "key_distance",
    "pick_key",
    "prompt_colours",
    "resolve_steps",
    "rgb_hex",
]

RGB = tuple[int, int, int]

#: Darkest shade of the key still read as the key under a shadow (fraction of the key).
SHADOW_FLOOR = 0.45

#: Keys ``auto`` picks from, in order of preference. Saturated colours that flat and
#: shaded art seldom uses; magenta first, as in the sprite sheets of old games.
KEY_CANDIDATES: tuple[str, ...] = ("#ff00ff", "#00ff00", "#0000ff", "#00ffff", "#ff8000", "#ffff00")

#: A candidate at least this far (RGB distance) from every named colour is taken
#: at once; otherwise the candidate farthest from them is.
SAFE_DISTANCE = 90.0

# Colour words and things whose colour a prompt implies. Only what moves the choice
# matters: words near one of the candidates above (purple, pink, green, blue...).
_WORDS: Mapping[str, str] = {
    # plain colour names
    "red": "#e03030", "crimson": "#c0143c", "scarlet": "#ff2400", "maroon": "#800000",
    "ruby": "#e0115f", "orange": "#ff8c1a", "amber": "#ffbf00", "yellow": "#ffd700",
    "gold": "#ffc000", "golden": "#ffc000", "lime": "#32cd32", "green": "#2ea043",
    "emerald": "#50c878", "olive": "#808000", "mint": "#98ff98", "jade": "#00a86b",
    "teal": "#008080", "turquoise": "#40e0d0", "cyan": "#00ffff", "aqua": "#00ffff",
    "blue": "#1e6fd9", "navy": "#000080", "azure": "#007fff", "cobalt": "#0047ab",
    "sapphire": "#0f52ba", "indigo": "#4b0082", "violet": "#8f00ff", "purple": "#8a2be2",
    "lavender": "#b57edc", "lilac": "#c8a2c8", "magenta": "#ff00ff", "fuchsia": "#ff00ff",
    "pink": "#ff69b4", "rose": "#ff3d8b", "plum": "#8e4585", "mauve": "#e0b0ff",
    "neon": "#39ff14", "chartreuse": "#7fff00",
    # things that are usually one of those colours
    "grass": "#4caf50", "leaf": "#3d9a40", "leaves": "#3d9a40", "tree": "#2e7d32",
    "forest": "#2e7d32", "frog": "#4caf50", "slime": "#6fdc3c", "cactus": "#3d9a40",
    "clover": "#3d9a40", "moss": "#5a7d2a", "jungle": "#2e7d32", "dragon": "#2e9d4a",
    "grape": "#6f2da8", "grapes": "#6f2da8", "eggplant": "#614051", "amethyst": "#9966cc",
    "orchid": "#da70d6", "flamingo": "#fc8eac", "unicorn": "#e58ee5", "potion": "#a020f0",
    "magic": "#9b30ff", "crystal": "#b28dff", "gem": "#b0308f", "berry": "#a0205f",
    "sky": "#87ceeb", "ocean": "#1e6fd9", "sea": "#1e6fd9", "water": "#3f8fe0",
    "ice": "#a5e3ff",
}
_WORD = re.compile(r"[a-z]+")


def hex_rgb(value: str) -> RGB:
    """``"#rrggbb"`` (any case) -> ``(r, g, b)``; ValueError for anything else."""
    text = value.strip().lower()
    if not re.fullmatch(r"#[0-9a-f]{6}", text):
        raise ValueError(f"not a #rrggbb colour: {value!r}")
    return (int(text[1:3], 16), int(text[3:5], 16), int(text[5:7], 16))


def rgb_hex(rgb: Sequence[float]) -> str:
    """``(r, g, b)`` -> ``"#rrggbb"`` (rounded, clipped to 0..255)."""
    return "#" + "".join(f"{min(255, max(0, round(c))):02x}" for c in rgb)


def key_distance(colour: Sequence[float], key: Sequence[float]) -> float:
    """RGB distance from ``colour`` to the key and its shadows (see the module docstring).

    0 for the key itself and for the key darkened to any shade down to
    :data:`SHADOW_FLOOR`; large for colours the keyer will keep.
    """
    kk = sum(k * k for k in key)
    if kk == 0:
        return math.dist(colour, key)
    s = sum(c * k for c, k in zip(colour, key)) / kk
    s = min(1.0, max(SHADOW_FLOOR, s))
    return math.dist(colour, [s * k for k in key])


def is_key_like(colour: Sequence[float]) -> bool:
    """True for a strongly saturated colour (every key candidate is): a background of
    such a colour is treated as a key (the placeholder keeps its objects clear of it)."""
    return max(colour) - min(colour) >= 160


def prompt_colours(prompt: str) -> list[RGB]:
    """The colours a prompt names ("a purple potion on grass" -> purple, potion, grass)."""
    return [hex_rgb(_WORDS[w]) for w in _WORD.findall(prompt.lower()) if w in _WORDS]


def pick_key(prompt: str, colors: Iterable[str] = ()) -> str:
    """The key colour for a request: see the module docstring. Deterministic."""
    avoid = [hex_rgb(c) for c in colors] + prompt_colours(prompt)
    best, best_distance = KEY_CANDIDATES[0], -1.0
    for candidate in KEY_CANDIDATES:
        key = hex_rgb(candidate)
        nearest = min((key_distance(c, key) for c in avoid), default=math.inf)
        if nearest >= SAFE_DISTANCE:
            return candidate
        if nearest > best_distance:
            best, best_distance = candidate, nearest
    return best


@dataclass
class AutoKeyError(Exception):
    """``key: auto`` cannot apply to this asset; the loader reports it at ``where``."""

    message: str
    hint: str
    where: Where | None


def _chain_steps(chains: Sequence[Sequence[StepSpec]]) -> Iterable[StepSpec]:
    for chain in chains:
        yield from chain


def resolve_steps(
    prompt: str,
    controls: Mapping[str, Any] | None,
    chains: Sequence[tuple[StepSpec, ...]],
) -> tuple[Mapping[str, Any] | None, list[tuple[StepSpec, ...]]]:
    """Resolve ``key: auto`` and ``palette: auto`` for one asset.

    ``chains`` are the asset's own steps followed by each output's steps; ``controls``
    the request's normalised controls. Returns ``(controls, chains)``, the very
    objects given when no step says ``auto`` (so such an asset keeps its request and
    keys byte for byte). With ``key: auto`` somewhere, every such step gets the colour
    :func:`pick_key` chooses and ``controls.background_color`` is set to it;
    ``palette: auto`` becomes the asset's ``controls.colors``.

    Raises :class:`AutoKeyError` when the asset also asks for its own
    ``controls.background_color`` (two wishes for one background), or for
    ``palette: auto`` without ``controls.colors``.
    """
    steps = list(_chain_steps(chains))
    auto = [st for st in steps if st.name == "remove_background" and st.params.get("key") == "auto"]
    palettes = [st for st in steps if st.name == "vectorize" and st.params.get("palette") == "auto"]
    if not auto and not palettes:
        return controls, list(chains)
    colors = list((controls or {}).get("colors") or ())
    if palettes and not colors:
        raise AutoKeyError(
            "palette: auto takes the asset's controls.colors, but the asset has none",
            "add controls: {colors: [...]}, or list the colours: palette: [\"#2b2d42\"]",
            palettes[0].where,
        )
    key = None
    if auto:
        wanted = (controls or {}).get("background_color")
        if wanted is not None:
            raise AutoKeyError(
                f"key: auto chooses the background colour itself, but the asset also asks "
                f"for controls.background_color {wanted}",
                f"remove controls.background_color (from the asset and from defaults), or write "
                f"key: \"{wanted}\" to key out the colour you asked for",
                auto[0].where,
            )
        key = pick_key(prompt, colors)
        controls = {**(controls or {}), "background_color": key}

    def fix(step: StepSpec) -> StepSpec:
        if key is not None and step.name == "remove_background" and step.params.get("key") == "auto":
            return replace(step, params={**step.params, "key": key})
        if step.name == "vectorize" and step.params.get("palette") == "auto":
            return replace(step, params={**step.params, "palette": list(colors)})
        return step

    return controls, [tuple(fix(st) for st in chain) for chain in chains]
