"""C2SP tlog-witness wire formats: the add-checkpoint body, the 409 size body, the 200 answer.

    old <size>\\n
    <base64 hash>\\n          zero to 63 consistency proof lines
    \\n
    <signed checkpoint note>

Both sides of the protocol use this module: the hub (a log) encodes requests and parses the
witness's answers; the witness (auditor/) parses requests and encodes answers. Every parser
takes untrusted bytes and raises MalformedError (LimitExceededError when too large); nothing
here verifies a signature or a proof (specs/witness.md §2, specs/cosignature.md §5).
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
from crypto.note import (
    DEFAULT_MAX_NOTE_SIZE,
    DEFAULT_MAX_SIGNATURES,
    NoteSignature,
    UnverifiedNote,
    parse_note,
)

__all__ = [
    "MAX_PROOF_LINES",
    "MAX_REQUEST_BYTES",
    "MAX_RESPONSE_BYTES",
    "MAX_RESPONSE_LINES",
    "SIZE_CONTENT_TYPE",
    "AddCheckpointRequest",
    "attach_signatures",
    "encode_add_checkpoint",
    "encode_size_body",
    "parse_add_checkpoint",
    "parse_cosignature_response",
    "parse_size_body",
]

MAX_PROOF_LINES: Final = 63
"""tlog-witness: a client MUST NOT send more than 63 consistency proof lines."""
MAX_REQUEST_BYTES: Final = DEFAULT_MAX_NOTE_SIZE + 64 * 46
"""A note of the largest accepted size plus the old line and 63 proof lines."""
SIZE_CONTENT_TYPE: Final = "text/x.tlog.size"
"""tlog-witness: the 409 answer carries the witness's size with this content type."""
MAX_RESPONSE_LINES: Final = 16
"""Most signature lines accepted in one 200 answer (a witness returns one per key it holds)."""
MAX_RESPONSE_BYTES: Final = 16 << 10
"""Largest 200 answer read (16 lines of a long name and a 76-byte signature fit easily)."""
_SIZE_RE: Final = re.compile(rb"(0|[1-9][0-9]{0,19})")
_MAX_SIZE_BODY: Final = 21


@dataclass(frozen=True)
class AddCheckpointRequest:
    """A parsed request: nothing in it is verified yet."""

    old_size: int
    proof: tuple[bytes, ...]
    note: bytes


def _decimal(line: bytes, what: str) -> int:
    match = _SIZE_RE.fullmatch(line)
    if match is None:
        raise MalformedError(f"{what} must be a decimal size without leading zeros")
    value = int(match.group(1))
    if value > MAX_TREE_SIZE:
        raise LimitExceededError(f"{what} exceeds the largest supported tree size 2^63-1")
    return value


def _as_bytes(data: object, what: str) -> bytes:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise MalformedError(f"{what} must be bytes")
    return bytes(data)


def parse_add_checkpoint(body: bytes) -> AddCheckpointRequest:
    """Split a request body (specs/witness.md §2); MalformedError on any flaw."""
    body = _as_bytes(body, "request body")
    if len(body) > MAX_REQUEST_BYTES:
        raise LimitExceededError(f"request body is larger than {MAX_REQUEST_BYTES} bytes")
    pos = body.find(b"\n")
    if pos < 0 or not body.startswith(b"old "):
        raise MalformedError("request body must start with an 'old <size>' line")
    old_size = _decimal(body[4:pos], "old size")
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
        digest = b64decode_canonical(line, "consistency proof line")
        if len(digest) != 32:
            raise MalformedError("consistency proof line must be the base64 of 32 bytes")
        proof.append(digest)
    note = body[pos:]
    if not note:
        raise MalformedError("request body has no checkpoint after the empty line")
    return AddCheckpointRequest(old_size, tuple(proof), note)


