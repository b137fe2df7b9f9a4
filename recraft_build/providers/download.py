"""Fetch and check result pictures: never store something that is not a usable image.

Result URLs expire (Recraft about 24 h, Replicate about 1 h), so providers fetch
them the moment the API answers. Every picture, fetched or sent inline as base64,
goes through the same checks before it is returned:

* size: streamed with a cap (default 50 MB, counted on the decoded body, so a
  compressed bomb is cut off too); a ``Content-Length`` over the cap is refused
  before reading;
* kind: a ``Content-Type`` that is clearly not an image (HTML, JSON, text) is
  refused; otherwise the **magic bytes** decide (PNG, WEBP, JPEG or SVG). When the
  server's ``Content-Type`` disagrees with the bytes, the bytes win (CDNs label
  files loosely) and the picture gets the media type of what it really is;
* raster: decoded fully with Pillow (``verify`` then ``load``), so a truncated or
  corrupt file is caught; at most ``max_pixels`` pixels, by default the one limit
  every step decodes and renders within (:data:`recraft_build.steps.images.MAX_PIXELS`,
  checked by the same function), so a picture accepted here never fails a later step
  for its size;
* SVG: UTF-8 XML with no DOCTYPE or entity declarations (so no entity expansion
  and no external fetches), root element ``svg``, no active content (scripts, event
  attributes, ``javascript:`` links, ``<foreignObject>``, external references: the
  rule of :mod:`recraft_build.steps.svgsafe`, the same the steps apply), and a
  ``viewBox``. When the ``viewBox`` is missing it is **added** from numeric
  ``width``/``height`` (unitless or ``px``) as ``0 0 width height``, inserted into the
  root tag without re-serialising the rest of the file; with neither, the SVG is
  refused (it could not be scaled predictably).

Download requests carry **no** ``Authorization`` (or cookie) header, whatever the
client's defaults: the URLs are public and signed, often on a third-party host, and
a token must never be sent there. GETs are idempotent, so 429/5xx and network
failures are retried with the policy's backoff; 403/404/410 (expired or unknown
URL) are not. A download has an overall deadline (the policy's
``download_deadline``, :mod:`.deadline`): a file trickled in one byte at a time is cut
there and fetched again. Every final failure is a
:class:`~recraft_build.errors.BadResultError` on the asset, and nothing is cached.
"""

from __future__ import annotations

import base64
import binascii
import io
import random
import re
import time
import xml.etree.ElementTree as ET
from typing import Any, Callable, Mapping

import httpx

from recraft_build.domain import Picture
from recraft_build.domain import sniff_media_type
from recraft_build.errors import BadResultError
from recraft_build.errors import StepError
from recraft_build.providers.deadline import exchange
from recraft_build.providers.http import CallContext, HttpPolicy, retry_after_seconds
from recraft_build.steps.svgsafe import UnsafeSvg, check_svg

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_PIXELS",
    "Downloader",
    "PictureCheckError",
    "check_picture",
    "sniff_media_type",
]

#: Largest picture body accepted, in bytes.
DEFAULT_MAX_BYTES = 50 * 1024 * 1024
#: Largest raster accepted, in pixels: the steps' own limit, so what is accepted here
#: can be decoded by every step (below Pillow's decompression-bomb warning too).
#: (Equal to steps.images.MAX_PIXELS, which a test checks: Pillow and the step helpers
#: are imported only where a picture is checked, so `status` never loads them.)
DEFAULT_MAX_PIXELS = 8192 * 8192

_NOT_IMAGE_TYPES = ("text/html", "application/json", "text/plain", "text/javascript", "application/javascript")
_SVG_NS = "{http://www.w3.org/2000/svg}"
_PIL_FORMATS = {"image/png": "PNG", "image/webp": "WEBP", "image/jpeg": "JPEG"}
_LENGTH_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(px)?\s*$")
_ROOT_RE = re.compile(r"<(?:[A-Za-z_][\w.-]*:)?svg(?=[\s/>])")
_STRIP_HEADERS = ("authorization", "proxy-authorization", "cookie")


class PictureCheckError(ValueError):
    """A picture failed a check; the message says which.

    Raised by :func:`check_picture`; providers convert it to
    :class:`~recraft_build.errors.BadResultError` naming the asset and provider.
    """


_Bad = PictureCheckError


