"""Partner feeds end to end over HTTP, on SQLite and PostgreSQL: convergence, late partners,
withdrawals and crypto-shredding, revocation, rotation, acknowledgements in case status."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import httpx
import pytest
from feedkit import FeedKit
from hubkit import Case, mixed_hashes, post, wait_for_size
from sqlalchemy import select

from crypto.errors import DecryptionError
from crypto.feed import BatchBinding, open_batch, open_wrapped_batch
from hub.db.models import FeedBatchRow, table_of
from hub.keystore import load_keys
from partner_sdk.errors import HubRefusedError
from partner_sdk.keys import load_keys as load_partner_keys


def expected(hashes: list[dict[str, Any]]) -> set[tuple[str, bytes]]:
    out: set[tuple[str, bytes]] = set()
    for h in hashes:
        if h["algorithm"] == "vpdq":
            out |= {("vpdq", bytes.fromhex(f["hash"])) for f in h["frames"]}
        else:
            out.add((h["algorithm"], bytes.fromhex(h["hash"])))
    return out


def submit(client: httpx.Client, case: Case, hashes: list[dict[str, Any]]) -> list[str]:
    r = post(client, "/v1/submissions", case.submission(hashes))
    assert r.status_code == 202, r.text
    return [e["entry_id"] for e in r.json()["entries"]]


def live(kit: FeedKit, directory: Path) -> set[tuple[str, bytes]]:
    with kit.partner(directory) as p:
        return p.store.live_hashes()


def sync(kit: FeedKit, directory: Path) -> dict[str, Any]:
    with kit.partner(directory) as p:
        return p.sync().to_json()


def decryptable_plaintexts(kit: FeedKit) -> list[bytes]:
    """Everything the hub itself can decrypt from DATA/feed with the keys in its key store."""
    keys = load_keys(kit.hub.data_dir, None)
    rows = table_of(FeedBatchRow)
    with kit.engine.connect() as conn:
        batches = conn.execute(select(rows.c.start, rows.c.end, rows.c.version, rows.c.file)).all()
    files = sorted(p.name for p in (kit.hub.data_dir / "feed").iterdir())
    assert files == sorted(b.file for b in batches)  # no orphan (old) ciphertexts remain
    out = []
    for start, end, version, file in batches:
        binding = BatchBinding(kit.origin, start, end)
        key = keys.vault.batch_key(start, version)
        assert key is not None
        out.append(open_batch((kit.hub.data_dir / "feed" / file).read_bytes(), binding, key))
    return out


def test_two_partners_converge_late_partner_and_withdrawals(kit: FeedKit) -> None:
    a, b = kit.new_partner("alpha"), kit.new_partner("beta")
    case1, case2 = Case(), Case()
    h1, h2 = mixed_hashes(12), mixed_hashes(9)
    with kit.hub.client() as client:
        ids1 = submit(client, case1, h1)
        submit(client, case2, h2)
        wait_for_size(client, 21)
        kit.wait_sealed(21)
        sa, sb = sync(kit, a), sync(kit, b)
        assert sa["cursor"] == sb["cursor"] == 21 and sa["additions"] == 21
        assert live(kit, a) == live(kit, b) == expected(h1 + h2)

        # Status counts partners that acknowledged past each entry (never which).
        status = post(client, "/v1/status", case1.status_query()).json()
        assert {e["partners_received"] for e in status["entries"]} == {2}

        # Withdraw three entries of case 1 and the whole of case 2.
        assert post(client, "/v1/withdrawals", case1.withdrawal(ids1[:3])).status_code == 202
        assert post(client, "/v1/withdrawals", case2.withdrawal()).status_code == 202
        wait_for_size(client, 33)
        kit.wait_sealed(33)
        sa = sync(kit, a)
        assert sa["withdrawn"] == 12 and sa["tombstones"] == 12
        remaining = expected(h1[3:])
        assert live(kit, a) == remaining
        assert sync(kit, b)["cursor"] == 33 and live(kit, b) == remaining

        # A partner added later receives the whole history, with withdrawn entries redacted.
        c = kit.new_partner("gamma")
        kit.wait_sealed(33)
        sc = sync(kit, c)
        assert sc["cursor"] == 33 and sc["redactions"] == 12 and sc["additions"] == 9
        assert live(kit, c) == remaining
        with kit.partner(c) as p:
            counts = p.status()["store"]
        assert counts["pending_redactions"] == 0 and counts["withdrawn"] == 12

    # Crypto-shredding: nothing the hub can decrypt holds a withdrawn hash value.
    plaintexts = b"".join(decryptable_plaintexts(kit))
    for h in h1[:3] + h2:
        values = [f["hash"] for f in h["frames"]] if h["algorithm"] == "vpdq" else [h["hash"]]
        for value in values:
            assert value.encode() not in plaintexts
    for h in h1[3:]:
        value = h["frames"][0]["hash"] if h["algorithm"] == "vpdq" else h["hash"]
        assert value.encode() in plaintexts


def test_revocation_and_rotation(kit: FeedKit) -> None:
    a, b = kit.new_partner("alpha"), kit.new_partner("beta")
    with kit.hub.client() as client:
        submit(client, Case(), mixed_hashes(8))
        wait_for_size(client, 8)
        kit.wait_sealed(8)
        assert sync(kit, a)["cursor"] == sync(kit, b)["cursor"] == 8

        kit.registry.revoke("beta", 0)
        submit(client, Case(), mixed_hashes(8))
        wait_for_size(client, 16)
        kit.wait_sealed(16)
        with pytest.raises(HubRefusedError) as refused:
            sync(kit, b)
        assert refused.value.status == 403 and refused.value.code == "partner_revoked"
        assert sync(kit, a)["cursor"] == 16
        # The batch sealed after revocation has no wrap for beta: beta's key opens neither
        # alpha's wrap nor anything else.
        beta = load_partner_keys(b)
        with kit.partner(a) as pa:
            _, refs, _ = pa.client.batches(8, 10)
            sealed = client.get(refs[0].ciphertext).content
            binding = BatchBinding(kit.origin, refs[0].start, refs[0].end)
            with pytest.raises(DecryptionError):
                open_wrapped_batch(sealed, refs[0].wrap, beta.feed_key, binding)
        listed = {p.name: n for p, n in kit.registry.all()}
        assert listed["beta"] == 0 and listed["alpha"] == 2

        # Rotation: alpha lost its keys; new keys, a fresh store, the whole history again.
        fresh = kit.new_partner("alpha", register=False)
        from hub.partners import parse_partner_keys

        kit.registry.rotate(
            "alpha", parse_partner_keys((fresh / "partner-public.json").read_bytes()), 0
        )
        with pytest.raises(HubRefusedError) as old:
            sync(kit, a)
        assert old.value.status == 401 and old.value.code == "unknown_partner"
        kit.wait_sealed(16)
        assert sync(kit, fresh)["cursor"] == 16
        assert live(kit, fresh) == live(kit, a)
        # Old feed key cannot open the new wraps.
        with kit.partner(fresh) as pf:
            _, refs, _ = pf.client.batches(0, 10)
        old_keys = load_partner_keys(a)
        ref = refs[0]
        with pytest.raises(DecryptionError):
            open_wrapped_batch(
                client.get(ref.ciphertext).content,
                ref.wrap,
                old_keys.feed_key,
                BatchBinding(kit.origin, ref.start, ref.end),
            )
        assert base64.b64encode(ref.wrap)  # a real 85-byte wrap was listed