def encode_add_checkpoint(old_size: int, proof: Sequence[bytes], note: bytes) -> bytes:
    """The request body a log POSTs to ``<witness>/add-checkpoint``."""
    if isinstance(old_size, bool) or not isinstance(old_size, int):
        raise MalformedError("old size must be an integer")
    if not 0 <= old_size <= MAX_TREE_SIZE:
        raise MalformedError("old size must be between 0 and 2^63-1")
    if len(proof) > MAX_PROOF_LINES:
        raise LimitExceededError(f"more than {MAX_PROOF_LINES} consistency proof lines")
    if old_size == 0 and proof:
        raise MalformedError("a consistency proof from size 0 must be empty")
    for digest in proof:
        if not isinstance(digest, bytes) or len(digest) != 32:
            raise MalformedError("each consistency proof hash must be 32 bytes")
    note = _as_bytes(note, "checkpoint note")
    if not note:
        raise MalformedError("the checkpoint note is empty")
    lines = [f"old {old_size}".encode()] + [base64.b64encode(h) for h in proof]
    return b"\n".join(lines) + b"\n\n" + note


def encode_size_body(size: int) -> bytes:
    """The body of a 409 answer: the witness's latest cosigned size and a newline."""
    if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= MAX_TREE_SIZE:
        raise MalformedError("size must be an integer between 0 and 2^63-1")
    return f"{size}\n".encode()


def parse_size_body(body: bytes) -> int:
    """Read a 409 answer's body: ASCII decimal, no leading zeros, then exactly one newline."""
    body = _as_bytes(body, "size body")
    if len(body) > _MAX_SIZE_BODY:
        raise LimitExceededError("size body is longer than a 2^63-1 size and a newline")
    if not body.endswith(b"\n"):
        raise MalformedError("size body must end with a newline")
    return _decimal(body[:-1], "size")


def parse_cosignature_response(body: bytes) -> tuple[NoteSignature, ...]:
    """Split a 200 answer into its signature lines (one or more, each ending in a newline).

    The lines are NOT verified: append them to the checkpoint and open it with the witness
    keys you trust (tlog-witness), e.g. with :func:`attach_signatures` then
    ``crypto.cosignature.verify_cosignature``.
    """
    body = _as_bytes(body, "witness answer")
    if len(body) > MAX_RESPONSE_BYTES:
        raise LimitExceededError(f"witness answer is larger than {MAX_RESPONSE_BYTES} bytes")
    if not body:
        raise MalformedError("witness answer has no signature line")
    if body.startswith(b"\n") or b"\n\n" in body:
        raise MalformedError("witness answer has an empty line; it must be signature lines only")
    if body.count(b"\n") > MAX_RESPONSE_LINES:
        raise LimitExceededError(f"witness answer has more than {MAX_RESPONSE_LINES} lines")
    # A one-line stand-in text lets the signed-note parser check every line's syntax.
    parsed = parse_note(b"x\n\n" + body, max_signatures=MAX_RESPONSE_LINES)
    return parsed.signatures


def attach_signatures(
    note: bytes,
    lines: Sequence[NoteSignature],
    *,
    max_size: int = DEFAULT_MAX_NOTE_SIZE,
    max_signatures: int = DEFAULT_MAX_SIGNATURES,
) -> bytes:
    """Append signature lines to a note, skipping any (name, key ID) the note already has.

    How a log serves its checkpoint "with cosignatures attached" (C2SP: the same note with
    extra signature lines). Nothing is verified; the result must still parse as a note within
    the limits (LimitExceededError otherwise).
    """
    parsed = parse_note(note, max_size=max_size, max_signatures=max_signatures)
    seen = {(s.name, s.key_id) for s in parsed.signatures}
    added: list[NoteSignature] = []
    for line in lines:
        if not isinstance(line, NoteSignature):
            raise MalformedError("signature lines must be NoteSignature values")
        if (line.name, line.key_id) not in seen:
            seen.add((line.name, line.key_id))
            added.append(line)
    if len(parsed.signatures) + len(added) > max_signatures:
        raise LimitExceededError(f"note would have more than {max_signatures} signatures")
    out = UnverifiedNote(parsed.text, parsed.signatures + tuple(added)).encode()
    if len(out) > max_size:
        raise LimitExceededError(f"note would be larger than {max_size} bytes")
    return out
