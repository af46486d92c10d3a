"""The partner's witness policy: which witness keys it trusts and how many must cosign.

Why: a log signature alone cannot show that every partner sees the same log; k independent
witnesses that cosign only consistent checkpoints can (C2SP tlog-witness). The policy is
given once (``--witness VKEY ... --quorum K``) and kept in ``DIR/witness-policy.json`` so
that a later ``ncii-partner sync`` without flags cannot silently drop it
(specs/partner-store.md section 7).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crypto.cosignature import open_cosigned_checkpoint
from crypto.errors import CryptoError, KeyFormatError
from crypto.keys import ALG_COSIGNATURE_V1, VerifierKey, parse_verifier_key
from partner_sdk.errors import CheckpointSignatureError, UsageError, WitnessQuorumError

__all__ = [
    "POLICY_FILE",
    "WitnessPolicy",
    "check_quorum",
    "load_policy",
    "make_policy",
    "resolve_policy",
    "save_policy",
]

POLICY_FILE = "witness-policy.json"
MAX_POLICY_BYTES = 64 << 10


@dataclass(frozen=True)
class WitnessPolicy:
    """``quorum`` of ``witnesses`` (cosignature/v1 keys, distinct) must cosign each checkpoint."""

    witnesses: tuple[VerifierKey, ...]
    quorum: int

    def to_json(self) -> dict[str, Any]:
        return {"v": 1, "quorum": self.quorum, "witnesses": [k.encode() for k in self.witnesses]}


def make_policy(witnesses: Sequence[str | VerifierKey], quorum: int | None) -> WitnessPolicy:
    """Check keys and quorum; ``quorum`` None means all of them."""
    keys: list[VerifierKey] = []
    for item in witnesses:
        try:
            key = item if isinstance(item, VerifierKey) else parse_verifier_key(item.strip())
        except KeyFormatError:
            raise UsageError(
                "--witness is not a verifier key ('ncii-audit witness init' prints it)"
            ) from None
        if key.alg != ALG_COSIGNATURE_V1:
            raise UsageError(f"--witness {key.name}: not a cosignature/v1 (type 0x04) key")
        if any(k.public_key == key.public_key for k in keys):
            raise UsageError(f"--witness {key.name}: the same key is given twice")
        keys.append(key)
    need = len(keys) if quorum is None else quorum
    if isinstance(need, bool) or not isinstance(need, int) or not 0 <= need <= len(keys):
        raise UsageError(f"--quorum must be from 0 to the number of witnesses ({len(keys)})")
    return WitnessPolicy(tuple(keys), need)


def load_policy(directory: Path) -> WitnessPolicy | None:
    """The stored policy, or None if this partner never set one."""
    path = directory / POLICY_FILE
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_POLICY_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    try:
        if len(raw) > MAX_POLICY_BYTES:
            raise ValueError
        value = json.loads(raw)
        if not isinstance(value, dict) or value.get("v") != 1:
            raise ValueError
        items, quorum = value["witnesses"], value["quorum"]
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise ValueError
    except (ValueError, KeyError):
        raise UsageError(f"{path} is not a v1 witness policy; fix or delete it") from None
    return make_policy(items, quorum)


def save_policy(directory: Path, policy: WitnessPolicy) -> None:
    """Write the policy atomically (a crash leaves the old or the new file, never half)."""
    path = directory / POLICY_FILE
    tmp = directory / (POLICY_FILE + ".tmp")
    data = json.dumps(policy.to_json(), indent=1).encode() + b"\n"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.fchmod(fd, 0o600)  # a leftover .tmp keeps its old mode under O_CREAT
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror}") from None


def resolve_policy(
    directory: Path, witnesses: Sequence[str | VerifierKey] | None, quorum: int | None
) -> WitnessPolicy | None:
    """The policy for this sync: the flags given (they replace the stored one), else stored."""
    stored = load_policy(directory)
    if witnesses:
        return make_policy(witnesses, quorum)
    if quorum is not None:
        if stored is None:
            raise UsageError("--quorum needs --witness keys (none are stored yet)")
        return make_policy(stored.witnesses, quorum)
    return stored


def check_quorum(note: bytes, log_key: VerifierKey, policy: WitnessPolicy, origin: str) -> int:
    """Verify the log signature and every configured witness's line; return how many
    configured witnesses cosigned. WitnessQuorumError (naming the missing) below the quorum."""
    try:
        opened = open_cosigned_checkpoint(note, log_key, policy.witnesses, origin=origin, quorum=0)
    except CryptoError as exc:
        raise CheckpointSignatureError(
            f"the checkpoint or a witness cosignature on it does not verify: {exc}"
        ) from exc
    present = {(c.name, c.key_id) for c in opened.cosignatures}
    if len(present) < policy.quorum:
        missing = tuple(k.name for k in policy.witnesses if (k.name, k.key_id) not in present)
        raise WitnessQuorumError(len(present), policy.quorum, missing)
    return len(present)
