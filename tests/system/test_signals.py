"""Every long-running command stops cleanly on SIGINT and SIGTERM (issue 18, finding 4).

Clean: no traceback, one calm line on stderr, state left usable, and the exit status of the
shared table (README "Exit codes"): 130 after SIGINT (Ctrl-C) for every command; after
SIGTERM, 0 for a service asked to stop (hub, witness, match service, monitor) and 143 for a
job that had not finished (sync, hashing). Real processes, real signals; SQLite only (the
signal handling does not depend on the database).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from syskit import FAST, PROJECT_ROOT, new_partner, wait_until

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "hub"))

from hubkit import Case, HubProcess, free_port, mixed_hashes, post, verifier_of, wait_for_size

BIN = Path(sys.executable).parent
SIGNALS = {"SIGINT": (signal.SIGINT, 130), "SIGTERM": (signal.SIGTERM, 0)}
JOB_SIGNALS = {"SIGINT": (signal.SIGINT, 130), "SIGTERM": (signal.SIGTERM, 143)}


class Running:
    """A command line in a subprocess, its stdout and stderr in files."""

    def __init__(self, tmp: Path, *argv: str) -> None:
        tag = f"{Path(argv[0]).name}-{time.monotonic_ns()}"
        self.out_path, self.err_path = tmp / f"{tag}.out", tmp / f"{tag}.err"
        env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
        env["PYTHONUNBUFFERED"] = "1"
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(
                argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL, cwd=tmp, env=env
            )

    @property
    def out(self) -> str:
        return self.out_path.read_text(errors="replace")

    @property
    def err(self) -> str:
        return self.err_path.read_text(errors="replace")

    def wait_for(self, predicate: Callable[[], bool], what: str) -> None:
        def ready() -> bool:
            assert self.proc.poll() is None, f"exited early: {self.out}\n{self.err}"
            return predicate()

        wait_until(ready, 60.0, what)

    def stop(self, *sigs: signal.Signals) -> int:
        for sig in sigs:
            self.proc.send_signal(sig)
            time.sleep(0.05)
        return self.proc.wait(60)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def _listening(port: int) -> Callable[[], bool]:
    def check() -> bool:
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    return check


def assert_clean(run: Running, code: int, expected: int, words: str) -> None:
    err = run.err
    assert code == expected, (code, err)
    assert "Traceback" not in err and "Traceback" not in run.out, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines and words in lines[-1], err  # the last line says what happened, calmly


@pytest.fixture
def tmp(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path


@pytest.fixture
def started(tmp: Path) -> Iterator[list[Running]]:
    runs: list[Running] = []
    yield runs
    for r in runs:
        r.kill()


def _hub(tmp: Path) -> HubProcess:
    return HubProcess(tmp / "data", f"sqlite:///{tmp / 'hub.sqlite3'}", FAST).start()


# -- services --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["SIGINT", "SIGTERM", "SIGINT-twice"])
def test_hub_serve(tmp: Path, name: str) -> None:
    sig, expected = SIGNALS[name.split("-")[0]]
    hub = _hub(tmp)
    try:
        with hub.client() as client:
            assert post(client, "/v1/submissions", Case().submission(mixed_hashes(3))).is_success
            wait_for_size(client, 3)
        assert hub.proc is not None
        hub.proc.send_signal(sig)
        if name.endswith("twice"):
            time.sleep(0.05)
            hub.proc.send_signal(sig)
        code = hub.proc.wait(60)
        out = hub.output()
        assert code == expected, (code, out)
        assert "Traceback" not in out, out
        last = [line for line in out.splitlines() if line.strip()][-1]
        assert last.startswith("ncii-hub: ") and ("interrupted" in last or "stopped" in last), out
        hub.start()  # the data folder is fine: the same log, nothing lost
        with hub.client() as client:
            assert wait_for_size(client, 3) == 3
    finally:
        hub.kill()


@pytest.mark.parametrize("name", ["SIGINT", "SIGTERM"])
def test_witness_serve(tmp: Path, started: list[Running], name: str) -> None:
    sig, expected = SIGNALS[name]
    audit = str(BIN / "ncii-audit")
    made = subprocess.run(
        [audit, "witness", "init", "--key", str(tmp / "w.key"), "--name", "w.example"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    from crypto.keys import generate_signer_key

    log_key = generate_signer_key("log.example").verifier.encode()
    port = free_port()
    run = Running(
        tmp, audit, "witness", "serve", "--key", str(tmp / "w.key"), "--state",
        str(tmp / "state"), "--port", str(port), "--log", f"log.example={log_key}",
    )  # fmt: skip
    started.append(run)
    run.wait_for(_listening(port), "witness listening")
    assert_clean(run, run.stop(sig), expected, "interrupted" if expected else "stopped")


@pytest.mark.parametrize("name", ["SIGINT", "SIGTERM"])
def test_partner_serve_monitor_and_sync(tmp: Path, started: list[Running], name: str) -> None:
    sig, expected = SIGNALS[name]
    job_expected = JOB_SIGNALS[name][1]
    words = "interrupted" if expected else "stopped"
    hub = _hub(tmp)
    try:
        with hub.client() as client:
            assert post(client, "/v1/submissions", Case().submission(mixed_hashes(4))).is_success
            wait_for_size(client, 4)
            key, _origin = verifier_of(client)
        vkey = key.encode()
        partner_dir = new_partner(hub, tmp / "partner", "sigco")
        partner = str(BIN / "ncii-partner")
        wait_until(
            lambda: subprocess.run(
                [partner, "sync", "--dir", str(partner_dir), "--hub", hub.url, "--log-key", vkey],
                capture_output=True, text=True, timeout=120, check=False,
            ).stdout.startswith("synced 4"),
            60.0, "first sync",
        )  # fmt: skip

        port = free_port()
        serve = Running(tmp, partner, "serve", "--dir", str(partner_dir), "--port", str(port))
        started.append(serve)
        serve.wait_for(_listening(port), "match service listening")
        assert_clean(serve, serve.stop(sig), expected, words)

        monitor = Running(
            tmp, str(BIN / "ncii-audit"), "monitor", "--log", hub.url, "--log-key", vkey,
            "--interval", "30", "--state", str(tmp / "monitor"),
        )  # fmt: skip
        started.append(monitor)
        monitor.wait_for(lambda: "ok:" in monitor.out, "first monitor round")
        assert_clean(monitor, monitor.stop(sig), expected, words)

        # A sync stopped mid-way (its hub answers nothing): stops, keeps the store usable.
        silent = socket.socket()
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        accepted = threading.Event()

        def accept() -> None:
            conns = []
            while True:
                try:
                    conns.append(silent.accept()[0])
                except OSError:
                    return
                accepted.set()

        threading.Thread(target=accept, daemon=True).start()
        other = tmp / "partner2"
        shutil.copytree(partner_dir, other)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        sync = Running(tmp, partner, "sync", "--dir", str(other), "--hub", url)
        started.append(sync)
        sync.wait_for(accepted.is_set, "sync waiting for its hub")
        job_words = "interrupted" if sig == signal.SIGINT else "stopped"
        assert_clean(sync, sync.stop(sig), job_expected, job_words)
        silent.close()
        again = subprocess.run(
            [partner, "sync", "--dir", str(other), "--hub", hub.url],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert again.returncode == 0, again.stderr
        assert "cursor 4 of verified checkpoint 4" in again.stdout
    finally:
        hub.kill()


# -- jobs ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["SIGINT", "SIGTERM"])
def test_client_hashing(tmp: Path, started: list[Running], name: str) -> None:
    import numpy as np
    from PIL import Image

    sig, expected = JOB_SIGNALS[name]
    pics = tmp / "pics"
    pics.mkdir()
    rng = np.random.default_rng(3)
    Image.fromarray(rng.integers(0, 255, (1200, 1200, 3), dtype=np.uint8)).save(pics / "0.png")
    for i in range(1, 40):
        shutil.copy(pics / "0.png", pics / f"{i}.png")
    run = Running(tmp, str(BIN / "ncii-client"), "hash", str(pics))
    started.append(run)
    run.wait_for(lambda: "pdq" in run.out, "the first file hashed")
    assert_clean(run, run.stop(sig), expected, "interrupted" if expected == 130 else "stopped")
    assert PROJECT_ROOT.is_dir()


@pytest.mark.parametrize("name", ["SIGINT", "SIGTERM"])
def test_client_ui_page_server(tmp: Path, started: list[Running], name: str) -> None:
    sig, expected = SIGNALS[name]
    port = free_port()
    client = str(BIN / "ncii-client")
    run = Running(tmp, client, "ui", "--no-browser", "--port", str(port), "--home", str(tmp / "c"))
    started.append(run)
    run.wait_for(_listening(port), "the page server listening")
    assert_clean(run, run.stop(sig), expected, "interrupted" if expected else "stopped")
