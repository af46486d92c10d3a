"""partner_sdk.pytx in-process: what the exchange hands pytx from a verified store, the class
contract HMA relies on (stable paths, pickles, opinions), config refusals and the refusal to
report back. Stores are filled with Store.apply_batch, the same code a sync uses
(matchkit.StoreWriter); the command-line tests against a real hub are in test_pytx_cli.py."""

from __future__ import annotations

import json
import pickle
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from feedkit import FeedKit, Rewriter
from hubkit import Case, mixed_hashes, post, wait_for_size
from matchkit import StoreWriter, pdq
from threatexchange.exchanges.fetch_state import SignalOpinionCategory
from threatexchange.extensions.manifest import ThreatExchangeExtensionManifest
from threatexchange.signal_type.md5 import VideoMD5Signal
from threatexchange.signal_type.pdq.signal import PdqSignal
from threatexchange.signal_type.sha256 import VideoSHA256Signal

import partner_sdk.pytx as pytx
from crypto.keys import ALG_ED25519, SignerKey
from partner_sdk import init_partner
from partner_sdk.batch import Addition, Frame, Tombstone
from partner_sdk.errors import CheckpointForkError, FeedLagError, UsageError
from partner_sdk.pytx import (
    CollabConfigError,
    NCIICheckpoint,
    NCIICollabConfig,
    NCIIExchange,
    NCIISignalMetadata,
    ReportRefusedError,
    StateMismatchError,
)
from partner_sdk.store import Store

TYPES = [PdqSignal, VideoMD5Signal, VideoSHA256Signal]
D1, D2, D3 = bytes(range(32)), bytes(range(1, 33)), bytes(range(2, 34))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[tuple[StoreWriter, Store]]:
    writer = StoreWriter(tmp_path / "p")
    yield writer, writer.store
    writer.close()


def collab(tmp_path: Path, **kw: object) -> NCIICollabConfig:
    directory = tmp_path / "partner"
    if not directory.exists():
        init_partner(directory, "examplecorp")
    values: dict[str, object] = {
        "name": "ncii",
        "api": "ncii_exchange",
        "enabled": True,
        "hub": "http://127.0.0.1:9",
        "log_key": SignerKey("localhost/ncii-hub", ALG_ED25519, b"\x07" * 32).verifier.encode(),
        "partner_dir": str(directory),
        **kw,
    }
    return NCIICollabConfig(**values)  # type: ignore[arg-type]


def deltas(
    store: Store, checkpoint: NCIICheckpoint | None, types: list[type] = TYPES
) -> list[dict[int, NCIISignalMetadata | None]]:
    exchange = NCIIExchange(NCIICollabConfig("x", "ncii_exchange", True), clock=lambda: 1000)
    out = list(exchange._deltas(store, checkpoint, types))
    assert all(d.checkpoint.cursor <= store.state().cursor for d in out)
    return [d.updates for d in out]


def test_additions_then_withdrawals_as_deletes_by_log_index(
    store: tuple[StoreWriter, Store],
) -> None:
    writer, st = store
    writer.append([pdq(D1), Addition("md5", D2[:16], None), Addition("sha256", D3, None)])
    (first,) = deltas(st, None)
    assert {i: (r.algorithm, r.signal) for i, r in first.items() if r} == {
        0: ("pdq", D1.hex()),
        1: ("md5", D2[:16].hex()),
        2: ("sha256", D3.hex()),
    }
    cp = NCIICheckpoint(3, 3, st.state().checkpoint.root.hex(), 1000)  # type: ignore[union-attr]
    writer.append([Tombstone(0), pdq(D2)])
    (second,) = deltas(st, cp)
    assert second.keys() == {0, 4} and second[0] is None and second[4] is not None
    # An addition withdrawn within the same fetch is never handed over, only its delete.
    writer.append([pdq(D3), Tombstone(5)])
    cp = NCIICheckpoint(5, 5, st.state().checkpoint.root.hex(), 1000)  # type: ignore[union-attr]
    (third,) = deltas(st, cp)
    assert third == {5: None}


