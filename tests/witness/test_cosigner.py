"""hub.witnesses.Cosigner against an in-process witness (auditor.witness.Witness) and against
witnesses that misbehave: every answer class ends in a stored line or a recorded failure,
never in a stored line that does not verify. Plus witness option and file parsing."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import delete

from auditor.witness import Witness
from auditor.witness_store import WitnessStore
from crypto.checkpoint import Checkpoint, sign_checkpoint
from crypto.cosignature import cosign_checkpoint, open_cosigned_checkpoint
from crypto.keys import ALG_COSIGNATURE_V1, signer_key_from_seed
from crypto.merkle import MemoryHashStore, leaf_hash, tree_root
from crypto.witness_protocol import SIZE_CONTENT_TYPE, parse_add_checkpoint
from hub.db.engine import create_schema, make_engine
from hub.witness_config import (
    WitnessConfig,
    WitnessConfigError,
    check_witnesses,
    load_witness_file,
    parse_witness,
)
from hub.witness_store import COSIGNATURES, CosignatureStore
from hub.witnessapi import attach_cosignatures
from hub.witnesses import Attempt, Cosigner, Published

ORIGIN = "log.example.org/hub"
LOG = signer_key_from_seed(ORIGIN, b"\x11" * 32)
WKEY = signer_key_from_seed("w.example", b"\x22" * 32, ALG_COSIGNATURE_V1)
OTHER = signer_key_from_seed("w.example", b"\x33" * 32, ALG_COSIGNATURE_V1)
NOW = 1767225600
CONFIG = WitnessConfig("w", "http://witness.test", WKEY.verifier)


class Log:
    """A log in memory: published checkpoints of any size and a proof reader."""

    def __init__(self, tag: str = "") -> None:
        self.hashes = MemoryHashStore.from_leaf_hashes(
            [leaf_hash(f"{tag}entry {i}".encode()) for i in range(64)]
        )

    def at(self, size: int) -> Published:
        root = tree_root(size, self.hashes)
        return Published(size, root, sign_checkpoint(Checkpoint(ORIGIN, size, root), [LOG]))


Handler = Callable[[httpx.Request], httpx.Response]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[CosignatureStore]:
    engine = make_engine(f"sqlite:///{tmp_path / 'hub.sqlite3'}")
    create_schema(engine, sign_checkpoint(Checkpoint(ORIGIN, 0, tree_root(0, Log().hashes)), [LOG]))
    yield CosignatureStore(engine)
    engine.dispose()


def exchange(store: CosignatureStore, handler: Handler, old: int, target: Published) -> Attempt:
    """One add_checkpoint through ``handler`` (the cosigner's loops idle at size 0)."""
    log = Log()

    async def run() -> Attempt:
        cosigner = Cosigner(
            [CONFIG],
            store,
            origin=ORIGIN,
            published=lambda: log.at(0),
            reader=lambda _size, _root: log.hashes,
            timeout=2.0,
            max_backoff=1.0,
            concurrency=2,
            clock=lambda: NOW,
            transport=httpx.MockTransport(handler),
        )
        cosigner.start()
        try:
            return await cosigner.add_checkpoint(CONFIG, old, target)
        finally:
            await cosigner.stop()

    return asyncio.run(run())


def real_witness(tmp_path: Path) -> tuple[Witness, Handler]:
    witness = Witness(WKEY, {ORIGIN: [LOG.verifier]}, WitnessStore(tmp_path / "w"), lambda: NOW)

    def handle(request: httpx.Request) -> httpx.Response:
        answer = witness.add_checkpoint(request.content)
        return httpx.Response(
            answer.status, content=answer.body, headers={"content-type": answer.content_type}
        )

    return witness, handle


def lines(store: CosignatureStore, target: Published) -> list[bytes]:
    return store.lines_for(target.size, target.note, [WKEY.verifier.encode()])


def test_first_and_following_checkpoints(store: CosignatureStore, tmp_path: Path) -> None:
    log = Log()
    _, handle = real_witness(tmp_path)
    for size in (5, 20, 20, 64):
        status = store.status(WKEY.verifier.encode())
        known = 0 if status is None or status.known_size is None else status.known_size
        assert exchange(store, handle, known, log.at(size)).ok
        served = attach_cosignatures(store, [CONFIG], size, log.at(size).note)
        opened = open_cosigned_checkpoint(
            served, LOG.verifier, [WKEY.verifier], origin=ORIGIN, quorum=1
        )
        assert opened.checkpoint.size == size
    status = store.status(WKEY.verifier.encode())
    assert status is not None and (status.cosigned_size, status.failures) == (64, 0)
    assert store.newest_fully_cosigned([WKEY.verifier.encode()]) is not None
    # Older sizes than the newest fully cosigned one are pruned.
    assert lines(store, log.at(5)) == []


def test_409_resends_from_the_witness_size(store: CosignatureStore, tmp_path: Path) -> None:
    log = Log()
    _, handle = real_witness(tmp_path)
    assert exchange(store, handle, 0, log.at(10)).ok
    seen: list[int] = []

    def spy(request: httpx.Request) -> httpx.Response:
        seen.append(parse_add_checkpoint(request.content).old_size)
        return handle(request)

    # The hub believes the witness is at 3: it learns 10 from the 409 and proves 10 -> 30.
    assert exchange(store, spy, 3, log.at(30)).ok
    assert seen == [3, 10]


def test_fork_answers(store: CosignatureStore, tmp_path: Path) -> None:
    honest, fork = Log(), Log("fork ")
    _, handle = real_witness(tmp_path)
    assert exchange(store, handle, 0, honest.at(10)).ok
    same_size = exchange(store, handle, 10, fork.at(10))
    assert (same_size.ok, same_size.status, same_size.retry) == (False, 409, False)
    beyond = exchange(store, handle, 10, fork.at(20))
    assert (beyond.ok, beyond.status, beyond.retry) == (False, 422, False)
    behind = exchange(store, handle, 0, fork.at(5))  # 409 says 10 > 5: the witness is ahead
    assert (behind.ok, behind.retry) == (False, False)
    assert lines(store, fork.at(10)) == [] and lines(store, fork.at(20)) == []


def _answer(status: int, body: bytes = b"", media: str = "text/plain") -> Handler:
    def handle(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=body, headers={"content-type": media})

    return handle


def _unreachable(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("refused", request=request)


TARGET = Log().at(7)
CP7 = Checkpoint(ORIGIN, 7, TARGET.root)
BAD: dict[str, tuple[Handler, int | None, bool]] = {
    "unreachable": (_unreachable, None, True),
    "500": (_answer(500), 500, True),
    "503": (_answer(503), 503, True),
    "403-unknown-key": (_answer(403), 403, False),
    "404-unknown-origin": (_answer(404), 404, False),
    "409-without-size-type": (_answer(409, b"3\n"), 409, True),
    "409-bad-size": (_answer(409, b"03\n", SIZE_CONTENT_TYPE), 409, True),
    "200-empty": (_answer(200), 200, True),
    "200-garbage": (_answer(200, b"ok\n"), 200, True),
    "200-other-key": (_answer(200, cosign_checkpoint(CP7, OTHER, timestamp=NOW)), 200, True),
    "200-other-checkpoint": (
        _answer(200, cosign_checkpoint(Checkpoint(ORIGIN, 8, TARGET.root), WKEY, timestamp=NOW)),
        200,
        True,
    ),
    "200-too-large": (_answer(200, b"\xe2\x80\x94 w AAAA\n" * 2000), 200, True),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_misbehaving_witness_stores_nothing(store: CosignatureStore, name: str) -> None:
    handler, status, retry = BAD[name]
    attempt = exchange(store, handler, 0, TARGET)
    assert (attempt.ok, attempt.status, attempt.retry) == (False, status, retry)
    assert attempt.error
    assert lines(store, TARGET) == []


def test_good_line_is_stored(store: CosignatureStore) -> None:
    good = cosign_checkpoint(CP7, WKEY, timestamp=NOW)
    assert exchange(store, _answer(200, good), 0, TARGET).ok
    assert lines(store, TARGET) == [good]


# -- configuration ----------------------------------------------------------------------------

VKEY = WKEY.verifier.encode()


def test_parse_witness_option() -> None:
    w = parse_witness(f"w1=https://w1.example.org/prefix/={VKEY}")
    assert (w.name, w.url, w.key) == ("w1", "https://w1.example.org/prefix", WKEY.verifier)


@pytest.mark.parametrize(
    "value",
    [
        "w1",
        f"w1=https://w1.example.org{VKEY}",
        f"=https://w1.example.org={VKEY}",
        f"w 1=https://w1.example.org={VKEY}",
        f"w1=ftp://w1.example.org={VKEY}",
        f"w1=https://w1.exa mple.org={VKEY}",
        "w1=https://w1.example.org=not-a-key",
        f"w1=https://w1.example.org={LOG.verifier.encode()}",
    ],
    ids=["bare", "one-sep", "no-name", "space-name", "ftp", "space-url", "bad-key", "log-key"],
)
def test_bad_witness_options(value: str) -> None:
    with pytest.raises(WitnessConfigError):
        parse_witness(value)


def test_duplicates_and_file(tmp_path: Path) -> None:
    other = OTHER.verifier.encode()
    with pytest.raises(WitnessConfigError):
        check_witnesses([parse_witness(f"a=http://a={VKEY}"), parse_witness(f"a=http://b={other}")])
    with pytest.raises(WitnessConfigError):
        check_witnesses([parse_witness(f"a=http://a={VKEY}"), parse_witness(f"b=http://b={VKEY}")])
    path = tmp_path / "witnesses.txt"
    path.write_text(f"# ours\n\na=http://a={VKEY}\n  b=http://b={other}  \n")
    assert [w.name for w in load_witness_file(path)] == ["a", "b"]
    path.write_text(f"a=http://a={VKEY}\nb=http://b\n")
    with pytest.raises(WitnessConfigError):
        load_witness_file(path)
    path.write_bytes(b"\xff\xfe")
    with pytest.raises(WitnessConfigError):
        load_witness_file(path)
    with pytest.raises(WitnessConfigError):
        load_witness_file(tmp_path / "missing.txt")


def test_a_lost_line_is_asked_for_again(store: CosignatureStore, tmp_path: Path) -> None:
    """The loop idles only when the witness's line is stored, not merely when its status says
    cosigned: a line lost (as in the record_cosignature race on PostgreSQL,
    test_cosignature_race.py) is asked for again, from the witness's own size."""
    log = Log()
    _, handle = real_witness(tmp_path)
    target = log.at(12)
    seen: list[int] = []

    def spy(request: httpx.Request) -> httpx.Response:
        seen.append(parse_add_checkpoint(request.content).old_size)
        return handle(request)

    async def until(check: Callable[[], bool]) -> None:
        for _ in range(500):
            if check():
                return
            await asyncio.sleep(0.01)
        raise AssertionError("the cosigner never got there")

    async def run() -> None:
        cosigner = Cosigner(
            [CONFIG],
            store,
            origin=ORIGIN,
            published=lambda: target,
            reader=lambda _size, _root: log.hashes,
            timeout=2.0,
            max_backoff=0.1,
            concurrency=2,
            clock=lambda: NOW,
            transport=httpx.MockTransport(spy),
        )
        cosigner.start()
        try:
            await until(lambda: lines(store, target) != [])
            with store.engine.begin() as conn:
                conn.execute(delete(COSIGNATURES))  # the line is lost; the status stays
            status = store.status(WKEY.verifier.encode())
            assert status is not None and status.cosigned_size == 12
            cosigner.notify()
            await until(lambda: lines(store, target) != [])
        finally:
            await cosigner.stop()

    asyncio.run(run())
    assert seen == [0, 12]  # asked again from the size the witness holds: no 409, no proof


def test_a_timeout_after_the_witness_applied_is_recovered(
    store: CosignatureStore, tmp_path: Path
) -> None:
    """The witness stores the checkpoint but its answer never arrives (the hub's
    witness_timeout): the hub still believes the old size, gets a 409 with the new one, and
    asks again from it; the witness cosigns its own size again (no proof)."""
    log = Log()
    _, handle = real_witness(tmp_path)
    assert exchange(store, handle, 0, log.at(5)).ok
    seen: list[int] = []

    def late(request: httpx.Request) -> httpx.Response:
        seen.append(parse_add_checkpoint(request.content).old_size)
        answer = handle(request)
        if len(seen) == 1:
            raise httpx.ReadTimeout("the answer came too late", request=request)
        return answer

    target = log.at(40)
    first = exchange(store, late, 5, target)
    assert not first.ok and first.retry and first.status is None
    status = store.status(WKEY.verifier.encode())
    assert status is not None and status.known_size == 5  # the hub's idea lags the witness
    assert exchange(store, late, 5, target).ok
    assert seen == [5, 5, 40]
    assert lines(store, target) != []
