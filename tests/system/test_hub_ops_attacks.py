"""Attacks on the hub's operators' endpoints (/metrics, /readyz) over real HTTP from a real
``ncii-hub serve`` (review of issue 18's health and metrics work).

- /metrics is loopback-only by default, and "loopback" must not include a reverse proxy on the
  same host relaying a remote scraper: every header a common proxy adds (not only
  X-Forwarded-For) means "relayed".
- /readyz needs no token and takes the key store's write lock (up to 2 s when busy): a flood of
  it must not tie up the hub's worker threads, so /healthz (and every other route) still
  answers at once.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from hubkit import HubFactory, HubProcess
from syskit import FAST

# Headers that reverse proxies and CDNs add when they relay a request (nginx, Apache, Squid,
# Caddy, HAProxy, Cloudflare, Akamai, Fastly, Kubernetes ingresses).
RELAY_HEADERS = {
    "Via": "1.1 proxy.example",
    "X-Forwarded-Host": "hub.example",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Port": "443",
    "X-Forwarded-Server": "proxy.example",
    "X-Forwarded": "for=203.0.113.9",
    "X-Original-Forwarded-For": "203.0.113.9",
    "X-Client-IP": "203.0.113.9",
    "X-Cluster-Client-IP": "203.0.113.9",
    "True-Client-IP": "203.0.113.9",
    "CF-Connecting-IP": "203.0.113.9",
    "Fastly-Client-IP": "203.0.113.9",
}


@pytest.fixture(scope="module")
def metrics_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    """One hub for the /metrics tests: each only reads /metrics."""
    base = tmp_path_factory.mktemp("ops")
    hub = HubProcess(base / "data", f"sqlite:///{base / 'hub.sqlite3'}", FAST).start()
    yield hub
    hub.kill()


def test_metrics_refuse_every_common_relay_header(metrics_hub: HubProcess) -> None:
    hub = metrics_hub
    with hub.client() as client:
        assert client.get("/metrics").status_code == 200
        let_through = [
            name
            for name, value in RELAY_HEADERS.items()
            if client.get("/metrics", headers={name: value}).status_code != 403
        ]
        assert let_through == [], f"/metrics served to a request relayed with {let_through}"


def test_readyz_flood_does_not_starve_the_hub(sqlite_hub_factory: HubFactory) -> None:
    hub = sqlite_hub_factory()
    store = hub.data_dir / "keys.sqlite3"
    # Someone (here: the test) holds the key store's write lock, as a long withdrawal would.
    holder = sqlite3.connect(store, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    answers: list[int] = []

    def flood() -> None:
        with httpx.Client(base_url=hub.url, timeout=60.0) as c:
            try:
                answers.append(c.get("/readyz").status_code)
            except httpx.HTTPError:
                answers.append(-1)

    threads = [threading.Thread(target=flood) for _ in range(120)]
    try:
        for t in threads:
            t.start()
        time.sleep(1.0)  # the flood is in; each probe waits up to 2 s for the lock
        with hub.client() as client:
            started = time.monotonic()
            assert client.get("/healthz").status_code == 200
            waited = time.monotonic() - started
        for t in threads:
            t.join(60)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert waited < 1.0, f"/healthz waited {waited:.1f} s behind a /readyz flood"
    assert answers.count(503) == len(threads), sorted(set(answers))
    with hub.client() as client:
        time.sleep(1.1)  # past the shared result's lifetime
        assert client.get("/readyz").status_code == 200


@pytest.mark.parametrize("value", ["::ffff:127.0.0.1"])
def test_ipv4_mapped_loopback_is_loopback_only_if_python_says_so(value: str) -> None:
    """metrics_allowed is decided by the peer address: an IPv4-mapped loopback peer is local,
    anything else (or a bad address) is refused."""
    from hub.metrics import metrics_allowed

    scope = {"client": (value, 1), "headers": []}
    assert metrics_allowed(scope, False) in (True, False)  # never raises
    assert metrics_allowed({"client": ("::ffff:203.0.113.9", 1), "headers": []}, False) is False
    assert metrics_allowed({"client": ("not-an-ip", 1), "headers": []}, False) is False
    assert metrics_allowed({"client": None, "headers": []}, False) is False


@pytest.mark.parametrize("host", ["attacker.example", "attacker.example:8080", "10.0.0.1"])
def test_metrics_refuse_a_rebound_host_name(metrics_hub: HubProcess, host: str) -> None:
    """DNS rebinding: a web page the operator opens on the hub's machine points its own name at
    127.0.0.1; the browser then connects from loopback, with no forwarding header, and names
    the page's host. /metrics must answer only requests that name a loopback host."""
    hub = metrics_hub
    with hub.client() as client:
        for fine in ("localhost", f"127.0.0.1:{hub.port}", f"localhost:{hub.port}", "[::1]"):
            assert client.get("/metrics", headers={"Host": fine}).status_code == 200, fine
        answer = client.get("/metrics", headers={"Host": host})
        assert answer.status_code == 403
        assert answer.json()["error"]["code"] == "metrics_restricted"
