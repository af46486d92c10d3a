"""Client fixtures: one real ``ncii-hub serve`` (SQLite) per test module, photos, proxies.

The hub is shared by the tests of a module (each test uses its own case, so they do not
interfere) to keep the suite fast; tests that stop or restart a hub start their own.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "hub"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from clientkit import RecordingProxy, make_flat, make_photos
from hubkit import HubProcess

FAST = ("--set", "batch_interval=0.05", "--set", "lock_retry_seconds=0.2")
# The client solves the case puzzle itself, so client tests keep it on, made cheap (scrypt
# N=16, r=1, 1-in-4 nonces solve): the code path is the same at any size.
PUZZLE = (
    "--set",
    "puzzle=true",
    "--set",
    "puzzle_difficulty=2",
    "--set",
    "puzzle_scrypt_n=16",
    "--set",
    "puzzle_scrypt_r=1",
)


def start_hub(folder: Path, *extra: str) -> HubProcess:
    folder.mkdir(parents=True, exist_ok=True)
    return HubProcess(
        folder / "data", f"sqlite:///{folder / 'hub.sqlite3'}", (*FAST, *PUZZLE, *extra)
    ).start()


@pytest.fixture(scope="module")
def client_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    hub = start_hub(tmp_path_factory.mktemp("hub"))
    yield hub
    hub.kill()


@pytest.fixture
def own_hub(tmp_path: Path) -> Iterator[Callable[..., HubProcess]]:
    """Start a private hub (with extra ``serve`` arguments) that the test may kill."""
    started: list[HubProcess] = []

    def make(*extra: str) -> HubProcess:
        hub = start_hub(tmp_path / f"hub{len(started)}", *extra)
        started.append(hub)
        return hub

    yield make
    for hub in started:
        hub.kill()


@pytest.fixture
def recording_proxy(client_hub: HubProcess) -> Iterator[RecordingProxy]:
    proxy = RecordingProxy(client_hub.url)
    yield proxy
    proxy.close()


@pytest.fixture(scope="module")
def photo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three scikit-image photos as JPEGs and one flat picture (refused: quality too low)."""
    folder = tmp_path_factory.mktemp("photos") / "private photos"
    make_photos(folder, ("astronaut", "camera", "coffee"))
    make_flat(folder / "blank.png")
    return folder
