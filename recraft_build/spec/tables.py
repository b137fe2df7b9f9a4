"""What each model accepts, and what things cost.

Recraft's models, and Black Forest Labs' FLUX models that run through Replicate
(FLUX 1.1 Pro and Ultra for text to image, FLUX Kontext Pro and Max as an
``image_to_image`` engine). Facts come from ``recraft-api.md`` (beside DESIGN.md);
each table cites its section; the FLUX rows cite Replicate's model schemas.
Facts that file tags [U] (uncertain) are marked ``# [U]`` here too: the loader still
enforces them, because a wrong request costs a round trip and maybe money, but they
are the first thing to revisit when the API says otherwise.

The tables are immutable module constants (data, not state). Nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

from recraft_build.domain import FILE_MODEL, VECTOR_STYLES, GenerationRequest

__all__ = [
    "ALL_SUBSTYLES",
    "ASPECT_RATIOS_V4",
    "IMAGE_OPERATION_CREDITS",
    "MASKED_OPERATIONS",
    "PROMPTED_OPERATIONS",
    "BASE_STYLES",
    "CUSTOM_STYLE_BASES",
    "DEFAULT_MODEL",
    "MODELS",
    "ModelInfo",
    "OPERATION_CREDITS",
    "SIZES_V3",
    "SIZES_V4",
    "SIZES_V4_PRO",
    "V3_ASPECT_TO_SIZE",
    "credits_to_usd",
    "generation_credits",
    "model_info",
    "operation_credits",
    "size_for_aspect_ratio",
]

#: The model used when neither the asset nor ``defaults`` names one. The server's own
#: default changed between API eras (recraft-api.md, header), so we always send one;
#: V3 is the era the seeds and the style tables describe.
DEFAULT_MODEL = "recraftv3"

# --- 1.4 Styles and substyles (V3 era; enum values) -------------------------------

_V3_STYLES: Mapping[str, tuple[str, ...]] = {
    "any": (),
    "realistic_image": (
        "b_and_w", "enterprise", "evening_light", "faded_nostalgia", "forest_life",
        "hard_flash", "hdr", "motion_blur", "mystic_naturalism", "natural_light",
        "natural_tones", "organic_calm", "real_life_glow", "retro_realism",
        "retro_snapshot", "studio_portrait", "urban_drama", "village_realism", "warm_folk",
    ),
    "digital_illustration": (
        "2d_art_poster", "2d_art_poster_2", "antiquarian", "bold_fantasy", "child_book",
        "cover", "crosshatch", "digital_engraving", "engraving_color", "expressionism",
        "freehand_details", "grain", "grain_20", "graphic_intensity", "hand_drawn",
        "hand_drawn_outline", "handmade_3d", "hard_comics", "infantile_sketch",
        "long_shadow", "modern_folk", "multicolor", "neon_calm", "noir",
        "nostalgic_pastel", "outline_details", "pastel_gradient", "pastel_sketch",
        "pixel_art", "plastic", "pop_art", "pop_renaissance", "seamless", "street_art",
        "tablet_sketch", "urban_glow", "urban_sketching", "young_adult_book",
        "young_adult_book_2",
    ),
    "vector_illustration": (
        "bold_stroke", "chemistry", "colored_stencil", "cosmics", "cutout", "depressive",
        "editorial", "emotional_flat", "engraving", "line_art", "line_circuit", "linocut",
        "marker_outline", "mosaic", "naivector", "roundish_flat", "seamless",
        "segmented_colors", "sharp_contrast", "thin", "vector_photo", "vivid_shapes",
    ),
    "logo_raster": (
        "emblem_graffiti", "emblem_pop_art", "emblem_punk", "emblem_stamp", "emblem_vintage",
    ),
}

_V2_STYLES: Mapping[str, tuple[str, ...]] = {
    "realistic_image": (
        "b_and_w", "enterprise", "hard_flash", "hdr", "motion_blur", "natural_light",
        "studio_portrait",
    ),
    "digital_illustration": (
        "2d_art_poster", "2d_art_poster_2", "3d", "80s", "engraving_color", "glow", "grain",
        "hand_drawn", "hand_drawn_outline", "handmade_3d", "infantile_sketch", "kawaii",
        "pixel_art", "plastic", "psychedelic", "seamless", "voxel", "watercolor",
    ),
    "vector_illustration": (
        "cartoon", "doodle_line_art", "engraving", "flat_2", "kawaii", "line_art",
        "line_circuit", "linocut", "seamless",
    ),
    "icon": (
        "broken_line", "colored_outline", "colored_shapes", "colored_shapes_gradient",
        "doodle_fill", "doodle_offset_fill", "offset_fill", "outline", "outline_gradient",
        "pictogram",
    ),
}

#: Every built-in style name (any model).
BASE_STYLES: tuple[str, ...] = tuple(sorted(set(_V3_STYLES) | set(_V2_STYLES)))

#: Every substyle name (any model, any style): the schema's completion list.
ALL_SUBSTYLES: tuple[str, ...] = tuple(
    sorted({s for table in (_V3_STYLES, _V2_STYLES) for subs in table.values() for s in subs})
)

#: Base styles a custom style may be created from (1.4, "Create style", V3 era).
CUSTOM_STYLE_BASES: tuple[str, ...] = (
    "realistic_image", "digital_illustration", "vector_illustration", "icon",
)

# --- 1.6 Sizes and aspect ratios ---------------------------------------------------

#: V2/V3 sizes and their ratios, in the order 1.6 lists them. 1707x1024 is in the
#: enum with no ratio listed.
V3_ASPECT_TO_SIZE: Mapping[str, str] = MappingProxyType({
    "1:1": "1024x1024", "2:1": "2048x1024", "1:2": "1024x2048", "3:2": "1536x1024",
    "2:3": "1024x1536", "4:3": "1365x1024", "3:4": "1024x1365", "5:4": "1280x1024",
    "4:5": "1024x1280", "6:10": "1024x1707", "14:10": "1434x1024", "10:14": "1024x1434",
    "16:9": "1820x1024", "9:16": "1024x1820",
})
SIZES_V3: tuple[str, ...] = tuple(V3_ASPECT_TO_SIZE.values()) + ("1707x1024",)

#: V4/V4.1 at 1K (1.6).
SIZES_V4: tuple[str, ...] = (
    "1024x1024", "1536x768", "768x1536", "1280x832", "832x1280", "1216x896", "896x1216",
    "1152x896", "896x1152", "832x1344", "1280x896", "896x1280", "1344x768", "768x1344",
)


def _double(size: str) -> str:
    w, _, h = size.partition("x")
    return f"{int(w) * 2}x{int(h) * 2}"


#: The Pro variants double each side (1.6).
SIZES_V4_PRO: tuple[str, ...] = tuple(_double(s) for s in SIZES_V4)

#: The aspect tokens the ``_vector`` models take (1.6, V4-era appendix). We use the
#: same tokens for every model that takes ``aspect_ratio``: for V2/V3 they are the
#: ratios of the sizes above (the provider may send the matching size), and for V4
#: raster models the docs give no separate list. # [U] for V4 raster.
ASPECT_RATIOS_V4: tuple[str, ...] = (
    "1:1", "2:1", "1:2", "3:2", "2:3", "4:3", "3:4", "5:4", "4:5", "6:10", "14:10",
    "10:14", "16:9", "9:16",
)

# --- 1.9 Pricing (API units; 1 USD = 1,000 units) ----------------------------------

#: Per-request prices of tool operations (1.9). ``create_style`` is style creation
#: (40 in the V3-era docs; a 2026 reading says 5, so trust the server's ``credits``).
OPERATION_CREDITS: Mapping[str, int] = MappingProxyType({
    "remove_background": 10,
    "vectorize": 10,
    "crisp_upscale": 4,
    "creative_upscale": 250,
    "create_style": 40,
    "image_to_image": 40,  # raster price; 80 for vector (1.9)
})

#: Price per picture (raster, vector) of the operations an asset made from another
#: picture runs on a Recraft model (1.9: imageToImage, inpaint, replaceBackground and
#: generateBackground cost 40 raster / 80 vector per image). variateImage: 40 per image
#: is a third-party figure, and the newest docs say "$0.04 per request" for 1-6
#: pictures; we count per picture (the higher figure, so --max-credits errs safe) and
#: the server's ``credits`` settle it. # [U] variate
IMAGE_OPERATION_CREDITS: Mapping[str, tuple[int, int]] = MappingProxyType({
    "image_to_image": (40, 80),
    "inpaint": (40, 80),
    "replace_background": (40, 80),
    "generate_background": (40, 80),
    "variate": (40, 40),  # [U]
})

# Which fields each operation takes on a Recraft V2/V3 model (1.2), besides the input
# picture and the model. An asset's own field outside its operation's set is an
# error; one inherited from ``defaults`` is left out (defaults describe text-to-image
# requests). ``seed`` (random_seed) for inpaint and the background operations, and
# V4 models taking no image operation, are inferred from the V3-era docs. # [U]
_STYLE_FIELDS = ("style", "substyle", "style_id")
_RECRAFT_OPERATIONS: Mapping[str, frozenset[str]] = MappingProxyType({
    "image_to_image": frozenset({"prompt", "strength", "n", "negative_prompt", "controls", "seed",
                                 "text_layout", *_STYLE_FIELDS}),
    "inpaint": frozenset({"prompt", "mask", "n", "negative_prompt", "seed", *_STYLE_FIELDS}),
    "replace_background": frozenset({"prompt", "n", "negative_prompt", "seed", *_STYLE_FIELDS}),
    "generate_background": frozenset({"prompt", "mask", "n", "negative_prompt", "seed", *_STYLE_FIELDS}),
    # variateImage takes no prompt and no style: only size, n and random_seed (1.2).
    "variate": frozenset({"n", "size", "aspect_ratio", "seed"}),
})
#: Operations that need a prompt, and those that need a mask (1.2).
PROMPTED_OPERATIONS = frozenset({"image_to_image", "inpaint", "replace_background", "generate_background"})
MASKED_OPERATIONS = frozenset({"inpaint", "generate_background"})


@dataclass(frozen=True)
class ModelInfo:
    """What one model id accepts and what an image costs.

    ``styles`` maps each style the model takes to its substyles (empty mapping: the
    model takes no ``style``). ``sizes`` / ``aspect_ratios`` are the values accepted
    for ``size`` / ``aspect_ratio`` (empty: not accepted). ``controls`` is the set of
    ``controls`` keys accepted. ``raster_credits`` / ``vector_credits`` are the price
    per image in API units for a raster / vector result (``vector_credits`` is also
    the price of a raster model asked for a vector style). ``vector`` is True for
    ``*_vector`` models, whose every picture is SVG.
    """

    name: str
    generation: str  # "v2", "v3", "v4", "v4_1"
    vector: bool
    sizes: tuple[str, ...]
    aspect_ratios: tuple[str, ...]
    styles: Mapping[str, tuple[str, ...]]
    prompt_max: int
    negative_prompt: bool
    text_layout: bool
    controls: frozenset[str]
    custom_styles: bool
    raster_credits: int
    vector_credits: int
    notes: tuple[str, ...] = field(default=())
    #: Whose model it is (``domain.model_maker``): ``recraft`` or ``bfl`` (FLUX).
    maker: str = "recraft"
    #: The image operations the model runs, each with the fields it takes (see
    #: ``_RECRAFT_OPERATIONS``); empty: the model only makes pictures from a prompt.
    image_operations: Mapping[str, frozenset[str]] = field(default_factory=lambda: MappingProxyType({}))
    #: ``image_to_image`` needs ``strength`` (Recraft's imageToImage requires it).
    needs_strength: bool = False


_ALL_CONTROLS = frozenset({"colors", "background_color", "artistic_level", "no_text"})
# 1.3: "The V4 era supports only colors and background_color". # [U]
_V4_CONTROLS = frozenset({"colors", "background_color"})


def _vector_styles(table: Mapping[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
    """The vector styles of a style table (``*_vector`` models take only those). # [U]"""
    return {k: v for k, v in table.items() if k in VECTOR_STYLES}


