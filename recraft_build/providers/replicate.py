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
prediction is not charged). A 500 carrying Replicate's problem details
(:func:`is_api_error`) was refused, not billed, and is retried like a 503.

**A lost create is looked up, not resent.** When a create's answer is lost (the
connection dropped or timed out after sending, the overall deadline passed, a
500/504 without Replicate's error body, or a 2xx without a usable id), the
prediction may exist and be billed. The provider then lists recent predictions
(``GET {base}/predictions?created_after=...``, newest first, following the
``next`` cursor **through the configured base**, never through the absolute URL in
the answer) and takes the newest one whose ``model`` and ``input`` equal what was
sent and that this provider has not already taken (so ``n`` identical creates never
share one). Found, it is followed to its end like any other: nothing was created
twice. Not found (after two looks, a moment apart, since a create still in flight
may not be listed yet), the create is sent again (at most ``max_resends`` times,
each counted in the result's ``resends``, as it may have been billed twice) unless
``resend_ambiguous`` is off, which raises :class:`AmbiguousError` instead.
The listing's shape (100 a page, newest first, ``{next, previous, results}``, each
entry with ``id``, ``model``, ``version``, ``input``, ``status``, ``created_at``) is
Replicate's documented one (https://sdks.replicate.com/python/resources/predictions/methods/list);
``created_after`` is in Replicate's OpenAPI since early 2025 (picked up by the
tryAGI/Replicate client, PR 69), and entries older than it are skipped here too, for
servers that ignore it. The ``version`` of a model-endpoint create is not known to the
client, so only ``model`` is compared. Uncertain [U]: whether the listing echoes
``input`` exactly as sent (file inputs sent as ``data:`` URIs may come back as URLs;
then tool predictions are not found and are resent), and whether a proxy serves the
listing at all (if not, the same).

A prediction that was created but could not be followed to its end (polls kept
failing, or it ran past ``poll_timeout`` and was cancelled) is an
:class:`AmbiguousError` whose message gives its id, so the user can look it up.
"""

from __future__ import annotations

import contextlib

import base64
import json
import re
import threading
from datetime import datetime, timezone
from typing import Any, Mapping
from urllib.parse import parse_qs, urlencode, urlsplit

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
from recraft_build.providers.errortext import json_object_of
from recraft_build.providers.flux import IMAGE_MODELS, flux_input, flux_model
from recraft_build.providers.http import OFFICIAL_BASES, CallStats, HttpPolicy
from recraft_build.providers.httpbase import HttpProvider
from recraft_build.providers.redact import Secret

__all__ = [
    "DEFAULT_BASE_URL",
    "ReplicateProvider",
    "TERMINAL_STATUSES",
    "TOKEN_ENV",
    "TOOL_MODELS",
    "is_api_error",
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
#: Seconds before a lost create was sent from which the listing looks: room for a
#: server clock behind ours (a match must also have the same model and input).
LIST_SKEW = 600.0
#: Most listing pages (100 predictions each) read to find one lost create.
LIST_PAGES = 5
#: Looks at the listing before a lost create counts as not created.
LIST_LOOKS = 2


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


def is_api_error(response: httpx.Response) -> bool:
    """Whether an error answer is Replicate's own refusal, so a 500 was not billed.

    Replicate answers errors as problem details (``type, title, status, detail``;
    recraft-api.md 3.2): a JSON body with a ``detail`` or ``title`` text whose
    ``status``, when given, is the answer's own. A gateway's HTML or text page is not.
    """
    data = json_object_of(response)
    if data is None:
        return False
    status = data.get("status")
    if status is not None and status != response.status_code:
        return False
    return any(isinstance(data.get(k), str) and data[k].strip() for k in ("detail", "title"))


def _canonical(value: Any) -> str:
    """One text per JSON value, so an input listed by the server compares to ours."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _iso(seconds: float) -> str:
    """An ISO 8601 UTC time for a query (``2025-07-30T01:45:30Z``)."""
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


_TIME_RE = re.compile(r"^(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:?\d{2})?$")


