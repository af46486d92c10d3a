"""Shared test fixtures: where the conformance vectors live."""

from __future__ import annotations

import functools
import os
import secrets
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CONFORMANCE_VECTORS = PROJECT_ROOT / "tests" / "vectors"
OWN_VECTORS = PROJECT_ROOT / "specs" / "vectors"


@pytest.fixture(scope="session")
def conformance_vectors() -> Path:
    """tests/vectors: other projects' public conformance data, kept in the repository."""
    if not CONFORMANCE_VECTORS.is_dir():
        pytest.fail(
            f"conformance vectors not found at {CONFORMANCE_VECTORS}; is the checkout whole?"
        )
    return CONFORMANCE_VECTORS


@pytest.fixture(scope="session")
def own_vectors() -> Path:
    """specs/vectors: this project's generated test vectors."""
    return OWN_VECTORS


# -- databases: every storage test runs on SQLite and on PostgreSQL ------------------------

POSTGRES_ADMIN_URL = os.environ.get("NCII_TEST_POSTGRES", "postgresql://root@127.0.0.1:5432/test")
# .ci/run sets this, so that CI fails instead of skipping when PostgreSQL is not reachable.
REQUIRE_POSTGRES = os.environ.get("NCII_REQUIRE_POSTGRES") == "1"


def _postgres_unavailable_reason() -> str | None:
    try:
        import psycopg

        with psycopg.connect(POSTGRES_ADMIN_URL, connect_timeout=3):
            return None
    except Exception as exc:  # any failure to connect means "not here"
        return f"PostgreSQL not reachable at {POSTGRES_ADMIN_URL} ({type(exc).__name__})"


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    reason = _postgres_unavailable_reason()
    if reason is not None:
        if REQUIRE_POSTGRES:
            pytest.fail(f"{reason}; NCII_REQUIRE_POSTGRES=1 forbids skipping")
        pytest.skip(
            f"{reason}; set NCII_TEST_POSTGRES to a server where the user may CREATE DATABASE"
        )
    return POSTGRES_ADMIN_URL


def _fresh_postgres(admin_url: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database (SQLAlchemy URL), dropped when the generator ends."""
    import psycopg

    name = "ncii_test_" + secrets.token_hex(6)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = admin_url.rsplit("/", 1)[0]
    try:
        yield f"{base.replace('postgresql://', 'postgresql+psycopg://', 1)}/{name}"
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def postgres_url(postgres_admin_url: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test (SQLAlchemy URL), dropped afterwards."""
    yield from _fresh_postgres(postgres_admin_url)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each storage test runs twice: on a SQLite file and on a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'hub.sqlite3'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def module_database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """``database_url`` for a module-scoped hub (tests that each use fresh cases share it):
    a SQLite file, or a fresh PostgreSQL database dropped after the module."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('module-db') / 'hub.sqlite3'}"
        return
    yield from _fresh_postgres(str(request.getfixturevalue("postgres_admin_url")))


# -- httpx's default SSL context, built once per test process ----------------------------------
#
# Every httpx client builds a new SSL context from certifi's bundle (about 25 ms of CPU), and
# the SDKs under test make a client per partner, per sync, per query: in the tests/partner and
# tests/client workers that was a third of their own CPU. The default (verify=True, no client
# certificate) gets one shared context per CA source here; every other call is httpx's own.
# The same verification either way; processes the tests start are not affected.


def _share_default_ssl_context() -> None:
    import httpx._config
    import httpx._transports.default as transports

    original = httpx._config.create_ssl_context
    names = vars(transports)  # the name the transports call (httpx does not export it)
    if names.get("create_ssl_context") is not original:  # httpx changed: leave it alone
        return

    @functools.cache
    def shared(cafile: str | None, capath: str | None) -> ssl.SSLContext:
        context: ssl.SSLContext = original()
        return context

    def create_ssl_context(verify: Any = True, cert: Any = None, trust_env: bool = True) -> Any:
        if verify is True and cert is None and trust_env:
            return shared(os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))
        return original(verify=verify, cert=cert, trust_env=trust_env)

    names["create_ssl_context"] = create_ssl_context


_share_default_ssl_context()
