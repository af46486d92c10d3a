"""Shared loading of the protocol vectors in specs/vectors/{case,commitment,envelope,feed}/,
which specs/vectors/generate_protocol.py writes (one record per case, readable ids)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import crypto.errors
from crypto.errors import CryptoError

VECTOR_DIR = Path(__file__).resolve().parents[1] / "specs" / "vectors"


def generator() -> ModuleType:
    """The checked-in generator, imported from its file (it is a script, not a package)."""
    spec = importlib.util.spec_from_file_location(
        "generate_protocol", VECTOR_DIR / "generate_protocol.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def cases(area: str, name: str) -> list[dict[str, Any]]:
    data = json.loads((VECTOR_DIR / area / name).read_text(encoding="utf-8"))
    assert data["version"] == 1
    found: list[dict[str, Any]] = data["cases"]
    return found


def params(area: str, name: str) -> list[Any]:
    """One pytest parameter per vector, with the id `<area>/<case id>`."""
    return [pytest.param(c, id=f"{area}/{c['id']}") for c in cases(area, name)]


def error_class(name: str) -> type[CryptoError]:
    cls = getattr(crypto.errors, name)
    assert issubclass(cls, CryptoError)
    return cls  # type: ignore[no-any-return]
