"""Shared test fixtures: where the conformance vectors live."""

from __future__ import annotations

from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_VECTORS = PROJECT_ROOT.parent / "shared" / "vectors"
OWN_VECTORS = PROJECT_ROOT / "specs" / "vectors"


@pytest.fixture(scope="session")
def shared_vectors() -> Path:
    """../shared/vectors: public conformance data. Missing data is an error, never a skip."""
    if not SHARED_VECTORS.is_dir():
        pytest.fail(f"conformance vectors not found at {SHARED_VECTORS}; the checkout needs ../shared")
    return SHARED_VECTORS


@pytest.fixture(scope="session")
def own_vectors() -> Path:
    """specs/vectors: this project's generated test vectors."""
    return OWN_VECTORS
