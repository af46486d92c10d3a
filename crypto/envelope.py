"""Signed envelopes: Ed25519 signatures over exact bytes, with purpose, time and nonce.

Every request a case holder or a partner sends (submission, withdrawal, status query, partner
request) is one envelope. The signature covers a domain-separation prefix and every byte before
it, so a signature made for one purpose or protocol can never be replayed as another, and the
receiver verifies before it parses the body. Format: specs/envelope.md (v1).

Also the partner HTTP request signature (specs/envelope.md section 5): hubs authenticate
partners by signatures over (method, path, SHA-256 of body, timestamp, nonce), not bearer secrets.
"""

from __future__ import annotations

import enum
import hashlib
import os
import re
import struct
from dataclasses import dataclass, field

import nacl.signing
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from crypto._common import (
    ED25519_KEY_SIZE,
    ED25519_SIGNATURE_SIZE,
    MAX_INT63,
    b64url_decode_canonical,
    b64url_encode,
    check_int,
    ed25519_public_bytes,
    ed25519_signing_key,
    ed25519_verify,
)
from crypto.errors import (
    InvalidSignatureError,
    KeyFormatError,
    LimitExceededError,
    MalformedError,
    StaleMessageError,
    WrongPurposeError,
)
from crypto.keys import ALG_ED25519, SignerKey, VerifierKey

__all__ = [
    "DEFAULT_MAX_BODY",
    "DEFAULT_WINDOW_SECONDS",
    "MAGIC",
    "NONCE_SIZE",
    "SIGNATURE_DOMAIN",
    "VERSION",
    "OpenedEnvelope",
    "Purpose",
    "RequestSignature",
    "new_nonce",
    "open",
    "partner_request_message",
    "peek_public_key",
    "seal",
    "seal_now",
    "sign_partner_request",
    "verify_partner_request",
]

# specs/envelope.md section 3: the fixed layout.
MAGIC = b"NCEV"
VERSION = 1
SIGNATURE_DOMAIN = b"ncii-exchange/envelope/v1\x00"
NONCE_SIZE = 16
PUBLIC_KEY_SIZE = ED25519_KEY_SIZE
SIGNATURE_SIZE = ED25519_SIGNATURE_SIZE
MAX_PURPOSE_LEN = 64
MAX_TIMESTAMP = MAX_INT63
MAX_BODY_LEN_FIELD = 2**32 - 1
DEFAULT_MAX_BODY = 1 << 20
DEFAULT_WINDOW_SECONDS = 300

_PURPOSE_RE = re.compile(rb"[a-z0-9][a-z0-9./-]{0,63}")


class Purpose(enum.StrEnum):
    """The purposes the exchange signs; the wire carries the string, so new ones need no format
    change, but a receiver only accepts the one it expects."""

    SUBMISSION = "submission"
    WITHDRAWAL = "withdrawal"
    STATUS_QUERY = "status-query"
    PARTNER_REQUEST = "partner-request"


#: Ed25519 signing keys from pynacl (e.g. ``CaseSecret.signing_key()``), pyca, or a plain
#: (type 0x01) note key from ``crypto.keys``: all hold the same RFC 8032 seed.
SigningKeyLike = nacl.signing.SigningKey | Ed25519PrivateKey | SignerKey
PublicKeyLike = bytes | nacl.signing.VerifyKey | Ed25519PublicKey | VerifierKey


@dataclass(frozen=True, slots=True)
class OpenedEnvelope:
    """A verified envelope. ``body`` is the exact signed bytes; ``replay_key`` is what a
    receiver keeps (until ``timestamp + window``) to refuse a second delivery."""

    purpose: str
    public_key: bytes
    timestamp: int
    nonce: bytes
    # The body carries hash values: keep it out of repr so that logging an envelope is safe.
    body: bytes = field(repr=False)

    @property
    def replay_key(self) -> bytes:
        """Signer key || nonce (48 bytes): unique per sealed envelope of an honest signer."""
        return self.public_key + self.nonce