def _v23(name: str, gen: str, styles: Mapping[str, tuple[str, ...]], raster: int, vector: int,
         *, vector_model: bool = False) -> ModelInfo:
    return ModelInfo(
        name=name,
        generation=gen,
        vector=vector_model,
        # 1.6: `_vector` models take only aspect tokens. # [U] for recraftv2/3_vector
        sizes=() if vector_model else SIZES_V3,
        aspect_ratios=ASPECT_RATIOS_V4,
        styles=MappingProxyType(_vector_styles(styles) if vector_model else dict(styles)),
        prompt_max=1000,  # 1.3: 1000 for V2/V3
        negative_prompt=True,  # 1.3: V2/V3 only
        text_layout=(gen == "v3"),  # 1.3: V3 only
        controls=_ALL_CONTROLS,
        custom_styles=True,
        raster_credits=vector if vector_model else raster,
        vector_credits=vector,
        image_operations=_RECRAFT_OPERATIONS,
        needs_strength=True,
    )


def _v4(name: str, gen: str, *, vector: bool, pro: bool, raster_credits: int,
        vector_credits: int) -> ModelInfo:
    return ModelInfo(
        name=name,
        generation=gen,
        vector=vector,
        sizes=() if vector else (SIZES_V4_PRO if pro else SIZES_V4),
        aspect_ratios=ASPECT_RATIOS_V4,
        styles=MappingProxyType({}),  # 1.4: "Styles are not supported on V4 models"
        prompt_max=10000,  # 1.3: 10000 for V4/V4.1
        negative_prompt=False,  # 1.3: V2/V3 only
        text_layout=False,  # 1.3: V3 only
        controls=_V4_CONTROLS,
        custom_styles=False,  # [U] custom styles for V4 go through recraftv4_styles*
        raster_credits=vector_credits if vector else raster_credits,
        vector_credits=vector_credits,
    )


