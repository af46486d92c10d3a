"""Attacks on ``ncii-partner serve`` over real HTTP against a real process (issue 12).

A web page an employee opens (DNS rebinding, simple cross-origin POSTs), a caller that probes
the oracle to rebuild the stored hashes, decompression bombs, hostile JSON and idle
connections: each is refused, and none of them learns a stored hash value.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from matchkit import (
    JSON_HEADERS,
    MATCH_HEADERS,
    RAW_HEADERS,
    MatchService,
    StoreWriter,
    encode,
    pdq,
    photo,
)
from PIL import Image

from hashing import digest_bytes, hash_image
from partner_sdk.batch import Addition

Factory = Callable[..., MatchService]


@pytest.fixture
def stored(tmp_path: Path) -> dict[str, bytes]:
    """A store with two photos' PDQ hashes, 30 random ones and an MD5; name -> digest."""
    writer = StoreWriter(tmp_path / "partner")
    digests = {
        "astronaut": hash_image(encode(photo("astronaut"))).digest,
        "camera": hash_image(encode(photo("camera"))).digest,
    }
    digests.update({f"random{i}": secrets.token_bytes(32) for i in range(30)})
    writer.append([pdq(d) for d in digests.values()])
    blob = digest_bytes(b"a known file")
    writer.append([Addition("md5", blob.md5, None)])
    writer.close()
    return digests


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Factory]:
    started: list[MatchService] = []

    def make(*args: str, start: bool = True, **kw: Any) -> MatchService:
        service = MatchService(tmp_path / "partner", args, **kw)
        started.append(service)
        return service.start() if start else service

    yield make
    for service in started:
        service.stop()


def pdq_query(digest: bytes) -> dict[str, Any]:
    return {"algorithm": "pdq", "hash": digest.hex()}


# -- DNS rebinding: the Host allow-list -----------------------------------------------------


def test_foreign_host_names_are_refused(serve: Factory, stored: dict[str, bytes]) -> None:
    service = serve()
    port = service.port
    query = pdq_query(stored["astronaut"])
    with service.client() as c:
        for host in (
            "evil.example",
            f"evil.example:{port}",
            f"localhost.evil.example:{port}",
            "127.0.0.1.evil.example",
            f"[::2]:{port}",
            "",
            f"localhost:{port}:1",
        ):
            for method, path in (("GET", "/health"), ("GET", "/stats"), ("POST", "/v1/match/hash")):
                r = c.request(method, path, json=query, headers={**JSON_HEADERS, "Host": host})
                assert r.status_code in (421, 400), (host, path, r.status_code)
                assert "matches" not in r.text and "cursor" not in r.text
        for host in (
            f"localhost:{port}",
            f"127.0.0.1:{port}",
            f"[::1]:{port}",
            "localhost",
            f"LOCALHOST:{port}",
        ):
            r = c.post("/v1/match/hash", json=query, headers={**JSON_HEADERS, "Host": host})
            assert r.status_code == 200, (host, r.text)
            assert r.json()["matches"][0]["distance"] == 0

    extended = serve("--allowed-host", "match.internal", "--allowed-host", "10.1.2.3")
    with extended.client() as c:
        for host in (
            "match.internal",
            f"match.internal:{extended.port}",
            "10.1.2.3:80",
            f"localhost:{extended.port}",
        ):
            r = c.post("/v1/match/hash", json=query, headers={**JSON_HEADERS, "Host": host})
            assert r.status_code == 200, (host, r.text)
        r = c.get("/health", headers={"Host": "evil.example"})
        assert r.status_code == 421


# -- cross-origin simple requests: content types and the custom header -----------------------


