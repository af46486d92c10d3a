"""Hub follow-ups: offline-bundle age, published-checkpoint reads, file modes, proof caching.

In-process hubs (``create_app`` + TestClient, sequencer off, injected clock) where the test
needs to move time or drive the sequencer step by step; SQLite and PostgreSQL through the
``database_url`` fixture wherever storage matters.
"""

from __future__ import annotations

import os
import random
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hubkit import ENVELOPE_TYPE, Case, HubFactory, post, random_md5, random_pdq
from sqlalchemy import select

from crypto.checkpoint import open_checkpoint
from crypto.errors import InconsistentTreeError, MalformedError
from crypto.keys import parse_verifier_key
from crypto.merkle import (
    EMPTY_ROOT,
    NodeId,
    consistency_proof,
    inclusion_proof,
    verify_consistency,
    verify_inclusion,
)
from crypto.tiles import EntryBundle, Tile, TileHashReader, append_tiles
from crypto.tree_state import TreeState
from hub.app import create_app
from hub.context import HubContext
from hub.db.engine import make_engine
from hub.db.models import ReplayRow, table_of
from hub.proofcache import TileCache
from hub.sequencer import Sequencer
from hub.settings import Settings, SettingsError
from hub.storage import SqlStorage
from hub.tilestore import TileStore

NOW = 1_800_000_000
DAY = 86400


