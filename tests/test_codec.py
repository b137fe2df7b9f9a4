"""Tests of recraft_build.cache.codec: canonical JSON, the strict reader, and the local and
remote record formats built on them."""

from __future__ import annotations

import hashlib
import json
from types import MappingProxyType

import pytest

from recraft_build.cache.codec import (
    AC_FORMAT,
    LOCAL_RECORD_MAGIC,
    canonical_json,
    decode_ac_entry,
    decode_local_record,
    encode_ac_entry,
    encode_local_record,
    read_json,
)
from recraft_build.engine import keys


def test_canonical_json_is_sorted_compact_utf8() -> None:
    value = {"b": [1, 2.5, None, True], "a": {"z": "é", "y": ("t", "u")}}
    assert canonical_json(value) == '{"a":{"y":["t","u"],"z":"é"},"b":[1,2.5,null,true]}'.encode()


def test_the_same_value_gives_the_same_bytes_whatever_its_order_or_mapping_type() -> None:
    one = {"x": 1, "y": {"k": "v", "j": "w"}}
    other = MappingProxyType({"y": MappingProxyType({"j": "w", "k": "v"}), "x": 1})
    assert canonical_json(one) == canonical_json(other)


def test_what_json_cannot_hold_is_refused() -> None:
    with pytest.raises(ValueError):
        canonical_json({"x": float("nan")})
    with pytest.raises(ValueError):
        canonical_json([float("inf")])
    with pytest.raises(TypeError, match="set"):
        canonical_json({"x": {1, 2}})


def test_keys_encode_through_the_codec_and_drop_none_only_there() -> None:
    value = {"b": None, "a": [1, None]}
    assert keys.canonical_json(value) == canonical_json({"a": [1, None]})
    assert canonical_json(value) == b'{"a":[1,null],"b":null}'


def test_read_json_round_trips_canonical_json() -> None:
    value = {"candidates": [{"sha256": "a" * 64, "size": [1, 2]}], "credits": 1.5, "note": "ü"}
    assert read_json(canonical_json(value)) == value
    assert read_json(bytearray(b"[1]")) == [1]


@pytest.mark.parametrize(
    "data",
    [
        b'{"a":1,"a":2}',  # duplicate key: which one would a reader believe?
        b'{"a":NaN}',
        b"[Infinity]",
        b"[-Infinity]",
        b"\xef\xbb\xbf{}",  # a byte-order mark
        b'{"a":"\xff"}',  # not UTF-8
        b'{"a":1} x',  # trailing text
        b"",
    ],
)
def test_read_json_refuses_what_is_not_strict_json(data: bytes) -> None:
    with pytest.raises(ValueError):
        read_json(data)


def test_local_record_round_trip_and_damage() -> None:
    record = {"candidates": [{"sha256": "b" * 64}], "credits": 1, "nothing": None}
    stored = encode_local_record(record)
    payload = canonical_json(record)
    assert stored == LOCAL_RECORD_MAGIC + hashlib.sha256(payload).hexdigest().encode() + b"\n" + payload
    assert decode_local_record(stored) == record
    assert decode_local_record(memoryview(stored)) == record
    flipped = bytearray(stored)
    flipped[-3] ^= 1
    assert decode_local_record(bytes(flipped)) is None  # checksum
    assert decode_local_record(stored[1:]) is None  # framing
    assert decode_local_record("text") is None
    # A payload whose checksum matches but that is not an object (or not strict JSON).
    for bad in (b"[1]", b'{"a":1,"a":1}'):
        framed = LOCAL_RECORD_MAGIC + hashlib.sha256(bad).hexdigest().encode() + b"\n" + bad
        assert decode_local_record(framed) is None


def test_remote_envelope_is_read_back_only_for_its_own_key_and_format() -> None:
    key = "c" * 64
    record = {"pick": {"sha256": "d" * 64}}
    body = encode_ac_entry(key, record)
    assert json.loads(body) == {"format": AC_FORMAT, "key": key, "record": record}
    assert body == canonical_json({"format": AC_FORMAT, "key": key, "record": record})
    assert decode_ac_entry(body, key) == record
    assert decode_ac_entry(body, "e" * 64) is None
    other_format = canonical_json({"format": "recraft-build/ac/0", "key": key, "record": record})
    assert decode_ac_entry(other_format, key) is None
    assert decode_ac_entry(canonical_json({"format": AC_FORMAT, "key": key, "record": [1]}), key) is None
    assert decode_ac_entry(b"<html>", key) is None
