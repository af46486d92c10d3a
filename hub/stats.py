"""``ncii-hub stats``: the numbers a helpline publishes, per day or week, read offline.

Why offline and from the data folder: the report must work while the hub is stopped, must not
depend on a process's in-memory counters (they reset at restart), and must be the same on
SQLite and PostgreSQL. It reads the database and, for hash types, the key store: the type of an
entry is sealed with its body under the entry's own key (specs/hub-storage.md), so it is known
only while the entry is live. A withdrawn entry's key is erased, and with it its type: such
entries are counted as hashes accepted and withdrawn, under no type. Nothing is written, and
nothing is created: a folder that is not a hub's is refused.

The report never holds a hash value, case id, entry id or key: only counts, dates, partner
names (chosen by the operator), witness names and sizes. Layout: specs/hub-api.md section 10.4.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from sqlalchemy import func, inspect, make_url, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from crypto.commitment import LeafKind
from crypto.errors import CryptoError
from hub.atrest import open_entry
from hub.db.engine import make_read_only_engine, read_connection
from hub.db.models import (
    CaseRow,
    EntryRow,
    HeldSubmissionRow,
    LogStateRow,
    PartnerRow,
    WitnessStatusRow,
    table_of,
)
from hub.vault import VAULT_NAME, KeyVault, VaultError

__all__ = ["BUCKETS", "Report", "StatsError", "build_report", "format_text", "parse_date"]

BUCKETS: Final = ("day", "week")
ALGORITHMS: Final = ("pdq", "vpdq", "md5", "sha256")
_KEY_CHUNK: Final = 500

CASES = table_of(CaseRow)
ENTRIES = table_of(EntryRow)
LOG_STATE = table_of(LogStateRow)
PARTNERS = table_of(PartnerRow)
WITNESS_STATUS = table_of(WitnessStatusRow)
HELD = table_of(HeldSubmissionRow)


class StatsError(RuntimeError):
    """The folder or database is not a hub's, or cannot be read; the message says what to do."""