def test_chunks_carry_the_verified_cursor_size_and_root(
    store: tuple[StoreWriter, Store], monkeypatch: pytest.MonkeyPatch
) -> None:
    writer, st = store
    monkeypatch.setattr(pytx, "CHUNK", 4)
    writer.append([pdq(bytes([i]) * 32) for i in range(10)])
    exchange = NCIIExchange(NCIICollabConfig("x", "ncii_exchange", True), clock=lambda: 50)
    out = list(exchange._deltas(st, None, TYPES))
    root = st.state().checkpoint.root.hex()  # type: ignore[union-attr]
    assert [d.checkpoint for d in out] == [
        NCIICheckpoint(4, 10, root, 50), NCIICheckpoint(8, 10, root, 50),
        NCIICheckpoint(10, 10, root, 50),
    ]  # fmt: skip
    assert [sorted(d.updates) for d in out] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    # Nothing new: one empty delta that still records the (re)verified checkpoint; the
    # progress time never goes back even if the clock does.
    later = NCIICheckpoint(10, 10, root, 99)
    (again,) = exchange._deltas(st, later, TYPES)
    assert again.updates == {} and again.checkpoint == NCIICheckpoint(10, 10, root, 99)


def test_a_checkpoint_from_another_history_is_refused(store: tuple[StoreWriter, Store]) -> None:
    writer, st = store
    writer.append([pdq(D1), pdq(D2)])
    root = st.state().checkpoint.root.hex()  # type: ignore[union-attr]
    with pytest.raises(StateMismatchError):
        deltas(st, NCIICheckpoint(5, 5, root, 0))  # pytx is ahead of the partner folder
    with pytest.raises(CheckpointForkError):
        deltas(st, NCIICheckpoint(2, 2, "11" * 32, 0))  # same size, another root


def test_vpdq_records_are_kept_and_only_indexed_with_the_vpdq_extension(
    store: tuple[StoreWriter, Store],
) -> None:
    writer, st = store
    frames = (Frame(0, 100, D1, 0.0), Frame(5, 90, D2, 1.5))
    writer.append([Addition("vpdq", None, None, frames)])
    (updates,) = deltas(st, None)
    record = updates[0]
    assert record is not None and record.algorithm == "vpdq"
    # pytx's vpdq signal string: a JSON list of "pdq hex,quality,timestamp".
    assert json.loads(record.signal) == [f"{D1.hex()},100,0.000", f"{D2.hex()},90,1.500"]
    assert NCIIExchange.naive_convert_to_signal_type(TYPES, None, updates) == {}  # type: ignore[arg-type]

    class FakeVpdq(VideoMD5Signal):  # stands in for pytx's VPDQSignal (needs the vpdq package)
        @classmethod
        def get_name(cls) -> str:
            return "vpdq"

        @classmethod
        def validate_signal_str(cls, signal_str: str) -> str:
            return signal_str

    converted = NCIIExchange.naive_convert_to_signal_type([FakeVpdq], None, updates)  # type: ignore[arg-type]
    assert converted == {FakeVpdq: {record.signal: record}}


def test_conversion_to_pytx_signal_types(store: tuple[StoreWriter, Store]) -> None:
    writer, st = store
    writer.append([pdq(D1), Addition("md5", D2[:16], None), Addition("sha256", D3, None)])
    (updates,) = deltas(st, None)
    converted = NCIIExchange.naive_convert_to_signal_type(TYPES, None, updates)  # type: ignore[arg-type]
    assert {t: set(v) for t, v in converted.items()} == {
        PdqSignal: {D1.hex()},
        VideoMD5Signal: {D2[:16].hex()},
        VideoSHA256Signal: {D3.hex()},
    }
    only_pdq = NCIIExchange.naive_convert_to_signal_type([PdqSignal], None, updates)  # type: ignore[arg-type]
    assert set(only_pdq) == {PdqSignal}


