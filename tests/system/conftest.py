"""System-test fixtures: real hub processes (tests/hub/hubkit.py) on SQLite and PostgreSQL.

``hub_factory(*extra_serve_args, data_dir=None, start=True)`` is the same contract as in
tests/hub/conftest.py (fast batching preset; every process SIGKILLed at teardown).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "hub"))

from hubkit import HubFactory, HubProcess
from syskit import FAST


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
def sqlite_hub_factory(tmp_path: Path) -> Iterator[HubFactory]:
    """For tests where storage does not matter (HTTP edge, parsers): SQLite only."""
    started: list[HubProcess] = []

    def make(*extra_args: str, data_dir: Path | None = None, start: bool = True) -> HubProcess:
        url = f"sqlite:///{tmp_path / f'hub{len(started)}.sqlite3'}"
        proc = HubProcess(data_dir or tmp_path / f"data{len(started)}", url, (*FAST, *extra_args))
        started.append(proc)
        return proc.start() if start else proc

    yield make
    for proc in started:
        proc.kill()
