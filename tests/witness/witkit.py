"""Helpers for witness tests: a hub configured with witness processes, polling helpers.

Imported as ``witkit`` (a unique module name, so several test directories can be collected
in one session); the ``witnessed`` fixture lives in conftest.py.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "hub"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "auditor"))

from auditkit import WitnessProcess
from hubkit import TLS, Case, HubProcess, mixed_hashes, post, wait_for_size

from hub.db.engine import make_engine
from hub.partners import PartnerRegistry, parse_partner_keys
from partner_sdk import init_partner
from partner_sdk.store import Store

FAST = (
    "--set", "batch_interval=0.05",
    "--set", "lock_retry_seconds=0.2",
    "--set", "feed_max_age=0.1",
    "--set", "feed_batch_entries=8",
    "--set", "witness_max_backoff=0.5",
    "--set", "witness_timeout=10",
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


def cosigned_by(hub: HubProcess, size: int, count: int, timeout: float = 60.0) -> bytes:
    """Poll /checkpoint until it shows ``size`` with ``count`` cosignature lines."""
    deadline = time.monotonic() + timeout
    # One client for the whole poll: a new one per probe cost 25 ms of CPU every 20 ms.
    with httpx.Client(base_url=hub.url, timeout=5, verify=TLS) as client:
        while True:
            note = client.get("/checkpoint").content
            head, _, sigs = note.partition(b"\n\n")
            if head.split(b"\n")[1] == str(size).encode() and sigs.count(b"\n") == 1 + count:
                return note
            if time.monotonic() > deadline:
                status = client.get("/v1/witnesses").text
                tail = "\n".join(hub.output().splitlines()[-80:])
                raise AssertionError(
                    f"/checkpoint never showed size {size} with {count}: {note!r}\n"
                    f"/v1/witnesses: {status}\nhub log (tail):\n{tail}"
                )
            time.sleep(0.02)


def new_partner(kit: Witnessed, root: Path, name: str) -> Path:
    directory = root / name
    init_partner(directory, name)
    engine = make_engine(kit.hub.database_url)
    try:
        keys = parse_partner_keys((directory / "partner-public.json").read_bytes())
        PartnerRegistry(engine).add(name, keys, int(time.time()))
    finally:
        engine.dispose()
    return directory


def stored_note(directory: Path) -> bytes:
    store = Store(directory / "store.sqlite3")
    try:
        cp = store.state().checkpoint
        assert cp is not None
        return cp.note
    finally:
        store.close()