def test_simple_cross_origin_requests_are_refused(serve: Factory, stored: dict[str, bytes]) -> None:
    service = serve()
    body = json.dumps(pdq_query(stored["astronaut"])).encode()
    upload = encode(photo("astronaut"), "JPEG", quality=80)
    with service.client() as c:
        # what a page can send without a preflight: text/plain, forms, no type at all
        for ctype in (
            "text/plain",
            "text/plain;charset=UTF-8",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
        ):
            for path, data in (("/v1/match/hash", body), ("/v1/match/file", upload)):
                r = c.post(path, content=data, headers={**MATCH_HEADERS, "Content-Type": ctype})
                assert r.status_code == 415, (path, ctype, r.status_code)
        r = c.post("/v1/match/file", content=upload, headers=MATCH_HEADERS)  # no Content-Type
        assert r.status_code == 415
        r = c.post("/v1/match/hash", content=body, headers=RAW_HEADERS)  # raw bytes to a JSON route
        assert r.status_code == 415
        # the right type but no custom header (a page cannot add one without a preflight)
        for path, data, ctype in (
            ("/v1/match/hash", body, "application/json"),
            ("/v1/match/hashes", b'{"hashes":[' + body + b"]}", "application/json"),
            ("/v1/match/file", upload, "application/octet-stream"),
        ):
            r = c.post(path, content=data, headers={"Content-Type": ctype})
            assert r.status_code == 403, (path, r.status_code)
            assert r.json()["error"] == "missing_match_header"
            r = c.post(path, content=data, headers={"Content-Type": ctype, "X-NCII-Match": "0"})
            assert r.status_code == 403
        # a preflight never gets permissive CORS headers
        r = c.options(
            "/v1/match/hash",
            headers={
                "Origin": "http://evil.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "x-ncii-match, content-type",
            },
        )
        assert r.status_code >= 400
        assert not [k for k in r.headers if k.lower().startswith("access-control-")]
        # and the real thing works
        r = c.post("/v1/match/hash", content=body, headers=JSON_HEADERS)
        assert r.status_code == 200 and r.json()["matches"]
        assert not [k for k in r.headers if k.lower().startswith("access-control-")]
        r = c.post("/v1/match/file", content=upload, headers=RAW_HEADERS)
        assert r.status_code == 200 and r.json()["matches"]
        r = c.post(
            "/v1/match/file",
            content=upload,
            headers={**MATCH_HEADERS, "Content-Type": "image/jpeg"},
        )
        assert r.status_code == 200 and r.json()["matches"]


# -- bearer token ----------------------------------------------------------------------------


def write_token(path: Path, token: str, mode: int) -> Path:
    path.write_text(token + "\n")
    os.chmod(path, mode)
    return path


def test_bearer_token(serve: Factory, stored: dict[str, bytes], tmp_path: Path) -> None:
    token = secrets.token_urlsafe(32)
    loose = write_token(tmp_path / "loose.token", token, 0o644)
    code, out = serve("--token-file", str(loose), start=False).run_to_exit()
    assert code == 2 and "0600" in out and token not in out
    short = write_token(tmp_path / "short.token", "abc", 0o600)
    code, out = serve("--token-file", str(short), start=False).run_to_exit()
    assert code == 2 and "short" in out

    # --allow-remote without a token: refused at start
    code, out = serve("--allow-remote", start=False).run_to_exit()
    assert code == 2 and "--token-file" in out
    code, out = serve("--host", "0.0.0.0", "--allow-remote", start=False).run_to_exit()
    assert code == 2 and "--token-file" in out

    good = write_token(tmp_path / "match.token", token, 0o600)
    auth = {"Authorization": f"Bearer {token}"}
    service = MatchService(tmp_path / "partner", ("--allow-remote", "--token-file", str(good)))
    service.start(headers=auth)
    try:
        query = pdq_query(stored["astronaut"])
        with service.client() as c:
            for headers in (
                {},
                {"Authorization": "Bearer"},
                {"Authorization": "Bearer x"},
                {"Authorization": f"Bearer {token[:-1]}"},
                {"Authorization": f"Bearer {token}x"},
                {"Authorization": f"Basic {token}"},
                {"Authorization": f"bearer  {token} extra"},
            ):
                for method, path in (
                    ("GET", "/health"),
                    ("GET", "/stats"),
                    ("POST", "/v1/match/hash"),
                ):
                    r = c.request(method, path, json=query, headers={**JSON_HEADERS, **headers})
                    assert r.status_code == 401, (headers, path, r.status_code)
                    assert r.headers["www-authenticate"].startswith("Bearer")
                    assert "matches" not in r.text and token not in r.text
            r = c.post("/v1/match/hash", json=query, headers={**JSON_HEADERS, **auth})
            assert r.status_code == 200 and r.json()["matches"][0]["distance"] == 0
            # the Host check still applies to a caller that has the token
            r = c.get("/health", headers={**auth, "Host": "evil.example"})
            assert r.status_code == 421
    finally:
        service.stop()
    assert token not in service.output()


# -- the 257-probe reconstruction attack -------------------------------------------------------