class InProcessHub:
    """One hub app with a settable clock and its TestClient."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.now = NOW

    @property
    def ctx(self) -> HubContext:
        ctx = self.client.app.state.hub  # type: ignore[attr-defined]
        assert isinstance(ctx, HubContext)
        return ctx

    @property
    def storage(self) -> SqlStorage:
        storage = self.ctx.storage
        assert isinstance(storage, SqlStorage)
        return storage

    def post(self, path: str, raw: bytes) -> Any:
        return self.client.post(path, content=raw, headers={"Content-Type": ENVELOPE_TYPE})


@pytest.fixture
def inproc(tmp_path: Path, database_url: str) -> Iterator[InProcessHub]:
    settings = Settings(
        data_dir=tmp_path / "data", database_url=database_url, sequencer=False, puzzle=False
    )
    with TestClient(create_app(settings)) as client:
        hub = InProcessHub(client)
        hub.ctx.clock = lambda: float(hub.now)
        yield hub


def _code(response: Any) -> str:
    return str(response.json()["error"]["code"])


# -- 1. offline bundles: submissions may be submission_max_age old --------------------------


def test_submission_signed_days_ago_is_accepted_and_stays_idempotent(
    inproc: InProcessHub,
) -> None:
    case = Case()
    signed_at = NOW - 3 * DAY
    raw = case.submission([random_pdq(), random_md5()], timestamp=signed_at)
    first = inproc.post("/v1/submissions", raw)
    assert first.status_code == 202, first.text
    max_age = inproc.ctx.settings.submission_max_age
    assert max_age == 30 * DAY
    with inproc.storage.engine.connect() as conn:
        expires = conn.execute(select(table_of(ReplayRow).c.expires_at)).scalars().all()
    assert expires == [signed_at + max_age + 1]
    # Purges well past the short window keep the record: a second upload of the same bundle
    # days later gets the same answer and stores nothing twice.
    inproc.now = NOW + 20 * DAY
    assert inproc.storage.purge_replays(inproc.now) == 0
    again = inproc.post("/v1/submissions", raw)
    assert (again.status_code, again.content) == (202, first.content)
    assert len(inproc.storage.case_entries(case.case_id)) == 2
    # Once the record may expire, the envelope is refused by age before it could be replayed.
    inproc.now = signed_at + max_age + 2
    assert inproc.storage.purge_replays(inproc.now) == 1
    late = inproc.post("/v1/submissions", raw)
    assert (late.status_code, _code(late)) == (401, "stale_timestamp")
    assert len(inproc.storage.case_entries(case.case_id)) == 2


@pytest.mark.parametrize(
    ("offset", "accepted"),
    [
        (-30 * DAY, True),
        (-30 * DAY - 1, False),
        (300, True),
        (301, False),
        (2 * DAY, False),
    ],
    ids=[
        "max-age-edge",
        "older-than-max-age",
        "future-window-edge",
        "future-past-window",
        "future-days",
    ],
)
def test_submission_time_range(inproc: InProcessHub, offset: int, accepted: bool) -> None:
    r = inproc.post("/v1/submissions", Case().submission([random_pdq()], timestamp=NOW + offset))
    if accepted:
        assert r.status_code == 202, r.text
    else:
        assert (r.status_code, _code(r)) == (401, "stale_timestamp")


def test_status_and_withdrawal_keep_the_short_window(inproc: InProcessHub) -> None:
    case = Case()
    r = inproc.post("/v1/submissions", case.submission([random_pdq()], timestamp=NOW))
    assert r.status_code == 202, r.text
    old = NOW - 301
    for path, raw in (
        ("/v1/status", case.status_query(timestamp=old)),
        ("/v1/withdrawals", case.withdrawal(timestamp=old)),
    ):
        r = inproc.post(path, raw)
        assert (r.status_code, _code(r)) == (401, "stale_timestamp"), path
    ok = inproc.post("/v1/withdrawals", case.withdrawal(timestamp=NOW - 300))
    assert ok.status_code == 202, ok.text
    with inproc.storage.engine.connect() as conn:
        expires = sorted(conn.execute(select(table_of(ReplayRow).c.expires_at)).scalars())
    # The withdrawal's record lives window_seconds; the submission's submission_max_age.
    assert expires == [NOW - 300 + 300 + 1, NOW + 30 * DAY + 1]


@pytest.mark.parametrize(
    "changes",
    [
        {"submission_max_age": 299},
        {"submission_max_age": 367 * DAY},
        {"submission_max_age": 3600, "window_seconds": 3601},
        {"submission_max_age": True},
    ],
    ids=["below-window", "above-a-year", "below-raised-window", "bool"],
)
def test_submission_max_age_setting_refusals(changes: dict[str, object]) -> None:
    with pytest.raises(SettingsError):
        Settings().replace(**changes)


# -- 3. file modes: the SQLite database is private, tiles and feed are public ---------------


def test_new_sqlite_files_are_private_and_tiles_public(tmp_path: Path) -> None:
    old_umask = os.umask(0o022)
    try:
        data = tmp_path / "data"
        settings = Settings(data_dir=data, sequencer=False, puzzle=False)
        with TestClient(create_app(settings)) as client:
            hub = InProcessHub(client)
            hub.ctx.clock = lambda: float(NOW)
            r = hub.post("/v1/submissions", Case().submission([random_pdq()], timestamp=NOW))
            assert r.status_code == 202, r.text
            Sequencer(hub.ctx.storage, hub.ctx.tiles, hub.ctx.keys).step(100)
            db = settings.sqlite_path
            files = [db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")]
            for path in files:
                assert path.exists(), path.name
                assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name
            tiles = settings.tiles_dir
            assert stat.S_IMODE(tiles.stat().st_mode) == 0o755
            for path in (tiles / "checkpoint", tiles / "tile" / "0" / "000.p" / "1"):
                assert stat.S_IMODE(path.stat().st_mode) == 0o644, path.name
    finally:
        os.umask(old_umask)


def test_existing_sqlite_file_keeps_its_mode(tmp_path: Path) -> None:
    path = tmp_path / "hub.sqlite3"
    path.touch(mode=0o640)
    os.chmod(path, 0o640)
    make_engine(f"sqlite:///{path}").dispose()
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


# -- 2. public reads never report a size without a published checkpoint --------------------


def _note_size(note: bytes) -> int:
    return int(note.split(b"\n")[1])


class _PublishSpy:
    """Wraps the storage; at each ``publish`` records what tiles/checkpoint held, or crashes."""

    def __init__(self, inner: SqlStorage, tiles: TileStore, crash: bool = False) -> None:
        self._inner = inner
        self._tiles = tiles
        self._crash = crash
        self.seen: list[tuple[int, bytes | None, bytes]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def publish(self, old: int, new_size: int, state: TreeState, checkpoint: bytes) -> None:
        self.seen.append((new_size, self._tiles.get("checkpoint"), checkpoint))
        if self._crash:
            raise RuntimeError("crash before the database publish")
        self._inner.publish(old, new_size, state, checkpoint)


def test_checkpoint_file_is_written_before_the_database_publishes(inproc: InProcessHub) -> None:
    ctx = inproc.ctx
    r = inproc.post("/v1/submissions", Case().submission([random_pdq()] * 1, timestamp=NOW))
    assert r.status_code == 202, r.text
    spy = _PublishSpy(inproc.storage, ctx.tiles)
    assert Sequencer(spy, ctx.tiles, ctx.keys).step(100) == 1
    assert [(size, on_disk == note) for size, on_disk, note in spy.seen] == [(1, True)]
    info = inproc.client.get("/v1/log").json()
    assert info["size"] == 1
    assert inproc.client.get("/checkpoint").content == ctx.tiles.get("checkpoint")


def test_crash_between_file_and_database_leaves_the_file_ahead_never_behind(
    inproc: InProcessHub,
) -> None:
    ctx = inproc.ctx
    Sequencer(ctx.storage, ctx.tiles, ctx.keys).recover()
    hashes = [random_pdq(), random_md5(), random_pdq()]
    assert inproc.post("/v1/submissions", Case().submission(hashes, timestamp=NOW)).status_code
    crashing = _PublishSpy(inproc.storage, ctx.tiles, crash=True)
    with pytest.raises(RuntimeError):
        Sequencer(crashing, ctx.tiles, ctx.keys).step(100)
    # Every public read still reports the published size 0; the file is ahead, not behind.
    info = inproc.client.get("/v1/log").json()
    assert info["size"] == 0 and _note_size(info["checkpoint"].encode()) == 0
    assert _note_size(inproc.client.get("/checkpoint").content) == 0
    r = inproc.client.get("/v1/proof/consistency", params={"first": 0})
    assert r.status_code == 200 and r.json()["second"] == 0
    file_note = ctx.tiles.get("checkpoint")
    assert file_note is not None and _note_size(file_note) == 3
    # Recovery signs the same note (deterministic) and publishes it.
    Sequencer(ctx.storage, ctx.tiles, ctx.keys).recover()
    assert inproc.client.get("/checkpoint").content == file_note == ctx.tiles.get("checkpoint")
    assert inproc.client.get("/v1/log").json()["size"] == 3


def test_v1_log_never_runs_ahead_of_the_checkpoint_file(hub_factory: HubFactory) -> None:
    """A real hub under a stream of submissions: each /v1/log size, read first, is at most
    the size of tiles/checkpoint read right after, and /checkpoint has that size or more."""
    hub = hub_factory()
    stop = threading.Event()

    def stream() -> None:
        with hub.client() as client:
            while not stop.is_set():
                post(client, "/v1/submissions", Case().submission([random_md5()]))

    worker = threading.Thread(target=stream)
    worker.start()
    checked = 0
    path = hub.data_dir / "tiles" / "checkpoint"
    try:
        with hub.client() as client:
            deadline = time.monotonic() + 4.0
            while time.monotonic() < deadline:
                size = int(client.get("/v1/log").json()["size"])
                if size == 0:
                    continue
                on_disk = _note_size(path.read_bytes())
                served = _note_size(client.get("/checkpoint").content)
                assert on_disk >= size and served >= size
                checked += 1
    finally:
        stop.set()
        worker.join()
    assert checked > 20
    assert _note_size(path.read_bytes()) >= 20


# -- 4. proofs from tiles authenticated once per process ------------------------------------


class _Tiles:
    """An in-memory tile store grown with crypto.tiles.append_tiles; counts reads by path."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.reads: dict[str, int] = {}
        self.size = 0
        self.roots: dict[int, bytes] = {0: EMPTY_ROOT}

    def read(self, tile: Tile | EntryBundle) -> bytes:
        self.reads[tile.path] = self.reads.get(tile.path, 0) + 1
        data = self.files.get(tile.path)
        if data is None:
            raise InconsistentTreeError("missing")
        return data

    def grow(self, n: int, rng: random.Random) -> None:
        hashes = [rng.randbytes(32) for _ in range(n)]
        update = append_tiles(self.size, self.read, leaf_hashes=hashes)
        self.files.update(update.tiles)
        self.size = update.state.size
        self.roots[self.size] = update.root


