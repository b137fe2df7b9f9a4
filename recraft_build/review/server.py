"""``recraft-build review``: the gallery served on loopback, where a click picks.

:class:`ReviewServer` serves the gallery page in review mode and two writes:

* ``POST /api/pick {"asset": NAME, "index": I}`` runs :func:`recraft_build.review.picking.pick`
  (the same code path as ``recraft-build pick``: the lock changes through
  ``Lock.update``, safe beside a running build; outputs are rebuilt from the store, and
  nothing is paid);
* ``POST /api/reroll {"asset": NAME}`` runs :func:`recraft_build.review.picking.reroll`
  (**paid**; the page asks for confirmation first, ``max_credits`` caps it).

``max_credits`` (None: no cap for rerolls) also lets a pick run paid provider steps
(a provider-side ``remove_background`` of the new candidate) up to that many credits;
without it such a pick is refused with a message saying what it would cost.

``GET /api/state`` returns the gallery's data, re-read from the lock, so the page
updates after a pick (and shows picks made from the command line meanwhile).

Who may do what (loopback only, a Host check, an access token in every request and
a page token in every write, bounded bodies, files only from the output and gallery
folders) is drawn in :mod:`recraft_build.review.access`.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterable, Literal, Mapping

from recraft_build import api
from recraft_build.settings import Settings
from recraft_build.review import page as gallery_page
from recraft_build.review import picking
from recraft_build.review.access import (
    COOKIE_PREFIX,
    DENIED_MESSAGE,
    MAX_BODY,
    MAX_JSON_DEPTH,
    TOKEN_HEADER,
    TOKEN_PARAM,
    access_verdict,
    nests_deeper,
    resolve_file,
    same_secret,
    without_token,
)
from recraft_build.errors import (
    LockError,
    PlanError,
    ProviderError,
    RecraftBuildError,
    SpecError,
    UsageError,
)
from recraft_build.engine.executor import BuildResult, NullReporter, Reporter

__all__ = ["ReviewServer", "TOKEN_HEADER", "TOKEN_PARAM", "COOKIE_PREFIX", "DENIED_MESSAGE", "MAX_JSON_DEPTH"]

_LOOPBACK = {"127.0.0.1": socket.AF_INET, "::1": socket.AF_INET6, "localhost": socket.AF_INET}
_TYPES = {
    ".png": "image/png",
    ".webp": "image/webp",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".svg": "image/svg+xml",
    ".ico": "image/x-icon",
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",
}
#: Served files are data, never active content with our origin.
_FILE_CSP = "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; sandbox"


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = False

    def __init__(self, address: tuple[str, int], family: int, app: "ReviewServer"):
        self.address_family = family
        self.app = app
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A browser that goes away mid-request (a closed tab, a dropped keep-alive
        connection) is not a bug: no traceback for it. Anything else still prints one."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class ReviewServer:
    """The review page and its API on ``host:port`` (port 0: a free one).

    ``start()`` checks the spec (raising SpecError/UsageError as the commands do),
    binds and serves from a background thread; ``url`` is the address to open (it
    carries the access token: whoever has it may read and write); ``stop()`` shuts it
    down. Also a context manager.
    """

    def __init__(
        self,
        spec_path: str | os.PathLike[str] | None,
        *,
        output_dir: str | os.PathLike[str] | None = None,
        gallery_dir: str | os.PathLike[str] | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        provider: str = "auto",
        max_credits: float | None = None,
        base_rev: str | None = "HEAD",
        reporter: Reporter | None = None,
        client: Any = None,
    ):
        if host not in _LOOPBACK:
            raise UsageError(f"review listens on loopback only (127.0.0.1 or ::1), not {host!r}")
        self.spec_path = spec_path
        self.output_dir = output_dir
        self.gallery_dir = gallery_dir
        self.cache_dir = cache_dir
        self.env = Settings(env=env).environ
        self.host = "127.0.0.1" if host == "localhost" else host
        self.port = port
        self.provider = provider
        self.max_credits = max_credits
        self.base_rev = base_rev
        self.reporter = reporter or NullReporter()
        self.client = client
        #: The page's secret: embedded in the served page, required on every write.
        self.token = secrets.token_urlsafe(32)
        #: The server's secret: in the printed address and the access cookie, required
        #: on every request. Distinct from ``token``, which the page itself shows.
        self.access_token = secrets.token_urlsafe(32)
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._root: Path | None = None
        self._gallery: Path | None = None
        # One model build at a time (it prunes gallery/img), one write at a time.
        self._model_mutex = threading.Lock()
        self._write_mutex = threading.Lock()

    # -- life cycle ------------------------------------------------------------------------
    def start(self) -> "ReviewServer":
        spec = api.load(self.spec_path)
        self._root = api.resolve_output_dir(spec, self.output_dir)
        self._gallery = gallery_page.gallery_folder(spec, self.gallery_dir)
        self.state()  # fails early on a bad lock or cache, and copies the pictures
        old = gallery_page.old_gallery_warning(self._root, self._gallery)
        if old:
            self.reporter.warning(old)
        try:
            self._httpd = _HTTPServer((self.host, self.port), _LOOPBACK[self.host], self)
        except OSError as exc:
            raise UsageError(f"cannot listen on {self.host}:{self.port}: {exc.strerror or exc} (try another --port)") from exc
        self.port = self._httpd.server_address[1]
        # A short poll interval makes stop() quick (shutdown waits for the loop to look).
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="rb-review", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket. Safe to call twice."""
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> "ReviewServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def origin(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def url(self) -> str:
        """The address to open, with the access token (printed by ``recraft-build review``).

        A secret: it grants reading the page and picking and rerolling (paid)."""
        return f"{self.origin}/?{TOKEN_PARAM}={self.access_token}"

    @property
    def page_url(self) -> str:
        """The review page's address, without the token (where :attr:`url` redirects)."""
        return f"{self.origin}/gallery/"

    @property
    def cookie_name(self) -> str:
        """The access cookie's name, per port: a browser sends the cookies of
        ``127.0.0.1`` to every port, so servers side by side must not share one name."""
        return f"{COOKIE_PREFIX}{self.port}"

    def set_cookie_header(self) -> str:
        """The ``Set-Cookie`` value that grants this browser access for its session."""
        return f"{self.cookie_name}={self.access_token}; Path=/; HttpOnly; SameSite=Strict"

    @property
    def root(self) -> Path:
        """The output folder (files other than the gallery's pictures are served from it)."""
        if self._root is None:
            raise UsageError("the review server is not started")
        return self._root

    @property
    def gallery(self) -> Path:
        """The gallery's folder (its ``img`` is served under ``/gallery/img/``)."""
        if self._gallery is None:
            raise UsageError("the review server is not started")
        return self._gallery

    def allowed_hosts(self) -> set[str]:
        hosts = {self.origin.split("://", 1)[1]}
        if self.host == "127.0.0.1":
            hosts.add(f"localhost:{self.port}")
        return hosts

    def allowed_origins(self) -> set[str]:
        return {f"http://{h}" for h in self.allowed_hosts()}

    # -- what the handler calls ------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """The gallery's data as it is now (re-reads the lock)."""
        with self._model_mutex:
            return gallery_page.build_model(
                self.spec_path,
                gallery_dir=self.gallery_dir,
                output_dir=self.output_dir,
                cache_dir=self.cache_dir,
                base_rev=self.base_rev,
                env=self.env,
                provider=self.provider,
                warn=self.reporter.warning,
            )

    def page(self) -> str:
        return gallery_page.render_page(self.state(), review={"token": self.token})

    def check_token(self, value: str | None) -> bool:
        """Whether ``value`` is the page's write token (``X-Review-Token``)."""
        return same_secret(value, self.token)

    def check_access(self, cookie_headers: Iterable[str], query: str) -> Literal["token", "cookie", "denied"]:
        """Whether a request may be served (:func:`~recraft_build.review.access.access_verdict`)."""
        return access_verdict(cookie_headers, query, cookie_name=self.cookie_name, access_token=self.access_token)

    #: Where a token redirect goes (:func:`~recraft_build.review.access.without_token`).
    without_token = staticmethod(without_token)

    def do_pick(self, asset: str, index: int) -> BuildResult:
        with self._write_mutex:
            result = picking.pick(
                self.spec_path,
                asset,
                index,
                output_dir=self.output_dir,
                cache_dir=self.cache_dir,
                env=self.env,
                reporter=self.reporter,
                provider=self.provider,
                # A pick never generates; paid provider steps only within the cap.
                max_credits=self.max_credits or 0.0,
                client=self.client,
            )
        if not result.failed:
            self.reporter.notice(f"review: picked candidate {index} for {asset}")
        return result

    def do_reroll(self, asset: str) -> BuildResult:
        with self._write_mutex:
            result = picking.reroll(
                self.spec_path,
                asset,
                output_dir=self.output_dir,
                cache_dir=self.cache_dir,
                env=self.env,
                reporter=self.reporter,
                provider=self.provider,
                max_credits=self.max_credits,
                client=self.client,
            )
        if not result.failed:
            self.reporter.notice(f"review: new candidates for {asset} ({result.credits:g} credits)")
        return result

    def resolve_file(self, url_path: str) -> tuple[int, Path | None]:
        """(status, file) for a GET of ``url_path`` (:func:`~recraft_build.review.access.resolve_file`)."""
        return resolve_file(url_path, output_dir=self.root, gallery_img=self.gallery / "img")