def _check_raster(data: bytes, media_type: str, max_pixels: int) -> None:
    from PIL import Image

    from recraft_build.steps.images import check_pixels

    fmt = _PIL_FORMATS[media_type]
    try:
        with Image.open(io.BytesIO(data), formats=[fmt]) as im:
            width, height = im.size
            try:
                check_pixels(width, height, max_pixels)
            except StepError as exc:
                raise _Bad(f"over the pixel limit: {exc}") from exc
            im.verify()
        # verify() does not decode pixel data (and says little for JPEG/WEBP): load
        # the whole image too, which catches truncated files.
        with Image.open(io.BytesIO(data), formats=[fmt]) as im:
            im.load()
    except _Bad:
        raise
    except Exception as exc:  # PIL raises OSError, SyntaxError, ValueError, ...
        raise _Bad(f"the {fmt} file does not decode ({type(exc).__name__}: {exc})") from exc


def _skip_prolog(text: str) -> int:
    """Index of the root element's ``<``, skipping the XML declaration, PIs and comments."""
    i = 0
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if text.startswith("<?", i):
            end = text.find("?>", i)
        elif text.startswith("<!--", i):
            end = text.find("-->", i)
        else:
            return i
        if end < 0:
            return -1
        i = end + (2 if text.startswith("?>", end) else 3)


def _length(value: str | None) -> float | None:
    if value is None:
        return None
    m = _LENGTH_RE.match(value)
    if not m:
        return None
    number = float(m.group(1))
    return number if number > 0 else None


