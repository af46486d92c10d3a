"""The hub collects cosignatures from two real witnesses and serves them on /checkpoint."""

from __future__ import annotations

import signal
import time

import httpx
from hubkit import SequenceProcess
from witkit import WitnessedFactory, cosigned_by, grow

from crypto.cosignature import open_cosigned_checkpoint
from crypto.keys import parse_verifier_key


def test_checkpoints_are_cosigned_by_both(witnessed: WitnessedFactory, database_url: str) -> None:
    kit = witnessed(database_url=database_url)
    log_key = parse_verifier_key(kit.log_key)
    wkeys = [parse_verifier_key(k) for k in kit.witness_keys]
    for n in (5, 300, 1):
        size = grow(kit.hub, n)
        began = time.monotonic()
        note = cosigned_by(kit.hub, size, 2)
        print(f"cosigned size {size} within {1000 * (time.monotonic() - began):.0f} ms")
        opened = open_cosigned_checkpoint(note, log_key, wkeys, origin=kit.origin, quorum=2)
        assert opened.checkpoint.size == size
        assert {c.name for c in opened.cosignatures} == {"w1.example", "w2.example"}
        # Each witness recorded exactly this checkpoint as its latest.
        for w in kit.witnesses:
            theirs = httpx.get(f"{w.url}/checkpoint/{kit.origin}").content
            assert theirs.split(b"\n")[:3] == note.split(b"\n")[:3]
    status = httpx.get(kit.hub.url + "/v1/witnesses").json()
    assert status["log_size"] == size
    assert [(w["name"], w["cosigned_size"], w["last_error"]) for w in status["witnesses"]] == [
        ("w1", size, None),
        ("w2", size, None),
    ]
    assert httpx.get(kit.hub.url + "/v1/checkpoint/cosigned").content == note
    # Cosignatures are durable: a restarted hub serves them again.
    kit.hub.restart()
    assert httpx.get(kit.hub.url + "/checkpoint").content == note


def test_a_split_hub_is_cosigned_and_serves_the_cosignatures(
    witnessed: WitnessedFactory, database_url: str
) -> None:
    """``ncii-hub sequence`` asks the witnesses; ``serve --no-sequencer`` (same witnesses)
    serves the cosigned checkpoint it never asked for itself."""
    kit = witnessed(database_url=database_url, extra=("--no-sequencer",))
    seq = SequenceProcess(kit.hub.data_dir, kit.hub.database_url, *kit.witness_args())
    try:
        size = grow(kit.hub, 4)
        note = cosigned_by(kit.hub, size, 2)
        opened = open_cosigned_checkpoint(
            note,
            parse_verifier_key(kit.log_key),
            [parse_verifier_key(k) for k in kit.witness_keys],
            origin=kit.origin,
            quorum=2,
        )
        assert opened.checkpoint.size == size
        status = httpx.get(kit.hub.url + "/v1/witnesses").json()
        assert [(w["name"], w["cosigned_size"]) for w in status["witnesses"]] == [
            ("w1", size),
            ("w2", size),
        ]
        assert seq.stop(signal.SIGTERM) == 0, seq.output()
    finally:
        seq.kill()
