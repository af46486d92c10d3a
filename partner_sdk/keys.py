"""Partner keys on disk: Ed25519 request key and X25519 feed key, plus the public JSON.

Why files readable only by the owner: the request key authenticates the platform to the hub,
the feed key decrypts every hash. Layout: specs/partner-api.md section 2.
"""

from __future__ import annotations

import base64
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import nacl.signing
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from crypto.feed import generate_recipient_key, load_recipient_private, recipient_public_bytes
from partner_sdk.errors import UsageError

__all__ = [
    "DEFAULT_DIR",
    "PartnerKeys",
    "init_partner",
    "load_keys",
    "public_json",
]

DEFAULT_DIR = Path("ncii-partner-data")
REQUEST_KEY = "request.key"
FEED_KEY = "feed.key"
PUBLIC_FILE = "partner-public.json"
_HEX64 = re.compile(rb"[0-9a-f]{64}\n?")
_NAME_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


@dataclass(frozen=True)
class PartnerKeys:
    """A partner's private keys (never printed: repr shows the public halves only)."""

    name: str
    request_key: nacl.signing.SigningKey
    feed_key: X25519PrivateKey

    @property
    def request_public(self) -> bytes:
        return bytes(self.request_key.verify_key)

    @property
    def feed_public(self) -> bytes:
        return recipient_public_bytes(self.feed_key)

    def __repr__(self) -> str:
        return f"PartnerKeys(name={self.name!r}, request_public={self.request_public.hex()})"


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def public_json(keys: PartnerKeys) -> str:
    """The partner-public.json text the hub operator registers."""
    return json.dumps(
        {
            "v": 1,
            "name": keys.name,
            "request_key": _b64url(keys.request_public),
            "feed_key": _b64url(keys.feed_public),
        },
        separators=(",", ":"),
    )


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def init_partner(directory: Path, name: str) -> PartnerKeys:
    """Create DIR (0700) with fresh keys (0600) and partner-public.json; refuse to overwrite."""
    if _NAME_RE.fullmatch(name) is None:
        raise UsageError("a partner name is 1-64 of a-z 0-9 . _ - (starting with a letter/digit)")
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    for fname in (REQUEST_KEY, FEED_KEY):
        if (directory / fname).exists():
            raise UsageError(f"{directory / fname} exists; refusing to overwrite partner keys")
    request = nacl.signing.SigningKey.generate()
    feed = generate_recipient_key()
    from cryptography.hazmat.primitives import serialization

    feed_raw = feed.private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )
    _write_private(directory / REQUEST_KEY, bytes(request).hex().encode() + b"\n")
    _write_private(directory / FEED_KEY, feed_raw.hex().encode() + b"\n")
    keys = PartnerKeys(name, request, feed)
    (directory / PUBLIC_FILE).write_text(public_json(keys) + "\n", "utf-8")
    return keys


def _read_key(path: Path) -> bytes:
    try:
        mode = path.stat().st_mode & 0o777
        data = path.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"{path} is missing: run 'ncii-partner init' first") from None
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    if mode & 0o077:
        raise UsageError(f"{path} is readable by other users (mode {mode:o}); chmod 600 {path}")
    if _HEX64.fullmatch(data) is None:
        raise UsageError(f"{path} must hold 64 lowercase hex digits")
    return bytes.fromhex(data[:64].decode("ascii"))


def load_keys(directory: Path) -> PartnerKeys:
    """Load the keys written by :func:`init_partner`."""
    name = "partner"
    try:
        info = json.loads((directory / PUBLIC_FILE).read_text("utf-8"))
        if isinstance(info, dict) and isinstance(info.get("name"), str):
            name = info["name"]
    except (OSError, ValueError):
        pass
    request = nacl.signing.SigningKey(_read_key(directory / REQUEST_KEY))
    feed = load_recipient_private(_read_key(directory / FEED_KEY))
    return PartnerKeys(name, request, feed)
