"""Witness fixtures: a real hub (``ncii-hub serve --witness ...``) with real witness processes.

``witnessed(n=2, name="hub", database_url=None, extra=())`` makes the hub's keys first (so the
witnesses can be told its verifier key), starts ``n`` ``ncii-audit witness serve`` processes
and then the hub configured with them. Every process is SIGKILLed at teardown. Helpers for
hubs and witnesses come from tests/hub/hubkit.py and tests/auditor/auditkit.py (reused, not
copied); they and the helpers are in witkit.py.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "hub"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "auditor"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from auditkit import WitnessProcess
from hubkit import HubProcess
from witkit import FAST, Witnessed, WitnessedFactory

from hub.keystore import load_keys


@pytest.fixture
def witnessed(tmp_path: Path) -> Iterator[WitnessedFactory]:
    hubs: list[HubProcess] = []
    witnesses: list[WitnessProcess] = []

    def make(
        n: int = 2,
        name: str = "hub",
        database_url: str | None = None,
        extra: tuple[str, ...] = (),
    ) -> Witnessed:
        data = tmp_path / name
        keys = load_keys(data, None)
        origin, vkey = keys.origin, keys.verifier.encode()
        ws = []
        for i in range(1, n + 1):
            w = WitnessProcess(tmp_path / f"{name}-witness-w{i}", f"w{i}", [f"{origin}={vkey}"])
            witnesses.append(w)
            ws.append(w.start())
        url = database_url or f"sqlite:///{data / 'hub.sqlite3'}"
        kit = Witnessed(HubProcess(data, url, ()), ws, origin, vkey)
        kit.hub.extra_args = (*FAST, *kit.witness_args(), *extra)
        hubs.append(kit.hub)
        kit.hub.start()
        return kit

    yield make
    for proc in hubs:
        proc.kill()
    for w in witnesses:
        w.kill()