# --- FLUX through Replicate ---------------------------------------------------------
# Black Forest Labs' models on Replicate (the ElkAPI seed lists them beside Recraft).
# Inputs from Replicate's published schemas: flux-1.1-pro (replicate/comfyui-replicate,
# schemas/black-forest-labs_flux-1.1-pro.json): prompt, aspect_ratio (the nine below, or
# custom width/height we do not offer), seed, output_format, safety_tolerance,
# prompt_upsampling. Ultra and Kontext lists come from third-party client code. # [U]
# None takes a style, a negative prompt, controls or text_layout; each prediction
# makes one picture (n > 1 is n predictions). Prices per picture from third-party
# notes: 1.1 Pro $0.04, Ultra $0.06, Kontext Pro $0.04, Kontext Max $0.08; Replicate
# reports no cost, so these are what a build counts. # [U]
_FLUX_PRO_RATIOS = ("1:1", "16:9", "2:3", "3:2", "4:5", "5:4", "9:16", "3:4", "4:3")
_FLUX_ULTRA_RATIOS = ("21:9", "16:9", "3:2", "4:3", "5:4", "1:1", "4:5", "3:4", "2:3", "9:16",
                      "9:21")  # [U]
_FLUX_KONTEXT_RATIOS = ("1:1", "16:9", "9:16", "4:3", "3:4", "3:2", "2:3", "4:5", "5:4", "21:9",
                        "9:21", "2:1", "1:2")  # [U]; without one, Kontext keeps the input's
