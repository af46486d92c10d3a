"""A C2SP tlog-witness: cosign a log's checkpoint only if it extends what was cosigned before.

:meth:`Witness.add_checkpoint` maps a request body to (status, content type, body) exactly as
specs/witness.md §3 orders the checks; it has no HTTP in it, so the service
(:mod:`auditor.witness_app`) stays a thin edge and the rules are testable directly. The clock
is a parameter (cosignature timestamps).
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from auditor.errors import ConfigError
from auditor.witness_store import LogRecord, WitnessStore
from crypto.checkpoint import open_checkpoint, parse_checkpoint
from crypto.cosignature import add_cosignature, cosign_checkpoint
from crypto.errors import (
    InvalidProofError,
    InvalidSignatureError,
    KeyFormatError,
    MalformedError,
    NoKnownSignatureError,
)
from crypto.keys import (
    ALG_COSIGNATURE_V1,
    ALG_ED25519,
    SignerKey,
    VerifierKey,
    generate_signer_key,
    parse_signer_key,
    parse_verifier_key,
)
from crypto.merkle import EMPTY_ROOT, MAX_TREE_SIZE, verify_consistency
from crypto.note import parse_note
from crypto.witness_protocol import SIZE_CONTENT_TYPE, encode_size_body, parse_add_checkpoint

__all__ = [
    "SIZE_CONTENT_TYPE",
    "Witness",
    "WitnessResponse",
    "create_key_file",
    "load_key_file",
    "parse_log_option",
]

TEXT: Final = "text/plain; charset=utf-8"


@dataclass(frozen=True)
class WitnessResponse:
    """What the HTTP edge sends back."""

    status: int
    content_type: str
    body: bytes


def _text(status: int, message: str) -> WitnessResponse:
    return WitnessResponse(status, TEXT, message.encode() + b"\n")


def _conflict(size: int) -> WitnessResponse:
    return WitnessResponse(409, SIZE_CONTENT_TYPE, encode_size_body(size))


def _system_clock() -> int:
    return int(time.time())


class Witness:
    """Checks and cosigns checkpoints of the configured logs (origin -> trusted log keys)."""

    def __init__(
        self,
        signer: SignerKey,
        logs: Mapping[str, Sequence[VerifierKey]],
        store: WitnessStore,
        clock: Callable[[], int] = _system_clock,
    ) -> None:
        if signer.alg != ALG_COSIGNATURE_V1:
            raise ConfigError("the witness key must be a cosignature/v1 (type 0x04) key")
        for origin, keys in logs.items():
            if not keys or any(k.alg != ALG_ED25519 for k in keys):
                raise ConfigError(f"log {origin!r}: give one or more Ed25519 (0x01) log keys")
        self.signer = signer
        self.logs = {origin: tuple(keys) for origin, keys in logs.items()}
        self.store = store
        self.clock = clock

    @property
    def verifier(self) -> VerifierKey:
        """The witness's public cosignature/v1 key (what logs and clients configure)."""
        return self.signer.verifier

    def add_checkpoint(self, body: bytes) -> WitnessResponse:
        """tlog-witness add-checkpoint: every check of specs/witness.md §3, in its order."""
        try:
            request = parse_add_checkpoint(body)
            unverified = parse_note(request.note)
            checkpoint = parse_checkpoint(unverified.text)
        except MalformedError as exc:
            return _text(400, f"malformed add-checkpoint request: {exc}")
        keys = self.logs.get(checkpoint.origin)
        if keys is None:
            return _text(404, "unknown log origin: this witness does not follow that log")
        try:
            open_checkpoint(request.note, keys, origin=checkpoint.origin)
        except (InvalidSignatureError, NoKnownSignatureError):
            return _text(403, "the checkpoint is not validly signed by a key of that log")
        if checkpoint.size > MAX_TREE_SIZE:
            return _text(400, "checkpoint size above 2^63-1 is not supported")
        if request.old_size > checkpoint.size:
            return _text(400, "old size is larger than the checkpoint size")
        with self.store.transaction() as tx:
            now = self.clock()
            record = tx.get(checkpoint.origin)
            known_size = record.size if record is not None else 0
            known_root = record.root if record is not None else EMPTY_ROOT
            refusal: WitnessResponse | None = None
            if request.old_size != known_size:
                refusal = _conflict(known_size)
            elif request.old_size == checkpoint.size and request.proof:
                refusal = _text(422, "a consistency proof between equal sizes must be empty")
            elif request.old_size == checkpoint.size and checkpoint.root_hash != known_root:
                refusal = _conflict(known_size)
            else:
                try:
                    verify_consistency(
                        request.old_size,
                        checkpoint.size,
                        request.proof,
                        known_root,
                        checkpoint.root_hash,
                    )
                except (InvalidProofError, MalformedError):
                    refusal = _text(422, "the consistency proof does not verify")
            if refusal is not None:
                tx.add_refusal(checkpoint.origin, refusal.status, request.old_size, body, now)
                return refusal
            line = cosign_checkpoint(checkpoint, self.signer, timestamp=now)
            note = add_cosignature(request.note, self.signer, timestamp=now)
            tx.put(LogRecord(checkpoint.origin, checkpoint.size, checkpoint.root_hash, note, now))
        return WitnessResponse(200, TEXT, line)

    def latest(self, origin: str) -> bytes | None:
        """The latest checkpoint cosigned for ``origin``, with the log's and our signatures."""
        record = self.store.get(origin)
        return record.note if record is not None else None


# -- keys and configuration -----------------------------------------------------------------


def create_key_file(path: Path, name: str) -> SignerKey:
    """Make a fresh cosignature/v1 key named ``name`` in a new file of mode 0600."""
    try:
        key = generate_signer_key(name, ALG_COSIGNATURE_V1)
    except KeyFormatError as exc:
        raise ConfigError(f"bad witness name: {exc}") from exc
    try:
        # Missing folders are made private (0700) one by one: mkdir(parents=True) would give
        # the intermediate ones the default mode.
        for folder in reversed([p for p in path.absolute().parents if not p.exists()]):
            folder.mkdir(mode=0o700, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise ConfigError(f"{path} exists; refusing to overwrite a witness key") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror}") from exc
    try:
        os.write(fd, key.encode().encode() + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    return key


def load_key_file(path: Path) -> SignerKey:
    """Read a witness key file; it must be readable by its owner only."""
    try:
        mode = path.stat().st_mode
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the witness key: {exc.strerror}") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(f"{path}: key file is readable by others; run chmod 600 on it")
    try:
        key = parse_signer_key(data.removesuffix(b"\n"))
    except KeyFormatError as exc:
        raise ConfigError(f"{path}: not a signer key file ({exc})") from None
    if key.alg != ALG_COSIGNATURE_V1:
        raise ConfigError(f"{path}: not a cosignature/v1 (type 0x04) witness key")
    return key


def parse_log_option(value: str) -> tuple[str, VerifierKey]:
    """``ORIGIN=VKEY`` (or just ``VKEY``, origin = key name) -> (origin, Ed25519 log key)."""
    try:
        key = parse_verifier_key(value)
        origin = key.name
    except KeyFormatError:
        origin, sep, vkey = value.partition("=")
        if not sep or not origin:
            raise ConfigError(f"--log {value!r}: expected ORIGIN=VKEY") from None
        try:
            key = parse_verifier_key(vkey)
        except KeyFormatError as exc:
            raise ConfigError(f"--log for {origin!r}: bad verifier key ({exc})") from None
    if key.alg != ALG_ED25519:
        raise ConfigError(f"--log for {origin!r}: log keys are Ed25519 (type 0x01)")
    return origin, key
