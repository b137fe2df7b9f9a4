"""The Recraft REST protocol: the official API and Recraft-format proxies (ElkAPI).

Generations go as JSON to ``POST {base}/images/generations``; tools go as multipart
to ``images/removeBackground``, ``images/vectorize``, ``images/crispUpscale``,
``images/creativeUpscale`` and ``images/imageToImage``; custom styles to ``POST
{base}/styles``. Every call is a paid POST, sent through :func:`.http.send`. Recraft has no way to
look a call up afterwards, so a paid call whose answer was lost is sent again (at
most ``max_resends`` times, unless the profile option ``resend_ambiguous: false`` or
``RECRAFT_BUILD_RESEND_AMBIGUOUS=0`` for the built-ins restores the strict rule: an
:class:`AmbiguousError`, never a resend); the result's ``resends`` says how many
requests may have been billed twice. A 500 carrying Recraft's own JSON error body
(:func:`is_api_error`) was refused, not billed, and is simply retried.

Choices (recraft-api.md section numbers in brackets):

* ``model`` is always sent, so a change of the server's default cannot change our
  pictures [intro]. ``style_id`` wins over ``style``/``substyle`` (never both) [1.3].
* ``response_format`` defaults to ``"url"``: the answer to the paid POST stays small
  (base64 of six pictures is megabytes, and a slow read on a paid POST is exactly the
  ambiguous case), the download is an idempotent GET we may retry, and it is what the
  official MCP server does [4]. ``"b64_json"`` can be chosen per profile (option
  ``response_format``); whichever the server sends back (``b64_json`` or ``url``) is
  accepted, since proxies do not always honour the request.
* ``size``: ``WxH`` as written. An ``aspect_ratio`` is sent as the matching ``WxH``
  from the V2/V3 size table for V2/V3 models (equal ratios match: 3:5 is 6:10), and as
  ``w:h`` for V4 models, which accept ratios [1.6]; a ratio with no V2/V3 size is
  refused before any call.
* ``controls``: ``#rrggbb`` colours become ``{"rgb": [r, g, b]}``; other control keys
  pass through [1.3].
* The single-image tools send the picture as the multipart field ``file`` (the docs'
  examples); profiles may say ``file_field: image`` (the OpenAPI spec) [1.2].
* Custom styles send ``style`` plus the references as ``file1``..``fileN`` (field names
  do not matter to the server, and unique names suit every multipart parser) [1.2].
* Both answer shapes are read: the official one (``credits``, ``data[].url`` or
  ``b64_json``, ``data[].image_id``, or ``image`` for tools) and the ElkAPI proxy's
  (``data[].url`` with ``metadata.credits``, ``metadata.images[].image_id`` and
  ``metadata.request_id``).
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any, Callable, Mapping, Sequence

import httpx

from recraft_build.domain import GenerationRequest, Picture
from recraft_build.errors import BadResultError, PlanError
from recraft_build.providers import imageops
from recraft_build.providers.capabilities import CAPABILITIES
from recraft_build.providers.base import GenerationResult, StyleResult, TransformResult
from recraft_build.providers.errortext import json_object_of
from recraft_build.providers.http import OFFICIAL_BASES, CallStats, request_id_of
from recraft_build.providers.httpbase import HttpProvider
from recraft_build.providers.redact import Secret

__all__ = [
    "DEFAULT_BASE_URL",
    "RecraftProvider",
    "STYLES",
    "TOKEN_ENV",
    "TOOL_ENDPOINTS",
    "V3_SIZES",
    "is_api_error",
    "recraft_body",
]

DEFAULT_BASE_URL = OFFICIAL_BASES["recraft"]
TOKEN_ENV = "RECRAFT_API_TOKEN"

#: Our operation names -> Recraft tool endpoints (relative to the base URL).
TOOL_ENDPOINTS = {
    "remove_background": "images/removeBackground",
    "vectorize": "images/vectorize",
    "crisp_upscale": "images/crispUpscale",
    "creative_upscale": "images/creativeUpscale",
    "image_to_image": "images/imageToImage",
}

#: V2/V3 sizes by aspect ratio (recraft-api.md 1.6). 1707x1024 is in the size enum
#: without a listed ratio; it is the 5:3 one.
V3_SIZES = {
    Fraction(1, 1): "1024x1024",
    Fraction(2, 1): "2048x1024",
    Fraction(1, 2): "1024x2048",
    Fraction(3, 2): "1536x1024",
    Fraction(2, 3): "1024x1536",
    Fraction(4, 3): "1365x1024",
    Fraction(3, 4): "1024x1365",
    Fraction(5, 4): "1280x1024",
    Fraction(4, 5): "1024x1280",
    Fraction(6, 10): "1024x1707",
    Fraction(10, 6): "1707x1024",
    Fraction(14, 10): "1434x1024",
    Fraction(10, 14): "1024x1434",
    Fraction(16, 9): "1820x1024",
    Fraction(9, 16): "1024x1820",
}

_V3_DIGITAL = (
    "2d_art_poster 2d_art_poster_2 antiquarian bold_fantasy child_book cover crosshatch "
    "digital_engraving engraving_color expressionism freehand_details grain grain_20 "
    "graphic_intensity hand_drawn hand_drawn_outline handmade_3d hard_comics infantile_sketch "
    "long_shadow modern_folk multicolor neon_calm noir nostalgic_pastel outline_details "
    "pastel_gradient pastel_sketch pixel_art plastic pop_art pop_renaissance seamless street_art "
    "tablet_sketch urban_glow urban_sketching young_adult_book young_adult_book_2"
)
_V3_REALISTIC = (
    "b_and_w enterprise evening_light faded_nostalgia forest_life hard_flash hdr motion_blur "
    "mystic_naturalism natural_light natural_tones organic_calm real_life_glow retro_realism "
    "retro_snapshot studio_portrait urban_drama village_realism warm_folk"
)
_V3_VECTOR = (
    "bold_stroke chemistry colored_stencil cosmics cutout depressive editorial emotional_flat "
    "engraving line_art line_circuit linocut marker_outline mosaic naivector roundish_flat "
    "seamless segmented_colors sharp_contrast thin vector_photo vivid_shapes"
)

#: Styles and their substyles per model (V3 era, recraft-api.md 1.4). Used only to
#: explain a rejected request; the server stays the authority.
STYLES: Mapping[str, Mapping[str, frozenset[str]]] = {
    "recraftv3": {
        "any": frozenset(),
        "realistic_image": frozenset(_V3_REALISTIC.split()),
        "digital_illustration": frozenset(_V3_DIGITAL.split()),
        "vector_illustration": frozenset(_V3_VECTOR.split()),
        "logo_raster": frozenset(
            "emblem_graffiti emblem_pop_art emblem_punk emblem_stamp emblem_vintage".split()
        ),
    },
    "recraftv2": {
        "realistic_image": frozenset(
            "b_and_w enterprise hard_flash hdr motion_blur natural_light studio_portrait".split()
        ),
        "digital_illustration": frozenset(
            "2d_art_poster 2d_art_poster_2 3d 80s engraving_color glow grain hand_drawn "
            "hand_drawn_outline handmade_3d infantile_sketch kawaii pixel_art plastic "
            "psychedelic seamless voxel watercolor".split()
        ),
        "vector_illustration": frozenset(
            "cartoon doodle_line_art engraving flat_2 kawaii line_art line_circuit linocut "
            "seamless".split()
        ),
        "icon": frozenset(
            "broken_line colored_outline colored_shapes colored_shapes_gradient doodle_fill "
            "doodle_offset_fill offset_fill outline outline_gradient pictogram".split()
        ),
    },
}

#: Largest upload the tools accept (recraft-api.md 1.7), checked before paying.
MAX_UPLOAD_BYTES = 5 * 1024 * 1024
_RESPONSE_FORMATS = ("url", "b64_json")


def _is_v4(model: str) -> bool:
    return model.startswith("recraftv4")


def _base_model(model: str) -> str:
    return model[: -len("_vector")] if model.endswith("_vector") else model


def _rgb(value: Any, where: str) -> Any:
    """``#rrggbb`` -> ``{"rgb": [r, g, b]}``; dicts and ``[r, g, b]`` lists pass as given."""
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, (list, tuple)) and len(value) == 3 and all(isinstance(c, int) for c in value):
        return {"rgb": list(value)}
    if isinstance(value, str):
        text = value.strip().lstrip("#")
        if len(text) == 3:
            text = "".join(c * 2 for c in text)
        if len(text) == 6:
            try:
                return {"rgb": [int(text[i : i + 2], 16) for i in (0, 2, 4)]}
            except ValueError:
                pass
    raise ValueError(f"{where}: {value!r} is not a #rrggbb colour")


