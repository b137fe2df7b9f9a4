"""Who may read and write through the review server, as pure functions of a request's
parts (the HTTP plumbing is in :mod:`recraft_build.review.server`).

* The server listens on a loopback address only (127.0.0.1 or ::1), on a free port by
  default. Loopback is not private: every local user and process can connect, so
  nothing is served without the server's secret (below).
* Every request must carry a ``Host`` of the server (a DNS-rebinding page cannot read
  the page, and so cannot learn the tokens).
* Every request, reads included, must know the server's *access token* (random, per
  server, never on disk), as in Jupyter. The address ``recraft-build review`` prints
  is ``http://127.0.0.1:PORT/?token=...``; a ``GET`` with the right ``?token=`` gets a
  cookie holding it and a redirect to the same address without it
  (:func:`without_token`, so it does not stay in the history). The cookie is
  ``rb_review_<port>``, ``HttpOnly``, ``SameSite=Strict``, host-only, for the browser
  session; browsers send a host's cookies to all its ports, hence the port in the name
  and a compared value. Later requests carry the cookie (or ``?token=``); anything
  else, a wrong ``?token=`` included, gets 403 and :data:`DENIED_MESSAGE`. (For the
  same reason, a server on another port of this host that the browser visits sees the
  cookie: do not browse other users' local servers meanwhile.)
* Every write must also carry the page's token in :data:`TOKEN_HEADER` (another random
  value made per server and embedded only in the served page),
  ``Content-Type: application/json``, and, when the browser sends them, a same-origin
  ``Origin`` and ``Sec-Fetch-Site``. Its body is JSON of at most :data:`MAX_BODY`
  bytes nested at most :data:`MAX_JSON_DEPTH` deep, checked before parsing
  (:func:`nests_deeper`), so no body can exhaust the parser's recursion.
* ``GET`` serves the review page, the API state, the gallery's picture copies
  (``/gallery/img/<sha256>.<ext>``, from the gallery's folder, by default
  ``.recraft-build/gallery`` beside the spec) and regular files inside the output
  folder, after decoding, refusing ``..``, hidden names and anything whose real path
  (symlinks resolved) leaves its folder (:func:`resolve_file`). Never the store, the
  spec, or the lock.
* Responses carry ``nosniff``, ``no-referrer`` and a CSP; files other than the page are
  sandboxed, so an SVG opened directly cannot run script with the page's origin.
"""

from __future__ import annotations

import hmac
import os
import re
import urllib.parse
from pathlib import Path
from typing import Iterable, Literal

from recraft_build.review.page import IMAGE_NAME

__all__ = [
    "COOKIE_PREFIX",
    "DENIED_MESSAGE",
    "MAX_BODY",
    "MAX_JSON_DEPTH",
    "TOKEN_HEADER",
    "TOKEN_PARAM",
    "access_verdict",
    "cookie_values",
    "nests_deeper",
    "resolve_file",
    "same_secret",
    "without_token",
]

#: The header every write carries: the page's token (``ReviewServer.token``).
TOKEN_HEADER = "X-Review-Token"
#: The query parameter of the printed address: the access token (``ReviewServer.access_token``).
TOKEN_PARAM = "token"
#: The access cookie's name is this plus the server's port.
COOKIE_PREFIX = "rb_review_"
#: The body of a 403 for a request without the access token (never contains a token).
DENIED_MESSAGE = (
    "403 forbidden: this review server needs its access token. "
    "Open the address that `recraft-build review` printed (the one ending in ?token=...)."
)
#: The largest body a write may have, in bytes.
MAX_BODY = 64 * 1024
#: The deepest nesting of arrays and objects a write's body may have (the API's bodies
#: are flat objects; Python's JSON parser recurses once per level and fails on deep ones).
MAX_JSON_DEPTH = 16
#: Paths a token redirect may send the browser to (relative, one leading slash: never
#: ``//host``, which a browser would read as another server).
_SAFE_PATH = re.compile(r"/(?!/)[A-Za-z0-9._~!$&'()*+,;=:@%/-]*")


