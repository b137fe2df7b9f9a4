"""The one canonical JSON codec, and the two record formats built on it.

Canonical JSON (:func:`canonical_json`) is what cache keys hash (``engine/keys.py``,
after it drops ``None`` values) and what every stored action record is made of (the
local store, and the HTTP, S3 and folder remotes), so the same value gives the same
bytes wherever it is written:

* object keys sorted, no insignificant white space (``","`` and ``":"``);
* UTF-8, with non-ASCII characters as they are (no ``\\u`` escapes);
* no ``NaN`` or ``Infinity`` (``ValueError``), nothing JSON cannot hold
  (``TypeError``); any ``Mapping`` is written as an object and a tuple as an array.

These rules are pinned by the golden key tests: a change here changes every key.

:func:`read_json` is the strict reader for bytes that come back from a disk or a
server: UTF-8 only, one JSON value, no ``NaN``/``Infinity`` constants, no duplicate
object keys. Anything else is a ``ValueError``, which callers turn into a miss.

The record formats:

* **Local** (:func:`encode_local_record`): ``MAGIC`` + sha256 of the payload + ``\\n``
  + the canonical JSON payload, so damage to a record is detected like damage to a blob
  (JSON that still parses is no proof).
* **Remote** (:func:`encode_ac_entry`): the body stored under ``ac/`` by every remote,
  the canonical JSON of ``{"format": AC_FORMAT, "key": KEY, "record": RECORD}``. The
  envelope lets a reader refuse an entry written for another key or by another format.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Mapping

__all__ = [
    "AC_FORMAT",
    "LOCAL_RECORD_MAGIC",
    "canonical_json",
    "decode_ac_entry",
    "decode_local_record",
    "encode_ac_entry",
    "encode_local_record",
    "read_json",
]

#: The ``format`` tag of the remote action-record envelope (bumped if it changes).
AC_FORMAT = "recraft-build/ac/1"

#: The first line of a record in the local store (bumped if the framing changes).
LOCAL_RECORD_MAGIC = b"recraft-build-record-v1\n"


def _as_json(obj: Any) -> Any:
    # Called by the encoder only for what it cannot write itself.
    if isinstance(obj, Mapping):
        return dict(obj)
    raise TypeError(f"JSON cannot hold a {type(obj).__name__}: {obj!r}")


# One encoder object: json.dumps() builds a new one on every call with these options.
_ENCODER = json.JSONEncoder(
    sort_keys=True,
    separators=(",", ":"),
    ensure_ascii=False,
    allow_nan=False,
    default=_as_json,
)


def canonical_json(value: Any) -> bytes:
    """The canonical JSON bytes of ``value`` (see the module docstring).

    ``None`` values are kept (``null``): a record must come back as it was stored;
    ``engine.keys`` drops them itself before hashing.
    """
    return _ENCODER.encode(value).encode("utf-8")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"JSON constant {name} is not allowed")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise ValueError(f"duplicate JSON object key {key!r}")
            seen.add(key)
    return obj


def read_json(data: bytes | bytearray | memoryview) -> Any:
    """The JSON value in ``data``, read strictly; ``ValueError`` for anything else.

    Refused: bytes that are not UTF-8 (or start with a byte-order mark), text that is
    not exactly one JSON value, ``NaN``/``Infinity``, an object with a duplicate key.
    """
    text = bytes(data).decode("utf-8")  # UnicodeDecodeError is a ValueError
    return json.loads(text, parse_constant=_refuse_constant, object_pairs_hook=_no_duplicates)


# --------------------------------------------------------------------------- local records


def encode_local_record(record: Mapping[str, Any]) -> bytes:
    """The bytes the local store keeps for ``record`` (checksummed canonical JSON).

    ``TypeError``/``ValueError`` for a record JSON cannot represent (a bug).
    """
    payload = canonical_json(record)
    return LOCAL_RECORD_MAGIC + hashlib.sha256(payload).hexdigest().encode("ascii") + b"\n" + payload


def decode_local_record(value: Any) -> dict[str, Any] | None:
    """The record in a stored value, or None when the value is damaged (wrong framing,
    checksum mismatch, unreadable JSON, not an object)."""
    if not isinstance(value, (bytes, bytearray, memoryview)):
        return None
    value = bytes(value)
    if not value.startswith(LOCAL_RECORD_MAGIC):
        return None
    head, sep, payload = value[len(LOCAL_RECORD_MAGIC):].partition(b"\n")
    if not sep or hashlib.sha256(payload).hexdigest().encode("ascii") != head:
        return None
    try:
        record = read_json(payload)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


# --------------------------------------------------------------------------- remote records


def encode_ac_entry(key: str, record: Mapping[str, Any]) -> bytes:
    """The bytes a remote stores under ``ac/`` for ``key`` (see the module docstring)."""
    return canonical_json({"format": AC_FORMAT, "key": key, "record": dict(record)})


def decode_ac_entry(body: bytes, key: str) -> dict[str, Any] | None:
    """The record in an ``ac/`` body, or None unless it is our envelope for this ``key``."""
    try:
        envelope = read_json(body)
    except ValueError:
        return None
    if (
        not isinstance(envelope, dict)
        or envelope.get("format") != AC_FORMAT
        or envelope.get("key") != key
        or not isinstance(envelope.get("record"), dict)
    ):
        return None
    record: dict[str, Any] = envelope["record"]
    return record
