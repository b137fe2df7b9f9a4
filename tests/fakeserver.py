"""A real HTTP server on 127.0.0.1 that speaks both provider protocols, with faults.

Used by the provider tests, the end-to-end build tests and the benchmarks; nothing
here touches the internet. One server speaks:

* **Recraft REST** under ``recraft_prefix`` (default ``/v1``; ``/recraft/v1`` for an
  ElkAPI-like proxy): ``POST images/generations`` (JSON), the tool endpoints
  ``images/removeBackground``, ``images/vectorize``, ``images/crispUpscale``,
  ``images/creativeUpscale``, ``images/imageToImage`` (multipart) and ``POST styles``.
  Answers in the official shape or, with ``recraft_shape="elkapi"``, the proxy's
  (``metadata.credits``, ``metadata.images[].image_id``).
* **Replicate predictions** under ``replicate_prefix`` (default ``/v1``;
  ``/replicate/v1`` for a kkiai-like proxy): ``POST models/{owner}/{name}/predictions``
  honouring ``Prefer: wait=N`` (when ``honour_wait``), ``GET predictions/{id}``,
  ``POST predictions/{id}/cancel`` and ``GET predictions`` (the listing: newest first,
  ``list_page_size`` a page, ``created_after`` honoured, a ``next`` URL with a
  ``cursor``; ``list_predictions=False`` answers 404 there, like a proxy without it).
  With ``foreign_urls`` (default on) the prediction's ``urls`` and the listing's
  ``next`` point at ``https://api.replicate.com``, like the proxies do: a client that
  follows them fails the test.
* **Result files** under ``/files/`` (no auth; the server records any
  ``Authorization`` header that arrives there in ``download_auth_seen``).

Pictures are made with Pillow at the requested size (PNG or WEBP; SVG for vector
styles and ``*_vector`` models), served by URL or inline as base64.

It checks the ``Authorization`` header (``auth="bearer"``: ``Bearer <token>``;
``"raw"``: the bare token) and **counts paid calls** (``counts["generations"]``,
``["images"]``, ``["tools"]``, ``["styles"]``, ``["creates"]``; :attr:`paid_calls`
sums the calls) so tests can assert that nothing was paid for twice.

Faults are injected with :meth:`FakeServer.add_fault` (see :class:`Fault`), by route
(``generate``, ``tool``, ``style``, ``create``, ``poll``, ``list``, ``cancel``,
``download`` or ``*``), either for the first ``times`` matching requests or at a
``rate``. Rates are exact shares: one draw per request is split among the matching
rate faults (15 % 500s and 10 % drops are 15 % and 10 % of requests). The draw is
seeded by ``seed``, the request (route, path, body) and how many times that same
request came before, so it does not depend on which thread got there first: a
multi-threaded run under faults is reproducible. Result-file and prediction ids are
derived the same way.

The server **bills only answered calls**, as the real APIs do: a call is counted as
paid when the work is done, whatever happens to the answer afterwards. Faults that
happen *before* the work (``drop_before``, ``status`` without ``after_work``) are not
paid; ``drop_after``, ``status`` with ``after_work=True`` and ``trickle`` do the (paid)
work and then lose or slow the answer, so a client that sends such a call again is
seen paying twice. A ``status`` fault's body is the protocol's own error shape
(``error_body="api"``: Recraft's JSON ``{"code", "message"}``, Replicate's problem
details), or plain text (``"text"``); by default (``"auto"``) Replicate answers before
the work get its problem details and everything else the text as given.

Use::

    with FakeServer(token="t", latency=0.05) as server:
        base = server.recraft_base      # http://127.0.0.1:PORT/v1
        server.add_fault("generate", "status", status=429, retry_after="0", times=2)
        ...
        assert server.paid_calls == 3
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import socket
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qs, urlencode

import httpx
from PIL import Image, ImageDraw

__all__ = [
    "FakeClock",
    "FakeServer",
    "Fault",
    "LocalOnlyTransport",
    "ROUTES",
    "fake_server",
    "local_client",
    "make_raster",
    "make_svg",
]

#: Route names faults can target ("edit": the image operations, see _EDIT_PATHS).
ROUTES = ("generate", "tool", "style", "create", "poll", "list", "cancel", "download", "edit", "*")
_FAULT_KINDS = (
    "status",  # answer `status` with `body` (Retry-After if given); before the work unless after_work
    "drop_before",  # close the connection without reading the body or answering
    "drop_after",  # read the body, do the (paid) work, close without answering
    "slow",  # sleep `delay` seconds, then answer normally (the work counts)
    "trickle",  # do the (paid) work, then send the answer one byte every `delay` seconds
    "html",  # answer 200 with an HTML page (downloads) or HTML instead of JSON (API)
    "html_as_image",  # download: an HTML page labelled image/png
    "oversize",  # download: a body of `size` bytes (declared unless declare_length=False)
    "truncate",  # download: declare the full length, send half, close
    "not_found",  # download: 404, as for an expired URL
    "prediction_failed",  # replicate: the prediction ends with status failed, error `body`
    "prediction_canceled",  # replicate: the prediction ends canceled
)

VECTOR_STYLES = {"vector_illustration", "icon"}
_V3_STYLES = {"any", "realistic_image", "digital_illustration", "vector_illustration", "logo_raster"}
_V2_STYLES = {"realistic_image", "digital_illustration", "vector_illustration", "icon"}
_SIZE_RE = re.compile(r"^(\d{2,5})x(\d{2,5})$")
_RATIO_RE = re.compile(r"^(\d{1,3}):(\d{1,3})$")
_REPLICATE_MODELS = {
    "recraft-ai/recraft-v3": "raster",
    "recraft-ai/recraft-v3-svg": "svg",
    "recraft-ai/recraft-20b": "raster",
    "recraft-ai/recraft-20b-svg": "svg",
    "recraft-ai/recraft-v4": "raster",
    "recraft-ai/recraft-v4-pro": "raster",
    "recraft-ai/recraft-v4-svg": "svg",
    "recraft-ai/recraft-remove-background": "tool:remove_background",
    "recraft-ai/recraft-vectorize": "tool:vectorize",
    "recraft-ai/recraft-crisp-upscale": "tool:crisp_upscale",
    "recraft-ai/recraft-creative-upscale": "tool:creative_upscale",
    # FLUX through Replicate: pictures from a prompt; Kontext also from `input_image`.
    "black-forest-labs/flux-1.1-pro": "raster",
    "black-forest-labs/flux-1.1-pro-ultra": "raster",
    "black-forest-labs/flux-kontext-pro": "raster",
    "black-forest-labs/flux-kontext-max": "raster",
}
_TOOL_PATHS = {
    "images/removeBackground": "remove_background",
    "images/vectorize": "vectorize",
    "images/crispUpscale": "crisp_upscale",
    "images/creativeUpscale": "creative_upscale",
    "images/imageToImage": "image_to_image",
}


#: Recraft's image operations (pictures made from a picture: GenerateImageResponse,
#: ``n`` pictures): answered by FakeServer._edit, counted as tools (paid) and edits.
_EDIT_PATHS = {
    "images/imageToImage": "image_to_image",
    "images/inpaint": "inpaint",
    "images/replaceBackground": "replace_background",
    "images/generateBackground": "generate_background",
    "images/variateImage": "variate",
}


@dataclass
class Fault:
    """One injected fault; see the module docstring and ``_FAULT_KINDS``."""

    route: str
    kind: str
    status: int = 500
    body: str = ""
    content_type: str = "text/plain"
    retry_after: str | None = None
    delay: float = 0.0
    size: int = 0
    declare_length: bool = True
    after_work: bool = False
    times: int | None = None
    rate: float = 1.0
    error_body: str = "auto"  # status faults: "api" (the protocol's error shape), "text" or "auto"
    trickle_headers: bool = False  # trickle: the status line and headers too, not only the body
    fired: int = 0

    def __post_init__(self) -> None:
        if self.route not in ROUTES:
            raise ValueError(f"unknown route {self.route!r} (known: {ROUTES})")
        if self.kind not in _FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r} (known: {_FAULT_KINDS})")
        if self.error_body not in ("auto", "api", "text"):
            raise ValueError(f"error_body must be auto, api or text (got {self.error_body!r})")
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"rate must be between 0 and 1 (got {self.rate})")


def _color(seed: str) -> tuple[int, int, int]:
    d = hashlib.sha256(seed.encode()).digest()
    return d[0], d[1], d[2]


def make_raster(width: int, height: int, fmt: str = "PNG", seed: str = "", mode: str = "RGB") -> bytes:
    """A small, quick-to-encode picture of the given size: a colour from ``seed`` plus a box."""
    fill = _color(seed) + ((255,) if mode == "RGBA" else ())
    im = Image.new(mode, (width, height), fill if mode == "RGBA" else fill[:3])
    ImageDraw.Draw(im).rectangle(
        [width // 4, height // 4, width // 2, height // 2], fill=(0, 0, 0, 255) if mode == "RGBA" else (0, 0, 0)
    )
    if mode == "RGBA":
        ImageDraw.Draw(im).rectangle([0, 0, width // 8, height // 8], fill=(0, 0, 0, 0))
    buf = io.BytesIO()
    if fmt.upper() == "WEBP":
        im.save(buf, "WEBP", quality=50, method=0)
    else:
        im.save(buf, "PNG", compress_level=1)
    return buf.getvalue()


def make_svg(width: int, height: int, seed: str = "", view_box: bool = True) -> bytes:
    """A small SVG of the given size (``view_box=False`` leaves the viewBox out)."""
    r, g, b = _color(seed)
    vb = f' viewBox="0 0 {width} {height}"' if view_box else ""
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}"{vb}>'
        f'<rect width="{width}" height="{height}" fill="#{r:02x}{g:02x}{b:02x}"/>'
        f'<circle cx="{width // 2}" cy="{height // 2}" r="{min(width, height) // 4}" fill="#000000"/>'
        f"</svg>"
    ).encode()


def _parse_time(text: str) -> float | None:
    """Seconds since the epoch of an ISO 8601 UTC time (``...Z`` or ``+00:00``), or None."""
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return (when if when.tzinfo else when.replace(tzinfo=timezone.utc)).timestamp()


def _dims(size: str | None, aspect_ratio: str | None) -> tuple[int, int] | None:
    if aspect_ratio and aspect_ratio != "Not set":
        m = _RATIO_RE.match(aspect_ratio)
        if not m:
            return None
        a, b = int(m.group(1)), int(m.group(2))
        if not a or not b:
            return None
        scale = (1024 * 1024 / (a * b)) ** 0.5
        return max(1, round(a * scale)), max(1, round(b * scale))
    if size:
        m = _SIZE_RE.match(size)
        if m:
            return int(m.group(1)), int(m.group(2))
        m = _RATIO_RE.match(size)  # V4 models accept a ratio in size
        if m:
            return _dims(None, size)
        return None
    return 1024, 1024


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256
    fake: "FakeServer"

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Dropped connections are the point of some tests: keep the output quiet.
        pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; without TCP_NODELAY, Nagle plus the
    # client's delayed ACK adds ~40 ms per answer, which is the server's fault, not
    # the client's, and would swamp the benchmark.
    disable_nagle_algorithm = True
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.fake._count("connections")

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def do_GET(self) -> None:
        self.server.fake._dispatch(self, "GET")

    def do_POST(self) -> None:
        self.server.fake._dispatch(self, "POST")

    def do_PUT(self) -> None:
        self.server.fake._dispatch(self, "PUT")


class _Drop(Exception):
    """Raised inside a handler to drop the connection without an answer."""


@dataclass
class _Prediction:
    id: str
    model: str
    input: dict[str, Any]
    kind: str
    ready_at: float
    status: str = "starting"
    output: Any = None
    error: str | None = None
    final: str = "succeeded"
    final_error: str | None = None
    created: float = 0.0  # wall clock, for created_at and the listing


@dataclass
class RequestRecord:
    """One request as the server saw it (headers that matter, never the token)."""

    method: str
    path: str
    route: str
    had_auth: bool
    auth_ok: bool
    prefer: str | None = None


class FakeServer:
    """The server; see the module docstring. Thread-safe; start/stop or use ``with``."""

    def __init__(
        self,
        *,
        token: str = "test-token-0123456789",
        auth: str = "bearer",
        recraft_prefix: str = "/v1",
        replicate_prefix: str = "/v1",
        latency: float = 0.0,
        tool_latency: float = 0.0,
        raster_format: str = "PNG",
        recraft_shape: str = "official",
        foreign_urls: bool = True,
        honour_wait: bool = True,
        output_as_list: bool = False,
        svg_view_box: bool = True,
        unique_images: bool = True,
        check_styles: bool = True,
        file_fields: tuple[str, ...] = ("file", "image"),
        seed: int = 1234,
        credits_per_image: int = 40,
        list_predictions: bool = True,
        list_page_size: int = 100,
    ):
        self.token = token
        self.auth = auth
        self.recraft_prefix = "/" + recraft_prefix.strip("/")
        self.replicate_prefix = "/" + replicate_prefix.strip("/")
        self.latency = latency
        self.tool_latency = tool_latency
        self.raster_format = raster_format.upper()
        self.recraft_shape = recraft_shape
        self.foreign_urls = foreign_urls
        self.honour_wait = honour_wait
        self.output_as_list = output_as_list
        self.svg_view_box = svg_view_box
        self.unique_images = unique_images
        self.check_styles = check_styles
        self.file_fields = file_fields
        self.credits_per_image = credits_per_image
        self.list_predictions = list_predictions
        self.list_page_size = list_page_size
        self.seed = seed
        self.counts: Counter[str] = Counter()
        self._generating = 0
        self.peak_generating = 0
        self.requests: list[RequestRecord] = []
        self.bodies: dict[str, list[Any]] = {}
        self.download_auth_seen: list[str] = []
        self.styles: dict[str, str] = {}
        self.faults: list[Fault] = []
        self._files: dict[str, tuple[bytes, str]] = {}
        self._image_cache: dict[tuple[Any, ...], bytes] = {}
        self._predictions: dict[str, _Prediction] = {}
        self._lock = threading.Lock()
        self._seen: Counter[str] = Counter()  # how often each request (or stored file) came
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------

    def start(self) -> "FakeServer":
        httpd = _Server(("127.0.0.1", 0), _Handler)
        httpd.fake = self
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> "FakeServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._httpd is not None, "server not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def recraft_base(self) -> str:
        return self.url + self.recraft_prefix

    @property
    def replicate_base(self) -> str:
        return self.url + self.replicate_prefix

    @property
    def paid_calls(self) -> int:
        """Calls the account would be billed for (generations, tools, styles, predictions)."""
        c = self.counts
        return c["generations"] + c["tools"] + c["styles"] + c["creates"]

    def add_fault(self, route: str, kind: str, **kwargs: Any) -> Fault:
        fault = Fault(route, kind, **kwargs)
        with self._lock:
            self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._lock:
            self.faults.clear()

    def expire_files(self) -> None:
        """Forget every stored result file (their URLs now answer 404, like expired ones)."""
        with self._lock:
            self._files.clear()

    def auth_header_value(self) -> str:
        return self.token if self.auth == "raw" else f"Bearer {self.token}"

    # -- helpers --------------------------------------------------------------------

    def _count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self.counts[key] += n

    def _record_body(self, route: str, body: Any) -> None:
        with self._lock:
            self.bodies.setdefault(route, []).append(body)

    def _occurrence(self, key: str) -> int:
        """How many times ``key`` came before (0 the first time); thread-safe."""
        with self._lock:
            k = self._seen[key]
            self._seen[key] += 1
        return k

    def _draw(self, key: str) -> float:
        """A number in [0, 1) for the k-th arrival of request ``key``: reproducible
        whatever the order in which threads arrive."""
        digest = hashlib.sha256(f"{self.seed}|{key}|{self._occurrence(key)}".encode()).digest()
        return int.from_bytes(digest[:7], "big") / 2**56

    def _pick_fault(self, route: str, key: str = "") -> Fault | None:
        """The fault for this request, if any: ``times`` faults first come, first
        served; rate faults share one draw (so their rates are exact shares)."""
        draw: float | None = None
        with self._lock:
            faults = [f for f in self.faults if f.route in (route, "*") and (f.times is None or f.fired < f.times)]
        share = 0.0
        for f in faults:
            if f.rate >= 1.0:
                chosen = True
            else:
                if draw is None:
                    draw = self._draw(f"fault|{route}|{key}")
                share += f.rate
                chosen = draw < share
            if chosen:
                with self._lock:
                    if f.times is not None and f.fired >= f.times:
                        continue
                    f.fired += 1
                return f
        return None

    def _store(self, data: bytes, ctype: str, ext: str) -> str:
        digest = hashlib.sha256(data).hexdigest()
        fid = hashlib.sha256(f"{self.seed}|{digest}|{self._occurrence('file|' + digest)}".encode()).hexdigest()[:32]
        with self._lock:
            self._files[fid] = (data, ctype)
        return f"{self.url}/files/{fid}.{ext}"

    def _image(self, width: int, height: int, *, vector: bool, seed: str, mode: str = "RGB") -> tuple[bytes, str, str]:
        if vector:
            return make_svg(width, height, seed, view_box=self.svg_view_box), "image/svg+xml", "svg"
        fmt = "PNG" if mode == "RGBA" else self.raster_format
        key = (width, height, fmt, mode, seed if self.unique_images else "")
        with self._lock:
            data = self._image_cache.get(key)
        if data is None:
            data = make_raster(width, height, fmt, seed if self.unique_images else "", mode=mode)
            with self._lock:
                if len(self._image_cache) < 512:
                    self._image_cache[key] = data
        return data, f"image/{fmt.lower()}", fmt.lower()

    # -- dispatch -------------------------------------------------------------------

    def _route(self, method: str, path: str) -> tuple[str, str, dict[str, str]]:
        """(protocol, route, params) for a path; protocol "" when unknown."""
        if path.startswith("/files/"):
            return "files", "download", {"id": path[len("/files/"):].split(".")[0]}
        for proto, prefix in (("recraft", self.recraft_prefix), ("replicate", self.replicate_prefix)):
            if not path.startswith(prefix + "/"):
                continue
            rest = path[len(prefix) + 1:]
            if proto == "recraft":
                if method == "POST" and rest == "images/generations":
                    return proto, "generate", {}
                if method == "POST" and rest in _EDIT_PATHS:  # before the tools: imageToImage
                    return proto, "edit", {"op": _EDIT_PATHS[rest]}
                if method == "POST" and rest in _TOOL_PATHS:
                    return proto, "tool", {"op": _TOOL_PATHS[rest]}
                if method == "POST" and rest == "styles":
                    return proto, "style", {}
            else:
                m = re.fullmatch(r"models/([\w.-]+)/([\w.-]+)/predictions", rest)
                if method == "POST" and m:
                    return proto, "create", {"model": f"{m.group(1)}/{m.group(2)}"}
                if method == "GET" and rest == "predictions":
                    return proto, "list", {}
                m = re.fullmatch(r"predictions/([\w.-]+)", rest)
                if method == "GET" and m:
                    return proto, "poll", {"id": m.group(1)}
                m = re.fullmatch(r"predictions/([\w.-]+)/cancel", rest)
                if method == "POST" and m:
                    return proto, "cancel", {"id": m.group(1)}
        return "", "", {}

    def _dispatch(self, h: _Handler, method: str) -> None:
        path, _, query = h.path.partition("?")
        proto, route, params = self._route(method, path)
        params["query"] = query
        auth = h.headers.get("Authorization")
        auth_ok = auth == self.auth_header_value()
        with self._lock:
            self.requests.append(
                RequestRecord(method, path, route or "?", auth is not None, auth_ok, h.headers.get("Prefer"))
            )
        self._count("requests")
        try:
            if route == "download":
                if auth is not None:
                    with self._lock:
                        self.download_auth_seen.append(path)
                self._download(h, params["id"])
                return
            body = self._read_body(h)
            if not route:
                self._send(h, 404, b"404 page not found", "text/plain")
                return
            # The same request (route, path, body) meets the same faults each time it
            # comes, whichever thread sends it.
            fault = self._pick_fault(route, f"{method} {path} {hashlib.sha256(body).hexdigest()}")
            if fault is not None and fault.kind == "drop_before":
                raise _Drop()
            if not auth_ok:
                self._count("unauthorized")
                if proto == "replicate":
                    self._problem(h, 401, "Unauthenticated", "You did not pass a valid authentication token")
                else:
                    self._send(h, 401, b"request unauthorized", "text/plain")
                return
            if fault is not None and fault.kind == "status" and not fault.after_work:
                self._fault_status(h, fault, proto)
                return
            if fault is not None and fault.kind == "html" and not fault.after_work:
                self._send(h, 200, b"<!DOCTYPE html><html><body>Gateway login</body></html>", "text/html")
                return
            if fault is not None and fault.kind == "slow":
                time.sleep(fault.delay)
            handler: Callable[..., Any] = getattr(self, f"_{route}")
            answer = handler(h, body, params, fault)
            if answer is None:
                return  # the handler answered (an error) itself
            status, payload, headers = answer
            if fault is not None and fault.kind == "drop_after":
                raise _Drop()
            if fault is not None and fault.kind == "status" and fault.after_work:
                self._fault_status(h, fault, proto)
                return
            data = json.dumps(payload).encode()
            if fault is not None and fault.kind == "trickle":
                self._trickle(h, status, data, "application/json", headers, fault)
                return
            self._send(h, status, data, "application/json", headers)
        except _Drop:
            self._drop(h)

    # -- low-level answers ------------------------------------------------------------

    @staticmethod
    def _read_body(h: _Handler) -> bytes:
        length = int(h.headers.get("Content-Length") or 0)
        return h.rfile.read(length) if length else b""

    @staticmethod
    def _send(
        h: _Handler, status: int, data: bytes, ctype: str, headers: dict[str, str] | None = None
    ) -> None:
        h.send_response(status)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(data)

    def _problem(self, h: _Handler, status: int, title: str, detail: str, headers: dict[str, str] | None = None) -> None:
        payload = {"type": "about:blank", "title": title, "status": status, "detail": detail}
        self._send(h, status, json.dumps(payload).encode(), "application/problem+json", headers)

    def _fault_status(self, h: _Handler, fault: Fault, proto: str) -> None:
        headers = {"X-Request-Id": uuid.uuid4().hex}
        if fault.retry_after is not None:
            headers["Retry-After"] = fault.retry_after
        text = fault.body or {429: "Too many requests", 500: "internal error"}.get(fault.status, "error")
        shape = fault.error_body
        if shape == "auto":
            # Replicate's API answers its problem details; a crash after the work
            # (after_work) leaves whatever a gateway says: text.
            plain = fault.content_type == "text/plain"
            shape = "api" if proto == "replicate" and plain and not fault.after_work else "text"
        if shape == "api" and proto == "replicate":
            self._problem(h, fault.status, "Error", text, headers)
        elif shape == "api" and proto == "recraft":
            payload = {"code": "internal_error" if fault.status >= 500 else "error", "message": text}
            self._send(h, fault.status, json.dumps(payload).encode(), "application/json", headers)
        else:
            self._send(h, fault.status, text.encode(), fault.content_type, headers)

    @staticmethod
    def _trickle(
        h: _Handler, status: int, data: bytes, ctype: str, headers: dict[str, str] | None, fault: Fault
    ) -> None:
        """Answer one byte every ``fault.delay`` seconds (the body only, or everything)."""
        head = [f"HTTP/1.1 {status} OK", f"Content-Type: {ctype}", f"Content-Length: {len(data)}", "Connection: close"]
        head += [f"{k}: {v}" for k, v in (headers or {}).items()]
        raw = ("\r\n".join(head) + "\r\n\r\n").encode()
        h.close_connection = True
        try:
            if not fault.trickle_headers:
                h.wfile.write(raw)
                h.wfile.flush()
                raw = b""
            for i in range(len(raw) + len(data)):
                h.wfile.write((raw + data)[i : i + 1])
                h.wfile.flush()
                time.sleep(fault.delay)
        except OSError:
            pass  # the client gave up: what a deadline is for

    @staticmethod
    def _drop(h: _Handler) -> None:
        h.close_connection = True
        try:
            h.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    # -- downloads --------------------------------------------------------------------

    def _download(self, h: _Handler, fid: str) -> None:
        self._count("downloads")
        fault = self._pick_fault("download", fid)
        with self._lock:
            stored = self._files.get(fid)
        if fault is not None:
            kind = fault.kind
            if kind in ("drop_before", "drop_after"):
                raise _Drop()
            if kind == "trickle" and stored is not None:
                self._trickle(h, 200, stored[0], stored[1], None, fault)
                return
            if kind == "slow":
                time.sleep(fault.delay)
            elif kind == "status":
                self._fault_status(h, fault, "files")
                return
            elif kind == "not_found":
                self._send(h, 404, b"<Error><Code>NoSuchKey</Code></Error>", "application/xml")
                return
            elif kind == "html":
                self._send(h, 200, b"<!DOCTYPE html><html><body>Sign in</body></html>", "text/html")
                return
            elif kind == "html_as_image":
                self._send(h, 200, b"<!DOCTYPE html><html><body>Sign in</body></html>", "image/png")
                return
            elif kind == "oversize":
                self._oversize(h, fault)
                return
            elif kind == "truncate" and stored is not None:
                data, ctype = stored
                h.send_response(200)
                h.send_header("Content-Type", ctype)
                h.send_header("Content-Length", str(len(data)))
                h.end_headers()
                h.wfile.write(data[: len(data) // 2])
                h.wfile.flush()
                raise _Drop()
        if stored is None:
            self._send(h, 404, b"<Error><Code>NoSuchKey</Code></Error>", "application/xml")
            return
        data, ctype = stored
        self._send(h, 200, data, ctype)

    @staticmethod
    def _oversize(h: _Handler, fault: Fault) -> None:
        size = fault.size or 60 * 1024 * 1024
        h.send_response(200)
        h.send_header("Content-Type", "image/png")
        if fault.declare_length:
            h.send_header("Content-Length", str(size))
        else:
            h.send_header("Connection", "close")
            h.close_connection = True
        h.end_headers()
        chunk = b"\x89PNG\r\n\x1a\n" + b"\0" * (64 * 1024 - 8)
        sent = 0
        try:
            while sent < size:
                part = chunk[: min(len(chunk), size - sent)]
                h.wfile.write(part)
                sent += len(part)
        except OSError:
            pass  # the client stopped reading at its cap: that is the expected outcome
        h.close_connection = True

    # -- Recraft ----------------------------------------------------------------------

    def _check_style(self, model: str, style: str | None, style_id: str | None) -> str | None:
        if style_id is not None:
            with self._lock:
                known = style_id in self.styles
            return None if known else f"style_id {style_id} not found"
        if style is None or not self.check_styles or model.startswith("recraftv4"):
            return None
        allowed = _V2_STYLES if model.startswith("recraftv2") else _V3_STYLES
        if style not in allowed:
            return f"invalid style {style!r} for model {model}"
        return None

    def _recraft_images(self, body: dict[str, Any], n: int, *, vector: bool, dims: tuple[int, int]) -> list[dict[str, Any]]:
        fmt = body.get("response_format", "url")
        items = []
        for i in range(n):
            seed = f"{body.get('prompt')}|{body.get('random_seed')}|{i}"
            data, ctype, ext = self._image(dims[0], dims[1], vector=vector, seed=seed)
            item: dict[str, Any] = {"image_id": str(uuid.uuid4())}
            if fmt == "b64_json":
                item["b64_json"] = base64.b64encode(data).decode()
            else:
                item["url"] = self._store(data, ctype, ext)
            items.append(item)
        return items

    def _recraft_answer(self, items: list[dict[str, Any]], credits: int) -> tuple[int, dict[str, Any], dict[str, str]]:
        rid = str(uuid.uuid4())
        if self.recraft_shape == "elkapi":
            urls = [it.get("url") for it in items if it.get("url")]
            payload: dict[str, Any] = {
                "created": int(time.time()),
                "data": [{k: v for k, v in it.items() if k != "image_id"} for it in items],
                "usage": None,
                "image": urls,
                "metadata": {
                    "credits": credits,
                    "images": [{"image_id": it["image_id"], "transparent": False} for it in items],
                    "request_id": rid,
                },
                "timings": None,
            }
            return 200, payload, {}
        return 200, {"created": int(time.time()), "credits": credits, "data": items}, {"X-Request-Id": rid}

    def _generate(self, h: _Handler, raw: bytes, params: dict[str, str], fault: Fault | None) -> Any:
        # How many generation requests were being answered at once, at most (peak).
        with self._lock:
            self._generating += 1
            self.peak_generating = max(self.peak_generating, self._generating)
        try:
            return self._generate_one(h, raw, params, fault)
        finally:
            with self._lock:
                self._generating -= 1

    def _generate_one(self, h: _Handler, raw: bytes, params: dict[str, str], fault: Fault | None) -> Any:
        started = time.monotonic()
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            self._send(h, 400, b"invalid JSON body", "text/plain")
            return None
        self._record_body("generate", body)
        prompt, model = body.get("prompt"), body.get("model", "recraftv3")
        n = body.get("n", 1)
        if not isinstance(prompt, str) or not prompt:
            self._send(h, 400, b"prompt is required", "text/plain")
            return None
        if not isinstance(n, int) or not 1 <= n <= 6:
            self._send(h, 400, b"n must be between 1 and 6", "text/plain")
            return None
        problem = self._check_style(model, body.get("style"), body.get("style_id"))
        if problem:
            self._send(h, 400, problem.encode(), "text/plain")
            return None
        dims = _dims(body.get("size"), None)
        if dims is None:
            self._send(h, 400, f"invalid size {body.get('size')!r}".encode(), "text/plain")
            return None
        vector = body.get("style") in VECTOR_STYLES or str(model).endswith("_vector")
        if body.get("style_id"):
            with self._lock:
                vector = self.styles.get(body["style_id"]) in VECTOR_STYLES
        items = self._recraft_images(body, n, vector=vector, dims=dims)
        # ``latency`` is the whole answer time, drawing included (a real server's
        # latency includes making the picture): 16 answers due at once must not queue
        # behind this process's own drawing, which the client would be blamed for.
        if self.latency:
            time.sleep(max(0.0, self.latency - (time.monotonic() - started)))
        self._count("generations")
        self._count("images", n)
        return self._recraft_answer(items, self.credits_per_image * n * (2 if vector else 1))

    def _multipart(self, h: _Handler, raw: bytes) -> tuple[dict[str, str], list[tuple[str, bytes, str]]]:
        ctype = h.headers.get("Content-Type", "")
        msg = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + raw)
        fields: dict[str, str] = {}
        files: list[tuple[str, bytes, str]] = []
        if not msg.is_multipart():
            return fields, files
        for part in msg.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True) or b""
            if part.get_filename() is not None:
                files.append((str(name), payload, part.get_content_type()))
            else:
                fields[str(name)] = payload.decode()
        return fields, files

    def _tool(self, h: _Handler, raw: bytes, params: dict[str, str], fault: Fault | None) -> Any:
        op = params["op"]
        fields, files = self._multipart(h, raw)
        self._record_body("tool", {"op": op, "fields": fields, "files": [f[0] for f in files]})
        picked = [f for f in files if f[0] in self.file_fields]
        if not picked:
            self._send(h, 400, b"image file is required", "text/plain")
            return None
        try:
            with Image.open(io.BytesIO(picked[0][1])) as im:
                width, height = im.size
        except Exception:
            self._send(h, 400, b"invalid image", "text/plain")
            return None
        if op == "image_to_image" and ("prompt" not in fields or "strength" not in fields):
            self._send(h, 400, b"prompt and strength are required", "text/plain")
            return None
        if self.tool_latency:
            time.sleep(self.tool_latency)
        self._count("tools")
        item = self._tool_result(op, width, height, fields.get("response_format", "url"), seed=str(len(raw)))
        credits = {"vectorize": 10, "remove_background": 10, "crisp_upscale": 4, "creative_upscale": 250}.get(op, 40)
        if op == "image_to_image":
            return self._recraft_answer([item], credits)
        return 200, {"created": int(time.time()), "credits": credits, "image": item}, {"X-Request-Id": str(uuid.uuid4())}

    def _tool_result(self, op: str, width: int, height: int, fmt: str, *, seed: str) -> dict[str, Any]:
        if op == "vectorize":
            data, ctype, ext = self._image(width, height, vector=True, seed=seed)
        elif op == "remove_background":
            data, ctype, ext = self._image(width, height, vector=False, seed=seed, mode="RGBA")
        elif op in ("crisp_upscale", "creative_upscale"):
            data, ctype, ext = self._image(width * 2, height * 2, vector=False, seed=seed)
        else:
            data, ctype, ext = self._image(width, height, vector=False, seed=seed)
        item: dict[str, Any] = {"image_id": str(uuid.uuid4())}
        if fmt == "b64_json":
            item["b64_json"] = base64.b64encode(data).decode()
        else:
            item["url"] = self._store(data, ctype, ext)
        return item

    def _edit(self, h: _Handler, raw: bytes, params: dict[str, str], fault: Fault | None) -> Any:
        """imageToImage, inpaint, replaceBackground, generateBackground, variateImage
        (recraft-api.md 1.2): multipart ``image`` (+ ``mask``), checked like the API
        checks them; ``n`` pictures the size of the input (variate: ``size``)."""
        op = params["op"]
        fields, files = self._multipart(h, raw)
        self._record_body("edit", {"op": op, "fields": fields, "files": [f[0] for f in files]})
        image = next((f for f in files if f[0] in self.file_fields), None)
        mask = next((f for f in files if f[0] == "mask"), None)
        bad = self._edit_problem(op, fields, image, mask)
        if bad:
            self._send(h, 400, bad.encode(), "text/plain")
            return None
        assert image is not None
        with Image.open(io.BytesIO(image[1])) as im:
            dims = im.size
        if op == "variate":
            dims = _dims(fields["size"], None) or dims
        model = fields.get("model", "recraftv3")
        vector = fields.get("style") in VECTOR_STYLES or model.endswith("_vector")
        if fields.get("style_id"):
            with self._lock:
                vector = self.styles.get(fields["style_id"]) in VECTOR_STYLES
        n = int(fields.get("n", "1"))
        if self.tool_latency:
            time.sleep(self.tool_latency)
        digest = hashlib.sha256(image[1]).hexdigest()[:16]
        body = {"response_format": fields.get("response_format", "url"), "random_seed": fields.get("random_seed"),
                "prompt": f"{op}|{fields.get('prompt')}|{fields.get('strength')}|{digest}"}
        items = self._recraft_images(body, n, vector=vector, dims=dims)
        self._count("tools")
        self._count("edits")
        self._count("images", n)
        return self._recraft_answer(items, (80 if vector and op != "variate" else 40) * n)

    def _edit_problem(self, op: str, fields: dict[str, str], image: Any, mask: Any) -> str:
        """Why the API would refuse this image operation ("" when it would not)."""
        if image is None:
            return "image file is required"
        try:
            with Image.open(io.BytesIO(image[1])) as im:
                size = im.size
        except Exception:
            return "invalid image"
        if op != "variate" and not fields.get("prompt"):
            return "prompt is required"
        if op == "image_to_image":
            try:
                if not 0 <= float(fields["strength"]) <= 1:
                    return "strength must be between 0 and 1"
            except (KeyError, ValueError):
                return "prompt and strength are required"
        if not 1 <= int(fields.get("n", "1")) <= 6:
            return "n must be between 1 and 6"
        if op == "variate" and _dims(fields.get("size"), None) is None:
            return "size is required"
        if op in ("inpaint", "generate_background"):
            if mask is None:
                return "mask is required"
            with Image.open(io.BytesIO(mask[1])) as m:
                if m.size != size:
                    return "mask must be the same size as the image"
                if m.mode != "L" or any(m.histogram()[1:255]):
                    return "mask must be grayscale with pixels 0 or 255"
        return self._check_style(fields.get("model", "recraftv3"), fields.get("style"), fields.get("style_id")) or ""

    def _style(self, h: _Handler, raw: bytes, params: dict[str, str], fault: Fault | None) -> Any:
        fields, files = self._multipart(h, raw)
        self._record_body("style", {"fields": fields, "files": [f[0] for f in files]})
        if "style" not in fields:
            self._send(h, 400, b"style is required", "text/plain")
            return None
        if not 1 <= len(files) <= 5:
            self._send(h, 400, b"between 1 and 5 images are required", "text/plain")
            return None
        sid = str(uuid.uuid4())
        with self._lock:
            self.styles[sid] = fields["style"]
        self._count("styles")
        return 200, {"id": sid, "credits": 40}, {}

    # -- Replicate --------------------------------------------------------------------

    def _prediction_json(self, p: _Prediction) -> dict[str, Any]:
        host = "https://api.replicate.com/v1" if self.foreign_urls else self.replicate_base
        created = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(p.created)) + f".{int(p.created % 1 * 1e6):06d}Z"
        return {
            "id": p.id,
            "model": p.model,
            "version": "hidden",
            # Files sent inline come back shortened (what Replicate echoes for them is
            # not known); text inputs come back as sent.
            "input": {k: (v[:40] + "..." if isinstance(v, str) and v.startswith("data:") else v) for k, v in p.input.items()},
            "logs": "",
            "output": p.output,
            "data_removed": False,
            "error": p.error,
            "status": p.status,
            "created_at": created,
            "source": "api",
            "urls": {
                "cancel": f"{host}/predictions/{p.id}/cancel",
                "get": f"{host}/predictions/{p.id}",
                "stream": f"https://stream.replicate.com/v1/files/{p.id}",
                "web": f"https://replicate.com/p/{p.id}",
            },
        }

    def _advance(self, p: _Prediction) -> None:
        """Move a prediction along by the clock (called with the lock held)."""
        if p.status in ("succeeded", "failed", "canceled", "aborted"):
            return
        if time.monotonic() < p.ready_at:
            p.status = "processing"
            return
        if p.final == "failed":
            p.status, p.error = "failed", p.final_error or "prediction failed"
        elif p.final == "canceled":
            p.status = "canceled"
        else:
            p.status = "succeeded"

    def _finish_output(self, p: _Prediction) -> None:
        """Make the prediction's output file (outside the lock: Pillow is slow-ish)."""
        if p.final != "succeeded" or p.output is not None:
            return
        if p.kind.startswith("tool:"):
            op = p.kind[5:]
            uri = p.input.get("image", "")
            raw = base64.b64decode(uri.split(",", 1)[1]) if "," in uri else b""
            with Image.open(io.BytesIO(raw)) as im:
                width, height = im.size
            url = self._tool_result(op, width, height, "url", seed=p.id)["url"]
        else:
            dims = _dims(p.input.get("size"), p.input.get("aspect_ratio")) or (1024, 1024)
            data, ctype, ext = self._image(dims[0], dims[1], vector=p.kind == "svg", seed=f"{p.input.get('prompt')}|{p.id}")
            url = self._store(data, ctype, ext)
        p.output = [url] if self.output_as_list else url

    def _create(self, h: _Handler, raw: bytes, params: dict[str, str], fault: Fault | None) -> Any:
        model = params["model"]
        kind = _REPLICATE_MODELS.get(model)
        if kind is None:
            self._problem(h, 404, "Not found", f"The requested model {model} was not found")
            return None
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            self._problem(h, 400, "Bad request", "invalid JSON body")
            return None
        self._record_body("create", {"model": model, **body})
        inp = body.get("input")
        if not isinstance(inp, dict):
            self._problem(h, 422, "Input validation failed", "input is required")
            return None
        if kind.startswith("tool:"):
            uri = inp.get("image")
            if not isinstance(uri, str) or not uri.startswith("data:"):
                self._problem(h, 422, "Input validation failed", "- input.image: image is required")
                return None
        else:
            if not inp.get("prompt"):
                self._problem(h, 422, "Input validation failed", "- input: prompt is required")
                return None
            style = inp.get("style")
            if self.check_styles and isinstance(style, str) and style.split("/")[0] not in (
                _V3_STYLES | _V2_STYLES | {"engraving", "line_art", "line_circuit", "linocut"}
            ):
                self._problem(h, 422, "Input validation failed", f"- input.style: style must be one of the allowed values (got {style})")
                return None
        pid = self._prediction_id(model, raw)
        latency = self.tool_latency if kind.startswith("tool:") else self.latency
        p = _Prediction(pid, model, inp, kind, ready_at=time.monotonic() + latency, created=time.time())
        if fault is not None and fault.kind == "prediction_failed":
            p.final, p.final_error = "failed", fault.body or "NSFW content detected"
        elif fault is not None and fault.kind == "prediction_canceled":
            p.final = "canceled"
        self._count("creates")
        prefer = h.headers.get("Prefer", "")
        wait = None
        m = re.fullmatch(r"\s*wait(?:=(\d+))?\s*", prefer)
        if m and self.honour_wait:
            wait = int(m.group(1) or 60)
        if wait is not None and latency <= wait:
            time.sleep(latency)
        self._finish_output(p)
        with self._lock:
            if wait is not None and latency <= wait:
                self._advance(p)
            self._predictions[pid] = p
            payload = self._prediction_json(p)
        return 201, payload, {"Location": payload["urls"]["get"]}

    def _prediction_id(self, model: str, raw: bytes) -> str:
        """26 characters, derived from the create (and how many identical ones came)."""
        key = f"id|{model}|{hashlib.sha256(raw).hexdigest()}"
        digest = hashlib.sha256(f"{self.seed}|{key}|{self._occurrence(key)}".encode()).digest()
        alphabet = "abcdefghjkmnpqrstvwxyz0123456789"
        return "".join(alphabet[b % len(alphabet)] for b in digest[:26])

    def _list(self, h: _Handler, raw: bytes, params: dict[str, str], fault: Fault | None) -> Any:
        """``GET predictions``: newest first, a page at a time, ``created_after`` honoured."""
        self._count("lists")
        if not self.list_predictions:
            self._send(h, 404, b"404 page not found", "text/plain")
            return None
        query = {k: v[-1] for k, v in parse_qs(params.get("query", "")).items()}
        after = _parse_time(query["created_after"]) if "created_after" in query else None
        if "created_after" in query and after is None:
            self._problem(h, 400, "Bad request", "created_after must be an ISO 8601 time")
            return None
        offset = int(query["cursor"][1:]) if query.get("cursor", "").startswith("o") else 0
        with self._lock:
            everything = sorted(self._predictions.values(), key=lambda p: p.created, reverse=True)
            if after is not None:
                everything = [p for p in everything if p.created >= after]
            for p in everything:
                self._advance(p)
            page = [self._prediction_json(p) for p in everything[offset : offset + self.list_page_size]]
        more = offset + self.list_page_size < len(everything)
        host = "https://api.replicate.com/v1" if self.foreign_urls else self.replicate_base
        rest = {**({"created_after": query["created_after"]} if "created_after" in query else {}),
                "cursor": f"o{offset + self.list_page_size}"}
        nxt = f"{host}/predictions?{urlencode(rest)}" if more else None
        return 200, {"next": nxt, "previous": None, "results": page}, {}

    def _poll(self, h: _Handler, raw: bytes, params: dict[str, str], fault: Fault | None) -> Any:
        self._count("polls")
        with self._lock:
            p = self._predictions.get(params["id"])
            if p is not None:
                self._advance(p)
                payload = self._prediction_json(p)
        if p is None:
            self._problem(h, 404, "Not found", "The requested resource could not be found.")
            return None
        return 200, payload, {}

    def _cancel(self, h: _Handler, raw: bytes, params: dict[str, str], fault: Fault | None) -> Any:
        self._count("cancels")
        with self._lock:
            p = self._predictions.get(params["id"])
            if p is not None and p.status not in ("succeeded", "failed", "canceled", "aborted"):
                p.status = "canceled"
            payload = self._prediction_json(p) if p is not None else None
        if payload is None:
            self._problem(h, 404, "Not found", "The requested resource could not be found.")
            return None
        return 200, payload, {}


