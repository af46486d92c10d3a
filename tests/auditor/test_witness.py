"""The C2SP tlog-witness: every status code, persistence, concurrency, cosignature format."""

from __future__ import annotations

import base64
import os
import threading
from pathlib import Path

import httpx
import pytest
from auditkit import MemLog, run_audit

from auditor.witness import SIZE_CONTENT_TYPE, Witness, load_key_file
from auditor.witness_store import WitnessStore
from crypto.checkpoint import open_checkpoint
from crypto.cosignature import open_cosigned_checkpoint, verify_cosignature
from crypto.errors import LimitExceededError, MalformedError
from crypto.keys import ALG_COSIGNATURE_V1, parse_verifier_key, signer_key_from_seed
from crypto.note import sign_note
from crypto.witness_protocol import encode_add_checkpoint, parse_add_checkpoint

NOW = 1767225600


def make_witness(tmp_path: Path, log: MemLog) -> Witness:
    signer = signer_key_from_seed("witness.example", b"\x05" * 32, ALG_COSIGNATURE_V1)
    return Witness(
        signer, {log.origin: [log.key.verifier]}, WitnessStore(tmp_path), clock=lambda: NOW
    )


def body(
    log: MemLog,
    old: int,
    size: int | None = None,
    proof: list[bytes] | None = None,
    note: bytes | None = None,
) -> bytes:
    size = log.store.size if size is None else size
    if proof is None:
        proof = log.proof(old, size) if old else []
    return encode_add_checkpoint(old, proof, log.note(size) if note is None else note)


# -- request parsing ------------------------------------------------------------------------


BAD_BODIES = {
    "empty": b"",
    "no-newline": b"old 0",
    "old-leading-zero": b"old 01\n\nx",
    "old-negative": b"old -1\n\nx",
    "old-plus": b"old +1\n\nx",
    "old-two-spaces": b"old  1\n\nx",
    "old-missing": b"new 1\n\nx",
    "old-huge": b"old 99999999999999999999\n\nx",
    "proof-not-base64": b"old 1\n!!!!\n\nx",
    "proof-short": b"old 1\n" + base64.b64encode(b"\x00" * 31) + b"\n\nx",
    "proof-noncanonical": b"old 1\n" + base64.b64encode(b"\x00" * 32).rstrip(b"=") + b"\n\nx",
    "proof-non-ascii": b"old 1\n\xff\xfe\n\nx",
    "no-blank-line": b"old 1\n",
    "no-checkpoint": b"old 0\n\n",
    "too-many-proof-lines": b"old 1\n" + (base64.b64encode(b"\x00" * 32) + b"\n") * 64 + b"\nx",
}


@pytest.mark.parametrize("raw", list(BAD_BODIES.values()), ids=list(BAD_BODIES))
def test_request_parser_refuses(raw: bytes) -> None:
    with pytest.raises(MalformedError):
        parse_add_checkpoint(raw)


def test_request_parser_size_limit() -> None:
    with pytest.raises(LimitExceededError):
        parse_add_checkpoint(b"old 0\n\n" + b"x" * (2 << 20))


def test_request_round_trip() -> None:
    log = MemLog()
    log.grow(10)
    raw = body(log, 3)
    parsed = parse_add_checkpoint(raw)
    assert parsed.old_size == 3 and list(parsed.proof) == log.proof(3)
    assert parsed.note == log.note()
    assert encode_add_checkpoint(3, parsed.proof, parsed.note) == raw


# -- the rules, in process (table) ---------------------------------------------------------


def status_table() -> list[tuple[str, int]]:
    return [
        ("first/old0", 200),
        ("malformed-body", 400),
        ("malformed-note", 400),
        ("not-a-checkpoint", 400),
        ("unknown-origin", 404),
        ("bad-signature", 403),
        ("unknown-key-only", 403),
        ("old-above-size", 400),
        ("old-mismatch-low", 409),
        ("old-mismatch-high", 409),
        ("bad-proof", 422),
        ("proof-wrong-length", 422),
        ("same-size-other-root", 409),
        ("same-size-with-proof", 422),
        ("same-size-same-root", 200),
        ("grow", 200),
    ]


