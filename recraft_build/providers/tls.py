"""The TLS context of the providers' HTTP clients: made once, and ahead of time.

Loading the CA bundle takes about 30 ms, most of it in OpenSSL with the GIL
released. :func:`warm_up` starts that (and the import of httpx) on a background
thread when a build is about to call a provider, so it overlaps the spec's loading
and planning instead of delaying the first request; :func:`tls_context` hands the
context to the client (waiting for the warm-up if it is still running, or making it
now). The context is what httpx makes by default (``httpx.create_ssl_context()``:
certifi's bundle, ``SSL_CERT_FILE``/``SSL_CERT_DIR`` honoured), shared by every client
of the process: an ``SSLContext`` is safe to share between threads.
"""

from __future__ import annotations

import threading
from typing import Any

__all__ = ["tls_context", "warm_up"]

_lock = threading.Lock()
_ready = threading.Event()
_started = False
_context: Any = None


def _make() -> None:
    global _context
    try:
        import httpx

        _context = httpx.create_ssl_context()
    except Exception:  # noqa: BLE001 - tls_context() makes it again and raises there
        _context = None
    finally:
        _ready.set()


def warm_up() -> None:
    """Start making the context on a daemon thread (once per process)."""
    global _started
    with _lock:
        if _started:
            return
        _started = True
    threading.Thread(target=_make, name="rb-tls-warm-up", daemon=True).start()


def tls_context() -> Any:
    """The shared ``ssl.SSLContext`` (an error making it is raised here, as httpx would)."""
    global _started, _context
    with _lock:
        started = _started
        _started = True
    if not started:
        _make()
    _ready.wait()
    if _context is None:
        import httpx

        _context = httpx.create_ssl_context()  # the same call, so its error surfaces here
    return _context
