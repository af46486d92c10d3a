"""``ncii-client submitter-key new FILE``: a helpline's submitter key (specs/submitter.md).

Why: a helpline sends for many people from one office address. The hub operator registers the
helpline's public key (``ncii-hub submitter add``); submissions sent with
``ncii-client submit --submitter-key FILE`` then carry the helpline's signature as well as the
case's, and count against the helpline's limits instead of its address's. A person protecting
their own pictures never needs this: their path stays anonymous.

The key file is JSON ``{"v":1,"kind":"ncii-submitter-key","seed":"<base64url 32 bytes>"}``,
mode 0600; the public key is 43 characters of base64url.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
from pathlib import Path

import nacl.signing

from client.cli_common import EXIT_CODES_HELP, Output, guarded
from client.errors import StoreError, UsageError
from client.fsutil import atomic_write, read_limited
from crypto import boundedjson
from crypto.errors import CryptoError

__all__ = ["load_submitter_key", "public_key_text", "register"]


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _seed(text: object) -> bytes:
    if not isinstance(text, str) or len(text) != 43:
        raise ValueError("seed")
    try:
        raw = base64.urlsafe_b64decode(text + "=")
    except (binascii.Error, ValueError):
        raise ValueError("seed") from None
    if len(raw) != 32 or _b64url(raw) != text:
        raise ValueError("seed")
    return raw


_KIND = "ncii-submitter-key"

_EPILOG = (
    """\
examples:
  ncii-client submitter-key new helpline.key   make a key; send the line it prints to the hub
  ncii-client submitter-key new helpline.key --json
  ncii-client submit FOLDER --hub URL --submitter-key helpline.key

The file is secret (mode 0600): anyone holding it sends with the helpline's limits. If it
leaks, ask the hub operator to revoke it ('ncii-hub submitter revoke NAME') and make a new one.

"""
    + EXIT_CODES_HELP
)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "submitter-key",
        help="for helplines: make the key a hub registers as a trusted submitter",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="submitter_command", required=True)
    new = sub.add_parser(
        "new",
        help="write a new submitter key file (0600) and print its public key",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    new.add_argument("file", type=Path, help="where to write the key (must not exist)")
    new.add_argument("--json", action="store_true", help="print JSON")
    new.set_defaults(run=guarded(_new))


def public_key_text(key: nacl.signing.SigningKey) -> str:
    """The line the hub operator passes to ``ncii-hub submitter add --public-key``."""
    return _b64url(bytes(key.verify_key))


def load_submitter_key(path: Path) -> nacl.signing.SigningKey:
    """Read a submitter key file; refuse one other users can read."""
    try:
        mode = path.stat().st_mode & 0o777
    except OSError as exc:
        raise StoreError(f"could not read the submitter key {path} ({exc.strerror})") from None
    if mode & 0o077:
        raise UsageError(
            f"the submitter key {path} is readable by other users; run: chmod 600 {path}"
        )
    data = read_limited(path)
    try:
        value = boundedjson.loads(data, max_bytes=4096, max_depth=2)
        if not isinstance(value, dict) or value.get("v") != 1 or value.get("kind") != _KIND:
            raise ValueError
        seed = _seed(value["seed"])
    except (CryptoError, ValueError, KeyError, TypeError):
        raise UsageError(
            f"{path} is not a submitter key file (make one with 'ncii-client submitter-key new')"
        ) from None
    return nacl.signing.SigningKey(seed)


def _new(args: argparse.Namespace) -> int:
    out = Output(args.json)
    path: Path = args.file
    if path.exists():
        raise UsageError(f"{path} already exists; choose another file name")
    key = nacl.signing.SigningKey.generate()
    body = {"v": 1, "kind": _KIND, "seed": _b64url(bytes(key))}
    atomic_write(path, json.dumps(body).encode() + b"\n", 0o600)
    public = public_key_text(key)
    out.data({"file": str(path), "public_key": public})
    out.say(
        f"Wrote the submitter key {path} (keep it secret). Send this public key to the hub "
        f"operator, who registers it with:\n"
        f"  ncii-hub submitter add NAME --public-key={public}"
    )
    return 0
