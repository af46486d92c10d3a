"""The hub's secrets and fixed identity in its data directory: log key, master key, key store.

Why files and not the database: a database dump (backup, replica, support ticket) must reveal no
hash values, so every key able to decrypt one (the entry and batch keys in the key store,
keys.sqlite3, see hub.vault) stays out of the database, as do master.key (tombstones) and the
log key. Layout: specs/hub-storage.md section 2.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from crypto.errors import KeyFormatError
from crypto.keys import SignerKey, VerifierKey, generate_signer_key, parse_signer_key
from hub.settings import DEFAULT_ORIGIN, SettingsError
from hub.vault import VAULT_NAME, KeyVault, VaultError

__all__ = [
    "MASTER_KEY_SIZE",
    "HubKeys",
    "KeystoreError",
    "NoHubError",
    "load_identity",
    "load_keys",
    "prepare_data_dir",
    "require_identity",
]

MASTER_KEY_SIZE = 32
CONFIG_NAME = "hub.json"
LOG_KEY_NAME = "log.key"
MASTER_KEY_NAME = "master.key"


class KeystoreError(RuntimeError):
    """The data directory holds something the hub cannot use; the message says what to do."""


class NoHubError(KeystoreError):
    """The folder holds no hub at all, and this command may not create one (wrong folder?)."""


@dataclass(frozen=True, slots=True)
class HubKeys:
    """The loaded identity: origin, checkpoint signer, master key (tombstones) and key store."""

    origin: str
    signer: SignerKey
    master_key: bytes
    vault: KeyVault

    @property
    def verifier(self) -> VerifierKey:
        """The log's public verifier key (what clients, partners and witnesses pin)."""
        return self.signer.verifier

    def __repr__(self) -> str:
        return f"HubKeys(origin={self.origin!r}, verifier={self.verifier.encode()!r})"


def _write_new(path: Path, data: bytes) -> None:
    """Create ``path`` with mode 0600 (fails if it exists) and fsync it and its directory."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def _check_private(path: Path) -> None:
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise KeystoreError(
            f"{path} is readable by other users (mode {mode:o}); run: chmod 600 {path}"
        )


def prepare_data_dir(data_dir: Path) -> None:
    """Create the data directory (0700) and its tiles/ subdirectory if missing."""
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    (data_dir / "tiles").mkdir(mode=0o755, exist_ok=True)


def _load_origin(data_dir: Path, wanted: str | None) -> str:
    path = data_dir / CONFIG_NAME
    if path.exists():
        try:
            config = json.loads(path.read_text("utf-8"))
            origin = config["origin"]
            if not isinstance(origin, str):
                raise TypeError
        except (OSError, ValueError, KeyError, TypeError):
            raise KeystoreError(
                f"{path} is not a valid hub config (expected JSON with an origin)"
            ) from None
        if wanted is not None and wanted != origin:
            raise SettingsError(
                f"this data directory belongs to log {origin!r}; a log's origin never changes. "
                f"Drop --origin, or use a new --data directory for log {wanted!r}"
            )
        return origin
    origin = wanted if wanted is not None else DEFAULT_ORIGIN
    _write_new(path, json.dumps({"v": 1, "origin": origin}, indent=2).encode() + b"\n")
    return origin


def _load_signer(data_dir: Path, origin: str) -> SignerKey:
    path = data_dir / LOG_KEY_NAME
    if not path.exists():
        key = generate_signer_key(origin)
        _write_new(path, key.encode().encode("ascii") + b"\n")
        return key
    _check_private(path)
    try:
        key = parse_signer_key(path.read_bytes().strip())
    except (KeyFormatError, OSError):
        raise KeystoreError(f"{path} does not hold a valid note signer key") from None
    if key.name != origin:
        raise KeystoreError(f"{path} is a key for {key.name!r}, not for this log {origin!r}")
    return key


def _load_master(data_dir: Path) -> bytes:
    return load_hex_secret(data_dir / MASTER_KEY_NAME, MASTER_KEY_SIZE)


def load_hex_secret(path: Path, size: int) -> bytes:
    """A random ``size``-byte secret kept as hex in ``path`` (mode 0600), made on first use.

    Several hub processes may start at once on one data folder: the new secret is written
    whole to a private temporary file and hard-linked into place, so every process reads the
    one that was linked first and none ever sees a half-written file."""
    if not path.exists():
        tmp = path.parent / f".{path.name}.{secrets.token_hex(8)}.tmp"
        _write_new(tmp, secrets.token_bytes(size).hex().encode("ascii") + b"\n")
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process linked its secret first: use that one
        finally:
            tmp.unlink(missing_ok=True)
    _check_private(path)
    text = path.read_bytes().strip()
    try:
        raw = bytes.fromhex(text.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raw = b""
    if len(raw) != size:
        raise KeystoreError(f"{path} must hold {size} bytes as hex")
    return raw


def _where(data_dir: Path) -> str:
    return str(data_dir) if data_dir.is_absolute() else f"{data_dir} ({data_dir.absolute()})"


def require_identity(data_dir: Path) -> None:
    """Refuse unless ``data_dir`` holds a complete identity (nothing is created)."""
    if not (data_dir / CONFIG_NAME).is_file():
        raise NoHubError(
            f"there is no hub in {_where(data_dir)} (no {CONFIG_NAME}); nothing was created. "
            "Run this where the hub runs, or pass --data with the hub's data folder; "
            f"to start a new hub there, run: ncii-hub init --data {data_dir}"
        )
    for name in (LOG_KEY_NAME, MASTER_KEY_NAME, VAULT_NAME):
        if not (data_dir / name).is_file():
            raise KeystoreError(
                f"{data_dir / name} is missing from the hub in {_where(data_dir)}: restore it "
                "from a backup. A new one would not be this hub's (nothing was created)"
            )


def load_identity(data_dir: Path, origin: str | None) -> tuple[str, SignerKey]:
    """Origin and log key only, for commands that report (``ncii-hub keys``): nothing is
    created or written, and neither the master key nor the key store is opened (a report
    must work on a read-only copy and must not take the key store's locks)."""
    require_identity(data_dir)
    fixed_origin = _load_origin(data_dir, origin)
    return fixed_origin, _load_signer(data_dir, fixed_origin)


def load_keys(data_dir: Path, origin: str | None, *, create: bool = True) -> HubKeys:
    """Load origin, log key, master key and key store; with ``create`` (``serve``, ``init``)
    make whatever is missing on first start, else refuse (NoHubError, KeystoreError)."""
    if create:
        prepare_data_dir(data_dir)
    else:
        require_identity(data_dir)
    fixed_origin = _load_origin(data_dir, origin)
    signer, master = _load_signer(data_dir, fixed_origin), _load_master(data_dir)
    try:
        vault = KeyVault(data_dir / VAULT_NAME)
    except VaultError as exc:
        raise KeystoreError(str(exc)) from None
    return HubKeys(fixed_origin, signer, master, vault)