#: Kontext edits a picture from a prompt: our image_to_image, without strength. # [U]
_KONTEXT_OPERATIONS: Mapping[str, frozenset[str]] = MappingProxyType({
    "image_to_image": frozenset({"prompt", "n", "seed", "aspect_ratio"}),
})


def _flux(name: str, ratios: tuple[str, ...], credits: int,
          operations: Mapping[str, frozenset[str]] = MappingProxyType({})) -> ModelInfo:
    return ModelInfo(
        name=name,
        generation="flux",
        vector=False,
        sizes=(),
        aspect_ratios=ratios,
        styles=MappingProxyType({}),
        prompt_max=10000,  # no documented limit # [U]
        negative_prompt=False,
        text_layout=False,
        controls=frozenset(),
        custom_styles=False,
        raster_credits=credits,
        vector_credits=credits,
        maker="bfl",
        image_operations=operations,
    )


_FLUX_MODELS = (
    _flux("flux-1.1-pro", _FLUX_PRO_RATIOS, 40),
    _flux("flux-1.1-pro-ultra", _FLUX_ULTRA_RATIOS, 60),
    _flux("flux-kontext-pro", _FLUX_KONTEXT_RATIOS, 40, _KONTEXT_OPERATIONS),
    _flux("flux-kontext-max", _FLUX_KONTEXT_RATIOS, 80, _KONTEXT_OPERATIONS),
)

