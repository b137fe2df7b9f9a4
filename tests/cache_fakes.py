"""Helpers shared by the remote-cache tests (HTTP and S3): a counting stand-in for a
paid provider, the executor's "record hit, else pay and store" loop, a warn collector."""

from __future__ import annotations

import hashlib
import threading
from typing import Any


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Warnings(list):
    """A warn callback that keeps what it was told."""

    def __call__(self, message: str) -> None:
        self.append(message)


class Provider:
    """Stands in for a paid provider: a deterministic picture per name, calls counted."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, name: str) -> bytes:
        with self._lock:
            self.calls.append(name)
        return f"PNG-ish picture of {name}".encode() * 50


def action_key(name: str) -> str:
    return sha(f"generate:{name}".encode())


def build(store: Any, names: list[str], provider: Provider) -> dict[str, bytes]:
    """What the executor does per asset: record hit -> its blob, else pay and store."""
    out = {}
    for name in names:
        key = action_key(name)
        with store.key_lock(key):
            record = store.get_record(key)
            data = store.get_blob(record["picture"]["sha256"]) if record else None
            if data is None:
                data = provider(name)
                digest = store.put_blob(data)
                store.put_record(key, {"picture": {"sha256": digest}, "credits": 1})
        out[name] = data
    return out
