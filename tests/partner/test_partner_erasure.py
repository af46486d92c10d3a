"""Erasure at the partner (issue 12 finding 1): after a sync applies tombstones, no file in the
partner's data folder (store, WAL, shared memory, free pages, anything else) holds a withdrawn
hash value in any encoding, while the live values are found (so the scan can see them).

Over a real hub on SQLite and PostgreSQL; a store-level test with many entries (so b-tree
pages split, merge and move cells) checks the same on the SQLite file alone.
"""

from __future__ import annotations

import base64
import os
import secrets
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from feedkit import FeedKit, Rewriter
from hubkit import Case, mixed_hashes, post, wait_for_size

from hashing import PdqHash
from partner_sdk import Matcher
from partner_sdk.batch import Addition, Tombstone
from partner_sdk.errors import BatchDecryptionError
from partner_sdk.store import Record, Store, TrustedCheckpoint

Forward = Callable[[httpx.Request], httpx.Response]


def encodings(raw: bytes) -> list[bytes]:
    """Every form a hash value could take in a file: raw, hex both cases, base64 variants."""
    hexed = raw.hex().encode()
    b64 = base64.b64encode(raw)
    url = base64.urlsafe_b64encode(raw)
    # Unpadded base64 of a value is a prefix of the padded form; the first 20 characters are
    # distinctive enough (120 random bits) and catch any alignment of the padded forms.
    return [raw, hexed, hexed.upper(), b64.rstrip(b"="), url.rstrip(b"=")]


def values(hashes: list[dict[str, Any]]) -> list[bytes]:
    out: list[bytes] = []
    for h in hashes:
        if h["algorithm"] == "vpdq":
            out += [bytes.fromhex(f["hash"]) for f in h["frames"]]
        else:
            out.append(bytes.fromhex(h["hash"]))
    return out


def folder_bytes(directory: Path) -> dict[str, bytes]:
    """Every byte of every file under the partner's data folder."""
    out: dict[str, bytes] = {}
    for root, _dirs, files in os.walk(directory):
        for name in files:
            path = Path(root) / name
            out[str(path.relative_to(directory))] = path.read_bytes()
    return out


def found_in(files: dict[str, bytes], raw: bytes) -> list[str]:
    return [name for name, data in files.items() for form in encodings(raw) if form in data]


def submit(client: httpx.Client, case: Case, hashes: list[dict[str, Any]]) -> list[str]:
    r = post(client, "/v1/submissions", case.submission(hashes))
    assert r.status_code == 202, r.text
    return [e["entry_id"] for e in r.json()["entries"]]


def test_withdrawn_values_leave_no_trace_in_the_partner_folder(kit: FeedKit) -> None:
    a = kit.new_partner("alpha")
    case1, case2 = Case(), Case()
    h1, h2 = mixed_hashes(12), mixed_hashes(8)
    with kit.hub.client() as client:
        submit(client, case1, h1)
        ids2 = submit(client, case2, h2)
        wait_for_size(client, 20)
        kit.wait_sealed(20)
        with kit.partner(a) as p:
            assert p.sync().cursor == 20
        # The partner's defences (specs/partner-defences.md) refer to entries about to be
        # withdrawn: flood counts, a false-positive mark and a confirmation. They hold log
        # indexes and keyed sketches only; the scan below covers defences.sqlite3 too.
        with Matcher(a) as matcher:
            queries = [PdqHash(bytes.fromhex(h["hash"]), 90) for h in h1 if h["algorithm"] == "pdq"]
            marked = [m.log_index for found in matcher.match_hashes(queries) for m in found]
            assert matcher.defences is not None and len(marked) >= 2
            matcher.defences.false_positive(marked[0])
            matcher.defences.confirm(marked[1])
        # Before the withdrawal every value is present (the scan finds what it looks for).
        files = folder_bytes(a)
        assert all(found_in(files, v) for v in values(h1 + h2))

        # The whole of case 1 and one entry (a PDQ) of case 2 are withdrawn.
        assert post(client, "/v1/withdrawals", case1.withdrawal()).status_code == 202
        assert post(client, "/v1/withdrawals", case2.withdrawal(ids2[:1])).status_code == 202
        wait_for_size(client, 33)
        kit.wait_sealed(33)
        # A match service keeps the store open (read-only) while the sync runs, as in
        # production; the files are read as soon as sync() returns, before anything closes.
        reader = sqlite3.connect(f"{(a / 'store.sqlite3').resolve().as_uri()}?mode=ro", uri=True)
        try:
            assert reader.execute("SELECT count(*) FROM entries").fetchone()[0] == 20
            with kit.partner(a) as p:
                summary = p.sync()
                assert summary.cursor == 33 and summary.withdrawn == 13
                files = folder_bytes(a)
        finally:
            reader.close()

    assert "store.sqlite3" in files and "defences.sqlite3" in files
    leaks = {v.hex()[:8]: found_in(files, v) for v in values(h1 + h2[:1])}
    assert not any(leaks.values()), f"withdrawn values still in: {leaks}"
    assert all(found_in(files, v) for v in values(h2[1:]))
    with Matcher(a) as matcher:  # the matcher forgets the withdrawn entries' marks
        assert matcher.defences is not None and matcher.defences.marks() == []


