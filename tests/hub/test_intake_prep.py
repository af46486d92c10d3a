"""The intake's preparing thread (hub.intakeprep) and prepare_each (hub.intake): a batch is
answered exactly as one-by-one preparing would answer each submission, with one read of the
replay records; a refusal or failure stays with its own submission; the thread survives what
escapes; closing prepares and stores what is queued. Both databases."""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from hubkit import Case, random_pdq
from sqlalchemy.exc import OperationalError

from hub import intake
from hub.app import create_app
from hub.context import HubContext
from hub.errors import HubError
from hub.intake import Arrival, Prepared, Result
from hub.intakeprep import EAGER_BYTES, PREPARE_BATCH, IntakePreparer
from hub.intakewriter import IntakeWriter, WriterClosedError
from hub.settings import Settings


@pytest.fixture
def ctx(database_url: str, tmp_path: Path) -> Iterator[HubContext]:
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        puzzle=False,
        admission_control=False,
        ip_rate=1000.0,
        ip_burst=100_000,
        case_rate=1000.0,
        case_burst=100_000,
    )
    app = create_app(settings)
    hub: HubContext = app.state.hub
    yield hub
    hub.storage.close()  # type: ignore[attr-defined]
    hub.keys.vault.close()


def _store(ctx: HubContext, raw: bytes) -> bytes:
    """Submit ``raw`` one by one (hub.intake.submit); returns its 202 body."""
    status, body = intake.submit(ctx, raw, "192.0.2.1", {})
    assert status == 202
    return body


def _submission(case: Case | None = None, **kw: Any) -> bytes:
    return (case or Case()).submission([random_pdq()], **kw)


def _results(ctx: HubContext, raws: list[bytes]) -> list[Result]:
    """prepare_each's results in the order of ``raws`` (each exactly once)."""
    got = dict(intake.prepare_each(ctx, [Arrival(raw, "192.0.2.1") for raw in raws]))
    assert sorted(got) == list(range(len(raws)))
    return [got[i] for i in range(len(raws))]


