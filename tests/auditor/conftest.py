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


@pytest.fixture(autouse=True)
def _own_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test runs in its own folder: the default state (./ncii-audit-state) lands there."""
    monkeypatch.chdir(tmp_path)


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


# -- one hub, a snapshot of its early log, and forks of it, shared by the read-only tests ----


import secrets  # noqa: E402
import shutil  # noqa: E402

from auditkit import Scenario, checkpoint_file, extend_log, grow_hub  # noqa: E402
from hubkit import verifier_of  # noqa: E402

from crypto.keys import parse_signer_key  # noqa: E402


@pytest.fixture(scope="session")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    base = tmp_path_factory.mktemp("scenario")
    hub = HubProcess(base / "hubdata", f"sqlite:///{base / 'hub.sqlite3'}", FAST)
    hub.start()
    servers: list[StaticServer] = []
    try:
        grow_hub(hub, 3)
        tiles = hub.data_dir / "tiles"
        note3 = checkpoint_file(hub, 3)
        snap3 = base / "snap3"
        shutil.copytree(tiles, snap3)
        grow_hub(hub, 300)
        note303 = checkpoint_file(hub, 303)
        hub_copy = base / "hub-copy"
        shutil.copytree(tiles, hub_copy)
        with hub.client() as client:
            vkey, origin = verifier_of(client)
        key = parse_signer_key((hub.data_dir / "log.key").read_bytes().strip())
        forks = {}
        for name, n in (("same", 300), ("longer", 400)):
            target = base / f"fork-{name}"
            shutil.copytree(snap3, target)
            extend_log(target, 3, [secrets.token_bytes(34) for _ in range(n)], key, origin)
            forks[name] = StaticServer(target)
        servers = [*forks.values(), StaticServer(snap3)]
        yield Scenario(
            hub,
            origin,
            vkey.encode(),
            note3,
            snap3,
            note303,
            forks["same"],
            forks["longer"],
            servers[-1],
            hub_copy,
        )
    finally:
        for server in servers:
            server.close()
        hub.kill()
