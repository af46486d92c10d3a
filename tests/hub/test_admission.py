"""Admission control, trusted submitters and held-for-review (issue 13 items 1-3), over real
HTTP against real hub processes, on SQLite and PostgreSQL.

The attack first: one address, a fresh case per request, 1,000 random hashes each, for 15
seconds. Before admission control more than 130,000 hashes reached the log (the limits counted
requests); now at most the hourly allowance of one address does, the rest is held for review
(202 "held") and, once the review allowance is used up too, refused with 429.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from hubkit import (
    ENVELOPE_TYPE,
    PROJECT_ROOT,
    Case,
    HubFactory,
    HubProcess,
    log_info,
    post,
    random_pdq,
    settled_size,
    verifier_of,
    verify_log,
    wait_for_size,
)
from nacl.signing import SigningKey
from test_erasure import (
    Loot,
    _query,
    assert_erased,
    copy_running,
)

from crypto.merkle import leaf_hash
from crypto.submitter import SUBMITTER_HEADER, endorse

ON = ("--set", "admission_control=true")


def _cli(hub: HubProcess, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ}
    env.pop("DATABASE_URL", None)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "hub.cli",
            *args,
            "--data",
            str(hub.data_dir),
            "--database-url",
            hub.database_url,
        ],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        env=env,
        timeout=60,
    )


def _submit(
    client: httpx.Client, case: Case, n: int, header: str | None = None, raw: bytes | None = None
) -> httpx.Response:
    raw = raw if raw is not None else case.submission([random_pdq() for _ in range(n)])
    headers = {"Content-Type": ENVELOPE_TYPE}
    if header is not None:
        headers[SUBMITTER_HEADER] = header
    return client.post("/v1/submissions", content=raw, headers=headers)


def _status(client: httpx.Client, case: Case) -> dict[str, Any]:
    r = post(client, "/v1/status", case.status_query())
    assert r.status_code == 200, r.text
    answer: dict[str, Any] = r.json()
    return answer


def _settle(client: httpx.Client, size: int) -> None:
    """Wait for ``size`` and for the hub to have nothing pending: nothing else arrives."""
    wait_for_size(client, size)
    settled_size(client)


def test_flood_from_one_address_gets_at_most_the_hourly_allowance(
    hub_factory: HubFactory,
) -> None:
    hub = hub_factory(*ON)
    codes: dict[str, int] = {}
    sent = 0
    deadline = time.monotonic() + 15.0
    with hub.client() as client:
        # Until the flood has met every limit it can meet (or 15 s have passed).
        while time.monotonic() < deadline and (sent < 25_000 or "review_queue_full" not in codes):
            r = _submit(client, Case(), 1000)
            sent += 1000
            key = str(r.status_code)
            if r.status_code == 202:
                key = r.json()["status"]
            elif r.status_code == 429:
                key = r.json()["error"]["code"]
            codes[key] = codes.get(key, 0) + 1
        size = settled_size(client)
    # The hourly allowance (anon_hashes_per_hour=1000, a burst of 1000), plus what refills
    # during the test (1000/h for up to ~17 s: 5 hashes, not enough for a request).
    assert size <= 1000, (size, codes)
    assert codes.get("pending", 0) == 1, codes
    assert codes.get("held", 0) >= 1, codes
    # Once the address's review allowance is used up it is refused, not stored.
    assert codes.get("review_queue_full", 0) >= 1, codes
    assert sent >= 20_000, codes
    held = _query(hub.database_url, "SELECT count(*) FROM held_entries WHERE state = 'held'")
    assert int(held[0][0]) <= 10_000  # held_hashes_burst


def test_person_with_900_photos_in_a_few_requests_is_never_held(hub_factory: HubFactory) -> None:
    hub = hub_factory(*ON)
    case = Case()
    with hub.client() as client:
        for n in (300, 300, 200, 100):
            r = _submit(client, case, n)
            assert r.status_code == 202, r.text
            assert r.json()["status"] == "pending"
        _settle(client, 900)
        assert int(log_info(client)["size"]) == 900
        states = {e["state"] for e in _status(client, case)["entries"]}
        assert states == {"integrated"}


def _new_submitter_key(hub: HubProcess, name: str, *extra: str) -> SigningKey:
    key = SigningKey.generate()
    public = endorse(key, b"").to_header().split(":")[0]
    done = _cli(hub, "submitter", "add", name, f"--public-key={public}", *extra, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"v": 1, "submitter": name, "action": "added"}
    return key


def test_registered_helpline_sends_10000_hashes_without_being_held(
    hub_factory: HubFactory,
) -> None:
    hub = hub_factory(*ON)
    key = _new_submitter_key(hub, "helpline-a")
    with hub.client() as client:
        for _ in range(10):
            case = Case()
            raw = case.submission([random_pdq() for _ in range(1000)])
            r = _submit(client, case, 0, endorse(key, raw).to_header(), raw)
            assert r.status_code == 202, r.text
            assert r.json()["status"] == "pending"
        _settle(client, 10_000)
        assert int(log_info(client)["size"]) == 10_000
        # The office's address was not charged: an anonymous person there is not held.
        r = _submit(client, Case(), 900)
        assert r.json()["status"] == "pending"
    listed = _cli(hub, "submitter", "list", "--json")
    assert json.loads(listed.stdout)["submitters"][0]["state"] == "active"


def test_bad_unknown_and_revoked_submitter_signatures_are_refused_clearly(
    hub_factory: HubFactory,
) -> None:
    hub = hub_factory(*ON)
    key = _new_submitter_key(hub, "helpline-b")
    stranger = SigningKey.generate()
    case = Case()
    raw = case.submission([random_pdq()])
    with hub.client() as client:
        # Signed over other bytes: the signature does not verify over this envelope.
        other = endorse(key, raw + b"x").to_header()
        r = _submit(client, case, 0, other, raw)
        assert (r.status_code, r.json()["error"]["code"]) == (401, "invalid_submitter_signature")
        r = _submit(client, case, 0, "not-a-header", raw)
        assert r.status_code == 401
        r = _submit(client, case, 0, endorse(stranger, raw).to_header(), raw)
        assert (r.status_code, r.json()["error"]["code"]) == (403, "unknown_submitter")
        assert _cli(hub, "submitter", "revoke", "helpline-b").returncode == 0
        r = _submit(client, case, 0, endorse(key, raw).to_header(), raw)
        assert (r.status_code, r.json()["error"]["code"]) == (403, "submitter_revoked")
        # Nothing of the refused requests was stored; the same envelope without the header
        # is the anonymous path and is accepted.
        r = _submit(client, case, 0, None, raw)
        assert (r.status_code, r.json()["status"]) == (202, "pending")
    assert _cli(hub, "submitter", "revoke", "nobody").returncode == 2
    again = _cli(hub, "submitter", "add", "helpline-c", "--public-key=short")
    assert again.returncode == 2


SMALL = (
    *ON,
    "--set",
    "anon_hashes_burst=10",
    "--set",
    "anon_cases_burst=2",
    "--set",
    "feed_max_age=0.2",
)


def _partner_entries(hub: HubProcess, directory: Path, size: int) -> int:
    """Sync a real partner once the feed is sealed through ``size``; its stored entries."""
    sys.path.insert(0, str(PROJECT_ROOT / "tests" / "system"))
    from syskit import run_module, sealed_through, store_rows, wait_until

    wait_until(lambda: sealed_through(hub) >= size, what="feed sealed")
    with hub.client() as client:
        key, _ = verifier_of(client)
    done = run_module(
        "partner_sdk.cli", "sync", "--dir", str(directory), "--log-key", key.encode(),
        "--json", "--hub", hub.url,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return len(store_rows(directory)["entries"])


def test_held_entries_never_reach_the_log_or_feed_until_released(
    hub_factory: HubFactory, tmp_path: Path
) -> None:
    sys.path.insert(0, str(PROJECT_ROOT / "tests" / "system"))
    from syskit import new_partner

    hub = hub_factory(*SMALL)
    partner = new_partner(hub, tmp_path / "partner", "partner-a")
    case = Case()
    with hub.client() as client:
        r = _submit(client, case, 10)
        assert r.json()["status"] == "pending"
        r = _submit(client, case, 20)
        assert (r.status_code, r.json()["status"]) == (202, "held")
        held_leaves = {bytes.fromhex(e["leaf_hash"]) for e in r.json()["entries"]}
        # A retry of the same envelope gets the same answer (stored once).
        _settle(client, 10)
        assert int(log_info(client)["size"]) == 10
        key, origin = verifier_of(client)
        logged = {leaf_hash(d) for d in verify_log(client, key, origin).leaves}
        assert not held_leaves & logged
        status = _status(client, case)
        assert sorted(e["state"] for e in status["entries"]).count("held") == 20
        assert all("hash" in e for e in status["entries"])  # the person sees their own
    assert _partner_entries(hub, partner, 10) == 10

    listed = _cli(hub, "review", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    [item] = json.loads(listed.stdout)["held"]
    assert item["entries"] == 20 and item["reason"] == "address_hashes"
    assert item["source"].startswith("address:")
    # What a reviewer sees names no case id, no hash, no address.
    for secret in (case.case_id, "127.0.0.1", *[e["hash"]["hash"] for e in status["entries"]]):
        assert secret not in listed.stdout
    text_list = _cli(hub, "review", "list")
    assert case.case_id not in text_list.stdout and "127.0.0.1" not in text_list.stdout

    released = _cli(hub, "review", "release", item["review_id"], "--json")
    assert released.returncode == 0, released.stderr
    assert json.loads(released.stdout)["entries"] == 20
    assert _cli(hub, "review", "release", item["review_id"]).returncode == 2  # already done
    with hub.client() as client:
        wait_for_size(client, 30)
        key, origin = verifier_of(client)
        logged = {leaf_hash(d) for d in verify_log(client, key, origin).leaves}
        assert held_leaves <= logged
        assert {e["state"] for e in _status(client, case)["entries"]} == {"integrated"}
    assert _partner_entries(hub, partner, 30) == 30


def test_rejected_held_submission_is_erased_like_a_withdrawal(
    hub_factory: HubFactory, tmp_path: Path
) -> None:
    hub = hub_factory(*SMALL)
    case = Case()
    kept = [random_pdq() for _ in range(5)]
    held = [random_pdq() for _ in range(20)]
    with hub.client() as client:
        assert post(client, "/v1/submissions", case.submission(kept)).json()["status"] == "pending"
        r = post(client, "/v1/submissions", case.submission(held))
        assert r.json()["status"] == "held"
        wait_for_size(client, 5)

    def as_entries(loot: Loot) -> Loot:
        # The attacker tries held ciphertexts exactly like logged ones.
        loot.rows["entries"] = [*loot.rows.get("entries", []), *loot.rows.get("held_entries", [])]
        return loot

    backup = as_entries(copy_running(hub, tmp_path / "backup", database_only=True))
    before = as_entries(copy_running(hub, tmp_path / "before"))
    assert_erased([before], [], [h["hash"] for h in kept + held])  # the attack works

    [item] = json.loads(_cli(hub, "review", "list", "--json").stdout)["held"]
    done = _cli(hub, "review", "reject", item["review_id"], "--json")
    assert done.returncode == 0, done.stderr
    after = as_entries(copy_running(hub, tmp_path / "after"))
    assert_erased([after, backup], [h["hash"] for h in held], [h["hash"] for h in kept])

    with hub.client() as client:
        entries = _status(client, case)["entries"]
        rejected = [e for e in entries if e["state"] == "rejected"]
        assert len(rejected) == 20 and not any("hash" in e for e in rejected)
        assert settled_size(client) == 5
    assert _cli(hub, "review", "reject", item["review_id"]).returncode == 2

    # A restart with the pre-reject key store restored erases the keys again.
    hub.kill()
    for name in ("keys.sqlite3", "keys.sqlite3-wal", "keys.sqlite3-shm"):
        (hub.data_dir / name).unlink(missing_ok=True)
        if name in before.files and not name.endswith("-shm"):
            (hub.data_dir / name).write_bytes(before.files[name])
            (hub.data_dir / name).chmod(0o600)
    hub.start()
    restored = as_entries(copy_running(hub, tmp_path / "restored"))
    assert_erased([restored, backup], [h["hash"] for h in held], [h["hash"] for h in kept])


def test_person_withdraws_a_held_entry(hub_factory: HubFactory) -> None:
    hub = hub_factory(*SMALL)
    case = Case()
    with hub.client() as client:
        r = _submit(client, case, 12)
        assert r.json()["status"] == "held"
        ids = [e["entry_id"] for e in r.json()["entries"]]
        w = post(client, "/v1/withdrawals", case.withdrawal([ids[0]]))
        assert w.status_code == 202, w.text
        assert w.json()["held_withdrawn"] == [ids[0]]
        entries = {e["entry_id"]: e for e in _status(client, case)["entries"]}
        assert entries[ids[0]]["withdrawn"] and "hash" not in entries[ids[0]]
        w = post(client, "/v1/withdrawals", case.withdrawal(None))
        assert w.status_code == 202 and len(w.json()["held_withdrawn"]) == 11
    [item] = json.loads(_cli(hub, "review", "list", "--json").stdout)["held"]
    assert item["entries"] == 0
    assert (
        json.loads(_cli(hub, "review", "release", item["review_id"], "--json").stdout)["entries"]
        == 0
    )


def test_new_cases_per_address_are_limited(hub_factory: HubFactory) -> None:
    hub = hub_factory(*ON)
    with hub.client() as client:
        answers = [_submit(client, Case(), 1).json()["status"] for _ in range(7)]
    assert answers == ["pending"] * 5 + ["held"] * 2
    items = json.loads(_cli(hub, "review", "list", "--json").stdout)["held"]
    assert {i["reason"] for i in items} == {"address_cases"}
    assert all(i["new_case"] for i in items)


def test_limits_hold_across_two_hub_processes_on_one_database(
    hub_factory: HubFactory,
) -> None:
    first = hub_factory(*ON)
    second = hub_factory(*ON, "--no-sequencer")
    with first.client() as a, second.client() as b:
        assert _submit(a, Case(), 600).json()["status"] == "pending"
        assert _submit(b, Case(), 600).json()["status"] == "held"
        assert _submit(b, Case(), 400).json()["status"] == "pending"
        assert _submit(a, Case(), 1).json()["status"] == "held"
        _settle(a, 1000)
        assert int(log_info(a)["size"]) == 1000


def test_registered_helpline_creates_cases_without_the_case_puzzle(
    hub_factory: HubFactory,
) -> None:
    """The puzzle is the anonymous path's cost of a new case; a helpline's endorsed
    submission (issue 13 item 2) pays with its registration instead, while an anonymous new
    case on the same hub is still asked for a solution."""
    hub = hub_factory(*ON, "--set", "puzzle=true")
    key = _new_submitter_key(hub, "helpline-p")
    with hub.client() as client:
        case = Case()
        raw = case.submission([random_pdq() for _ in range(3)])
        r = _submit(client, case, 0, endorse(key, raw).to_header(), raw)
        assert (r.status_code, r.json()["status"]) == (202, "pending")
        r = _submit(client, Case(), 3)
        assert (r.status_code, r.json()["error"]["code"]) == (428, "puzzle_required")


def test_a_submitter_key_beginning_with_a_dash_registers(hub_factory: HubFactory) -> None:
    """One key in 64 begins with '-' in base64url; written as --public-key=KEY (as the docs,
    the help and ncii-client's message show) it registers like any other."""
    hub = hub_factory(*ON)
    while True:
        key = SigningKey.generate()
        public = endorse(key, b"").to_header().split(":")[0]
        if public.startswith("-"):
            break
    done = _cli(hub, "submitter", "add", "helpline-d", f"--public-key={public}", "--json")
    assert done.returncode == 0, done.stderr
