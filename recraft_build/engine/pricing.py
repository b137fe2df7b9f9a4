"""The one place a price is decided: what a request or a tool call costs, in credits.

``plan`` (the estimate), ``build`` (budget reservations), the gallery and the review
page all call :class:`Pricing`; nothing else reads the price tables. The figures
themselves live in :mod:`recraft_build.spec.tables` (cited from recraft-api.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from recraft_build.domain import VECTOR_STYLES, GenerationRequest, StyleSpec
from recraft_build.spec import tables

__all__ = ["Pricing"]


@dataclass(frozen=True)
class Pricing:
    """Prices for one spec and provider family.

    ``styles`` are the spec's custom styles: a request using one is priced by the
    style's base style, since a style made from a vector base gives vector pictures,
    which cost twice a raster one (recraft-api.md 1.9). ``family`` ``placeholder`` is free.
    """

    styles: Mapping[str, StyleSpec] = field(default_factory=dict)
    family: str = "recraft"

    def for_family(self, family: str) -> "Pricing":
        """The same prices for pictures of another family (a real picture honoured
        while the placeholder is active still costs real credits to re-process)."""
        return self if family == self.family else Pricing(self.styles, family)

    def generation(self, request: GenerationRequest) -> float:
        """Credits for one generation request (all ``n`` candidates)."""
        if self.family == "placeholder":
            return 0.0
        style = self.styles.get(request.style_ref) if request.style_ref else None
        vector = (style.base_style in VECTOR_STYLES) if style is not None else None
        return float(tables.generation_credits(request, vector=vector))

    def operation(self, operation: str) -> float:
        """Credits for one provider tool call (``remove_background``, ``create_style``...)."""
        if self.family == "placeholder":
            return 0.0
        return float(tables.operation_credits(operation))
