"""The page's receipts (web/receipts.js, issue 15 step 5) against a real hub, on SQLite and
PostgreSQL: entries submitted over HTTP, the log's checkpoint published, then web/receipts.js
in Node (its own fetch, over real HTTP) verifies the checkpoint with the log key and proves every
entry from the hub's tiles. Through a small tampering proxy: a checkpoint signed by another key
is ``bad_signature``, one signed by the log's own key for another origin is ``wrong_log``, a
tile altered in transit is ``bad_proof``; an earlier checkpoint the log does not extend is
``inconsistent_log`` (consistency computed from tiles). Each proof the page made is also
checked by the Python client's receipt verifier, so both sides agree on what a receipt is."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "hub"))

from hubkit import Case, HubProcess, mixed_hashes, post, verifier_of, wait_for_size
from serverkit import POLL

from client.receipts import HubPin, Receipt, verify_receipt
from crypto.checkpoint import Checkpoint, open_checkpoint, sign_checkpoint
from crypto.keys import generate_signer_key, parse_signer_key

DRIVER = Path(__file__).resolve().parent / "receipts_node.mjs"
ENTRIES = 300  # one full level-0 tile, a partial one and a level-1 tile


Tamper = Callable[[str, bytes], bytes]


class _Proxy(BaseHTTPRequestHandler):
    """GET-only pass-through to the hub; ``tamper(path, body)`` may change a 200 answer."""

    upstream: str
    tamper: Tamper

    def do_GET(self) -> None:
        answer = httpx.get(self.upstream + self.path, timeout=30.0)
        body = answer.content
        if answer.status_code == 200:
            body = type(self).tamper(self.path, body)
        self.send_response(answer.status_code)
        self.send_header("Content-Type", answer.headers.get("content-type", "text/plain"))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def proxy(hub: HubProcess) -> Iterator[Callable[[Tamper], str]]:
    """``proxy(tamper)`` starts a tampering proxy in front of the hub and returns its base."""
    servers: list[ThreadingHTTPServer] = []

    def start(tamper: Tamper) -> str:
        handler = type("Handler", (_Proxy,), {"upstream": hub.url, "tamper": staticmethod(tamper)})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, kwargs=POLL, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def hub(tmp_path: Path, database_url: str) -> Iterator[HubProcess]:
    fast = ("--set", "batch_interval=0.05", "--set", "lock_retry_seconds=0.2")
    proc = HubProcess(tmp_path / "data", database_url, fast).start()
    yield proc
    proc.kill()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One Chromium for the module's browser test (each run in a fresh page and context)."""
    from webkit import chromium

    with chromium() as b:
        yield b


