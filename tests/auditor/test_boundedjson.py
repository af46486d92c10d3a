"""auditor/boundedjson.py: size and depth are checked before json.loads, without recursion."""

from __future__ import annotations

import pytest

from auditor.boundedjson import json_depth, loads_bounded
from auditor.errors import InputError


def test_depth_is_counted_outside_strings() -> None:
    assert json_depth(b'{"a": "[[[[{{{{", "b": [1, {"c": "\\"]]]["}]}', 99) == 3
    assert json_depth(b"[]" * 1000, 99) == 1
    assert json_depth(b"not json at all", 99) == 0


def test_nesting_at_the_limit_parses_and_beyond_is_refused() -> None:
    assert json_depth(b"[" * 32 + b"]" * 32, 99) == 32
    loads_bounded(b"[" * 32 + b"]" * 32, max_bytes=1000)
    with pytest.raises(InputError, match="nested deeper than 32"):
        loads_bounded(b"[" * 33 + b"]" * 33, max_bytes=1000)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"[" * 5_000_000, "nested deeper"),  # would blow the stack of a recursive parser
        (b'{"a":' * 1_000_000, "nested deeper"),
        (b"1" * 5000, "not valid JSON"),  # int() refuses more than 4300 digits
        (b"\xff\xfe{}", "not valid JSON"),
        (b'{"a": 1', "not valid JSON"),
        (b" " * 101, "larger than 100 bytes"),
    ],
    ids=["brackets", "objects", "huge-int", "not-utf8", "truncated", "too-big"],
)
def test_bad_json_is_an_input_error(data: bytes, message: str) -> None:
    max_bytes = 100 if message.startswith("larger") else 10_000_000
    with pytest.raises(InputError, match=message):
        loads_bounded(data, max_bytes=max_bytes)
