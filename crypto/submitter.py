"""Trusted-submitter endorsements: a helpline's Ed25519 signature over a submission envelope.

Why a second signature: the case key proves the submission belongs to a case, but anyone can
make a case key. A helpline registered at the hub signs the exact envelope bytes as well, so
the hub can charge the submission to the helpline's (higher) limits instead of to its office's
address. The envelope is signed as bytes, after a domain-separation prefix, so the signature
can never be mistaken for any other signature in the protocol. Format: specs/envelope.md
section 6 (header ``NCII-Submitter: <key>:<signature>``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from crypto._common import (
    ED25519_KEY_SIZE,
    ED25519_SIGNATURE_SIZE,
    SigningKeyLike,
    b64url_decode_canonical,
    b64url_encode,
    ed25519_signing_key,
    ed25519_verify,
)
from crypto.errors import MalformedError

__all__ = [
    "SUBMITTER_DOMAIN",
    "SUBMITTER_HEADER",
    "Endorsement",
    "endorse",
    "verify_endorsement",
]

SUBMITTER_DOMAIN = b"ncii-exchange/submitter-endorsement/v1\n"
"""Prefix of every signed message: this string, then the envelope's exact bytes."""
SUBMITTER_HEADER = "NCII-Submitter"
_HEADER_RE = re.compile(r"([A-Za-z0-9_-]{43}):([A-Za-z0-9_-]{86})")


@dataclass(frozen=True, slots=True)
class Endorsement:
    """A submitter's public key and its signature over one envelope."""

    public_key: bytes
    signature: bytes

    def to_header(self) -> str:
        """``<b64url public key>:<b64url signature>`` (43 + 1 + 86 characters)."""
        return f"{b64url_encode(self.public_key)}:{b64url_encode(self.signature)}"

    @classmethod
    def from_header(cls, value: str) -> Endorsement:
        """Strictly parse a header value (the canonical form only)."""
        if not isinstance(value, str) or len(value) != 130:
            raise MalformedError("submitter header must be <key>:<signature> in base64url")
        match = _HEADER_RE.fullmatch(value)
        if match is None:
            raise MalformedError("submitter header must be <key>:<signature> in base64url")
        return cls(
            b64url_decode_canonical(match.group(1), ED25519_KEY_SIZE, "submitter key"),
            b64url_decode_canonical(match.group(2), ED25519_SIGNATURE_SIZE, "submitter signature"),
        )


def endorse(signing_key: SigningKeyLike, envelope_bytes: bytes) -> Endorsement:
    """Sign ``envelope_bytes`` (exactly as sent) as a trusted submitter."""
    key = ed25519_signing_key(signing_key)
    signature = key.sign(SUBMITTER_DOMAIN + bytes(envelope_bytes)).signature
    return Endorsement(bytes(key.verify_key), signature)


def verify_endorsement(endorsement: Endorsement, envelope_bytes: bytes) -> None:
    """Raise InvalidSignatureError unless the endorsement verifies over these exact bytes."""
    ed25519_verify(
        endorsement.public_key,
        SUBMITTER_DOMAIN + bytes(envelope_bytes),
        endorsement.signature,
        "the submitter signature does not verify over this envelope",
    )
