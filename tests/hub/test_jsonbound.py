"""hub.jsonbound: the depth measured without recursion equals the real nesting depth, and
over-deep or oversize documents are refused before the parser sees them."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.jsonbound import JsonBoundsError, loads, nesting_depth

TRICKY = st.sampled_from(['"', "\\", "[", "]", "{", "}", '\\"', "\\\\", "é", "\u2028", "a"])
TEXT = st.lists(TRICKY, max_size=6).map("".join)
SCALARS = st.none() | st.booleans() | st.integers() | TEXT
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=30,
)


def _depth(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    return 0


@settings(max_examples=400, derandomize=True)
@given(JSON, st.booleans())
def test_depth_matches_the_parsed_value(value: Any, ascii_only: bool) -> None:
    text = json.dumps(value, ensure_ascii=ascii_only)
    assert nesting_depth(text) == _depth(value)
    assert loads(text.encode(), max_bytes=1 << 20, max_depth=64) == value


@pytest.mark.parametrize(
    "text",
    [
        "[" * 100_000,
        "{" + '"a":{' * 100_000,
        '["\\\\",' + "[" * 40,
        '"\\"",' + "[" * 40,  # malformed: still counted as the parser would reach it
    ],
)
def test_deep_documents_are_refused_before_parsing(text: str) -> None:
    with pytest.raises(JsonBoundsError, match="deeper than 32"):
        loads(text, max_bytes=1 << 20)


def test_size_and_malformed_input() -> None:
    with pytest.raises(JsonBoundsError, match="larger than 10 bytes"):
        loads(b"[1,2,3,4,5,6]", max_bytes=10)
    assert nesting_depth('"[[[[[["') == 0  # brackets inside a string
    assert nesting_depth('["]"]') == 1
    for bad in (b"\xff", b"[1,", b"1" * 5000):
        with pytest.raises(ValueError):
            loads(bad, max_bytes=1 << 20)
