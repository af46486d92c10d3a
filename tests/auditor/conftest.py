"""Auditor fixtures: a real hub, real witness processes, a forked copy of a hub's log.

``hub`` starts ``ncii-hub serve`` (tests/hub/hubkit.py) on SQLite; ``witness_factory`` starts
``ncii-audit witness serve`` subprocesses; ``StaticServer`` serves a directory of tiles over
HTTP (the "forked hub"); helpers live in auditkit.py.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "hub"))

from auditkit import StaticServer, WitnessProcess
from hubkit import HubProcess

FAST = ("--set", "batch_interval=0.05", "--set", "lock_retry_seconds=0.2")


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[HubProcess]:
    proc = HubProcess(tmp_path / "hubdata", f"sqlite:///{tmp_path / 'hub.sqlite3'}", FAST)
    proc.start()
    yield proc
    proc.kill()


WitnessFactory = Callable[..., WitnessProcess]


@pytest.fixture
def witness_factory(tmp_path: Path) -> Iterator[WitnessFactory]:
    started: list[WitnessProcess] = []

    def make(logs: list[str], name: str = "w1", state: Path | None = None) -> WitnessProcess:
        proc = WitnessProcess(tmp_path / f"witness-{name}", name, logs, state)
        started.append(proc)
        return proc.start()

    yield make
    for proc in started:
        proc.kill()


@pytest.fixture
def static_server() -> Iterator[Callable[[Path], StaticServer]]:
    servers: list[StaticServer] = []

    def make(root: Path) -> StaticServer:
        server = StaticServer(root)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()
