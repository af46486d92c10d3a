"""End to end over HTTP: submit, integrate, prove, verify every tile, status, withdraw."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from hubkit import (
    Case,
    HubProcess,
    mixed_hashes,
    post,
    random_pdq,
    verifier_of,
    verify_log,
    wait_for_size,
)

from crypto.checkpoint import open_checkpoint
from crypto.commitment import LeafData, LeafKind
from crypto.merkle import leaf_hash, verify_consistency, verify_inclusion


def test_submit_integrate_prove_withdraw(hub: HubProcess, database_url: str) -> None:
    case = Case()
    hashes = mixed_hashes(8)
    with hub.client() as client:
        key, origin = verifier_of(client)
        first = verify_log(client, key, origin)
        assert first.checkpoint.size == 0

        r = post(client, "/v1/submissions", case.submission(hashes))
        assert r.status_code == 202, r.text
        receipt = r.json()
        assert receipt["case_id"] == case.case_id
        assert len(receipt["entries"]) == 8
        wait_for_size(client, 8)

        log = verify_log(client, key, origin)
        assert log.checkpoint.size == 8
        assert all(LeafData.decode(x).kind == LeafKind.ADDITION for x in log.leaves)
        verify_consistency(0, 8, [], first.checkpoint.root_hash, log.checkpoint.root_hash)

        for entry in receipt["entries"]:
            proof = client.get("/v1/proof/inclusion", params={"leaf_hash": entry["leaf_hash"]})
            assert proof.status_code == 200, proof.text
            body = proof.json()
            verify_inclusion(
                bytes.fromhex(body["leaf_hash"]),
                body["log_index"],
                body["tree_size"],
                [bytes.fromhex(p) for p in body["proof"]],
                log.checkpoint.root_hash,
            )
            assert body["leaf_hash"] == entry["leaf_hash"]
            by_index = client.get(
                "/v1/proof/inclusion", params={"index": body["log_index"], "size": 8}
            ).json()
            assert by_index == body

        status = post(client, "/v1/status", case.status_query()).json()
        assert [e["entry_id"] for e in status["entries"]] == [
            e["entry_id"] for e in receipt["entries"]
        ]
        assert all(e["state"] == "integrated" for e in status["entries"])
        assert [e["hash"] for e in status["entries"]] == hashes

        # Withdraw two entries, then the whole case.
        ids = [e["entry_id"] for e in receipt["entries"]]
        r = post(client, "/v1/withdrawals", case.withdrawal(ids[:2]))
        assert r.status_code == 202, r.text
        assert [w["entry_id"] for w in r.json()["withdrawn"]] == ids[:2]
        r = post(client, "/v1/withdrawals", case.withdrawal())
        assert r.status_code == 202, r.text
        assert r.json()["case_withdrawn"] is True
        assert len(r.json()["withdrawn"]) == 6
        wait_for_size(client, 16)
        final = verify_log(client, key, origin)
        assert [LeafData.decode(x).kind for x in final.leaves[8:]] == [LeafKind.TOMBSTONE] * 8
        proof = client.get("/v1/proof/consistency", params={"first": 8, "second": 16}).json()
        verify_consistency(
            8,
            16,
            [bytes.fromhex(p) for p in proof["proof"]],
            log.checkpoint.root_hash,
            final.checkpoint.root_hash,
        )
        status = post(client, "/v1/status", case.status_query()).json()
        assert status["withdrawn"] is True
        additions = [e for e in status["entries"] if e["kind"] == "addition"]
        assert all(e["withdrawn"] and "hash" not in e for e in additions)
        tombstones = [e for e in status["entries"] if e["kind"] == "tombstone"]
        assert sorted(t["withdraws"] for t in tombstones) == sorted(ids)
        assert all(t["state"] == "integrated" for t in tombstones)
        leaf_hashes = {leaf_hash(x).hex() for x in final.leaves}
        assert {t["leaf_hash"] for t in tombstones} <= leaf_hashes

        again = post(client, "/v1/submissions", case.submission([random_pdq()]))
        assert again.status_code == 410
        assert again.json()["error"]["code"] == "case_withdrawn"

    hub.terminate()
    # No hash value of the case remains anywhere in the database.
    needles = [h["hash"] for h in hashes if "hash" in h] + [
        f["hash"] for h in hashes if "frames" in h for f in h["frames"]
    ]
    dump = _database_dump(database_url, hub.data_dir)
    for needle in needles:
        assert needle.encode() not in dump
        assert bytes.fromhex(needle) not in dump
    # And the checkpoint file mirrors the published one.
    note = (hub.data_dir / "tiles" / "checkpoint").read_bytes()
    assert open_checkpoint(note, [key], origin=origin).checkpoint == final.checkpoint


def _database_dump(database_url: str, data_dir: Path) -> bytes:
    if database_url.startswith("sqlite"):
        path = Path(database_url.removeprefix("sqlite:///"))
        with sqlite3.connect(path) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return path.read_bytes()
    import psycopg

    url = database_url.replace("postgresql+psycopg://", "postgresql://", 1)
    out = bytearray()
    with psycopg.connect(url) as conn:
        for table in ("cases", "entries", "replays", "log_state"):
            for row in conn.execute(f"SELECT * FROM {table}").fetchall():
                for value in row:
                    out += value if isinstance(value, bytes) else str(value).encode()
                    out += b"\x00"
    return bytes(out)
