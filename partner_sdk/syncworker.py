"""Worker processes for a large sync: the per-entry work of a batch on another core.

Why processes of our own and not multiprocessing: a spawned multiprocessing child runs the
parent's ``__main__`` again, and a partner's own script that calls ``Partner.sync()`` at top
level would run twice (or fail). These workers are a ``python -c`` that imports only this
module and partner_sdk.batch. Each reads requests from its stdin and answers on stdout,
one at a time: length-prefixed pickles, exchanged only between this process and its own
child over private pipes (the hub's bytes travel inside them as plain ``bytes``; nothing the
hub sends is ever unpickled). A worker only computes (:func:`partner_sdk.batch.prepare_batch`):
the parent compares the roots with the verified log before it applies anything.
"""

from __future__ import annotations

import os
import pickle
import queue
import signal
import struct
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, Any

from partner_sdk.batch import Prepared, pack_additions, prepare_batch

__all__ = ["WorkerPool"]

_LEN = struct.Struct(">Q")
# Largest message either way: a batch's plaintext is at most crypto.feed.DEFAULT_MAX_BATCH
# (256 MiB) and its prepared rows a few times that. Only our own processes write the pipe,
# but a broken one must not make the reader try to allocate an arbitrary length.
_MAX_MESSAGE = 4 << 30
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[1])
_PACKAGE_DIR = str(Path(__file__).resolve().parent)
# The worker needs batch.py and what it imports, not the package's __init__ (the matcher,
# the HTTP client...): an empty package module pointing at this folder saves about half a
# second of imports per worker.
_BOOT = (
    "import sys, types\n"
    "package = types.ModuleType('partner_sdk')\n"
    "package.__path__ = [sys.argv[1]]\n"
    "sys.modules['partner_sdk'] = package\n"
    "from partner_sdk.syncworker import main\n"
    "main()\n"
)


class WorkerGone(Exception):
    """A worker process exited or broke its pipe (the caller does the work itself)."""


def _write(stream: IO[bytes], obj: object) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_LEN.pack(len(data)))
    stream.write(data)
    stream.flush()


def _read(stream: IO[bytes]) -> Any:
    head = stream.read(_LEN.size)
    if len(head) != _LEN.size:
        raise WorkerGone
    (size,) = _LEN.unpack(head)
    if size > _MAX_MESSAGE:
        raise WorkerGone
    data = stream.read(size)
    if len(data) != size:
        raise WorkerGone
    return pickle.loads(data)  # noqa: S301 (only our own process, over a private pipe)


class _Worker:
    def __init__(self) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([_PACKAGE_ROOT, *filter(None, [env.get("PYTHONPATH")])])
        self.proc = subprocess.Popen(  # noqa: S603 (fixed: this Python, our boot code, folder)
            [sys.executable, "-P", "-c", _BOOT, _PACKAGE_DIR],  # -P: never the cwd's modules
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            close_fds=True,
        )

    def prepare(self, args: tuple[bytes, int, int, int, int]) -> Prepared:
        stdin, stdout = self.proc.stdin, self.proc.stdout
        assert stdin is not None and stdout is not None
        try:
            _write(stdin, args)
            ok, value = _read(stdout)
        except (OSError, EOFError, pickle.UnpicklingError) as exc:
            raise WorkerGone from exc
        if ok and isinstance(value, Prepared):
            return value
        if not ok and isinstance(value, Exception):
            raise value  # what prepare_batch raised there (e.g. MalformedBatchError)
        raise WorkerGone

    def close(self) -> None:
        try:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
            self.proc.wait(10)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        finally:
            if self.proc.stdout is not None:
                self.proc.stdout.close()


class WorkerPool:
    """``count`` worker processes; :meth:`prepare` is safe to call from several threads."""

    def __init__(self, count: int) -> None:
        self._idle: queue.SimpleQueue[_Worker] = queue.SimpleQueue()
        self._all: list[_Worker] = []
        self._gone = 0
        self._lock = threading.Lock()
        try:
            for _ in range(count):
                w = _Worker()
                self._all.append(w)
                self._idle.put(w)
        except OSError:
            self.close()
            raise

    def prepare(
        self, plaintext: bytes, start: int, end: int, apply_from: int, size: int
    ) -> Prepared:
        """:func:`prepare_batch` in a free worker (here, if every worker has gone)."""
        args = (plaintext, start, end, apply_from, size)
        while True:
            with self._lock:
                if self._gone == len(self._all):
                    return prepare_batch(*args)
            try:
                worker = self._idle.get(timeout=0.05)
            except queue.Empty:
                continue
            gone = False
            try:
                return worker.prepare(args)
            except WorkerGone:
                gone = True
                worker.proc.kill()
                worker.proc.wait()
                with self._lock:
                    self._gone += 1  # never put back: another worker, or here
            finally:
                if not gone:
                    self._idle.put(worker)  # also after a typed error from the batch

    def close(self) -> None:
        for w in self._all:
            w.close()


def main() -> None:
    """The worker's loop: one request in, one answer out, until stdin closes."""
    # Ctrl-C in a terminal reaches the whole process group: the parent decides, and a worker
    # ends when its stdin closes (the parent closed it, or exited).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    stdin = sys.stdin.buffer
    stdout = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a stray print must not corrupt the answers
    while True:
        try:
            args = _read(stdin)
        except WorkerGone:
            return
        try:
            prepared = prepare_batch(*args)
            pack_additions(prepared.plan)  # the parent inserts them in C (store.apply_batch)
            answer: tuple[bool, object] = (True, prepared)
        except Exception as exc:  # handed to the parent, which raises it
            answer = (False, exc)
        _write(stdout, answer)