def test_a_batch_is_answered_as_one_by_one_preparing_would(
    ctx: HubContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    case = Case()
    stored_raw = _submission(case, nonce=b"n" * 16)
    stored_answer = _store(ctx, stored_raw)
    other_bytes = _submission(case, nonce=b"n" * 16)  # same nonce, other hash: 409
    fresh = [_submission() for _ in range(3)]
    batch = [fresh[0], stored_raw, b"\x00garbage", other_bytes, fresh[1], fresh[2]]

    reads: list[int] = []
    real = ctx.storage.get_replays

    def counted(keys: Sequence[bytes]) -> dict[bytes, Any]:
        reads.append(len(keys))
        return real(keys)

    monkeypatch.setattr(ctx.storage, "get_replays", counted)
    results = _results(ctx, batch)

    assert reads == [5]  # one read, for every envelope that opened (not the garbage)
    assert [type(r) for r in results] == [Prepared, tuple, HubError, HubError, Prepared, Prepared]
    assert results[1] == (202, stored_answer)  # the identical retry: its stored answer
    one_by_one: list[Any] = []
    for raw in batch[2:4]:
        with pytest.raises(HubError) as refused:
            intake.prepare(ctx, raw, "192.0.2.1", {})
        one_by_one.append(refused.value)
    for got, want in zip(results[2:4], one_by_one, strict=True):
        assert isinstance(got, HubError)
        assert (got.status, got.code, str(got)) == (want.status, want.code, str(want))
    assert len({id(r) for r in results}) == len(results)  # each its own object


def test_a_failed_replay_read_gives_each_submission_its_own_error_without_asking_again(
    ctx: HubContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lost database: one failed read answers the whole batch (503 each), instead of one
    more read (and timeout) per submission on the one preparing thread."""
    asked: list[int] = []

    def lost(keys: Sequence[bytes]) -> dict[bytes, Any]:
        asked.append(len(keys))
        raise OperationalError("SELECT", None, Exception("server closed the connection"))

    monkeypatch.setattr(ctx.storage, "get_replays", lost)
    monkeypatch.setattr(ctx.storage, "get_replay", lambda key: lost([key]))
    results = _results(ctx, [_submission() for _ in range(3)] + [b"\x00garbage"])
    assert asked == [3]
    assert all(isinstance(r, OperationalError) for r in results[:3])  # the app answers 503
    assert isinstance(results[3], HubError)
    assert len({id(r) for r in results}) == 4


def _run(coroutine: Any) -> Any:
    """Run ``coroutine``; a request left waiting fails the test instead of hanging it."""
    return asyncio.run(asyncio.wait_for(coroutine, 60))


def _pair(ctx: HubContext, prepare_each: Any = None) -> tuple[IntakePreparer, IntakeWriter]:
    writer = IntakeWriter(ctx.keys.vault, ctx.storage)  # type: ignore[arg-type]
    each = prepare_each or functools.partial(intake.prepare_each, ctx)
    return IntakePreparer(each, writer), writer


def _accepted(ctx: HubContext, done: tuple[Prepared | None, Any]) -> bytes:
    prepared, outcome = done
    assert prepared is not None
    status, body = intake.answer(ctx, prepared, outcome)
    assert status == 202
    return body


def test_concurrent_submissions_are_prepared_in_batches_and_each_is_stored(
    ctx: HubContext,
) -> None:
    batches: list[int] = []

    def counting(arrivals: Sequence[Arrival]) -> Iterator[tuple[int, Result]]:
        batches.append(len(arrivals))
        return intake.prepare_each(ctx, arrivals)

    preparer, writer = _pair(ctx, counting)
    raws = [_submission() for _ in range(PREPARE_BATCH + 8)]

    async def main() -> list[tuple[Prepared | None, Any]]:
        return await asyncio.gather(*(preparer.submit(Arrival(raw)) for raw in raws))

    try:
        done = _run(main())
        for answer, raw in zip(done, raws, strict=True):
            body = _accepted(ctx, answer)
            assert intake.prepare(ctx, raw, "", {}) == (202, body)  # stored: a retry's answer
        assert max(batches) == PREPARE_BATCH  # one thread took what was waiting
        assert sum(batches) == len(raws)
    finally:
        preparer.close()
        writer.close()


def test_small_submissions_reach_the_writer_together(
    ctx: HubContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Larger groups, fewer commits: prepared submissions of a batch of small ones are
    handed to the writer together, not one by one."""
    preparer, writer = _pair(ctx)
    handed: list[int] = []
    real = writer.enqueue

    def counted(items: Any) -> None:
        handed.append(len(items))
        real(items)

    monkeypatch.setattr(writer, "enqueue", counted)
    raws = [_submission() for _ in range(3 * PREPARE_BATCH)]

    async def main() -> list[tuple[Prepared | None, Any]]:
        return await asyncio.gather(*(preparer.submit(Arrival(raw)) for raw in raws))

    try:
        for answer in _run(main()):
            _accepted(ctx, answer)
        assert sum(handed) == len(raws)
        assert max(handed) > 1
    finally:
        preparer.close()
        writer.close()


def test_identical_submissions_in_one_batch_get_the_same_answer(ctx: HubContext) -> None:
    preparer, writer = _pair(ctx)
    raw = _submission()

    async def main() -> list[tuple[Prepared | None, Any]]:
        return await asyncio.gather(*(preparer.submit(Arrival(raw)) for _ in range(3)))

    try:
        bodies = {_accepted(ctx, answer) for answer in _run(main())}
        assert len(bodies) == 1
        assert intake.prepare(ctx, raw, "", {}) == (202, bodies.pop())
    finally:
        preparer.close()
        writer.close()


def test_no_submission_waits_for_the_rest_of_its_batch(ctx: HubContext) -> None:
    """A refusal and a prepared submission are answered while a later, large one of the
    same batch is still being prepared."""
    warm_raw = _submission()
    slow_raw = Case().submission([random_pdq() for _ in range(800)])
    assert len(slow_raw) > EAGER_BYTES
    held, gate, release = threading.Event(), threading.Event(), threading.Event()
    batches: list[int] = []

    def each(arrivals: Sequence[Arrival]) -> Iterator[tuple[int, Result]]:
        batches.append(len(arrivals))
        for i, result in intake.prepare_each(ctx, arrivals):
            if arrivals[i].raw is warm_raw:  # hold the thread while the others queue
                held.set()
                assert gate.wait(30)
            if arrivals[i].raw is slow_raw:
                assert release.wait(30)
            yield i, result

    preparer, writer = _pair(ctx, each)

    async def main() -> None:
        warm = asyncio.ensure_future(preparer.submit(Arrival(warm_raw)))
        await asyncio.to_thread(held.wait, 30)
        first = asyncio.ensure_future(preparer.submit(Arrival(_submission())))
        refused = asyncio.ensure_future(preparer.submit(Arrival(b"\x00garbage")))
        last = asyncio.ensure_future(preparer.submit(Arrival(slow_raw)))
        await asyncio.sleep(0.05)  # all three queued: the next batch takes them together
        gate.set()
        _accepted(ctx, await warm)
        _accepted(ctx, await first)
        with pytest.raises(HubError):
            await refused
        assert not last.done()
        release.set()
        _accepted(ctx, await last)
        assert batches == [1, 3]

    try:
        _run(main())
    finally:
        gate.set()
        release.set()
        preparer.close()
        writer.close()


def test_the_thread_survives_what_escapes_a_batch(ctx: HubContext) -> None:
    calls = 0

    def escapes_once(arrivals: Sequence[Arrival]) -> Iterator[tuple[int, Result]]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise KeyboardInterrupt  # a BaseException: still answered, thread goes on
        return intake.prepare_each(ctx, arrivals)

    preparer, writer = _pair(ctx, escapes_once)
    try:
        with pytest.raises(RuntimeError, match="preparing this submission failed"):
            _run(preparer.submit(Arrival(_submission())))
        _accepted(ctx, _run(preparer.submit(Arrival(_submission()))))
    finally:
        preparer.close()
        writer.close()


@pytest.mark.parametrize("name", ["ncii-intake-prepare", "ncii-intake-writer"])
def test_a_thread_that_cannot_start_fails_one_request_not_every_later_one(
    ctx: HubContext, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    real = threading.Thread.start
    refused: list[str] = []

    def start_once_refused(self: threading.Thread) -> None:
        if self.name == name and not refused:
            refused.append(self.name)
            raise RuntimeError("can't start new thread")
        real(self)

    monkeypatch.setattr(threading.Thread, "start", start_once_refused)
    preparer, writer = _pair(ctx)
    try:
        with pytest.raises(RuntimeError):
            _run(preparer.submit(Arrival(_submission())))
        assert refused == [name]
        _accepted(ctx, _run(preparer.submit(Arrival(_submission()))))
    finally:
        preparer.close()
        writer.close()


def test_close_prepares_and_stores_what_is_queued_then_refuses(ctx: HubContext) -> None:
    """Submissions still queued when close begins (the first batch is held until then) are
    prepared and stored; one after it is refused."""
    closing = threading.Event()
    batches: list[int] = []
    writer = IntakeWriter(ctx.keys.vault, ctx.storage)  # type: ignore[arg-type]

    def held_first(arrivals: Sequence[Arrival]) -> Iterator[tuple[int, Result]]:
        batches.append(len(arrivals))
        if len(batches) == 1:
            assert closing.wait(30)
        return intake.prepare_each(ctx, arrivals)

    preparer = IntakePreparer(held_first, writer)

    async def main() -> tuple[list[tuple[Prepared | None, Any]], BaseException | None]:
        first = asyncio.ensure_future(preparer.submit(Arrival(_submission())))
        while not batches:  # the thread holds the first batch
            await asyncio.sleep(0.01)
        queued = [
            asyncio.ensure_future(preparer.submit(Arrival(_submission())))
            for _ in range(PREPARE_BATCH + 2)
        ]
        await asyncio.sleep(0)  # they are queued behind the held batch
        stopping = asyncio.ensure_future(asyncio.to_thread(preparer.close))
        while not preparer._closing:
            await asyncio.sleep(0.01)
        closing.set()
        await stopping
        await asyncio.to_thread(writer.close)  # then stored
        refused = None
        try:
            await preparer.submit(Arrival(_submission()))
        except WriterClosedError as exc:
            refused = exc
        return list(await asyncio.gather(first, *queued)), refused

    done, refused = _run(main())
    assert isinstance(refused, WriterClosedError)
    assert len(batches) >= 2  # the queued ones were prepared after close began
    for answer in done:
        _accepted(ctx, answer)
