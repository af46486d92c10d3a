"""The batch plaintext (specs/feed.md section 3): hub encoder and SDK decoder agree, and the
decoder refuses every malformed variant; entry bodies and partner-public.json are strict."""

from __future__ import annotations

import base64
import json
import os
import struct

import nacl.signing
import pytest
from hypothesis import given
from hypothesis import strategies as st

from crypto.commitment import LeafData, LeafKind
from crypto.feed import load_recipient_private, recipient_public_bytes
from hub.feed import Redacted, Revealed, encode_plaintext
from hub.partners import RegistryError, parse_partner_keys
from hub.submission import addition_entry, tombstone_entry
from partner_sdk.batch import (
    Addition,
    EntryRecord,
    RedactedRecord,
    Tombstone,
    decode_batch,
    parse_entry_body,
)
from partner_sdk.errors import MalformedBatchError

PDQ = {"algorithm": "pdq", "hash": "ab" * 32, "quality": 90}
FRAME = {"frame": 0, "hash": "cd" * 32, "quality": 80, "timestamp": 0.5}
VPDQ = {"algorithm": "vpdq", "frames": [FRAME]}


def sample(start: int = 10) -> tuple[bytes, list[Revealed | Redacted]]:
    leaf = LeafData.for_entry(LeafKind.ADDITION, b"x", os.urandom(32)).encode()
    records: list[Revealed | Redacted] = [
        Revealed(1, os.urandom(32), addition_entry(PDQ)),
        Redacted(leaf, start + 3),
        Revealed(1, os.urandom(32), addition_entry(VPDQ)),
        Revealed(2, os.urandom(32), tombstone_entry(start + 1)),
    ]
    return encode_plaintext(start, start + 4, records), records


def test_round_trip() -> None:
    data, records = sample()
    decoded = decode_batch(data, 10, 14)
    assert decoded[0] == EntryRecord(LeafKind.ADDITION, records[0].salt, records[0].body)  # type: ignore[union-attr]
    assert decoded[1] == RedactedRecord(records[1].leaf_data, 13)  # type: ignore[union-attr]
    assert parse_entry_body(LeafKind.ADDITION, records[0].body) == Addition(  # type: ignore[union-attr]
        "pdq", bytes.fromhex("ab" * 32), 90
    )
    vpdq = parse_entry_body(LeafKind.ADDITION, records[2].body)  # type: ignore[union-attr]
    assert isinstance(vpdq, Addition) and vpdq.frames[0].hash == bytes.fromhex("cd" * 32)
    assert parse_entry_body(LeafKind.TOMBSTONE, records[3].body) == Tombstone(11)  # type: ignore[union-attr]


def _bad_variants() -> list[tuple[str, bytes, int, int]]:
    data, _ = sample()
    tomb_leaf = LeafData.for_entry(LeafKind.TOMBSTONE, b"x", os.urandom(32)).encode()
    return [
        ("empty", b"", 10, 14),
        ("magic", b"NCFX" + data[4:], 10, 14),
        ("version", data[:4] + b"\x02" + data[5:], 10, 14),
        ("other-range", data, 11, 15),
        ("shorter-range", data, 10, 13),
        ("count", data[:21] + struct.pack(">I", 3) + data[25:], 10, 14),
        ("truncated", data[:-1], 10, 14),
        ("trailing", data + b"\x00", 10, 14),
        ("unknown-tag", data[:25] + b"\x07" + data[26:], 10, 14),
        ("unknown-kind", data[:26] + b"\x03" + data[27:], 10, 14),
        ("body-past-end", data[:59] + b"\xff\xff\xff\xff" + data[63:], 10, 14),
        (
            "redacted-tombstone",
            encode_plaintext(0, 1, [Redacted(tomb_leaf, 5)]),
            0,
            1,
        ),
    ]


