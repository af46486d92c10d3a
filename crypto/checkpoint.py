"""C2SP tlog-checkpoint: the signed tree head of a log (specs/checkpoint.md).

The note text is ``<origin>\\n<size>\\n<base64 root>\\n`` followed by optional extension lines.
Decoding is strict so that one checkpoint has exactly one text: a signature over any other
spelling of the same tree head does not verify.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from crypto.errors import MalformedError, WrongPurposeError
from crypto.keys import SignerKey, VerifierKey, b64decode_canonical
from crypto.note import (
    DEFAULT_MAX_NOTE_SIZE,
    DEFAULT_MAX_SIGNATURES,
    Note,
    check_note_text,
    open_note,
    sign_note,
)

__all__ = [
    "MAX_CHECKPOINT_SIZE",
    "Checkpoint",
    "SignedCheckpoint",
    "open_checkpoint",
    "parse_checkpoint",
    "sign_checkpoint",
]

#: The size line is a uint64 (C2SP). Merkle proofs in crypto.merkle stop at 2^63-1
#: (merkle's MAX_TREE_SIZE), so a larger size parses here but no proof for it verifies.
MAX_CHECKPOINT_SIZE: Final = 2**64 - 1
_HASH_SIZE: Final = 32
_SIZE_RE: Final = re.compile(r"0|[1-9][0-9]{0,19}")
_CONTROL: Final = re.compile(r"[\x00-\x1f]")


def _check_line(line: str, what: str) -> None:
    if not isinstance(line, str) or not line:
        raise MalformedError(f"checkpoint {what} must be a non-empty line")
    if _CONTROL.search(line):
        raise MalformedError(f"checkpoint {what} contains a newline or control character")
    try:
        line.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise MalformedError(f"checkpoint {what} is not valid UTF-8") from exc


@dataclass(frozen=True)
class Checkpoint:
    """A tree head: which log (origin), how many leaves (size), its RFC 9162 root hash.

    ``extensions`` are opaque extra lines; witnesses make no statement about them.
    """

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_line(self.origin, "origin")
        if isinstance(self.size, bool) or not isinstance(self.size, int):
            raise MalformedError("checkpoint size must be an int")
        if not 0 <= self.size <= MAX_CHECKPOINT_SIZE:
            raise MalformedError("checkpoint size must be between 0 and 2^64-1")
        if not isinstance(self.root_hash, bytes) or len(self.root_hash) != _HASH_SIZE:
            raise MalformedError(f"checkpoint root hash must be {_HASH_SIZE} bytes")
        if not isinstance(self.extensions, tuple):
            raise MalformedError("checkpoint extensions must be a tuple of lines")
        for ext in self.extensions:
            _check_line(ext, "extension line")

    def encode(self) -> bytes:
        """The checkpoint note text, final newline included."""
        lines = [self.origin, str(self.size), base64.b64encode(self.root_hash).decode("ascii")]
        return "".join(line + "\n" for line in (*lines, *self.extensions)).encode("utf-8")


def parse_checkpoint(text: bytes) -> Checkpoint:
    """Decode checkpoint note text (tlog-checkpoint §Note text), rejecting any other spelling.

    Size: ASCII decimal, no sign, no leading zero, at most 2^64-1. Root: canonical base64 of
    exactly 32 bytes. Every line non-empty; the text ends with a newline.
    """
    decoded = check_note_text(text)
    lines = decoded[:-1].split("\n")
    if len(lines) < 3:
        raise MalformedError("checkpoint needs origin, size and root hash lines")
    origin, size_text, root_text, *extensions = lines
    if not _SIZE_RE.fullmatch(size_text):
        raise MalformedError("checkpoint size is not a decimal without sign or leading zeros")
    size = int(size_text)
    if size > MAX_CHECKPOINT_SIZE:
        raise MalformedError("checkpoint size does not fit in 64 bits")
    root = b64decode_canonical(root_text, "checkpoint root hash")
    return Checkpoint(origin, size, root, tuple(extensions))


@dataclass(frozen=True)
class SignedCheckpoint:
    """A checkpoint together with the verified note that carried it."""

    checkpoint: Checkpoint
    note: Note


def sign_checkpoint(
    checkpoint: Checkpoint, signers: Sequence[SignerKey], *, timestamp: int | None = None
) -> bytes:
    """Sign the checkpoint text as a note (a log signs with its Ed25519 key)."""
    return sign_note(checkpoint.encode(), signers, timestamp=timestamp)


def open_checkpoint(
    data: bytes,
    known: Iterable[VerifierKey],
    *,
    origin: str,
    max_size: int = DEFAULT_MAX_NOTE_SIZE,
    max_signatures: int = DEFAULT_MAX_SIGNATURES,
) -> SignedCheckpoint:
    """Verify a signed checkpoint note, decode it, and check it is for log ``origin``.

    Signature failures raise as in :func:`crypto.note.open_note`; a checkpoint of another log
    raises WrongPurposeError, because its signature is valid but it answers another question.
    """
    note = open_note(data, known, max_size=max_size, max_signatures=max_signatures)
    checkpoint = parse_checkpoint(note.text)
    if checkpoint.origin != origin:
        raise WrongPurposeError("checkpoint is for another log (origin does not match)")
    return SignedCheckpoint(checkpoint, note)
