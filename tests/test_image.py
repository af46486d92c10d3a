"""Decoding untrusted image bytes: formats, EXIF orientation, limits, and typed errors."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pillow_heif
import pytest
import skimage.data
from PIL import Image, ImageOps

from hashing.errors import (
    HashingError,
    MediaTooLargeError,
    UnreadableMediaError,
    UnsupportedMediaError,
)
from hashing.image import decode_image, hash_image, hash_image_dihedral
from hashing.pdq import hash_rgb, hash_rgb_dihedral

PHOTO = skimage.data.astronaut()  # 512x512 RGB


def _encode(rgb: np.ndarray, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, fmt, **options)
    return buffer.getvalue()


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares a huge picture (a decompression bomb's header)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", idat)
            + _png_chunk(b"IEND", b""))  # fmt: skip


# -- formats ---------------------------------------------------------------------------------

LOSSLESS = {"PNG": {}, "BMP": {}, "TIFF": {}, "WEBP": {"lossless": True}}


@pytest.mark.parametrize("fmt", list(LOSSLESS))
def test_lossless_formats_hash_exactly(fmt: str) -> None:
    data = _encode(PHOTO, fmt, **LOSSLESS[fmt])
    assert hash_image(data) == hash_rgb(PHOTO)


@pytest.mark.parametrize(
    ("fmt", "options"),
    [("JPEG", {"quality": 90}), ("WEBP", {"quality": 85}), ("GIF", {}), ("AVIF", {"quality": 80})],
    ids=["jpeg", "webp-lossy", "gif-palette", "avif"],
)
def test_lossy_formats_hash_close(fmt: str, options: dict[str, object]) -> None:
    distance = hash_image(_encode(PHOTO, fmt, **options)).distance(hash_rgb(PHOTO))
    print(f"{fmt}: {distance}")
    assert distance <= 16


def test_heic_round_trip() -> None:
    heif = pillow_heif.from_bytes(mode="RGB", size=(512, 512), data=PHOTO.tobytes())
    buffer = io.BytesIO()
    heif.save(buffer, quality=90)
    distance = hash_image(buffer.getvalue()).distance(hash_rgb(PHOTO))
    print(f"HEIC: {distance}")
    assert distance <= 12


def test_gif_first_frame() -> None:
    frames = [Image.fromarray(PHOTO), Image.fromarray(np.ascontiguousarray(PHOTO[::-1]))]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:])
    first = hash_image(_encode(PHOTO, "GIF"))
    assert hash_image(buffer.getvalue()).distance(first) <= 4


def test_stream_input_and_position_untouched_by_errors() -> None:
    data = _encode(PHOTO, "PNG")
    assert hash_image(io.BytesIO(data)) == hash_rgb(PHOTO)


def test_non_seekable_stream() -> None:
    class Pipe(io.RawIOBase):
        def __init__(self, data: bytes) -> None:
            self._inner = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def readinto(self, b: bytearray) -> int:  # type: ignore[override]
            chunk = self._inner.read(len(b))
            b[: len(chunk)] = chunk
            return len(chunk)

    assert hash_image(io.BufferedReader(Pipe(_encode(PHOTO, "PNG")))) == hash_rgb(PHOTO)


@pytest.mark.parametrize("mode", ["1", "L", "LA", "P", "PA", "RGBA", "CMYK", "I", "F", "I;16"])
def test_modes_convert_like_pillow(mode: str) -> None:
    im = (
        Image.fromarray(PHOTO).convert(mode if mode != "I;16" else "I").convert(mode)
        if mode != "PA"
        else Image.fromarray(PHOTO).convert("P").convert("PA")
    )
    fmt = "TIFF" if mode in ("I", "F", "CMYK", "I;16") else "PNG"
    if mode == "PA":
        fmt = "WEBP"
    buffer = io.BytesIO()
    im.save(buffer, fmt, **({"lossless": True} if fmt == "WEBP" else {}))
    with Image.open(io.BytesIO(buffer.getvalue())) as reopened:
        expected = hash_rgb(np.asarray(reopened.convert("RGB")))
    assert hash_image(buffer.getvalue()) == expected


# -- EXIF orientation ------------------------------------------------------------------------

# orientation -> how the stored pixels must be turned to show them upright
UPRIGHT = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.swapaxes(0, 1),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: np.rot90(a, 2).swapaxes(0, 1),
    8: lambda a: np.rot90(a, 1),
}
STORED = np.ascontiguousarray(skimage.data.coffee()[:, :560])  # 400x560, not square


def _jpeg_with_orientation(orientation: int, rgb: np.ndarray = STORED) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return _encode(rgb, "JPEG", quality=95, exif=exif.tobytes())


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation(orientation: int) -> None:
    data = _jpeg_with_orientation(orientation)
    with Image.open(io.BytesIO(data)) as im:
        stored = np.asarray(im.convert("RGB"))
        pillow_upright = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
    upright = np.ascontiguousarray(UPRIGHT[orientation](stored))
    assert np.array_equal(upright, pillow_upright)  # our table is Pillow's semantics
    assert np.array_equal(decode_image(data), upright)
    assert hash_image(data) == hash_rgb(upright)
    assert hash_image(data, apply_exif=False) == hash_rgb(stored)
    assert list(hash_image_dihedral(data)) == list(hash_rgb_dihedral(upright))


@pytest.mark.parametrize("orientation", range(1, 9))
def test_fast_path_follows_exif_orientation(orientation: int) -> None:
    big = np.asarray(Image.fromarray(STORED).resize((2241, 1603), Image.Resampling.LANCZOS))
    data = _jpeg_with_orientation(orientation, big)
    exact = hash_image(data, fast_decode=False)
    fast = hash_image(data)
    print(f"orientation {orientation}: fast vs exact {fast.distance(exact)}")
    assert fast.distance(exact) <= 2
    assert hash_image_dihedral(data).original == fast


def test_invalid_orientation_values_are_ignored() -> None:
    with Image.open(io.BytesIO(_jpeg_with_orientation(1))) as im:
        stored = hash_rgb(np.asarray(im.convert("RGB")))
    for value in (0, 9, 65535):
        assert hash_image(_jpeg_with_orientation(value)) == stored


def test_fast_path_is_exact_for_small_pictures() -> None:
    data = _encode(PHOTO, "JPEG", quality=90)  # 512 x 512: below FAST_DECODE_MIN_PIXELS
    assert hash_image(data) == hash_image(data, fast_decode=False) == hash_rgb(decode_image(data))


def test_fast_path_falls_back_on_degenerate_pictures() -> None:
    """Saturated colour bars: the JPEG's own luma would move the hash by ~128 bits, so the
    degenerate DCT is detected and the picture decoded in full (bit-exact)."""
    colours = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0], [0, 255, 255],
                        [255, 0, 255], [255, 255, 255], [0, 0, 0]], dtype=np.uint8)  # fmt: skip
    bars = np.ascontiguousarray(colours[np.arange(1280) * 8 // 1280][None].repeat(960, axis=0))
    data = _encode(bars, "JPEG", quality=90)
    exact = hash_rgb(decode_image(data))
    assert hash_image(data) == exact
    assert hash_image(io.BytesIO(data)) == exact  # the fallback re-reads the stream
    assert list(hash_image_dihedral(data)) == list(hash_rgb_dihedral(decode_image(data)))


# -- bad input -------------------------------------------------------------------------------


def test_zero_bytes() -> None:
    with pytest.raises(UnreadableMediaError):
        hash_image(b"")
    with pytest.raises(UnreadableMediaError):
        hash_image(io.BytesIO(b""))


def test_truncated_jpeg() -> None:
    data = _encode(PHOTO, "JPEG", quality=90)
    for cut in (len(data) // 2, 200, 3):
        with pytest.raises(UnreadableMediaError):
            hash_image(data[:cut])


def test_corrupt_middle_of_png() -> None:
    data = bytearray(_encode(PHOTO, "PNG"))
    data[len(data) // 2 : len(data) // 2 + 64] = b"\x00" * 64
    with pytest.raises(UnreadableMediaError):
        hash_image(bytes(data))


@pytest.mark.parametrize(
    "data",
    [
        b"hello, this is a text file named photo.jpg\n",
        b"\x00" * 100,
        b"\xff\xd8\xff" + b"\x00" * 20,
    ],
    ids=["text", "zeros", "jpeg-magic-only"],
)
def test_not_an_image(data: bytes) -> None:
    with pytest.raises(UnreadableMediaError):
        hash_image(data)


@pytest.mark.parametrize(
    "data",
    [b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom",
     b"<svg xmlns='http://www.w3.org/2000/svg'/>", b"8BPS\x00\x01" + bytes(30)],
    ids=["pdf", "mp4", "svg", "psd"],
)  # fmt: skip
def test_known_unsupported_formats(data: bytes) -> None:
    with pytest.raises(UnsupportedMediaError):
        hash_image(data)


def test_other_pillow_formats_are_not_decoded() -> None:
    with pytest.raises(UnreadableMediaError):
        hash_image(_encode(PHOTO, "PPM"))  # Pillow could, but it is not on the allow-list


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_decompression_bomb_is_refused_before_decoding() -> None:
    with pytest.raises(MediaTooLargeError):
        hash_image(_png_declaring(100_000, 100_000))  # 10 Gpx: Pillow's own guard too
    with pytest.raises(MediaTooLargeError):
        hash_image(_png_declaring(20_000, 8_000))  # 160 Mpx: under Pillow's, over ours
    with pytest.raises(MediaTooLargeError):
        hash_image(_encode(PHOTO, "PNG"), max_pixels=512 * 511)
    assert hash_image(_encode(PHOTO, "PNG"), max_pixels=512 * 512) == hash_rgb(PHOTO)


def test_max_pixels_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_pixels"):
        hash_image(_encode(PHOTO, "PNG"), max_pixels=0)


def test_one_pixel_image() -> None:
    h = hash_image(_encode(np.array([[[10, 20, 30]]], dtype=np.uint8), "PNG"))
    assert (h.digest, h.quality) == (bytes(32), 0)


def test_flat_images_are_reported() -> None:
    h = hash_image(_encode(np.full((300, 400, 3), 90, dtype=np.uint8), "PNG"))
    assert h.quality == 0
    assert not h.fit_for_matching


def test_wrong_input_type() -> None:
    with pytest.raises(TypeError):
        hash_image("photo.jpg")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        hash_image(io.StringIO("text"))  # type: ignore[arg-type]


def test_every_error_is_a_hashing_error() -> None:
    for bad in (b"", b"junk", _png_declaring(100_000, 100_000)):
        with pytest.raises(HashingError):
            hash_image(bad)
