"""``ncii-hub stats`` on SQLite and PostgreSQL: after cases are opened, hashes accepted and
withdrawn (entries and a whole case), a partner acknowledged part of the log and a witness
cosigned, the report counts exactly that, per day and per week, and within --since/--until.
It refuses a folder or database that is not a hub's, and creates nothing there."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path
from typing import Any

import pytest
from hubkit import Case, HubFactory, mixed_hashes, post, random_md5, random_pdq, wait_for_size
from sqlalchemy import insert

from hub.cli import main
from hub.db.engine import make_engine
from hub.db.models import HeldSubmissionRow, WitnessStatusRow, table_of
from hub.partners import PartnerRegistry, parse_partner_keys
from partner_sdk import init_partner

WITNESS_KEY = "w1.example.org+01234567+AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA"


def stats(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["stats", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_stats_count_what_happened(
    hub_factory: HubFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hub = hub_factory()
    a, b, c = Case(), Case(), Case()
    with hub.client() as client:
        first = post(client, "/v1/submissions", a.submission(mixed_hashes(8)))
        assert first.status_code == 202
        a_ids = [e["entry_id"] for e in first.json()["entries"]]  # pdq, md5, sha256, vpdq x2
        assert post(
            client, "/v1/submissions", b.submission([random_pdq(), random_md5()])
        ).is_success
        assert post(client, "/v1/submissions", c.submission([random_pdq()])).is_success
        wait_for_size(client, 11)
        assert post(client, "/v1/withdrawals", a.withdrawal([a_ids[0]])).is_success
        assert post(client, "/v1/withdrawals", c.withdrawal()).is_success  # the whole case
        wait_for_size(client, 13)

    engine = make_engine(hub.database_url)
    try:
        init_partner(tmp_path / "p", "statspartner")
        keys = parse_partner_keys((tmp_path / "p" / "partner-public.json").read_bytes())
        registry = PartnerRegistry(engine)
        registry.add("statspartner", keys, int(time.time()))
        registry.acknowledge("statspartner", 5)
        with engine.begin() as conn:
            conn.execute(
                insert(table_of(WitnessStatusRow)).values(
                    witness_key=WITNESS_KEY,
                    known_size=10,
                    cosigned_size=10,
                    cosigned_at=1_800_000_000,
                    failures=0,
                    updated_at=1_800_000_000,
                )
            )
    finally:
        engine.dispose()

    where = ("--data", str(hub.data_dir), "--database-url", hub.database_url)
    code, out, err = stats(capsys, *where, "--json")
    assert code == 0, err
    report: dict[str, Any] = json.loads(out)
    today = dt.datetime.now(dt.UTC).date()
    expected = {
        "cases_opened": 3,
        "hashes_accepted": 11,
        # A withdrawn entry's type is erased with its key: two pdq hashes (a's first, c's).
        "hashes_by_type": {"pdq": 1 + 1, "vpdq": 2, "md5": 2 + 1, "sha256": 2},
        "hashes_type_erased": 2,
        "entries_withdrawn": 2,
        "cases_withdrawn": 1,
        "held": 0,
        "released": 0,
    }
    assert report["totals"] == expected
    assert report["periods"] == [{"day": today.isoformat(), **expected}]
    assert report["log_size"] == 13
    assert report["partners"] == [
        {"name": "statspartner", "state": "active", "acked": 5, "behind": 8}
    ]
    assert report["witnesses"] == [
        {
            "name": "w1.example.org",
            "verifier_key": WITNESS_KEY,
            "cosigned_size": 10,
            "cosigned_at": "2027-01-15T08:00:00Z",
        }
    ]

    code, out, _ = stats(capsys, *where, "--json", "--by", "week")
    monday = today - dt.timedelta(days=today.weekday())
    assert json.loads(out)["periods"] == [{"week": monday.isoformat(), **expected}]

    tomorrow = (today + dt.timedelta(days=1)).isoformat()
    code, out, _ = stats(capsys, *where, "--json", "--since", tomorrow)
    assert code == 0 and json.loads(out)["periods"] == []
    assert json.loads(out)["totals"]["hashes_accepted"] == 0
    code, out, _ = stats(capsys, *where, "--json", "--until", today.isoformat())
    assert json.loads(out)["totals"] == expected

    code, text, _ = stats(capsys, *where)
    assert code == 0
    assert "statspartner" in text and "w1.example.org" in text and "total" in text
    for secret in (a.case_id, b.case_id, c.case_id, *a_ids):
        assert secret not in out + text


def test_stats_refuses_what_is_not_a_hub_and_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    code, out, err = stats(capsys, "--data", str(empty))
    assert code == 5 and "not a hub data folder" in err and out == ""
    assert list(empty.iterdir()) == []
    missing = tmp_path / "missing"
    code, _, err = stats(capsys, "--data", str(missing))
    assert code == 5 and not missing.exists()

    # A folder with hub.json but no database at the default place: refused, none created.
    half = tmp_path / "half"
    half.mkdir()
    (half / "hub.json").write_text('{"origin": "example.org/hub"}')
    code, _, err = stats(capsys, "--data", str(half))
    assert code == 5 and "hub.sqlite3" in err
    assert sorted(p.name for p in half.iterdir()) == ["hub.json"]

    code, _, err = stats(capsys, "--data", str(half), "--since", "last tuesday")
    assert code == 2 and "YYYY-MM-DD" in err


def test_stats_count_held_and_released_hashes(
    hub_factory: HubFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    """Held hashes are counted on the day they were held, released ones on the day of release
    (hub.review's table; a rejected submission counts as held, never as released)."""
    hub = hub_factory()
    day = 86_400
    base = 1_800_000_000 - 1_800_000_000 % day  # a UTC midnight
    rows = [  # (state, hashes, held_at, decided_at)
        ("held", 7, base + 10, None),
        ("released", 3, base + 20, base + day + 5),
        ("rejected", 4, base + day + 30, base + day + 40),
    ]
    engine = make_engine(hub.database_url)
    try:
        with engine.begin() as conn:
            for n, (state, count, held_at, decided_at) in enumerate(rows):
                conn.execute(
                    insert(table_of(HeldSubmissionRow)).values(
                        review_id=f"{n:032x}",
                        case_id=f"{n:016x}",
                        state=state,
                        reason="address_hashes",
                        new_case=False,
                        entry_count=count,
                        addr_seen_hashes=0,
                        addr_seen_cases=0,
                        addr_held_hashes=0,
                        case_entries_before=0,
                        held_at=held_at,
                        decided_at=decided_at,
                    )
                )
    finally:
        engine.dispose()
    first = dt.datetime.fromtimestamp(base, dt.UTC).date()
    where = ("--data", str(hub.data_dir), "--database-url", hub.database_url)
    code, out, err = stats(capsys, *where, "--since", first.isoformat(), "--json")
    assert code == 0, err
    report: dict[str, Any] = json.loads(out)
    assert (report["totals"]["held"], report["totals"]["released"]) == (14, 3)
    by_day = {p["day"]: (p["held"], p["released"]) for p in report["periods"]}
    second = (first + dt.timedelta(days=1)).isoformat()
    assert by_day[first.isoformat()] == (10, 0) and by_day[second] == (4, 3)
