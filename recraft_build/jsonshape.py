"""Reading persisted JSON (lock files, cache records) into typed values, shape-checked.

The lock comes from pull requests and cache records from shared, possibly hostile
remotes: every field is checked for its type before the engine uses it, and a value
of the wrong shape raises :class:`ShapeError` naming where it is (``generation.
candidates[1].sha256``), never a ``KeyError`` or ``TypeError`` deep in the engine.
Callers turn :class:`ShapeError` into the error of their file (``LockError`` names
the lock file and asset; the cache treats a malformed record as a warned miss).
"""

from __future__ import annotations

import re
from typing import Any, Mapping

__all__ = ["ShapeError", "Fields", "is_digest"]

_DIGEST = re.compile(r"[0-9a-f]{64}")


def is_digest(value: Any) -> bool:
    """True for a lower-case hex sha256 (what every blob and key is named by)."""
    return isinstance(value, str) and len(value) == 64 and _DIGEST.fullmatch(value) is not None


class ShapeError(ValueError):
    """A persisted value does not have the shape this release writes. ``where`` is its path."""

    def __init__(self, where: str, message: str):
        super().__init__(f"{where}: {message}" if where else message)
        self.where = where
        self.detail = message


class Fields:
    """Typed reads from one JSON object, each error placed at ``where.field``."""

    __slots__ = ("data", "where")

    def __init__(self, data: Any, where: str):
        if not isinstance(data, Mapping):
            raise ShapeError(where, f"must be an object, not {_kind(data)}")
        self.data = data
        self.where = where

    def at(self, name: str) -> str:
        return f"{self.where}.{name}" if self.where else name

    def str(self, name: str, *, optional: bool = False) -> Any:
        value = self.data.get(name)
        if value is None and optional:
            return None
        if not isinstance(value, str):
            raise ShapeError(self.at(name), f"must be a string, not {_kind(value)}")
        return value

    def digest(self, name: str, *, optional: bool = False) -> Any:
        value = self.data.get(name)
        if value is None and optional:
            return None
        if not is_digest(value):
            raise ShapeError(self.at(name), f"must be a sha256 digest (64 hex digits), not {_kind(value)}")
        return value

    def int(self, name: str, *, optional: bool = False, default: int | None = None, minimum: int = 0) -> Any:
        value = self.data.get(name)
        if value is None:
            if optional:
                return default
            raise ShapeError(self.at(name), "is missing")
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ShapeError(self.at(name), f"must be a whole number >= {minimum}, not {_kind(value)}")
        return value

    def number(self, name: str) -> float | None:
        """An optional number (credits): None when absent or null."""
        value = self.data.get(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value or value < 0:
            raise ShapeError(self.at(name), f"must be a number >= 0, not {_kind(value)}")
        return float(value) if isinstance(value, float) else value

    def bool(self, name: str) -> bool | None:
        value = self.data.get(name)
        if value is None:
            return None
        if not isinstance(value, bool):
            raise ShapeError(self.at(name), f"must be true or false, not {_kind(value)}")
        return value

    def mapping(self, name: str) -> Mapping[str, Any]:
        value = self.data.get(name)
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise ShapeError(self.at(name), f"must be an object, not {_kind(value)}")
        return value

    def list(self, name: str) -> list[Any]:
        value = self.data.get(name)
        if value is None:
            return []
        if not isinstance(value, list):
            raise ShapeError(self.at(name), f"must be a list, not {_kind(value)}")
        return value


def _kind(value: Any) -> str:
    if value is None:
        return "missing"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"the string {shown!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__
