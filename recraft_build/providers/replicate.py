"""The Replicate predictions protocol: Replicate itself and Replicate-format proxies.

A picture is one prediction: ``POST {base}/models/{owner}/{name}/predictions`` with
``{"input": {...}}`` and ``Prefer: wait=N`` (the read timeout is N plus a margin),
then, while the prediction is not finished, ``GET {base}/predictions/{id}`` until
``succeeded``, ``failed``, ``canceled`` or ``aborted`` (recraft-api.md 3.2).

Polling **always goes through the configured base URL**, never through
``urls.get`` or the ``Location`` header: proxies (kkiai...) return
``api.replicate.com`` URLs there, which a proxy key cannot use (recraft-api.md 2.2).

Mapping (recraft-api.md 3.1):

* ``recraftv3`` -> ``recraft-ai/recraft-v3``; vector styles or ``recraftv3_vector`` ->
  ``recraft-ai/recraft-v3-svg``; ``recraftv2`` -> ``recraft-ai/recraft-20b`` (``-svg``);
  ``recraftv4`` -> ``recraft-ai/recraft-v4`` (``-svg``); ``recraftv4_pro`` ->
  ``recraft-ai/recraft-v4-pro``. Other models (V4.1, utility, pro vector) have no known
  Replicate model and are refused before any call.
* ``style`` and ``substyle`` are joined with a slash (``digital_illustration/pixel_art``).
  On ``recraft-v3-svg`` the style list is the vector substyles themselves [U], so
  ``vector_illustration/line_art`` is sent as ``line_art`` and a bare
  ``vector_illustration`` as ``any``. V4 models have no style input: none is sent.
* ``aspect_ratio`` is sent as is (Replicate then ignores ``size``); else ``size``.
* ``n`` > 1 makes n predictions, one after another (each one request, each one picture).
* Refused before any call, because these models have no such input: ``style_id`` (and
  custom styles), ``controls``, ``negative_prompt``, ``text_layout`` and ``seed``.
  Silently dropping them would give pictures that do not match the spec (and a cache
  key that says they do).

Tool steps run the ``recraft-ai/recraft-remove-background``, ``-vectorize``,
``-crisp-upscale`` and ``-creative-upscale`` models with the picture inline as a
``data:`` URI. Replicate gives no credit figures: ``credits`` is None.

Errors: a ``failed`` prediction is a :class:`BadResultError` carrying the model's
``error`` text; ``canceled``/``aborted`` are :class:`TransientError` (an aborted
prediction is not charged). A lost create answer is an :class:`AmbiguousError` (see
:mod:`.http`); so is a prediction that was created but could not be followed to its
end (polls kept failing, or it ran past ``poll_timeout`` and was cancelled): the
message gives its id so the user can look it up.
"""

from __future__ import annotations

import base64
import re
from typing import Any, Mapping

import httpx

from recraft_build.domain import GenerationRequest, Picture
from recraft_build.errors import (
    AmbiguousError,
    BadResultError,
    PlanError,
    ProviderError,
    TransientError,
)
from recraft_build.providers.capabilities import CAPABILITIES
from recraft_build.providers.base import GenerationResult, TransformResult
from recraft_build.providers.flux import IMAGE_MODELS, flux_input, flux_model
from recraft_build.providers.http import OFFICIAL_BASES, HttpPolicy
from recraft_build.providers.httpbase import HttpProvider
from recraft_build.providers.redact import Secret

__all__ = [
    "DEFAULT_BASE_URL",
    "ReplicateProvider",
    "TERMINAL_STATUSES",
    "TOKEN_ENV",
    "TOOL_MODELS",
    "replicate_input",
    "replicate_model",
]

DEFAULT_BASE_URL = OFFICIAL_BASES["replicate"]
TOKEN_ENV = "REPLICATE_API_TOKEN"
TERMINAL_STATUSES = frozenset({"succeeded", "failed", "canceled", "aborted"})