class LocalOnlyTransport(httpx.BaseTransport):
    """An HTTP transport that only connects to this machine.

    Tests use it so that a client bug (say, following a proxy's ``api.replicate.com``
    polling URL) fails the test instead of reaching the internet. Refused URLs are
    recorded in ``refused`` and raise ``httpx.ConnectError``.
    """

    def __init__(self, **kwargs: Any):
        self._inner = httpx.HTTPTransport(**kwargs)
        self.refused: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.host not in ("127.0.0.1", "localhost", "::1"):
            self.refused.append(str(request.url))
            raise httpx.ConnectError(f"test guard: refused to leave this machine ({request.url.host})", request=request)
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()


def local_client(max_connections: int = 100) -> httpx.Client:
    """An ``httpx.Client`` like the registry's, that can only reach 127.0.0.1."""
    limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections, keepalive_expiry=5.0)
    return httpx.Client(transport=LocalOnlyTransport(limits=limits), follow_redirects=False)


class FakeClock:
    """A monotonic clock whose ``sleep`` advances it instantly; records every sleep.

    Thread-safe. Use as ``clock=fc.now, sleep=fc.sleep`` so retries, backoff, rate
    limits and poll deadlines take no real time.
    """

    def __init__(self, start: float = 1000.0):
        self._now = start
        self._lock = threading.Lock()
        self.sleeps: list[float] = []

    def now(self) -> float:
        with self._lock:
            return self._now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self._now += max(0.0, seconds)


try:  # a pytest fixture for test modules that import it; the benchmark needs no pytest
    import pytest

    @pytest.fixture
    def fake_server():  # type: ignore[no-untyped-def]
        """A started :class:`FakeServer` with default settings, stopped after the test."""
        with FakeServer() as server:
            yield server

except ImportError:  # pragma: no cover
    pass


def use_fake_recraft(monkeypatch: Any, server: "FakeServer", cache_dir: Any = None) -> None:
    """Point recraft-build at ``server`` as the Recraft API (its token, its base URL),
    with no Replicate token and no remote cache from the environment; with
    ``cache_dir``, a private cache folder too. The one setup the HTTP tests share."""
    monkeypatch.delenv("REPLICATE_API_TOKEN", raising=False)
    monkeypatch.delenv("RECRAFT_BUILD_REMOTE_CACHE", raising=False)
    monkeypatch.setenv("RECRAFT_API_TOKEN", server.token)
    monkeypatch.setenv("RECRAFT_API_BASE", server.recraft_base)
    if cache_dir is not None:
        monkeypatch.setenv("RECRAFT_BUILD_CACHE", str(cache_dir))
