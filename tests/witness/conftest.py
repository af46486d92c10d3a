"""Witness fixtures: a real hub (``ncii-hub serve --witness ...``) with real witness processes.

``witnessed(n=2, name="hub", database_url=None, extra=())`` makes the hub's keys first (so the
witnesses can be told its verifier key), starts ``n`` ``ncii-audit witness serve`` processes
and then the hub configured with them. Every process is SIGKILLed at teardown. Helpers for
hubs and witnesses come from tests/hub/hubkit.py and tests/auditor/auditkit.py (reused, not
copied).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "hub"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "auditor"))

from auditkit import WitnessProcess
from hubkit import Case, HubProcess, mixed_hashes, post, wait_for_size

from hub.keystore import load_keys

FAST = (
    "--set", "batch_interval=0.05",
    "--set", "lock_retry_seconds=0.2",
    "--set", "feed_max_age=0.1",
    "--set", "feed_batch_entries=8",
    "--set", "witness_max_backoff=0.5",
    "--set", "witness_timeout=3",
)  # fmt: skip


@dataclass
class Witnessed:
    """A hub, its witnesses, and what partners pin."""

    hub: HubProcess
    witnesses: list[WitnessProcess]
    origin: str
    log_key: str
    started: list[HubProcess] = field(default_factory=list)

    def witness_args(self) -> list[str]:
        out: list[str] = []
        for w in self.witnesses:
            out += ["--witness", f"{w.name}={w.url}={w.verifier_key}"]
        return out

    @property
    def witness_keys(self) -> list[str]:
        return [w.verifier_key for w in self.witnesses]


WitnessedFactory = Callable[..., Witnessed]


def grow(hub: HubProcess, n: int) -> int:
    """Submit ``n`` hashes (one entry each) and wait for a checkpoint that includes them."""
    with hub.client() as client:
        before = int(client.get("/v1/log").json()["size"])
        answer = post(client, "/v1/submissions", Case().submission(mixed_hashes(n)))
        assert answer.status_code == 202, answer.text
        return int(wait_for_size(client, before + n))


def cosigned_by(hub: HubProcess, size: int, count: int, timeout: float = 20.0) -> bytes:
    """Poll /checkpoint until it shows ``size`` with ``count`` cosignature lines."""
    deadline = time.monotonic() + timeout
    while True:
        note = httpx.get(hub.url + "/checkpoint", timeout=5).content
        head, _, sigs = note.partition(b"\n\n")
        if head.split(b"\n")[1] == str(size).encode() and sigs.count(b"\n") == 1 + count:
            return note
        if time.monotonic() > deadline:
            raise AssertionError(f"/checkpoint never showed size {size} with {count}: {note!r}")
        time.sleep(0.02)


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
