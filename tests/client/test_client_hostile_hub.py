"""Issue 12, the client's share: a lying hub, deep JSON, plain http, leaf lookups, the code.

- Finding 5: every answer from a hub is read as a stream with a per-endpoint cap; a hub sending
  1 GiB (with or without a Content-Length) is cut off at the cap with a typed error, and the
  client's memory stays small (measured with tracemalloc in process, and as the peak resident
  size of a real ``ncii-client`` process).
- Finding 6: deeply nested JSON from a hub or in the data folder is a clean, typed refusal.
- Finding 7: plain ``http://`` to a non-loopback hub is refused unless ``--insecure-http``;
  receipts are built from the public tiles, so no request ever names a leaf hash.

The lying hub is a real HTTP server (clientkit.RecordingProxy in front of a real hub) that
answers chosen paths itself.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from clientkit import FLOOD_BYTES, PROJECT_ROOT, RecordingProxy, run_cli, wait_until
from hubkit import HubProcess

from client.api import (
    Bundle,
    BundleFormatError,
    ClientHome,
    HubProtocolError,
    HubRefusedError,
    HubSession,
    StoreError,
    SubmissionPlan,
    UsageError,
)
from client.errors import HubAnswerTooLargeError, InsecureHubError
from client.hub import ANSWER_LIMITS
from client.receipts import decode_receipt
from crypto import envelope
from crypto.errors import MalformedError

NESTED = b"[" * 30_000 + b"]" * 30_000  # 60 kB: under every size cap, far too deep


def _plan() -> SubmissionPlan:
    return SubmissionPlan(({"algorithm": "md5", "hash": secrets.token_hex(16)},), ())


@pytest.fixture
def session_on(
    recording_proxy: RecordingProxy, tmp_path: Path
) -> Iterator[tuple[HubSession, str, RecordingProxy]]:
    home = ClientHome.open(tmp_path / "home")
    case_id = home.create_case().case_id
    with HubSession(recording_proxy.url, home, sleep=lambda s: None) as hub:
        yield hub, case_id, recording_proxy


def _integrated(hub: HubSession, case_id: str) -> None:
    hub.submit(case_id, _plan())
    wait_until(lambda: all(e.state == "integrated" for e in hub.status(case_id).entries))


# -- finding 5: answers are read with a cap ----------------------------------------------------

Action = Callable[[HubSession, str], object]
FLOODED: list[tuple[str, str, int, Action | None, Action]] = [
    # id, flooded path, status, setup, the action cut off
    ("log", "/v1/log", 200, None, lambda h, c: h.connect()),
    ("checkpoint", "/checkpoint", 200, lambda h, c: h.connect(), lambda h, c: h.checkpoint()),
    ("status", "/v1/status", 200, None, lambda h, c: h.status(c)),
    ("status-error", "/v1/status", 404, None, lambda h, c: h.status(c)),
    ("submission", "/v1/submissions", 202, None, lambda h, c: h.submit(c, _plan())),
    ("tile", "/tile/", 200, _integrated, lambda h, c: h.fetch_receipts(c)),
    ("withdrawal", "/v1/withdrawals", 202, _integrated, lambda h, c: h.withdraw(c, None)),
]


@pytest.mark.parametrize("flood", ["endless", "declared"])
@pytest.mark.parametrize(
    ("path", "status", "setup", "action"), [pytest.param(*r[1:], id=r[0]) for r in FLOODED]
)
def test_a_flooding_hub_is_cut_off_at_the_cap(
    session_on: tuple[HubSession, str, RecordingProxy],
    flood: str,
    path: str,
    status: int,
    setup: Action | None,
    action: Action,
) -> None:
    hub, case_id, proxy = session_on
    if setup is not None:
        setup(hub, case_id)
    ctl = proxy.control
    ctl.flood_path, ctl.flood, ctl.flood_status = path, flood, status
    tracemalloc.start()
    try:
        with pytest.raises(HubAnswerTooLargeError) as caught:
            action(hub, case_id)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # The largest cap is the status answer's (32 MiB); every other one is far smaller.
    assert peak < max(ANSWER_LIMITS.values()) + (8 << 20), peak
    assert ctl.flood_sent < FLOOD_BYTES // 8  # stopped early, not read to the end
    message = str(caught.value)
    assert caught.value.exit_code == 1 and "larger than" in message and "helpline" in message
    assert proxy.url in message


def test_compressed_or_oversized_in_memory_answers_are_refused(tmp_path: Path) -> None:
    """The client asks for no compression and refuses it (a gzip bomb's size is unknown until
    decompressed); a body handed over already in memory is still held to the cap."""
    asked: list[str] = []

    def gzip_hub(request: httpx.Request) -> httpx.Response:
        asked.append(request.headers["accept-encoding"])
        return httpx.Response(200, headers={"Content-Encoding": "gzip"}, content=b"\x1f\x8b")

    home = ClientHome.open(tmp_path)
    with HubSession("https://hub.test", home, transport=httpx.MockTransport(gzip_hub)) as hub:
        with pytest.raises(HubProtocolError) as caught:
            hub.connect()
    assert asked == ["identity"] and "compressed" in str(caught.value)
    big = b" " * (ANSWER_LIMITS["log"] + 1)
    oversized = httpx.MockTransport(lambda request: httpx.Response(200, content=big))
    with HubSession("https://hub.test", home, transport=oversized) as hub:
        with pytest.raises(HubAnswerTooLargeError):
            hub.connect()


# The child reports its own high-water mark (VmHWM of its own address space, after exec).
# ru_maxrss from wait4 is not usable: Linux carries the parent's peak across fork and exec,
# so under an xdist worker of 250 MB every child would seem to have used that much.
_REPORT_PEAK = (
    "import runpy, sys\n"
    "sys.argv = ['ncii-client', *sys.argv[1:]]\n"
    "try:\n"
    "    runpy.run_module('client.cli', run_name='__main__')\n"
    "finally:\n"
    "    hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM:')][0]\n"
    "    sys.stderr.write('\\nPEAK ' + hwm.split()[1] + '\\n')\n"
)


def _peak_rss_of(args: list[str]) -> tuple[int, int, str]:
    """Run ``ncii-client ARGS``; its exit code, peak resident size in bytes, and stderr."""
    env = {k: v for k, v in os.environ.items() if k != "NCII_CLIENT_HOME"}
    proc = subprocess.run(
        [sys.executable, "-c", _REPORT_PEAK, *args],
        cwd=PROJECT_ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        check=False,
    )
    err = proc.stderr.decode()
    head, _, peak = err.rpartition("\nPEAK ")
    return proc.returncode, int(peak.split()[0]) * 1024, head


@pytest.mark.parametrize(
    ("path", "command"),
    [("/v1/status", ["status"]), ("/v1/log", ["withdraw", "--all", "--yes"])],
)
def test_cli_memory_stays_small_against_a_1_gib_answer(
    recording_proxy: RecordingProxy, tmp_path: Path, path: str, command: list[str]
) -> None:
    home = tmp_path / "home"
    assert run_cli("case", "new", home=home).code == 0
    ctl = recording_proxy.control
    ctl.flood_path, ctl.flood = path, "endless"
    args = [*command, "--hub", recording_proxy.url, "--home", str(home)]
    code, peak, err = _peak_rss_of(args)
    assert code == 1, err  # the answer does not verify: row 1 of the exit-code table
    assert "Traceback" not in err and "larger than" in err
    # The interpreter with numpy, PIL and httpx loaded is ~90 MB; the 1 GiB never arrives.
    assert peak < 200 << 20, f"peak resident size {peak >> 20} MiB"
    assert ctl.flood_sent < FLOOD_BYTES // 8


# -- finding 6: deep JSON anywhere is a clean refusal ------------------------------------------

NESTING: list[tuple[str, str, int, Action | None, Action]] = [
    ("log", "/v1/log", 200, None, lambda h, c: h.connect()),
    ("status", "/v1/status", 200, None, lambda h, c: h.status(c)),
    ("error-body", "/v1/status", 404, None, lambda h, c: h.status(c)),
    ("submission", "/v1/submissions", 202, None, lambda h, c: h.submit(c, _plan())),
    ("withdrawal", "/v1/withdrawals", 202, _integrated, lambda h, c: h.withdraw(c, None)),
]


@pytest.mark.parametrize(
    ("path", "status", "setup", "action"), [pytest.param(*r[1:], id=r[0]) for r in NESTING]
)
def test_a_hub_answering_deeply_nested_json_is_a_protocol_error(
    session_on: tuple[HubSession, str, RecordingProxy],
    path: str,
    status: int,
    setup: Action | None,
    action: Action,
) -> None:
    hub, case_id, proxy = session_on
    if setup is not None:
        setup(hub, case_id)
    ctl = proxy.control
    ctl.flood_path, ctl.flood, ctl.flood_status = path, "nested", status
    # A readable answer that is nested too deep is a protocol error; a refusal whose body
    # cannot be read is still a refusal (its HTTP status is all that is known).
    expected = HubProtocolError if status < 400 else HubRefusedError
    with pytest.raises(expected) as caught:
        action(hub, case_id)
    assert caught.value.exit_code == (1 if status < 400 else 4)


def test_cli_against_a_hub_answering_nested_json_fails_cleanly(
    recording_proxy: RecordingProxy, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    assert run_cli("case", "new", home=home).code == 0
    ctl = recording_proxy.control
    ctl.flood_path, ctl.flood, ctl.nested_depth = "/v1/status", "nested", 100_000
    result = run_cli("status", "--hub", recording_proxy.url, home=home, subprocess_=True)
    assert result.code == 1, result.err
    assert "Traceback" not in result.err and "cannot read" in result.err


def test_nested_json_in_the_data_folder_is_a_store_error(tmp_path: Path) -> None:
    home = ClientHome.open(tmp_path / "home")
    case_id = home.create_case().case_id
    with pytest.raises(MalformedError):
        decode_receipt(NESTED)
    receipts = home.cases_dir / case_id / "receipts"
    receipts.mkdir(parents=True, exist_ok=True)
    (receipts / ("0" * 32 + ".json")).write_bytes(NESTED)
    with pytest.raises(StoreError):
        home.receipts(case_id)
    (home.root / "hubs.json").write_bytes(NESTED)
    with pytest.raises(StoreError):
        home.pin("http://127.0.0.1:1")
    (home.cases_dir / f"{case_id}.case").write_bytes(NESTED)
    with pytest.raises(StoreError):
        home.load_secret(case_id)


def test_a_bundle_whose_body_is_deeply_nested_is_refused(tmp_path: Path) -> None:
    home = ClientHome.open(tmp_path / "home")
    case_id = home.create_case().case_id
    key = home.load_secret(case_id).signing_key()
    raw = envelope.seal_now(key, envelope.Purpose.SUBMISSION, NESTED, 1_700_000_000)
    with pytest.raises(BundleFormatError):
        _ = Bundle([raw]).hash_count


def test_a_status_answer_that_lies_about_positions_is_caught(
    session_on: tuple[HubSession, str, RecordingProxy],
) -> None:
    hub, case_id, proxy = session_on
    hub.submit(case_id, SubmissionPlan(tuple(_plan().hashes + _plan().hashes), ()))
    wait_until(lambda: all(e.state == "integrated" for e in hub.status(case_id).entries))

    def swap(path: str, body: bytes) -> bytes:
        if path != "/v1/status":
            return body
        answer = json.loads(body)
        first, second = answer["entries"]
        first["log_index"], second["log_index"] = second["log_index"], first["log_index"]
        return json.dumps(answer).encode()

    proxy.control.rewrite = swap
    with pytest.raises(HubProtocolError) as caught:
        hub.fetch_receipts(case_id)
    assert "another one" in str(caught.value)
    assert not any(r.included for r in hub.home.receipts(case_id))
    proxy.control.rewrite = None
    assert hub.fetch_receipts(case_id).included == 2


def test_a_status_answer_lost_on_the_way_back_is_asked_for_again(
    session_on: tuple[HubSession, str, RecordingProxy],
) -> None:
    """Status queries are single-use at the hub (a replay gets 409 replayed_query), so a
    retry after a lost answer must be a freshly signed query, not the same bytes."""
    hub, case_id, proxy = session_on
    hub.submit(case_id, _plan())
    proxy.control.lose_answer_path = "/v1/status"
    before = len(proxy.control.seen)
    status = hub.status(case_id)
    assert status.case_id == case_id and len(status.entries) == len(_plan().hashes)
    queries = [s for s in proxy.control.seen[before:] if s.path == "/v1/status"]
    # the lost one, the transport's retry of the same bytes (409), then a fresh query
    assert len(queries) == 3
    assert queries[0].body == queries[1].body != queries[2].body


# -- finding 7: no plain http to other machines ------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000",
        "http://127.1.2.3",
        "http://localhost:8000",
        "http://LOCALHOST/prefix",
        "http://[::1]:8000",
        "https://hub.example.org",
        "https://192.0.2.7:8443",
    ],
)
def test_loopback_http_and_https_hubs_are_allowed(tmp_path: Path, url: str) -> None:
    with HubSession(url, ClientHome.open(tmp_path)):
        pass


@pytest.mark.parametrize(
    "url",
    [
        "http://hub.example.org",
        "http://192.0.2.2:8000",
        "http://10.0.0.1",
        "http://[2001:db8::1]:80",
        "http://0.0.0.0:8000",
        "http://localhost.example.org",
        "http://127.0.0.1.nip.io",
        "http://[::ffff:7f00:1]",
    ],
)
def test_plain_http_to_another_machine_is_refused(tmp_path: Path, url: str) -> None:
    with pytest.raises(InsecureHubError) as caught:
        HubSession(url, ClientHome.open(tmp_path))
    assert isinstance(caught.value, UsageError) and caught.value.exit_code == 2
    assert "--insecure-http" in str(caught.value) and "https://" in str(caught.value)
    with HubSession(url, ClientHome.open(tmp_path), allow_insecure_http=True):
        pass


def _own_address() -> str:
    """This machine's address on its default route (not loopback)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("198.51.100.1", 9))  # no packet is sent: this only picks a route
        address: str = probe.getsockname()[0]
    assert not address.startswith("127."), "this test needs a non-loopback interface"
    return address


