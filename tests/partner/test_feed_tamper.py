"""Tampering between the SDK and a real hub (an httpx transport rewrites answers, playing a
malicious hub or network): each attack stops the sync with its typed error and leaves the
partner's store byte-for-byte as it was; partner request authentication refusals."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from feedkit import FeedKit, Rewriter
from hubkit import Case, mixed_hashes, post, wait_for_size

import partner_sdk.sync as sync_module
from crypto.checkpoint import Checkpoint, sign_checkpoint
from crypto.commitment import LeafData, LeafKind
from crypto.feed import BatchBinding, open_wrapped_batch, seal_batch_fresh, wrap_key
from hub.feed import Redacted, Revealed, encode_plaintext
from hub.keystore import load_keys
from partner_sdk.batch import EntryRecord, decode_batch
from partner_sdk.errors import (
    BatchDecryptionError,
    CheckpointForkError,
    CheckpointSignatureError,
    HubProtocolError,
    HubRefusedError,
    LeafMismatchError,
    MalformedBatchError,
    MissingRangeError,
    PartnerError,
    RedactionError,
)
from partner_sdk.keys import load_keys as load_partner_keys

Forward = Callable[[httpx.Request], httpx.Response]
Hook = Callable[[httpx.Request, Forward], httpx.Response]


def dump(directory: Path) -> str:
    with sqlite3.connect(directory / "store.sqlite3") as conn:
        return "\n".join(conn.iterdump())


def flip(data: bytes, at: int = -1) -> bytes:
    out = bytearray(data)
    out[at] ^= 1
    return bytes(out)


def json_response(value: object) -> httpx.Response:
    return httpx.Response(200, json=value)


def list_hook(change: Callable[[list[dict[str, object]]], None]) -> Hook:
    def hook(request: httpx.Request, forward: Forward) -> httpx.Response:
        response = forward(request)
        if request.url.path == "/v1/feed/batches":
            body = response.json()
            change(body["batches"])
            return json_response(body)
        return response

    return hook


class Resealer:
    """A malicious hub: decrypts batch 0 with the partner's key, edits its records, seals and
    wraps the result anew for the partner (anyone can wrap to a public key)."""

    def __init__(
        self, kit: FeedKit, directory: Path, edit: Callable[[list[object], int], list[object]]
    ) -> None:
        self.keys = load_partner_keys(directory)
        self.origin = kit.origin
        self.edit = edit
        self.files: dict[str, bytes] = {}

    def __call__(self, request: httpx.Request, forward: Forward) -> httpx.Response:
        if request.url.path.startswith("/feed/") and request.url.path[6:] in self.files:
            return httpx.Response(200, content=self.files[request.url.path[6:]])
        response = forward(request)
        if request.url.path != "/v1/feed/batches":
            return response
        body = response.json()
        item = body["batches"][0]
        start, end = item["start"], item["end"]
        binding = BatchBinding(self.origin, start, end)
        sealed = forward(
            httpx.Request("GET", request.url.copy_with(path=item["ciphertext"], query=None))
        ).content
        plain = open_wrapped_batch(
            sealed, base64.b64decode(item["wrap"]), self.keys.feed_key, binding
        )
        records: list[object] = []
        for r in decode_batch(plain, start, end):
            if isinstance(r, EntryRecord):
                records.append(Revealed(int(r.kind), r.salt, r.body))
            else:
                records.append(Redacted(r.leaf_data, r.tombstone_index))
        # Edit from the partner's cursor on: a merged batch may start before it (specs/feed.md
        # 2), and the records before the cursor are verified but not applied again.
        skip = max(0, int(request.url.params.get("cursor", start)) - start)
        records = records[:skip] + self.edit(records[skip:], start + skip)
        new_end = start + len(records) if len(records) != end - start else end
        binding = BatchBinding(self.origin, start, end)
        header_end = end
        plaintext = encode_plaintext(start, new_end, records)  # type: ignore[arg-type]
        if new_end != header_end:
            # keep the advertised range: header claims [start, end) but holds fewer records
            plaintext = (
                plaintext[:5]
                + start.to_bytes(8, "big")
                + end.to_bytes(8, "big")
                + (end - start).to_bytes(4, "big")
                + plaintext[25:]
            )
        key, new = seal_batch_fresh(plaintext, binding)
        data = new.encode()
        name = hashlib.sha256(data).hexdigest()
        self.files[name] = data
        item["ciphertext"] = f"/feed/{name}"
        item["size"] = len(data)  # listed as it is: the SDK refuses a body of another size
        item["wrap"] = base64.b64encode(wrap_key(key, self.keys.feed_public, binding)).decode()
        return json_response(body)


def replace_first_entry(records: list[object], start: int) -> list[object]:
    first = records[0]
    assert isinstance(first, Revealed)
    body = json.dumps(
        {"hash": {"algorithm": "md5", "hash": os.urandom(16).hex()}, "kind": "addition", "v": 1},
        separators=(",", ":"),
        sort_keys=True,
    ).encode()
    return [Revealed(1, os.urandom(32), body), *records[1:]]


def fake_redaction(records: list[object], start: int) -> list[object]:
    first = records[0]
    assert isinstance(first, Revealed)
    leaf = LeafData.for_entry(LeafKind.ADDITION, first.body, first.salt).encode()
    # The leaf is genuine, but index start+1 is an addition, not a tombstone withdrawing it.
    return [Redacted(leaf, start + 1), *records[1:]]


def drop_last(records: list[object], start: int) -> list[object]:
    return records[:-1]


def checkpoint_hook(kit: FeedKit, size_delta: int, bad_signature: bool = False) -> Hook:
    signer = load_keys(kit.hub.data_dir, None).signer

    def hook(request: httpx.Request, forward: Forward) -> httpx.Response:
        response = forward(request)
        if request.url.path != "/checkpoint":
            return response
        if bad_signature:
            text = response.content.rstrip(b"\n")
            return httpx.Response(200, content=flip(text, -3) + b"\n")
        size = int(response.content.split(b"\n")[1])
        forged = Checkpoint(kit.origin, size + size_delta, os.urandom(32))
        return httpx.Response(200, content=sign_checkpoint(forged, [signer]))

    return hook


@pytest.mark.parametrize("workers", [0, 2], ids=["in-process", "worker-processes"])
def test_tampering_is_detected_and_nothing_is_applied(
    kit: FeedKit, monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    # A large sync prepares batches in worker processes: every attack must stop it alike.
    monkeypatch.setattr(sync_module, "PARALLEL_MIN_ENTRIES", 1 if workers else 10**9)
    monkeypatch.setattr(sync_module, "_worker_count", lambda: workers)
    a = kit.new_partner("alpha")
    with kit.hub.client() as client:
        assert (
            post(client, "/v1/submissions", Case().submission(mixed_hashes(10))).status_code == 202
        )
        wait_for_size(client, 10)
        kit.wait_sealed(10)
        with kit.partner(a) as p:
            assert p.sync().cursor == 10
        assert (
            post(client, "/v1/submissions", Case().submission(mixed_hashes(14))).status_code == 202
        )
        wait_for_size(client, 24)
        kit.wait_sealed(24)

    def ciphertext(request: httpx.Request, forward: Forward) -> httpx.Response:
        response = forward(request)
        if request.url.path.startswith("/feed/"):
            return httpx.Response(200, content=flip(response.content))
        return response

    def alter_wrap(batches: list[dict[str, object]]) -> None:
        wrap = base64.b64decode(str(batches[0]["wrap"]))
        batches[0]["wrap"] = base64.b64encode(flip(wrap, 40)).decode()

    def other_range(batches: list[dict[str, object]]) -> None:
        # The first pending batch's slot gets the next batch's (genuine) ciphertext, wrap and
        # size (a size that does not match the file is refused before decryption).
        batches[0]["ciphertext"], batches[0]["wrap"] = batches[1]["ciphertext"], batches[1]["wrap"]
        batches[0]["size"] = batches[1]["size"]

    def claim_other_range(batches: list[dict[str, object]]) -> None:
        batches[0]["start"], batches[0]["end"] = 0, batches[0]["end"]

    def wrong_size(batches: list[dict[str, object]]) -> None:
        batches[0]["size"] = int(str(batches[0]["size"])) + 1

    def gap(batches: list[dict[str, object]]) -> None:
        del batches[0]

    attacks: list[tuple[str, Hook, type[PartnerError]]] = [
        ("altered-ciphertext", ciphertext, BatchDecryptionError),
        ("altered-wrap", list_hook(alter_wrap), BatchDecryptionError),
        ("batch-of-another-range", list_hook(other_range), BatchDecryptionError),
        # A listed range that covers the cursor is accepted as a merged batch (specs/feed.md
        # 2), so the lie is caught by the batch binding of the wrap and the AEAD.
        ("listed-as-another-range", list_hook(claim_other_range), BatchDecryptionError),
        ("injected-entry", Resealer(kit, a, replace_first_entry), LeafMismatchError),
        ("withheld-batch-gap", list_hook(gap), MissingRangeError),
        ("listed-size-wrong", list_hook(wrong_size), HubProtocolError),
        ("withheld-entry-fake-redaction", Resealer(kit, a, fake_redaction), RedactionError),
        ("withheld-entry-dropped", Resealer(kit, a, drop_last), MalformedBatchError),
        ("checkpoint-fork-larger", checkpoint_hook(kit, 14), CheckpointForkError),
        ("checkpoint-fork-at-hub-size", checkpoint_hook(kit, 0), CheckpointForkError),
        ("checkpoint-fork-same-size", checkpoint_hook(kit, -14), CheckpointForkError),
        ("checkpoint-rollback", checkpoint_hook(kit, -20), CheckpointForkError),
        ("checkpoint-bad-signature", checkpoint_hook(kit, 0, True), CheckpointSignatureError),
    ]
    before = dump(a)
    for name, hook, error in attacks:
        with kit.partner(a, transport=Rewriter(hook)) as p, pytest.raises(error):
            p.sync()
        assert dump(a) == before, name
    with kit.partner(a) as p:
        summary = p.sync()
    assert summary.cursor == 24 and summary.additions == 14


def test_partner_request_authentication(kit: FeedKit) -> None:
    a = kit.new_partner("alpha")
    stranger = kit.new_partner("stranger", register=False)
    seen: list[httpx.Request] = []

    def record(request: httpx.Request, forward: Forward) -> httpx.Response:
        seen.append(request)
        return forward(request)

    with kit.partner(a, transport=Rewriter(record)) as p:
        p.sync()
    signed = next(r for r in seen if r.url.path == "/v1/feed/batches")
    with kit.hub.client() as client:
        # Replay of a captured request: 409 replayed_nonce.
        again = client.get(
            signed.url.raw_path.decode(),
            headers={"NCII-Signature": signed.headers["NCII-Signature"]},
        )
        assert again.status_code == 409 and again.json()["error"]["code"] == "replayed_nonce"
        # The same signature on another request target: 401 bad_signature.
        other = client.get(
            "/v1/feed/batches?cursor=1",
            headers={"NCII-Signature": signed.headers["NCII-Signature"]},
        )
        assert other.status_code == 401 and other.json()["error"]["code"] == "bad_signature"
        missing = client.get("/v1/feed/batches")
        assert missing.status_code == 401 and missing.json()["error"]["code"] == "bad_signature"
    with pytest.raises(HubRefusedError) as unknown, kit.partner(stranger) as p:
        p.sync()
    assert (unknown.value.status, unknown.value.code) == (401, "unknown_partner")
    with (
        pytest.raises(HubRefusedError) as stale,
        kit.partner(a, clock=lambda: time.time() - 3600) as p,
    ):
        p.sync()
    assert (stale.value.status, stale.value.code) == (401, "stale_timestamp")