def test_records_are_positive_ncii_opinions_with_stable_pickles() -> None:
    record = NCIISignalMetadata(7, "pdq", D1.hex(), 90)
    (opinion,) = record.get_as_opinions()
    assert opinion.category == SignalOpinionCategory.POSITIVE_CLASS
    assert opinion.tags == {"ncii"} and opinion.is_mine is False
    assert str(record) == "POSITIVE_CLASS ncii"
    assert D1.hex() not in repr(record)  # hash values stay out of logs and tracebacks
    for obj in (record, NCIICheckpoint(3, 4, "ab" * 32, 5)):
        data = pickle.dumps(obj)
        assert b"partner_sdk.pytx" in data and pickle.loads(data) == obj
    for cls in (NCIIExchange, NCIICollabConfig, NCIICheckpoint, NCIISignalMetadata):
        assert cls.__module__ == "partner_sdk.pytx"
    assert NCIIExchange.get_name() == "ncii_exchange"
    assert isinstance(pytx.TX_MANIFEST, ThreatExchangeExtensionManifest)
    assert pytx.TX_MANIFEST.apis == (NCIIExchange,)
    assert not NCIICheckpoint(0, 0, "", 0).is_stale()


def test_reports_back_are_refused_with_the_reason(tmp_path: Path) -> None:
    exchange = NCIIExchange.for_collab(collab(tmp_path))
    record = NCIISignalMetadata(0, "pdq", D1.hex())
    (opinion,) = record.get_as_opinions()
    with pytest.raises(ReportRefusedError, match="never learns"):
        exchange.report_opinion(PdqSignal, D1.hex(), opinion)
    with pytest.raises(NotImplementedError, match="never learns"):
        exchange.report_seen(PdqSignal, D1.hex(), record)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"hub": ""}, "hub"),
        ({"hub": "ftp://hub"}, "hub"),
        ({"log_key": "not a key"}, "log_key"),
        ({"partner_dir": ""}, "partner_dir"),
        ({"partner_dir": "/nonexistent/folder"}, "ncii-partner init"),
        ({"witness_keys": "abc"}, "witness_keys"),
        ({"quorum": 2}, "quorum"),
        ({"quorum": -1}, "quorum"),
        ({"quorum": True}, "quorum"),
    ],
)
def test_incomplete_configs_are_refused_with_the_field(
    tmp_path: Path, change: dict[str, object], field: str
) -> None:
    with pytest.raises(CollabConfigError, match=field) as refused:
        NCIIExchange.for_collab(collab(tmp_path, **change))
    assert isinstance(refused.value, UsageError)  # a partner_sdk error and a pytx CommandError
    assert refused.value.returncode == 2


def test_fetch_iter_against_a_real_hub_reports_withheld_batches(kit: FeedKit) -> None:
    """The exchange in-process against a real hub: what verified is handed over first, then
    FeedLagError once the hub has withheld batches past the grace period (here 0 s)."""
    directory = kit.new_partner("alpha")
    config = NCIICollabConfig(
        "ncii", "ncii_exchange", True, kit.hub.url, kit.log_key, str(directory)
    )
    with kit.hub.client() as client:
        assert (
            post(client, "/v1/submissions", Case().submission(mixed_hashes(10))).status_code == 202
        )
        wait_for_size(client, 10)
        kit.wait_sealed(10)
        (first,) = list(NCIIExchange.for_collab(config).fetch_iter(TYPES, None))
        assert first.checkpoint.cursor == first.checkpoint.size == 10
        assert (
            post(client, "/v1/submissions", Case().submission(mixed_hashes(8))).status_code == 202
        )
        wait_for_size(client, 18)
        kit.wait_sealed(18)

    def hide_new(request: httpx.Request, forward: Any) -> httpx.Response:
        response: httpx.Response = forward(request)
        if request.url.path != "/v1/feed/batches":
            return response
        body = response.json()
        body["batches"], body["next"] = [b for b in body["batches"] if b["end"] <= 10], None
        return httpx.Response(200, json=body)

    ahead = [0.0]  # the partner's clock runs this far ahead (Partner(clock=...))

    def clock() -> float:
        return time.time() + ahead[0]

    def lying() -> NCIIExchange:
        options = {"transport": Rewriter(hide_new), "lag_grace": 0, "clock": clock}
        return NCIIExchange(config, clock=clock, partner_options=options)

    # First sighting of the gap: nothing new to hand over, the checkpoint moves to the
    # verified size, no error yet (a hub may still be sealing).
    (delta,) = list(lying().fetch_iter(TYPES, first.checkpoint))
    assert delta.updates == {} and (delta.checkpoint.cursor, delta.checkpoint.size) == (10, 18)
    ahead[0] = 1.1  # as if 1.1 s passed: the gap now outlives the grace (whole seconds)
    handed: list[object] = []
    with pytest.raises(FeedLagError):
        for d in lying().fetch_iter(TYPES, delta.checkpoint):
            handed.append(d)  # what did verify is handed over before the error
    assert len(handed) == 1
    (caught_up,) = list(NCIIExchange.for_collab(config).fetch_iter(TYPES, delta.checkpoint))
    assert caught_up.checkpoint.cursor == 18 and len(caught_up.updates) == 8


