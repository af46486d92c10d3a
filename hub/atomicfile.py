"""Crash-safe file writes for the hub's public files (tiles, entry bundles, sealed batches).

A reader sees either the old file or the whole new one, never a torn write: the bytes go to a
temporary file in the same folder, which is written in full (a short write on a nearly full disk
is retried until it fails with ENOSPC), fsynced, renamed over the target, and the folder is
fsynced so that the rename survives a crash."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def write_atomically(target: Path, data: bytes, mode: int = 0o644) -> None:
    tmp = target.parent / f".{target.name}.{secrets.token_hex(8)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    dfd = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
