"""The defence counters are for operators, not callers (specs/partner-defences.md section 6).

The attack: a pipeline caller holding the match token reads /stats and /metrics, sends a query
that a defence suppresses (a flood-quarantined entry, a false-positive mark, an allow-listed
hash), reads them again, and the suppressed counters tell it that a stored entry was near its
query although the answer said "no match". Against a real ``ncii-partner serve`` over HTTP:
with the match token those routes now answer 403 before and after, identically; the operator
token (``--operator-token-file``) reads them, and shows that the counters did move (what the
caller would have learnt). Then the defaults without an operator token."""

from __future__ import annotations

import os
import random
import secrets
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from matchkit import JSON_HEADERS, MatchService, StoreWriter, pdq
from prometheus_client.parser import text_string_to_metric_families

from partner_sdk.cli import main
from partner_sdk.errors import UsageError
from partner_sdk.service import ServiceSettings, create_app

ROUTES = ("/stats", "/metrics")


def near(digest: bytes, seed: int, flips: int = 6) -> bytes:
    out = bytearray(digest)
    for bit in random.Random(seed).sample(range(256), flips):
        out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


def token_file(path: Path, mode: int = 0o600) -> tuple[Path, str]:
    token = secrets.token_urlsafe(32)
    path.write_text(token + "\n")
    os.chmod(path, mode)
    return path, token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def store(tmp_path: Path) -> tuple[Path, list[bytes]]:
    directory = tmp_path / "partner"
    writer = StoreWriter(directory)
    rng = random.Random(13)  # fixed values: the flood estimate is the same on every run
    values = [rng.randbytes(32) for _ in range(3)]
    writer.append([pdq(v) for v in values])
    writer.close()
    return directory, values