def run_receipts(
    base: str, log_key: str, entries: list[dict[str, Any]], previous: str | None = None
) -> dict[str, Any]:
    request = {"base": base, "logKey": log_key, "entries": entries, "previous": previous}
    out = subprocess.run(
        ["node", str(DRIVER)],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def status_entries(client: httpx.Client, case: Case) -> list[dict[str, Any]]:
    answer = post(client, "/v1/status", case.status_query())
    assert answer.status_code == 200, answer.text
    entries: list[dict[str, Any]] = answer.json()["entries"]
    return entries


def flip(target: str) -> Tamper:
    def tamper(path: str, body: bytes) -> bytes:
        if path != target:
            return body
        changed = bytearray(body)
        changed[-1] ^= 0x01
        return bytes(changed)

    return tamper


def test_every_entry_is_in_the_log_and_tampering_is_caught(
    hub: HubProcess, proxy: Callable[[Tamper], str], tmp_path: Path
) -> None:
    with hub.client() as client:
        key, origin = verifier_of(client)
        log_key = key.encode()
        case = Case()
        # Two submissions, so entries of one case sit in more than one sequencer round; the
        # checkpoint between them is the page's "earlier" one, which the log must extend.
        answer = post(client, "/v1/submissions", case.submission(mixed_hashes(ENTRIES - 40)))
        assert answer.status_code == 202, answer.text
        wait_for_size(client, ENTRIES - 40)
        earlier = client.get("/checkpoint").text
        answer = post(client, "/v1/submissions", case.submission(mixed_hashes(40)))
        assert answer.status_code == 202, answer.text
        wait_for_size(client, ENTRIES)
        entries = status_entries(client, case)
        assert len(entries) == ENTRIES
        assert {e["state"] for e in entries} == {"integrated"}
        note = client.get("/checkpoint").content

    # 1. Straight from the hub: every entry in the public log, from tiles only.
    got = run_receipts(hub.url + "/", log_key, entries)
    assert [r["state"] for r in got["results"]] == ["in-log"] * ENTRIES, got["results"][:3]
    assert [r["entry_id"] for r in got["results"]] == [e["entry_id"] for e in entries]
    requests = got["requests"]
    assert requests[0] == "/checkpoint"
    assert all(p.startswith("/tile/") for p in requests[1:]), requests
    assert len(requests) == len(set(requests)), "a tile was fetched twice"
    # The Python client's verifier accepts every receipt the page made.
    pin = HubPin(hub.url, origin, log_key)
    for entry, result in zip(entries, got["results"], strict=True):
        r = result["receipt"]
        assert r["logIndex"] == entry["log_index"] and r["treeSize"] >= ENTRIES
        verify_receipt(
            Receipt(
                hub.url, entry["entry_id"], "addition", entry["leaf_hash"], None,
                r["logIndex"], r["treeSize"], tuple(r["proof"]), r["checkpoint"],
            ),
            pin,
        )  # fmt: skip

    # The log extends the checkpoint seen between the two submissions (consistency from tiles);
    # the same-size checkpoint of another history, signed by the log's own key, is a fork.
    got = run_receipts(hub.url + "/", log_key, entries, previous=earlier)
    assert [r["state"] for r in got["results"]] == ["in-log"] * ENTRIES
    assert all(p == "/checkpoint" or p.startswith("/tile/") for p in got["requests"])
    early = open_checkpoint(earlier.encode(), [key], origin=origin).checkpoint
    log_signer = parse_signer_key((hub.data_dir / "log.key").read_bytes().strip())
    fork = Checkpoint(origin, early.size, bytes(32))
    forked = sign_checkpoint(fork, [log_signer]).decode()
    got = run_receipts(hub.url + "/", log_key, entries[:5], previous=forked)
    assert {(r["state"], r["problem"]) for r in got["results"]} == {("failed", "inconsistent_log")}

    # 2. A checkpoint signed by another key under the log's name: bad_signature.
    size = open_checkpoint(note, [key], origin=origin).checkpoint
    impostor = generate_signer_key(origin)
    forged = sign_checkpoint(Checkpoint(origin, size.size, size.root_hash), [impostor])
    got = run_receipts(proxy(lambda p, b: forged if p == "/checkpoint" else b), log_key, entries)
    assert {(r["state"], r["problem"]) for r in got["results"]} == {("failed", "bad_signature")}
    assert got["requests"] == ["/checkpoint"]

    # 3. The log's own key, signing a checkpoint of another origin: wrong_log.
    other = sign_checkpoint(Checkpoint(origin + "-other", size.size, size.root_hash), [log_signer])
    got = run_receipts(proxy(lambda p, b: other if p == "/checkpoint" else b), log_key, entries)
    assert {(r["state"], r["problem"]) for r in got["results"]} == {("failed", "wrong_log")}

    # 4. One byte of a tile altered in transit: bad_proof for the entries that need it.
    for target in ("/tile/0/000", f"/tile/0/001.p/{size.size - 256}", "/tile/1/000.p/1"):
        got = run_receipts(proxy(flip(target)), log_key, entries)
        problems = {(r["state"], r["problem"]) for r in got["results"]}
        assert ("failed", "bad_proof") in problems, (target, problems)
        assert problems <= {("failed", "bad_proof"), ("in-log", None)}, (target, problems)
        assert target in got["requests"]

    # 5. An altered entry bundle is caught too (the bundle must match its tile).
    got = run_receipts(proxy(flip("/tile/entries/000")), log_key, entries[:1])
    assert (got["results"][0]["state"], got["results"][0]["problem"]) == ("failed", "bad_proof")


def test_pending_and_beyond_the_checkpoint(hub: HubProcess) -> None:
    """Entries not yet in a checkpoint are pending, never failed, and cost no request."""
    with hub.client() as client:
        key, _ = verifier_of(client)
        case = Case()
        answer = post(client, "/v1/submissions", case.submission(mixed_hashes(3)))
        assert answer.status_code == 202
        wait_for_size(client, 3)
        entries = status_entries(client, case)
    pending = [{**e, "state": "pending", "log_index": None, "leaf_hash": None} for e in entries]
    got = run_receipts(hub.url + "/", key.encode(), pending)
    assert [r["state"] for r in got["results"]] == ["pending"] * 3
    assert got["requests"] == []
    # A status answer from a newer checkpoint than the one the page fetches: still pending.
    ahead = [{**entries[0], "log_index": 10_000}]
    got = run_receipts(hub.url + "/", key.encode(), ahead)
    assert (got["results"][0]["state"], got["results"][0]["problem"]) == ("pending", None)


def test_receipts_in_chromium_on_the_served_page(hub: HubProcess, browser: Browser) -> None:
    """The modules as the hub serves them (content-addressed, under its Content-Security-Policy),
    in Debian's Chromium: base "/" is relative to the page, the log key comes from the meta
    element, every request goes to the hub, and a tile altered in transit is bad_proof."""
    with hub.client() as client:
        key, _ = verifier_of(client)
        case = Case()
        assert post(client, "/v1/submissions", case.submission(mixed_hashes(20))).status_code == 202
        wait_for_size(client, 20)
        entries = status_entries(client, case)
        index = client.get("/").text
    match = re.search(r'"(/s/[^/"]+/)[^"]+\.js"', index)
    assert match, "the served page names no content-addressed script"
    script = """async ([prefix, key, entries]) => {
        const m = await import(prefix + "receipts.js");
        const meta = document.createElement("meta");
        meta.name = "ncii-log-key";
        meta.content = key;
        document.head.append(meta);
        const got = await m.receiptsFor({ base: "/", logKey: m.logKeyFromPage(), entries });
        return got.map((r) => [r.state, r.problem]);
    }"""

    def run(tamper: str | None) -> tuple[list[list[Any]], list[str], list[str]]:
        requests: list[str] = []
        page = browser.new_page()
        page.set_default_timeout(60_000)

        def route(r: Any) -> None:
            url = r.request.url
            requests.append(url)
            if not url.startswith(hub.url):
                r.abort()
            elif tamper is not None and url == hub.url + tamper:
                response = r.fetch()
                body = bytearray(response.body())
                body[0] ^= 0x01
                r.fulfill(response=response, body=bytes(body))
            else:
                r.continue_()

        page.route("**/*", route)
        page.add_init_script(
            "window.__csp = []; document.addEventListener('securitypolicyviolation',"
            " (e) => window.__csp.push(e.violatedDirective));"
        )
        page.goto(hub.url + "/")
        got = page.evaluate(script, [match.group(1), key.encode(), entries])
        violations = page.evaluate("window.__csp")
        page.close()
        return got, requests, violations

    got, requests, violations = run(None)
    assert got == [["in-log", None]] * 20
    assert violations == []
    assert all(u.startswith(hub.url + "/") for u in requests), requests
    fetched = [u[len(hub.url) :] for u in requests]
    assert "/checkpoint" in fetched and "/tile/0/000.p/20" in fetched
    assert not any(p.startswith("/v1/") for p in fetched)  # no proof endpoint, no leaf named

    got, _, _ = run("/tile/0/000.p/20")
    assert got == [["failed", "bad_proof"]] * 20


def test_withdrawal_tombstones_get_receipts_too(hub: HubProcess) -> None:
    """After a withdrawal the status answer lists the tombstone with its own log position and
    leaf hash: the page proves it like any entry, and the withdrawn addition stays provable."""
    with hub.client() as client:
        key, _ = verifier_of(client)
        case = Case()
        assert post(client, "/v1/submissions", case.submission(mixed_hashes(3))).status_code == 202
        wait_for_size(client, 3)
        first = status_entries(client, case)[0]["entry_id"]
        answer = post(client, "/v1/withdrawals", case.withdrawal([first]))
        assert answer.status_code == 202, answer.text
        wait_for_size(client, 4)
        entries = status_entries(client, case)
    kinds = [(e["kind"], e.get("withdrawn")) for e in entries]
    assert sorted(kinds, key=str) == sorted(
        [("addition", True), ("addition", False), ("addition", False), ("tombstone", None)], key=str
    )
    got = run_receipts(hub.url + "/", key.encode(), entries)
    assert [r["state"] for r in got["results"]] == ["in-log"] * 4