def parse_date(text: str) -> dt.date:
    """``YYYY-MM-DD`` (UTC day) or raise ValueError with a message for people."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a date; write it as YYYY-MM-DD") from None


def _bucket(day: dt.date, by: str) -> dt.date:
    return day - dt.timedelta(days=day.weekday()) if by == "week" else day


def _day(timestamp: int) -> dt.date:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).date()


def _start(day: dt.date) -> int:
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp())


@dataclass
class Period:
    """The counts of one day or week (``start`` is its first UTC day)."""

    start: dt.date
    cases_opened: int = 0
    hashes_accepted: int = 0
    hashes_by_type: Counter[str] = field(default_factory=Counter)
    entries_withdrawn: int = 0
    cases_withdrawn: int = 0
    held: int = 0
    released: int = 0

    def add(self, other: Period) -> None:
        self.cases_opened += other.cases_opened
        self.hashes_accepted += other.hashes_accepted
        self.hashes_by_type.update(other.hashes_by_type)
        self.entries_withdrawn += other.entries_withdrawn
        self.cases_withdrawn += other.cases_withdrawn
        self.held += other.held
        self.released += other.released

    def to_json(self, by: str) -> dict[str, Any]:
        types = {a: self.hashes_by_type.get(a, 0) for a in ALGORITHMS}
        return {
            by: self.start.isoformat(),
            "cases_opened": self.cases_opened,
            "hashes_accepted": self.hashes_accepted,
            "hashes_by_type": types,
            "hashes_type_erased": max(0, self.hashes_accepted - sum(types.values())),
            "entries_withdrawn": self.entries_withdrawn,
            "cases_withdrawn": self.cases_withdrawn,
            "held": self.held,
            "released": self.released,
        }


@dataclass
class Report:
    """What ``ncii-hub stats`` prints (``to_json`` is the ``--json`` document)."""

    since: dt.date | None
    until: dt.date | None
    by: str
    periods: list[Period]
    log_size: int
    partners: list[dict[str, Any]]
    witnesses: list[dict[str, Any]]

    def totals(self) -> Period:
        total = Period(self.since or dt.date(1970, 1, 1))
        for period in self.periods:
            total.add(period)
        return total

    def to_json(self) -> dict[str, Any]:
        totals = self.totals().to_json(self.by)
        totals.pop(self.by)
        return {
            "v": 1,
            "since": None if self.since is None else self.since.isoformat(),
            "until": None if self.until is None else self.until.isoformat(),
            "by": self.by,
            "periods": [p.to_json(self.by) for p in self.periods],
            "totals": totals,
            "log_size": self.log_size,
            "partners": self.partners,
            "witnesses": self.witnesses,
        }


def _in_range(column: Any, since: dt.date | None, until: dt.date | None) -> list[Any]:
    """``until`` is inclusive (the whole UTC day)."""
    out = []
    if since is not None:
        out.append(column >= _start(since))
    if until is not None:
        out.append(column < _start(until + dt.timedelta(days=1)))
    return out


def _types(vault: KeyVault | None, rows: Sequence[tuple[str, str, bytes]]) -> Iterator[str]:
    """The algorithm of each live entry whose key is still in the key store."""
    if vault is None:
        return
    for i in range(0, len(rows), _KEY_CHUNK):
        chunk = rows[i : i + _KEY_CHUNK]
        keys = vault.entry_keys([entry_id for entry_id, _case, _blob in chunk])
        for entry_id, case_id, blob in chunk:
            key = keys.get(entry_id)
            if key is None:
                continue
            try:
                _salt, body = open_entry(key, case_id, entry_id, blob)
                algorithm = json.loads(body)["hash"]["algorithm"]
            except (CryptoError, ValueError, KeyError, TypeError):
                continue
            if isinstance(algorithm, str):
                yield algorithm if algorithm in ALGORITHMS else "other"


def count_held_and_released(
    conn: Connection, since: dt.date | None, until: dt.date | None, by: str
) -> dict[dt.date, tuple[int, int]]:
    """(hashes held, hashes released) per period start, from the review tables (hub.review):
    held by the day they were held, released by the day an operator released them."""
    out: dict[dt.date, tuple[int, int]] = {}
    if not inspect(conn).has_table(HELD.name):
        return out  # a database written before review existed, not yet served since
    for at, count in conn.execute(
        select(HELD.c.held_at, HELD.c.entry_count).where(*_in_range(HELD.c.held_at, since, until))
    ):
        start = _bucket(_day(int(at)), by)
        held, released = out.get(start, (0, 0))
        out[start] = (held + int(count), released)
    for at, count in conn.execute(
        select(HELD.c.decided_at, HELD.c.entry_count).where(
            HELD.c.state == "released", *_in_range(HELD.c.decided_at, since, until)
        )
    ):
        start = _bucket(_day(int(at)), by)
        held, released = out.get(start, (0, 0))
        out[start] = (held, released + int(count))
    return out


def _collect(
    conn: Connection,
    vault: KeyVault | None,
    since: dt.date | None,
    until: dt.date | None,
    by: str,
    progress: Callable[[int], object] | None,
) -> tuple[list[Period], int, list[dict[str, Any]], list[dict[str, Any]]]:
    periods: dict[dt.date, Period] = {}
    read = 0

    def period(timestamp: int) -> Period:
        start = _bucket(_day(timestamp), by)
        if start not in periods:
            periods[start] = Period(start)
        return periods[start]

    for (created,) in conn.execute(
        select(CASES.c.created_at).where(*_in_range(CASES.c.created_at, since, until))
    ):
        period(int(created)).cases_opened += 1

    # Streamed in chunks (a server-side cursor on PostgreSQL): a large hub's ciphertexts are
    # never all in memory at once.
    additions = conn.execute(
        select(ENTRIES.c.entry_id, ENTRIES.c.case_id, ENTRIES.c.ciphertext, ENTRIES.c.created_at)
        .where(
            ENTRIES.c.kind == int(LeafKind.ADDITION),
            *_in_range(ENTRIES.c.created_at, since, until),
        )
        .execution_options(yield_per=_KEY_CHUNK)
    )
    for chunk in additions.partitions():
        live: dict[dt.date, list[tuple[str, str, bytes]]] = {}
        for entry_id, case_id, blob, created in chunk:
            p = period(int(created))
            p.hashes_accepted += 1
            if blob is not None:
                live.setdefault(p.start, []).append((str(entry_id), str(case_id), bytes(blob)))
        for start, rows in live.items():
            periods[start].hashes_by_type.update(_types(vault, rows))
        read += len(chunk)
        if progress is not None:
            progress(read)

    for (created,) in conn.execute(
        select(ENTRIES.c.created_at).where(
            ENTRIES.c.kind == int(LeafKind.TOMBSTONE),
            *_in_range(ENTRIES.c.created_at, since, until),
        )
    ):
        period(int(created)).entries_withdrawn += 1

    # A whole-case withdrawal is dated by its tombstones (or, for an empty case, its opening).
    last_tombstone = (
        select(ENTRIES.c.case_id, func.max(ENTRIES.c.created_at).label("at"))
        .where(ENTRIES.c.kind == int(LeafKind.TOMBSTONE))
        .group_by(ENTRIES.c.case_id)
        .subquery()
    )
    when = func.coalesce(last_tombstone.c.at, CASES.c.created_at)
    for (at,) in conn.execute(
        select(when)
        .select_from(CASES.outerjoin(last_tombstone, last_tombstone.c.case_id == CASES.c.case_id))
        .where(CASES.c.withdrawn.is_(True), *_in_range(when, since, until))
    ):
        period(int(at)).cases_withdrawn += 1

    for start, (held, released) in count_held_and_released(conn, since, until, by).items():
        p = periods.setdefault(start, Period(start))
        p.held += held
        p.released += released

    state = conn.execute(select(LOG_STATE.c.published_size)).first()
    log_size = 0 if state is None else int(state[0])
    partners = [
        {
            "name": str(name),
            "state": "revoked" if revoked else "active",
            "acked": int(acked),
            "behind": max(0, log_size - int(acked)),
        }
        for name, revoked, acked in conn.execute(
            select(PARTNERS.c.name, PARTNERS.c.revoked, PARTNERS.c.acked).order_by(PARTNERS.c.name)
        )
    ]
    witnesses = [
        {
            "name": str(key).split("+", 1)[0],
            "verifier_key": str(key),
            "cosigned_size": None if size is None else int(size),
            "cosigned_at": None
            if at is None
            else dt.datetime.fromtimestamp(int(at), dt.UTC).isoformat().replace("+00:00", "Z"),
        }
        for key, size, at in conn.execute(
            select(
                WITNESS_STATUS.c.witness_key,
                WITNESS_STATUS.c.cosigned_size,
                WITNESS_STATUS.c.cosigned_at,
            ).order_by(WITNESS_STATUS.c.witness_key)
        )
    ]
    return [periods[k] for k in sorted(periods)], log_size, partners, witnesses


def _open_engine(data_dir: Path, database_url: str | None) -> Engine:
    """The hub's database, refusing (never creating) anything that is not there."""
    if not (data_dir / "hub.json").is_file():
        raise StatsError(
            f"{data_dir} is not a hub data folder (no hub.json); pass --data with the folder "
            "the hub was started with"
        )
    if database_url is None:
        path = data_dir / "hub.sqlite3"
        if not path.is_file():
            raise StatsError(f"{path} does not exist; pass --database-url if the hub uses another")
        database_url = f"sqlite:///{path}"
    elif database_url.startswith("sqlite"):
        # make_engine creates a missing SQLite file (for the hub); a report must not.
        named = make_url(database_url).database
        if named and named != ":memory:" and not named.startswith("file:"):
            if not Path(named).is_file():
                raise StatsError(f"{named} does not exist; check --database-url")
    engine = make_read_only_engine(database_url)
    try:
        names = set(inspect(engine).get_table_names())
    except SQLAlchemyError as exc:
        engine.dispose()
        raise StatsError(
            "the database cannot be read; check --database-url and that its server runs"
        ) from exc
    if not {"cases", "entries", "log_state", "partners"} <= names:
        engine.dispose()
        raise StatsError("the database holds no hub tables; check --database-url and --data")
    return engine


