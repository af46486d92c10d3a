"""Hub fixtures: a real ``ncii-hub serve`` subprocess per test, on SQLite and PostgreSQL.

``hub_factory(*extra_args, data_dir=None)`` starts a hub (extra ``serve`` arguments such as
``--set ip_rate=1``) against this test's ``database_url``; ``hub`` is one started with fast
batching. Every process is SIGKILLed at teardown. Helpers live in hubkit.py.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from hubkit import HubFactory, HubProcess

FAST = ("--set", "batch_interval=0.05", "--set", "lock_retry_seconds=0.2")


@pytest.fixture
def hub_factory(tmp_path: Path, database_url: str) -> Iterator[HubFactory]:
    started: list[HubProcess] = []

    def make(*extra_args: str, data_dir: Path | None = None, start: bool = True) -> HubProcess:
        proc = HubProcess(data_dir or tmp_path / "data", database_url, (*FAST, *extra_args))
        started.append(proc)
        return proc.start() if start else proc

    yield make
    for proc in started:
        proc.kill()


@pytest.fixture
def hub(hub_factory: HubFactory) -> HubProcess:
    return hub_factory()
