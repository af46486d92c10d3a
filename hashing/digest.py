"""MD5 and SHA-256 of a file's bytes, computed together in one streamed pass.

Why both: StopNCII and most partner platforms exchange MD5 for videos (exact copies), while
SHA-256 is the collision-resistant identity of a file; reading a multi-GB video twice would
double the cost, so one pass feeds both. Memory is one fixed-size buffer whatever the size.
The stream is only read, never opened, closed or seeked: the caller owns the file.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import BinaryIO, Protocol

from hashing.errors import InvalidHashError, MediaTooLargeError

__all__ = [
    "CHUNK_SIZE",
    "MD5_SIZE",
    "SHA256_SIZE",
    "FileDigests",
    "digest_bytes",
    "digest_stream",
]

CHUNK_SIZE = 1 << 20
"""Bytes read per call: large enough to amortise Python overhead, small enough to be constant."""

MD5_SIZE = 16
SHA256_SIZE = 32

_HEX = re.compile(r"[0-9a-f]*")


class _Readable(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...


@dataclass(frozen=True, slots=True)
class FileDigests:
    """The exact-match fingerprints of one file: raw digests (hex only at the edges) and size."""

    md5: bytes
    sha256: bytes
    size: int

    def __post_init__(self) -> None:
        if not isinstance(self.md5, bytes) or len(self.md5) != MD5_SIZE:
            raise InvalidHashError(f"an MD5 digest is {MD5_SIZE} bytes")
        if not isinstance(self.sha256, bytes) or len(self.sha256) != SHA256_SIZE:
            raise InvalidHashError(f"a SHA-256 digest is {SHA256_SIZE} bytes")
        if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 0:
            raise InvalidHashError("a file size is a non-negative integer")

    @property
    def md5_hex(self) -> str:
        """32 lowercase hex digits, the usual text form of MD5."""
        return self.md5.hex()

    @property
    def sha256_hex(self) -> str:
        """64 lowercase hex digits, the usual text form of SHA-256."""
        return self.sha256.hex()

    @classmethod
    def from_hex(cls, md5: str, sha256: str, size: int) -> FileDigests:
        """Parse untrusted text; only lowercase hex of the exact length is accepted (canonical)."""
        md5_bytes = _parse_hex(md5, MD5_SIZE, "MD5")
        return cls(md5_bytes, _parse_hex(sha256, SHA256_SIZE, "SHA-256"), size)


def _parse_hex(text: str, size: int, name: str) -> bytes:
    if not isinstance(text, str) or len(text) != 2 * size or not _HEX.fullmatch(text):
        raise InvalidHashError(f"{name} text must be exactly {2 * size} lowercase hex digits")
    return bytes.fromhex(text)


def digest_stream(
    stream: BinaryIO | _Readable,
    *,
    chunk_size: int = CHUNK_SIZE,
    max_bytes: int | None = None,
) -> FileDigests:
    """Read ``stream`` to its end once, feeding MD5 and SHA-256 together.

    ``max_bytes`` (optional) stops a runaway stream (a device, an endless pipe) with
    MediaTooLargeError instead of reading forever. I/O errors from the stream propagate unchanged:
    they belong to the caller, who opened it.
    """
    if chunk_size <= 0:
        raise ValueError("chunk_size must be positive")
    if max_bytes is not None and max_bytes < 0:
        raise ValueError("max_bytes must be non-negative")
    md5 = hashlib.md5(usedforsecurity=False)
    sha256 = hashlib.sha256()
    size = 0
    readinto = getattr(stream, "readinto", None)
    if readinto is not None:
        buffer = bytearray(chunk_size)
        view = memoryview(buffer)
        while True:
            count = readinto(view)
            if not count:
                break
            size += count
            _check_size(size, max_bytes)
            md5.update(view[:count])
            sha256.update(view[:count])
    else:
        while True:
            chunk = stream.read(chunk_size)
            if not chunk:
                break
            size += len(chunk)
            _check_size(size, max_bytes)
            md5.update(chunk)
            sha256.update(chunk)
    return FileDigests(md5.digest(), sha256.digest(), size)


def _check_size(size: int, max_bytes: int | None) -> None:
    if max_bytes is not None and size > max_bytes:
        raise MediaTooLargeError(f"the file is larger than the limit of {max_bytes} bytes")


def digest_bytes(data: bytes) -> FileDigests:
    """The same digests for bytes already in memory (small files, tests)."""
    return FileDigests(
        hashlib.md5(data, usedforsecurity=False).digest(), hashlib.sha256(data).digest(), len(data)
    )
