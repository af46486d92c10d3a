"""The intake's preparing thread (hub.intakeprep) and prepare_many (hub.intake): a batch is
answered exactly as one-by-one preparing would answer each submission, with one read of the
replay records; a refusal or failure stays with its own submission; the thread survives what
escapes; closing prepares and stores what is queued. Both databases."""

from __future__ import annotations

import asyncio
import functools
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
from hub.intakeprep import PREPARE_BATCH, IntakePreparer
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
    results = intake.prepare_many(ctx, [Arrival(raw, "192.0.2.1") for raw in batch])

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


def test_a_failed_replay_read_leaves_each_submission_its_own_error(
    ctx: HubContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    def lost(_keys: Sequence[bytes]) -> dict[bytes, Any]:
        raise OperationalError("SELECT", {}, Exception("server closed the connection"))

    monkeypatch.setattr(ctx.storage, "get_replays", lost)
    monkeypatch.setattr(ctx.storage, "get_replay", lambda key: lost([key]))
    results = intake.prepare_many(ctx, [Arrival(_submission()) for _ in range(3)])
    assert all(isinstance(r, OperationalError) for r in results)  # the app answers 503
    assert len({id(r) for r in results}) == 3


def _run(coroutine: Any) -> Any:
    """Run ``coroutine``; a request left waiting fails the test instead of hanging it."""
    return asyncio.run(asyncio.wait_for(coroutine, 60))


def test_concurrent_submissions_are_prepared_in_batches_and_each_is_stored(
    ctx: HubContext,
) -> None:
    batches: list[int] = []

    def counting(arrivals: Sequence[Arrival]) -> list[Result]:
        batches.append(len(arrivals))
        return intake.prepare_many(ctx, arrivals)

    writer = IntakeWriter(ctx.keys.vault, ctx.storage)  # type: ignore[arg-type]
    preparer = IntakePreparer(counting, writer)
    raws = [_submission() for _ in range(PREPARE_BATCH + 8)]

    async def main() -> list[tuple[Prepared | None, Any]]:
        return await asyncio.gather(*(preparer.submit(Arrival(raw)) for raw in raws))

    try:
        done = _run(main())
        for (prepared, outcome), raw in zip(done, raws, strict=True):
            assert prepared is not None
            status, body = intake.answer(ctx, prepared, outcome)
            assert status == 202
            assert intake.prepare(ctx, raw, "", {}) == (202, body)  # stored: a retry's answer
        assert max(batches) == PREPARE_BATCH  # one thread took what was waiting
        assert sum(batches) == len(raws)
    finally:
        preparer.close()
        writer.close()


def test_the_thread_survives_what_escapes_a_batch(ctx: HubContext) -> None:
    calls = 0

    def escapes_once(arrivals: Sequence[Arrival]) -> list[Result]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise KeyboardInterrupt  # a BaseException: still answered, thread goes on
        return intake.prepare_many(ctx, arrivals)

    writer = IntakeWriter(ctx.keys.vault, ctx.storage)  # type: ignore[arg-type]
    preparer = IntakePreparer(escapes_once, writer)
    try:
        with pytest.raises(RuntimeError, match="preparing this submission failed"):
            _run(preparer.submit(Arrival(_submission())))
        prepared, outcome = _run(preparer.submit(Arrival(_submission())))
        assert prepared is not None
        assert intake.answer(ctx, prepared, outcome)[0] == 202
    finally:
        preparer.close()
        writer.close()


def test_close_prepares_and_stores_what_is_queued_then_refuses(ctx: HubContext) -> None:
    started = asyncio.Event()

    def slow(loop: asyncio.AbstractEventLoop, arrivals: Sequence[Arrival]) -> list[Result]:
        loop.call_soon_threadsafe(started.set)
        return intake.prepare_many(ctx, arrivals)

    writer = IntakeWriter(ctx.keys.vault, ctx.storage)  # type: ignore[arg-type]

    async def main() -> tuple[list[tuple[Prepared | None, Any]], BaseException | None]:
        preparer = IntakePreparer(functools.partial(slow, asyncio.get_running_loop()), writer)
        pending = [asyncio.ensure_future(preparer.submit(Arrival(_submission()))) for _ in range(5)]
        await started.wait()
        await asyncio.to_thread(preparer.close)  # the queued ones are prepared first
        await asyncio.to_thread(writer.close)  # then stored
        refused = None
        try:
            await preparer.submit(Arrival(_submission()))
        except WriterClosedError as exc:
            refused = exc
        return list(await asyncio.gather(*pending)), refused

    done, refused = _run(main())
    assert isinstance(refused, WriterClosedError)
    for prepared, outcome in done:
        assert prepared is not None
        assert intake.answer(ctx, prepared, outcome)[0] == 202


def test_a_writer_that_cannot_take_the_batch_fails_its_requests_instead_of_losing_them(
    ctx: HubContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = IntakeWriter(ctx.keys.vault, ctx.storage)  # type: ignore[arg-type]

    def no_thread(_items: Any) -> None:
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(writer, "enqueue", no_thread)
    preparer = IntakePreparer(functools.partial(intake.prepare_many, ctx), writer)
    try:
        with pytest.raises(RuntimeError, match="preparing this submission failed"):
            _run(preparer.submit(Arrival(_submission())))
        monkeypatch.undo()
        prepared, outcome = _run(preparer.submit(Arrival(_submission())))  # the thread lives
        assert prepared is not None
        assert intake.answer(ctx, prepared, outcome)[0] == 202
    finally:
        preparer.close()
        writer.close()
