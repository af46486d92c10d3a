"""The intake's single writer (hub.intakewriter), on SQLite and PostgreSQL: concurrent requests
share groups (one key-store transaction and one database transaction each), yet each gets its
own outcome; a refused request's keys are erased and nobody else's; a key the key store refuses
fails only its request; a failure answers instead of leaving requests waiting; closing stores
what is queued and then refuses.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hubkit import hub_database
from sqlalchemy import Engine, func, select

from crypto.commitment import LeafData, LeafKind, new_salt
from hub.db.models import EntryRow, table_of
from hub.intake import Prepared
from hub.intakewriter import IntakeWriter, Outcome, WriterClosedError
from hub.keystore import HubKeys
from hub.storage import CaseFullError, NewEntry, ReplayRecord, StoreRequest
from hub.vault import VaultError

ENTRIES = table_of(EntryRow)
MAX_PER_CASE = 12


@pytest.fixture
def parts(database_url: str, tmp_path: Path) -> Iterator[tuple[IntakeWriter, HubKeys, Engine]]:
    with hub_database(database_url, tmp_path / "data") as (keys, engine, storage):
        writer = IntakeWriter(keys.vault, storage)
        yield writer, keys, engine
        writer.close()


def _prepared(n: int, case_id: str | None = None) -> Prepared:
    entries, keys = [], []
    for _ in range(n):
        eid = secrets.token_hex(16)
        leaf = LeafData.for_entry(LeafKind.ADDITION, secrets.token_bytes(40), new_salt())
        entries.append(NewEntry(eid, leaf.encode(), b"sealed"))
        keys.append((eid, secrets.token_bytes(32)))
    digest = hashlib.sha256(secrets.token_bytes(16)).digest()
    request = StoreRequest(
        case_id or secrets.token_hex(8).upper(),
        secrets.token_bytes(32),
        entries,
        secrets.token_bytes(48),
        ReplayRecord(digest, 202, b"pending " + secrets.token_bytes(8)),
        5000,
        MAX_PER_CASE,
        1000,
        None,
        None,
    )
    return Prepared(request, keys, digest, ["pdq"] * n, None)


def _stored_entries(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(ENTRIES)).scalar_one())


def _store_all(writer: IntakeWriter, prepared: list[Prepared]) -> list[Outcome]:
    async def main() -> list[Outcome]:
        stores = [writer.store(p) for p in prepared]
        return list(await asyncio.wait_for(asyncio.gather(*stores), 60))

    return asyncio.run(main())


def _count_groups(writer: IntakeWriter, sizes: list[int]) -> None:
    storage: Any = writer._storage
    real = storage.store_group

    def counting(group: list[StoreRequest]) -> None:
        sizes.append(len(group))
        real(group)

    storage.store_group = counting


def test_concurrent_requests_share_groups_and_each_is_stored(
    parts: tuple[IntakeWriter, HubKeys, Engine],
) -> None:
    writer, keys, engine = parts
    sizes: list[int] = []
    _count_groups(writer, sizes)
    prepared = [_prepared(3) for _ in range(60)]
    outcomes = _store_all(writer, prepared)
    assert outcomes == [None] * 60
    assert sum(sizes) == 60
    assert len(sizes) < 60 and max(sizes) > 1, sizes  # requests were grouped
    assert _stored_entries(engine) == 180
    ids = [eid for p in prepared for eid, _key in p.entry_keys]
    assert keys.vault.entry_keys(ids) == {eid: key for p in prepared for eid, key in p.entry_keys}


def test_a_refusal_fails_only_its_request_and_erases_only_its_keys(
    parts: tuple[IntakeWriter, HubKeys, Engine],
) -> None:
    writer, keys, engine = parts
    good = [_prepared(2), _prepared(2)]
    too_many = _prepared(MAX_PER_CASE + 1)
    outcomes = _store_all(writer, [good[0], too_many, good[1]])
    assert outcomes[0] is None and outcomes[2] is None
    assert isinstance(outcomes[1], CaseFullError)
    assert _stored_entries(engine) == 4
    writer.close()  # the erase follows the answers: wait for the writer to finish it
    assert keys.vault.entry_keys([eid for eid, _k in too_many.entry_keys]) == {}
    kept = [eid for p in good for eid, _k in p.entry_keys]
    assert set(keys.vault.entry_keys(kept)) == set(kept)


def test_a_key_the_key_store_refuses_fails_only_its_request(
    parts: tuple[IntakeWriter, HubKeys, Engine],
) -> None:
    writer, keys, engine = parts
    first = _prepared(2)
    assert _store_all(writer, [first]) == [None]
    clash = _prepared(2)
    clash.entry_keys[1] = (first.entry_keys[0][0], secrets.token_bytes(32))  # a used entry id
    other = _prepared(2)
    outcomes = _store_all(writer, [clash, other])
    assert isinstance(outcomes[0], VaultError)
    assert outcomes[1] is None
    assert _stored_entries(engine) == 4  # first and other; nothing of the refused request
    assert keys.vault.entry_keys([first.entry_keys[0][0]]) == dict(first.entry_keys[:1])


def test_a_failing_group_answers_instead_of_leaving_requests_waiting(
    parts: tuple[IntakeWriter, HubKeys, Engine], monkeypatch: pytest.MonkeyPatch
) -> None:
    writer, keys, _engine = parts

    def broken(group: list[StoreRequest]) -> None:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(writer._storage, "store_group", broken)
    prepared = [_prepared(1) for _ in range(5)]
    outcomes = _store_all(writer, prepared)
    assert all(isinstance(o, RuntimeError) for o in outcomes), outcomes
    # Not a refusal: the group may have committed, so the keys stay (hub.erasure at start).
    ids = [eid for p in prepared for eid, _k in p.entry_keys]
    assert set(keys.vault.entry_keys(ids)) == set(ids)
    monkeypatch.undo()
    assert _store_all(writer, [_prepared(1)]) == [None]  # the writer goes on


def test_close_stores_what_is_queued_then_refuses(
    parts: tuple[IntakeWriter, HubKeys, Engine],
) -> None:
    writer, _keys, engine = parts

    async def main() -> tuple[list[Outcome], Outcome]:
        stores = [asyncio.ensure_future(writer.store(_prepared(1))) for _ in range(10)]
        await asyncio.sleep(0)  # every store() is queued
        await asyncio.to_thread(writer.close)
        done = list(await asyncio.wait_for(asyncio.gather(*stores), 60))
        return done, await writer.store(_prepared(1))

    done, late = asyncio.run(main())
    assert done == [None] * 10
    assert _stored_entries(engine) == 10
    assert isinstance(late, WriterClosedError)


def test_the_writer_survives_what_escapes_a_group(
    parts: tuple[IntakeWriter, HubKeys, Engine], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Even a BaseException (not an Exception) escaping a group is each request's own 500,
    one exception object per request, and the thread goes on with the next group."""
    writer, _keys, _engine = parts

    def escapes(group: Any) -> Any:
        raise SystemExit("a bug")

    monkeypatch.setattr(writer, "_store", escapes)
    outcomes = _store_all(writer, [_prepared(1) for _ in range(3)])
    assert all(isinstance(o, RuntimeError) for o in outcomes), outcomes
    assert len({id(o) for o in outcomes}) == 3
    monkeypatch.undo()
    assert _store_all(writer, [_prepared(1)]) == [None]
