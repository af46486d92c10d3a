"""File-level facts: one-pass MD5 + SHA-256 (hashing/digest.py), kinds (hashing/kinds.py)."""

from __future__ import annotations

import hashlib
import io
import json
import tracemalloc
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from hashing.digest import CHUNK_SIZE, FileDigests, digest_bytes, digest_stream
from hashing.errors import InvalidHashError, MediaTooLargeError
from hashing.kinds import Kind, count_gif_frames, sniff, sniff_head

# -- digests --------------------------------------------------------------------------------

KNOWN = {
    # RFC 1321 appendix A.5 and FIPS 180-2 appendix B.1.
    "empty": (b"", "d41d8cd98f00b204e9800998ecf8427e",
              "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    "abc": (b"abc", "900150983cd24fb0d6963f7d28e17f72",
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
    "quick-fox": (b"The quick brown fox jumps over the lazy dog",
                  "9e107d9d372bb6826bd81d3542a419d6",
                  "d7a8fbb307d7809469ca9abcb0082e4f8d5651e46d3cdb762d02d0bf37c9e592"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(KNOWN))
def test_known_vectors(case: str) -> None:
    data, md5, sha256 = KNOWN[case]
    for result in (digest_bytes(data), digest_stream(io.BytesIO(data))):
        assert (result.md5_hex, result.sha256_hex, result.size) == (md5, sha256, len(data))
        assert result == FileDigests.from_hex(md5, sha256, len(data))


def pdq_vector_images() -> list[dict[str, Any]]:
    from tests.conftest import CONFORMANCE_VECTORS

    records: list[dict[str, Any]] = json.loads(
        (CONFORMANCE_VECTORS / "pdq" / "expected.json").read_text("utf-8")
    )
    return records


@pytest.mark.parametrize("record", pdq_vector_images(), ids=lambda r: str(r["file"]))
def test_shared_pdq_images(record: dict[str, Any], conformance_vectors: Path) -> None:
    with (conformance_vectors / "pdq" / "images" / record["file"]).open("rb") as stream:
        result = digest_stream(stream)
    assert result.md5_hex == record["md5"]
    assert result.sha256_hex == record["sha256"]
    assert result.size == record["bytes"]


class Generated(io.RawIOBase):
    """``size`` bytes of a repeating pattern, made on the fly: a multi-hundred-MB file in no RAM."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.left = size
        self.block = bytes(range(256)) * (1 << 12)  # 1 MiB

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        count = min(len(buffer), self.left, len(self.block))
        buffer[:count] = self.block[:count]
        self.left -= count
        return count


class ReadOnly:
    """A stream with ``read`` but no ``readinto`` (some wrappers), fed in odd-sized pieces."""

    def __init__(self, data: bytes) -> None:
        self.stream = io.BytesIO(data)

    def read(self, size: int = -1) -> bytes:
        return self.stream.read(min(size, 777))


def test_large_stream_in_bounded_memory() -> None:
    size = 256 << 20
    expected_md5, expected_sha = hashlib.md5(), hashlib.sha256()
    block = bytes(range(256)) * (1 << 12)
    for _ in range(size // len(block)):
        expected_md5.update(block)
        expected_sha.update(block)
    tracemalloc.start()
    try:
        result = digest_stream(Generated(size))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.size == size
    assert (result.md5, result.sha256) == (expected_md5.digest(), expected_sha.digest())
    assert peak < 3 * CHUNK_SIZE  # one read buffer (+ the generator's block), never the file


@settings(max_examples=50, deadline=None)
@given(st.binary(max_size=5000), st.integers(1, 4096))
def test_stream_equals_bytes(data: bytes, chunk: int) -> None:
    expected = digest_bytes(data)
    assert digest_stream(io.BytesIO(data), chunk_size=chunk) == expected
    assert digest_stream(ReadOnly(data), chunk_size=chunk) == expected


def test_max_bytes() -> None:
    assert digest_stream(io.BytesIO(b"x" * 10), max_bytes=10).size == 10
    with pytest.raises(MediaTooLargeError):
        digest_stream(io.BytesIO(b"x" * 11), max_bytes=10, chunk_size=4)


@pytest.mark.parametrize(
    ("md5", "sha256", "size"),
    [
        ("d41d8cd98f00b204e9800998ecf8427", "e3" * 32, 0),  # short
        ("D41D8CD98F00B204E9800998ECF8427E", "e3" * 32, 0),  # uppercase: not canonical
        ("d41d8cd98f00b204e9800998ecf8427e", "e3" * 31 + "zz", 0),  # not hex
        ("d41d8cd98f00b204e9800998ecf8427e", " " + "e3" * 32, 0),  # space
        ("d41d8cd98f00b204e9800998ecf8427e", "e3" * 32, -1),  # negative size
        ("d41d8cd98f00b204e9800998ecf8427e", "e3" * 32, True),  # bool is not a size
        ("d41d8cd98f00b204e9800998ecf8427\u0665", "e3" * 32, 0),  # non-ASCII digit
    ],
    ids=["short", "uppercase", "not-hex", "space", "negative-size", "bool-size", "non-ascii"],
)
def test_from_hex_rejects(md5: str, sha256: str, size: int) -> None:
    with pytest.raises(InvalidHashError):
        FileDigests.from_hex(md5, sha256, size)


def test_raw_lengths_checked() -> None:
    with pytest.raises(InvalidHashError):
        FileDigests(bytes(15), bytes(32), 0)
    with pytest.raises(InvalidHashError):
        FileDigests(bytes(16), bytes(33), 0)


# -- kinds ----------------------------------------------------------------------------------


def pillow_bytes(fmt: str, frames: int = 1, **options: Any) -> bytes:
    images = [Image.new("RGB", (16, 16), (40 * i, 100, 200)) for i in range(frames)]
    buffer = io.BytesIO()
    if frames > 1:
        options.update(save_all=True, append_images=images[1:])
    images[0].save(buffer, fmt, **options)
    return buffer.getvalue()


def container_bytes(fmt: str, codec: str) -> bytes:
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=fmt) as container:
        stream = container.add_stream(codec, rate=10)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        frame = av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), np.uint8), format="rgb24")
        for packet in [*stream.encode(frame), *stream.encode()]:
            container.mux(packet)
    return buffer.getvalue()


def ftyp(major: bytes, *compatible: bytes) -> bytes:
    body = major + b"\x00\x00\x00\x00" + b"".join(compatible)
    return (8 + len(body)).to_bytes(4, "big") + b"ftyp" + body + b"\x00\x00\x00\x08free"


KIND_CASES: dict[str, tuple[bytes, Kind, str]] = {
    "jpeg": (pillow_bytes("JPEG"), Kind.IMAGE, "jpeg"),
    "png": (pillow_bytes("PNG"), Kind.IMAGE, "png"),
    "webp": (pillow_bytes("WEBP"), Kind.IMAGE, "webp"),
    "bmp": (pillow_bytes("BMP"), Kind.IMAGE, "bmp"),
    "tiff": (pillow_bytes("TIFF"), Kind.IMAGE, "tiff"),
    "gif-single-frame": (pillow_bytes("GIF"), Kind.IMAGE, "gif"),
    "gif-animated": (pillow_bytes("GIF", frames=3, duration=100), Kind.VIDEO, "gif"),
    "heic-brand": (ftyp(b"heic", b"mif1", b"heic"), Kind.IMAGE, "heif"),
    "avif-brand": (ftyp(b"avif", b"avif", b"mif1"), Kind.IMAGE, "heif"),
    "mif1-major": (ftyp(b"mif1", b"heic"), Kind.IMAGE, "heif"),
    "iphone-mov": (ftyp(b"qt  ", b"qt  "), Kind.VIDEO, "mov"),
    "mp4-isom": (ftyp(b"isom", b"isom", b"iso2", b"avc1", b"mp41"), Kind.VIDEO, "mp4"),
    "mp4-unknown-major": (ftyp(b"zzzz", b"mp42"), Kind.VIDEO, "mp4"),
    "3gp": (ftyp(b"3gp5", b"3gp5"), Kind.VIDEO, "mp4"),
    "m4a-audio": (ftyp(b"M4A ", b"M4A ", b"mp42"), Kind.OTHER, ""),
    "ftyp-unknown": (ftyp(b"zzzz", b"yyyy"), Kind.OTHER, ""),
    "bare-moov": (b"\x00\x00\x00\x10moov" + bytes(8), Kind.VIDEO, "mov"),
    "mp4-real": (container_bytes("mp4", "libx264"), Kind.VIDEO, "mp4"),
    "mov-real": (container_bytes("mov", "mpeg4"), Kind.VIDEO, "mov"),
    "webm-real": (container_bytes("webm", "libvpx"), Kind.VIDEO, "webm"),
    "mkv-real": (container_bytes("matroska", "mpeg4"), Kind.VIDEO, "matroska"),
    "avi-real": (container_bytes("avi", "mpeg4"), Kind.VIDEO, "avi"),
    "wav": (b"RIFF\x24\x00\x00\x00WAVEfmt ", Kind.OTHER, ""),
    "text": (b"Hello, world\n", Kind.OTHER, ""),
    "bm-text": (b"BM is not a bitmap, just text that starts with BM\n", Kind.OTHER, ""),
    "pdf": (b"%PDF-1.7\n", Kind.OTHER, ""),
    "empty": (b"", Kind.OTHER, ""),
    "ebml-unknown-doctype": (b"\x1a\x45\xdf\xa3\x9f\x42\x82\x84abcd", Kind.OTHER, ""),
    "truncated-riff": (b"RIFF", Kind.OTHER, ""),
}


@pytest.mark.parametrize("case", sorted(KIND_CASES))
def test_sniff(case: str) -> None:
    data, kind, fmt = KIND_CASES[case]
    verdict = sniff(io.BytesIO(data))
    assert (verdict.kind, verdict.format) == (kind, fmt)
    assert bool(verdict.demuxer) == (kind is Kind.VIDEO)


def test_animated_gif_counted_from_the_structure() -> None:
    assert count_gif_frames(io.BytesIO(pillow_bytes("GIF", frames=5)), stop_at=10) == 5
    assert count_gif_frames(io.BytesIO(pillow_bytes("GIF", frames=5)), stop_at=2) == 2
    assert count_gif_frames(io.BytesIO(pillow_bytes("GIF")), stop_at=10) == 1
    truncated = pillow_bytes("GIF", frames=3)[:40]
    assert count_gif_frames(io.BytesIO(truncated)) <= 1
    assert sniff_head(pillow_bytes("GIF", frames=3)).kind is Kind.IMAGE  # head alone can't tell


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_sniff_never_raises(data: bytes) -> None:
    for prefix in (b"", b"GIF89a", b"\x1a\x45\xdf\xa3", b"RIFF", b"\x00\x00\x00\x20ftyp"):
        verdict = sniff(io.BytesIO(prefix + data))
        assert verdict.kind in Kind
