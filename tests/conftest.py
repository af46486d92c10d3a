"""Shared test fixtures: where the conformance vectors live."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

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


@pytest.fixture
def postgres_url(postgres_admin_url: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test (SQLAlchemy URL), dropped afterwards."""
    import psycopg

    name = "ncii_test_" + secrets.token_hex(6)
    with psycopg.connect(postgres_admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = postgres_admin_url.rsplit("/", 1)[0]
    try:
        yield f"{base.replace('postgresql://', 'postgresql+psycopg://', 1)}/{name}"
    finally:
        with psycopg.connect(postgres_admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each storage test runs twice: on a SQLite file and on a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'hub.sqlite3'}"
    return str(request.getfixturevalue("postgres_url"))
