"""The README's walkthrough with real processes, on SQLite and on PostgreSQL.

``.ci/demo`` starts a hub under uvicorn (``ncii-hub serve``), a client, two partners, a witness,
a monitor and a partner match service on loopback, and runs every step of the README. The demo
checks each step itself; this test does not trust that: it reads what each command printed
(the demo's ``--report``) and re-checks the outcomes, then inspects the files the processes
left behind (tiles, partner stores, client receipts, the hub database) offline, with the
project's libraries and CLIs, after every process has stopped.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from crypto.cosignature import open_cosigned_checkpoint
from crypto.keys import parse_verifier_key
from hub.db.engine import make_engine

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SUBMITTED = 9  # 3 pictures x (pdq, md5, sha256)

pytestmark = pytest.mark.slow


def run_demo(work: Path, database_url: str) -> dict[str, Any]:
    report = work.parent / "report.json"
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / ".ci" / "demo"),
            "--workdir",
            str(work),
            "--report",
            str(report),
            "--database-url",
            database_url,
            "--bin",
            str(BIN),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=ROOT,
    )
    assert done.returncode == 0, f"demo failed:\n{done.stdout}\n{done.stderr}"
    result: dict[str, Any] = json.loads(report.read_text())
    assert result["ok"] is True
    return result


def cli(*argv: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [str(BIN / argv[0]), *argv[1:]],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, **(env or {})},
    )
    assert done.returncode == 0, f"{argv}: {done.stdout}\n{done.stderr}"
    return done.stdout


def partner_db(work: Path, name: str) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{work / name / 'store.sqlite3'}?mode=ro", uri=True)


@pytest.fixture
def walk(tmp_path: Path, database_url: str) -> tuple[Path, dict[str, Any], str]:
    work = tmp_path / "walk"
    return work, run_demo(work, database_url), database_url


def test_walkthrough(walk: tuple[Path, dict[str, Any], str]) -> None:
    work, report, database_url = walk
    seen = report["observed"]
    assert [s["ok"] for s in report["steps"]] == [True] * len(report["steps"])
    log_key = parse_verifier_key(seen["log_key"])
    witness_key = parse_verifier_key(seen["witness_key"])
    origin = seen["log_key"].split("+", 1)[0]
    final_size = 2 * SUBMITTED  # each withdrawn entry adds one tombstone

    # submission and receipts
    assert seen["submit"]["sent"] == seen["submit"]["included"] == SUBMITTED
    assert [f["state"] for f in seen["submit"]["files"]] == ["ready"] * 3
    first, last = seen["receipts"]
    assert len(first) == SUBMITTED and {c["state"] for c in first} == {"verified"}
    assert len(last) == final_size and {c["state"] for c in last} == {"verified"}
    assert sorted(c["log_index"] for c in last) == list(range(final_size))

    # partners converge on one verified, cosigned checkpoint holding every hash
    a, b = seen["partner_a_before"], seen["partner_b_before"]
    assert a["checkpoint_root"] == b["checkpoint_root"] and a["cursor"] == b["cursor"] == SUBMITTED
    assert a["store"] == b["store"]
    assert (a["store"]["pdq"], a["store"]["md5"], a["store"]["sha256"]) == (3, 3, 3)

    # match: an edited copy of a submitted picture is a candidate, an unrelated picture is not
    edited, unrelated = seen["match_before"]
    assert [m["algorithm"] for m in edited["matches"]] == ["pdq"]
    assert 0 < edited["matches"][0]["distance"] <= 31
    assert edited["matches"][0]["log_index"] < SUBMITTED
    assert unrelated["matches"] == []
    service_edited, service_unrelated = seen["service_before"]
    assert service_edited["matches"] == edited["matches"] and service_unrelated["matches"] == []

    # the witness cosigned the hub's checkpoint: verify the lines ourselves
    cosigned = open_cosigned_checkpoint(
        seen["cosigned_checkpoint"].encode(), log_key, [witness_key], origin=origin, quorum=1
    )
    assert cosigned.checkpoint.size == SUBMITTED
    [status] = seen["witnesses"]["witnesses"]
    assert status["cosigned_size"] == SUBMITTED and status["failures"] == 0

    # withdrawal reaches both partners' stores and their matchers
    assert seen["withdraw"]["case_withdrawn"] is True
    assert len(seen["withdraw"]["withdrawn"]) == SUBMITTED
    for name in ("partner_a_after", "partner_b_after"):
        st = seen[name]
        assert st["cursor"] == st["checkpoint_size"] == final_size
        assert st["store"]["withdrawn"] == st["store"]["tombstones"] == SUBMITTED
        assert st["store"]["pdq"] == st["store"]["md5"] == st["store"]["sha256"] == 0
    assert seen["partner_a_after"]["checkpoint_root"] == seen["partner_b_after"]["checkpoint_root"]
    assert seen["match_after"][0]["matches"] == [] and seen["service_after"]["matches"] == []

    # monitor and full audit
    assert not any(line.startswith("ALERT") for line in seen["monitor"])
    assert any(f"-> {final_size}, consistent" in line for line in seen["monitor"])
    assert seen["full_audit"]["status"] == "ok" and seen["full_audit"]["size"] == final_size
    assert seen["full_audit"]["root"] == seen["full_audit"]["recomputed_root"]

    # -- offline, every process stopped: the files they left ----------------------------------
    audit = json.loads(
        cli(
            "ncii-audit",
            "full",
            "--tiles-dir",
            str(work / "hub" / "tiles"),
            "--log-key",
            seen["log_key"],
            "--state",
            str(work / "audit2"),
            "--json",
        )
    )
    assert audit["status"] == "ok" and audit["size"] == final_size
    roots = set()
    for partner in ("partner-a", "partner-b"):
        with contextlib.closing(partner_db(work, partner)) as db:
            live = db.execute("SELECT count(*) FROM entries WHERE hash IS NOT NULL").fetchone()
            frames = db.execute("SELECT count(*) FROM vpdq_frames").fetchone()
            rows = db.execute("SELECT count(*), max(log_index) FROM entries").fetchone()
            (note,) = db.execute("SELECT checkpoint FROM sync_state").fetchone()
        assert live == (0,) and frames == (0,), f"{partner} still holds hash values"
        assert rows == (final_size, final_size - 1)
        # the stored checkpoint is the cosigned note as received (evidence for compare)
        stored = open_cosigned_checkpoint(
            bytes(note), log_key, [witness_key], origin=origin, quorum=1
        )
        assert stored.checkpoint.size == final_size
        roots.add(stored.checkpoint.root_hash)
    assert len(roots) == 1
    receipts = cli(
        "ncii-client",
        "receipts",
        "verify",
        "--json",
        env={"NCII_CLIENT_HOME": str(work / "client")},
    )
    states = [json.loads(line)["state"] for line in receipts.splitlines() if line.strip()]
    assert states == ["verified"] * final_size

    # erasure at the hub: no addition keeps a ciphertext (their keys: tests/hub/test_erasure.py)
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            kept = conn.execute(
                text("SELECT count(*) FROM entries WHERE kind = 1 AND ciphertext IS NOT NULL")
            ).scalar_one()
            cases = conn.execute(text("SELECT withdrawn FROM cases")).all()
    finally:
        engine.dispose()
    assert kept == 0
    assert [bool(w) for (w,) in cases] == [True]
