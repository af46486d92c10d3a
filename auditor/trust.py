"""What an auditor trusts about a log: its origin, its key, and optionally witnesses and a quorum.

A checkpoint is accepted when the log's own signature verifies (specs/checkpoint.md) and at
least ``quorum`` of the configured witnesses cosigned it (specs/cosignature.md). Without a log
key (a mirror whose checkpoint carries only witness cosignatures, as in
tests/vectors/note/sunlight-mirror) the quorum of witnesses alone vouches for it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from auditor.errors import ConfigError
from crypto.checkpoint import Checkpoint, parse_checkpoint
from crypto.cosignature import open_cosigned_checkpoint
from crypto.errors import KeyFormatError, NoKnownSignatureError, WrongPurposeError
from crypto.keys import ALG_COSIGNATURE_V1, ALG_ED25519, VerifierKey, parse_verifier_key
from crypto.note import open_note

__all__ = ["LogTrust", "VerifiedCheckpoint"]


@dataclass(frozen=True)
class VerifiedCheckpoint:
    """A checkpoint whose signatures verified, with the exact note bytes that carried it."""

    checkpoint: Checkpoint
    note: bytes

    @property
    def size(self) -> int:
        return self.checkpoint.size

    @property
    def root(self) -> bytes:
        return self.checkpoint.root_hash


@dataclass(frozen=True)
class LogTrust:
    """The keys that make a checkpoint of one log believable."""

    origin: str
    log_key: VerifierKey | None
    witnesses: tuple[VerifierKey, ...] = ()
    quorum: int = 0

    def __post_init__(self) -> None:
        if self.log_key is not None and self.log_key.alg != ALG_ED25519:
            raise ConfigError("the log key must be an Ed25519 (type 0x01) note verifier key")
        if any(w.alg != ALG_COSIGNATURE_V1 for w in self.witnesses):
            raise ConfigError("witness keys must be cosignature/v1 (type 0x04) verifier keys")
        if len({w.public_key for w in self.witnesses}) != len(self.witnesses):
            raise ConfigError("two witness keys share a public key; they are one witness")
        if not 0 <= self.quorum <= len(self.witnesses):
            raise ConfigError("the quorum must be between 0 and the number of witness keys")
        if self.log_key is None and self.quorum < 1:
            raise ConfigError("without --log-key, give --witness-key and a quorum of at least 1")

    @property
    def key_hash(self) -> str:
        """16 hex digits naming this log by origin and key (the witness keys when it has no log
        key): state and tile caches are kept per key hash, never shared by two logs."""
        if self.log_key is not None:
            material = "log " + self.log_key.encode()
        else:
            material = "witnesses " + " ".join(sorted(w.encode() for w in self.witnesses))
        return hashlib.sha256(f"{self.origin}\n{material}".encode()).hexdigest()[:16]

    @classmethod
    def from_strings(
        cls,
        log_key: str | None,
        witness_keys: Sequence[str] = (),
        *,
        origin: str | None = None,
        quorum: int | None = None,
    ) -> LogTrust:
        """Parse command-line key strings. The origin defaults to the log key's name (our logs
        name their key after their origin); the quorum defaults to every witness given."""
        try:
            lk = parse_verifier_key(log_key) if log_key is not None else None
            ws = tuple(parse_verifier_key(w) for w in witness_keys)
        except KeyFormatError as exc:
            raise ConfigError(f"bad verifier key: {exc}") from exc
        if origin is None:
            if lk is None:
                raise ConfigError("give --origin when no --log-key is given")
            origin = lk.name
        return cls(origin, lk, ws, len(ws) if quorum is None else quorum)

    def open(self, note: bytes) -> VerifiedCheckpoint:
        """Verify ``note`` as a checkpoint of this log or raise a crypto/ verification error.

        InvalidSignatureError: a line by a trusted key does not verify. NoKnownSignatureError:
        no log signature, or too few cosignatures. WrongPurposeError: another log's checkpoint.
        MalformedError: not a checkpoint note at all.
        """
        if self.log_key is not None:
            opened = open_cosigned_checkpoint(
                note, self.log_key, self.witnesses, origin=self.origin, quorum=self.quorum
            )
            return VerifiedCheckpoint(opened.checkpoint, bytes(note))
        verified = open_note(note, self.witnesses)
        if len(verified.verified_by) < self.quorum:
            raise NoKnownSignatureError(
                f"checkpoint has {len(verified.verified_by)} of the {self.quorum} "
                "witness cosignatures required"
            )
        checkpoint = parse_checkpoint(verified.text)
        if checkpoint.origin != self.origin:
            raise WrongPurposeError("checkpoint is for another log (origin does not match)")
        return VerifiedCheckpoint(checkpoint, bytes(note))
