"""Crash-safe file writes for the hub's public files (tiles, entry bundles, sealed batches).

A reader sees either the old file or the whole new one, never a torn write: the bytes go to a
temporary file in the same folder, which is written in full (a short write on a nearly full disk
is retried until it fails with ENOSPC), fsynced, renamed over the target, and the folder is
fsynced so that the rename survives a crash."""

from __future__ import annotations

import os
import secrets
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

_FSYNC_THREADS = 8  # concurrent fsyncs share the file system's journal commits
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _fsync_pool() -> ThreadPoolExecutor:
    """The process's writer threads, started once. Why not a pool per batch: starting and
    joining eight threads costs a GIL hand-over each, and in a hub whose request threads keep
    the GIL busy that made a round's tile batch a third slower."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(_FSYNC_THREADS, thread_name_prefix="ncii-fsync")
        return _pool


def write_atomically(target: Path, data: bytes, mode: int = 0o644) -> None:
    tmp = _write_temporary(target, data, mode)
    try:
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_directory(target.parent)


def _write_temporary(target: Path, data: bytes, mode: int) -> Path:
    """``data`` in full in a new temporary file beside ``target``, fsynced; its path."""
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
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def _fsync_directory(path: Path) -> None:
    dfd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def write_many_atomically(files: Sequence[tuple[Path, bytes]], mode: int = 0o644) -> None:
    """Each file as :func:`write_atomically` would write it, for a batch: all are written and
    fsynced (concurrently), then renamed in the order given, then each folder is fsynced once.

    Why: a sequencer round writes 5-25 tiles; one at a time that is two fsyncs each, in
    series, which under load took most of the round (specs/hub-storage.md section 5). Each
    file is still whole or absent after a crash; which of them were renamed before a crash
    is undefined, as with a crash between single writes. When this returns, all are durable.
    """
    if not files:
        return
    pool = _fsync_pool()
    written = [pool.submit(_write_temporary, target, data, mode) for target, data in files]
    temporaries: list[Path] = []
    failure: BaseException | None = None
    for future in written:
        try:
            temporaries.append(future.result())
        except BaseException as exc:  # every temporary is collected before failing
            failure = failure or exc
    try:
        if failure is not None:
            raise failure
        for i, ((target, _data), tmp) in enumerate(zip(files, temporaries, strict=True)):
            os.replace(tmp, target)
            temporaries[i] = target  # renamed: nothing left to clean up
    except BaseException:
        for tmp in temporaries:
            if tmp.name.endswith(".tmp"):
                tmp.unlink(missing_ok=True)
        raise
    folders = list(dict.fromkeys(target.parent for target, _data in files))
    for done in [pool.submit(_fsync_directory, folder) for folder in folders]:
        done.result()
