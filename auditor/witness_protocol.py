"""The C2SP tlog-witness add-checkpoint request body (specs/witness.md §2).

    old <size>\\n
    <base64 hash>\\n          zero to 63 consistency proof lines
    \\n
    <signed checkpoint note>

Parsing is strict (every rule below is a 400 at the witness) and takes untrusted bytes. The
encoder is what a log (the hub) sends; it is three lines of code, written here once so that
the two sides are tested against each other.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from crypto.errors import LimitExceededError, MalformedError
from crypto.keys import b64decode_canonical
from crypto.merkle import MAX_TREE_SIZE
from crypto.note import DEFAULT_MAX_NOTE_SIZE

__all__ = [
    "MAX_PROOF_LINES",
    "MAX_REQUEST_BYTES",
    "AddCheckpointRequest",
    "encode_add_checkpoint",
    "parse_add_checkpoint",
]

MAX_PROOF_LINES: Final = 63
"""tlog-witness: a client MUST NOT send more than 63 consistency proof lines."""
MAX_REQUEST_BYTES: Final = DEFAULT_MAX_NOTE_SIZE + 64 * 46
"""A note of the largest accepted size plus the old line and 63 proof lines."""
_OLD_RE: Final = re.compile(rb"old (0|[1-9][0-9]{0,19})")


@dataclass(frozen=True)
class AddCheckpointRequest:
    """A parsed request: nothing in it is verified yet."""

    old_size: int
    proof: tuple[bytes, ...]
    note: bytes


def parse_add_checkpoint(body: bytes) -> AddCheckpointRequest:
    """Split a request body; MalformedError (LimitExceededError when too large) on any flaw."""
    if not isinstance(body, bytes | bytearray | memoryview):
        raise MalformedError("request body must be bytes")
    body = bytes(body)
    if len(body) > MAX_REQUEST_BYTES:
        raise LimitExceededError(f"request body is larger than {MAX_REQUEST_BYTES} bytes")
    pos = body.find(b"\n")
    if pos < 0:
        raise MalformedError("request body must start with an 'old <size>' line")
    match = _OLD_RE.fullmatch(body[:pos])
    if match is None:
        raise MalformedError("first line must be 'old <size>' (decimal, no leading zeros)")
    old_size = int(match.group(1))
    if old_size > MAX_TREE_SIZE:
        raise LimitExceededError("old size exceeds the largest supported tree size 2^63-1")
    proof: list[bytes] = []
    pos += 1
    while True:
        end = body.find(b"\n", pos)
        if end < 0:
            raise MalformedError("request body has no empty line before the checkpoint")
        line = body[pos:end]
        pos = end + 1
        if not line:
            break
        if len(proof) == MAX_PROOF_LINES:
            raise LimitExceededError(f"more than {MAX_PROOF_LINES} consistency proof lines")
        try:
            digest = b64decode_canonical(line.decode("ascii"), "consistency proof line")
        except UnicodeDecodeError as exc:
            raise MalformedError("consistency proof line is not ASCII base64") from exc
        if len(digest) != 32:
            raise MalformedError("consistency proof line must be the base64 of 32 bytes")
        proof.append(digest)
    note = body[pos:]
    if not note:
        raise MalformedError("request body has no checkpoint after the empty line")
    return AddCheckpointRequest(old_size, tuple(proof), note)


def encode_add_checkpoint(old_size: int, proof: Sequence[bytes], note: bytes) -> bytes:
    """The request body a log POSTs to ``<witness>/add-checkpoint``."""
    if isinstance(old_size, bool) or not isinstance(old_size, int) or old_size < 0:
        raise MalformedError("old size must be a non-negative integer")
    if len(proof) > MAX_PROOF_LINES:
        raise LimitExceededError(f"more than {MAX_PROOF_LINES} consistency proof lines")
    lines = [f"old {old_size}".encode()] + [base64.b64encode(h) for h in proof]
    return b"\n".join(lines) + b"\n\n" + bytes(note)
