"""Decide image / video / other from a file's leading bytes, never from its name.

Why sniff: a person's files often have wrong or missing extensions (``IMG_0001`` from a phone
backup, ``.mp4`` that is really a MOV), and an extension is attacker-chosen. The decision picks
the fingerprint (PDQ for images, vPDQ for videos) and, for videos, the only demuxer FFmpeg is
allowed to use, so a hostile file cannot steer FFmpeg into a playlist or network demuxer.

Rules (specs/hash-output.md, "Kinds"):
- image: JPEG, PNG (APNG too: first frame), WebP (animated too: first frame), single-frame GIF,
  BMP, TIFF, HEIF/HEIC/AVIF (ftyp brands).
- video: MP4/MOV/3GP (ftyp brands, or a bare QuickTime atom), WebM/Matroska (EBML), AVI (RIFF),
  FLV, MPEG-TS, MPEG-PS, ASF/WMV, and GIF with more than one frame.
- other: everything else, including audio-only MP4 brands (M4A, M4B).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import BinaryIO

__all__ = [
    "SNIFF_BYTES",
    "Kind",
    "Sniffed",
    "count_gif_frames",
    "sniff",
    "sniff_head",
]

SNIFF_BYTES = 4096
"""How many leading bytes the decision reads (EBML DocType and ftyp brands live well inside)."""


class Kind(enum.Enum):
    """What a file is, for fingerprinting purposes; the value is the JSON ``kind`` text."""

    IMAGE = "image"
    VIDEO = "video"
    OTHER = "file"


@dataclass(frozen=True, slots=True)
class Sniffed:
    """The verdict: ``kind`` and the container ``format`` (``""`` when kind is OTHER).

    ``demuxer`` names the FFmpeg demuxer to force for videos (``""`` otherwise).
    """

    kind: Kind
    format: str
    demuxer: str = ""


_OTHER = Sniffed(Kind.OTHER, "")

# ISO base media (ISO/IEC 14496-12) "ftyp" brands. Image brands come from HEIF (ISO/IEC 23008-12)
# and AVIF; everything else below is a timed-media brand.
_IMAGE_BRANDS = frozenset(
    {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"mif2", b"avif", b"avio"}
)
_IMAGE_SEQUENCE_BRANDS = frozenset({b"msf1", b"hevs", b"avis"})  # hashed as an image: 1st frame
_AUDIO_BRANDS = frozenset({b"M4A ", b"M4B ", b"M4P ", b"F4A ", b"F4B "})
_QT_BRAND = b"qt  "
_VIDEO_BRANDS = frozenset(
    {
        b"isom", b"iso2", b"iso3", b"iso4", b"iso5", b"iso6", b"iso7", b"iso8", b"iso9",
        b"mp41", b"mp42", b"mp71", b"avc1", b"hvc1", b"hev1", b"av01", b"dash", b"msdh",
        b"M4V ", b"M4VH", b"M4VP", b"qt  ", b"3gp4", b"3gp5", b"3gp6", b"3gp7", b"3gp8",
        b"3gp9", b"3gg6", b"3g2a", b"3g2b", b"3g2c", b"f4v ", b"f4p ", b"mmp4", b"MSNV",
        b"NDAS", b"XAVC", b"mj2s", b"mjp2", b"CAEP", b"caqv",
    }
)  # fmt: skip
_QT_ATOMS = frozenset({b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"})

_EBML_MAGIC = b"\x1a\x45\xdf\xa3"
_EBML_DOCTYPE_ID = b"\x42\x82"


def sniff_head(head: bytes) -> Sniffed:
    """Classify from leading bytes alone; a GIF is reported as an image (see :func:`sniff`)."""
    if head.startswith(b"\xff\xd8\xff"):
        return Sniffed(Kind.IMAGE, "jpeg")
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return Sniffed(Kind.IMAGE, "png")
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return Sniffed(Kind.IMAGE, "gif")
    if head[:4] == b"RIFF" and len(head) >= 12:
        form = head[8:12]
        if form == b"WEBP":
            return Sniffed(Kind.IMAGE, "webp")
        if form in (b"AVI ", b"AVIX", b"AMV "):
            return Sniffed(Kind.VIDEO, "avi", "avi")
        return _OTHER
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return Sniffed(Kind.IMAGE, "tiff")
    if _is_bmp(head):
        return Sniffed(Kind.IMAGE, "bmp")
    if head[4:8] == b"ftyp":
        return _sniff_ftyp(head)
    if head[4:8] in _QT_ATOMS and int.from_bytes(head[:4], "big") >= 8:
        return Sniffed(Kind.VIDEO, "mov", "mov")
    if head.startswith(_EBML_MAGIC):
        return _sniff_ebml(head)
    if head.startswith(b"FLV\x01"):
        return Sniffed(Kind.VIDEO, "flv", "flv")
    if head.startswith(b"\x30\x26\xb2\x75\x8e\x66\xcf\x11"):
        return Sniffed(Kind.VIDEO, "asf", "asf")
    if head.startswith(b"\x00\x00\x01\xba"):
        return Sniffed(Kind.VIDEO, "mpeg-ps", "mpeg")
    if _is_mpegts(head):
        return Sniffed(Kind.VIDEO, "mpeg-ts", "mpegts")
    return _OTHER


def sniff(stream: BinaryIO) -> Sniffed:
    """Classify an open binary stream, reading from its current position; it is left consumed.

    A GIF counts as a video when it holds more than one frame (an animation is hashed frame by
    frame with vPDQ, like StopNCII treats short clips); finding the second frame walks the GIF
    block structure without decoding pixels. The caller seeks back (or reopens) before hashing.
    """
    head = stream.read(SNIFF_BYTES)
    verdict = sniff_head(head)
    if verdict.format == "gif" and count_gif_frames(_Chained(head, stream), stop_at=2) >= 2:
        return Sniffed(Kind.VIDEO, "gif", "gif")
    return verdict


def _is_bmp(head: bytes) -> bool:
    # "BM" alone is too weak (plain text may start with it): also require a known DIB header size.
    if len(head) < 18 or head[:2] != b"BM":
        return False
    return int.from_bytes(head[14:18], "little") in (12, 16, 40, 52, 56, 64, 108, 124)


def _is_mpegts(head: bytes) -> bool:
    # A transport stream is 188-byte packets each starting with the sync byte 0x47.
    return len(head) >= 188 * 4 and all(head[i * 188] == 0x47 for i in range(4))


def _sniff_ftyp(head: bytes) -> Sniffed:
    box_size = int.from_bytes(head[:4], "big")
    if box_size < 16 or box_size % 4:
        return _OTHER
    major = head[8:12]
    compatible = [head[i : i + 4] for i in range(16, min(box_size, len(head)) - 3, 4)]
    if major in _AUDIO_BRANDS:
        return _OTHER
    if major in _IMAGE_BRANDS or major in _IMAGE_SEQUENCE_BRANDS:
        return Sniffed(Kind.IMAGE, "heif")
    if major in _VIDEO_BRANDS:
        return Sniffed(Kind.VIDEO, "mov" if major == _QT_BRAND else "mp4", "mov")
    # Unknown major brand: decide from the compatible brands, video first (a video may list mif1
    # for a cover image, an image never lists a video brand).
    if any(brand in _VIDEO_BRANDS for brand in compatible):
        return Sniffed(Kind.VIDEO, "mp4", "mov")
    if any(brand in _IMAGE_BRANDS or brand in _IMAGE_SEQUENCE_BRANDS for brand in compatible):
        return Sniffed(Kind.IMAGE, "heif")
    return _OTHER


def _sniff_ebml(head: bytes) -> Sniffed:
    # The EBML header's DocType element (ID 0x4282) says "webm" or "matroska".
    at = head.find(_EBML_DOCTYPE_ID, 4, 64)
    if at < 0 or at + 3 > len(head):
        return _OTHER
    size_byte = head[at + 2]
    if not size_byte & 0x80:  # only the one-byte size form is used by real muxers here
        return _OTHER
    size = size_byte & 0x7F
    doctype = head[at + 3 : at + 3 + size]
    if doctype == b"webm":
        return Sniffed(Kind.VIDEO, "webm", "matroska")
    if doctype == b"matroska":
        return Sniffed(Kind.VIDEO, "matroska", "matroska")
    return _OTHER


class _Chained:
    """Reads ``head`` first, then the rest of ``stream``: the GIF walk reuses the sniffed bytes."""

    def __init__(self, head: bytes, stream: BinaryIO) -> None:
        self._head = head
        self._stream = stream

    def read(self, size: int) -> bytes:
        if self._head:
            out, self._head = self._head[:size], self._head[size:]
            if len(out) < size:
                out += self._stream.read(size - len(out))
            return out
        return self._stream.read(size)


class _Reader:
    """Exact-size reads over anything with ``read``; a short read means the GIF is truncated."""

    def __init__(self, stream: _Chained | BinaryIO) -> None:
        self._stream = stream

    def take(self, size: int) -> bytes | None:
        data = b""
        while len(data) < size:
            chunk = self._stream.read(size - len(data))
            if not chunk:
                return None
            data += chunk
        return data

    def skip_sub_blocks(self) -> bool:
        while True:
            length = self.take(1)
            if length is None:
                return False
            if length[0] == 0:
                return True
            if self.take(length[0]) is None:
                return False


def count_gif_frames(stream: _Chained | BinaryIO, *, stop_at: int = 2) -> int:
    """Count image descriptors in a GIF (GIF89a spec), stopping early at ``stop_at``.

    Reads from the stream's current position, which must be the GIF signature. Counts what is
    present up to the trailer, EOF or the first malformed block: a truncated or corrupt GIF is
    not an error here; the decoder reports it when hashing.
    """
    reader = _Reader(stream)
    header = reader.take(13)
    if header is None or header[:6] not in (b"GIF87a", b"GIF89a"):
        return 0
    flags = header[10]
    if flags & 0x80 and reader.take(3 << ((flags & 0x07) + 1)) is None:
        return 0
    frames = 0
    while frames < stop_at:
        introducer = reader.take(1)
        if introducer is None or introducer == b";":
            break
        if introducer == b"!":  # extension: label, then data sub-blocks
            if reader.take(1) is None or not reader.skip_sub_blocks():
                break
        elif introducer == b",":  # image descriptor, optional local table, LZW data
            descriptor = reader.take(9)
            if descriptor is None:
                break
            local = descriptor[8]
            if local & 0x80 and reader.take(3 << ((local & 0x07) + 1)) is None:
                break
            if reader.take(1) is None or not reader.skip_sub_blocks():
                break
            frames += 1
        else:
            break
    return frames
