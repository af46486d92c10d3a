"""A case made in the page (web/case.js, web/submission.js, web/envelope.js, run in Node) and
sent straight to the hub's API, never through the CLI's data folder, then recovered with
``ncii-client case recover``: status, receipts fetch and verify, and a further submit work on
entries the CLI never saw, withdrawn ones and their tombstones included (issue 15, "a case made
in the page is recovered with ncii-client case recover and its status and receipts work there").
"""

from __future__ import annotations

import json
import secrets
import shutil
import sys
import time
from pathlib import Path

import httpx
from clientkit import PROJECT_ROOT, run_cli
from hubkit import ENVELOPE_TYPE, HubProcess, wait_for_size

sys.path.insert(0, str(PROJECT_ROOT / "tests" / "web"))

from casekit import driver, noise_pictures, page_records


def test_a_page_case_is_recovered_by_the_cli_with_status_and_receipts(tmp_path: Path) -> None:
    hub = HubProcess(
        tmp_path / "data", f"sqlite:///{tmp_path / 'h.sqlite3'}", ("--set", "batch_interval=0.05")
    ).start()
    try:
        pictures = noise_pictures(tmp_path, 3)
        secret = secrets.token_hex(16)
        made = driver({"op": "derive", "secrets": [secret]})["cases"][0]
        records, failed = page_records(pictures[:2])
        assert not failed and len(records) == 2
        now = int(time.time())
        sealed = driver(
            {
                "op": "seal-submission",
                "secret": secret,
                "now": now,
                "nonces": [secrets.token_hex(16) for _ in range(4)],
                "files": records,
            }
        )
        with httpx.Client(base_url=hub.url, timeout=30) as http:
            entries: list[str] = []
            for raw in sealed["envelopes"]:
                answer = http.post(
                    "/v1/submissions",
                    content=bytes.fromhex(raw),
                    headers={"Content-Type": ENVELOPE_TYPE},
                )
                assert answer.status_code == 202, answer.text
                assert answer.json()["case_id"] == made["case_id"]
                entries += [e["entry_id"] for e in answer.json()["entries"]]
            assert len(entries) == sealed["count"] == 6
            # The page withdraws one file's PDQ: a tombstone the CLI never saw either.
            withdrawal = driver(
                {
                    "op": "seal-other",
                    "secret": secret,
                    "now": now,
                    "nonce": secrets.token_hex(16),
                    "kind": "withdrawal",
                    "entries": [entries[0]],
                }
            )
            answer = http.post(
                "/v1/withdrawals",
                content=bytes.fromhex(withdrawal["envelope"]),
                headers={"Content-Type": ENVELOPE_TYPE},
            )
            assert answer.status_code == 202, answer.text
            wait_for_size(http, 7)

        home = tmp_path / "home"
        recovered = run_cli(
            "case", "recover", "-", "--hub", hub.url, "--json", home=home, stdin=made["code"]
        )
        assert recovered.code == 0, recovered.err
        assert json.loads(recovered.out)["case_id"] == made["case_id"]
        receipts = home / "cases" / made["case_id"] / "receipts"
        assert not any(receipts.iterdir())  # the CLI knows none of the case's entries yet
        early = run_cli("receipts", "verify", home=home)
        assert early.code == 0 and "ncii-client receipts fetch" in early.out
        assert (
            "receipts fetch" in run_cli("case", "recover", "-", home=home, stdin=made["code"]).out
        )

        status = run_cli("status", "--json", home=home)
        assert status.code == 0, status.err
        seen = json.loads(status.out)
        assert seen["case_id"] == made["case_id"] and not seen["withdrawn"]
        by_id = {e["entry_id"]: e for e in seen["entries"]}
        assert set(entries) <= set(by_id) and len(by_id) == 7  # six additions, one tombstone
        assert by_id[entries[0]]["withdrawn"] and not by_id[entries[1]]["withdrawn"]

        fetched = run_cli("receipts", "fetch", home=home)
        assert fetched.code == 0, fetched.err
        assert "7 receipt(s) in the public log, 0 pending" in fetched.out
        verified = run_cli("receipts", "verify", home=home)
        assert verified.code == 0, verified.err
        assert "7 receipt(s) verified, 0 pending, 0 failed" in verified.out

        # The CLI goes on with the page's case: a folder holding a picture the page already
        # sent and a new one sends only the new one's fingerprints.
        folder = tmp_path / "more"
        folder.mkdir()
        shutil.copy(pictures[1], folder / "again.png")
        shutil.copy(pictures[2], folder / "new.png")
        sent = run_cli("submit", str(folder), "--hub", hub.url, "--yes", "--wait", home=home)
        assert sent.code == 0, sent.err + sent.out
        after = json.loads(run_cli("status", "--json", home=home).out)
        assert len(after["entries"]) == 10  # three more: the new picture's PDQ, MD5, SHA-256
        verified = run_cli("receipts", "verify", home=home)
        assert verified.code == 0 and "10 receipt(s) verified, 0 pending, 0 failed" in verified.out
    finally:
        hub.kill()
