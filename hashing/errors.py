"""The exceptions hashing/ raises: one class per failure class.

Callers (the client CLI, the partner SDK) catch by class, never by message text, and turn each
class into advice a person can act on: "this file is not a picture", "this format is not
supported", "this file is too large", "this picture is too flat to fingerprint". Messages never
contain hash values or pixel data.
"""

from __future__ import annotations


class HashingError(Exception):
    """Base of every error raised by hashing/."""


# -- media that cannot be turned into pixels / frames ---------------------------------------


class MediaError(HashingError, ValueError):
    """The media bytes given cannot be hashed as they are."""


class UnreadableMediaError(MediaError):
    """Bytes that claim or appear to be media but cannot be decoded: empty, truncated, corrupt."""


class UnsupportedMediaError(MediaError):
    """Bytes in a format (or codec, or pixel mode) that this library does not decode."""


class MediaTooLargeError(MediaError):
    """Media whose declared size exceeds an explicit limit (pixels, frames, duration, bytes).

    Raised from the declared size before decoding, so a decompression bomb costs nothing.
    """


# -- well-formed values that are unfit for use ----------------------------------------------


class InvalidHashError(HashingError, ValueError):
    """A hash value (text or bytes) that does not follow its format: wrong length, not hex, ..."""


class LowQualityError(HashingError):
    """A hash computed from media too flat or featureless to be matched reliably.

    ``quality`` is the hash's quality score (0..100) so a caller can report it.
    """

    def __init__(self, message: str, quality: int | None = None) -> None:
        super().__init__(message)
        self.quality = quality