def build_report(
    data_dir: Path,
    database_url: str | None,
    *,
    since: dt.date | None = None,
    until: dt.date | None = None,
    by: str = "day",
    progress: Callable[[int], object] | None = None,
) -> Report:
    """Read the counts for [since, until] (whole UTC days, both inclusive; None: no bound);
    ``progress`` is told how many accepted hashes were read so far, after each chunk."""
    if by not in BUCKETS:
        raise ValueError(f"--by is one of {', '.join(BUCKETS)}")
    if since is not None and until is not None and until < since:
        raise ValueError("--until is before --since")
    engine = _open_engine(data_dir, database_url)
    vault: KeyVault | None = None
    try:
        if (data_dir / VAULT_NAME).is_file():
            try:
                vault = KeyVault(data_dir / VAULT_NAME, read_only=True)
            except VaultError as exc:
                raise StatsError(str(exc)) from None
        with read_connection(engine) as conn:
            periods, log_size, partners, witnesses = _collect(
                conn, vault, since, until, by, progress
            )
    except SQLAlchemyError as exc:
        raise StatsError(
            "the database cannot be read; check --database-url and that its server runs"
        ) from exc
    finally:
        if vault is not None:
            vault.close()
        engine.dispose()
    return Report(since, until, by, periods, log_size, partners, witnesses)


