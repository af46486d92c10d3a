"""PDQ on arrays: the hash value type, distance and match rule, and bit-exactness against the
``pdqhash`` binding of Meta's C++ reference (a test oracle only) on random pictures."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pdqhash
import pytest
import skimage.data
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

from hashing.errors import (
    HashingError,
    InvalidHashError,
    LowQualityError,
    UnreadableMediaError,
    UnsupportedMediaError,
)
from hashing.pdq import (
    MATCH_THRESHOLD,
    QUALITY_FLOOR,
    PdqHash,
    hamming_distance,
    hash_luma,
    hash_luma_dihedral_if_stable,
    hash_luma_if_stable,
    hash_rgb,
    hash_rgb_dihedral,
    is_match,
    luma_from_rgb,
    require_quality,
)

HEX = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"


def _oracle(rgb: np.ndarray) -> PdqHash:
    bits, quality = pdqhash.compute(rgb)
    return PdqHash(np.packbits(bits.astype(np.uint8)).tobytes(), int(quality))


# -- the value type ------------------------------------------------------------------------


def test_hex_round_trip() -> None:
    h = PdqHash.from_hex(HEX, 100)
    assert h.hex() == HEX
    assert h.digest == bytes.fromhex(HEX)
    assert PdqHash.from_hex(HEX.upper(), 100) == h


@pytest.mark.parametrize(
    "text",
    [HEX[:-1], HEX + "0", "0x" + HEX[2:], " " + HEX[1:], HEX[:-1] + "g", HEX[:-1] + "\n",
     HEX[:-1] + "\u0660", ""],
    ids=["short", "long", "0x-prefix", "space", "non-hex", "newline", "arabic-digit", "empty"],
)  # fmt: skip
def test_from_hex_is_strict(text: str) -> None:
    with pytest.raises(InvalidHashError):
        PdqHash.from_hex(text, 100)


@pytest.mark.parametrize("quality", [-1, 101, True, 50.0])
def test_quality_range_and_type(quality: object) -> None:
    with pytest.raises(InvalidHashError):
        PdqHash(bytes(32), quality)  # type: ignore[arg-type]


@pytest.mark.parametrize("digest", [bytes(31), bytes(33), b"", "00" * 32])
def test_digest_must_be_32_bytes(digest: object) -> None:
    with pytest.raises(InvalidHashError):
        PdqHash(digest, 100)  # type: ignore[arg-type]


def test_repr_hides_the_digest() -> None:
    assert HEX not in repr(PdqHash.from_hex(HEX, 100))
    assert "100" in repr(PdqHash.from_hex(HEX, 100))


def test_errors_are_hashing_errors() -> None:
    for cls in (InvalidHashError, LowQualityError, UnreadableMediaError, UnsupportedMediaError):
        assert issubclass(cls, HashingError)


# -- distance and match rule -----------------------------------------------------------------


def test_hamming_distance_counts_bits() -> None:
    a = bytes(32)
    assert hamming_distance(a, a) == 0
    assert hamming_distance(a, b"\xff" * 32) == 256
    assert hamming_distance(a, b"\x01" + bytes(30) + b"\x80") == 2


@pytest.mark.parametrize("bad", [bytes(31), bytes(33), b""])
def test_hamming_distance_rejects_wrong_lengths(bad: bytes) -> None:
    with pytest.raises(InvalidHashError):
        hamming_distance(bad, bytes(32))
    with pytest.raises(InvalidHashError):
        hamming_distance(bytes(32), bad)


def test_match_threshold_is_inclusive_31() -> None:
    a = bytes(32)
    b31 = (b"\xff" * 3 + b"\xfe") + bytes(28)  # 31 bits set
    b32 = b"\xff" * 4 + bytes(28)
    assert MATCH_THRESHOLD == 31
    assert is_match(a, b31)
    assert not is_match(a, b32)
    assert is_match(a, b32, threshold=32)
    with pytest.raises(ValueError, match="threshold"):
        is_match(a, a, threshold=-1)


def test_require_quality() -> None:
    good = PdqHash(bytes(32), QUALITY_FLOOR)
    assert require_quality(good) is good
    with pytest.raises(LowQualityError) as info:
        require_quality(PdqHash(bytes(32), QUALITY_FLOOR - 1))
    assert info.value.quality == QUALITY_FLOOR - 1
    assert not PdqHash(bytes(32), 49).fit_for_matching


@given(st.binary(min_size=32, max_size=32), st.binary(min_size=32, max_size=32))
def test_distance_is_a_metric(a: bytes, b: bytes) -> None:
    assert hamming_distance(a, b) == hamming_distance(b, a)
    assert (hamming_distance(a, b) == 0) == (a == b)
    c = bytes(x ^ 0x0F for x in a)
    assert hamming_distance(a, c) <= hamming_distance(a, b) + hamming_distance(b, c)


# -- bit-exactness against the reference binding ---------------------------------------------

SHAPES = [(1, 1), (4, 9), (5, 5), (5, 64), (63, 63), (64, 64), (65, 64), (127, 129), (128, 128),
          (300, 7), (333, 257), (1000, 40)]  # fmt: skip


def test_luma_equals_the_bindings_float64_sum_for_every_colour() -> None:
    """luma_from_rgb computes (299 R + 587 G + 114 B) / 1000 in float32; the binding rounds
    0.299 R + 0.587 G + 0.114 B summed in float64. Equal for all 2^24 colours."""
    green, blue = np.meshgrid(np.arange(256), np.arange(256), indexing="ij")
    for red in range(256):
        rgb = np.stack([np.full_like(green, red), green, blue], axis=-1).astype(np.uint8)
        binding = (red * 0.299 + green * 0.587 + blue * 0.114).astype(np.float32)
        assert np.array_equal(luma_from_rgb(rgb).view(np.int32), binding.view(np.int32)), red


def _patterns(rng: np.random.Generator, shape: tuple[int, int]) -> dict[str, np.ndarray]:
    rows, cols = shape
    ramp = np.add.outer(np.arange(rows), 2 * np.arange(cols))
    return {
        "noise": rng.integers(0, 256, (rows, cols, 3), dtype=np.uint8),
        "ramp": (ramp[:, :, None] * np.array([1, 3, 7]) % 256).astype(np.uint8),
        "flat": np.full((rows, cols, 3), 117, dtype=np.uint8),
        "blocks": np.kron(rng.integers(0, 256, (rows // 4 + 1, cols // 4 + 1, 3)),
                          np.ones((4, 4, 1)))[:rows, :cols].astype(np.uint8),
    }  # fmt: skip


@pytest.mark.parametrize("shape", SHAPES, ids=[f"{r}x{c}" for r, c in SHAPES])
def test_hash_rgb_equals_pdqhash(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(shape[0] * 1000 + shape[1])
    for name, rgb in _patterns(rng, shape).items():
        ours, oracle = hash_rgb(rgb), _oracle(rgb)
        assert (name, ours.hex(), ours.quality) == (name, oracle.hex(), oracle.quality)


@pytest.mark.parametrize("shape", SHAPES, ids=[f"{r}x{c}" for r, c in SHAPES])
def test_dihedral_equals_pdqhash(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(7 + shape[0] * 1000 + shape[1])
    for rgb in _patterns(rng, shape).values():
        bits, quality = pdqhash.compute_dihedral(rgb)
        ours = hash_rgb_dihedral(rgb)
        assert [h.digest for h in ours] == [np.packbits(b.astype(np.uint8)).tobytes() for b in bits]
        assert ours.quality == quality


@settings(max_examples=60, deadline=None)
@given(arrays(np.uint8, st.tuples(st.integers(1, 90), st.integers(1, 90), st.just(3))))
def test_hypothesis_hash_rgb_equals_pdqhash(rgb: np.ndarray) -> None:
    ours, oracle = hash_rgb(rgb), _oracle(rgb)
    assert (ours.hex(), ours.quality) == (oracle.hex(), oracle.quality)


def test_small_pictures_get_the_zero_hash() -> None:
    h = hash_rgb(np.zeros((4, 100, 3), dtype=np.uint8))
    assert (h.digest, h.quality) == (bytes(32), 0)


def test_flat_picture_has_quality_zero() -> None:
    h = hash_rgb(np.full((200, 300, 3), 200, dtype=np.uint8))
    assert h.quality == 0
    with pytest.raises(LowQualityError):
        require_quality(h)


def test_hash_luma_matches_hash_rgb_and_leaves_input_alone() -> None:
    rgb = skimage.data.astronaut()
    luma = luma_from_rgb(rgb)
    before = luma.copy()
    assert hash_luma(luma) == hash_rgb(rgb)
    assert np.array_equal(luma, before)
    assert hash_luma(luma.astype(np.float64)) == hash_rgb(rgb)  # rounded to float32 first


@pytest.mark.parametrize(
    ("bad", "error"),
    [
        (np.zeros((10, 10), dtype=np.uint8), UnsupportedMediaError),
        (np.zeros((10, 10, 4), dtype=np.uint8), UnsupportedMediaError),
        (np.zeros((10, 10, 3), dtype=np.float32), UnsupportedMediaError),
        (np.zeros((0, 10, 3), dtype=np.uint8), UnreadableMediaError),
        ([[1, 2, 3]], UnsupportedMediaError),
    ],
    ids=["2d", "rgba", "float", "empty", "list"],
)
def test_hash_rgb_rejects_bad_arrays(bad: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        hash_rgb(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "bad",
    [np.zeros((10, 10), dtype=np.int32), np.zeros((10, 10, 3), dtype=np.float32),
     np.zeros((0, 5), dtype=np.float32), np.full((10, 10), np.nan, dtype=np.float32)],
    ids=["int", "3d", "empty", "nan"],
)  # fmt: skip
def test_hash_luma_rejects_bad_arrays(bad: np.ndarray) -> None:
    with pytest.raises((UnsupportedMediaError, UnreadableMediaError)):
        hash_luma(bad)


# -- dihedral names mean what they say ---------------------------------------------------------

TURNS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "original": lambda a: a,
    "rotate90": lambda a: np.rot90(a, 1),
    "rotate180": lambda a: np.rot90(a, 2),
    "rotate270": lambda a: np.rot90(a, 3),
    "flip_x": lambda a: a[::-1],
    "flip_y": lambda a: a[:, ::-1],
    "flip_plus1": lambda a: a.swapaxes(0, 1),
    "flip_minus1": lambda a: np.rot90(a, 2).swapaxes(0, 1),
}


@pytest.mark.parametrize("name", list(TURNS))
def test_dihedral_variant_is_hash_of_turned_picture(name: str) -> None:
    photo = skimage.data.chelsea()
    variants = hash_rgb_dihedral(photo)
    turned = hash_rgb(np.ascontiguousarray(TURNS[name](photo)))
    distance = turned.distance(getattr(variants, name))
    others = [turned.distance(v) for n, v in zip(TURNS, variants, strict=True) if n != name]
    print(f"{name}: {distance} (nearest other variant {min(others)})")
    assert distance <= 10
    assert min(others) > MATCH_THRESHOLD


# -- hashes from approximate luma -------------------------------------------------------------


def test_exact_luma_is_stable_and_identical() -> None:
    rgb = skimage.data.astronaut()
    assert hash_luma_if_stable(luma_from_rgb(rgb)) == hash_rgb(rgb)
    dihedral = hash_luma_dihedral_if_stable(luma_from_rgb(rgb))
    assert dihedral is not None and list(dihedral) == list(hash_rgb_dihedral(rgb))


def test_approximate_luma_stays_within_2_bits() -> None:
    """Pillow's integer luma (what a JPEG's Y channel is) against the reference's float luma."""
    photo = Image.fromarray(skimage.data.coffee()).resize((1500, 1000))
    approximate = hash_luma_if_stable(np.asarray(photo.convert("L")))  # uint8 accepted
    assert approximate is not None
    distance = approximate.distance(hash_rgb(np.asarray(photo)))
    print(f"integer luma vs reference: {distance}")
    assert distance <= 2


@pytest.mark.parametrize(
    "picture",
    [
        np.repeat((np.arange(600)[None, :] // 75 * 37 % 256).astype(np.uint8), 400, axis=0),
        np.repeat(np.linspace(0, 255, 500, dtype=np.float32)[None, :], 300, axis=0),
        (np.add.outer(np.arange(480) // 60, np.arange(640) // 60) % 2 * 255).astype(np.uint8),
    ],
    ids=["stripes", "gradient", "checkerboard"],
)
def test_degenerate_pictures_are_not_stable(picture: np.ndarray) -> None:
    """Most DCT coefficients sit at the median: only the exact luma gives the reference bits."""
    assert hash_luma_if_stable(picture) is None
    assert hash_luma_dihedral_if_stable(picture) is None


def test_tiny_luma_is_not_stable() -> None:
    assert hash_luma_if_stable(np.zeros((4, 4), dtype=np.uint8)) is None
