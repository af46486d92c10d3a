"""Held submissions: what an operator may see of them, and release or reject.

Why held, not refused: a submission beyond the admission limits (hub/admission.py) may be a
flood meant to poison every partner's block list, or a person with many images. Either way it
is stored durably (entries sealed under their own keys, as for any submission) but outside the
``entries`` table, so the sequencer never logs it and no partner receives it. An operator
decides from counts and timing alone: the summary names no hash, no case id (an opaque keyed
label instead), no address (a keyed tag), nothing of the image. Reject erases the entries' keys
from the key store exactly as a withdrawal does (hub.vault), so nothing of them can be opened
again. Commands: ``ncii-hub review list|release|reject`` (specs/hub-api.md section 6.3).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, delete, func, insert, select, update
from sqlalchemy.engine import Connection

from crypto.commitment import LeafKind
from hub.admission import case_tag
from hub.db.engine import read_connection
from hub.db.models import (
    CaseRow,
    EntryRow,
    HeldEntryRow,
    HeldSubmissionRow,
    table_of,
)
from hub.vault import KeyVault

__all__ = ["HeldSummary", "ReviewError", "count_held", "list_held", "reject", "release"]

HELD = table_of(HeldSubmissionRow)
HELD_ENTRIES = table_of(HeldEntryRow)
ENTRIES = table_of(EntryRow)
CASES = table_of(CaseRow)


class ReviewError(ValueError):
    """A review command cannot be done (unknown id, already decided); the message says why."""


@dataclass(frozen=True, slots=True)
class HeldSummary:
    """One held submission as a reviewer sees it: counts and timing only."""

    review_id: str
    state: str
    reason: str
    held_at: int
    decided_at: int | None
    entries: int  # still held (withdrawn ones excluded)
    submitted: int  # in the request
    new_case: bool
    source: str  # "address:<tag>" or "submitter:<name>"
    address_seen_hashes: int
    address_seen_cases: int
    address_held_hashes: int
    address_first_seen: int | None
    case: str  # opaque label, the same for every submission of one case
    case_entries_before: int
    case_held_submissions: int
    case_created_at: int | None

    def as_json(self, now: int) -> dict[str, object]:
        return {
            "review_id": self.review_id,
            "state": self.state,
            "reason": self.reason,
            "held_at": self.held_at,
            "held_for_seconds": max(0, (self.decided_at or now) - self.held_at),
            "decided_at": self.decided_at,
            "entries": self.entries,
            "submitted": self.submitted,
            "new_case": self.new_case,
            "source": self.source,
            "address_history": {
                "hashes": self.address_seen_hashes,
                "new_cases": self.address_seen_cases,
                "held_hashes": self.address_held_hashes,
                "first_seen": self.address_first_seen,
            },
            "case": {
                "label": self.case,
                "entries_before": self.case_entries_before,
                "held_submissions": self.case_held_submissions,
                "created_at": self.case_created_at,
            },
        }


def list_held(engine: Engine, admission_key: bytes, *, every: bool = False) -> list[HeldSummary]:
    """Held submissions, oldest first (with ``every``, released and rejected ones too)."""
    with read_connection(engine) as conn:
        stmt = select(
            HELD.c.review_id,
            HELD.c.state,
            HELD.c.reason,
            HELD.c.held_at,
            HELD.c.decided_at,
            HELD.c.entry_count,
            HELD.c.new_case,
            HELD.c.address_tag,
            HELD.c.submitter,
            HELD.c.addr_seen_hashes,
            HELD.c.addr_seen_cases,
            HELD.c.addr_held_hashes,
            HELD.c.addr_first_seen,
            HELD.c.case_id,
            HELD.c.case_entries_before,
        ).order_by(HELD.c.held_at, HELD.c.review_id)
        if not every:
            stmt = stmt.where(HELD.c.state == "held")
        rows = conn.execute(stmt).all()
        still = {
            str(r[0]): int(r[1])
            for r in conn.execute(
                select(HELD_ENTRIES.c.review_id, func.count())
                .where(HELD_ENTRIES.c.state == "held")
                .group_by(HELD_ENTRIES.c.review_id)
            ).all()
        }
        per_case = {
            str(r[0]): int(r[1])
            for r in conn.execute(
                select(HELD.c.case_id, func.count()).group_by(HELD.c.case_id)
            ).all()
        }
        case_ids = sorted({r[13] for r in rows})
        created: dict[str, int] = {}
        for i in range(0, len(case_ids), 500):
            created.update(
                (str(c), int(t))
                for c, t in conn.execute(
                    select(CASES.c.case_id, CASES.c.created_at).where(
                        CASES.c.case_id.in_(case_ids[i : i + 500])
                    )
                ).all()
            )
    out = []
    for r in rows:
        source = (
            f"submitter:{r[8]}"
            if r[8] is not None
            else f"address:{bytes(r[7]).hex()[:12]}"
            if r[7] is not None
            else "address:unknown"
        )
        out.append(
            HeldSummary(
                review_id=str(r[0]),
                state=str(r[1]),
                reason=str(r[2]),
                held_at=int(r[3]),
                decided_at=None if r[4] is None else int(r[4]),
                entries=int(still.get(r[0], 0)),
                submitted=int(r[5]),
                new_case=bool(r[6]),
                source=source,
                address_seen_hashes=int(r[9]),
                address_seen_cases=int(r[10]),
                address_held_hashes=int(r[11]),
                address_first_seen=None if r[12] is None else int(r[12]),
                case=case_tag(admission_key, str(r[13])),
                case_entries_before=int(r[14]),
                case_held_submissions=int(per_case.get(r[13], 0)),
                case_created_at=created.get(str(r[13])),
            )
        )
    return out


def count_held(engine: Engine) -> tuple[int, int]:
    """(submissions, entries) waiting for review, for stats and metrics."""
    with read_connection(engine) as conn:
        subs = conn.execute(
            select(func.count()).select_from(HELD).where(HELD.c.state == "held")
        ).scalar_one()
        entries = conn.execute(
            select(func.count()).select_from(HELD_ENTRIES).where(HELD_ENTRIES.c.state == "held")
        ).scalar_one()
    return int(subs), int(entries)


def _lock_held(conn: Connection, review_id: str) -> str:
    stmt = select(HELD.c.state).where(HELD.c.review_id == review_id)
    if conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    row = conn.execute(stmt).first()
    if row is None:
        raise ReviewError(
            f"no held submission {review_id!r}; see 'ncii-hub review list' for the ids"
        )
    if row[0] != "held":
        raise ReviewError(f"submission {review_id} was already {row[0]}; nothing to do")
    return str(row[0])


def release(engine: Engine, review_id: str, now: int) -> int:
    """Move a held submission's entries into the log's pending entries (the sequencer logs
    them in its next round); returns how many. Atomic."""
    with engine.begin() as conn:
        _lock_held(conn, review_id)
        rows = conn.execute(
            select(
                HELD_ENTRIES.c.entry_id,
                HELD_ENTRIES.c.case_id,
                HELD_ENTRIES.c.leaf_data,
                HELD_ENTRIES.c.leaf_hash,
                HELD_ENTRIES.c.ciphertext,
            )
            .where(HELD_ENTRIES.c.review_id == review_id, HELD_ENTRIES.c.state == "held")
            .order_by(HELD_ENTRIES.c.position)
        ).all()
        if rows:
            conn.execute(
                insert(ENTRIES),
                [
                    {
                        "entry_id": r[0],
                        "case_id": r[1],
                        "kind": int(LeafKind.ADDITION),
                        "leaf_data": r[2],
                        "leaf_hash": r[3],
                        "ciphertext": r[4],
                        "created_at": now,
                    }
                    for r in rows
                ],
            )
            conn.execute(
                delete(HELD_ENTRIES).where(
                    HELD_ENTRIES.c.review_id == review_id, HELD_ENTRIES.c.state == "held"
                )
            )
        conn.execute(
            update(HELD)
            .where(HELD.c.review_id == review_id)
            .values(state="released", decided_at=now)
        )
    return len(rows)


def reject(engine: Engine, vault: KeyVault, review_id: str, now: int) -> int:
    """Reject a held submission: drop its ciphertexts and leaf data, then erase its entries'
    keys from the key store (as a withdrawal does); returns how many entries. If erasing
    fails, the next hub start erases them (hub.erasure.reconcile) and a second reject of the
    same id says it was already rejected."""
    with engine.begin() as conn:
        _lock_held(conn, review_id)
        ids = [
            str(r[0])
            for r in conn.execute(
                select(HELD_ENTRIES.c.entry_id).where(
                    HELD_ENTRIES.c.review_id == review_id, HELD_ENTRIES.c.state == "held"
                )
            ).all()
        ]
        conn.execute(
            update(HELD_ENTRIES)
            .where(HELD_ENTRIES.c.review_id == review_id, HELD_ENTRIES.c.state == "held")
            .values(state="rejected", leaf_data=None, ciphertext=None)
        )
        conn.execute(
            update(HELD)
            .where(HELD.c.review_id == review_id)
            .values(state="rejected", decided_at=now)
        )
    vault.erase(ids, [])
    return len(ids)