def _seconds(text: Any) -> float | None:
    """Seconds since the epoch of a prediction's ``created_at``, or None if unreadable."""
    m = _TIME_RE.match(text.strip()) if isinstance(text, str) else None
    if m is None:
        return None
    zone = m.group(3) or "Z"
    zone = "+00:00" if zone == "Z" else (zone if ":" in zone else f"{zone[:3]}:{zone[3:]}")
    try:
        when = datetime.fromisoformat(f"{m.group(1).replace(' ', 'T')}{zone}")
    except ValueError:
        return None
    return when.timestamp() + (float(f"0.{m.group(2)}") if m.group(2) else 0.0)


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
        # Predictions this provider has taken (created, or found again after a lost
        # create): a lookup never takes one twice, so n identical creates stay n.
        self._taken: set[str] = set()
        self._taken_lock = threading.Lock()

    # -- one prediction ---------------------------------------------------------

    def api_error(self, response: httpx.Response) -> bool:
        return is_api_error(response)

    def _take(self, pid: str) -> bool:
        """Mark ``pid`` as this provider's; False if it already was."""
        with self._taken_lock:
            if pid in self._taken:
                return False
            self._taken.add(pid)
            return True

    def _create(
        self, model: str, inp: Mapping[str, Any], *, asset: str | None, stats: CallStats
    ) -> dict[str, Any]:
        """One prediction for ``inp``: created, or found again after a lost create."""
        headers = {}
        read = self._policy.read_timeout
        deadline = self._policy.response_deadline
        if self.wait_seconds:
            headers["Prefer"] = f"wait={self.wait_seconds}"
            read = max(read, self.wait_seconds + self.read_margin)
            deadline = deadline and max(deadline, self.wait_seconds + self.read_margin)
        what = f"prediction create for {model} (POST /models/{model}/predictions)"
        resent = 0
        while True:
            sent_at = self._wall_clock()
            try:
                prediction, response = self._call(
                    "POST",
                    f"models/{model}/predictions",
                    what=what,
                    asset=asset,
                    paid=True,
                    creates=1,
                    timeout=self._policy.timeout(read=read),
                    deadline=self._policy.deadline(deadline),
                    headers=headers,
                    json_body={"input": dict(inp)},
                    resends=0,  # never blindly: a lost create is looked up first
                    stats=stats,
                )
            except AmbiguousError as exc:
                lost = exc
            except TransientError as exc:
                if not resent:
                    raise
                # An earlier create that was not listed may exist after all: its fate,
                # and so this call's, stays unknown.
                raise self._ctx.error(
                    AmbiguousError,
                    f"{exc.args[0]} It had been created again {resent} time(s) after lost "
                    "answers, which may have been billed",
                    status=exc.status,
                    request_id=exc.request_id,
                    asset=asset,
                ) from exc
            else:
                pid = prediction.get("id")
                if isinstance(pid, str) and _ID_RE.match(pid):
                    self._take(pid)
                    return prediction
                lost = self._ctx.error(
                    AmbiguousError,
                    f"{what} answered without a usable prediction id ({str(pid)[:40]!r})",
                    status=response.status_code,
                    asset=asset,
                )
                assert isinstance(lost, AmbiguousError)
            found = self._look_up(model, inp, sent_at=sent_at, asset=asset)
            if found is not None:
                self._ctx.retried(
                    f"{what}: the answer was lost, but prediction {found['id']} was found among "
                    "the recent predictions; following it (nothing was created twice)"
                )
                return found
            permitted = resent < self._policy.resends and (
                self._resend_permit is None or self._resend_permit()
            )
            if not permitted:
                cause = lost.__cause__
                reason = f"{type(cause).__name__}: {cause}" if cause is not None else lost.args[0]
                raise self._ctx.error(
                    AmbiguousError,
                    f"{what} was sent but its answer was lost ({reason}); it may have been "
                    "billed. The prediction was not found among the recent predictions, and "
                    + (
                        f"it was already created again {resent} time(s), so it may have been "
                        f"billed up to {resent + 1} times. "
                        if resent
                        else "it was not created again, so you are not charged twice. "
                    )
                    + "Check the account's predictions; the next build will try this asset again",
                    status=lost.status,
                    request_id=lost.request_id,
                    asset=asset,
                ) from lost
            resent += 1
            stats.resends += 1
            delay = self._policy.backoff(resent - 1, self._rand)
            self._ctx.retried(
                f"{what}: the answer was lost and no such prediction is listed; creating it "
                f"again in {delay:.1f} s (resend {resent}), so it may be billed twice"
            )
            self._sleep(delay)

    def _look_up(
        self, model: str, inp: Mapping[str, Any], *, sent_at: float, asset: str | None
    ) -> dict[str, Any] | None:
        """The prediction a lost create made (newest match not yet taken), or None.

        Looks :data:`LIST_LOOKS` times, a backoff apart (the first look waits too: a
        create still in flight on the server may not be listed yet). A listing that
        fails (a proxy without it, a network still failing) counts as not found.
        """
        since = sent_at - LIST_SKEW
        want = _canonical(dict(inp))
        for look in range(LIST_LOOKS):
            self._sleep(self._policy.backoff(look, self._rand))
            try:
                for entry in self._listed_since(since, asset=asset):
                    if (
                        entry.get("model") in (None, model)
                        and _canonical(entry.get("input")) == want
                        and self._take(entry["id"])
                    ):
                        return entry
            except ProviderError as exc:
                self._ctx.retried(f"listing recent predictions failed ({exc}); counting the create as not found")
                return None
        return None

    def _listed_since(self, since: float, *, asset: str | None) -> list[dict[str, Any]]:
        """Predictions created since ``since`` (wall clock), newest first, at most
        :data:`LIST_PAGES` pages, read through the configured base URL."""
        query = {"created_after": _iso(since)}
        found: list[dict[str, Any]] = []
        for _ in range(LIST_PAGES):
            listing, _ = self._call(
                "GET",
                f"predictions?{urlencode(query)}",
                what="listing recent predictions (GET /predictions)",
                asset=asset,
                paid=False,
            )
            results = listing.get("results")
            if not isinstance(results, list):
                break
            older = False
            for entry in results:
                if not isinstance(entry, dict) or not isinstance(entry.get("id"), str) or not _ID_RE.match(entry["id"]):
                    continue
                created = _seconds(entry.get("created_at"))
                if created is not None and created < since:
                    older = True  # a server that ignores created_after: the rest is older
                    continue
                found.append(entry)
            # The next page only by its cursor, asked of our base URL: a proxy's
            # ``next`` points at api.replicate.com, which its key cannot use.
            cursor = parse_qs(urlsplit(str(listing.get("next") or "")).query).get("cursor")
            if older or not cursor:
                break
            query = {"created_after": query["created_after"], "cursor": cursor[0]}
        return found

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

    def _run(
        self, model: str, inp: Mapping[str, Any], *, asset: str | None, expect: str, stats: CallStats,
        slot: bool = False,
    ) -> Picture:
        """One prediction, created and followed (holding an in-flight slot with
        ``slot``: a generation), then its output downloaded and checked (after the slot
        is given back)."""
        with self._slot() if slot else contextlib.nullcontext():
            pid, url = self._predict(model, inp, asset=asset, stats=stats)
        return self._downloader.fetch(url, asset=asset, expect=expect, meta={"prediction_id": pid})

    def _predict(
        self, model: str, inp: Mapping[str, Any], *, asset: str | None, stats: CallStats
    ) -> tuple[str, str]:
        """Create a prediction and follow it until it is done: ``(its id, output URL)``."""
        prediction = self._create(model, inp, asset=asset, stats=stats)
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
        return pid, url

    # -- Provider interface -----------------------------------------------------

    def generate(self, request: GenerationRequest, *, asset: str) -> GenerationResult:
        """``request.n`` predictions, one after another; each checked and downloaded."""
        try:
            model = replicate_model(request)
            inp = replicate_input(request)
        except ValueError as exc:
            raise self._reject(str(exc), asset=asset) from exc
        expect = "svg" if request.vector or model.endswith("-svg") else "raster"
        stats = CallStats()
        with stats.on_errors():
            pictures = [self._run(model, inp, asset=asset, expect=expect, stats=stats, slot=True)
                        for _ in range(request.n)]
        ids = [p.meta.get("prediction_id") for p in pictures]
        return GenerationResult(
            pictures=pictures, credits=None, meta={"model": model, "prediction_ids": ids}, resends=stats.resends
        )

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
        stats = CallStats()
        with stats.on_errors():
            result = self._run(model, {"image": uri}, asset=asset, expect=expect, stats=stats)
        return TransformResult(
            picture=result, credits=None, meta={"model": model, **result.meta}, resends=stats.resends
        )

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
        stats = CallStats()
        with stats.on_errors():
            pictures = [self._run(model, inp, asset=asset, expect="raster", stats=stats, slot=True)
                        for _ in range(request.n)]
        ids = [p.meta.get("prediction_id") for p in pictures]
        return GenerationResult(
            pictures=pictures, credits=None, meta={"model": model, "prediction_ids": ids}, resends=stats.resends
        )
