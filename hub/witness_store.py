"""Durable witness state of the hub: cosignatures per checkpoint size, and each witness's status.

Why in the database: every hub process serves /checkpoint, but only the sequencer's process
talks to witnesses; the cosignatures it collects must reach all of them, and survive a
restart (a witness only cosigns sizes it has not seen yet, so a lost line is lost for good).
Tables: specs/hub-storage.md (witness_checkpoints, witness_cosignatures, witness_status).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, Table, delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from hub.db.engine import is_postgres, read_connection
from hub.db.models import (
    WitnessCheckpointRow,
    WitnessCosignatureRow,
    WitnessStatusRow,
    table_of,
)

__all__ = ["KEEP_SIZES", "CosignatureStore", "WitnessStatus"]

CHECKPOINTS = table_of(WitnessCheckpointRow)
COSIGNATURES = table_of(WitnessCosignatureRow)
STATUS = table_of(WitnessStatusRow)
KEEP_SIZES = 256
"""Checkpoint sizes whose cosignatures are kept besides the newest fully cosigned one."""


@dataclass(frozen=True, slots=True)
class WitnessStatus:
    """The row of one witness (keyed by its verifier key string)."""

    witness_key: str
    known_size: int | None
    cosigned_size: int | None
    cosigned_at: int | None
    last_status: int | None
    last_error: str | None
    failures: int
    updated_at: int


class CosignatureStore:
    """The three witness tables on SQLite or PostgreSQL; every method is one transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._insert = pg_insert if is_postgres(engine) else sqlite_insert

    def _upsert(
        self,
        conn: Connection,
        table: Table,
        values: dict[str, Any],
        keys: Sequence[str],
        insert_only: dict[str, Any] | None = None,
    ) -> None:
        """Insert ``values`` (plus ``insert_only``), or update ``values`` on the row."""
        stmt = self._insert(table).values(**values, **(insert_only or {}))
        changes = {k: v for k, v in values.items() if k not in keys}
        conn.execute(stmt.on_conflict_do_update(index_elements=list(keys), set_=changes))

    # -- status

    def status(self, witness_key: str) -> WitnessStatus | None:
        with read_connection(self.engine) as conn:
            row = conn.execute(select(STATUS).where(STATUS.c.witness_key == witness_key)).first()
        return None if row is None else WitnessStatus(*row)

    def all_status(self) -> dict[str, WitnessStatus]:
        with read_connection(self.engine) as conn:
            rows = conn.execute(select(STATUS)).all()
        return {r[0]: WitnessStatus(*r) for r in rows}

    def record_failure(
        self,
        witness_key: str,
        status: int | None,
        error: str,
        now: int,
        *,
        known_size: int | None = None,
    ) -> None:
        """Count a failed attempt; ``known_size`` is what a 409 said the witness holds."""
        with self.engine.begin() as conn:
            old = conn.execute(
                select(STATUS.c.failures, STATUS.c.known_size).where(
                    STATUS.c.witness_key == witness_key
                )
            ).first()
            failures = 1 if old is None else int(old[0]) + 1
            known = known_size if known_size is not None else (None if old is None else old[1])
            self._upsert(
                conn,
                STATUS,
                {
                    "witness_key": witness_key,
                    "known_size": known,
                    "last_status": status,
                    "last_error": error[:500],
                    "failures": failures,
                    "updated_at": now,
                },
                ["witness_key"],
            )

    def set_known_size(self, witness_key: str, size: int, now: int) -> None:
        """A 409 told us the witness's size: the next request starts from it."""
        with self.engine.begin() as conn:
            self._upsert(
                conn,
                STATUS,
                {"witness_key": witness_key, "known_size": size, "updated_at": now},
                ["witness_key"],
                {"failures": 0},
            )

    # -- cosignatures

    def record_cosignature(
        self, witness_key: str, size: int, note: bytes, line: bytes, now: int
    ) -> None:
        """Store a verified cosignature line for the checkpoint ``note`` of ``size``."""
        with self.engine.begin() as conn:
            # Claim the size's row first and lock it: witnesses answer at about the same
            # moment, and on PostgreSQL (read committed) a call that only read "no row yet"
            # would then delete the line another witness's call committed meanwhile, leaving
            # that witness marked as cosigned with no line stored.
            conn.execute(
                self._insert(CHECKPOINTS)
                .values(size=size, note=note)
                .on_conflict_do_nothing(index_elements=["size"])
            )
            found = conn.execute(
                select(CHECKPOINTS.c.note).where(CHECKPOINTS.c.size == size).with_for_update()
            ).first()
            if found is None or bytes(found[0]) != note:
                # A different note at this size (the log's key changed): lines for the old
                # note no longer apply to it.
                conn.execute(delete(COSIGNATURES).where(COSIGNATURES.c.size == size))
                self._upsert(conn, CHECKPOINTS, {"size": size, "note": note}, ["size"])
            self._upsert(
                conn,
                COSIGNATURES,
                {"size": size, "witness_key": witness_key, "line": line, "cosigned_at": now},
                ["size", "witness_key"],
            )
            self._upsert(
                conn,
                STATUS,
                {
                    "witness_key": witness_key,
                    "known_size": size,
                    "cosigned_size": size,
                    "cosigned_at": now,
                    "last_status": 200,
                    "last_error": None,
                    "failures": 0,
                    "updated_at": now,
                },
                ["witness_key"],
            )

    def lines_for(self, size: int, note: bytes, witness_keys: Sequence[str]) -> list[bytes]:
        """Cosignature lines held for exactly this note, by the given witnesses, in order."""
        if not witness_keys:
            return []
        with read_connection(self.engine) as conn:
            found = conn.execute(
                select(CHECKPOINTS.c.note).where(CHECKPOINTS.c.size == size)
            ).first()
            if found is None or bytes(found[0]) != note:
                return []
            rows = conn.execute(
                select(COSIGNATURES.c.witness_key, COSIGNATURES.c.line).where(
                    COSIGNATURES.c.size == size, COSIGNATURES.c.witness_key.in_(witness_keys)
                )
            ).all()
        by_key = {r[0]: bytes(r[1]) for r in rows}
        return [by_key[k] for k in witness_keys if k in by_key]

    def _newest_full_size(self, conn: Connection, witness_keys: Sequence[str]) -> int | None:
        row = conn.execute(
            select(COSIGNATURES.c.size)
            .where(COSIGNATURES.c.witness_key.in_(witness_keys))
            .group_by(COSIGNATURES.c.size)
            .having(func.count() == len(witness_keys))
            .order_by(COSIGNATURES.c.size.desc())
            .limit(1)
        ).first()
        return None if row is None else int(row[0])

    def newest_fully_cosigned(
        self, witness_keys: Sequence[str]
    ) -> tuple[bytes, list[bytes]] | None:
        """(note, lines) of the newest checkpoint every given witness cosigned, or None."""
        if not witness_keys:
            return None
        with read_connection(self.engine) as conn:
            size = self._newest_full_size(conn, witness_keys)
            if size is None:
                return None
            note = conn.execute(
                select(CHECKPOINTS.c.note).where(CHECKPOINTS.c.size == size)
            ).scalar_one()
        return bytes(note), self.lines_for(size, bytes(note), witness_keys)

    def prune(self, witness_keys: Sequence[str]) -> int:
        """Drop sizes older than the newest fully cosigned one, and all but the newest
        KEEP_SIZES others (a witness down for long must not grow the tables without bound)."""
        with self.engine.begin() as conn:
            full = self._newest_full_size(conn, witness_keys) if witness_keys else None
            sizes = [
                int(s)
                for (s,) in conn.execute(
                    select(CHECKPOINTS.c.size).order_by(CHECKPOINTS.c.size.desc())
                ).all()
            ]
            doomed = [
                s
                for i, s in enumerate(sizes)
                if s != full and ((full is not None and s < full) or i >= KEEP_SIZES)
            ]
            if doomed:
                conn.execute(delete(COSIGNATURES).where(COSIGNATURES.c.size.in_(doomed)))
                conn.execute(delete(CHECKPOINTS).where(CHECKPOINTS.c.size.in_(doomed)))
        return len(doomed)
