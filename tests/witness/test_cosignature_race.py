"""Two witnesses' cosignatures for the same size, stored at the same moment, both survive.

Why: the cosigner's loops run one per witness and witnesses answer at about the same time.
On PostgreSQL (read committed) ``record_cosignature`` once read "no checkpoint row at this
size", and then, after the other witness's call had committed, deleted the lines at that size
(meant for a changed note): the other witness's line was gone while its status said
"cosigned", so its loop idled and /checkpoint lacked its line until the next checkpoint
(the flaky tests/witness/test_cosigning.py failure). The interleaving is forced here.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, event

from crypto.checkpoint import Checkpoint, sign_checkpoint
from crypto.keys import signer_key_from_seed
from crypto.merkle import EMPTY_ROOT
from hub.db.engine import create_schema, make_engine
from hub.witness_store import CosignatureStore

ORIGIN = "log.example.org/hub"
LOG = signer_key_from_seed(ORIGIN, b"\x11" * 32)
NOW = 1767225600
KEYS = ["w1-key", "w2-key"]


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    create_schema(engine, sign_checkpoint(Checkpoint(ORIGIN, 0, EMPTY_ROOT), [LOG]))
    yield engine
    engine.dispose()


def test_concurrent_lines_for_one_size_both_stay(engine: Engine) -> None:
    store = CosignatureStore(engine)
    note = sign_checkpoint(Checkpoint(ORIGIN, 305, b"\x07" * 32), [LOG])
    main = threading.get_ident()
    other: list[threading.Thread] = []
    errors: list[BaseException] = []

    def store_w2() -> None:
        try:
            store.record_cosignature(KEYS[1], 305, note, b"line of w2\n", NOW)
        except BaseException as exc:  # reported by the test below
            errors.append(exc)

    def after(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        # After w1's first statement on a witness table, w2's whole call runs (or blocks on
        # w1's lock, which is the fix): the interleaving that lost w2's line.
        if other or threading.get_ident() != main or "witness_" not in statement:
            return
        thread = threading.Thread(target=store_w2)
        other.append(thread)
        thread.start()
        thread.join(2.0)

    event.listen(engine, "after_cursor_execute", after)
    try:
        store.record_cosignature(KEYS[0], 305, note, b"line of w1\n", NOW)
    finally:
        event.remove(engine, "after_cursor_execute", after)
    assert other, "the hook never ran"
    other[0].join(30.0)
    assert not other[0].is_alive() and not errors, errors
    assert store.lines_for(305, note, KEYS) == [b"line of w1\n", b"line of w2\n"]
    assert [store.status(k).cosigned_size for k in KEYS] == [305, 305]  # type: ignore[union-attr]


def test_a_changed_note_at_one_size_drops_the_old_lines(engine: Engine) -> None:
    store = CosignatureStore(engine)
    old = sign_checkpoint(Checkpoint(ORIGIN, 9, b"\x01" * 32), [LOG])
    new = sign_checkpoint(Checkpoint(ORIGIN, 9, b"\x02" * 32), [LOG])
    store.record_cosignature(KEYS[0], 9, old, b"old line\n", NOW)
    store.record_cosignature(KEYS[1], 9, new, b"new line\n", NOW)
    assert store.lines_for(9, old, KEYS) == []
    assert store.lines_for(9, new, KEYS) == [b"new line\n"]
