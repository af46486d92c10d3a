"""JSON from another party, parsed only within a size and a nesting depth.

Why: ``json.loads`` recurses once per nesting level, so a small body of ``[[[[...`` can exhaust
the stack, and a large one holds memory for nothing. The depth is counted here by one linear
scan (no recursion, strings and escapes skipped) before the standard parser sees the bytes.
"""

from __future__ import annotations

import json
from typing import Any, Final

from auditor.errors import InputError

__all__ = ["DEFAULT_MAX_DEPTH", "json_depth", "loads_bounded"]

DEFAULT_MAX_DEPTH: Final = 32
"""Deepest nesting accepted; the auditor's own files nest at most 4 levels."""

_OPEN: Final = frozenset(b"[{")
_CLOSE: Final = frozenset(b"]}")
_QUOTE: Final = ord('"')
_BACKSLASH: Final = ord("\\")


def json_depth(data: bytes, limit: int) -> int:
    """Deepest bracket nesting in ``data``, counted outside strings; stops past ``limit``.

    The bytes need not be valid JSON (the parser decides that); this only bounds the depth.
    """
    depth = deepest = 0
    in_string = escaped = False
    for byte in data:
        if in_string:
            if escaped:
                escaped = False
            elif byte == _BACKSLASH:
                escaped = True
            elif byte == _QUOTE:
                in_string = False
        elif byte == _QUOTE:
            in_string = True
        elif byte in _OPEN:
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    return deepest
        elif byte in _CLOSE:
            depth -= 1
    return deepest


def loads_bounded(
    data: bytes, *, max_bytes: int, max_depth: int = DEFAULT_MAX_DEPTH, what: str = "JSON"
) -> Any:
    """Parse ``data`` as JSON if it is at most ``max_bytes`` long and ``max_depth`` deep.

    InputError (never RecursionError or a bare ValueError) for anything else; ``what`` names
    the input in the message.
    """
    if len(data) > max_bytes:
        raise InputError(f"{what} is larger than {max_bytes} bytes")
    if json_depth(data, max_depth) > max_depth:
        raise InputError(f"{what} is nested deeper than {max_depth} levels")
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError, huge integers
        raise InputError(f"{what} is not valid JSON ({exc})") from None