def test_a_sync_that_fails_after_a_withdrawal_still_erases(kit: FeedKit) -> None:
    """The batch with the tombstones is applied, a later batch is tampered with: the sync
    fails (BatchDecryptionError) and the withdrawn values are gone all the same."""
    a = kit.new_partner("alpha")
    case1 = Case()
    h1 = mixed_hashes(8)
    with kit.hub.client() as client:
        submit(client, case1, h1)
        wait_for_size(client, 8)
        kit.wait_sealed(8)
        with kit.partner(a) as p:
            assert p.sync().cursor == 8
        assert post(client, "/v1/withdrawals", case1.withdrawal()).status_code == 202
        wait_for_size(client, 16)
        kit.wait_sealed(16)
        submit(client, Case(), mixed_hashes(4))
        wait_for_size(client, 20)
        kit.wait_sealed(20)

    def tamper_after_tombstones(request: httpx.Request, forward: Forward) -> httpx.Response:
        response = forward(request)
        if request.url.path == "/v1/feed/batches":
            body = response.json()
            for item in body["batches"]:
                if item["start"] >= 16:
                    item["wrap"] = base64.b64encode(bytes(85)).decode()
            return httpx.Response(200, json=body)
        return response

    with kit.partner(a, transport=Rewriter(tamper_after_tombstones)) as p:
        with pytest.raises(BatchDecryptionError):
            p.sync()
        assert p.store.state().cursor == 16  # the tombstones were applied
        assert not p.store.erase_pending()
        files = folder_bytes(a)  # before anything closes the store
    assert not any(found_in(files, v) for v in values(h1))


def _addition(algorithm: str, value: bytes) -> Addition:
    return Addition(algorithm, value, 90 if algorithm == "pdq" else None, ())


def test_store_file_keeps_no_withdrawn_value_after_many_page_moves(tmp_path: Path) -> None:
    """Thousands of rows so that inserts split pages and withdrawals free and merge them; the
    withdrawals come in several syncs (WAL frames of earlier versions must not survive)."""
    n = 6000
    algs = ["pdq", "md5", "sha256"]
    hashes = [secrets.token_bytes(16 if algs[i % 3] == "md5" else 32) for i in range(n)]
    store = Store(tmp_path / "store.sqlite3")
    cp = TrustedCheckpoint(b"note", 10**6, bytes(32))
    step = 500
    for start in range(0, n, step):
        records: list[Record] = [
            (i, _addition(algs[i % 3], hashes[i])) for i in range(start, start + step)
        ]
        store.apply_batch(start, start + step, records, cp, 0)
    store.close()
    withdrawn = set(range(0, n, 3)) | set(range(1000, 3000))
    cursor = n
    store = Store(tmp_path / "store.sqlite3")
    for chunk in range(3):
        targets = sorted(t for t in withdrawn if t % 3 == chunk)
        records = [(cursor + k, Tombstone(t)) for k, t in enumerate(targets)]
        store.apply_batch(cursor, cursor + len(records), records, cp, 0)
        cursor += len(records)
    assert store.erase_pending()
    store.erase()  # what Partner.sync() does before it returns
    assert not store.erase_pending()
    files = folder_bytes(tmp_path)  # the store still open, as right after a sync
    store.close()
    leaks = [i for i in sorted(withdrawn) if found_in(files, hashes[i])]
    assert not leaks, f"{len(leaks)} withdrawn values remain (e.g. index {leaks[:5]})"
    live = [i for i in range(n) if i not in withdrawn]
    assert all(found_in(files, hashes[i]) for i in live[:200])
