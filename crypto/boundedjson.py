"""Bounded JSON: the one parser for JSON that comes from outside the running process.

Why: Python's ``json`` parser recurses once per nesting level, so 60 kB of ``[[[[`` raises
RecursionError (not a ValueError) deep inside it, and a large body holds memory for nothing.
:func:`loads` refuses, before parsing, a text above ``max_bytes``, nested deeper than
``max_depth`` or (optionally) holding more than ``max_items`` arrays and objects, so the parser
only ever sees shallow input. The depth is measured in linear time without recursion and with
the standard library only: escape pairs are removed, the text is split at the remaining quotes
(every other piece is the inside of a string), and the brackets outside strings become +1/-1
bytes whose running sum is the depth (``bytes.translate`` and ``itertools.accumulate``, all in
C). It also refuses what no document of this project holds and what would fail far from here:
text that is not UTF-8 (``json.loads`` would guess UTF-16 or UTF-32, whose quotes the scan
would not see), NaN and Infinity (unless allowed), and unpaired surrogates (``"\\ud800"``
parses into a str that cannot be encoded again). Every refusal is one class,
:class:`~crypto.errors.JsonBoundsError` (a ValueError); callers map it to their own error.
"""

from __future__ import annotations

import json
import re
from array import array
from collections.abc import Callable
from itertools import accumulate
from typing import Any, Final

from crypto.errors import JsonBoundsError

__all__ = ["DEFAULT_MAX_DEPTH", "JsonBoundsError", "loads", "nesting_depth"]

DEFAULT_MAX_DEPTH: Final = 32
"""Deeper than any document of this project (the deepest, a vPDQ submission, nests 5)."""

# Bytes other than brackets are deleted; opening brackets become +1 and closing ones -1 (as
# signed bytes), so a running sum is the nesting depth.
_SIGNS: Final = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")
_OTHERS: Final = bytes(b for b in range(256) if b not in b"[{]}")
# Run on the text with escaped backslashes already removed, so every ``\u`` left is an escape.
_SURROGATE_PAIR: Final = re.compile(rb"\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}")
_SURROGATE: Final = re.compile(rb"\\u[dD][89a-fA-F]")


def _outside_strings(data: bytes) -> bytes:
    """The bytes of ``data`` outside string literals (escape pairs removed first, left to
    right: ``\\\\`` then ``\\"``, so every quote left delimits a string). UTF-8 continuation
    bytes are never ASCII, so the bytes can be scanned without decoding."""
    if b"\\" in data:
        data = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    return b"".join(data.split(b'"')[0::2])


def nesting_depth(data: bytes | str) -> int:
    """The deepest bracket nesting of a JSON text, brackets inside strings not counted.

    Linear time, no recursion. The text need not be valid JSON: on malformed text the result
    is at least the depth a parser reaches before it fails (the scan is exact on any prefix
    that is valid JSON)."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    signs = array("b", _outside_strings(raw).translate(_SIGNS, _OTHERS))
    return max(0, max(accumulate(signs), default=0))


def _refuse_constant(name: str) -> Any:
    raise JsonBoundsError(f"the JSON constant {name} is not allowed")


def loads(
    data: bytes | bytearray | memoryview | str,
    *,
    max_bytes: int,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_items: int | None = None,
    object_pairs_hook: Callable[[list[tuple[str, Any]]], Any] | None = None,
    allow_constants: bool = False,
) -> Any:
    """``json.loads`` for untrusted UTF-8 JSON, within ``max_bytes`` (encoded size),
    ``max_depth`` levels and, if given, ``max_items`` arrays and objects in all.

    Raises :class:`JsonBoundsError` for every refusal, including a ``ValueError`` raised by
    ``object_pairs_hook`` (e.g. a duplicate key); other exceptions of the hook pass through.
    """
    if isinstance(data, str):
        if len(data) > max_bytes:  # each character is at least one byte: no need to encode
            raise JsonBoundsError(f"the JSON text is larger than {max_bytes} bytes")
        try:
            raw = data.encode("utf-8")
        except UnicodeEncodeError:
            raise JsonBoundsError("the JSON text holds an unpaired surrogate") from None
    else:
        raw = bytes(data)
    if len(raw) > max_bytes:
        raise JsonBoundsError(f"the JSON text is larger than {max_bytes} bytes")
    try:
        text = raw.decode("utf-8")  # never guessed: json.loads would accept UTF-16 and UTF-32
    except UnicodeDecodeError:
        raise JsonBoundsError("the JSON text is not UTF-8") from None
    outside = _outside_strings(raw)
    signs = array("b", outside.translate(_SIGNS, _OTHERS))
    if max(0, max(accumulate(signs), default=0)) > max_depth:
        raise JsonBoundsError(f"the JSON text is nested deeper than {max_depth} levels")
    if max_items is not None and signs.count(1) > max_items:
        raise JsonBoundsError(f"the JSON text has more than {max_items} arrays and objects")
    if b"\\u" in raw:
        escapes = raw.replace(b"\\\\", b"")
        if _SURROGATE.search(_SURROGATE_PAIR.sub(b"", escapes)):
            raise JsonBoundsError("the JSON text holds an unpaired surrogate")
    try:
        return json.loads(
            text,
            object_pairs_hook=object_pairs_hook,
            parse_constant=None if allow_constants else _refuse_constant,
        )
    except JsonBoundsError:
        raise
    except RecursionError:  # unreachable within max_depth; kept so nothing escapes as a 500
        raise JsonBoundsError("the JSON text is nested too deeply") from None
    except ValueError:  # json.JSONDecodeError, int() past its digit limit, the hook's refusal
        raise JsonBoundsError("the JSON text is not valid JSON") from None
