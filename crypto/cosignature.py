"""C2SP tlog-cosignature, Ed25519 cosignature/v1: witnesses vouching for checkpoints.

A cosignature is a note signature by a key of type 0x04 whose bytes are
timestamp (8, big-endian) || Ed25519 signature (64) over
``cosignature/v1\\ntime <timestamp>\\n`` + checkpoint text (specs/cosignature.md). The
message does not name the witness, so two witnesses sharing a public key are one witness:
quorum counting refuses such configurations.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from crypto.checkpoint import Checkpoint, parse_checkpoint
from crypto.errors import (
    KeyFormatError,
    MalformedError,
    NoKnownSignatureError,
    WrongPurposeError,
)
from crypto.keys import (
    ALG_COSIGNATURE_V1,
    ALG_ED25519,
    SignerKey,
    VerifierKey,
    cosignature_message,
    split_cosignature,
)
from crypto.note import (
    DEFAULT_MAX_NOTE_SIZE,
    DEFAULT_MAX_SIGNATURES,
    Note,
    NoteSignature,
    add_signatures,
    open_note,
    parse_note,
)

__all__ = [
    "Cosignature",
    "CosignedCheckpoint",
    "add_cosignature",
    "cosign_checkpoint",
    "cosignature_message",
    "open_cosigned_checkpoint",
    "parse_cosignature",
    "verify_cosignature",
]


@dataclass(frozen=True)
class Cosignature:
    """A decoded cosignature/v1 line: witness name and key ID, timestamp, Ed25519 signature."""

    name: str
    key_id: int
    timestamp: int
    signature: bytes


def parse_cosignature(sig: NoteSignature) -> Cosignature:
    """Split a cosignature/v1 signature line into its timestamp and Ed25519 signature."""
    timestamp, signature = split_cosignature(sig.signature)
    return Cosignature(sig.name, sig.key_id, timestamp, signature)


def _require_witness_signer(witness: SignerKey) -> None:
    if witness.alg != ALG_COSIGNATURE_V1:
        raise KeyFormatError("a witness signs with a cosignature/v1 (type 0x04) key")


def cosign_checkpoint(checkpoint: Checkpoint, witness: SignerKey, *, timestamp: int) -> bytes:
    """The cosignature line (newline included) a witness returns for ``checkpoint``.

    The caller (the witness) must first have verified the log's signature and consistency.
    """
    _require_witness_signer(witness)
    signature = witness.sign_note_signature(checkpoint.encode(), timestamp=timestamp)
    return NoteSignature(witness.name, witness.key_id, signature).encode_line()


def add_cosignature(
    data: bytes,
    witness: SignerKey,
    *,
    timestamp: int,
    max_size: int = DEFAULT_MAX_NOTE_SIZE,
    max_signatures: int = DEFAULT_MAX_SIGNATURES,
) -> bytes:
    """Append (or replace) this witness's cosignature on a signed checkpoint note.

    The text must decode as a checkpoint; the existing signatures are not checked here.
    """
    _require_witness_signer(witness)
    parse_checkpoint(parse_note(data, max_size=max_size, max_signatures=max_signatures).text)
    return add_signatures(
        data, [witness], timestamp=timestamp, max_size=max_size, max_signatures=max_signatures
    )


def _cosignatures_of(note: Note, witnesses: Sequence[VerifierKey]) -> tuple[Cosignature, ...]:
    found = []
    for key in witnesses:
        if key in note.verified_by:
            # Verified lines are well-formed 72-byte cosignatures; take the first by this key.
            found.append(parse_cosignature(note.signatures_by(key)[0]))
    return tuple(found)


def _check_witness_keys(witnesses: Sequence[VerifierKey]) -> None:
    publics = set()
    for key in witnesses:
        if not isinstance(key, VerifierKey) or key.alg != ALG_COSIGNATURE_V1:
            raise KeyFormatError("witness keys must be cosignature/v1 (type 0x04) verifier keys")
        if key.public_key in publics:
            raise KeyFormatError("two witness keys share a public key; they are one witness")
        publics.add(key.public_key)


def _checkpoint_of(note: Note, origin: str) -> Checkpoint:
    checkpoint = parse_checkpoint(note.text)
    if checkpoint.origin != origin:
        raise WrongPurposeError("checkpoint is for another log (origin does not match)")
    return checkpoint


def verify_cosignature(
    data: bytes,
    witness: VerifierKey,
    *,
    origin: str,
    max_size: int = DEFAULT_MAX_NOTE_SIZE,
    max_signatures: int = DEFAULT_MAX_SIGNATURES,
) -> Cosignature:
    """Verify one witness's cosignature on a checkpoint note and return it (with timestamp).

    Raises NoKnownSignatureError if the witness did not cosign, InvalidSignatureError if its
    line does not verify, WrongPurposeError if the checkpoint is for another log.
    """
    _check_witness_keys([witness])
    note = open_note(data, [witness], max_size=max_size, max_signatures=max_signatures)
    _checkpoint_of(note, origin)
    return _cosignatures_of(note, [witness])[0]


@dataclass(frozen=True)
class CosignedCheckpoint:
    """A checkpoint signed by its log and cosigned by at least a quorum of witnesses."""

    checkpoint: Checkpoint
    note: Note
    cosignatures: tuple[Cosignature, ...]


def open_cosigned_checkpoint(
    data: bytes,
    log_key: VerifierKey,
    witnesses: Sequence[VerifierKey],
    *,
    origin: str,
    quorum: int,
    max_size: int = DEFAULT_MAX_NOTE_SIZE,
    max_signatures: int = DEFAULT_MAX_SIGNATURES,
) -> CosignedCheckpoint:
    """Verify the log's signature and that at least ``quorum`` distinct witnesses cosigned.

    All trusted lines are verified in one pass, so any bad signature by the log or by a
    configured witness rejects the note (InvalidSignatureError). A missing log signature or
    too few cosignatures raise NoKnownSignatureError.
    """
    if log_key.alg != ALG_ED25519:
        raise KeyFormatError("the log key must be an Ed25519 (type 0x01) note key")
    _check_witness_keys(witnesses)
    if any(key.public_key == log_key.public_key for key in witnesses):
        # The log's own key under a witness name would let the log vouch for itself.
        raise KeyFormatError("a witness key has the log's public key; a log is not its witness")
    if isinstance(quorum, bool) or not isinstance(quorum, int):
        raise MalformedError("quorum must be an int")
    if not 0 <= quorum <= len(witnesses):
        raise MalformedError("quorum must be between 0 and the number of witnesses")
    note = open_note(data, [log_key, *witnesses], max_size=max_size, max_signatures=max_signatures)
    if log_key not in note.verified_by:
        raise NoKnownSignatureError("checkpoint is not signed by the log's key")
    checkpoint = _checkpoint_of(note, origin)
    cosignatures = _cosignatures_of(note, witnesses)
    if len(cosignatures) < quorum:
        raise NoKnownSignatureError(
            f"checkpoint has {len(cosignatures)} of the {quorum} witness cosignatures required"
        )
    return CosignedCheckpoint(checkpoint, note, cosignatures)