@pytest.mark.parametrize(("case", "status"), status_table(), ids=[c for c, _ in status_table()])
def test_add_checkpoint_status(tmp_path: Path, case: str, status: int) -> None:
    log = MemLog()
    log.grow(20)
    witness = make_witness(tmp_path, log)
    assert witness.add_checkpoint(body(log, 0, 20)).status == 200  # the witness knows size 20
    other = MemLog(origin="other.example.org/log")
    other.grow(3)
    forged = MemLog(seed=b"\x09" * 32)  # same origin, another key
    forged.grow(25)
    fork = log.fork(15)
    fork.grow(10, tag="fork")
    log.grow(10)
    note = log.note()
    bad_sig = note[:-10] + (b"A" if note[-10:-9] != b"A" else b"B") + note[-9:]
    requests = {
        "first/old0": body(log, 0, 20),  # re-submitting 0 when the witness knows 20 is a 409 ...
        "malformed-body": b"old x\n\n" + note,
        "malformed-note": encode_add_checkpoint(20, log.proof(20), b"not a note\n"),
        "not-a-checkpoint": encode_add_checkpoint(20, [], sign_note(b"hello\n", [log.key])),
        "unknown-origin": body(other, 0),
        "bad-signature": encode_add_checkpoint(20, log.proof(20), bad_sig),
        "unknown-key-only": body(forged, 20, 25, proof=[]),
        "old-above-size": encode_add_checkpoint(31, [], note),
        "old-mismatch-low": body(log, 10),
        "old-mismatch-high": body(log, 25),
        "bad-proof": encode_add_checkpoint(20, [b"\x00" * 32] * len(log.proof(20)), note),
        "proof-wrong-length": encode_add_checkpoint(20, log.proof(20)[:-1], note),
        "same-size-other-root": encode_add_checkpoint(20, [], fork.note(20)),
        "same-size-with-proof": encode_add_checkpoint(20, [b"\x00" * 32], log.note(20)),
        "same-size-same-root": encode_add_checkpoint(20, [], log.note(20)),
        "grow": body(log, 20),
    }
    if case == "first/old0":
        fresh = make_witness(tmp_path / "fresh", log)
        answer = fresh.add_checkpoint(body(log, 0, 20))
    else:
        answer = witness.add_checkpoint(requests[case])
    assert answer.status == status, answer.body
    if status == 409:
        assert answer.content_type == SIZE_CONTENT_TYPE
        assert answer.body == b"20\n"
    record = witness.store.get(log.origin)
    assert record is not None
    expected_size = 30 if case == "grow" else 20
    assert record.size == expected_size  # refusals never change the record


# -- the real service over HTTP ------------------------------------------------------------


def post(url: str, raw: bytes) -> httpx.Response:
    return httpx.post(url + "/add-checkpoint", content=raw, timeout=30.0)


def test_witness_init_key_file(tmp_path: Path) -> None:
    key_file = tmp_path / "w.key"
    out = run_audit("witness", "init", "--key", str(key_file), "--name", "w.example")
    assert out.returncode == 0, out.stderr
    vkey = parse_verifier_key(out.stdout.strip())
    assert vkey.alg == ALG_COSIGNATURE_V1 and vkey.name == "w.example"
    assert os.stat(key_file).st_mode & 0o777 == 0o600
    assert load_key_file(key_file).verifier == vkey
    again = run_audit("witness", "init", "--key", str(key_file))
    assert again.returncode == 2  # never overwrites a key
    os.chmod(key_file, 0o644)
    serve = run_audit("witness", "serve", "--key", str(key_file), "--log", MemLog().vkey)
    assert serve.returncode == 2  # refuses a key file others can read


def test_witness_init_creates_missing_folders_privately(tmp_path: Path) -> None:
    key_file = tmp_path / "new" / "deeper" / "witness.key"
    out = run_audit("witness", "init", "--key", str(key_file), "--name", "w.example")
    assert out.returncode == 0, out.stderr
    assert load_key_file(key_file).verifier == parse_verifier_key(out.stdout.strip())
    for folder in (tmp_path / "new", tmp_path / "new" / "deeper"):
        assert os.stat(folder).st_mode & 0o777 == 0o700
    before = key_file.read_bytes()
    again = run_audit("witness", "init", "--key", str(key_file))
    assert again.returncode == 2 and key_file.read_bytes() == before