def new_nonce() -> bytes:
    """A fresh random 16-byte nonce (the only randomness envelopes need)."""
    return os.urandom(NONCE_SIZE)


def _seed_of(signing_key: SigningKeyLike) -> nacl.signing.SigningKey:
    if isinstance(signing_key, SignerKey):
        if signing_key.alg != ALG_ED25519:
            raise KeyFormatError("a witness (cosignature/v1) key only cosigns checkpoints")
        return nacl.signing.SigningKey(signing_key.seed)
    return ed25519_signing_key(signing_key)


def _public_bytes(public_key: PublicKeyLike) -> bytes:
    if isinstance(public_key, VerifierKey):
        return public_key.public_key
    return ed25519_public_bytes(public_key)


def _purpose_bytes(purpose: str) -> bytes:
    try:
        raw = purpose.encode("ascii")
    except UnicodeEncodeError:
        raise MalformedError("purpose must be ASCII") from None
    if _PURPOSE_RE.fullmatch(raw) is None:
        raise MalformedError(
            "purpose must be 1-64 characters of a-z 0-9 . / - starting with a letter or digit"
        )
    return raw


def _check_timestamp(timestamp: int) -> None:
    check_int(timestamp, MAX_TIMESTAMP, "timestamp (unix seconds)")


def _check_nonce(nonce: bytes) -> bytes:
    nonce = bytes(nonce)
    if len(nonce) != NONCE_SIZE:
        raise MalformedError(f"nonce must be {NONCE_SIZE} bytes, not {len(nonce)}")
    return nonce


def seal(
    signing_key: SigningKeyLike,
    purpose: str,
    body: bytes,
    timestamp: int,
    nonce: bytes,
) -> bytes:
    """Sign ``body`` for ``purpose`` at ``timestamp`` with ``nonce`` (deterministic: same inputs,
    same bytes). Layout in specs/envelope.md section 3."""
    key = _seed_of(signing_key)
    purpose_raw = _purpose_bytes(purpose)
    _check_timestamp(timestamp)
    nonce = _check_nonce(nonce)
    body = bytes(body)
    if len(body) > MAX_BODY_LEN_FIELD:
        raise LimitExceededError("body larger than 2**32-1 bytes")
    head = b"".join(
        (
            MAGIC,
            bytes((VERSION, len(purpose_raw))),
            purpose_raw,
            bytes(key.verify_key),
            struct.pack(">Q", timestamp),
            nonce,
            struct.pack(">I", len(body)),
            body,
        )
    )
    signature = key.sign(SIGNATURE_DOMAIN + head).signature
    return head + signature


def seal_now(signing_key: SigningKeyLike, purpose: str, body: bytes, timestamp: int) -> bytes:
    """:func:`seal` with a fresh random nonce; the caller still supplies the time."""
    return seal(signing_key, purpose, body, timestamp, new_nonce())


@dataclass(frozen=True, slots=True)
class _Layout:
    purpose: bytes
    public_key: bytes
    timestamp: int
    nonce: bytes
    body_start: int
    body_end: int