def _check_svg(data: bytes) -> bytes:
    """Return the SVG (with a viewBox added if it had none) or raise :class:`_Bad`."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _Bad("the SVG is not UTF-8 text") from exc
    lowered = text.lower()
    if "<!doctype" in lowered or "<!entity" in lowered:
        raise _Bad("the SVG has a DOCTYPE or entity declarations, which are refused")
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise _Bad(f"the SVG is not well-formed XML ({exc})") from exc
    if root.tag not in ("svg", f"{_SVG_NS}svg"):
        raise _Bad(f"the XML root is <{root.tag}>, not <svg>")
    try:
        check_svg(data)
    except UnsafeSvg as exc:
        raise _Bad(f"the SVG is refused: {exc}") from exc
    view_box = root.get("viewBox")
    if view_box is not None:
        parts = view_box.replace(",", " ").split()
        try:
            numbers = [float(p) for p in parts]
        except ValueError:
            numbers = []
        if len(numbers) != 4 or numbers[2] <= 0 or numbers[3] <= 0:
            raise _Bad(f"the SVG viewBox {view_box!r} is not four numbers with a positive size")
        return data
    width, height = _length(root.get("width")), _length(root.get("height"))
    if width is None or height is None:
        raise _Bad("the SVG has no viewBox and no numeric width/height to make one from")
    start = _skip_prolog(text)
    m = _ROOT_RE.match(text, start) if start >= 0 else None
    if m is None:  # pragma: no cover - the parse above found an svg root
        raise _Bad("the SVG root tag could not be located")
    fixed = f"{text[: m.end()]} viewBox=\"0 0 {width:g} {height:g}\"{text[m.end():]}"
    try:
        ET.fromstring(fixed)
    except ET.ParseError as exc:  # pragma: no cover - defensive
        raise _Bad("adding a viewBox broke the SVG") from exc
    return fixed.encode("utf-8")


def check_picture(
    data: bytes,
    *,
    content_type: str | None = None,
    expect: str | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> tuple[bytes, str]:
    """Check ``data`` as a picture; return ``(bytes, media_type)``.

    ``expect`` is ``"svg"``, ``"raster"`` or None (either). The bytes returned differ
    from ``data`` only when a missing SVG viewBox was added. Raises
    :class:`PictureCheckError` (a ``ValueError``) saying what is wrong.
    """
    ctype = (content_type or "").split(";")[0].strip().lower()
    if ctype in _NOT_IMAGE_TYPES:
        what = "an HTML page" if ctype == "text/html" else f"{ctype} content"
        raise _Bad(f"got {what} instead of an image")
    if not data:
        raise _Bad("the picture is empty")
    media_type = sniff_media_type(data)
    if media_type is None:
        looks_html = data[:200].lstrip().lower().startswith((b"<!doctype html", b"<html"))
        raise _Bad(
            "got an HTML page instead of an image"
            if looks_html
            else f"the bytes are not a PNG, WEBP, JPEG or SVG image (starts with {data[:8]!r})"
        )
    if expect == "svg" and media_type != "image/svg+xml":
        raise _Bad(f"expected an SVG picture, got {media_type}")
    if expect == "raster" and media_type == "image/svg+xml":
        raise _Bad("expected a raster picture, got an SVG")
    if media_type == "image/svg+xml":
        return _check_svg(data), media_type
    _check_raster(data, media_type, max_pixels)
    return data, media_type


class Downloader:
    """Fetches result URLs (and decodes ``b64_json``) into checked :class:`Picture` s.

    Thread-safe; shares the provider's ``httpx.Client`` (one connection pool) but
    never sends its credentials. ``ctx`` names the provider in messages.
    """

    def __init__(
        self,
        client: httpx.Client,
        *,
        ctx: CallContext,
        policy: HttpPolicy | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        sleep: Callable[[float], None] = time.sleep,
        rand: Callable[[], float] = random.random,
        wall_clock: Callable[[], float] = time.time,
    ):
        # The context is only for messages: drop any token so it cannot be sent.
        self._ctx = CallContext(ctx.provider, token_env=ctx.token_env, on_retry=ctx.on_retry)
        self._client = client
        self._policy = policy or HttpPolicy()
        self.max_bytes = max_bytes
        self.max_pixels = max_pixels
        self._sleep = sleep
        self._rand = rand
        self._wall_clock = wall_clock

    def _bad(self, message: str, *, asset: str | None, status: int | None = None) -> BadResultError:
        err = self._ctx.error(BadResultError, message, status=status, asset=asset)
        assert isinstance(err, BadResultError)
        return err

    def picture(
        self,
        data: bytes,
        *,
        asset: str | None,
        content_type: str | None = None,
        expect: str | None = None,
        meta: Mapping[str, Any] | None = None,
        source: str = "the result",
    ) -> Picture:
        """Check bytes already in hand and wrap them as a :class:`Picture`."""
        if len(data) > self.max_bytes:
            raise self._bad(
                f"{source} is {len(data)} bytes, over the {self.max_bytes} byte limit", asset=asset
            )
        try:
            body, media_type = check_picture(
                data, content_type=content_type, expect=expect, max_pixels=self.max_pixels
            )
        except _Bad as exc:
            raise self._bad(f"{source} is not a usable picture: {exc}; nothing was cached", asset=asset) from exc
        return Picture(body, media_type, dict(meta or {}))

    def from_b64(
        self,
        encoded: str,
        *,
        asset: str | None,
        expect: str | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> Picture:
        """Decode a ``b64_json`` field (or a ``data:`` URI) and check it."""
        text = encoded.strip()
        content_type = None
        if text.startswith("data:"):
            header, _, text = text.partition(",")
            content_type = header[5:].split(";")[0] or None
        if len(text) * 3 // 4 > self.max_bytes:
            raise self._bad(
                f"the inline picture is over the {self.max_bytes} byte limit", asset=asset
            )
        try:
            data = base64.b64decode("".join(text.split()), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise self._bad(f"the inline (base64) picture does not decode: {exc}", asset=asset) from exc
        return self.picture(
            data, asset=asset, content_type=content_type, expect=expect, meta=meta,
            source="the inline picture",
        )

    def fetch(
        self,
        url: str,
        *,
        asset: str | None,
        expect: str | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> Picture:
        """GET ``url`` (no credentials), check it, return it. Raises :class:`BadResultError`."""
        if url.startswith("data:"):
            return self.from_b64(url, asset=asset, expect=expect, meta=meta)
        shown = _show_url(url)
        policy = self._policy
        attempts = policy.max_retries + 1
        problem = ""
        status: int | None = None
        cause: BaseException | None = None
        for attempt in range(attempts):
            delay: float | None = None
            try:
                request = self._client.build_request("GET", url, timeout=policy.timeout())
            except (httpx.InvalidURL, httpx.UnsupportedProtocol, ValueError, TypeError) as exc:
                raise self._bad(f"the result URL {shown} is not usable ({exc})", asset=asset) from exc
            for name in _STRIP_HEADERS:
                if name in request.headers:
                    del request.headers[name]

            def read(response: httpx.Response, cancelled: Callable[[], bool]) -> bytes:
                # Only a 200 has a body worth reading; an error page is not.
                return self._read_capped(response, shown, asset, cancelled) if response.status_code == 200 else b""

            try:
                # Redirects are followed by hand below (a signed URL may redirect to a CDN).
                response = self._follow(request, read, policy)
            except httpx.HTTPError as exc:
                if not isinstance(exc, httpx.TransportError) or isinstance(exc, httpx.UnsupportedProtocol):
                    raise self._bad(f"could not download {shown} ({type(exc).__name__}: {exc})", asset=asset) from exc
                # Unreachable, reset, broken off mid-body, timed out or past the deadline:
                # retry the GET.
                problem, status, cause = f"{type(exc).__name__}: {exc}", None, exc
            else:
                status = response.status_code
                if status == 200:
                    return self.picture(
                        response.content,
                        asset=asset,
                        content_type=response.headers.get("content-type"),
                        expect=expect,
                        meta=meta,
                        source=f"the download from {shown}",
                    )
                if status in (403, 404, 410):
                    raise self._bad(
                        f"the result URL {shown} answered {status}: it expired or never "
                        "existed. Nothing was cached; the next build will generate this asset again",
                        asset=asset,
                        status=status,
                    )
                if status not in policy.idempotent_retry_statuses:
                    raise self._bad(
                        f"the result URL {shown} answered {status}; nothing was cached",
                        asset=asset,
                        status=status,
                    )
                problem, cause = f"HTTP {status}", None
                asked = retry_after_seconds(response, wall_clock=self._wall_clock)
                if asked is not None and asked <= policy.retry_after_cap:
                    delay = asked
            if attempt + 1 >= attempts:
                break
            if delay is None:
                delay = policy.backoff(attempt, self._rand)
            self._ctx.retried(f"download of {shown}: {problem}; retrying in {delay:.1f} s")
            self._sleep(delay)
        err = self._bad(
            f"could not download {shown} after {attempts} attempt(s): {problem}. Nothing was "
            "cached; the next build will generate this asset again",
            asset=asset,
            status=status,
        )
        if cause is not None:
            raise err from cause
        raise err

    def _follow(self, request: httpx.Request, read: Any, policy: HttpPolicy) -> httpx.Response:
        """One GET, following up to 5 redirects (never with credentials), each hop
        under the download deadline."""
        deadline = policy.deadline(policy.download_deadline)
        for _ in range(6):
            response = exchange(self._client, request, deadline=deadline, reader=read)
            location = response.headers.get("location")
            if response.status_code not in (301, 302, 303, 307, 308) or not location:
                return response
            request = self._client.build_request("GET", request.url.join(location), timeout=request.extensions.get("timeout"))
            for name in _STRIP_HEADERS:
                if name in request.headers:
                    del request.headers[name]
        raise httpx.TooManyRedirects("more than 5 redirects", request=request)

    def _read_capped(
        self, response: httpx.Response, shown: str, asset: str | None, cancelled: Callable[[], bool] = lambda: False
    ) -> bytes:
        length = response.headers.get("content-length")
        if length and length.isdigit() and int(length) > self.max_bytes:
            raise self._bad(
                f"the download from {shown} is {int(length)} bytes, over the {self.max_bytes} "
                "byte limit; nothing was cached",
                asset=asset,
            )
        ctype = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype in _NOT_IMAGE_TYPES:
            # Do not even read an error page: say what it is.
            what = "an HTML page" if ctype == "text/html" else f"{ctype} content"
            raise self._bad(
                f"the download from {shown} is {what} instead of an image; nothing was cached",
                asset=asset,
            )
        chunks = []
        total = 0
        for chunk in response.iter_bytes():
            if cancelled():
                raise httpx.ReadTimeout("the download was abandoned at its deadline", request=response.request)
            total += len(chunk)
            if total > self.max_bytes:
                raise self._bad(
                    f"the download from {shown} is over the {self.max_bytes} byte limit; "
                    "nothing was cached",
                    asset=asset,
                )
            chunks.append(chunk)
        return b"".join(chunks)


def _show_url(url: str) -> str:
    """The URL without its query string: signed URLs carry credentials there."""
    try:
        u = httpx.URL(url)
        shown = str(u.copy_with(query=None, fragment=None))
    except Exception:
        shown = url.split("?", 1)[0]
    return shown if len(shown) <= 120 else shown[:117] + "..."