def _size_for(request: GenerationRequest) -> str | None:
    if request.size:
        return request.size
    if not request.aspect_ratio:
        return None
    if _is_v4(request.model):
        return request.aspect_ratio
    a, _, b = request.aspect_ratio.partition(":")
    try:
        ratio = Fraction(int(a), int(b))
    except (ValueError, ZeroDivisionError):
        ratio = None
    size = V3_SIZES.get(ratio) if ratio is not None else None
    if size is None:
        allowed = ", ".join(f"{r.numerator}:{r.denominator}" for r in V3_SIZES)
        raise ValueError(
            f"aspect_ratio {request.aspect_ratio} has no size for model {request.model} "
            f"(allowed: {allowed}); pick one of those or give a size"
        )
    return size


def recraft_body(request: GenerationRequest, *, response_format: str = "url") -> dict[str, Any]:
    """The JSON body of ``POST /images/generations`` for ``request``.

    Raises ``ValueError`` with a user-facing message when the request cannot be
    expressed (an unresolved ``style_ref``, a bad colour, an aspect ratio with no
    size); the provider turns that into :class:`RequestRejected` before any call.
    """
    if request.style_ref and not request.style_id:
        raise ValueError(
            f"custom style {request.style_ref!r} was not resolved to a style id before the "
            "call (the build creates styles from the spec's styles: section first)"
        )
    body: dict[str, Any] = {
        "prompt": request.prompt,
        "model": request.model,
        "n": request.n,
        "response_format": response_format,
    }
    if request.style_id:
        body["style_id"] = request.style_id
    elif request.style:
        body["style"] = request.style
        if request.substyle:
            body["substyle"] = request.substyle
    size = _size_for(request)
    if size:
        body["size"] = size
    if request.negative_prompt:
        body["negative_prompt"] = request.negative_prompt
    if request.controls:
        controls: dict[str, Any] = {}
        for key, value in request.controls.items():
            if value is None:
                continue
            if key == "colors":
                controls["colors"] = [_rgb(c, "controls.colors") for c in value]
            elif key == "background_color":
                controls["background_color"] = _rgb(value, "controls.background_color")
            else:
                controls[key] = value
        if controls:
            body["controls"] = controls
    if request.text_layout:
        body["text_layout"] = [dict(item) for item in request.text_layout]
    if request.seed is not None:
        body["random_seed"] = request.seed
    return body