def _parse_layout(data: bytes, max_body: int) -> _Layout:
    """Locate every field; no field is interpreted beyond its length here."""
    n = len(data)
    if n < 6:
        raise MalformedError("envelope truncated before its header")
    if data[:4] != MAGIC:
        raise MalformedError("not a signed envelope (bad magic)")
    if data[4] != VERSION:
        raise WrongPurposeError(f"envelope version {data[4]} is not supported (expected {VERSION})")
    plen = data[5]
    if not 1 <= plen <= MAX_PURPOSE_LEN:
        raise MalformedError("envelope purpose length must be 1-64")
    pos = 6
    fixed = plen + PUBLIC_KEY_SIZE + 8 + NONCE_SIZE + 4
    if n < pos + fixed:
        raise MalformedError("envelope truncated inside its header")
    purpose = data[pos : pos + plen]
    pos += plen
    public_key = data[pos : pos + PUBLIC_KEY_SIZE]
    pos += PUBLIC_KEY_SIZE
    (timestamp,) = struct.unpack_from(">Q", data, pos)
    if timestamp > MAX_TIMESTAMP:
        raise MalformedError("envelope timestamp is above 2**63-1")
    pos += 8
    nonce = data[pos : pos + NONCE_SIZE]
    pos += NONCE_SIZE
    (body_len,) = struct.unpack_from(">I", data, pos)
    pos += 4
    if body_len > max_body:
        raise LimitExceededError(
            f"envelope body of {body_len} bytes exceeds the limit of {max_body}"
        )
    expected = pos + body_len + SIGNATURE_SIZE
    if n < expected:
        raise MalformedError("envelope truncated (body or signature missing)")
    if n > expected:
        raise MalformedError("trailing data after the envelope signature")
    return _Layout(purpose, public_key, timestamp, nonce, pos, pos + body_len)


def peek_public_key(data: bytes, max_body: int = DEFAULT_MAX_BODY) -> bytes:
    """The signer key an envelope claims, UNVERIFIED: only for choosing a policy (e.g. which
    partner record to load) before :func:`open`; never trust it on its own."""
    return bytes(_parse_layout(bytes(data), max_body).public_key)


def open(  # the natural verb: callers write envelope.open(...)
    data: bytes,
    expected_purpose: str,
    now: int,
    window_seconds: int = DEFAULT_WINDOW_SECONDS,
    max_body: int = DEFAULT_MAX_BODY,
) -> OpenedEnvelope:
    """Verify an envelope and return its exact body; raise on anything else.

    Order (specs/envelope.md section 4): size limit and layout, then the Ed25519 signature over
    the exact received bytes, then purpose, then ``|now - timestamp| <= window_seconds``.
    """
    if max_body < 0 or window_seconds < 0:
        raise MalformedError("max_body and window_seconds must be non-negative")
    data = bytes(data)
    if len(data) > max_body + 6 + MAX_PURPOSE_LEN + PUBLIC_KEY_SIZE + 28 + SIGNATURE_SIZE:
        raise LimitExceededError(f"envelope larger than allowed for a {max_body}-byte body")
    layout = _parse_layout(data, max_body)
    signed = data[: layout.body_end]
    signature = data[layout.body_end :]
    ed25519_verify(
        layout.public_key,
        SIGNATURE_DOMAIN + signed,
        signature,
        "envelope signature does not verify",
    )
    if _PURPOSE_RE.fullmatch(layout.purpose) is None:
        raise MalformedError("envelope purpose has characters outside a-z 0-9 . / -")
    purpose = layout.purpose.decode("ascii")
    if purpose != str(expected_purpose):
        raise WrongPurposeError(
            f"envelope made for {purpose!r}, expected {str(expected_purpose)!r}"
        )
    if abs(now - layout.timestamp) > window_seconds:
        raise StaleMessageError(
            f"envelope timestamp is {layout.timestamp - now:+d} s from now, outside the "
            f"{window_seconds} s window"
        )
    return OpenedEnvelope(
        purpose=purpose,
        public_key=bytes(layout.public_key),
        timestamp=layout.timestamp,
        nonce=bytes(layout.nonce),
        body=data[layout.body_start : layout.body_end],
    )


# -- partner HTTP requests (specs/envelope.md section 5) ------------------------------------

PARTNER_REQUEST_DOMAIN = b"ncii-exchange/partner-request/v1\n"
_METHOD_RE = re.compile(r"[A-Z]{1,16}")
_PATH_RE = re.compile(r"/[\x21-\x7e]{0,2047}")
_HEADER_RE = re.compile(
    r"v1 key=([A-Za-z0-9_-]{43}) ts=(0|[1-9][0-9]{0,18}) nonce=([0-9a-f]{32}) "
    r"sig=([A-Za-z0-9_-]{86})"
)


