"""Bounded JSON parsing: every JSON document the hub reads from outside goes through here.

Python's ``json`` parser recurses once per nesting level, so a body of 100,000 ``[`` raises
``RecursionError`` deep inside it (a 500 with a traceback). :func:`loads` refuses, before
parsing, a document above ``max_bytes`` or nested deeper than ``max_depth``; the depth is
measured without recursion (strings cut out, then a running sum over the remaining
brackets), so the parser itself only ever sees shallow input.
"""

from __future__ import annotations

import json
from array import array
from collections.abc import Callable
from itertools import accumulate
from typing import Any

__all__ = ["DEFAULT_MAX_DEPTH", "JsonBoundsError", "loads", "nesting_depth"]

DEFAULT_MAX_DEPTH = 32  # the deepest document the hub accepts (a vPDQ submission) needs 5

# Bytes other than brackets are deleted; opening brackets become +1, closing ones -1 (as
# signed bytes), so a running sum is the nesting depth.
_SIGNS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")
_OTHERS = bytes(b for b in range(256) if b not in b"[{]}")


class JsonBoundsError(ValueError):
    """The document is too large or too deeply nested to parse; the message says which."""


def nesting_depth(text: str) -> int:
    """The deepest bracket nesting of a JSON text, brackets inside strings not counted.

    Linear time, no recursion, every step a C-level string operation: escape pairs are
    removed left to right (``\\\\`` first, then ``\\"``), so every quote left delimits a string;
    the text between an even and the next odd quote is outside strings. On malformed text the
    result is at least the depth a parser reaches before it fails."""
    if "\\" in text:
        text = text.replace("\\\\", "").replace('\\"', "")
    outside = "".join(text.split('"')[0::2]).encode("utf-8", "surrogatepass")
    signs = array("b", outside.translate(_SIGNS, _OTHERS))
    return max(0, max(accumulate(signs), default=0))


def loads(
    data: bytes | str,
    *,
    max_bytes: int,
    max_depth: int = DEFAULT_MAX_DEPTH,
    object_pairs_hook: Callable[[list[tuple[str, Any]]], Any] | None = None,
    parse_constant: Callable[[str], Any] | None = None,
) -> Any:
    """``json.loads`` for untrusted input, refusing oversize or over-deep documents first.

    Raises :class:`JsonBoundsError` for the bounds, ``ValueError`` (``UnicodeDecodeError``,
    ``json.JSONDecodeError``, integers of more than 4300 digits) for malformed input, and
    whatever the hooks raise."""
    size = len(data) if isinstance(data, bytes) else len(data.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise JsonBoundsError(f"the JSON document is larger than {max_bytes} bytes")
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    if nesting_depth(text) > max_depth:
        raise JsonBoundsError(f"the JSON document is nested deeper than {max_depth} levels")
    try:
        return json.loads(text, object_pairs_hook=object_pairs_hook, parse_constant=parse_constant)
    except RecursionError:  # unreachable below max_depth; kept so no input can escape as 500
        raise JsonBoundsError("the JSON document is nested too deeply") from None
