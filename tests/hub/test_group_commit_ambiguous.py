"""Group commit when the group's COMMIT fails ambiguously (PostgreSQL: the connection drops
while COMMIT is in flight; the server may have committed). The fallback then stores each
request alone and meets the request's OWN replay key, written by the group it was in: that
must be recognised as this request, accepted, and never answered as a replay. Otherwise
intake (hub/intake.py) takes the ReplayExistsError for a refusal, erases the request's
entry keys, and still answers 202 with the stored response: entries that are in the database
and go into the log, with no key left to decrypt them (a 202 that is not durable)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from crypto.commitment import LeafData, LeafKind, new_salt
from crypto.merkle import EMPTY_ROOT
from hub.db.engine import create_schema, make_engine
from hub.keystore import load_keys
from hub.sequencer import sign_tree_head
from hub.storage import NewEntry, ReplayRecord, SqlStorage, StorageError


@pytest.fixture
def parts(database_url: str, tmp_path: Path) -> Iterator[tuple[SqlStorage, Engine]]:
    keys = load_keys(tmp_path / "data", "test.example/log")
    engine = make_engine(database_url)
    create_schema(engine, sign_tree_head(keys, 0, EMPTY_ROOT))
    yield SqlStorage(engine), engine
    engine.dispose()


def _entries(n: int) -> list[NewEntry]:
    return [
        NewEntry(
            secrets.token_hex(16),
            LeafData.for_entry(LeafKind.ADDITION, secrets.token_bytes(40), new_salt()).encode(),
            b"sealed",
        )
        for _ in range(n)
    ]


def test_commit_that_succeeded_but_raised_is_not_a_replay(
    parts: tuple[SqlStorage, Engine],
) -> None:
    storage, _engine = parts
    real = storage._submit_group

    def commits_then_loses_the_connection(group: Any) -> Any:
        real(group)  # committed
        raise OperationalError("COMMIT", {}, Exception("server closed the connection"))

    storage._submit_group = commits_then_loses_the_connection  # type: ignore[method-assign]
    record = ReplayRecord(secrets.token_bytes(32), 202, b'{"entries":["mine"]}')
    replay_key = secrets.token_bytes(48)
    try:
        outcome: object = storage.submit(
            "AMBIGUOUSCASE001", b"p" * 32, _entries(3), replay_key, record, 5000, 100, 1000
        )
    except Exception as exc:  # what intake would see
        outcome = exc
    assert storage.get_replay(replay_key) == record  # the group did commit it
    # Intake erases the entry keys on any StorageError: the answer must be a success.
    assert not isinstance(outcome, StorageError), type(outcome).__name__