def _status_for(exc: RecraftBuildError) -> int:
    if isinstance(exc, UsageError):
        return 400
    if isinstance(exc, (PlanError, LockError, SpecError)):
        return 409
    if isinstance(exc, ProviderError):
        return 502
    return 500


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    server_version = "recraft-build-review"
    sys_version = ""
    protocol_version = "HTTP/1.1"

    # The library never prints: request logs are dropped.
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    @property
    def app(self) -> ReviewServer:
        return self.server.app

    # -- responses -------------------------------------------------------------------------
    def _send(self, status: int, body: bytes, ctype: str, *, csp: str, cache: str = "no-store", extra: Mapping[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", cache)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Cross-Origin-Resource-Policy", "same-origin")
        self.send_header("Content-Security-Policy", csp)
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        if status >= 400 and self.command == "POST":
            # A refused write may leave its body unread: never reuse this connection,
            # or the body would be parsed as the next request.
            self.close_connection = True
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, data: Any) -> None:
        body = json.dumps(data, sort_keys=True, default=str).encode("utf-8")
        self._send(status, body, "application/json", csp=_FILE_CSP)

    def _error(self, status: int, message: str) -> None:
        self._json(status, {"error": message})

    def _host_ok(self) -> bool:
        return self.headers.get("Host", "") in self.app.allowed_hosts()

    def _admitted(self) -> bool:
        """Check Host and access; True to go on, else the answer has been sent.

        A ``GET``/``HEAD`` with the right token gets the cookie and a redirect to the
        address without the token (a ``POST`` with it simply goes on)."""
        if not self._host_ok():
            self._error(403, "request refused: unexpected Host header")
            return False
        query = urllib.parse.urlsplit(self.path).query
        verdict = self.app.check_access(self.headers.get_all("Cookie") or [], query)
        if verdict == "denied":
            if self.command == "POST":
                # JSON like every refused write, so the page can show the message.
                self._error(403, DENIED_MESSAGE)
            else:
                self._send(403, (DENIED_MESSAGE + "\n").encode("utf-8"), "text/plain; charset=utf-8", csp=_FILE_CSP)
            return False
        if verdict == "token" and self.command != "POST":
            extra = {"Location": self.app.without_token(self.path), "Set-Cookie": self.app.set_cookie_header()}
            self._send(302, b"", "text/plain", csp=_FILE_CSP, extra=extra)
            return False
        return True

    # -- GET -------------------------------------------------------------------------------
    def do_HEAD(self) -> None:  # noqa: N802
        self.do_GET()

    def do_GET(self) -> None:  # noqa: N802
        if not self._admitted():
            return None
        path = urllib.parse.urlsplit(self.path).path
        try:
            if path in ("/", "/gallery"):
                return self._send(302, b"", "text/plain", csp=_FILE_CSP, extra={"Location": "/gallery/"})
            if path in ("/gallery/", "/gallery/index.html"):
                page = self.app.page().encode("utf-8")
                csp = gallery_page.content_security_policy(served=True) + "; frame-ancestors 'none'"
                return self._send(200, page, "text/html; charset=utf-8", csp=csp, extra={"X-Frame-Options": "DENY"})
            if path == "/api/state":
                return self._json(200, self.app.state())
            if path.startswith("/api/"):
                return self._error(405 if path in ("/api/pick", "/api/reroll") else 404, f"no GET {path}")
            status, file = self.app.resolve_file(path)
            if file is None:
                return self._error(status, "not allowed" if status == 403 else "not found")
            ctype = _TYPES.get(file.suffix.lower(), "application/octet-stream")
            return self._send(200, file.read_bytes(), ctype, csp=_FILE_CSP, cache="no-cache")
        except RecraftBuildError as exc:
            return self._error(_status_for(exc), str(exc))
        except OSError as exc:
            return self._error(404, f"cannot read: {exc.strerror or exc}")

    # -- POST ------------------------------------------------------------------------------
    def do_POST(self) -> None:  # noqa: N802
        if not self._admitted():
            return None
        origin = self.headers.get("Origin")
        if origin is not None and origin not in self.app.allowed_origins():
            return self._error(403, "request refused: it does not come from the review page (Origin)")
        site = self.headers.get("Sec-Fetch-Site")
        if site is not None and site not in ("same-origin", "none"):
            return self._error(403, "request refused: it does not come from the review page (Sec-Fetch-Site)")
        if not self.app.check_token(self.headers.get(TOKEN_HEADER)):
            return self._error(403, "request refused: missing or wrong review token (reload the review page)")
        path = urllib.parse.urlsplit(self.path).path
        if path not in ("/api/pick", "/api/reroll"):
            return self._error(404, f"no POST {path}")
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype != "application/json":
            return self._error(415, "send JSON (Content-Type: application/json)")
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            return self._error(411, "Content-Length required")
        if int(length) > MAX_BODY:
            return self._error(413, "request body too large")
        raw = self.rfile.read(int(length))
        if nests_deeper(raw, MAX_JSON_DEPTH):
            return self._error(400, f"the request body nests more than {MAX_JSON_DEPTH} levels deep")
        try:
            body = json.loads(raw or b"null")
        except ValueError:
            return self._error(400, "the request body is not valid JSON")
        if not isinstance(body, dict) or not isinstance(body.get("asset"), str):
            return self._error(400, 'send {"asset": NAME, ...}')
        try:
            if path == "/api/pick":
                index = body.get("index")
                if isinstance(index, bool) or not isinstance(index, int):
                    return self._error(400, 'send {"asset": NAME, "index": INTEGER}')
                result = self.app.do_pick(body["asset"], index)
            else:
                result = self.app.do_reroll(body["asset"])
        except RecraftBuildError as exc:
            return self._error(_status_for(exc), str(exc))
        except Exception as exc:  # a bug: say so on the page rather than drop the connection
            return self._error(500, f"internal error {type(exc).__name__}: {exc} (please report this bug)")
        data = result.to_json()
        if result.failed:
            errors = "; ".join(a.error for a in result.failed)
            return self._json(500, {"error": errors, **data})
        return self._json(200, {"ok": True, **data})
