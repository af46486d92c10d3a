"""Refusals and idempotency over HTTP: each case asserts status and stable error code."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hubkit import (
    Case,
    HubFactory,
    HubProcess,
    post,
    random_md5,
    random_pdq,
    random_vpdq,
    settled_size,
    wait_for_size,
)

from crypto import envelope


def _code(response: Any) -> str:
    assert response.headers["content-type"].startswith("application/json")
    return str(response.json()["error"]["code"])


def test_retry_is_idempotent_and_nonce_reuse_is_refused(hub: HubProcess) -> None:
    case = Case()
    nonce = envelope.new_nonce()
    raw = case.submission([random_pdq(), random_md5()], nonce=nonce)
    with hub.client() as client:
        first = post(client, "/v1/submissions", raw)
        second = post(client, "/v1/submissions", raw)
        assert first.status_code == second.status_code == 202
        assert first.content == second.content
        other = case.submission([random_pdq()], nonce=nonce)
        r = post(client, "/v1/submissions", other)
        assert (r.status_code, _code(r)) == (409, "replayed_nonce")
        assert settled_size(client) == 2  # nothing stored twice, nothing pending
        # The same bytes after integration still get the first answer.
        assert post(client, "/v1/submissions", raw).content == first.content


def _bad_signature(case: Case) -> bytes:
    raw = bytearray(case.submission([random_pdq()]))
    raw[-1] ^= 1
    return bytes(raw)


def _other_signer(case: Case) -> bytes:
    """A body signed by one key under another key's public key."""
    good = case.submission([random_pdq()])
    other = Case().submission([random_pdq()])
    return good[:-64] + other[-64:]


REFUSALS: list[tuple[str, str, Any, int, str]] = [
    # (id, path, builder(case) -> bytes, status, code)
    (
        # Submissions may be submission_max_age (30 days) old: offline bundles.
        "stale-past",
        "/v1/submissions",
        lambda c: c.submission([random_pdq()], timestamp=int(time.time()) - 31 * 86400),
        401,
        "stale_timestamp",
    ),
    (
        "stale-past-status",
        "/v1/status",
        lambda c: c.status_query(timestamp=int(time.time()) - 1000),
        401,
        "stale_timestamp",
    ),
    (
        "stale-future",
        "/v1/submissions",
        lambda c: c.submission([random_pdq()], timestamp=int(time.time()) + 1000),
        401,
        "stale_timestamp",
    ),
    ("bad-signature", "/v1/submissions", _bad_signature, 401, "invalid_signature"),
    ("swapped-signature", "/v1/submissions", _other_signer, 401, "invalid_signature"),
    (
        "wrong-purpose",
        "/v1/submissions",
        lambda c: c.seal("withdrawal", {"v": 1, "all": True}),
        400,
        "wrong_purpose",
    ),
    (
        "status-as-submission",
        "/v1/status",
        lambda c: c.submission([random_pdq()]),
        400,
        "wrong_purpose",
    ),
    ("not-an-envelope", "/v1/submissions", lambda c: b"hello", 400, "malformed_envelope"),
    ("empty", "/v1/submissions", lambda c: b"", 400, "malformed_envelope"),
    (
        "low-quality",
        "/v1/submissions",
        lambda c: c.submission([random_pdq(), random_pdq(quality=49)]),
        422,
        "low_quality",
    ),
    (
        "vpdq-low-quality",
        "/v1/submissions",
        lambda c: c.submission([random_vpdq(quality=10)]),
        422,
        "low_quality",
    ),
    (
        "uppercase-hex",
        "/v1/submissions",
        lambda c: c.submission([{"algorithm": "md5", "hash": "A" * 32}]),
        400,
        "invalid_hash",
    ),
    (
        "short-pdq",
        "/v1/submissions",
        lambda c: c.submission([{"algorithm": "pdq", "hash": "ab" * 31, "quality": 90}]),
        400,
        "invalid_hash",
    ),
    (
        "unknown-field",
        "/v1/submissions",
        lambda c: c.submission([random_pdq() | {"name": "holiday.jpg"}]),
        400,
        "invalid_body",
    ),
    (
        "unknown-algorithm",
        "/v1/submissions",
        lambda c: c.submission([{"algorithm": "photodna", "hash": "00"}]),
        400,
        "invalid_hash",
    ),
    (
        "bool-quality",
        "/v1/submissions",
        lambda c: c.submission([{"algorithm": "pdq", "hash": "ab" * 32, "quality": True}]),
        400,
        "invalid_hash",
    ),
    (
        "duplicate",
        "/v1/submissions",
        lambda c: c.submission([{"algorithm": "md5", "hash": "ab" * 16}] * 2),
        422,
        "duplicate_hash",
    ),
    (
        "not-json",
        "/v1/submissions",
        lambda c: c.seal("submission", b"\xff\xfe{"),
        400,
        "invalid_body",
    ),
    (
        "duplicate-key",
        "/v1/submissions",
        lambda c: c.seal("submission", b'{"v":1,"v":1,"hashes":[]}'),
        400,
        "invalid_body",
    ),
    (
        "version-2",
        "/v1/submissions",
        lambda c: c.seal("submission", {"v": 2, "hashes": [random_pdq()]}),
        400,
        "unsupported_version",
    ),
    ("empty-list", "/v1/submissions", lambda c: c.submission([]), 400, "invalid_body"),
    (
        "too-many-hashes",
        "/v1/submissions",
        lambda c: c.submission([random_md5() for _ in range(11)]),
        422,
        "too_many_hashes",
    ),
    (
        "too-many-frames",
        "/v1/submissions",
        lambda c: c.submission([random_vpdq(frames=6)]),
        422,
        "too_many_frames",
    ),
    ("status-unknown-case", "/v1/status", lambda c: c.status_query(), 404, "unknown_case"),
    (
        "withdraw-unknown-case",
        "/v1/withdrawals",
        lambda c: c.withdrawal(["0" * 32]),
        404,
        "unknown_entry",
    ),
    (
        "withdraw-bad-id",
        "/v1/withdrawals",
        lambda c: c.withdrawal(["xyz"]),
        400,
        "invalid_body",
    ),
]


