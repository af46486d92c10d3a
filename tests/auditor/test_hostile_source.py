"""A lying log server cannot exhaust the auditor's memory (issue 12, finding 5).

Real HTTP servers (threads) answer a tile or the checkpoint with an endless body, an endless
gzip stream, or a 1 GiB Content-Length; every reader stops at the cap for that kind of file
with a typed error a person can act on, promptly and with a small memory peak (tracemalloc).
"""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest
from auditkit import HostileServer, MemLog, Scenario, run_audit

from auditor.compare import read_checkpoint_source
from auditor.errors import EXIT_FETCH, FetchError, ResponseTooLargeError
from auditor.fullaudit import CachedSource
from auditor.monitor import MonitorState
from auditor.source import MAX_CHECKPOINT_BYTES, DirSource, HttpSource
from auditor.trust import LogTrust

MiB = 1 << 20


@pytest.fixture
def hostile() -> Iterator[list[HostileServer]]:
    servers: list[HostileServer] = []
    yield servers
    for server in servers:
        server.close()


def _serve(servers: list[HostileServer], root: Path | None, **paths: str) -> HostileServer:
    server = HostileServer(root, {"/" + k.replace("__", "/"): v for k, v in paths.items()})
    servers.append(server)
    return server


def _peak_of(call: object) -> tuple[BaseException, int, float]:
    """Run ``call``; (the exception it raised, traced peak bytes, seconds)."""
    tracemalloc.start()
    started = time.monotonic()
    try:
        call()  # type: ignore[operator]
    except BaseException as exc:  # returned for the test to inspect
        error = exc
    else:
        raise AssertionError("the read did not fail")
    finally:
        seconds = time.monotonic() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return error, peak, seconds


@pytest.mark.parametrize("mode", ["endless", "gzip-bomb"])
def test_an_endless_tile_stops_at_the_tile_cap(hostile: list[HostileServer], mode: str) -> None:
    server = _serve(hostile, None, tile__0__000=mode)
    source = HttpSource(server.url)
    try:
        error, peak, seconds = _peak_of(lambda: source.get("tile/0/000"))
    finally:
        source.close()
    assert isinstance(error, FetchError), error
    if mode == "endless":
        assert isinstance(error, ResponseTooLargeError)
        assert "larger than a tile can be (8192 bytes)" in str(error)
    else:
        assert "Content-Encoding: gzip" in str(error) and "refusing" in str(error)
    assert seconds < 5, seconds
    assert peak < 2 * MiB, f"peak {peak} bytes for a tile of at most 8 KiB"


@pytest.mark.parametrize("mode", ["endless", "gzip-bomb", "huge-length"])
def test_an_endless_checkpoint_stops_at_the_checkpoint_cap(
    hostile: list[HostileServer], mode: str
) -> None:
    server = _serve(hostile, None, checkpoint=mode)
    source = HttpSource(server.url)
    try:
        error, peak, seconds = _peak_of(lambda: source.get("checkpoint"))
    finally:
        source.close()
    assert isinstance(error, FetchError), error
    if mode != "gzip-bomb":
        assert isinstance(error, ResponseTooLargeError)
        assert f"larger than a checkpoint can be ({MAX_CHECKPOINT_BYTES} bytes)" in str(error)
    assert seconds < 5, seconds
    assert peak < 4 * MiB, f"peak {peak} bytes for a checkpoint of at most 1 MiB"
    assert server.sent < 64 * MiB  # the reader hung up, the server did not stream on


def test_compare_stops_at_the_checkpoint_cap(hostile: list[HostileServer]) -> None:
    server = _serve(hostile, None, cp="endless")
    error, peak, _ = _peak_of(lambda: read_checkpoint_source(server.url + "/cp"))
    assert isinstance(error, ResponseTooLargeError), error
    assert peak < 4 * MiB