#: Our operation names -> Replicate models.
TOOL_MODELS = {
    "remove_background": "recraft-ai/recraft-remove-background",
    "vectorize": "recraft-ai/recraft-vectorize",
    "crisp_upscale": "recraft-ai/recraft-crisp-upscale",
    "creative_upscale": "recraft-ai/recraft-creative-upscale",
}

# Our model id (without _vector) -> (raster model, vector model or None).
_MODELS = {
    "recraftv3": ("recraft-ai/recraft-v3", "recraft-ai/recraft-v3-svg"),
    "recraftv2": ("recraft-ai/recraft-20b", "recraft-ai/recraft-20b-svg"),
    "recraftv4": ("recraft-ai/recraft-v4", "recraft-ai/recraft-v4-svg"),
    "recraftv4_pro": ("recraft-ai/recraft-v4-pro", None),
}
_ID_RE = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")


def replicate_model(request: GenerationRequest) -> str:
    """The Replicate model (``owner/name``) for ``request``; ``ValueError`` if none."""
    flux = flux_model(request)  # FLUX models: providers.flux
    if flux is not None:
        return flux
    base = request.model[: -len("_vector")] if request.model.endswith("_vector") else request.model
    pair = _MODELS.get(base)
    if pair is None:
        known = ", ".join(sorted(_MODELS) + [f"{m}_vector" for m in sorted(_MODELS) if _MODELS[m][1]])
        raise ValueError(
            f"model {request.model} is not available through Replicate (known: {known}); "
            "use the recraft provider or another model"
        )
    raster, vector = pair
    if request.vector:
        if vector is None:
            raise ValueError(f"model {request.model} has no vector (SVG) version on Replicate")
        return vector
    return raster


def replicate_input(request: GenerationRequest) -> dict[str, Any]:
    """The prediction ``input`` for one picture of ``request``; ``ValueError`` if impossible."""
    caps = CAPABILITIES["replicate"]
    unsupported = caps.refused_fields(request)
    if unsupported:
        raise ValueError(
            f"Replicate's Recraft models do not support {', '.join(caps.refuses[f] for f in unsupported)}; "
            "remove them from the asset or build it with the recraft provider"
        )
    if flux_model(request) is not None:
        return flux_input(request)
    model = replicate_model(request)
    inp: dict[str, Any] = {"prompt": request.prompt}
    if not model.startswith("recraft-ai/recraft-v4"):
        style = request.style
        substyle = request.substyle
        if model == "recraft-ai/recraft-v3-svg" and style == "vector_illustration":
            style, substyle = (substyle or "any"), None
        if style:
            inp["style"] = f"{style}/{substyle}" if substyle else style
    if request.aspect_ratio:
        inp["aspect_ratio"] = request.aspect_ratio
    elif request.size:
        inp["size"] = request.size
    return inp


def _output_url(output: Any) -> str | None:
    if isinstance(output, str) and output:
        return output
    if isinstance(output, list):
        for item in output:
            if isinstance(item, str) and item:
                return item
    return None