@pytest.fixture(scope="module")
def limited_hub(
    module_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[HubProcess]:
    """One hub per module and database for the two refusal tests (neither stores anything)."""
    limits = ("max_hashes_per_request=10", "max_vpdq_frames=5", "ip_burst=1000", "case_burst=1000")
    fast = ("batch_interval=0.05", "lock_retry_seconds=0.2")  # as hub_factory's
    args = [x for setting in (*fast, *limits) for x in ("--set", setting)]
    data = tmp_path_factory.mktemp("limited") / "data"
    hub = HubProcess(data, module_database_url, args).start()
    yield hub
    hub.kill()


def test_refusals(limited_hub: HubProcess) -> None:
    """One hub, every refusal (one hub start per database keeps the suite fast)."""
    failures = []
    with limited_hub.client() as client:
        for name, path, build, status, code in REFUSALS:
            r = post(client, path, build(Case()))
            if (r.status_code, _code(r)) != (status, code):
                failures.append((name, r.status_code, r.text))
        assert not failures
        # None of them stored anything (not even pending).
        assert settled_size(client) == 0


def test_transport_refusals(limited_hub: HubProcess) -> None:
    case = Case()
    with limited_hub.client() as client:
        r = client.post("/v1/submissions", content=case.submission([random_pdq()]))
        assert (r.status_code, _code(r)) == (415, "unsupported_media_type")
        huge = b"\x00" * ((1 << 20) + 4096)
        r = post(client, "/v1/submissions", huge)
        assert (r.status_code, _code(r)) == (413, "body_too_large")

        def chunks() -> Any:
            for _ in range(300):
                yield b"\x00" * 4096

        r = client.post(
            "/v1/submissions",
            content=chunks(),
            headers={"Content-Type": "application/vnd.ncii.envelope"},
        )
        assert (r.status_code, _code(r)) == (413, "body_too_large")
        r = client.get("/v1/submissions")
        assert (r.status_code, _code(r)) == (405, "method_not_allowed")
        spec = client.get("/openapi.json").json()
        body = spec["paths"]["/v1/submissions"]["post"]["requestBody"]["content"]
        assert body["application/vnd.ncii.envelope"]["schema"]["format"] == "binary"
        assert client.get("/docs").status_code == 404  # no third-party code (test_hub_edge.py)
        rng = random.Random(4)
        for path in ("/v1/submissions", "/v1/status", "/v1/withdrawals"):
            for size in (1, 6, 150, 400, 5000):
                junk = bytes(rng.randrange(256) for _ in range(size))
                for raw in (junk, b"NCEV\x01" + junk):
                    r = post(client, path, raw)
                    assert r.status_code in (400, 401, 413), (path, size, r.status_code)
        r = client.get("/nothing")
        assert (r.status_code, _code(r)) == (404, "not_found")
        for path in ("/tile/0/000", "/tile/../../log.key", "/tile/0/x000/001", "/tile/0/1"):
            r = client.get(path)
            assert (r.status_code, _code(r)) == (404, "not_found"), path
        r = client.get("/v1/proof/inclusion", params={"index": 0})
        assert (r.status_code, _code(r)) == (400, "invalid_request")
        r = client.get("/v1/proof/inclusion", params={"index": -1})
        assert (r.status_code, _code(r)) == (400, "invalid_request")
        r = client.get("/v1/proof/consistency", params={"first": 0, "second": 5})
        assert (r.status_code, _code(r)) == (400, "size_beyond_log")
        r = client.get("/v1/proof/inclusion", params={"leaf_hash": "00" * 32})
        assert r.status_code in (400, 404)


def test_deny_list(hub_factory: HubFactory, tmp_path: Path) -> None:
    benign = "ab" * 32
    deny = tmp_path / "deny.txt"
    deny.write_text(f"# blank image\n{benign.upper()}\n\n{'cd' * 16}\n")
    hub = hub_factory("--deny-list", str(deny))
    with hub.client() as client:
        for item in (
            {"algorithm": "pdq", "hash": benign, "quality": 100},
            {"algorithm": "sha256", "hash": benign},
            {"algorithm": "md5", "hash": "cd" * 16},
        ):
            r = post(client, "/v1/submissions", Case().submission([random_pdq(), item]))
            assert (r.status_code, _code(r)) == (422, "denied_hash")
        assert post(client, "/v1/submissions", Case().submission([random_pdq()])).status_code == 202


def test_rate_limits(hub_factory: HubFactory) -> None:
    hub = hub_factory("--set", "case_rate=0.01", "--set", "case_burst=2")
    case = Case()
    with hub.client() as client:
        for _ in range(2):
            assert (
                post(client, "/v1/submissions", case.submission([random_pdq()])).status_code == 202
            )
        r = post(client, "/v1/submissions", case.submission([random_pdq()]))
        assert (r.status_code, _code(r)) == (429, "rate_limited")
        assert int(r.headers["Retry-After"]) >= 1
        # Another case is not affected.
        assert post(client, "/v1/submissions", Case().submission([random_pdq()])).status_code == 202
    hub.terminate()
    hub2 = hub_factory("--set", "ip_rate=0.01", "--set", "ip_burst=3", data_dir=hub.data_dir)
    with hub2.client() as client:
        codes = [post(client, "/v1/status", Case().status_query()).status_code for _ in range(4)]
        assert codes == [404, 404, 404, 429]


def test_case_limit(hub_factory: HubFactory) -> None:
    hub = hub_factory("--set", "max_entries_per_case=3")
    case = Case()
    with hub.client() as client:
        assert (
            post(client, "/v1/submissions", case.submission([random_pdq()] * 1)).status_code == 202
        )
        r = post(client, "/v1/submissions", case.submission([random_pdq() for _ in range(3)]))
        assert (r.status_code, _code(r)) == (422, "case_limit")
        ok = post(client, "/v1/submissions", case.submission([random_pdq() for _ in range(2)]))
        assert ok.status_code == 202


def test_sigterm_is_clean_and_restart_keeps_log(hub: HubProcess) -> None:
    with hub.client() as client:
        post(client, "/v1/submissions", Case().submission([random_pdq() for _ in range(5)]))
        wait_for_size(client, 5)
        before = client.get("/checkpoint").content
    assert hub.terminate() == 0  # a graceful stop (README "Exit codes")
    assert "Application shutdown complete" in hub.output()
    hub.start()
    with hub.client() as client:
        assert client.get("/checkpoint").content == before
        keys = client.get("/v1/log").json()["verifier_key"]
        post(client, "/v1/submissions", Case().submission([random_pdq()]))
    out = hub.output()
    assert keys in out  # serve prints the verifier key
    assert "POST /v1" not in out and "GET /" not in out  # no access log (client addresses)