def probe_attack(c: httpx.Client, threshold: int) -> tuple[dict[int, bytes], list[str]]:
    """The attack of issue 12: the zero hash and each single-bit hash at ``threshold``;
    d(e_i, h) - d(0, h) is -1 where h has bit i set, +1 where not. Returns what it rebuilt
    per log index, and every answer body."""
    probes = [bytes(32)] + [(1 << (255 - i)).to_bytes(32, "big") for i in range(256)]
    r = c.post(
        f"/v1/match/hashes?threshold={threshold}",
        json={"hashes": [pdq_query(p) for p in probes]},
        headers=JSON_HEADERS,
    )
    bodies = [r.text]
    if r.status_code != 200:
        return {}, bodies
    results = r.json()["results"]
    base = {m["log_index"]: m["distance"] for m in results[0]["matches"]}
    rebuilt: dict[int, bytes] = {}
    for key, d0 in base.items():
        bits = 0
        for i in range(256):
            found = [m["distance"] for m in results[1 + i]["matches"] if m["log_index"] == key]
            if found and found[0] < d0:
                bits |= 1 << (255 - i)
        rebuilt[key] = bits.to_bytes(32, "big")
    return rebuilt, bodies


def test_probing_cannot_rebuild_stored_hashes(serve: Factory, stored: dict[str, bytes]) -> None:
    hexes = {d.hex() for d in stored.values()}
    for args, allowed in (((), 31), (("--max-threshold", "64"), 64)):
        service = serve(*args)
        with service.client() as c:
            for too_high in (allowed + 1, 256, 1000):
                for path in ("/v1/match/hash", "/v1/match/hashes"):
                    body = pdq_query(bytes(32))
                    if path.endswith("hashes"):
                        body = {"hashes": [body]}
                    r = c.post(f"{path}?threshold={too_high}", json=body, headers=JSON_HEADERS)
                    assert r.status_code == 400 and r.json()["error"] == "bad_threshold"
            rebuilt, bodies = probe_attack(c, allowed)
            assert not set(rebuilt.values()) & set(stored.values())
            assert rebuilt == {}, "a probe near zero or a single bit matched a PDQ hash"
            # the same attack at a threshold the server refuses gets nothing
            rebuilt_high, more = probe_attack(c, 256)
            assert rebuilt_high == {}
            for text in bodies + more:
                assert not any(h in text for h in hexes)
            # answers name the entry, never its value
            r = c.post("/v1/match/hash", json=pdq_query(stored["camera"]), headers=JSON_HEADERS)
            (match,) = r.json()["matches"]
            assert set(match) == {"log_index", "algorithm", "distance", "quality"}
            assert not any(h in r.text for h in hexes)
            stats = c.get("/stats").json()
            assert stats["max_threshold"] == allowed and not any(h in str(stats) for h in hexes)
        service.stop()

    for args in (
        ("--max-threshold", "65"),
        ("--max-threshold", "-1"),
        ("--threshold", "40"),
        ("--max-threshold", "20", "--threshold", "21"),
    ):
        code, out = serve(*args, start=False).run_to_exit()
        assert code == 2, (args, out)


def test_residual_risk_a_near_copy_rebuilds_its_hash_from_yes_no_answers(
    serve: Factory, stored: dict[str, bytes]
) -> None:
    """Not a defence but the documented limit (specs/matching.md 6.3): whoever holds a near
    copy of a stored picture rebuilds that stored hash exactly from yes/no answers alone, so
    hiding ``distance`` would not protect it; only the cap and the access checks do."""
    service = serve()
    near = hash_image(encode(photo("astronaut"), "JPEG", quality=50)).digest  # an edited copy
    key = list(stored).index("astronaut")  # its log index

    def flip(digest: bytes, bit: int) -> bytes:
        return (int.from_bytes(digest, "big") ^ (1 << (255 - bit))).to_bytes(32, "big")

    with service.client() as c:

        def hits(probes: list[bytes]) -> list[bool]:
            r = c.post(
                "/v1/match/hashes",
                json={"hashes": [pdq_query(p) for p in probes]},
                headers=JSON_HEADERS,
            )
            return [any(m["log_index"] == key for m in x["matches"]) for x in r.json()["results"]]

        assert hits([near]) == [True]
        point, requests = near, 1
        for bit in range(256):  # walk until one more flip leaves the ball: then d = 31 exactly
            requests += 1
            if not hits([flip(point, bit)])[0]:
                break
            point = flip(point, bit)
        answers = hits([flip(point, bit) for bit in range(256)])  # yes: that bit differs
        rebuilt = point
        for bit, differs in enumerate(answers):
            if differs:
                rebuilt = flip(rebuilt, bit)
    assert rebuilt == stored["astronaut"] and requests + 1 < 300


# -- resource limits: decoded pixels, concurrency ---------------------------------------------


def pixel_bomb(width: int, height: int) -> bytes:
    """A flat PNG that declares width x height pixels and compresses to almost nothing."""
    return encode(Image.new("L", (width, height)), "PNG", optimize=True)


