"""providers/tls.py: one TLS context per process, made ahead of time or on demand."""

from __future__ import annotations

import ssl

from recraft_build.providers import tls


def test_the_context_is_made_once_and_shared(monkeypatch):
    monkeypatch.setattr(tls, "_started", False)
    monkeypatch.setattr(tls, "_context", None)
    monkeypatch.setattr(tls, "_ready", __import__("threading").Event())
    tls.warm_up()
    tls.warm_up()  # idempotent
    first = tls.tls_context()
    assert isinstance(first, ssl.SSLContext)
    assert first.verify_mode == ssl.CERT_REQUIRED and first.check_hostname
    assert tls.tls_context() is first


def test_without_a_warm_up_it_is_made_on_demand(monkeypatch):
    monkeypatch.setattr(tls, "_started", False)
    monkeypatch.setattr(tls, "_context", None)
    monkeypatch.setattr(tls, "_ready", __import__("threading").Event())
    ctx = tls.tls_context()
    assert isinstance(ctx, ssl.SSLContext) and ctx.verify_mode == ssl.CERT_REQUIRED
