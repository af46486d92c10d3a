"""ncii-partner serve: endpoints, reload after the store changes (no restart), size caps,
strict parsing of hashes, loopback by default. In-process (small caps that the command line
does not expose); the attacks run against a real process in test_match_service_attacks.py."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from matchkit import JSON_HEADERS, RAW_HEADERS, StoreWriter, encode, pdq, photo

from hashing import digest_bytes, hash_image
from partner_sdk.batch import Addition, Tombstone
from partner_sdk.errors import UsageError
from partner_sdk.service import ServiceSettings, create_app


def local(app: object) -> TestClient:
    """A client that names an allowed Host and sends the service's custom header."""
    # a loopback peer: without --operator-token-file /stats answers only those
    return TestClient(  # type: ignore[arg-type]
        app, base_url="http://localhost:8765", headers=JSON_HEADERS, client=("127.0.0.1", 50000)
    )


def wait_cursor(client: TestClient, cursor: int) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while True:
        stats: dict[str, Any] = client.get("/stats").json()
        if stats["cursor"] == cursor:
            return stats
        assert time.monotonic() < deadline, "the service did not reload"
        time.sleep(0.02)


def test_endpoints_reload_and_caps(tmp_path: Path) -> None:
    writer = StoreWriter(tmp_path)
    astronaut = hash_image(encode(photo("astronaut")))
    camera = hash_image(encode(photo("camera")))
    blob = digest_bytes(b"some file")
    (a,) = writer.append([pdq(astronaut.digest)])
    settings = ServiceSettings(
        tmp_path, poll_seconds=0.02, max_file_bytes=2_000_000, max_json_bytes=20_000, max_batch=50
    )
    with local(create_app(settings)) as client:
        assert client.get("/health").json()["status"] == "ok"
        stats = client.get("/stats").json()
        assert stats["pdq"] == 1 and stats["cursor"] == 1 and stats["build_seconds"] >= 0

        upload = encode(photo("astronaut"), "JPEG", quality=50)
        r = client.post("/v1/match/file", content=upload, headers=RAW_HEADERS)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["kind"] == "image" and body["quality"] >= 50
        assert [(x["log_index"], x["algorithm"]) for x in body["matches"]] == [(a, "pdq")]
        assert 0 <= body["matches"][0]["distance"] <= 31 and body["matches"][0]["quality"] == 90
        assert client.post("/v1/match/file?kind=image", content=upload, headers=RAW_HEADERS).json()[
            "matches"
        ]
        assert (
            client.post("/v1/match/file?threshold=0", content=upload, headers=RAW_HEADERS).json()[
                "matches"
            ]
            == []
        )

        r = client.post("/v1/match/hash", json={"algorithm": "pdq", "hash": astronaut.hex()})
        assert r.json()["matches"][0]["distance"] == 0

        # sync adds and withdraws: the service follows without a restart
        (c, m) = writer.append([pdq(camera.digest), Addition("md5", blob.md5, None)])
        writer.append([Tombstone(a)])
        stats = wait_cursor(client, 4)
        assert stats["pdq"] == 1 and stats["md5"] == 1 and stats["refreshes"] >= 1
        batch = {
            "hashes": [
                {"algorithm": "pdq", "hash": astronaut.hex(), "quality": 100},
                {"algorithm": "pdq", "hash": camera.hex()},
                {"algorithm": "md5", "hash": blob.md5_hex},
                {"algorithm": "sha256", "hash": blob.sha256_hex},
                {"algorithm": "vpdq", "frames": [{"quality": 90, "hash": camera.hex()}]},
            ]
        }
        got = client.post("/v1/match/hashes", json=batch).json()["results"]
        assert [[x["log_index"] for x in r["matches"]] for r in got] == [[], [c], [m], [], []]

        # caps: declared and streamed sizes, batch length
        r = client.post("/v1/match/file", content=b"x" * 2_000_001, headers=RAW_HEADERS)
        assert r.status_code == 413 and r.json()["error"] == "too_large"
        r = client.post("/v1/match/file", content=iter([b"x" * 1_000_000] * 3), headers=RAW_HEADERS)
        assert r.status_code == 413
        r = client.post("/v1/match/hashes", json={"hashes": [batch["hashes"][0]] * 51})
        assert r.status_code == 400
        r = client.post("/v1/match/hash", content=b"[" * 30_000)
        assert r.status_code == 413
    writer.close()


BAD = {
    "not-json": b"{",
    "not-utf8": b'{"algorithm":"pdq","hash":"\xff"}',
    "deep": b"[" * 5000 + b"]" * 5000,
    "list": b"[]",
    "unknown-algorithm": b'{"algorithm":"sha1","hash":"00"}',
    "uppercase-hex": b'{"algorithm":"pdq","hash":"' + b"A" * 64 + b'"}',
    "short-hash": b'{"algorithm":"md5","hash":"00"}',
    "extra-field": b'{"algorithm":"md5","hash":"' + b"0" * 32 + b'","x":1}',
    "quality-bool": b'{"algorithm":"pdq","hash":"' + b"0" * 64 + b'","quality":true}',
    "quality-101": b'{"algorithm":"pdq","hash":"' + b"0" * 64 + b'","quality":101}',
    "frames-empty": b'{"algorithm":"vpdq","frames":[]}',
    "frame-not-object": b'{"algorithm":"vpdq","frames":[1]}',
    "huge-number": b'{"algorithm":"pdq","hash":"'
    + b"0" * 64
    + b'","quality":'
    + b"9" * 5000
    + b"}",
}


@pytest.mark.parametrize("name", list(BAD))
def test_bad_hash_requests_are_400(tmp_path: Path, name: str) -> None:
    StoreWriter(tmp_path).close()
    with local(create_app(ServiceSettings(tmp_path))) as client:
        r = client.post("/v1/match/hash", content=BAD[name])
        assert r.status_code == 400, r.text
        assert r.json()["v"] == 1 and "0" * 32 not in r.text and "A" * 32 not in r.text
        r = client.post("/v1/match/hashes", content=b'{"hashes":[' + BAD[name] + b"]}")
        assert r.status_code == 400
        assert client.post("/v1/match/hash?threshold=300", content=b"{}").status_code == 400
        assert client.post("/v1/match/hash?threshold=32", content=b"{}").status_code == 400


def test_loopback_by_default(tmp_path: Path) -> None:
    for host in ("0.0.0.0", "192.168.1.5", "example.org"):
        with pytest.raises(UsageError):
            ServiceSettings(tmp_path, host=host)
    with pytest.raises(UsageError):  # remote callers need a token
        ServiceSettings(tmp_path, host="0.0.0.0", allow_remote=True)
    ServiceSettings(tmp_path, host="0.0.0.0", allow_remote=True, token=b"t" * 32)
    assert "t" * 32 not in repr(ServiceSettings(tmp_path, token=b"t" * 32))
    for host in ("127.0.0.1", "::1", "localhost", "127.0.0.2"):
        ServiceSettings(tmp_path, host=host)
