"""Tokens never show: Secret, redact_text, redact_headers."""

from __future__ import annotations

import pickle

import httpx
import pytest

from recraft_build.providers.redact import REDACTED, Secret, redact_headers, redact_text

TOKEN = "r8_SECRET_token_0123"


def test_secret_hides_its_value_everywhere_but_reveal() -> None:
    s = Secret(TOKEN)
    for shown in (str(s), repr(s), f"{s}", f"{s!r}", "%s" % s, str([s]), str({"t": s})):
        assert TOKEN not in shown
    assert s.reveal() == TOKEN
    assert bool(s) and not bool(Secret(""))
    assert Secret(TOKEN) == s and hash(Secret(TOKEN)) == hash(s)


def test_secret_refuses_to_be_pickled() -> None:
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(Secret(TOKEN))


def test_redact_text_masks_known_secrets_and_bearer_credentials() -> None:
    text = f"token {TOKEN} refused; header was Bearer another-credential-xyz; the token expired"
    cleaned = redact_text(text, [Secret(TOKEN)])
    assert TOKEN not in cleaned
    assert "another-credential-xyz" not in cleaned
    assert cleaned.count(REDACTED) == 2
    assert cleaned.endswith("the token expired")


def test_redact_text_leaves_ordinary_text_alone() -> None:
    text = "invalid style 'foo' for model recraftv3"
    assert redact_text(text, [Secret(TOKEN), "ab"]) == text


def test_redact_headers_masks_credential_headers() -> None:
    headers = httpx.Headers({"Authorization": f"Bearer {TOKEN}", "X-Api-Key": "k" * 10, "Cookie": "a=b", "X-Note": f"echo {TOKEN}", "Accept": "*/*"})
    shown = redact_headers(headers, [Secret(TOKEN)])
    assert TOKEN not in str(shown)
    assert shown["authorization"] == REDACTED and shown["x-api-key"] == REDACTED and shown["cookie"] == REDACTED
    assert shown["accept"] == "*/*"