def same_secret(value: str | None, secret: str) -> bool:
    """Constant-time comparison of a received value with a secret (any text is safe)."""
    return bool(value) and hmac.compare_digest(str(value).encode("utf-8"), secret.encode("utf-8"))


def cookie_values(headers: Iterable[str], name: str) -> list[str]:
    """Every value of the cookies called ``name`` in ``Cookie`` header values.

    Split by hand rather than with :mod:`http.cookies`, which drops the cookies after
    one it cannot parse (other servers on this host may set odd ones)."""
    values = []
    for header in headers:
        for part in header.split(";"):
            key, sep, value = part.partition("=")
            if sep and key.strip() == name:
                value = value.strip()
                if len(value) >= 2 and value[0] == value[-1] == '"':
                    value = value[1:-1]
                values.append(value)
    return values


def access_verdict(
    cookie_headers: Iterable[str], query: str, *, cookie_name: str, access_token: str
) -> Literal["token", "cookie", "denied"]:
    """Whether a request may be served, from its ``Cookie`` headers and raw query.

    ``"token"``: the query carries the right access token (a ``GET`` is answered with
    the cookie and a redirect); ``"cookie"``: no token in the query, and one of the
    cookies named ``cookie_name`` holds the access token (another server's cookie has
    another name; one planted under ours has the wrong value, and does not hide the
    right one); ``"denied"``: neither, or a wrong token in the query (even beside a
    good cookie: a wrong address is reported, not papered over).
    """
    tokens = [v for k, v in urllib.parse.parse_qsl(query, keep_blank_values=True) if k == TOKEN_PARAM]
    if tokens:
        ok = len(tokens) == 1 and same_secret(tokens[0], access_token)
        return "token" if ok else "denied"
    values = cookie_values(cookie_headers, cookie_name)
    return "cookie" if any(same_secret(v, access_token) for v in values) else "denied"


def without_token(target: str) -> str:
    """Where a request for ``target`` (a request path with its query) is redirected
    once its token is turned into a cookie: the same path and query without the
    token; the page for ``/`` (and for anything odd, so never another host)."""
    split = urllib.parse.urlsplit(target)
    path = split.path
    if path in ("/", "/gallery") or not _SAFE_PATH.fullmatch(path):
        path = "/gallery/"
    rest = [(k, v) for k, v in urllib.parse.parse_qsl(split.query, keep_blank_values=True) if k != TOKEN_PARAM]
    return path + ("?" + urllib.parse.urlencode(rest) if rest else "")


def resolve_file(url_path: str, *, output_dir: Path, gallery_img: Path) -> tuple[int, Path | None]:
    """(status, file) for a GET of ``url_path``: 200 and the file (a picture in
    ``gallery_img`` for ``/gallery/img/<picture name>``, else a file inside
    ``output_dir``), 403 for a path that is not allowed, 404 for one that is not there."""
    decoded = urllib.parse.unquote(url_path)
    if "\x00" in decoded or "\\" in decoded:
        return 403, None
    parts = [p for p in decoded.split("/") if p]
    if not parts or any(p in (".", "..") or p.startswith(".") for p in parts):
        return 403, None
    if len(parts) == 3 and parts[:2] == ["gallery", "img"] and IMAGE_NAME.match(parts[2]):
        root, parts = os.path.realpath(gallery_img), parts[2:]
    else:
        root = os.path.realpath(output_dir)
    real = os.path.realpath(os.path.join(root, *parts))
    if not real.startswith(root + os.sep):
        return 403, None
    if not os.path.isfile(real):
        return 404, None
    return 200, Path(real)


def nests_deeper(data: bytes, limit: int) -> bool:
    """Whether JSON text ``data`` nests arrays and objects more than ``limit`` deep
    (brackets inside strings do not count). Any bytes are safe: this only counts."""
    depth = 0
    in_string = escaped = False
    for byte in data:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > limit:
                return True
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1
    return False
