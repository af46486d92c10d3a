"""crypto.boundedjson: the depth measured without recursion equals the real nesting depth, and
every hostile text (too large, too deep, not UTF-8, not JSON, NaN, lone surrogates, too many
containers) is refused with JsonBoundsError before or instead of reaching the parser.

Merged from the tests of the five copies it replaced (hub/jsonbound.py, client/boundedjson.py,
auditor/boundedjson.py, partner_sdk/servelimits.py json_shape_error, partner_sdk/hubclient.py
json_depth_ok). Timing is not asserted; linear behaviour was checked by hand (December 2026, on
a shared 2-core machine: 1, 2, 4, 8 MiB of ``\"\\`` pairs in a string 0.09, 0.19, 0.46, 0.95 s;
of lone backslashes 0.08 to 0.99 s; of quotes 0.44 to 4.96 s; of ``[`` 0.49 to 3.2 s).
"""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crypto.boundedjson import JsonBoundsError, loads, nesting_depth
from crypto.errors import MalformedError

TRICKY = st.sampled_from(
    ['"', "\\", "[", "]", "{", "}", '\\"', "\\\\", "é", "\u2028", "a", "\U0001f600", "\ud83d"]
)
TEXT = st.lists(TRICKY, max_size=6).map("".join)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT
)
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


def _has_lone_surrogate(value: Any) -> bool:
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _reference_depth(text: str) -> int | None:
    """A plain byte-by-byte scan: the deepest level, None for a backslash outside strings."""
    depth = deepest = 0
    inside = escaped = False
    for ch in text:
        if inside:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                inside = False
        elif ch == "\\":
            return None
        elif ch == '"':
            inside = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


@settings(max_examples=400, derandomize=True)
@given(JSON, st.booleans())
def test_depth_matches_the_parsed_value(value: Any, ascii_only: bool) -> None:
    text = json.dumps(value, ensure_ascii=ascii_only)
    assert nesting_depth(text) == _depth(value)
    if _has_lone_surrogate(value):
        with pytest.raises(JsonBoundsError, match="unpaired surrogate"):
            loads(text, max_bytes=1 << 20, max_depth=64)
    else:
        assert nesting_depth(text.encode()) == _depth(value)
        assert loads(text.encode(), max_bytes=1 << 20, max_depth=64) == value
        assert loads(text, max_bytes=1 << 20, max_depth=_depth(value)) == value
        if _depth(value):
            with pytest.raises(JsonBoundsError, match="nested deeper"):
                loads(text, max_bytes=1 << 20, max_depth=_depth(value) - 1)


def test_depth_agrees_with_a_reference_scan_on_random_garbage() -> None:
    rng = random.Random(12)
    checked = 0
    for _ in range(5000):
        text = "".join(rng.choice('[]{}"\\a') for _ in range(rng.randint(1, 40)))
        expected = _reference_depth(text)
        if expected is None:
            continue
        checked += 1
        assert nesting_depth(text) == expected, text
        for limit in range(6):  # too deep is refused as such; balanced or not, never parsed
            if expected > limit:
                with pytest.raises(JsonBoundsError, match="nested deeper"):
                    loads(text, max_bytes=99, max_depth=limit)
    assert checked > 1000


@pytest.mark.parametrize(
    ("text", "deep"),
    [
        (b'[1, "[[[[", {"a": "\\"[[[["}]', 2),  # brackets inside strings do not count
        (b'"\\\\" [[', 2),  # an escaped backslash ends the string before [[
        (b'"\\\\\\"[[" [', 1),  # \\ then \" : the string goes on past the [[
        (b'{"a": [{"b": [[]]}]}', 5),
        (b'{"a": "[[[[{{{{", "b": [1, {"c": "\\"]]]["}]}', 3),
        (b"[]" * 1000, 1),
        (b"[]]]]][[", 1),  # invalid JSON: the parser refuses it after the depth check
        (b"not json at all", 0),
        (b'"[[[[[["', 0),
        (b'["]"]', 1),
        (b"", 0),
    ],
)
def test_depth_is_counted_outside_strings_only(text: bytes, deep: int) -> None:
    assert nesting_depth(text) == deep
    assert nesting_depth(text.decode()) == deep


@pytest.mark.parametrize(
    "text",
    [
        b"[" * 100_000,
        b"[" * 100_000 + b"]" * 100_000,
        b"{" + b'"a":{' * 100_000,
        b'{"a":' * 33 + b"1" + b"}" * 33,
        b'["\\\\",' + b"[" * 40,
        b'"\\"",' + b"[" * 40,  # malformed: still counted as far as the parser would reach
        b'["' + b"\\" * 100_000 + b'"' + b"[" * 40,  # an even backslash run ends the string
    ],
)
def test_deep_documents_are_refused_before_parsing(text: bytes) -> None:
    with pytest.raises(JsonBoundsError, match="deeper than 32") as refused:
        loads(text, max_bytes=1 << 22)
    assert isinstance(refused.value, MalformedError)
    assert isinstance(refused.value, ValueError)