def _table(rows: Iterable[Sequence[str]]) -> list[str]:
    rows = list(rows)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(
            c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))
        ).rstrip()
        for r in rows
    ]


def format_text(report: Report) -> str:
    """The report for people: one line per period, totals, partners, witnesses."""
    span = (
        f"{report.since.isoformat() if report.since else 'the start'} to "
        f"{report.until.isoformat() if report.until else 'now'} (UTC), by {report.by}"
    )
    lines = [f"hub statistics, {span}", ""]
    head = (
        report.by,
        "cases",
        "hashes",
        *ALGORITHMS,
        "erased",
        "withdrawn",
        "cases_wd",
        "held",
        "released",
    )

    def cells(label: str, p: Period) -> list[str]:
        j = p.to_json(report.by)
        types = [str(j["hashes_by_type"][a]) for a in ALGORITHMS]
        return [
            label,
            str(p.cases_opened),
            str(p.hashes_accepted),
            *types,
            str(j["hashes_type_erased"]),
            str(p.entries_withdrawn),
            str(p.cases_withdrawn),
            str(p.held),
            str(p.released),
        ]

    rows = [list(head)] + [cells(p.start.isoformat(), p) for p in report.periods]
    rows.append(cells("total", report.totals()))
    lines += _table(rows)
    lines += [
        "",
        "hashes: accepted in the period; by type while live (a withdrawn entry's type is "
        "erased with its key: 'erased'); withdrawn: entries; cases_wd: whole cases",
        "",
        f"log size {report.log_size}",
    ]
    if report.partners:
        lines += _table(
            [["partner", "state", "acked", "behind"]]
            + [[p["name"], p["state"], str(p["acked"]), str(p["behind"])] for p in report.partners]
        )
    else:
        lines.append("no partners registered")
    if report.witnesses:
        lines += _table(
            [["witness", "cosigned size", "cosigned at"]]
            + [
                [
                    w["name"],
                    "-" if w["cosigned_size"] is None else str(w["cosigned_size"]),
                    w["cosigned_at"] or "-",
                ]
                for w in report.witnesses
            ]
        )
    else:
        lines.append("no witness has answered this hub")
    return "\n".join(lines) + "\n"
