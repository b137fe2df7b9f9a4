"""The one small interface every provider implements.

A provider turns a :class:`~recraft_build.domain.GenerationRequest` into pictures,
and (if it can) runs a tool operation on a picture. Providers are synchronous and
thread-safe: the executor calls them from ``-j`` worker threads, sharing one provider
object (and so one HTTP connection pool). I/O enters through the constructor (an
``httpx.Client``, a ``sleep`` and a ``clock``), so tests swap it.

Contract for implementations:

* ``generate`` returns exactly ``request.n`` pictures, already downloaded and checked
  (a raster decodes, an SVG parses and has a viewBox); it raises a
  :class:`~recraft_build.errors.ProviderError` subclass otherwise.
* ``transform`` runs one of :data:`OPERATIONS` and returns one picture.
* ``credits`` in a result is what the server says it charged (None if it did not say).
* ``resends`` in a result is the number of paid requests this call sent again after
  an ambiguous failure (an answer lost after the request was sent, or a 500/504
  without the API's error body): each may have been billed twice, on top of
  ``credits``. 0 when every paid request was answered (or, for Replicate, when a lost
  create was found again by listing predictions, so nothing was sent twice). A resend
  repeats one request: for Recraft the whole call (all ``n`` pictures of a
  generation), for Replicate one prediction (one picture), so the call's estimate
  times ``resends`` is an upper bound of the possible extra charge.
* Nothing a provider raises, returns or logs contains a token.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from recraft_build.domain import GenerationRequest, Picture

__all__ = [
    "GenerationResult",
    "OPERATIONS",
    "Provider",
    "StyleResult",
    "TransformResult",
]

#: Tool operations a provider may support, by our names.
OPERATIONS = frozenset(
    {"remove_background", "vectorize", "crisp_upscale", "creative_upscale", "image_to_image"}
)


@dataclass(frozen=True)
class GenerationResult:
    """The pictures of one generation request, in the order the server gave them."""

    pictures: Sequence[Picture]
    credits: float | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)
    #: Paid requests sent again after an ambiguous failure (see the module docstring).
    resends: int = 0


@dataclass(frozen=True)
class TransformResult:
    """The picture one tool operation produced."""

    picture: Picture
    credits: float | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)
    #: Paid requests sent again after an ambiguous failure (see the module docstring).
    resends: int = 0


@dataclass(frozen=True)
class StyleResult:
    """A custom style created on the provider from reference images."""

    style_id: str
    credits: float | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)
    #: Paid requests sent again after an ambiguous failure (see the module docstring).
    resends: int = 0


class Provider(abc.ABC):
    """A way to make pictures.

    ``name`` is the profile name shown to users (``recraft``, ``elkapi``...).
    ``family`` goes into every cache key: ``recraft`` for pictures made by Recraft's
    models (directly, through Replicate, or through a proxy: the same model gives the
    same kind of picture), ``placeholder`` for the offline stand-in, so the two can
    never be confused.
    """

    name: str
    family: str
    #: True for providers that cost money (plan prices and --max-credits apply).
    paid: bool = True
    #: True for providers that make pictures in this process (CPU work, no network, the
    #: placeholder): the executor generates on its CPU workers instead of network ones.
    in_process: bool = False

    @abc.abstractmethod
    def generate(self, request: GenerationRequest, *, asset: str) -> GenerationResult:
        """Generate ``request.n`` pictures for ``asset`` (the name is for messages)."""

    def supports(self, operation: str) -> bool:
        """Whether :meth:`transform` can run ``operation`` (one of :data:`OPERATIONS`)."""
        return False

    def transform(
        self,
        operation: str,
        picture: Picture,
        params: Mapping[str, Any],
        *,
        asset: str,
    ) -> TransformResult:
        """Run a tool operation on one picture."""
        from recraft_build.errors import RequestRejected

        raise RequestRejected(
            f"{operation} is not supported by this provider (use engine: local)",
            provider=self.name,
            asset=asset,
        )

    def create_style(
        self, base_style: str, references: Sequence[Picture], *, name: str
    ) -> StyleResult:
        """Create a custom style from 1-5 reference pictures."""
        from recraft_build.errors import RequestRejected

        raise RequestRejected(
            f"custom styles are not supported by provider {self.name}", provider=self.name
        )

    def close(self) -> None:
        """Release connections. Safe to call twice."""

    def __enter__(self) -> "Provider":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
