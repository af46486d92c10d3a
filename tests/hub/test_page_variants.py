"""The person's page as the hub serves it, attacked in-process (no hub needed): every file and
the index, plain and gzipped, decode to exactly the bytes the signed manifest lists, under the
page's headers; an Accept-Encoding that refuses gzip (q=0, wherever the weight stands among
parameters) gets the plain bytes; unknown trees, paths and traversal are 404 with the same
headers; nothing but GET is answered."""

from __future__ import annotations

import gzip
import hashlib

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hubkit import PROJECT_ROOT

from crypto.keys import generate_signer_key
from hub.page import PageSite, accepts_gzip, load_page, page_router

ORIGIN = "page.example/ncii"


@pytest.fixture(scope="module")
def site() -> PageSite:
    return load_page(PROJECT_ROOT / "web", ORIGIN, generate_signer_key(ORIGIN))


@pytest.fixture(scope="module")
def client(site: PageSite) -> TestClient:
    app = FastAPI()
    app.include_router(page_router(site))
    return TestClient(app)


def check_headers(headers: object, site: PageSite) -> None:
    h = headers  # httpx.Headers
    assert h["content-security-policy"] == site.csp  # type: ignore[index]
    for name, value in (
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
        ("cross-origin-opener-policy", "same-origin"),
        ("cross-origin-resource-policy", "same-origin"),
    ):
        assert h[name] == value, name  # type: ignore[index]
    assert "accept-encoding" in h["vary"].lower()  # type: ignore[index]


def test_every_variant_is_the_manifest_bytes(site: PageSite, client: TestClient) -> None:
    by_path = site.manifest.by_path()
    targets = [("/", site.manifest.index_sha256)]
    targets += [(site.manifest.url(p), digest) for p, digest in by_path.items()]
    gz = 0
    for url, digest in targets:
        for accept in ("gzip", "identity", "gzip;q=0"):
            r = client.get(url, headers={"Accept-Encoding": accept})
            assert r.status_code == 200, url
            check_headers(r.headers, site)
            raw = r.content  # httpx inflates gzip itself ...
            assert hashlib.sha256(raw).digest() == digest, (url, accept)
            if r.headers.get("content-encoding") == "gzip":
                assert accept == "gzip", (url, accept)
                gz += 1
    assert gz > 0
    # ... so check the stored gzip variants themselves too: each one inflates to the bytes.
    for key, packed in site.gzipped.items():
        plain = site.index if key == "" else site.files[key]
        assert gzip.decompress(packed) == plain, key


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("gzip", True),
        ("gzip;q=0.5", True),
        ("br, gzip;q=1.0", True),
        ("gzip;q=0", False),
        ("GZIP;Q=0", False),
        ("gzip; q=0", False),
        ("gzip;level=9;q=0", False),  # the weight after another parameter still refuses
        ("gzip;q=0.000", False),
        ("identity", False),
        ("", False),
    ],
)
def test_accept_encoding_weights(header: str, expected: bool) -> None:
    assert accepts_gzip(header) is expected


def test_unknown_and_traversal_are_404_with_page_headers(
    site: PageSite, client: TestClient
) -> None:
    tree = site.manifest.tree
    for url in (
        f"/s/{'0' * len(tree)}/app.js",
        f"/s/{tree}/",
        f"/s/{tree}/nope.js",
        f"/s/{tree}/../hub.json",
        f"/s/{tree}/%2e%2e/%2e%2e/etc/passwd",
        f"/s/{tree}//app.js",
    ):
        r = client.get(url)
        assert r.status_code == 404, url
        check_headers(r.headers, site)
    for method in ("POST", "PUT", "DELETE"):
        assert client.request(method, "/").status_code == 405