class ReplicateProvider(HttpProvider):
    """Pictures from Recraft's models on Replicate (or a proxy speaking its API).

    Connection arguments (``auth``, ``policy``, ``limiter``, ``sleep``, ``clock``,
    ``rand``, ``max_download_bytes``, ``allow_http``, ``on_retry``, ``owns_client``)
    are those of :class:`~.httpbase.HttpProvider`. Also: ``wait_seconds`` (the
    ``Prefer: wait=N`` value, 1-60; 0 sends no Prefer header and polls at once; the
    read timeout of a create is at least N + ``read_margin``), ``poll_interval`` /
    ``poll_max_interval`` (seconds between polls, growing by half each time) and
    ``poll_timeout`` (seconds after which a running prediction is cancelled;
    Replicate itself stops predictions after 30 minutes).
    """

    protocol = "replicate"

    def __init__(
        self,
        name: str = "replicate",
        *,
        base_url: str = DEFAULT_BASE_URL,
        token: str | Secret,
        client: httpx.Client,
        token_env: str | None = TOKEN_ENV,
        wait_seconds: int = 60,
        poll_interval: float = 0.5,
        poll_max_interval: float = 5.0,
        poll_timeout: float = 1800.0,
        read_margin: float = 10.0,
        **kwargs: Any,
    ):
        if isinstance(wait_seconds, bool) or not isinstance(wait_seconds, int) or not 0 <= wait_seconds <= 60:
            raise PlanError(f"provider {name}: wait_seconds must be a whole number 0-60 (got {wait_seconds!r})")
        if poll_interval <= 0 or poll_max_interval < poll_interval or poll_timeout <= 0:
            raise PlanError(f"provider {name}: poll settings must be positive, max >= interval")
        super().__init__(name, base_url=base_url, token=token, client=client, token_env=token_env, **kwargs)
        self.wait_seconds = wait_seconds
        self.poll_interval = poll_interval
        self.poll_max_interval = poll_max_interval
        self.poll_timeout = poll_timeout
        self.read_margin = read_margin

    # -- one prediction ---------------------------------------------------------

    def _create(self, model: str, inp: Mapping[str, Any], *, asset: str | None) -> dict[str, Any]:
        headers = {}
        read = self._policy.read_timeout
        if self.wait_seconds:
            headers["Prefer"] = f"wait={self.wait_seconds}"
            read = max(read, self.wait_seconds + self.read_margin)
        what = f"prediction create for {model} (POST /models/{model}/predictions)"
        prediction, response = self._call(
            "POST",
            f"models/{model}/predictions",
            what=what,
            asset=asset,
            paid=True,
            creates=1,
            timeout=self._policy.timeout(read=read),
            headers=headers,
            json_body={"input": dict(inp)},
        )
        pid = prediction.get("id")
        if not isinstance(pid, str) or not _ID_RE.match(pid):
            raise self._ctx.error(
                AmbiguousError,
                f"{what} answered without a usable prediction id ({str(pid)[:40]!r}); the "
                "prediction may run and be billed. Check the account's predictions",
                status=response.status_code,
                asset=asset,
            )
        return prediction

    def _poll(self, pid: str, *, asset: str | None) -> dict[str, Any]:
        what = f"polling prediction {pid} (GET /predictions/{pid})"
        prediction, _ = self._call("GET", f"predictions/{pid}", what=what, asset=asset, paid=False)
        return prediction

    def _cancel(self, pid: str, *, asset: str | None) -> None:
        try:
            self._call(
                "POST",
                f"predictions/{pid}/cancel",
                what=f"cancelling prediction {pid}",
                asset=asset,
                paid=False,
                policy=HttpPolicy(max_retries=1),
            )
        except ProviderError:
            pass  # Best effort: the error we raise next says what happened.

    def _run(self, model: str, inp: Mapping[str, Any], *, asset: str | None, expect: str) -> Picture:
        prediction = self._create(model, inp, asset=asset)
        pid = prediction["id"]
        deadline = self._clock() + self.poll_timeout
        interval = self.poll_interval
        while prediction.get("status") not in TERMINAL_STATUSES:
            if self._clock() >= deadline:
                self._cancel(pid, asset=asset)
                raise self._ctx.error(
                    AmbiguousError,
                    f"prediction {pid} ({model}) did not finish within {self.poll_timeout:.0f} s "
                    "and was cancelled; it may have been billed for the time it ran. The next "
                    "build will try this asset again",
                    asset=asset,
                )
            self._sleep(interval)
            interval = min(self.poll_max_interval, interval * 1.5)
            try:
                polled = self._poll(pid, asset=asset)
            except ProviderError as exc:
                # Whatever went wrong while following it, the prediction exists and may
                # be billed: say so, with its id, instead of a plain poll error.
                raise self._ctx.error(
                    AmbiguousError,
                    f"prediction {pid} ({model}) was created but could not be followed ({exc}); "
                    "it may finish and be billed. Look it up in the Replicate dashboard; the "
                    "next build will try this asset again",
                    status=exc.status,
                    request_id=exc.request_id,
                    asset=asset,
                ) from exc
            if polled.get("id") not in (None, pid):
                raise self._ctx.error(
                    BadResultError,
                    f"polling prediction {pid} returned prediction {str(polled.get('id'))[:40]!r}; "
                    "the proxy's polling endpoint looks wrong",
                    asset=asset,
                )
            prediction = polled
        status = prediction.get("status")
        if status == "failed":
            error = self._ctx.clean(str(prediction.get("error") or "no error text"))[:500]
            raise self._ctx.error(
                BadResultError,
                f"prediction {pid} ({model}) failed: {error}. Nothing was cached; change the "
                "prompt or inputs if the model refused them",
                asset=asset,
            )
        if status in ("canceled", "aborted"):
            raise self._ctx.error(
                TransientError,
                f"prediction {pid} ({model}) was {status} on the server side; run the build "
                "again",
                asset=asset,
            )
        url = _output_url(prediction.get("output"))
        if url is None:
            raise self._ctx.error(
                BadResultError,
                f"prediction {pid} ({model}) succeeded without an output URL; nothing was cached",
                asset=asset,
            )
        return self._downloader.fetch(url, asset=asset, expect=expect, meta={"prediction_id": pid})

    # -- Provider interface -----------------------------------------------------

    def generate(self, request: GenerationRequest, *, asset: str) -> GenerationResult:
        """``request.n`` predictions, one after another; each checked and downloaded."""
        try:
            model = replicate_model(request)
            inp = replicate_input(request)
        except ValueError as exc:
            raise self._reject(str(exc), asset=asset) from exc
        expect = "svg" if request.vector or model.endswith("-svg") else "raster"
        pictures = [self._run(model, inp, asset=asset, expect=expect) for _ in range(request.n)]
        ids = [p.meta.get("prediction_id") for p in pictures]
        return GenerationResult(pictures=pictures, credits=None, meta={"model": model, "prediction_ids": ids})

    def supports(self, operation: str) -> bool:
        return CAPABILITIES["replicate"].supports(operation) and operation in TOOL_MODELS

    def transform(
        self,
        operation: str,
        picture: Picture,
        params: Mapping[str, Any],
        *,
        asset: str,
    ) -> TransformResult:
        """Run a Recraft tool model on ``picture`` (sent inline as a ``data:`` URI)."""
        model = TOOL_MODELS.get(operation)
        if model is None:
            return super().transform(operation, picture, params, asset=asset)
        if picture.is_svg:
            raise self._reject(
                f"{operation} needs a raster picture, got an SVG; rasterize it first", asset=asset
            )
        uri = f"data:{picture.media_type};base64,{base64.b64encode(picture.data).decode('ascii')}"
        expect = "svg" if operation == "vectorize" else "raster"
        result = self._run(model, {"image": uri}, asset=asset, expect=expect)
        return TransformResult(picture=result, credits=None, meta={"model": model, **result.meta})

    # -- pictures made from pictures (providers.imageops) ---------------------------

    def generate_from_image(
        self, request: GenerationRequest, image: Picture, *, mask: Picture | None = None, asset: str
    ) -> GenerationResult:
        """``image_to_image`` through FLUX Kontext: ``request.n`` predictions with the
        picture inline as a ``data:`` URI. Replicate runs no other image operation (no
        known model runs Recraft's): refused before any call."""
        model = flux_model(request)
        if request.operation != "image_to_image" or request.model not in IMAGE_MODELS or model is None:
            raise self._reject(
                f"Replicate cannot run {request.operation} with model {request.model} (it runs image_to_image "
                "with flux-kontext-pro or flux-kontext-max); build it with the recraft provider",
                asset=asset,
            )
        if image.is_svg:
            raise self._reject(f"{request.operation} needs a raster picture, got an SVG", asset=asset)
        inp = flux_input(request, image)
        pictures = [self._run(model, inp, asset=asset, expect="raster") for _ in range(request.n)]
        ids = [p.meta.get("prediction_id") for p in pictures]
        return GenerationResult(pictures=pictures, credits=None, meta={"model": model, "prediction_ids": ids})