# 1.5 model ids; 1.9 prices. V3/V2 prices are [C]; V4.1 raster and Pro raster are [C];
# the other V4-era prices are [U] (third-party notes), and V4.1 Pro vector has no
# published figure at all: we assume the V4 Pro vector price (300). # [U]
MODELS: Mapping[str, ModelInfo] = MappingProxyType({
    m.name: m
    for m in (
        _v23("recraftv3", "v3", _V3_STYLES, 40, 80),
        _v23("recraftv2", "v2", _V2_STYLES, 22, 44),
        _v23("recraftv3_vector", "v3", _V3_STYLES, 40, 80, vector_model=True),
        _v23("recraftv2_vector", "v2", _V2_STYLES, 22, 44, vector_model=True),
        _v4("recraftv4", "v4", vector=False, pro=False, raster_credits=40, vector_credits=80),
        _v4("recraftv4_vector", "v4", vector=True, pro=False, raster_credits=40, vector_credits=80),
        _v4("recraftv4_pro", "v4", vector=False, pro=True, raster_credits=250, vector_credits=300),
        _v4("recraftv4_pro_vector", "v4", vector=True, pro=True, raster_credits=250,
            vector_credits=300),
        _v4("recraftv4_1", "v4_1", vector=False, pro=False, raster_credits=35, vector_credits=80),
        _v4("recraftv4_1_vector", "v4_1", vector=True, pro=False, raster_credits=35,
            vector_credits=80),
        _v4("recraftv4_1_pro", "v4_1", vector=False, pro=True, raster_credits=210,
            vector_credits=300),
        _v4("recraftv4_1_pro_vector", "v4_1", vector=True, pro=True, raster_credits=210,
            vector_credits=300),
        _v4("recraftv4_1_utility", "v4_1", vector=False, pro=False, raster_credits=35,
            vector_credits=80),
        _v4("recraftv4_1_utility_vector", "v4_1", vector=True, pro=False, raster_credits=35,
            vector_credits=80),
        _v4("recraftv4_1_utility_pro", "v4_1", vector=False, pro=True, raster_credits=210,
            vector_credits=300),
        _v4("recraftv4_1_utility_pro_vector", "v4_1", vector=True, pro=True,
            raster_credits=210, vector_credits=300),
        *_FLUX_MODELS,
    )
})


def model_info(model: str) -> ModelInfo:
    """The table row for ``model``; raises KeyError for an unknown model id."""
    return MODELS[model]


def size_for_aspect_ratio(model: str, aspect_ratio: str) -> str | None:
    """The V2/V3 ``size`` that matches ``aspect_ratio`` (for APIs that only take sizes).

    None for V4-era models (they take the ratio itself) and for unknown ratios.
    """
    info = MODELS.get(model)
    if info is None or info.generation not in ("v2", "v3") or info.vector:
        return None
    return V3_ASPECT_TO_SIZE.get(aspect_ratio)


def generation_credits(request: GenerationRequest, *, vector: bool | None = None) -> int:
    """Estimated API units for one generation request: price per image x ``n``.

    The price depends on the model and on whether the result is vector (1.9: a vector
    result costs twice a V2/V3 raster one). ``vector`` overrides ``request.vector``
    for requests whose kind the request alone cannot tell (a custom style whose base
    style is vector). A request made from another picture on a Recraft model pays its
    operation's price (:data:`IMAGE_OPERATION_CREDITS`); on another model (FLUX
    Kontext), the model's. A picture from a file costs nothing. Raises KeyError for an
    unknown model (the loader refuses those).
    """
    if request.operation == FILE_MODEL:
        return 0
    info = MODELS[request.model]
    is_vector = request.vector if vector is None else vector
    if request.operation is not None and info.maker == "recraft":
        raster, vector_price = IMAGE_OPERATION_CREDITS[request.operation]
        return (vector_price if (is_vector or info.vector) else raster) * request.n
    per_image = info.vector_credits if (is_vector or info.vector) else info.raster_credits
    return per_image * request.n


def operation_credits(operation: str, model_family: str = "recraft") -> int:
    """API units for one tool operation (one of ``OPERATION_CREDITS``), per request.

    ``model_family`` is the provider family (``Provider.family``): ``recraft``
    pays the table's prices; ``placeholder`` is free. Raises ValueError for an
    unknown operation or family.
    """
    if operation not in OPERATION_CREDITS:
        raise ValueError(f"unknown operation {operation!r} (known: {', '.join(OPERATION_CREDITS)})")
    if model_family == "placeholder":
        return 0
    if model_family != "recraft":
        raise ValueError(f"no price table for model family {model_family!r}")
    return OPERATION_CREDITS[operation]


def credits_to_usd(credits: float) -> float:
    """API units to US dollars (1.9: 1 USD = 1,000 API units)."""
    return credits / 1000
