"""Keep tokens out of every message, repr and log line.

Tokens only ever come from the environment and only ever leave the process in an
``Authorization`` header. Everything else that could carry one (error messages built
from a server's answer, a header dump for debugging, an object's repr) goes through
this module:

* :class:`Secret` wraps a token; its ``str``/``repr`` show ``***``, and the value is
  only reachable through :meth:`Secret.reveal`, which the code calls in exactly one
  place per protocol (building the header).
* :func:`redact_text` replaces every known secret, and anything that looks like a
  credential in an ``Authorization``-style phrase, with ``***``.
* :func:`redact_headers` returns a copy of a header mapping with credential headers
  masked.
"""

from __future__ import annotations

import re
from typing import Iterable, Mapping

__all__ = [
    "REDACTED",
    "SENSITIVE_HEADERS",
    "Secret",
    "redact_headers",
    "redact_text",
]

#: What a secret is replaced with.
REDACTED = "***"

#: Header names (lower case) whose values are credentials.
SENSITIVE_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "x-api-key",
        "api-key",
        "x-auth-token",
        "cookie",
        "set-cookie",
    }
)

# "Bearer abc", "Token abc", "Basic abc": the scheme word followed by a credential.
# Servers sometimes echo the header they did not like; mask the credential part.
# "Token" only capitalised: the lower-case word is common in our own messages.
_SCHEME_RE = re.compile(r"\b([Bb]earer|BEARER|[Bb]asic|Token)(\s+)([A-Za-z0-9._~+/=-]{6,})")

# Secrets shorter than this are not searched for: replacing every "ab" in a message
# would make it unreadable, and a 3-character token is not a real token anyway.
_MIN_SECRET_LEN = 4


class Secret:
    """A token that never shows itself in ``str``, ``repr``, ``format`` or pickles.

    ``bool(secret)`` is False for an empty token. Equality compares values, so two
    providers built from the same environment compare equal without revealing it.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        """The token itself. Call only to build the header that carries it."""
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash((Secret, self._value))

    def __repr__(self) -> str:
        return f"Secret({REDACTED!r})"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __reduce__(self) -> object:
        # Pickling would write the token to wherever the pickle goes (a cache, a
        # process pool's pipe): refuse, loudly, rather than leak it quietly.
        raise TypeError("a Secret cannot be pickled")


def _values(secrets: Iterable[Secret | str]) -> list[str]:
    out = []
    for s in secrets:
        value = s.reveal() if isinstance(s, Secret) else s
        if value and len(value) >= _MIN_SECRET_LEN:
            out.append(value)
    # Longest first, so a token that contains another is masked whole.
    return sorted(set(out), key=len, reverse=True)


def redact_text(text: str, secrets: Iterable[Secret | str] = ()) -> str:
    """``text`` with every secret in ``secrets`` and every ``Bearer <credential>`` masked."""
    for value in _values(secrets):
        text = text.replace(value, REDACTED)
    return _SCHEME_RE.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)


def redact_headers(
    headers: Mapping[str, str], secrets: Iterable[Secret | str] = ()
) -> dict[str, str]:
    """A copy of ``headers`` safe to show: credential headers masked, secrets masked.

    Works with a plain dict or an ``httpx.Headers`` (which iterates names once per
    value; later values of a repeated header win, which is fine for display).
    """
    values = _values(secrets)
    out: dict[str, str] = {}
    for name, value in headers.items():
        if name.lower() in SENSITIVE_HEADERS:
            out[name] = REDACTED
        else:
            for v in values:
                value = value.replace(v, REDACTED)
            out[name] = value
    return out
