"""The hub's edge over real HTTP (issue 12 findings 6 and 7): hostile JSON on every POST
endpoint, single-use status queries, and no third-party code or origins in any answer.

Each test runs against a ``ncii-hub serve`` subprocess, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import re
import secrets
import time

import httpx
import nacl.signing
from hubkit import Case, HubFactory, HubProcess, mixed_hashes, post, wait_for_size

from crypto import envelope
from crypto.feed import generate_recipient_key, recipient_public_bytes
from hub.db.engine import make_engine
from hub.partners import PartnerKeys, PartnerRegistry

UNLIMITED = (
    "--set=ip_rate=100000",
    "--set=ip_burst=100000",
    "--set=case_rate=100000",
    "--set=case_burst=100000",
)
PURPOSES = {
    "/v1/submissions": "submission",
    "/v1/status": "status-query",
    "/v1/withdrawals": "withdrawal",
}
DEEP = b"[" * 100_000  # 100,000 levels, far below every body cap


def _post_paths(client: httpx.Client) -> list[str]:
    spec = client.get("/openapi.json").json()
    return sorted(p for p, ops in spec["paths"].items() if "post" in ops)


def _partner(hub: HubProcess) -> nacl.signing.SigningKey:
    """A partner registered with the hub (as ``ncii-hub partner add`` does); its request key."""
    key = nacl.signing.SigningKey.generate()
    engine = make_engine(hub.database_url)
    try:
        keys = PartnerKeys(
            "edge", bytes(key.verify_key), recipient_public_bytes(generate_recipient_key())
        )
        PartnerRegistry(engine).add("edge", keys, int(time.time()))
    finally:
        engine.dispose()
    return key


def _signed_post(
    client: httpx.Client, path: str, body: bytes, case: Case, partner: nacl.signing.SigningKey
) -> httpx.Response:
    """POST ``body`` to ``path`` correctly signed for that endpoint (envelope or partner)."""
    if path in PURPOSES:
        return post(client, path, case.seal(PURPOSES[path], body))
    sig = envelope.sign_partner_request(
        partner, "POST", path, body, int(time.time()), secrets.token_bytes(16)
    )
    return client.post(
        path,
        content=body,
        headers={"NCII-Signature": sig.to_header(), "Content-Type": "application/json"},
    )


def _assert_refused(response: httpx.Response, path: str, what: str) -> None:
    assert 400 <= response.status_code < 500, (path, what, response.status_code, response.text)
    error = response.json()["error"]
    assert re.fullmatch(r"[a-z][a-z0-9_]*", error["code"]), error


def test_hostile_json_on_every_post_endpoint_gets_4xx(hub_factory: HubFactory) -> None:
    hub = hub_factory(*UNLIMITED)
    case = Case()
    partner = _partner(hub)
    with hub.client() as client:
        assert post(client, "/v1/submissions", case.submission(mixed_hashes(2))).status_code == 202
        paths = _post_paths(client)
        assert set(PURPOSES) | {"/v1/feed/ack"} <= set(paths)
        bodies = {
            "deep": DEEP,
            "deep-in-object": b'{"v":1,"position":' + DEEP,
            "deep-closed": b"[" * 2000 + b"]" * 2000,  # valid JSON within the 4 KiB ack cap
            "deep-object": b'{"a":' * 600 + b"1" + b"}" * 600,
            "deep-after-string": b'["\\"[",' + b"[" * 3000,
            "huge": b"[" + b"1," * 600_000 + b"1]",  # 1.2 MB: above every JSON cap
            "huge-number": b'{"v":1,"position":' + b"9" * 5000 + b"}",
            "huge-string": b'{"v":"' + b"a" * 900_000 + b'"}',
        }
        for path in paths:
            for what, body in bodies.items():
                response = _signed_post(client, path, body, case, partner)
                _assert_refused(response, path, what)
        assert client.get("/checkpoint").status_code == 200
    out = hub.output()
    assert "Traceback" not in out, out[-4000:]
    assert "RecursionError" not in out and "unexpected" not in out, out[-4000:]


def test_status_query_is_single_use(hub_factory: HubFactory) -> None:
    """A captured status query replayed within its window must not return the hash values
    again: the second copy of the same signed bytes is refused (409 replayed_query)."""
    hub = hub_factory(*UNLIMITED)
    case = Case()
    with hub.client() as client:
        r = post(client, "/v1/submissions", case.submission(mixed_hashes(3)))
        assert r.status_code == 202, r.text
        wait_for_size(client, 3)
        query = case.status_query()
        first = post(client, "/v1/status", query)
        assert first.status_code == 200, first.text
        assert all("hash" in e for e in first.json()["entries"])
        replayed = post(client, "/v1/status", query)
        assert replayed.status_code == 409, replayed.text
        assert replayed.json()["error"]["code"] == "replayed_query"
        assert "hash" not in replayed.text and case.case_id not in replayed.text
        # the same nonce under different bytes is refused as well, and a fresh query works
        nonce = secrets.token_bytes(16)
        assert post(client, "/v1/status", case.status_query(nonce=nonce)).status_code == 200
        other = post(
            client, "/v1/status", case.status_query(nonce=nonce, timestamp=1 + int(time.time()))
        )
        assert other.status_code == 409 and "hash" not in other.text
        assert post(client, "/v1/status", case.status_query()).status_code == 200
        # a refused query (unknown case) does not use up its nonce: nothing was answered
        stranger = Case()
        unknown = stranger.status_query()
        assert post(client, "/v1/status", unknown).status_code == 404
        assert post(client, "/v1/status", unknown).status_code == 404


def test_no_third_party_origins(hub: HubProcess) -> None:
    """The hub serves no third-party code: no /docs or /redoc pages (they load scripts and
    fonts from CDNs), and no answer names another origin."""
    # Not inside base64 (signatures, root hashes, the page's integrity values can hold "//").
    origin = re.compile(rb"(?<![A-Za-z0-9+/=])(?:[a-z]+:)?//[^\s\"'<>/]*")
    with hub.client() as client:
        for path in ("/docs", "/redoc", "/docs/oauth2-redirect"):
            assert client.get(path).status_code == 404, path
        spec = client.get("/openapi.json")
        assert spec.status_code == 200
        paths = [p for p, ops in spec.json()["paths"].items() if "get" in ops and "{" not in p]
        assert {"/checkpoint", "/v1/log"} <= set(paths)
        for path in ("/openapi.json", "/", *paths):
            response = client.get(path)
            # Signature lines of signed notes (/checkpoint, /page/manifest) are base64.
            text = re.sub(rb"(?m)^\xe2\x80\x94 .*$", b"", response.content)
            others = {m for m in origin.findall(text) if m != hub.url.encode()}
            assert not others, (path, others)
            if path != "/":  # the page: its scripts are the hub's own (test_page_serving.py)
                assert b"<script" not in response.content, path