def suppressed(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "ncii_match_suppressed_total":
                out[sample.labels["reason"]] = sample.value
    return out


def test_match_token_cannot_watch_the_defence_counters(tmp_path: Path) -> None:
    directory, (a, b, c) = store(tmp_path)
    match_file, match_token = token_file(tmp_path / "match.token")
    ops_file, ops_token = token_file(tmp_path / "ops.token")
    # The partner marked entry 1 a false positive and allow-listed a hash near entry 2.
    assert main(["review", "false-positive", "1", "--dir", str(directory)]) == 0
    assert main(["allow", "add", f"pdq:{near(c, 9).hex()}", "--dir", str(directory)]) == 0
    args = ("--token-file", str(match_file), "--operator-token-file", str(ops_file))
    service = MatchService(directory, (*args, "--flood-limit", "100", "--flood-window", "3600"))
    service.start(headers=bearer(match_token))
    caller = {**JSON_HEADERS, **bearer(match_token)}
    try:
        with service.client(headers=caller) as client:

            def peek() -> list[tuple[int, str]]:
                """What the caller sees of the operator routes."""
                return [(r.status_code, r.text) for r in map(client.get, ROUTES)]

            def ops() -> dict[str, float]:
                r = client.get("/metrics", headers=bearer(ops_token))
                assert r.status_code == 200, r.text
                assert client.get("/stats", headers=bearer(ops_token)).status_code == 200
                return suppressed(r.text)

            seen_before = peek()
            for status, text in seen_before:
                assert status == 403 and '"operator_only"' in text, text
                assert "suppressed" not in text and "defences" not in text
            counters_before = ops()

            # The attack's queries: each is near a stored entry and each answer is empty.
            flood = [{"algorithm": "pdq", "hash": near(a, s).hex()} for s in range(300)]
            r = client.post("/v1/match/hashes", json={"hashes": flood})
            assert r.status_code == 200 and all(x["matches"] == [] for x in r.json()["results"])
            for value in (a, b, near(c, 9)):
                r = client.post("/v1/match/hash", json={"algorithm": "pdq", "hash": value.hex()})
                assert r.status_code == 200 and r.json()["matches"] == [], r.text

            # The caller learns nothing: the same refusal, byte for byte, as before.
            assert peek() == seen_before
            # What it would have learnt: the operator sees each reason's counter move.
            counters_after = ops()
            for reason in ("quarantine", "false_positive", "allow_list"):
                assert counters_after[reason] > counters_before.get(reason, 0.0), reason

            # Health and readiness need no token and say only alive/ready.
            for headers in ({}, caller):
                r = client.get("/readyz", headers=headers)
                assert r.status_code == 200 and r.json() == {"v": 1, "ready": True, "problems": []}
                assert client.get("/healthz", headers=headers).json() == {
                    "v": 1,
                    "status": "alive",
                }
            r = client.get("/readyz", headers=bearer(ops_token))
            assert r.json()["index_cursor"] == 3  # the operator sees the details
            # The operator token is not a match token, nor a wrong token an operator one.
            r = client.post("/v1/match/hash", json={"algorithm": "pdq", "hash": a.hex()},
                            headers=bearer(ops_token))  # fmt: skip
            assert r.status_code == 401
            for route in ROUTES:
                r = client.get(route, headers=bearer(ops_token + "x"))
                assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    finally:
        service.stop()
    log = service.output()
    assert match_token not in log and ops_token not in log


def test_operator_token_file_is_checked_at_start(tmp_path: Path) -> None:
    directory, _ = store(tmp_path)
    match_file, token = token_file(tmp_path / "match.token")
    loose, loose_token = token_file(tmp_path / "loose.token", 0o644)
    code, out = MatchService(directory, ("--operator-token-file", str(loose))).run_to_exit()
    assert code == 2 and "0600" in out and loose_token not in out
    same = tmp_path / "same.token"
    same.write_text(token + "\n")
    os.chmod(same, 0o600)
    args = ("--token-file", str(match_file), "--operator-token-file", str(same))
    code, out = MatchService(directory, args).run_to_exit()
    assert code == 2 and "different token" in out and token not in out


def test_without_operator_token(tmp_path: Path) -> None:
    """Only a match token: the operator routes are off. No token at all: they answer direct
    loopback callers only (no forwarding header, a loopback Host)."""
    directory, _ = store(tmp_path)
    match_file, token = token_file(tmp_path / "match.token")
    service = MatchService(directory, ("--token-file", str(match_file))).start(
        headers=bearer(token)
    )
    try:
        with service.client() as client:
            for route in ROUTES:
                assert client.get(route).status_code == 401
                r = client.get(route, headers=bearer(token))
                assert r.status_code == 403 and r.json()["error"] == "operator_token_required"
                assert "--operator-token-file" in r.json()["message"]
    finally:
        service.stop()

    service = MatchService(directory, ("--allowed-host", "match.internal")).start()
    try:
        with service.client() as client:
            for route in ROUTES:
                assert client.get(route).status_code == 200
                for extra in (
                    {"X-Forwarded-For": "203.0.113.9"},
                    {"Forwarded": "for=203.0.113.9"},
                    {"X-Real-IP": "203.0.113.9"},
                    {"X-Forwarded-Host": "localhost"},
                    {"Via": "1.1 proxy"},
                    {"Host": f"match.internal:{service.port}"},  # allowed, not loopback
                ):
                    r = client.get(route, headers=extra)
                    assert r.status_code == 403 and r.json()["error"] == "operator_only", extra
                    assert "suppressed" not in r.text
    finally:
        service.stop()


def test_non_loopback_peer_refused_without_operator_token(tmp_path: Path) -> None:
    directory, _ = store(tmp_path)
    for peer, want in ((("192.0.2.7", 40000), 403), (("127.0.0.1", 40000), 200)):
        app = create_app(ServiceSettings(directory))
        with TestClient(app, base_url="http://localhost:8765", client=peer) as c:  # type: ignore[arg-type]
            assert c.get("/stats").status_code == want
            assert c.get("/metrics").status_code == want
            ready = c.get("/readyz").json()
            assert ("index_cursor" in ready) is (want == 200)


def test_serve_help_names_the_operator_token() -> None:
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
        main(["serve", "--help"])
    assert "--operator-token-file" in out.getvalue() and "/metrics" in out.getvalue()


def test_settings_keep_the_operator_token_apart(tmp_path: Path) -> None:
    settings = ServiceSettings(tmp_path, token=b"m" * 32, operator_token=b"o" * 32)
    assert "o" * 32 not in repr(settings) and "m" * 32 not in repr(settings)
    with pytest.raises(UsageError, match="different token"):
        ServiceSettings(tmp_path, token=b"s" * 32, operator_token=b"s" * 32)
