"""X-Forwarded-For is ignored unless the proxy is named with --forwarded-allow-ips."""

from __future__ import annotations

from hubkit import ENVELOPE_TYPE, Case, HubFactory, HubProcess

LIMITS = ("--set", "ip_rate=0.01", "--set", "ip_burst=2")


def _codes(hub: HubProcess, forwarded: list[str]) -> list[int]:
    codes = []
    with hub.client() as client:
        for address in forwarded:
            r = client.post(
                "/v1/status",
                content=Case().status_query(),
                headers={"Content-Type": ENVELOPE_TYPE, "X-Forwarded-For": address},
            )
            codes.append(r.status_code)
    return codes


def test_spoofed_forwarded_for_does_not_change_the_rate_limit_bucket(
    hub_factory: HubFactory,
) -> None:
    # Default: a local process cannot pick a fresh bucket by naming another address.
    hub = hub_factory(*LIMITS)
    assert _codes(hub, ["198.51.100.1", "198.51.100.2", "198.51.100.3"]) == [404, 404, 429]
    hub.terminate()
    # Behind a proxy on 127.0.0.1 that is named, its header is the client address.
    proxied = hub_factory(*LIMITS, "--forwarded-allow-ips", "127.0.0.1", data_dir=hub.data_dir)
    assert _codes(proxied, ["198.51.100.1", "198.51.100.2", "198.51.100.3"]) == [404] * 3
    assert _codes(proxied, ["198.51.100.1", "198.51.100.1"]) == [404, 429]