def test_cached_proofs_equal_authenticated_proofs_as_the_log_grows() -> None:
    rng = random.Random(4)
    tiles = _Tiles()
    cache = TileCache(tiles.read, max_full_tiles=8)
    for step in (1, 255, 1, 300, 65_536 - 557, 3, 70_000):
        tiles.grow(step, rng)
        size, root = tiles.size, tiles.roots[tiles.size]
        fresh = TileHashReader(size, root, tiles.read)
        cached = cache.reader(size, root)
        indexes = {0, size - 1, size // 2, *(rng.randrange(size) for _ in range(40))}
        for index in sorted(indexes):
            proof = inclusion_proof(index, size, cached)
            assert proof == inclusion_proof(index, size, fresh), (size, index)
            leaf = cached.read_hashes([NodeId(0, index)])[0]
            verify_inclusion(leaf, index, size, proof, root)
        for old in sorted(tiles.roots):
            if old <= size:
                proof = consistency_proof(old, size, cached)
                assert proof == consistency_proof(old, size, fresh)
                verify_consistency(old, size, proof, tiles.roots[old], root)
        assert cache.full_tiles_cached() <= 8


def test_warm_proofs_read_no_tile_and_bad_tiles_are_refused() -> None:
    rng = random.Random(5)
    tiles = _Tiles()
    tiles.grow(3 * 256 + 7, rng)
    size, root = tiles.size, tiles.roots[tiles.size]
    cache = TileCache(tiles.read)
    inclusion_proof(300, size, cache.reader(size, root))
    before = dict(tiles.reads)
    for _ in range(5):
        inclusion_proof(300, size, cache.reader(size, root))
    assert tiles.reads == before  # warm: the edge and the full tile come from the cache
    # A full tile that does not hash to its entry above is refused, not cached.
    tiles.files["tile/0/002"] = rng.randbytes(256 * 32)
    with pytest.raises(InconsistentTreeError):
        inclusion_proof(600, size, cache.reader(size, root))
    tiles.files["tile/0/002"] = b"short"
    with pytest.raises(InconsistentTreeError):
        inclusion_proof(600, size, cache.reader(size, root))
    # An edge that does not hash to the checkpoint root is refused.
    with pytest.raises(InconsistentTreeError):
        TileCache(tiles.read).reader(size, bytes(32))
    with pytest.raises(MalformedError):
        cache.reader(size, root).read_hashes([NodeId(0, size)])


def test_proof_endpoints_serve_from_the_cache(inproc: InProcessHub) -> None:
    ctx = inproc.ctx
    sequencer = Sequencer(ctx.storage, ctx.tiles, ctx.keys)
    for _ in range(3):
        hashes = [random_md5() for _ in range(100)]
        r = inproc.post("/v1/submissions", Case().submission(hashes, timestamp=NOW))
        assert r.status_code == 202, r.text
        sequencer.step(10_000)
    note = inproc.client.get("/checkpoint").content
    key = parse_verifier_key(inproc.client.get("/v1/log").json()["verifier_key"])
    cp = open_checkpoint(note, [key], origin=ctx.keys.origin).checkpoint
    assert cp.size == 300
    for index in (0, 255, 256, 299):
        body = inproc.client.get("/v1/proof/inclusion", params={"index": index}).json()
        proof = [bytes.fromhex(h) for h in body["proof"]]
        verify_inclusion(bytes.fromhex(body["leaf_hash"]), index, 300, proof, cp.root_hash)
    for first in (1, 100, 256, 300):
        body = inproc.client.get("/v1/proof/consistency", params={"first": first}).json()
        assert body["second"] == 300