def test_a_checkpoint_of_another_log_is_refused_even_when_smaller(tmp_path: Path) -> None:
    """The collab config is pointed at another hub (another log key, a new partner folder)
    while pytx keeps its fetched state: its checkpoint (cursor 2 of log A) must not be taken
    as a point of log B's history, or B's first entries are never handed over and A's records
    are never deleted. A smaller size is no proof of continuity: the checkpoint must name its
    log."""
    a, b = StoreWriter(tmp_path / "a"), StoreWriter(tmp_path / "b")
    try:
        key_a = SignerKey("a.example/hub", ALG_ED25519, b"\x01" * 32).verifier.encode()
        key_b = SignerKey("b.example/hub", ALG_ED25519, b"\x02" * 32).verifier.encode()
        a.store.pin("a.example/hub", key_a, "https://a.example")
        b.store.pin("b.example/hub", key_b, "https://b.example")
        a.append([pdq(D1), pdq(D2)])
        b.append([pdq(D3), pdq(bytes([9]) * 32), pdq(bytes([8]) * 32), pdq(bytes([7]) * 32)])
        exchange = NCIIExchange(NCIICollabConfig("x", "ncii_exchange", True), clock=lambda: 5)
        (last,) = list(exchange._deltas(a.store, None, TYPES))
        with pytest.raises(StateMismatchError):
            list(exchange._deltas(b.store, last.checkpoint, TYPES))
        # The same log goes on (and an old pickle without the field is taken as before).
        a.append([Tombstone(0)])
        (more,) = list(exchange._deltas(a.store, last.checkpoint, TYPES))
        assert more.updates == {0: None}
        old = pickle.loads(pickle.dumps(last.checkpoint))
        del old.__dict__["log_key"]
        (resumed,) = list(exchange._deltas(a.store, old, TYPES))
        assert resumed.updates == {0: None}
    finally:
        a.close()
        b.close()


@pytest.mark.parametrize(
    "bad",
    [{"hub": 5}, {"hub": None}, {"log_key": None}, {"log_key": 7}, {"partner_dir": 3}],
    ids=["hub-int", "hub-null", "log_key-null", "log_key-int", "partner_dir-int"],
)
def test_configs_of_the_wrong_type_are_refused_with_the_field(
    tmp_path: Path, bad: dict[str, object]
) -> None:
    """A config stored or edited as JSON can carry any type: a message naming the field, not
    an AttributeError traceback."""
    with pytest.raises(CollabConfigError) as refused:
        NCIIExchange.for_collab(collab(tmp_path, **bad))
    assert next(iter(bad)) in str(refused.value)


@pytest.mark.parametrize(
    "fields",
    [("2", 2, "r", 0), (-1, 2, "r", 0), (0, -3, "r", 0), (0, 0, None, 0), (True, 2, "r", 0)],
    ids=["cursor-str", "cursor-negative", "size-negative", "root-null", "cursor-bool"],
)
def test_a_malformed_checkpoint_is_refused(
    store: tuple[StoreWriter, Store], fields: tuple[Any, ...]
) -> None:
    """HMA unpickles the checkpoint it stored: a damaged or foreign one is refused with the
    advice to clear the fetched state, never a TypeError or a read from a negative index."""
    writer, st = store
    writer.append([pdq(D1), pdq(D2)])
    with pytest.raises(StateMismatchError):
        deltas(st, NCIICheckpoint(*fields))
