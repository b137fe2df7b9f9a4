"""What a server said, and what to tell the user: error text, request id, advice.

Pure functions over ``httpx.Response`` values and URLs, shared by :mod:`.http` and
the protocol modules; nothing here sends a request.
"""

from __future__ import annotations

import json
from typing import Any, Callable

import httpx

__all__ = [
    "OFFICIAL_BASES",
    "PROXY_PREFIXES",
    "REQUEST_ID_HEADERS",
    "auth_message",
    "base_url_advice",
    "error_text",
    "json_object_of",
    "origin_path",
    "rejected_message",
    "request_id_of",
]

#: Response headers that may carry the server's id for a request, most specific first.
REQUEST_ID_HEADERS = (
    "x-recraft-requestid",
    "x-recraft-request-id",
    "x-request-id",
    "request-id",
    "x-amzn-requestid",
    "x-correlation-id",
    "cf-ray",
)


# Longest server text kept in a message; error pages can be huge.
_MAX_TEXT = 300


def request_id_of(response: httpx.Response) -> str | None:
    """The server's id for this request, from the first header in :data:`REQUEST_ID_HEADERS`."""
    for name in REQUEST_ID_HEADERS:
        value = response.headers.get(name)
        if value:
            return value.strip()
    return None


def _shorten(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_TEXT else text[: _MAX_TEXT - 3] + "..."


def error_text(response: httpx.Response, *, redact: Callable[[str], str] | None = None) -> str:
    """What the server said about a failure, in one short line.

    Handles Recraft's plain-text bodies (``request unauthorized``), JSON bodies
    (``{"error": ...}``, ``{"message": ...}``, ``{"code":..., "message":...}``) and
    Replicate's problem+json (``detail``, ``title``). An HTML error page becomes a
    note that it was HTML. Never raises.

    ``redact`` (e.g. :meth:`CallContext.clean`) masks secrets **before** the text is
    cut to its length limit: cutting first could split a token the server echoed, and
    the part before the cut would no longer match the token and would survive.
    """
    def shorten(text: str) -> str:
        return _shorten(redact(text) if redact is not None else text)

    try:
        raw = response.read()
    except httpx.HTTPError:
        return "(the error body could not be read)"
    text = raw.decode("utf-8", errors="replace").strip()
    if not text:
        return response.reason_phrase or "(empty body)"
    ctype = response.headers.get("content-type", "").lower()
    if "html" in ctype or text[:15].lower().startswith(("<!doctype html", "<html")):
        return f"an HTML page instead of an API answer ({response.reason_phrase or 'no reason'})"
    if "json" in ctype or text[:1] in "{[":
        try:
            data = json.loads(text)
        except ValueError:
            return shorten(text)
        found = _message_from_json(data)
        if found:
            return shorten(found)
    return shorten(text)


def _message_from_json(data: Any) -> str | None:
    if isinstance(data, str):
        return data
    if isinstance(data, list):
        parts = [m for m in (_message_from_json(x) for x in data[:5]) if m]
        return "; ".join(parts) or None
    if not isinstance(data, dict):
        return None
    if isinstance(data.get("loc"), list) and "msg" in data:
        # FastAPI-style validation entries keep the field they are about.
        return f"{'.'.join(str(p) for p in data['loc'])}: {data['msg']}"
    for key in ("detail", "message", "error", "msg", "title", "code"):
        if key in data:
            found = _message_from_json(data[key])
            if found:
                return found
    return None


#: Per protocol: the official base URL, and the path prefix a proxy of it usually has.
OFFICIAL_BASES = {"recraft": "https://external.api.recraft.ai/v1", "replicate": "https://api.replicate.com/v1"}
PROXY_PREFIXES = {"recraft": "/recraft/v1", "replicate": "/replicate/v1"}


def base_url_advice(base_url: str, protocol: str) -> str:
    """What to try when ``base_url`` answered 404, for a provider of ``protocol``.

    The base URL ends where the API's own paths begin (``.../images/generations``,
    ``.../models/...``), so it includes the version: the official APIs want ``/v1``,
    and proxies put their own prefix before it (ElkAPI ``/recraft/v1``, kkiai
    ``/replicate/v1``). The advice suggests the form that fits what was given.
    """
    official = OFFICIAL_BASES[protocol]
    prefix = PROXY_PREFIXES[protocol]
    bare_prefix = prefix[: -len("/v1")]
    other = next(p for name, p in PROXY_PREFIXES.items() if name != protocol)
    url = httpx.URL(base_url)
    origin = str(url.copy_with(path="/", query=None, fragment=None)).rstrip("/")
    path = url.path.rstrip("/")
    official_url = httpx.URL(official)
    if url.host == official_url.host:
        if path != official_url.path:
            return f"the official API's base URL is {official}"
        return "it is the official base URL, so the API itself does not know this endpoint"
    if path.endswith(other) or path.endswith(other[: -len("/v1")]):
        return (
            f"{path} is the other protocol's prefix: use {origin}{prefix} with the {protocol} "
            "protocol, or choose the provider (or profile protocol) that matches this proxy"
        )
    if path.endswith(bare_prefix):
        return f"add the API version: {origin}{path}/v1"
    if path.endswith(prefix):
        return (
            f"it already ends in {prefix}; check the proxy's documentation for the exact path "
            "(everything before /images/... or /models/... in its examples)"
        )
    if path in ("", "/v1"):
        return f"a proxy of the {protocol} API usually serves it under {prefix}: try {origin}{prefix}"
    return (
        f"for the official API use {official}; for a proxy, everything before "
        f"/{'images' if protocol == 'recraft' else 'models'}/... in its examples, usually {origin}{prefix}"
    )


def origin_path(url: str) -> str:
    # Drop any query string: a signed URL's query is a credential of sorts.
    try:
        u = httpx.URL(url)
    except Exception:  # pragma: no cover - url came from httpx already
        return "(unparseable URL)"
    return str(u.copy_with(query=None, fragment=None))


def json_object_of(response: httpx.Response) -> dict[str, Any] | None:
    """The (already read) body as a JSON object, or None.

    Only a body whose ``Content-Type`` says JSON (``application/json``,
    ``application/problem+json``...) counts: a gateway's text or HTML page that happens
    to start with ``{`` is not an API's answer. Never raises.
    """
    ctype = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if not (ctype == "application/json" or ctype.endswith("+json")):
        return None
    try:
        data = json.loads(response.content)
    except (ValueError, httpx.ResponseNotRead, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def auth_message(token_env: str | None, status: int, text: str, what: str) -> str:
    """What to do about a 401 or 403, naming the variable that holds the token."""
    env = token_env or "the provider's token variable"
    if status == 401:
        return (
            f"{what} was refused: the token is missing or wrong (server said: {text}). "
            f"Set {env} to a valid token and run the build again"
        )
    return (
        f"{what} was forbidden (server said: {text}). The token in {env} is not allowed "
        "to do this, or the account has no credits left: check the account, or set "
        f"{env} to another token"
    )


def rejected_message(
    status: int, text: str, what: str, url: str, *, base_url: str | None = None, protocol: str | None = None
) -> str:
    """What to do about a refused request (402, 404 with base-URL advice, other 4xx)."""
    if status == 402:
        return f"{what} was refused for payment (server said: {text}). Top up the account's credits"
    if status == 404 and base_url and protocol in PROXY_PREFIXES:
        return (
            f"{what} was rejected: not found (server said: {text}). Check the base URL "
            f"({base_url}): {base_url_advice(base_url, protocol)}"
        )
    if status == 404:
        return (
            f"{what} was rejected: not found (server said: {text}). Check the base URL "
            f"({origin_path(url)}): a proxy usually needs its prefix, such as /recraft/v1 "
            "or /replicate/v1"
        )
    return f"{what} was rejected (server said: {text}). Fix the request in the spec; resending it as is cannot help"