def test_every_status_over_http_and_restart(tmp_path: Path, witness_factory) -> None:
    log = MemLog()
    log.grow(5)
    w = witness_factory([f"{log.origin}={log.vkey}"])
    other = MemLog(origin="other.example.org/log")
    other.grow(1)
    forged = MemLog(seed=b"\x09" * 32)
    forged.grow(5)

    assert post(w.url, b"garbage").status_code == 400
    assert post(w.url, body(other, 0)).status_code == 404
    assert post(w.url, body(forged, 0)).status_code == 403
    assert post(w.url, encode_add_checkpoint(6, [], log.note())).status_code == 400
    assert httpx.get(w.url + "/add-checkpoint").status_code == 405
    big = post(w.url, b"old 0\n\n" + b"x" * (2 << 20))
    assert big.status_code == 413

    first = post(w.url, body(log, 0))
    assert first.status_code == 200
    cosigned = log.note() + first.content
    witness_key = parse_verifier_key(w.verifier_key)
    cosig = verify_cosignature(cosigned, witness_key, origin=log.origin)
    assert abs(cosig.timestamp - __import__("time").time()) < 600
    open_cosigned_checkpoint(cosigned, log.key.verifier, [witness_key], origin=log.origin, quorum=1)

    conflict = post(w.url, body(log, 0))  # the client thinks the witness knows nothing
    assert conflict.status_code == 409
    assert conflict.headers["content-type"] == SIZE_CONTENT_TYPE
    assert conflict.text == "5\n"

    log.grow(7)
    assert (
        post(
            w.url, encode_add_checkpoint(5, [b"\x01" * 32] * len(log.proof(5)), log.note())
        ).status_code
        == 422
    )
    w.restart()  # state survives a restart (SIGKILL)
    assert post(w.url, body(log, 0)).text == "5\n"
    grown = post(w.url, body(log, 5))
    assert grown.status_code == 200
    latest = httpx.get(f"{w.url}/checkpoint/{log.origin}")
    assert latest.status_code == 200
    opened = open_cosigned_checkpoint(
        latest.content, log.key.verifier, [witness_key], origin=log.origin, quorum=1
    )
    assert opened.checkpoint.size == 12
    assert httpx.get(f"{w.url}/checkpoint/unknown.example").status_code == 404
    info = httpx.get(w.url + "/witness").json()
    assert info["verifier_key"] == w.verifier_key
    assert info["logs"] == [{"origin": log.origin, "size": 12}]


def test_concurrent_requests_never_cosign_two_roots_at_one_size(
    tmp_path: Path, witness_factory
) -> None:
    log = MemLog()
    log.grow(8)
    w = witness_factory([log.vkey])
    assert post(w.url, body(log, 0)).status_code == 200
    # Sixteen forks of the same log, each extending size 8 to size 12 differently, plus honest
    # growth to several sizes: all race from old size 8.
    forks = []
    for i in range(16):
        fork = log.fork(8)
        fork.grow(4, tag=f"fork{i}")
        forks.append(encode_add_checkpoint(8, fork.proof(8), fork.note()))
    results: list[tuple[int, bytes]] = []
    lock = threading.Lock()
    barrier = threading.Barrier(len(forks))

    def send(raw: bytes) -> None:
        barrier.wait()
        answer = post(w.url, raw)
        with lock:
            results.append((answer.status_code, answer.content))

    threads = [threading.Thread(target=send, args=(raw,)) for raw in forks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = sorted(s for s, _ in results)
    assert statuses.count(200) == 1, statuses
    assert statuses.count(409) == len(forks) - 1
    assert all(body == b"12\n" for s, body in results if s == 409)
    latest = httpx.get(f"{w.url}/checkpoint/{log.origin}").content
    winner = open_checkpoint(latest, [log.key.verifier], origin=log.origin).checkpoint
    assert winner.size == 12


def test_cosignature_format_matches_sunlight_mirror(
    conformance_vectors: Path, tmp_path: Path
) -> None:
    """Our witness's line has the same layout as the Sunlight-made cosignature: key ID,
    8-byte big-endian timestamp, 64-byte Ed25519 signature, over cosignature/v1 text."""
    mirror = (conformance_vectors / "note/sunlight-mirror/checkpoint").read_bytes()
    mirror_key = parse_verifier_key(
        "mirror.example.org+3fb148ef+BAAjjch9GyYz0sJsJx7ALhbdAtz2ov0unbzSl1vMp94O"
    )
    theirs = verify_cosignature(mirror, mirror_key, origin="rome2026h1.example.org")
    assert theirs.timestamp == 1767139200
    log = MemLog()
    log.grow(300)
    witness = make_witness(tmp_path, log)
    ours = witness.add_checkpoint(body(log, 0))
    assert ours.status == 200
    line = ours.body.decode()
    their_line = mirror.decode().split("\n\n", 1)[1]
    assert line.startswith("\u2014 witness.example ") and line.endswith("\n")
    assert (
        len(base64.b64decode(line.split(" ")[2]))
        == len(base64.b64decode(their_line.split(" ")[2]))
        == 4 + 8 + 64
    )
    cosig = verify_cosignature(log.note() + ours.body, witness.verifier, origin=log.origin)
    assert cosig.timestamp == NOW
