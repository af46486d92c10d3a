"""Fingerprints of one uploaded file held in memory: what the page shows and what may be sent.

The page hands the local process a file's bytes; this module turns them into the hub's hash
objects (specs/submission.md section 3) or a plain reason why the file is left out. It decides
nothing about the network and keeps nothing: the caller wipes the buffer afterwards.

Why not the client library's path-based hashing: the bytes never touch the disk here, so the
file-system walk (and its FIFO/symlink rules) does not apply; the hashing itself is hashing/'s.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from hashing.digest import digest_bytes
from hashing.errors import (
    HashingError,
    LowQualityError,
    MediaTooLargeError,
    UnreadableMediaError,
    UnsupportedMediaError,
)
from hashing.image import hash_image
from hashing.kinds import Kind, sniff_head
from hashing.pdq import QUALITY_FLOOR
from hashing.vpdq import NoVideoStreamError, hash_video

__all__ = ["FileReport", "fingerprint"]

HubHash = dict[str, Any]


@dataclass(frozen=True, slots=True)
class FileReport:
    """One file's outcome: its hub hash objects if it can be sent, else a problem and a reason.

    ``problem`` codes (stable, shown to the page): ``low-quality``, ``not-media``,
    ``unreadable``, ``unsupported``, ``too-large``.
    """

    kind: str  # "image" | "video" | "file"
    hashes: tuple[HubHash, ...]
    problem: str | None = None
    reason: str | None = None

    @property
    def usable(self) -> bool:
        return self.problem is None


_NOT_MEDIA = (
    "This is not a photo or video this tool can read, so it is left out. "
    "Only photos and videos can be protected."
)
_LOW_QUALITY = (
    "This picture is too plain (for example mostly one colour) to be recognised reliably, "
    "so it is left out. Sending it could block harmless pictures that look alike."
)
_LOW_QUALITY_VIDEO = (
    "Every frame of this video is too plain (for example black or one colour) to be "
    "recognised reliably, so it is left out."
)


def _problem(kind: Kind, exc: HashingError) -> FileReport:
    what = "video" if kind is Kind.VIDEO else "picture"
    if isinstance(exc, MediaTooLargeError):
        code, reason = "too-large", f"This {what} is too large to fingerprint on this computer."
    elif isinstance(exc, LowQualityError):
        code, reason = "low-quality", _LOW_QUALITY
    elif isinstance(exc, UnsupportedMediaError):
        code, reason = "unsupported", f"This kind of {what} is not supported yet."
    elif isinstance(exc, UnreadableMediaError):
        code, reason = "unreadable", f"This {what} seems damaged or incomplete and cannot be read."
    else:
        code, reason = "unreadable", f"This {what} could not be fingerprinted."
    return FileReport(kind.value, (), code, reason)


def fingerprint(data: bytes | bytearray | memoryview) -> FileReport:
    """MD5, SHA-256 and PDQ (pictures) or vPDQ (videos) of a file's bytes, as hub objects.

    A picture below the PDQ quality floor, a video whose every frame is, and anything that is
    neither a picture nor a video are left out whole, with a reason a person can read.
    """
    view = memoryview(data)
    kind = sniff_head(bytes(view[:4096])).kind
    if kind is Kind.OTHER:
        return FileReport(kind.value, (), "not-media", _NOT_MEDIA)
    try:
        digests = digest_bytes(view)  # type: ignore[arg-type]  # any buffer works
        base: list[HubHash] = [
            {"algorithm": "md5", "hash": digests.md5_hex},
            {"algorithm": "sha256", "hash": digests.sha256_hex},
        ]
        if kind is Kind.IMAGE:
            pdq = hash_image(view)  # type: ignore[arg-type]
            if pdq.quality < QUALITY_FLOOR:
                return FileReport(kind.value, (), "low-quality", _LOW_QUALITY)
            item = {"algorithm": "pdq", "hash": pdq.hex(), "quality": pdq.quality}
            return FileReport(kind.value, (item, *base))
        try:
            features = hash_video(io.BytesIO(view))
        except NoVideoStreamError:
            return FileReport(Kind.OTHER.value, (), "not-media", _NOT_MEDIA)
        if not any(f.quality >= QUALITY_FLOOR for f in features):
            return FileReport(kind.value, (), "low-quality", _LOW_QUALITY_VIDEO)
        frames = [
            {
                "frame": f.frame_number,
                "quality": f.quality,
                "hash": f.hash.hex(),
                "timestamp": float(f.timestamp),
            }
            for f in features
        ]
        return FileReport(kind.value, ({"algorithm": "vpdq", "frames": frames}, *base))
    except HashingError as exc:
        return _problem(kind, exc)
    finally:
        view.release()