def partner_request_message(
    method: str, path: str, body_sha256: bytes, timestamp: int, nonce: bytes
) -> bytes:
    """The exact bytes a partner signs for one HTTP request."""
    if _METHOD_RE.fullmatch(method) is None:
        raise MalformedError("HTTP method must be 1-16 upper-case letters")
    if _PATH_RE.fullmatch(path) is None:
        raise MalformedError("request path must start with / and be printable ASCII, no spaces")
    if len(body_sha256) != 32:
        raise MalformedError("body_sha256 must be a 32-byte SHA-256 digest")
    _check_timestamp(timestamp)
    nonce = _check_nonce(nonce)
    text = f"{method}\n{path}\n{bytes(body_sha256).hex()}\n{timestamp}\n{nonce.hex()}\n"
    return PARTNER_REQUEST_DOMAIN + text.encode("ascii")


@dataclass(frozen=True, slots=True)
class RequestSignature:
    """What travels in the ``NCII-Signature`` header of a partner request."""

    public_key: bytes
    timestamp: int
    nonce: bytes
    signature: bytes

    def to_header(self) -> str:
        """``v1 key=<b64url> ts=<int> nonce=<hex> sig=<b64url>`` (specs/envelope.md 5.2)."""
        return (
            f"v1 key={b64url_encode(self.public_key)} ts={self.timestamp} "
            f"nonce={self.nonce.hex()} sig={b64url_encode(self.signature)}"
        )

    @classmethod
    def from_header(cls, value: str) -> RequestSignature:
        """Strictly parse a header value; anything but the exact canonical form is refused."""
        if not isinstance(value, str) or len(value) > 256:
            raise MalformedError("request signature header is missing or too long")
        match = _HEADER_RE.fullmatch(value)
        if match is None:
            raise MalformedError("request signature header does not follow the v1 format")
        timestamp = int(match.group(2))
        _check_timestamp(timestamp)
        return cls(
            public_key=b64url_decode_canonical(match.group(1), PUBLIC_KEY_SIZE, "header key"),
            timestamp=timestamp,
            nonce=bytes.fromhex(match.group(3)),
            signature=b64url_decode_canonical(match.group(4), SIGNATURE_SIZE, "header sig"),
        )

    @property
    def replay_key(self) -> bytes:
        """Signer key || nonce, for the hub's replay cache."""
        return self.public_key + self.nonce


def sign_partner_request(
    signing_key: SigningKeyLike,
    method: str,
    path: str,
    body: bytes,
    timestamp: int,
    nonce: bytes,
) -> RequestSignature:
    """Sign one HTTP request (deterministic given timestamp and nonce)."""
    key = _seed_of(signing_key)
    message = partner_request_message(method, path, hashlib.sha256(body).digest(), timestamp, nonce)
    return RequestSignature(
        public_key=bytes(key.verify_key),
        timestamp=timestamp,
        nonce=bytes(nonce),
        signature=key.sign(message).signature,
    )


def verify_partner_request(
    expected_public_key: PublicKeyLike,
    signature: RequestSignature,
    method: str,
    path: str,
    body: bytes,
    now: int,
    window_seconds: int = DEFAULT_WINDOW_SECONDS,
) -> None:
    """Raise unless ``signature`` is by ``expected_public_key`` over this exact request and
    its timestamp is within ``window_seconds`` of ``now``. Replay caching is the caller's."""
    expected = _public_bytes(expected_public_key)
    if len(signature.signature) != SIGNATURE_SIZE:
        raise MalformedError("request signature must be 64 bytes")
    if signature.public_key != expected:
        raise InvalidSignatureError("request signed by a different key than expected")
    message = partner_request_message(
        method, path, hashlib.sha256(body).digest(), signature.timestamp, signature.nonce
    )
    ed25519_verify(expected, message, signature.signature, "request signature does not verify")
    if abs(now - signature.timestamp) > window_seconds:
        raise StaleMessageError(
            f"request timestamp is {signature.timestamp - now:+d} s from now, outside the "
            f"{window_seconds} s window"
        )
