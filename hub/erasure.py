"""Start-up reconciliation of the key store with the database (specs/hub-storage.md section 4.4).

Why: erasure happens in the withdrawal request, but a process may die between committing the
withdrawal and erasing, and an operator may restore an old key-store backup that still holds
keys erased since. So every hub process, before it serves, erases every key the database says
must not exist: keys of withdrawn entries, keys of batches that still reveal a withdrawn entry,
keys of batch versions that were re-sealed since, and keys whose entry never reached the
database (a submission refused or lost after its keys were stored), once they are old enough
that no request in flight can still be storing them.
"""

from __future__ import annotations

import time

from sqlalchemy import Engine, select

from hub.db.engine import read_connection
from hub.db.models import EntryRow, FeedBatchRow, HeldEntryRow, table_of
from hub.storage import SqlStorage
from hub.vault import KeyVault

__all__ = ["ORPHAN_GRACE_SECONDS", "reconcile"]

ORPHAN_GRACE_SECONDS = 3600
"""A key whose entry or batch row is missing is erased only once it is this old: a request
or a seal in another process may be between storing the key and committing its row."""

ENTRIES = table_of(EntryRow)
BATCHES = table_of(FeedBatchRow)
HELD_ENTRIES = table_of(HeldEntryRow)


def reconcile(engine: Engine, vault: KeyVault, now: float | None = None) -> int:
    """Erase every key the database says must be gone; returns how many were erased."""
    clock = time.time() if now is None else now
    targets = SqlStorage(engine).erasure_targets(None)
    old_ids = vault.entry_key_ids(older_than=int(clock - ORPHAN_GRACE_SECONDS))
    known: set[str] = set()
    with read_connection(engine) as conn:
        for i in range(0, len(old_ids), 500):
            part = old_ids[i : i + 500]
            # Held for review (hub/review.py): kept until released or rejected. Read before
            # entries: a release committing in between moves the row to entries, found next.
            known.update(
                str(r[0])
                for r in conn.execute(
                    select(HELD_ENTRIES.c.entry_id).where(
                        HELD_ENTRIES.c.entry_id.in_(part), HELD_ENTRIES.c.state == "held"
                    )
                ).all()
            )
            known.update(
                str(r[0])
                for r in conn.execute(
                    select(ENTRIES.c.entry_id).where(ENTRIES.c.entry_id.in_(part))
                ).all()
            )
        current = {
            int(r[0]): int(r[1])
            for r in conn.execute(select(BATCHES.c.start, BATCHES.c.version)).all()
        }
    orphans = [e for e in old_ids if e not in known]
    # A version below the current one was re-sealed away; a higher one (or an unknown start)
    # is a seal in flight or one that died: erased by the sequencer's collect_garbage.
    stale = [
        (start, version)
        for start, version in vault.batch_key_ids()
        if start in current and version < current[start]
    ]
    return vault.erase([*targets.entry_ids, *orphans], [*targets.batches, *stale])