def test_monitor_cli_on_an_endless_checkpoint_exits_3(
    hostile: list[HostileServer], tmp_path: Path
) -> None:
    log = MemLog()
    log.grow(3)
    server = _serve(hostile, None, checkpoint="endless")
    started = time.monotonic()
    out = run_audit(
        "monitor", "--once", "--log", server.url, "--log-key", log.vkey,
        "--state", str(tmp_path / "s"),
    )  # fmt: skip
    assert out.returncode == EXIT_FETCH, out.stderr
    assert "larger than a checkpoint can be" in out.stderr and "Traceback" not in out.stderr
    assert time.monotonic() - started < 30


def test_full_cli_on_an_endless_tile_exits_3(
    scenario: Scenario, hostile: list[HostileServer], tmp_path: Path
) -> None:
    server = _serve(hostile, scenario.hub_copy, tile__0__000="endless")
    out = run_audit(
        "full", "--log", server.url, "--log-key", scenario.vkey, "--workers", "1",
        "--state", str(tmp_path / "s"),
    )  # fmt: skip
    assert out.returncode == EXIT_FETCH, (out.stdout, out.stderr)
    assert "tile/0/000" in out.stderr and "larger than a tile can be" in out.stderr
    assert not (tmp_path / "s/tiles/tile/0/000").exists()


def test_local_files_made_by_others_are_read_with_a_cap(tmp_path: Path) -> None:
    """A tile directory, a tile cache and a monitor state file larger than they can be."""
    (tmp_path / "tiles/tile/0").mkdir(parents=True)
    with open(tmp_path / "tiles/tile/0/000", "wb") as f:
        f.truncate(64 * MiB)  # sparse: costs no disk
    error, peak, _ = _peak_of(lambda: DirSource(tmp_path / "tiles").get("tile/0/000"))
    assert isinstance(error, ResponseTooLargeError) and peak < MiB

    cache = CachedSource(DirSource(tmp_path), tmp_path / "tiles")
    error, peak, _ = _peak_of(lambda: cache.get("tile/0/000"))
    assert isinstance(error, ResponseTooLargeError) and peak < MiB

    log = MemLog()
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    with open(state_dir / "monitor.json", "wb") as f:
        f.truncate(1 << 30)
    trust = LogTrust.from_strings(log.vkey)
    error, peak, _ = _peak_of(lambda: MonitorState.open(state_dir, trust))
    assert "monitor state" in str(error) and peak < 16 * MiB


def test_a_deeply_nested_state_file_is_a_config_error(tmp_path: Path) -> None:
    log = MemLog()
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    (state_dir / "monitor.json").write_bytes(b"[" * 200_000 + b"]" * 200_000)
    out = run_audit(
        "monitor", "--once", "--log", str(tmp_path), "--log-key", log.vkey,
        "--state", str(state_dir),
    )  # fmt: skip
    assert out.returncode == 2, out.stderr
    assert "nested deeper than" in out.stderr and "Traceback" not in out.stderr


def test_the_prefetch_window_holds_few_bundles_at_once() -> None:
    """With 8 workers, reads ahead are bounded by their caps: at most 64 MiB of entry bundles
    (3 of 16 MiB) are requested or held at once, while small tiles still go 32 ahead."""
    import threading

    from auditor.fullaudit import PREFETCH_BYTES, _prefetch
    from auditor.source import MAX_BUNDLE_BYTES

    lock = threading.Lock()
    state = {"started": 0, "consumed": 0, "most": 0}

    def get(path: str) -> bytes:
        with lock:
            state["started"] += 1
            state["most"] = max(state["most"], state["started"] - state["consumed"])
        time.sleep(0.001)
        return b""

    bundles = (f"tile/entries/{i:03d}" for i in range(200))
    for _ in _prefetch(get, bundles, 8):
        state["consumed"] += 1
    assert state["most"] <= PREFETCH_BYTES // MAX_BUNDLE_BYTES + 1, state
    state.update(started=0, consumed=0, most=0)
    tiles = (f"tile/0/{i:03d}" for i in range(200))
    for _ in _prefetch(get, tiles, 8):
        state["consumed"] += 1
    assert state["most"] > 8, state  # tiles still go well ahead
