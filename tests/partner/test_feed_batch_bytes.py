"""The feed sealer's byte cap (specs/feed.md section 2): batches end early, before the entry
that would take their plaintext past ``feed_batch_max_bytes``; an entry above the cap is
sealed alone; the cap and the largest possible entry fit under the partner SDK's limit."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from feedkit import FeedKit
from hubkit import Case, HubProcess, post, random_vpdq, wait_for_size
from sqlalchemy import select

from crypto.feed import BATCH_HEADER_SIZE, DEFAULT_MAX_BATCH, TAG_SIZE, BatchBinding, open_batch
from hub.db.models import FeedBatchRow, table_of
from hub.feed import (
    DEFAULT_BATCH_MAX_BYTES,
    ENTRY_RECORD_OVERHEAD,
    PLAINTEXT_HEADER_SIZE,
    max_entry_body_bytes,
)
from hub.keystore import load_keys
from hub.settings import Settings, SettingsError
from hub.submission import addition_entry

CAP = 64 << 10
SEALING_OVERHEAD = BATCH_HEADER_SIZE + TAG_SIZE


def worst_vpdq_body(frames: int) -> bytes:
    """The longest canonical vPDQ entry body of ``frames`` frames the hub can accept."""
    ts = 2.2250738585072014e-308  # a 23-character float repr, the longest there is
    return addition_entry(
        {
            "algorithm": "vpdq",
            "frames": [
                {"frame": 2**31 - 1 - frames + i, "hash": "f" * 64, "quality": 100, "timestamp": ts}
                for i in range(frames)
            ],
        }
    )


@pytest.mark.parametrize("frames", [1, 2, 1000])
def test_entry_bound_covers_worst_body(frames: int) -> None:
    assert len(worst_vpdq_body(frames)) <= max_entry_body_bytes(frames)


def test_default_cap_and_limits_fit_partner_sdk() -> None:
    s = Settings()
    assert s.feed_batch_max_bytes == DEFAULT_BATCH_MAX_BYTES
    # A batch at the cap, sealed, is still accepted by partners.
    assert s.feed_batch_max_bytes + SEALING_OVERHEAD <= DEFAULT_MAX_BATCH
    # With the default frame limit every entry fits well under the default cap.
    one = PLAINTEXT_HEADER_SIZE + ENTRY_RECORD_OVERHEAD + 32 + max_entry_body_bytes(10_000)
    assert one < s.feed_batch_max_bytes
    # Even at the highest max_vpdq_frames allowed, an entry sealed alone fits the SDK limit.
    top = max_entry_body_bytes(1_000_000)
    assert PLAINTEXT_HEADER_SIZE + ENTRY_RECORD_OVERHEAD + 32 + top + SEALING_OVERHEAD < (
        DEFAULT_MAX_BATCH
    )
    Settings(feed_batch_max_bytes=DEFAULT_MAX_BATCH - SEALING_OVERHEAD)
    for bad in (DEFAULT_MAX_BATCH - SEALING_OVERHEAD + 1, 1024, 0, -1):
        with pytest.raises(SettingsError):
            Settings(feed_batch_max_bytes=bad)


@pytest.fixture
def capped(feed_hub_factory: Callable[..., HubProcess], tmp_path: Path) -> Iterator[FeedKit]:
    hub = feed_hub_factory("--set", f"feed_batch_max_bytes={CAP}", "--set", "feed_batch_entries=64")
    k = FeedKit(hub, tmp_path)
    yield k
    k.close()


def batches(kit: FeedKit) -> list[tuple[int, int, bytes]]:
    """(start, end, plaintext) of every sealed batch, in order, decrypted with the hub's keys."""
    keys = load_keys(kit.hub.data_dir, None)
    rows = table_of(FeedBatchRow)
    with kit.engine.connect() as conn:
        found = conn.execute(
            select(rows.c.start, rows.c.end, rows.c.version, rows.c.file).order_by(rows.c.start)
        ).all()
    out = []
    for start, end, version, file in found:
        binding = BatchBinding(kit.origin, start, end)
        key = keys.vault.batch_key(start, version)
        assert key is not None
        sealed = (kit.hub.data_dir / "feed" / file).read_bytes()
        out.append((int(start), int(end), open_batch(sealed, binding, key)))
    return out


def test_batches_split_by_bytes_and_partner_syncs(capped: FeedKit) -> None:
    kit = capped
    partner = kit.new_partner("alpha")
    # Six ~25 KB entries (two fit under 64 KiB), one ~85 KB entry above the cap, two more.
    hashes: list[dict[str, Any]] = [random_vpdq(200) for _ in range(6)]
    hashes += [random_vpdq(700)] + [random_vpdq(200) for _ in range(2)]
    with kit.hub.client() as client:
        # One submission: its entries are published together (one round), so only bytes (not
        # the age trigger) decide where batches end.
        r = post(client, "/v1/submissions", Case().submission(hashes))
        assert r.status_code == 202, r.text
        wait_for_size(client, len(hashes))
        # submission position -> log index (a round's order is random: test_hub_shuffle.py)
        at = [
            client.get("/v1/proof/inclusion", params={"leaf_hash": e["leaf_hash"]}).json()[
                "log_index"
            ]
            for e in r.json()["entries"]
        ]
    kit.wait_sealed(len(hashes))
    found = batches(kit)
    assert [s for s, _, _ in found] == [0] + [e for _, e, _ in found[:-1]]  # contiguous
    assert found[-1][1] == len(hashes)
    assert len(found) >= 5  # entry count alone (64) would have allowed a single batch
    for start, end, plain in found:
        assert end - start >= 1
        if end - start > 1:
            assert len(plain) <= CAP
    big = [(s, e, p) for s, e, p in found if s <= at[6] < e]
    assert len(big) == 1 and big[0][:2] == (at[6], at[6] + 1) and len(big[0][2]) > CAP  # alone
    # No batch ends early for nothing: the next entry would have crossed the cap (the sealer
    # estimates records from stored ciphertexts, 40 bytes of nonce and tag above the truth).
    sizes = [0] * len(hashes)  # by log index
    for position, h in enumerate(hashes):
        sizes[at[position]] = ENTRY_RECORD_OVERHEAD + 32 + len(_body(h))
    for start, end, plain in found[:-1]:
        assert len(plain) + sizes[end] + 40 * (end - start + 1) > CAP
    with kit.partner(partner) as p:
        report = p.sync().to_json()
        assert report["cursor"] == len(hashes) and report["additions"] == len(hashes)
        held = p.store.live_hashes()
    assert held == {("vpdq", bytes.fromhex(f["hash"])) for h in hashes for f in h["frames"]}


def _body(h: dict[str, Any]) -> bytes:
    frames = [{**f, "timestamp": float(f["timestamp"])} for f in h["frames"]]
    canonical = {"algorithm": "vpdq", "frames": frames}
    body = addition_entry(canonical)
    assert json.loads(body)["hash"]["frames"][0]["hash"] == h["frames"][0]["hash"]
    return body
