"""Black Forest Labs' FLUX models through Replicate (and Replicate-format proxies).

The ElkAPI seed lists them beside Recraft; ``spec.tables`` holds what each takes and
costs. Our model ids map to Replicate's official models:

=====================  =====================================  =====================
our ``model``          Replicate model                        makes
=====================  =====================================  =====================
``flux-1.1-pro``       ``black-forest-labs/flux-1.1-pro``     from a prompt
``flux-1.1-pro-ultra`` ``black-forest-labs/flux-1.1-pro-ultra`` from a prompt
``flux-kontext-pro``   ``black-forest-labs/flux-kontext-pro`` from a prompt, or
                                                              ``image_to_image``
``flux-kontext-max``   ``black-forest-labs/flux-kontext-max`` the same
=====================  =====================================  =====================

The prediction input: ``prompt``; ``aspect_ratio`` when the spec gives one (Kontext
with an input picture and none: ``match_input_image``, the picture keeps its shape);
``seed`` when given; ``input_image`` (Kontext) as a ``data:`` URI; ``output_format:
png`` (lossless, for the steps that follow). Safety tolerance and prompt upsampling are
left at the models' defaults (upsampling off: the prompt is what the key says). # [U]
the Ultra and Kontext input names come from third-party client code.
"""

from __future__ import annotations

import base64
from typing import Any, Mapping

from recraft_build.domain import GenerationRequest, Picture

__all__ = ["FLUX_MODELS", "flux_input", "flux_model"]

#: Our model ids -> Replicate models.
FLUX_MODELS: Mapping[str, str] = {
    "flux-1.1-pro": "black-forest-labs/flux-1.1-pro",
    "flux-1.1-pro-ultra": "black-forest-labs/flux-1.1-pro-ultra",
    "flux-kontext-pro": "black-forest-labs/flux-kontext-pro",
    "flux-kontext-max": "black-forest-labs/flux-kontext-max",
}
#: The models that take an input picture (FLUX Kontext).
IMAGE_MODELS = frozenset({"flux-kontext-pro", "flux-kontext-max"})


def flux_model(request: GenerationRequest) -> str | None:
    """The Replicate model of a FLUX request, or None for another maker's model."""
    return FLUX_MODELS.get(request.model)


def data_uri(picture: Picture) -> str:
    return f"data:{picture.media_type};base64,{base64.b64encode(picture.data).decode('ascii')}"


def flux_input(request: GenerationRequest, image: Picture | None = None) -> dict[str, Any]:
    """The prediction ``input`` for one picture of ``request`` (``image``: Kontext's input)."""
    inp: dict[str, Any] = {"prompt": request.prompt, "output_format": "png"}
    if request.aspect_ratio:
        inp["aspect_ratio"] = request.aspect_ratio
    elif image is not None:
        inp["aspect_ratio"] = "match_input_image"
    if request.seed is not None:
        inp["seed"] = request.seed
    if image is not None:
        inp["input_image"] = data_uri(image)
    return inp
