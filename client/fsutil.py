"""Crash-safe file writes for the data folder: temp file, fsync, rename, fsync the folder.

A power cut at any moment leaves either the old file or the new one, never a half-written one,
so a case secret or a receipt is never lost by an interrupted write (specs/client-store.md 2).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from client.errors import StoreError

__all__ = ["MAX_STORE_FILE", "atomic_write", "ensure_private_dir", "read_limited"]

MAX_STORE_FILE = 16 << 20  # no file of ours is near this; refuse to slurp anything bigger


def ensure_private_dir(path: Path) -> None:
    """Create ``path`` (and parents) with mode 0700; tighten it if it exists and is looser."""
    try:
        missing = []
        probe = path
        while not probe.exists() and probe != probe.parent:
            missing.append(probe)
            probe = probe.parent
        for folder in reversed(missing):  # every folder we create is 0700, whatever the umask
            folder.mkdir(mode=0o700, exist_ok=True)
            folder.chmod(0o700)
        if path.stat().st_mode & 0o077:
            path.chmod(0o700)
    except OSError as exc:
        raise StoreError(
            f"cannot use the folder {path} for your data ({exc.strerror}); "
            "choose another one with --home DIR"
        ) from None


def atomic_write(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Replace ``path`` with ``data`` atomically and durably."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise StoreError(
            f"could not save {path.name} in {path.parent} ({exc.strerror}); "
            "check free disk space and permissions, then try again"
        ) from None


def read_limited(path: Path) -> bytes:
    """Read one of our own files, refusing anything absurdly large (a damaged or planted file)."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_STORE_FILE + 1)
    except OSError as exc:
        raise StoreError(f"could not read {path} ({exc.strerror})") from None
    if len(data) > MAX_STORE_FILE:
        raise StoreError(f"{path} is far larger than any file this tool writes: it is damaged")
    return data
