"""Partner feed fixtures: a real hub subprocess (SQLite and PostgreSQL) with fast sealing,
partners created with partner_sdk and registered in the hub's database, and a tampering
httpx transport that sits between the SDK and the hub (tamper tests never change hub code).
``FeedKit`` and ``Rewriter`` live in feedkit.py.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "hub"))

from feedkit import FEED_FAST, FeedKit
from hubkit import HubProcess


@pytest.fixture
def feed_hub_factory(tmp_path: Path, database_url: str) -> Iterator[Callable[..., HubProcess]]:
    started: list[HubProcess] = []

    def make(*extra: str, data_dir: Path | None = None) -> HubProcess:
        proc = HubProcess(data_dir or tmp_path / "data", database_url, (*FEED_FAST, *extra))
        started.append(proc)
        return proc.start()

    yield make
    for proc in started:
        proc.kill()


@pytest.fixture
def kit(feed_hub_factory: Callable[..., HubProcess], tmp_path: Path) -> Iterator[FeedKit]:
    k = FeedKit(feed_hub_factory(), tmp_path)
    yield k
    k.close()
