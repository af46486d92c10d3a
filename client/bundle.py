"""Offline bundles (``.ncii`` files): signed submission envelopes carried to another machine.

A helpline or an air-gapped computer signs with the case key and writes the envelopes to a file;
any machine can then upload them without the case secret. The file holds the envelopes and
nothing else: no names, paths, sizes or times beyond the envelope's own signed timestamp.
Format: specs/client-store.md section 5.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from client.errors import BundleFormatError
from crypto import boundedjson, envelope
from crypto.case import case_id
from crypto.errors import CryptoError

__all__ = ["BUNDLE_MAGIC", "MAX_BUNDLE_BYTES", "MAX_BUNDLE_ENVELOPES", "Bundle"]

BUNDLE_MAGIC = b"NCIIBNDL"
BUNDLE_VERSION = 1
MAX_BUNDLE_ENVELOPES = 10_000
MAX_BUNDLE_BYTES = 256 << 20
MAX_ENVELOPE_BODY = 64 << 20  # the hub's largest allowed max_body_bytes


@dataclass(frozen=True, slots=True)
class Bundle:
    """One or more submission envelopes of one case, in order."""

    envelopes: tuple[bytes, ...]

    def __init__(self, envelopes: list[bytes] | tuple[bytes, ...]) -> None:
        object.__setattr__(self, "envelopes", tuple(bytes(e) for e in envelopes))
        if not 1 <= len(self.envelopes) <= MAX_BUNDLE_ENVELOPES:
            raise BundleFormatError(
                f"a bundle holds 1 to {MAX_BUNDLE_ENVELOPES} signed submissions"
            )

    def encode(self) -> bytes:
        """magic, version, count, then each envelope with its u32 length."""
        parts = [BUNDLE_MAGIC, bytes((BUNDLE_VERSION,)), struct.pack(">I", len(self.envelopes))]
        for e in self.envelopes:
            parts += [struct.pack(">I", len(e)), e]
        return b"".join(parts)

    @classmethod
    def decode(cls, data: bytes) -> Bundle:
        """Parse and check a bundle: layout, every envelope's signature and purpose, one case.

        The signature is checked here so that a damaged file is caught before upload; the
        timestamp window is the hub's to judge."""
        bad = "this file is not a valid .ncii bundle"
        if len(data) > MAX_BUNDLE_BYTES:
            raise BundleFormatError(f"{bad}: it is far too large")
        if len(data) < 13 or data[:8] != BUNDLE_MAGIC:
            raise BundleFormatError(f"{bad} (it does not start like one)")
        if data[8] != BUNDLE_VERSION:
            raise BundleFormatError(
                f"{bad}: version {data[8]} is not supported by this ncii-client (update it)"
            )
        (count,) = struct.unpack_from(">I", data, 9)
        if not 1 <= count <= MAX_BUNDLE_ENVELOPES:
            raise BundleFormatError(f"{bad}: it declares {count} submissions")
        pos, envelopes = 13, []
        for _ in range(count):
            if pos + 4 > len(data):
                raise BundleFormatError(f"{bad}: it is cut short")
            (length,) = struct.unpack_from(">I", data, pos)
            pos += 4
            if pos + length > len(data):
                raise BundleFormatError(f"{bad}: it is cut short")
            envelopes.append(data[pos : pos + length])
            pos += length
        if pos != len(data):
            raise BundleFormatError(f"{bad}: extra data after the last submission")
        bundle = cls(envelopes)
        bundle.opened()
        return bundle

    def opened(self) -> list[envelope.OpenedEnvelope]:
        """Every envelope verified (signature, purpose ``submission``), ignoring time."""
        out = []
        for e in self.envelopes:
            try:
                out.append(
                    envelope.open(
                        e,
                        envelope.Purpose.SUBMISSION,
                        now=0,
                        window_seconds=envelope.MAX_TIMESTAMP,
                        max_body=MAX_ENVELOPE_BODY,
                    )
                )
            except CryptoError:
                raise BundleFormatError(
                    "this bundle is damaged: a submission in it is not validly signed"
                ) from None
        if len({o.public_key for o in out}) != 1:
            raise BundleFormatError("this bundle mixes submissions of several cases")
        return out

    @property
    def case_id(self) -> str:
        """The case that signed every envelope (not secret)."""
        return case_id(self.opened()[0].public_key)

    @property
    def signed_at(self) -> int:
        """The earliest signing time (unix seconds): the hub refuses it once it is too old."""
        return min(o.timestamp for o in self.opened())

    @property
    def hash_count(self) -> int:
        """How many fingerprints the bundle carries (bodies read only after verification)."""
        total = 0
        for o in self.opened():
            try:
                body = boundedjson.loads(o.body, max_bytes=MAX_ENVELOPE_BODY)
                total += len(body["hashes"])
            except (ValueError, KeyError, TypeError):
                raise BundleFormatError(
                    "this bundle holds a submission that is not readable"
                ) from None
        return total