@pytest.fixture(scope="module")
def bomb() -> bytes:
    return pixel_bomb(11000, 11000)


def post_many(
    url: str, bodies: list[bytes], path: str = "/v1/match/file"
) -> list[tuple[int, float, dict[str, Any]]]:
    """POST the bodies at once; (status, seconds from sending to the answer, JSON) each.
    One client made beforehand, so the times are the server's, not httpx's set-up."""
    with httpx.Client(base_url=url, timeout=120) as client:

        def one(body: bytes) -> tuple[int, float, dict[str, Any]]:
            started = time.monotonic()
            r = client.post(path, content=body, headers=RAW_HEADERS)
            return r.status_code, time.monotonic() - started, r.json()

        with ThreadPoolExecutor(len(bodies)) as pool:
            return list(pool.map(one, bodies))


def test_decompression_bombs_are_refused_before_decoding(
    serve: Factory, stored: dict[str, bytes], bomb: bytes
) -> None:
    assert len(bomb) < 400_000
    service = serve()
    post_many(service.url, [encode(photo("camera"))])  # warm: Pillow loads its plugins once
    baseline = service.peak_rss_kib()
    answers = post_many(service.url, [bomb] * 4)
    for status, seconds, body in answers:
        assert status == 200, body
        assert body["error"].startswith("MediaTooLargeError"), body
        assert body["quality"] is None and body["matches"] == []
        assert seconds < 1.0, answers
    # the exact digests were still looked up: a bomb that is a known file still matches
    growth_mib = (service.peak_rss_kib() - baseline) / 1024
    assert growth_mib < 64, f"the server's peak memory grew by {growth_mib:.0f} MiB"

    # the per-image limit is configurable, and a smaller limit applies to a smaller picture
    strict = serve("--max-pixels", "1000000")
    (answer,) = post_many(strict.url, [pixel_bomb(1001, 1000)])
    assert answer[2]["error"].startswith("MediaTooLargeError")
    (answer,) = post_many(strict.url, [encode(photo("astronaut"))])  # 512x512
    assert "error" not in answer[2] and answer[2]["matches"]


def test_pixel_budget_and_concurrency_answer_503_fast(
    serve: Factory, stored: dict[str, bytes]
) -> None:
    # each picture fits the per-image limit, but only one fits the total budget at a time
    big = pixel_bomb(4000, 4000)
    service = serve("--max-pixels", "16000000", "--pixel-budget", "20000000", "--busy-wait", "0")
    baseline = service.peak_rss_kib()
    answers = post_many(service.url, [big] * 4)
    statuses = sorted(a[0] for a in answers)
    assert 200 in statuses and 503 in statuses, answers
    for status, seconds, body in answers:
        if status == 503:  # at once (the bound allows for a loaded 2-core machine)
            assert body["error"] == "busy" and seconds < 2.0, answers
        else:
            assert "error" not in body, body
    growth_mib = (service.peak_rss_kib() - baseline) / 1024
    assert growth_mib < 16e6 * 20 / 2**20, f"peak grew {growth_mib:.0f} MiB for 4 x 16 MP"

    # a bounded number of matching requests at once; the excess is not queued forever
    service = serve("--max-concurrent", "1", "--busy-wait", "0")
    answers = post_many(service.url, [big] * 4)
    assert 503 in [a[0] for a in answers], answers
    assert all(a[1] < 2.0 for a in answers if a[0] == 503), answers
    r = httpx.post(service.url + "/v1/match/file", content=big, headers=RAW_HEADERS, timeout=60)
    assert r.status_code == 200  # the slot is free again


def test_settings_refuse_unbounded_limits(serve: Factory, stored: dict[str, bytes]) -> None:
    for args in (
        ("--max-pixels", "0"),
        ("--max-pixels", "200000000"),
        ("--max-pixels", "60000000", "--pixel-budget", "50000000"),
        ("--max-concurrent", "0"),
        ("--max-concurrent", "1000"),
        ("--busy-wait", "-1"),
        ("--header-timeout", "0"),
        ("--max-connections", "0"),
    ):
        code, out = serve(*args, start=False).run_to_exit()
        assert code == 2, (args, out)


# -- hostile JSON ------------------------------------------------------------------------------