@pytest.fixture
def lan_proxy(client_hub: HubProcess) -> Iterator[RecordingProxy]:
    proxy = RecordingProxy(client_hub.url, host="0.0.0.0")
    yield proxy
    proxy.close()


def test_cli_refuses_plain_http_to_another_machine_unless_insisted(
    lan_proxy: RecordingProxy, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    assert run_cli("case", "new", home=home).code == 0
    url = f"http://{_own_address()}:{lan_proxy.server_address[1]}"
    for command in [("status",), ("receipts", "fetch"), ("withdraw", "--all", "--yes")]:
        refused = run_cli(*command, "--hub", url, home=home)
        assert refused.code == 2, (command, refused.err)
        assert "--insecure-http" in refused.err and "https://" in refused.err
    photo = tmp_path / "p.bin"
    photo.write_bytes(b"not a picture")
    refused = run_cli("upload", str(photo), "--hub", url, home=home)
    assert refused.code == 2 and "--insecure-http" in refused.err
    assert lan_proxy.control.seen == []  # nothing left this computer
    insisted = run_cli("status", "--hub", url, "--insecure-http", home=home)
    assert insisted.code == 4 and "holds nothing for this case" in insisted.err
    assert any(s.path == "/v1/status" for s in lan_proxy.control.seen)
    for parser in ("submit", "status", "withdraw", "upload", "ui"):
        assert "--insecure-http" in run_cli(parser, "--help").out
    assert "--insecure-http" in run_cli("receipts", "fetch", "--help").out


# -- finding 7: receipts from tiles, no leaf hash in any request -------------------------------


def test_receipts_are_built_from_tiles_and_no_request_names_a_leaf(
    recording_proxy: RecordingProxy, photo_dir: Path, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    assert run_cli("case", "new", home=home).code == 0
    url = recording_proxy.url
    for step in [
        ("submit", str(photo_dir), "--hub", url, "--yes", "--wait"),
        ("withdraw", "--all", "--yes"),
    ]:
        result = run_cli(*step, home=home)
        assert result.code in (0, 1), (step, result.err)

    def fetched() -> bool:
        result = run_cli("receipts", "fetch", "--json", home=home)
        assert result.code == 0, result.err
        return bool(json.loads(result.out)["pending"] == 0)

    wait_until(fetched, timeout=30)
    case_home = ClientHome.open(home)
    (case_id,) = case_home.case_ids()
    receipts = case_home.receipts(case_id)
    kinds = [r.kind for r in receipts]
    assert kinds.count("addition") == 9 and kinds.count("tombstone") >= 1
    assert all(r.included for r in receipts)
    leaves = {r.leaf_hash for r in receipts}
    assert None not in leaves and len(leaves) == len(receipts)
    seen = recording_proxy.control.seen
    for s in seen:
        assert not s.path.startswith("/v1/proof/inclusion"), s.path
        for leaf in leaves:
            assert leaf is not None
            assert leaf not in s.path.lower() and leaf.encode() not in s.body.lower()
            assert bytes.fromhex(leaf) not in s.body
    assert any(s.path.startswith("/tile/entries/") for s in seen)
    assert any(s.path.startswith("/tile/0/") for s in seen)
    verified = run_cli("receipts", "verify", "--json", home=home)
    assert verified.code == 0, verified.err
    lines = [json.loads(line) for line in verified.out.splitlines()]
    assert len(lines) == len(receipts) and {line["state"] for line in lines} == {"verified"}