def test_nesting_at_the_limit_parses_and_brackets_in_strings_are_free() -> None:
    assert loads(b"[" * 32 + b"]" * 32, max_bytes=1000) is not None
    with pytest.raises(JsonBoundsError, match="nested deeper than 32"):
        loads(b"[" * 33 + b"]" * 33, max_bytes=1000)
    assert loads(b'["' + b"[" * 100_000 + b'"]', max_bytes=1 << 20) == ["[" * 100_000]
    assert loads(b'["' + b'\\"[' * 1000 + b'"]', max_bytes=1 << 20) == ['"[' * 1000]
    backslashes = b'["' + b"\\\\" * 50_000 + b'", [[]]]'
    assert loads(backslashes, max_bytes=1 << 20, max_depth=3) == ["\\" * 50_000, [[]]]
    assert loads(b'{"v":1,"batches":[{"wrap":"[[[[[[[[[[[[[[[[[[[["}]}', max_bytes=999, max_depth=8)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b" " * 101, "larger than 100 bytes"),
        ("é" * 51, "larger than 100 bytes"),  # a str is measured in UTF-8 bytes
        ("[1]".encode("utf-16"), "not UTF-8"),  # json.loads would guess UTF-16
        ("[1]".encode("utf-32-le"), "not valid JSON"),  # valid UTF-8 (NULs), not JSON
        (b"\xff\xfe{}", "not UTF-8"),
        (b'["\xed\xa0\x80"]', "not UTF-8"),  # a surrogate encoded as UTF-8 bytes
        (b"\xef\xbb\xbf[1]", "not valid JSON"),  # a byte order mark is not JSON
        (b"[NaN]", "constant NaN"),
        (b'{"a": Infinity}', "constant Infinity"),
        (b"[-Infinity]", "constant -Infinity"),
        (b'["\\ud800"]', "unpaired surrogate"),
        (b'["\\uDC00"]', "unpaired surrogate"),
        (b'{"\\ud83d": 1}', "unpaired surrogate"),  # keys too
        (b'["\\ud83d\\ud83d\\ude00"]', "unpaired surrogate"),  # high, then a good pair
        (b'["\\ude00\\ud83d\\ude00"]', "unpaired surrogate"),  # low, then a good pair
        (b'["\\\\\\ud800"]', "unpaired surrogate"),  # \\ then \ud800
        ("[\ud800]", "unpaired surrogate"),  # a str that cannot be UTF-8 at all
        (b"[1" + b"0" * 5000 + b"]", "not valid JSON"),  # past int()'s digit limit
        (b"1" * 5000, "not valid JSON"),
        (b'{"a": 1', "not valid JSON"),
        (b"[1,", "not valid JSON"),
        (b"[" * 10, "not valid JSON"),
        (b"[]]]]][[", "not valid JSON"),
        (b"", "not valid JSON"),
    ],
)
def test_hostile_text_is_one_error_class(text: bytes | str, message: str) -> None:
    with pytest.raises(JsonBoundsError, match=message):
        loads(text, max_bytes=100 if "larger" in message else 1 << 20)


def test_escaped_backslash_before_u_is_not_a_surrogate() -> None:
    assert loads(b'["\\\\ud800"]', max_bytes=99) == ["\\ud800"]
    assert loads(b'["\\ud83d\\ude00"]', max_bytes=99) == ["\U0001f600"]
    assert loads('["\U0001f600"]', max_bytes=99) == ["\U0001f600"]


def test_constants_only_when_allowed() -> None:
    value = loads(b"[NaN, Infinity]", max_bytes=99, allow_constants=True)
    assert value[1] == float("inf") and value[0] != value[0]


def test_huge_ints_within_the_digit_limit_parse() -> None:
    assert loads(b"9" * 4000, max_bytes=1 << 20) == int("9" * 4000)


def test_item_count_limit() -> None:
    assert loads(b"[" + b"{}," * 18 + b"{}]", max_bytes=999, max_items=20) is not None
    with pytest.raises(JsonBoundsError, match="more than 19 arrays and objects"):
        loads(b"[" + b"{}," * 18 + b"{}]", max_bytes=999, max_items=19)
    assert loads(b'["[[[[[[[[[[[["]', max_bytes=999, max_items=1) == ["[" * 12]


def test_the_hook_sees_pairs_and_its_value_error_is_a_refusal() -> None:
    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        if len({k for k, _ in pairs}) != len(pairs):
            raise ValueError("duplicate key")
        return dict(pairs)

    class Refused(Exception):
        pass

    def refuse(pairs: list[tuple[str, Any]]) -> Any:
        raise Refused

    assert loads(b'{"a":1}', max_bytes=99, object_pairs_hook=no_duplicates) == {"a": 1}
    with pytest.raises(JsonBoundsError, match="not valid JSON"):
        loads(b'{"a":1,"a":2}', max_bytes=99, object_pairs_hook=no_duplicates)
    with pytest.raises(Refused):  # other exceptions of the hook are the caller's own
        loads(b'{"a":1}', max_bytes=99, object_pairs_hook=refuse)