def is_api_error(response: httpx.Response) -> bool:
    """Whether an error answer is the Recraft API's own refusal, so a 500 was not billed.

    The API's errors come as plain text or JSON (recraft-api.md 1.8); it documents no
    JSON error schema [U], so a JSON body (by its ``Content-Type``) holding an error
    ``message`` or ``code``, or an ``error`` string or object (the shape of OpenAI-style
    proxies such as ElkAPI), counts. Plain text, HTML (a gateway's page) or a JSON body
    without any of these does not: such a 500 may come from after the work was done.
    """
    data = json_object_of(response)
    if data is None:
        return False
    error = data.get("error")
    if isinstance(error, Mapping):
        error = error.get("message") or error.get("code")
    candidates = (data.get("message"), data.get("code"), error)
    return any(
        (isinstance(v, str) and v.strip()) or (isinstance(v, int) and not isinstance(v, bool))
        for v in candidates
    )


def _credits(body: Mapping[str, Any]) -> float | None:
    for holder in (body, body.get("metadata") if isinstance(body.get("metadata"), Mapping) else {}):
        value = holder.get("credits") if isinstance(holder, Mapping) else None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    return None


def _items(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The image entries of an answer, in server order, in one shape: dicts."""
    raw: Any = body.get("data")
    if not isinstance(raw, list):
        image = body.get("image")
        if isinstance(image, Mapping):
            raw = [image]
        elif isinstance(image, list):
            raw = image
        elif isinstance(image, str):
            raw = [image]
        else:
            raw = []
    items = []
    for entry in raw:
        if isinstance(entry, str):
            items.append({"url": entry})
        elif isinstance(entry, Mapping):
            items.append(dict(entry))
    meta = body.get("metadata")
    meta_images = meta.get("images") if isinstance(meta, Mapping) else None
    if isinstance(meta_images, list):
        for item, extra in zip(items, meta_images):
            if isinstance(extra, Mapping) and not item.get("image_id") and extra.get("image_id"):
                item["image_id"] = extra["image_id"]
    return items


def _request_id(body: Mapping[str, Any], response: httpx.Response) -> str | None:
    meta = body.get("metadata")
    if isinstance(meta, Mapping) and isinstance(meta.get("request_id"), str):
        return meta["request_id"]
    return request_id_of(response)


class RecraftProvider(HttpProvider):
    """Pictures from the Recraft REST API (or a proxy speaking it).

    Connection arguments (``auth``, ``policy``, ``limiter``, ``sleep``, ``clock``,
    ``rand``, ``max_download_bytes``, ``allow_http``, ``on_retry``, ``owns_client``)
    are those of :class:`~.httpbase.HttpProvider`; ``response_format`` (``url`` or ``b64_json``) and ``file_field`` (the multipart
    field of a tool's picture) are the profile options described in the module
    docstring.
    """

    protocol = "recraft"

    def __init__(
        self,
        name: str = "recraft",
        *,
        base_url: str = DEFAULT_BASE_URL,
        token: str | Secret,
        client: httpx.Client,
        token_env: str | None = TOKEN_ENV,
        response_format: str = "url",
        file_field: str = "file",
        **kwargs: Any,
    ):
        if response_format not in _RESPONSE_FORMATS:
            raise PlanError(
                f"provider {name}: response_format must be url or b64_json (got {response_format!r})"
            )
        if not file_field or not isinstance(file_field, str):
            raise PlanError(f"provider {name}: file_field must be a field name (got {file_field!r})")
        super().__init__(name, base_url=base_url, token=token, client=client, token_env=token_env, **kwargs)
        self.response_format = response_format
        self.file_field = file_field

    # -- plumbing ---------------------------------------------------------------

    def api_error(self, response: httpx.Response) -> bool:
        return is_api_error(response)

    def _post(
        self, path: str, *, what: str, asset: str | None, stats: CallStats, images: int = 0, **kwargs: Any
    ) -> tuple[dict[str, Any], httpx.Response]:
        # Every Recraft call costs money: all are paid POSTs.
        return self._call("POST", path, what=what, asset=asset, paid=True, images=images, stats=stats, **kwargs)

    def _pictures(
        self,
        body: Mapping[str, Any],
        *,
        count: int,
        expect: str | None,
        asset: str | None,
        what: str,
        status: int,
        request_id: str | None,
    ) -> list[Picture]:
        items = _items(body)
        if len(items) < count:
            raise self._ctx.error(
                BadResultError,
                f"{what} returned {len(items)} picture(s) where {count} were asked for; the "
                "call was probably billed. Nothing was cached; the next build will try again",
                status=status,
                request_id=request_id,
                asset=asset,
            )
        pictures = []
        for item in items[:count]:
            meta = {"image_id": str(item["image_id"])} if item.get("image_id") else {}
            if isinstance(item.get("b64_json"), str) and item["b64_json"]:
                pictures.append(self._downloader.from_b64(item["b64_json"], asset=asset, expect=expect, meta=meta))
            elif isinstance(item.get("url"), str) and item["url"]:
                pictures.append(self._downloader.fetch(item["url"], asset=asset, expect=expect, meta=meta))
            else:
                raise self._ctx.error(
                    BadResultError,
                    f"{what} returned an image entry with neither url nor b64_json; the call "
                    "was probably billed. Nothing was cached",
                    status=status,
                    request_id=request_id,
                    asset=asset,
                )
        return pictures

    def _style_hint(self, request: GenerationRequest) -> Callable[[int, str], str | None]:
        def hint(status: int, text: str) -> str | None:
            if "style" not in text.lower() or not request.style:
                return None
            if _is_v4(request.model):
                return (
                    f"V4 models take no style enum; remove style {request.style!r} for model "
                    f"{request.model}, or use model recraftv3"
                )
            table = STYLES.get(_base_model(request.model))
            if table is None:
                return None
            if request.style not in table:
                return (
                    f"style {request.style!r} is not known for model {request.model}; allowed "
                    f"styles: {', '.join(sorted(table))}"
                )
            subs = table[request.style]
            if request.substyle and request.substyle not in subs:
                allowed = ", ".join(sorted(subs)) or "none"
                return (
                    f"substyle {request.substyle!r} is not known for style {request.style} on "
                    f"model {request.model}; allowed substyles: {allowed}"
                )
            return None

        return hint

    # -- Provider interface -----------------------------------------------------

    def generate(self, request: GenerationRequest, *, asset: str) -> GenerationResult:
        """One ``POST images/generations`` for ``request.n`` pictures, then fetch them."""
        try:
            body = recraft_body(request, response_format=self.response_format)
        except ValueError as exc:
            raise self._reject(f"{exc}", asset=asset) from exc
        return self._generation("images/generations", request, asset=asset, json_body=body)

    def _generation(self, path: str, request: GenerationRequest, *, asset: str, **send: Any) -> GenerationResult:
        """One paid POST that makes ``request.n`` pictures (a generation, or an image
        operation), then its pictures fetched: the one way a Recraft answer becomes a
        :class:`GenerationResult` (credits as the server says, resends counted)."""
        what = f"{request.operation or 'generation'} (POST /{path})"
        stats = CallStats()
        with stats.on_errors():
            with self._slot():  # the POST only: the pictures are fetched after it is given back
                answer, response = self._post(
                    path, what=what, asset=asset, stats=stats, images=request.n, hint=self._style_hint(request), **send
                )
            request_id = _request_id(answer, response)
            pictures = self._pictures(
                answer,
                count=request.n,
                expect="svg" if request.vector else "raster",
                asset=asset,
                what=what,
                status=response.status_code,
                request_id=request_id,
            )
        meta = {"request_id": request_id} if request_id else {}
        return GenerationResult(pictures=pictures, credits=_credits(answer), meta=meta, resends=stats.resends)

    def supports(self, operation: str) -> bool:
        return CAPABILITIES["recraft"].supports(operation) and operation in TOOL_ENDPOINTS

    def transform(
        self,
        operation: str,
        picture: Picture,
        params: Mapping[str, Any],
        *,
        asset: str,
    ) -> TransformResult:
        """Run one tool endpoint on ``picture`` (multipart upload).

        ``params`` are used by ``image_to_image`` only: ``prompt`` and ``strength``
        (0..1) are required; ``model``, ``style``, ``substyle``, ``style_id``,
        ``negative_prompt`` and ``seed`` are passed on when given. Other keys (such
        as a step's ``engine``) are not the server's business and are ignored.
        """
        path = TOOL_ENDPOINTS.get(operation)
        if path is None:
            return super().transform(operation, picture, params, asset=asset)
        if picture.is_svg:
            raise self._reject(
                f"{operation} needs a raster picture, got an SVG; rasterize it first or "
                "run this step before vectorizing",
                asset=asset,
            )
        if len(picture.data) > MAX_UPLOAD_BYTES:
            raise self._reject(
                f"{operation}: the picture is {len(picture.data)} bytes, over the API's "
                f"{MAX_UPLOAD_BYTES} byte upload limit; resize or compress it first",
                asset=asset,
            )
        form: dict[str, str] = {"response_format": self.response_format}
        expect: str | None = "svg" if operation == "vectorize" else "raster"
        if operation == "image_to_image":
            form.update(self._image_to_image_form(params, asset=asset))
            style = params.get("style")
            expect = "svg" if style in ("vector_illustration", "icon") or str(params.get("model", "")).endswith("_vector") else "raster"
        ext = picture.media_type.split("/")[-1].replace("jpeg", "jpg")
        files = {self.file_field: (f"image.{ext}", picture.data, picture.media_type)}
        what = f"{operation} (POST /{path})"
        stats = CallStats()
        with stats.on_errors():
            answer, response = self._post(path, what=what, asset=asset, stats=stats, data=form, files=files)
            request_id = _request_id(answer, response)
            (result,) = self._pictures(
                answer,
                count=1,
                expect=expect,
                asset=asset,
                what=what,
                status=response.status_code,
                request_id=request_id,
            )
        meta = {"request_id": request_id} if request_id else {}
        return TransformResult(picture=result, credits=_credits(answer), meta=meta, resends=stats.resends)

    def _image_to_image_form(self, params: Mapping[str, Any], *, asset: str) -> dict[str, str]:
        prompt = params.get("prompt")
        strength = params.get("strength")
        if not isinstance(prompt, str) or not prompt.strip():
            raise self._reject("image_to_image needs a prompt", asset=asset)
        if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not 0 <= strength <= 1:
            raise self._reject(
                f"image_to_image needs a strength between 0 and 1 (got {strength!r})", asset=asset
            )
        form = {"prompt": prompt, "strength": f"{float(strength):g}", "n": "1"}
        if params.get("style_id"):
            form["style_id"] = str(params["style_id"])
        elif params.get("style"):
            form["style"] = str(params["style"])
            if params.get("substyle"):
                form["substyle"] = str(params["substyle"])
        for key, field in (("model", "model"), ("negative_prompt", "negative_prompt"), ("seed", "random_seed")):
            if params.get(key) is not None:
                form[field] = str(params[key])
        return form

    def create_style(
        self, base_style: str, references: Sequence[Picture], *, name: str
    ) -> StyleResult:
        """``POST styles`` with the base style and 1-5 raster reference pictures."""
        if not 1 <= len(references) <= 5:
            raise self._reject(
                f"custom style {name!r} needs 1 to 5 reference images (got {len(references)})",
                asset=None,
            )
        if any(p.is_svg for p in references):
            raise self._reject(
                f"custom style {name!r}: reference images must be PNG, JPEG or WEBP, not SVG",
                asset=None,
            )
        total = sum(len(p.data) for p in references)
        if total > MAX_UPLOAD_BYTES:
            raise self._reject(
                f"custom style {name!r}: the reference images total {total} bytes, over the "
                f"API's {MAX_UPLOAD_BYTES} byte limit; use smaller or fewer images",
                asset=None,
            )
        files = [
            (
                f"file{i}",
                (f"reference{i}.{p.media_type.split('/')[-1].replace('jpeg', 'jpg')}", p.data, p.media_type),
            )
            for i, p in enumerate(references, start=1)
        ]
        what = f"creating custom style {name!r} (POST /styles)"
        stats = CallStats()
        with stats.on_errors():
            answer, response = self._post(
                "styles", what=what, asset=None, stats=stats, data={"style": base_style}, files=files
            )
            style_id = answer.get("id") or answer.get("style_id")
            request_id = _request_id(answer, response)
            if not isinstance(style_id, str) or not style_id:
                raise self._ctx.error(
                    BadResultError,
                    f"{what} answered without a style id; the call may have been billed",
                    status=response.status_code,
                    request_id=request_id,
                )
        meta = {"request_id": request_id} if request_id else {}
        return StyleResult(style_id=style_id, credits=_credits(answer), meta=meta, resends=stats.resends)

    # -- pictures made from pictures (providers.imageops) ---------------------------

    def generate_from_image(
        self, request: GenerationRequest, image: Picture, *, mask: Picture | None = None, asset: str
    ) -> GenerationResult:
        """``request.n`` pictures from ``image`` (and ``mask``) through the endpoint of
        ``request.operation`` (imageToImage, inpaint, replaceBackground,
        generateBackground, variateImage): one multipart POST, then fetch them. The
        input is checked against the API's limits first (RequestRejected, nothing paid)."""
        path = imageops.RECRAFT_IMAGE_ENDPOINTS.get(request.operation or "")
        if path is None:
            raise self._reject(f"Recraft has no image operation {request.operation!r}", asset=asset)
        try:
            size = imageops.check_input(image, request.operation or "")
            body = recraft_body(request, response_format=self.response_format)
            form = imageops.recraft_image_form(request, body, size)
            files = [("image", (f"image.{_ext(image)}", image.data, image.media_type))]
            if request.operation in ("inpaint", "generate_background"):
                if mask is None:
                    raise imageops.InputProblem(f"{request.operation} needs a mask")
                fixed = imageops.normalise_mask(mask, size)
                files.append(("mask", ("mask.png", fixed.data, fixed.media_type)))
        except ValueError as exc:  # InputProblem, or a request recraft_body cannot express
            raise self._reject(str(exc), asset=asset) from exc
        return self._generation(path, request, asset=asset, data=form, files=files)


def _ext(picture: Picture) -> str:
    return picture.media_type.split("/")[-1].replace("jpeg", "jpg")
