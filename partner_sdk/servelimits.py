"""Bounds for the match service: decoded pixels at once, JSON depth, the bearer token file.

Why here and not in hashing/: hashing already refuses a picture that declares more than its
``max_pixels`` before decoding it, but only the service knows how many pictures are being
decoded at the same time. :class:`PixelBudget` shares one total among concurrent requests;
each request reserves what its picture's header declares (read without decoding), and passes
exactly that as ``max_pixels`` to hashing, so a header that lies cannot make it decode more.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Final

from PIL import Image

from hashing.image import SUPPORTED_FORMATS
from partner_sdk.errors import UsageError

__all__ = [
    "MAX_JSON_DEPTH",
    "MIN_TOKEN_CHARS",
    "Busy",
    "PixelBudget",
    "declared_pixels",
    "load_token",
]

MAX_JSON_DEPTH: Final = 8
"""Nesting allowed in a request body; the deepest valid one (a batch of vPDQ hashes) is 5."""

MIN_TOKEN_CHARS: Final = 32
"""A bearer token has at least 32 visible ASCII characters (``secrets.token_urlsafe(32)``
gives 43): guessing one is hopeless even without a rate limit."""


class Busy(Exception):
    """No room right now (work slots or pixel budget): retry shortly (HTTP 503)."""


class PixelBudget:
    """At most ``total`` decoded pixels across all requests at once; thread-safe.

    ``reserve(n)`` waits up to ``wait`` seconds for room and raises :class:`Busy` if there is
    none; a request that wants more than ``total`` would never fit and is refused at once.
    """

    def __init__(self, total: int, wait: float) -> None:
        if total < 1 or wait < 0:
            raise ValueError("a pixel budget is positive and the wait not negative")
        self.total, self.wait = total, wait
        self.in_use = 0
        self._cond = threading.Condition()

    @contextmanager
    def reserve(self, pixels: int) -> Iterator[int]:
        if not 0 < pixels <= self.total:
            raise Busy(f"a picture of {pixels} pixels does not fit the budget of {self.total}")
        deadline = time.monotonic() + self.wait
        with self._cond:
            while self.in_use + pixels > self.total:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise Busy("too many pixels are being decoded right now")
                self._cond.wait(left)
            self.in_use += pixels
        try:
            yield pixels
        finally:
            with self._cond:
                self.in_use -= pixels
                self._cond.notify_all()


def declared_pixels(stream: BinaryIO) -> int | None:
    """Width x height from an image's header, without decoding pixels; None when Pillow
    cannot tell (the caller then reserves its per-picture maximum). The stream is rewound."""
    start = stream.tell()
    try:
        with Image.open(stream, formats=SUPPORTED_FORMATS) as im:
            width, height = im.size
            return width * height if width > 0 and height > 0 else None
    except Exception:  # untrusted bytes: hashing will say precisely what is wrong
        return None
    finally:
        stream.seek(start)


def load_token(path: Path) -> bytes:
    """The bearer token in ``path``: a file only its owner may read (mode 0600 or 0400),
    holding one line of at least 32 visible ASCII characters. Messages never show it."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        raise UsageError(f"cannot read the token file {path}: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not os.path.isfile(path) or info.st_size > 4096:
            raise UsageError(f"the token file {path} is not a small regular file")
        if info.st_mode & 0o077:
            raise UsageError(
                f"the token file {path} is readable by others (mode "
                f"{info.st_mode & 0o777:o}): run 'chmod 0600 {path}' and keep it secret"
            )
        raw = os.read(fd, 4097)
    finally:
        os.close(fd)
    token = raw.removesuffix(b"\n").removesuffix(b"\r")
    if len(token) < MIN_TOKEN_CHARS or not all(0x21 <= b <= 0x7E for b in token):
        raise UsageError(
            f"the token in {path} is too short or not one line of visible ASCII: put at least "
            f"{MIN_TOKEN_CHARS} characters in it, e.g. from "
            "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )
    return token