def test_hostile_json_is_4xx_never_5xx(serve: Factory, stored: dict[str, bytes]) -> None:
    service = serve()
    frame = b'{"hash":"' + b"0" * 64 + b'","quality":90}'
    bad = {
        "deep-array": b"[" * 100_000 + b"]" * 100_000,
        "deep-object": b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
        "deep-in-hashes": b'{"hashes":[' + b"[" * 60_000 + b"]" * 60_000 + b"]}",
        "deep-unclosed": b"[" * 1_000_000,
        "brackets-in-strings": b'{"hashes":["' + b"[" * 100_000 + b'"]}',
        "invalid-utf8": b'{"algorithm":"pdq","hash":"\xff\xfe"}',
        "utf16": '{"algorithm":"md5"}'.encode("utf-16"),
        "lone-surrogate": b'{"algorithm":"pdq","hash":"\\ud800"}',
        "many-objects": b'{"hashes":[' + b",".join([b"{}"] * 2_000_000) + b"]}",
        "many-frames": b'{"algorithm":"vpdq","frames":[' + b",".join([frame] * 100_001) + b"]}",
        "huge-number": b'{"algorithm":"pdq","hash":"'
        + b"0" * 64
        + b'","quality":1'
        + b"0" * 5000
        + b"}",
        "nan": b'{"algorithm":"pdq","hash":"' + b"0" * 64 + b'","quality":NaN}',
        "float": b'{"algorithm":"pdq","hash":"' + b"0" * 64 + b'","quality":1e999}',
        "duplicate-keys": b'{"algorithm":"md5","algorithm":"pdq","hash":"' + b"0" * 64 + b'"}',
        "too-large": b'{"hashes":["' + b"a" * (9 << 20) + b'"]}',
        "empty": b"",
        "null": b"null",
    }
    with service.client() as c:
        for name, body in bad.items():
            for path in ("/v1/match/hash", "/v1/match/hashes"):
                r = c.post(path, content=body, headers=JSON_HEADERS)
                assert 400 <= r.status_code < 500, (name, path, r.status_code, r.text[:200])
                assert r.json()["v"] == 1 and "Traceback" not in r.text, name
        for query in ("threshold=-1", "threshold=1e3", "threshold=%00", "threshold=", "kind=x"):
            r = c.post(f"/v1/match/file?{query}", content=b"x", headers=RAW_HEADERS)
            assert r.status_code == 400, (query, r.text)
    for length in (b"-1", b"99999999999999999999", b"1, 2", b"0x10", b"\xd9\xa1"):
        status = raw_status(
            service.port,
            b"POST /v1/match/hash HTTP/1.1\r\nHost: localhost\r\nX-NCII-Match: 1\r\n"
            b"Content-Type: application/json\r\nContent-Length: " + length + b"\r\n\r\n{}",
        )
        assert 400 <= status < 500, (length, status)
    with service.client() as c:
        assert c.get("/health").status_code == 200
    assert "Traceback" not in service.output()


def raw_status(port: int, request: bytes) -> int:
    """Send bytes no HTTP client library would, return the status code answered."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(request)
        answer = b""
        while b"\r\n" not in answer and (chunk := s.recv(4096)):
            answer += chunk
    return int(answer.split(b" ", 2)[1])


# -- idle and slow connections -------------------------------------------------------------


def test_slow_headers_are_cut_and_connections_bounded(
    serve: Factory, stored: dict[str, bytes]
) -> None:
    service = serve("--header-timeout", "1", "--max-connections", "4")
    idle: list[socket.socket] = []
    try:
        for _ in range(4):
            s = socket.create_connection(("127.0.0.1", service.port), timeout=10)
            s.sendall(b"GET /health HTTP/1.1\r\nHost: localhost\r\n")  # never finished
            idle.append(s)
        time.sleep(0.2)
        r = httpx.get(service.url + "/health", timeout=10)
        assert r.status_code == 503, "a connection past --max-connections must be refused"
        started = time.monotonic()
        for s in idle:
            s.settimeout(10)
            while s.recv(1024):  # until the server closes it
                pass
        assert time.monotonic() - started < 5, "slow headers were not cut after 1 s"
        r = httpx.get(service.url + "/health", timeout=10)
        assert r.status_code == 200
    finally:
        for s in idle:
            s.close()


def test_slow_body_is_cut(serve: Factory, stored: dict[str, bytes]) -> None:
    service = serve("--body-timeout", "1")
    with socket.create_connection(("127.0.0.1", service.port), timeout=10) as s:
        s.sendall(
            b"POST /v1/match/file HTTP/1.1\r\nHost: localhost\r\nX-NCII-Match: 1\r\n"
            b"Content-Type: application/octet-stream\r\nContent-Length: 1000\r\n\r\nab"
        )
        started = time.monotonic()
        answer = b""
        while chunk := s.recv(4096):
            answer += chunk
            if b"\r\n\r\n" in answer:
                break
        assert answer.startswith(b"HTTP/1.1 408"), answer[:100]
        assert time.monotonic() - started < 5