@pytest.mark.parametrize(
    ("name", "data", "start", "end"), _bad_variants(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_decoder_refuses(name: str, data: bytes, start: int, end: int) -> None:
    with pytest.raises(MalformedBatchError):
        decode_batch(data, start, end)


@given(st.binary(max_size=200))
def test_decoder_random_bytes_only_raise_malformed(data: bytes) -> None:
    try:
        decode_batch(data, 0, 3)
    except MalformedBatchError:
        pass


BAD_BODIES = {
    "not-json": (LeafKind.ADDITION, b"{"),
    "non-ascii": (LeafKind.ADDITION, '{"v":1,"kind":"addition","hash":"é"}'.encode()),
    "duplicate-key": (
        LeafKind.TOMBSTONE,
        b'{"kind":"tombstone","v":1,"withdraws":1,"withdraws":2}',
    ),
    "kind-mismatch": (LeafKind.TOMBSTONE, addition_entry(PDQ)),
    "v2": (LeafKind.TOMBSTONE, b'{"kind":"tombstone","v":2,"withdraws":1}'),
    "bool-index": (LeafKind.TOMBSTONE, b'{"kind":"tombstone","v":1,"withdraws":true}'),
    "negative-index": (LeafKind.TOMBSTONE, b'{"kind":"tombstone","v":1,"withdraws":-1}'),
    "upper-hex": (LeafKind.ADDITION, addition_entry({**PDQ, "hash": "AB" * 32})),
    "short-hex": (LeafKind.ADDITION, addition_entry({"algorithm": "md5", "hash": "ab" * 15})),
    "quality-range": (LeafKind.ADDITION, addition_entry({**PDQ, "quality": 101})),
    "extra-field": (LeafKind.ADDITION, addition_entry({**PDQ, "name": "x"})),
    "unknown-algorithm": (
        LeafKind.ADDITION,
        addition_entry({"algorithm": "photodna", "hash": "ab"}),
    ),
    "vpdq-no-frames": (LeafKind.ADDITION, addition_entry({"algorithm": "vpdq", "frames": []})),
    "vpdq-int-timestamp": (
        LeafKind.ADDITION,
        json.dumps(
            {
                "hash": {"algorithm": "vpdq", "frames": [{**FRAME, "timestamp": 1}]},
                "kind": "addition",
                "v": 1,
            }
        ).encode(),
    ),
}


@pytest.mark.parametrize("name", sorted(BAD_BODIES))
def test_entry_body_refused(name: str) -> None:
    kind, body = BAD_BODIES[name]
    with pytest.raises(MalformedBatchError):
        parse_entry_body(kind, body)


_SIGNER = nacl.signing.SigningKey(bytes(range(32)))
_FEED = recipient_public_bytes(load_recipient_private(bytes(range(1, 33))))


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _keys_json(**over: object) -> bytes:
    base: dict[str, object] = {
        "v": 1,
        "name": "examplecorp",
        "request_key": _b64(bytes(_SIGNER.verify_key)),
        "feed_key": _b64(_FEED),
    }
    base.update(over)
    return json.dumps(base).encode()


def test_partner_keys_file_accepted() -> None:
    keys = parse_partner_keys(_keys_json())
    assert keys.name == "examplecorp" and keys.feed_key == _FEED


@pytest.mark.parametrize(
    "data",
    [
        b"\xff",
        b"[]",
        _keys_json(v=2),
        _keys_json(v=True),
        _keys_json(name="Upper"),
        _keys_json(request_key=_b64(bytes(_SIGNER.verify_key))[:42]),
        _keys_json(feed_key=_b64(_FEED)[:42] + "="),
        _keys_json(feed_key=_b64(_FEED)[:42] + "B"),  # non-canonical last character
        _keys_json(feed_key="A" * 43),  # the all-zero X25519 point
        _keys_json(extra=1),
        b" " * 5000,
    ],
    ids=[
        "utf8",
        "array",
        "v2",
        "bool-v",
        "name",
        "short-key",
        "padded-key",
        "non-canonical",
        "zero-point",
        "extra",
        "huge",
    ],
)
def test_partner_keys_file_refused(data: bytes) -> None:
    with pytest.raises(RegistryError):
        parse_partner_keys(data)
