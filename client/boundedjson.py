"""JSON from anywhere this client does not control, parsed with a size and a depth limit.

Python's ``json`` parser recurses once per nesting level, so a small document of ``[[[[...``
(60 kB, 30,000 levels) raises RecursionError, which is not a ValueError: it used to escape the
handlers and drop the local page's connection or end the CLI with a traceback. Catching
RecursionError is no fix (it can strike anywhere on the stack), so the depth is measured first,
without recursion: escape pairs are dropped, the text is split at quotes (every other piece is
the inside of a string literal), the brackets of the pieces outside strings are kept and their
running count is taken with numpy (all in C: about a second for 25 MB, as long as parsing it).
Only a document within both limits reaches ``json.loads``. Non-standard constants (NaN,
Infinity), text that is not UTF-8 and unpaired surrogates (``"\\ud800"``) are refused too: no
file or answer of this project holds them.
"""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np

__all__ = ["DEFAULT_MAX_DEPTH", "JsonLimitError", "depth", "loads"]

DEFAULT_MAX_DEPTH = 32
"""Deeper than any document of this project (a status answer nests 5 levels)."""

_ESCAPE = re.compile(rb"\\.", re.DOTALL)
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


class JsonLimitError(ValueError):
    """Not JSON, or JSON larger or deeper than allowed (a ValueError, so that callers which
    already treat unreadable JSON as damaged input treat this the same way)."""


def _refuse_constant(name: str) -> Any:
    raise JsonLimitError(f"JSON constant {name} is not allowed")


def depth(data: bytes) -> int:
    """The deepest nesting of arrays and objects in ``data``, outside string literals."""
    outside = b"".join(_ESCAPE.sub(b"", data).split(b'"')[::2])
    brackets = np.frombuffer(outside.translate(None, _NOT_BRACKETS), dtype=np.uint8)
    if not brackets.size:
        return 0
    opening = (brackets == ord("[")) | (brackets == ord("{"))
    return max(0, int(np.cumsum(np.where(opening, 1, -1), dtype=np.int64).max()))


def loads(
    data: bytes | bytearray | str, *, max_bytes: int, max_depth: int = DEFAULT_MAX_DEPTH
) -> Any:
    """Parse ``data`` (UTF-8) as JSON if it is at most ``max_bytes`` long and ``max_depth`` deep.

    Bytes are decoded as UTF-8 here, never guessed (``json.loads`` would also accept UTF-16 and
    UTF-32, whose quotes and backslashes the depth scan would not see as such)."""
    raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    if len(raw) > max_bytes:
        raise JsonLimitError(f"JSON text is larger than {max_bytes} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise JsonLimitError("JSON text is not UTF-8") from None
    if depth(raw) > max_depth:
        raise JsonLimitError(f"JSON text is nested deeper than {max_depth} levels")
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except JsonLimitError:
        raise
    except ValueError:  # json.JSONDecodeError, and int() past its digit limit
        raise JsonLimitError("not valid JSON") from None
    if _SURROGATE_ESCAPE.search(text):
        # A lone surrogate (\ud800) parses into a str that cannot be encoded again: it would
        # fail later, far from here (printing a message, checking a signature). Refuse it now.
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise JsonLimitError("JSON text holds an unpaired surrogate") from None
    return value
