"""client library: hashing to hub bodies, safe retries, key pinning, and every parser's bad input.

Retry behaviour uses httpx.MockTransport in front of a scripted hub (no sleeping: the session's
sleep is recorded). The parsers (case files, receipts, bundles, hub URLs) get hostile input and
must answer with a typed error, never an unhandled exception.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from clientkit import make_flat, make_photos
from hubkit import HubProcess

from client.api import (
    AmbiguousCaseError,
    Bundle,
    BundleFormatError,
    ClientHome,
    HubKeyChangedError,
    HubProtocolError,
    HubRefusedError,
    HubSession,
    HubUnreachableError,
    NoCaseError,
    StoreError,
    SubmissionPlan,
    SubmitLimits,
    UnknownCaseError,
    UsageError,
    hash_paths,
    normalise_hub_url,
    plan_submission,
    seal_plan,
    verify_receipts,
)
from client.plan import split_bodies
from client.receipts import decode_receipt
from client.store import default_home
from crypto import envelope
from crypto.case import CaseSecret
from crypto.errors import MalformedError, RecoveryCodeError
from crypto.keys import generate_signer_key, signer_key_from_seed

# -- hashing to the hub's submission body ----------------------------------------------------


def test_plan_maps_hashing_output_to_the_submission_body(tmp_path: Path) -> None:
    photos = make_photos(tmp_path / "p", ("camera", "coffee"))
    (tmp_path / "p" / "copy.jpg").write_bytes(photos[0].read_bytes())  # same photo twice
    make_flat(tmp_path / "p" / "flat.png")
    (tmp_path / "p" / "notes.txt").write_text("not a picture")
    (tmp_path / "p" / "broken.jpg").write_bytes(photos[1].read_bytes()[:300])
    calls: list[tuple[int, int]] = []
    report = hash_paths([str(tmp_path / "p")], progress=lambda d, t: calls.append((d, t)))
    states = {Path(f.path).name: f.state for f in report.files}
    assert states == {
        "broken.jpg": "error",
        "camera.jpg": "ready",
        "coffee.jpg": "ready",
        "copy.jpg": "ready",
        "flat.png": "low-quality",
        "notes.txt": "skipped",
    }
    assert calls[-1] == (6, 6)
    plan = plan_submission(report)
    assert plan.hash_count == 6  # the copy adds nothing: the hub refuses duplicates
    assert [h["algorithm"] for h in plan.hashes] == ["pdq", "md5", "sha256"] * 2
    for h in plan.hashes:
        if h["algorithm"] == "pdq":
            assert set(h) == {"algorithm", "hash", "quality"} and h["quality"] >= 50
            assert len(h["hash"]) == 64
        else:
            assert set(h) == {"algorithm", "hash"}
    assert "hashes" not in repr(plan.files[0]) and plan.hashes[0]["hash"] not in repr(plan)
    body = json.loads(split_bodies(plan.hashes)[0])
    assert body == {"v": 1, "hashes": list(plan.hashes)}


def test_unreadable_files_are_reported_not_raised(tmp_path: Path) -> None:
    secret = tmp_path / "secret.jpg"
    make_photos(tmp_path, ("camera",))[0].rename(secret)
    secret.chmod(0)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    report = hash_paths([str(secret), str(fifo), str(tmp_path / "missing.jpg")])
    states = {Path(f.path).name: f.state for f in report.files}
    # root reads a mode-0 file anyway; anyone else gets a per-file error, never an exception
    assert states == {
        "secret.jpg": "ready" if os.geteuid() == 0 else "error",
        "pipe": "error",
        "missing.jpg": "error",
    }
    assert all(f.message for f in report.files if f.state == "error")


def test_thousands_of_small_files_in_bounded_time(tmp_path: Path) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(3000):
        (folder / f"{i:05}.bin").write_bytes(os.urandom(64))
    start = time.monotonic()
    report = hash_paths([str(folder)])
    assert time.monotonic() - start < 60
    assert len(report.files) == 3000 and {f.state for f in report.files} == {"skipped"}
    assert plan_submission(report).hash_count == 0


def test_bodies_split_under_the_hub_caps_and_seal_deterministically() -> None:
    hashes = tuple({"algorithm": "md5", "hash": f"{i:032x}"} for i in range(25))
    plan = SubmissionPlan(hashes, ())
    bodies = split_bodies(plan.hashes, SubmitLimits(max_hashes=10))
    assert [len(json.loads(b)["hashes"]) for b in bodies] == [10, 10, 5]
    small = split_bodies(plan.hashes, SubmitLimits(max_body=200))
    assert all(len(b) <= 200 for b in small)
    assert sum(len(json.loads(b)["hashes"]) for b in small) == 25
    secret = CaseSecret(bytes(range(16)))
    nonces = iter(bytes([i]) * 16 for i in range(100))
    sealed = seal_plan(
        secret, plan, 1767225600, limits=SubmitLimits(max_hashes=10), nonce=lambda: next(nonces)
    )
    assert len(sealed) == 3
    opened = envelope.open(sealed[2], "submission", now=1767225600)
    assert opened.nonce == bytes([2]) * 16 and opened.body == bodies[2]
    assert CaseSecret(bytes(range(16))).public_key() == opened.public_key


def test_long_video_frames_are_split_into_several_vpdq_entries() -> None:
    from client.plan import _vpdq_objects
    from hashing.pdq import PdqHash
    from hashing.vpdq import VpdqFeature

    features = [
        VpdqFeature(
            i, 10 if i < 3 else 90, PdqHash(bytes([i % 256]) * 32, 10 if i < 3 else 90), float(i)
        )
        for i in range(12)
    ]
    objects = _vpdq_objects(features, max_frames=3)
    # the first chunk has only flat frames: the hub would refuse it, so it is not sent
    assert [len(o["frames"]) for o in objects] == [3, 3, 3]
    assert objects[0]["frames"][0] == {
        "frame": 3,
        "quality": 90,
        "hash": "03" * 32,
        "timestamp": 3.0,
    }


# -- the data folder ---------------------------------------------------------------------------


def test_home_location_and_case_resolution(tmp_path: Path) -> None:
    assert default_home({"NCII_CLIENT_HOME": "/x"}) == Path("/x")
    assert default_home({"XDG_DATA_HOME": "/d"}) == Path("/d/ncii-client")
    home = ClientHome.open(tmp_path / "h")
    with pytest.raises(NoCaseError):
        home.resolve_case(None)
    a = home.create_case()
    assert "recovery_code=<redacted>" in repr(a)
    assert home.resolve_case(None) == a.case_id
    b = home.create_case()
    with pytest.raises(AmbiguousCaseError) as info:
        home.resolve_case(None)
    assert sorted(info.value.cases) == sorted([a.case_id, b.case_id])
    with pytest.raises(UnknownCaseError):
        home.resolve_case("not a case id!")
    with pytest.raises(UnknownCaseError):
        home.resolve_case("0" * 16)
    assert home.recover_case(a.recovery_code) == a.case_id
    with pytest.raises(RecoveryCodeError):
        home.recover_case("0000-0000")
    assert home.load_secret(a.case_id).case_id() == a.case_id


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"\xff\xfe",
        b"[]",
        b'{"v":1}',
        b'{"v":1,"secret":"zz"}',
        b'{"v":2,"secret":"00"}',
        b'{"v":1,"secret":"000102030405060708090a0b0c0d0e0f"}',
    ],
    ids=["empty", "not-utf8", "list", "no-secret", "bad-hex", "v2", "other-case"],
)
def test_damaged_case_file_is_a_store_error(tmp_path: Path, content: bytes) -> None:
    home = ClientHome.open(tmp_path)
    case = home.create_case()
    (tmp_path / "cases" / f"{case.case_id}.case").write_bytes(content)
    with pytest.raises(StoreError):
        home.load_secret(case.case_id)


GOOD_RECEIPT = {
    "v": 1,
    "hub": "http://h",
    "entry_id": "0" * 32,
    "kind": "addition",
    "leaf_hash": "1" * 64,
    "withdraws": None,
    "log_index": 3,
    "tree_size": 4,
    "proof": ["2" * 64],
    "checkpoint": "x",
}


@pytest.mark.parametrize(
    "change",
    [
        {"v": 2},
        {"kind": "other"},
        {"entry_id": "A" * 32},
        {"leaf_hash": "1" * 63},
        {"log_index": -1},
        {"log_index": True},
        {"tree_size": 2**64},
        {"proof": "x"},
        {"proof": ["2" * 64] * 65},
        {"checkpoint": None},
        {"extra": 1},
        {"hub": ""},
    ],
    ids=lambda c: "-".join(f"{k}" for k in c),
)
def test_receipt_parser_refuses_bad_fields(change: dict[str, object]) -> None:
    decode_receipt(json.dumps(GOOD_RECEIPT).encode())
    with pytest.raises(MalformedError):
        decode_receipt(json.dumps({**GOOD_RECEIPT, **change}).encode())
    with pytest.raises(MalformedError):
        decode_receipt(b"\xff" + json.dumps(GOOD_RECEIPT).encode())


@pytest.mark.parametrize(
    "url,expected",
    [
        ("HTTP://Hub.Example.org/", "http://hub.example.org"),
        ("https://h:8443/base/", "https://h:8443/base"),
    ],
)
def test_hub_urls_have_one_spelling(url: str, expected: str) -> None:
    assert normalise_hub_url(url) == expected


@pytest.mark.parametrize("url", ["ftp://h", "h", "https://", "https://h/?q=1", "http://[::1"])
def test_bad_hub_urls_are_usage_errors(url: str) -> None:
    with pytest.raises(UsageError):
        normalise_hub_url(url)


# -- bundles -----------------------------------------------------------------------------------


def _bundle(n: int = 2, secret: CaseSecret | None = None) -> Bundle:
    secret = secret or CaseSecret(bytes(16))
    hashes = tuple({"algorithm": "md5", "hash": f"{i:032x}"} for i in range(n))
    return Bundle(
        seal_plan(secret, SubmissionPlan(hashes, ()), 1767225600, limits=SubmitLimits(max_hashes=1))
    )


def test_bundle_round_trip() -> None:
    bundle = _bundle()
    again = Bundle.decode(bundle.encode())
    assert again == bundle and again.hash_count == 2 and again.signed_at == 1767225600
    assert again.case_id == CaseSecret(bytes(16)).case_id()


def _bundle_cases() -> dict[str, bytes]:
    good = _bundle().encode()
    other = _bundle(1, CaseSecret(bytes([1]) * 16)).envelopes[0]
    mixed = Bundle([*_bundle().envelopes, other]).encode()
    return {
        "empty": b"",
        "magic": b"XXXXXXXX" + good[8:],
        "version": good[:8] + b"\x02" + good[9:],
        "zero-count": good[:9] + b"\x00\x00\x00\x00",
        "huge-count": good[:9] + b"\xff\xff\xff\xff" + good[13:],
        "truncated": good[:-1],
        "trailing": good + b"\x00",
        "length-beyond": good[:13] + b"\xff\xff\xff\xff" + good[17:],
        "bad-signature": good[:-1] + bytes([good[-1] ^ 1]),
        "mixed-cases": mixed,
        "not-an-envelope": good[:13] + b"\x00\x00\x00\x04abcd",
    }


@pytest.mark.parametrize("name", list(_bundle_cases()))
def test_bundle_bad_input(name: str) -> None:
    with pytest.raises(BundleFormatError):
        Bundle.decode(_bundle_cases()[name])


# -- a scripted hub behind httpx.MockTransport: retries and pinning ----------------------------


class ScriptedHub:
    """Answers /v1/log and /checkpoint like a real hub of size 0, and scripted submissions."""

    def __init__(self, answers: list[httpx.Response | Exception], seed: int = 0) -> None:
        self.key = signer_key_from_seed("test/hub", bytes([seed]) * 32)
        self.answers = answers
        self.bodies: list[bytes] = []

    def log(self) -> httpx.Response:
        from crypto.checkpoint import Checkpoint, sign_checkpoint
        from crypto.merkle import root_from_leaf_hashes

        note = sign_checkpoint(Checkpoint("test/hub", 0, root_from_leaf_hashes([])), [self.key])
        return httpx.Response(
            200,
            json={
                "origin": "test/hub",
                "verifier_key": self.key.verifier.encode(),
                "size": 0,
                "root_hash": "",
                "checkpoint": note.decode(),
            },
        )

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/log":
            return self.log()
        if request.url.path == "/v1/status":
            return httpx.Response(404, json={"error": {"code": "unknown_case", "message": "-"}})
        if request.url.path == "/v1/case-puzzle":  # a hub from before the case puzzle
            return httpx.Response(404, json={"error": {"code": "not_found", "message": "-"}})
        self.bodies.append(request.content)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def _accepted(case_id: str) -> httpx.Response:
    entries = [{"entry_id": "a" * 32, "leaf_hash": "b" * 64}]
    return httpx.Response(
        202, json={"v": 1, "case_id": case_id, "status": "pending", "entries": entries}
    )


def _session(home: ClientHome, hub: ScriptedHub, sleeps: list[float]) -> HubSession:
    return HubSession(
        "https://hub.test", home, transport=httpx.MockTransport(hub), sleep=sleeps.append
    )


PLAN = SubmissionPlan(({"algorithm": "md5", "hash": "c" * 32},), ())


def test_429_and_500_are_retried_with_the_same_bytes(tmp_path: Path) -> None:
    home = ClientHome.open(tmp_path)
    case = home.create_case()
    hub = ScriptedHub(
        [
            httpx.Response(429, headers={"Retry-After": "7"}, json={}),
            httpx.Response(500, json={"error": {"code": "internal_error", "message": "x"}}),
            httpx.ConnectError("refused"),
            _accepted(case.case_id),
        ]
    )
    sleeps: list[float] = []
    with _session(home, hub, sleeps) as session:
        result = session.submit(case.case_id, PLAN)
    assert [e.entry_id for e in result.entries] == ["a" * 32]
    assert len(set(hub.bodies)) == 1 and len(hub.bodies) == 4  # idempotent: same envelope
    assert sleeps[0] == 7  # Retry-After honoured
    receipts = home.receipts(case.case_id)
    assert [r.entry_id for r in receipts] == ["a" * 32] and not receipts[0].included


def test_a_hub_that_keeps_failing_is_unreachable_and_nothing_is_recorded(tmp_path: Path) -> None:
    home = ClientHome.open(tmp_path)
    case = home.create_case()
    hub = ScriptedHub([httpx.Response(503, json={})] * 5)
    with pytest.raises(HubUnreachableError) as info, _session(home, hub, []) as session:
        session.submit(case.case_id, PLAN)
    assert info.value.exit_code == 3
    assert home.receipts(case.case_id) == []
    too_long = ScriptedHub([httpx.Response(429, headers={"Retry-After": "3600"}, json={})])
    with pytest.raises(HubUnreachableError), _session(home, too_long, []) as session:
        session.submit(case.case_id, PLAN)


def test_refusals_carry_the_hub_code(tmp_path: Path) -> None:
    home = ClientHome.open(tmp_path)
    case = home.create_case()
    body = {"error": {"code": "low_quality", "message": "hashes[0].quality\x1b[2J too low"}}
    hub = ScriptedHub([httpx.Response(422, json=body)])
    with pytest.raises(HubRefusedError) as info, _session(home, hub, []) as session:
        session.submit(case.case_id, PLAN)
    assert info.value.code == "low_quality" and "\x1b" not in str(info.value)
    garbage = ScriptedHub([httpx.Response(202, content=b"not json")])
    with pytest.raises(HubProtocolError), _session(home, garbage, []) as session:
        session.submit(case.case_id, PLAN)


def test_a_changed_hub_key_is_refused(tmp_path: Path) -> None:
    home = ClientHome.open(tmp_path)
    with _session(home, ScriptedHub([]), []) as session:
        session.connect()
    with pytest.raises(HubKeyChangedError), _session(home, ScriptedHub([], 1), []) as session:
        session.connect()


# -- against a real hub --------------------------------------------------------------------------


def test_library_flow_against_a_real_hub(client_hub: HubProcess, tmp_path: Path) -> None:
    home = ClientHome.open(tmp_path / "home")
    case = home.create_case()
    plan = plan_submission(hash_paths([str(p) for p in make_photos(tmp_path / "p", ("coffee",))]))
    progress: list[tuple[int, int]] = []
    with HubSession(client_hub.url, home) as hub:
        info = hub.connect()
        assert home.pin(hub.url) is not None and info.origin
        sent = hub.submit(case.case_id, plan)
        assert len(sent.entries) == 3
        summary = hub.wait_for_inclusion(
            case.case_id, timeout=30, progress=lambda d, t: progress.append((d, t))
        )
        assert (summary.included, summary.pending) == (3, 0) and progress[-1] == (3, 3)
        status = hub.status(case.case_id)
        assert {e.entry_id for e in status.entries} == {e.entry_id for e in sent.entries}
        assert all(e.hash is not None for e in status.entries)
        outcome = hub.withdraw(case.case_id, [sent.entries[0].entry_id.upper()])
        assert outcome.withdrawn[0][0] == sent.entries[0].entry_id
        with pytest.raises(UsageError):
            hub.withdraw(case.case_id, ["nope"])
        hub.wait_for_inclusion(case.case_id, timeout=30)
    checks = verify_receipts(home, case.case_id)
    assert len(checks) == 4 and all(c.ok for c in checks)
    # Offline verification uses the pinned key: a different pin fails every receipt.
    pins = json.loads((home.root / "hubs.json").read_text())
    url = next(iter(pins["hubs"]))
    other = generate_signer_key(pins["hubs"][url]["origin"]).verifier.encode()
    pins["hubs"][url]["verifier_key"] = other
    (home.root / "hubs.json").write_text(json.dumps(pins))
    assert {c.state for c in verify_receipts(home, case.case_id)} == {"failed"}


def test_withdrawn_case_refuses_more(own_hub: Callable[..., HubProcess], tmp_path: Path) -> None:
    hub_process = own_hub()
    home = ClientHome.open(tmp_path / "home")
    case = home.create_case()
    with HubSession(hub_process.url, home) as hub:
        hub.submit(case.case_id, PLAN)
        assert hub.withdraw(case.case_id, None).case_withdrawn
        with pytest.raises(HubRefusedError) as info:
            hub.submit(case.case_id, SubmissionPlan(({"algorithm": "md5", "hash": "d" * 32},), ()))
        assert info.value.code == "case_withdrawn"
        assert hub.status(case.case_id).withdrawn
