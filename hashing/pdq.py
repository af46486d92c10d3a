"""PDQ, Meta's 256-bit perceptual image hash, computed exactly as the reference does.

The reference is facebook/ThreatExchange ``pdq/cpp`` (``hashing/pdqhashing.cpp``,
``downscaling/downscaling.cpp``, ``hashing/torben.cpp``) as run by the ``pdqhash`` Python binding,
which is what python-threatexchange, HMA and StopNCII-style deployments use. Partners compare our
hashes with hashes made by that code, so every step below reproduces its float32 arithmetic in
the same order, and the output is bit-for-bit identical (see specs/pdq.md, section 3).

Pipeline: RGB -> luma -> Jarosz tent filter (two box passes each way) -> decimate to 64x64 ->
quality from gradients -> 16x16 DCT -> threshold at the median -> 256 bits.

Pure: functions take NumPy arrays and return values; nothing here reads files or keeps state.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from hashing.errors import (
    InvalidHashError,
    LowQualityError,
    UnreadableMediaError,
    UnsupportedMediaError,
)

__all__ = [
    "DIGEST_SIZE",
    "HEX_LENGTH",
    "MATCH_THRESHOLD",
    "MIN_HASHABLE_DIM",
    "QUALITY_FLOOR",
    "STABLE_LIMIT",
    "STABLE_MARGIN",
    "Dihedral",
    "PdqHash",
    "hamming_distance",
    "hash_luma",
    "hash_luma_dihedral",
    "hash_luma_dihedral_if_stable",
    "hash_luma_if_stable",
    "hash_rgb",
    "hash_rgb_dihedral",
    "is_match",
    "luma_from_rgb",
    "require_quality",
]

DIGEST_SIZE = 32
HEX_LENGTH = 64
MATCH_THRESHOLD = 31
"""Two hashes match when their Hamming distance is at most this (the reference's default)."""
QUALITY_FLOOR = 50
"""Hashes with a quality below this are too flat to match reliably (the reference's advice)."""
MIN_HASHABLE_DIM = 5
"""The reference gives an all-zero hash of quality 0 to images narrower or shorter than this."""

FloatArray = npt.NDArray[np.float32]

_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


# -- the hash value ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, repr=False)
class PdqHash:
    """A PDQ hash and the quality of the picture it came from.

    ``digest`` holds the 256 bits in the reference's order, so ``digest.hex()`` is the 64-hex
    text Meta's tools print. The repr hides the digest: hash values are confidential (they can
    be inverted into a likeness of the picture) and must not end up in logs by accident.
    """

    digest: bytes
    quality: int

    def __post_init__(self) -> None:
        if not isinstance(self.digest, bytes) or len(self.digest) != DIGEST_SIZE:
            raise InvalidHashError(f"a PDQ digest is exactly {DIGEST_SIZE} bytes")
        if isinstance(self.quality, bool) or not isinstance(self.quality, int):
            raise InvalidHashError("PDQ quality must be an int")
        if not 0 <= self.quality <= 100:
            raise InvalidHashError("PDQ quality must be between 0 and 100")

    def hex(self) -> str:
        """The 64 lowercase hex digits the reference prints."""
        return self.digest.hex()

    @classmethod
    def from_hex(cls, text: str, quality: int) -> PdqHash:
        """Parse the reference's 64-hex text strictly (no prefix, spaces or other lengths)."""
        if not isinstance(text, str) or len(text) != HEX_LENGTH:
            raise InvalidHashError(f"a PDQ hash is exactly {HEX_LENGTH} hex digits")
        if not _HEX_DIGITS.issuperset(text):
            raise InvalidHashError("a PDQ hash may contain only the hex digits 0-9 and a-f")
        return cls(bytes.fromhex(text), quality)

    @property
    def fit_for_matching(self) -> bool:
        """True when the quality reaches :data:`QUALITY_FLOOR`."""
        return self.quality >= QUALITY_FLOOR

    def distance(self, other: PdqHash) -> int:
        """Hamming distance to another hash (0..256)."""
        return hamming_distance(self.digest, other.digest)

    def __repr__(self) -> str:
        return f"PdqHash(digest=<{DIGEST_SIZE} bytes hidden>, quality={self.quality})"


@dataclass(frozen=True, slots=True)
class Dihedral:
    """The hashes of the eight rotations and flips of one picture, from one DCT.

    Names follow the reference: ``rotate90`` turns the picture a quarter counter-clockwise
    (``numpy.rot90``), ``flip_x`` mirrors top to bottom, ``flip_y`` left to right,
    ``flip_plus1`` transposes and ``flip_minus1`` transposes across the other diagonal.
    """

    original: PdqHash
    rotate90: PdqHash
    rotate180: PdqHash
    rotate270: PdqHash
    flip_x: PdqHash
    flip_y: PdqHash
    flip_plus1: PdqHash
    flip_minus1: PdqHash

    def __iter__(self) -> Iterator[PdqHash]:
        """The eight hashes in the reference's order (the order pdqhash.compute_dihedral uses)."""
        return iter(
            (
                self.original,
                self.rotate90,
                self.rotate180,
                self.rotate270,
                self.flip_x,
                self.flip_y,
                self.flip_plus1,
                self.flip_minus1,
            )
        )

    @property
    def quality(self) -> int:
        """The picture's quality (the same for all eight)."""
        return self.original.quality


# -- distance and match rule -----------------------------------------------------------------


def _check_digest(value: bytes, name: str) -> None:
    if not isinstance(value, bytes | bytearray | memoryview) or len(value) != DIGEST_SIZE:
        raise InvalidHashError(f"{name} must be a {DIGEST_SIZE}-byte PDQ digest")


def hamming_distance(a: bytes, b: bytes) -> int:
    """Number of differing bits between two 32-byte digests (0..256)."""
    _check_digest(a, "first hash")
    _check_digest(b, "second hash")
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).bit_count()


def is_match(a: bytes, b: bytes, threshold: int = MATCH_THRESHOLD) -> bool:
    """True when the two digests are within ``threshold`` bits (inclusive).

    Quality is not looked at here: callers reject unfit hashes first (:func:`require_quality`).
    """
    if isinstance(threshold, bool) or not isinstance(threshold, int) or not 0 <= threshold <= 256:
        raise ValueError("threshold must be an int between 0 and 256")
    return hamming_distance(a, b) <= threshold


def require_quality(h: PdqHash, floor: int = QUALITY_FLOOR) -> PdqHash:
    """Return ``h`` if its quality reaches ``floor``, else raise :class:`LowQualityError`.

    Flat pictures (blank, nearly uniform) give hashes that collide with many others; they are
    reported rather than silently submitted or matched.
    """
    if h.quality < floor:
        raise LowQualityError(
            f"picture too flat to fingerprint reliably (quality {h.quality} < {floor})",
            quality=h.quality,
        )
    return h


# -- step 1: luma ----------------------------------------------------------------------------

_LUMA_WEIGHTS = np.array([299, 587, 114], dtype=np.float32)
_THOUSAND = np.float32(1000)
_LUMA_ROWS = 64
"""Pixel rows turned into float32 per step, so the temporaries stay in the CPU cache."""
_TILE = 256
"""Side of the square tiles a transpose is copied in, so reads and writes both stay in cache."""


def luma_from_rgb(rgb: npt.NDArray[np.uint8]) -> FloatArray:
    """Luma exactly as the ``pdqhash`` binding computes it (height x width, float32).

    The binding evaluates 0.299 R + 0.587 G + 0.114 B in float64 and rounds once to float32.
    That equals the float32 quotient (299 R + 587 G + 114 B) / 1000: the numerator is an
    integer below 2^24, so exact in float32, IEEE division rounds correctly, and the float64
    sum never lies close enough to a float32 rounding boundary to round the other way
    (checked for all 2^24 colours in tests/test_pdq.py). float32 halves the memory traffic.

    (The C++ command-line tool sums in float32 instead; the two differ by at most one float32
    ulp per pixel. We follow the binding because the deployed hashes come from it.)
    """
    _check_rgb(rgb)
    return np.ascontiguousarray(_luma_transposed(rgb).T)


def _luma_transposed(rgb: npt.NDArray[np.uint8]) -> FloatArray:
    """:func:`luma_from_rgb` stored transposed (width x height), the layout the first filter
    pass wants. Works on strips of rows so every temporary stays in cache; the numerator is
    an exact integer in float32 whatever order the matrix product sums it in."""
    rows, cols = rgb.shape[:2]
    out = np.empty((cols, rows), dtype=np.float32)
    strip = np.empty((min(rows, _TILE), cols), dtype=np.float32)
    pixels = np.empty((min(rows, _LUMA_ROWS), cols, 3), dtype=np.float32)
    for top in range(0, rows, _TILE):
        height = min(_TILE, rows - top)
        for sub in range(0, height, _LUMA_ROWS):
            part = rgb[top + sub : top + min(height, sub + _LUMA_ROWS)]
            floats = pixels[: part.shape[0]]
            np.copyto(floats, part)
            luma = strip[sub : sub + part.shape[0]]
            np.matmul(floats, _LUMA_WEIGHTS, out=luma)
            np.divide(luma, _THOUSAND, out=luma)
        _copy_transposed(strip[:height], out[:, top : top + height])
    return out


def _check_rgb(rgb: object) -> None:
    if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8:
        raise UnsupportedMediaError("PDQ needs an RGB array of dtype uint8")
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise UnsupportedMediaError("PDQ needs an RGB array shaped (height, width, 3)")
    if rgb.shape[0] < 1 or rgb.shape[1] < 1:
        raise UnreadableMediaError("the picture has no pixels")


def _check_luma(luma: object) -> npt.NDArray[np.floating[Any]]:
    if not isinstance(luma, np.ndarray) or not np.issubdtype(luma.dtype, np.floating):
        raise UnsupportedMediaError("PDQ luma must be a floating-point array")
    if luma.ndim != 2:
        raise UnsupportedMediaError("PDQ luma must be shaped (height, width)")
    if luma.shape[0] < 1 or luma.shape[1] < 1:
        raise UnreadableMediaError("the picture has no pixels")
    return luma


def _as_luma_transposed(luma: object) -> FloatArray:
    """A float32 transposed (width x height) copy of a caller's luma array (floats or uint8)."""
    if isinstance(luma, np.ndarray) and luma.dtype == np.uint8 and luma.ndim == 2 and luma.size:
        out = np.empty(luma.shape[::-1], dtype=np.float32)
        _copy_transposed(luma, out)
        return out
    checked = _check_luma(luma)
    out = np.empty(checked.shape[::-1], dtype=np.float32)
    _copy_transposed(checked, out)
    if not np.isfinite(out).all():
        raise UnreadableMediaError("PDQ luma contains NaN or infinite values")
    return out


# -- step 2: Jarosz tent filter and decimation ---------------------------------------------
#
# The reference filters each line with one float32 running sum, which rounds after every
# addition and subtraction, so the result depends on their exact order and cannot be had from
# cumulative sums. We run that same recurrence for every line at once: lines are laid out as
# columns of a C-ordered array, and each step of the recurrence is one NumPy operation on a
# contiguous row (one float32 per line). A picture of n x m pixels costs about 2 n + 2 m
# vectorised steps per round; the data is transposed between passes so the lines always run
# down the columns.


def _window_size(old_dimension: int, new_dimension: int) -> int:
    """Box width per pass: ceil(old / (2 * new)), so two passes span one output cell."""
    return (old_dimension + 2 * new_dimension - 1) // (2 * new_dimension)


def _box_counts(n: int, window: int) -> FloatArray:
    """How many samples output ``o`` of a box pass sums, what the reference divides it by:
    output ``o`` covers samples ``o + half - window .. o + half - 1`` clipped to the line."""
    half = (window + 2) // 2
    o = np.arange(n)
    first = np.maximum(o + half - window, 0)
    last = np.minimum(o + half - 1, n - 1)
    return (last - first + 1).astype(np.float32)


def _box_sums(x: FloatArray, window: int, out: FloatArray) -> None:
    """The reference's running sums down the columns of ``x`` into ``out`` (not yet divided).

    Per line, the reference adds samples ``0..half-2`` without output; then for each output
    ``o`` adds sample ``o + half - 1`` (while there is one) and subtracts sample
    ``o + half - 1 - window`` (once there is one), in that order. ``out[o]`` holds the sum
    after step ``o``, and also serves as the running state for step ``o + 1``.
    """
    n = x.shape[0]
    half = (window + 2) // 2
    src = list(x)
    dst = list(out)
    add, sub = np.add, np.subtract
    state = np.zeros_like(src[0])
    for i in range(half - 1):
        add(state, src[i], state)
    growing = min(window - half + 1, n)
    for o in range(growing):
        add(state, src[o + half - 1], dst[o])
        state = dst[o]
    for o in range(growing, n - half + 1):
        row = dst[o]
        add(state, src[o + half - 1], row)
        sub(row, src[o + half - 1 - window], row)
        state = row
    for o in range(max(n - half + 1, growing), n):
        sub(state, src[o + half - 1 - window], dst[o])
        state = dst[o]


def _box_sums_at(x: FloatArray, window: int, keep: list[int]) -> FloatArray:
    """Box pass down the columns of ``x`` like :func:`_box_sums` (same operations in the same
    order) but keeping only the outputs at ``keep``, already divided."""
    n = x.shape[0]
    half = (window + 2) // 2
    src = list(x)
    counts = _box_counts(n, window)
    out = np.empty((len(keep), x.shape[1]), dtype=np.float32)
    wanted: dict[int, list[int]] = {}
    for j, o in enumerate(keep):
        wanted.setdefault(o, []).append(j)
    add, sub, div = np.add, np.subtract, np.divide
    state = np.zeros_like(src[0])
    for i in range(half - 1):
        add(state, src[i], state)
    for o in range(n):
        enter = o + half - 1
        if enter < n:
            add(state, src[enter], state)
        if enter >= window:
            sub(state, src[enter - window], state)
        for j in wanted.get(o, ()):
            div(state, counts[o], out[j])
    return out


def _copy_transposed(
    src: npt.NDArray[Any], out: FloatArray, divisor: FloatArray | None = None
) -> None:
    """``out = src.T`` (or ``src.T / divisor`` with ``divisor`` broadcast along out's rows),
    tile by tile. Division is element-wise float32, as the reference's."""
    rows, cols = out.shape
    for top in range(0, rows, _TILE):
        for left in range(0, cols, _TILE):
            block = src[left : left + _TILE, top : top + _TILE].T
            target = out[top : top + _TILE, left : left + _TILE]
            if divisor is None:
                np.copyto(target, block, casting="same_kind")
            else:
                np.divide(block, divisor[left : left + _TILE], out=target)


def _sample_positions(length: int, size: int = 64) -> list[int]:
    """The reference's decimation picks the sample nearest each output cell's centre."""
    return [int(((i + 0.5) * length) / size) for i in range(size)]


def _downsample_transposed(luma_t: FloatArray) -> FloatArray:
    """Jarosz tent filter (two rounds of a box along rows, then along columns) and decimation
    to 64x64, from the transposed luma (width x height), which it overwrites.

    The second round only keeps what the decimation samples: 64 columns of the row pass,
    then 64 rows of those.
    """
    cols, rows = luma_t.shape
    along_rows = _window_size(cols, 64)
    along_cols = _window_size(rows, 64)
    sums = np.empty_like(luma_t)
    _box_sums(luma_t, along_rows, sums)
    first = np.empty((rows, cols), dtype=np.float32)
    _copy_transposed(sums, first, _box_counts(cols, along_rows))
    sums_rc = sums.reshape(rows, cols)
    _box_sums(first, along_cols, sums_rc)
    _copy_transposed(sums_rc, luma_t, _box_counts(rows, along_cols))
    picked = _box_sums_at(luma_t, along_rows, _sample_positions(cols))  # 64 x rows
    return _box_sums_at(np.ascontiguousarray(picked.T), along_cols, _sample_positions(rows))


def _block_64(luma_t: FloatArray, skip_if_64: bool) -> FloatArray:
    """The 64x64 block the DCT and quality read, from transposed luma."""
    if skip_if_64 and luma_t.shape == (64, 64):
        # The reference's single-hash entry point takes a 64x64 input as already downsampled
        # (its dihedral entry point does not: it filters anyway).
        return np.ascontiguousarray(luma_t.T)
    return _downsample_transposed(luma_t)


# -- step 3: quality -------------------------------------------------------------------------


def _quality(block: FloatArray) -> int:
    """Sum of significant gradients over the 64x64 downsample, scaled to 0..100.

    Each neighbour difference is computed in float32 as ``(u - v) * 100 / 255`` and truncated
    toward zero, as the reference's float-to-int conversion does.
    """
    hundred = np.float32(100)
    scale = np.float32(255)
    down = ((block[:-1, :] - block[1:, :]) * hundred / scale).astype(np.int64)
    across = ((block[:, :-1] - block[:, 1:]) * hundred / scale).astype(np.int64)
    gradient_sum = int(np.abs(down).sum() + np.abs(across).sum())
    return min(gradient_sum // 90, 100)


# -- step 4: DCT -----------------------------------------------------------------------------


def _dct_matrix() -> FloatArray:
    """The reference's 16x64 DCT-II rows 1..16, each entry rounded to float32.

    Entries are computed in double with the C library's cos (as the reference does) and the
    scale factor sqrt(2/64) first rounded to float32.
    """
    scale = float(np.float32(math.sqrt(2.0 / 64)))
    rows = [
        [scale * math.cos((math.pi / 2.0 / 64.0) * (i + 1) * (2 * j + 1)) for j in range(64)]
        for i in range(16)
    ]
    matrix = np.array(rows, dtype=np.float64).astype(np.float32)
    matrix.setflags(write=False)
    return matrix


_DCT = _dct_matrix()
_DCT_COLUMNS = tuple(np.ascontiguousarray(_DCT[:, k : k + 1]) for k in range(64))


def _dct16(block: FloatArray) -> FloatArray:
    """B = D A D^T with float32 products and sums in the reference's order (k = 0..63)."""
    t = np.zeros((16, 64), dtype=np.float32)
    for k in range(64):
        t += _DCT_COLUMNS[k] * block[k]
    b = np.zeros((16, 16), dtype=np.float32)
    for k in range(64):
        b += t[:, k : k + 1] * _DCT[:, k]
    return b


# -- step 5: bits ----------------------------------------------------------------------------


def _median(values: FloatArray) -> np.float32:
    """The reference's median (Torben's method): for 256 values, the 128th smallest."""
    flat = values.reshape(-1)
    k = (flat.size + 1) // 2 - 1
    return np.float32(np.partition(flat, k)[k])


def _bits_to_digest(dct: FloatArray) -> bytes:
    """Bit i*16+j is set when coefficient (i, j) exceeds the median; the text prints bit 255
    first, so the digest is the bit array reversed and packed most-significant-bit first."""
    bits = (dct > _median(dct)).reshape(-1)[::-1]
    return np.packbits(bits).tobytes()


def _make_hash(dct: FloatArray, quality: int) -> PdqHash:
    return PdqHash(_bits_to_digest(dct), quality)


_ZERO = bytes(DIGEST_SIZE)


def _too_small(shape: tuple[int, ...]) -> bool:
    return shape[0] < MIN_HASHABLE_DIM or shape[1] < MIN_HASHABLE_DIM


# -- public entry points -----------------------------------------------------------------------


def hash_luma(luma: npt.NDArray[np.floating[Any]]) -> PdqHash:
    """PDQ of a luma array (height x width, values 0..255), rounded to float32 first.

    Pictures under 5 pixels on a side get the reference's all-zero hash with quality 0.
    """
    x = _as_luma_transposed(luma)
    if _too_small(x.shape):
        return PdqHash(_ZERO, 0)
    block = _block_64(x, skip_if_64=True)
    return _make_hash(_dct16(block), _quality(block))


def hash_rgb(rgb: npt.NDArray[np.uint8]) -> PdqHash:
    """PDQ of an RGB picture (height x width x 3, uint8), identical to ``pdqhash.compute``."""
    _check_rgb(rgb)
    if _too_small(rgb.shape):
        return PdqHash(_ZERO, 0)
    block = _block_64(_luma_transposed(rgb), skip_if_64=True)
    return _make_hash(_dct16(block), _quality(block))


_SIGN = np.where((np.arange(16) % 2) == 1, np.float32(1), np.float32(-1)).astype(np.float32)
_ROW_ODD = _SIGN[:, None] * np.ones((1, 16), dtype=np.float32)  # + on odd rows, - on even
_COL_ODD = np.ones((16, 1), dtype=np.float32) * _SIGN[None, :]  # + on odd columns
_CHECKER = np.where(
    (np.add.outer(np.arange(16), np.arange(16)) % 2) == 1, np.float32(-1), np.float32(1)
).astype(np.float32)  # - where i + j is odd


def _dihedral_from_dct(a: FloatArray, quality: int) -> Dihedral:
    """The eight variants by sign flips and transposes of the 16x16 DCT (no re-hashing).

    Mirroring a picture negates its odd-frequency DCT-II coefficients along that axis
    (here indexed from 0, so the reference's frequency 1 is our index 0); a transpose swaps
    the axes. Negation is exact in float32, so these equal hashing the turned picture's DCT.
    """
    return Dihedral(
        original=_make_hash(a, quality),
        rotate90=_make_hash((a * _COL_ODD).T, quality),
        rotate180=_make_hash(a * _CHECKER, quality),
        rotate270=_make_hash((a * _ROW_ODD).T, quality),
        flip_x=_make_hash(a * _ROW_ODD, quality),
        flip_y=_make_hash(a * _COL_ODD, quality),
        flip_plus1=_make_hash(np.ascontiguousarray(a.T), quality),
        flip_minus1=_make_hash((a * _CHECKER).T, quality),
    )


def hash_luma_dihedral(luma: npt.NDArray[np.floating[Any]]) -> Dihedral:
    """The eight dihedral PDQ hashes of a luma array in one pass."""
    return _dihedral_of(_as_luma_transposed(luma))


def hash_rgb_dihedral(rgb: npt.NDArray[np.uint8]) -> Dihedral:
    """The eight dihedral hashes of an RGB picture, identical to ``pdqhash.compute_dihedral``."""
    _check_rgb(rgb)
    return _dihedral_of(_luma_transposed(rgb))


def _dihedral_of(luma_t: FloatArray) -> Dihedral:
    if _too_small(luma_t.shape):
        zero = PdqHash(_ZERO, 0)
        return Dihedral(zero, zero, zero, zero, zero, zero, zero, zero)
    block = _block_64(luma_t, skip_if_64=False)
    return _dihedral_from_dct(_dct16(block), _quality(block))


# -- hashes from approximate luma ------------------------------------------------------------

STABLE_MARGIN = 2.0
"""DCT coefficients closer than this to the median may change side under approximate luma."""
STABLE_LIMIT = 64
"""More than this many coefficients that close (a quarter) marks a degenerate DCT."""


def _is_stable(dct: FloatArray) -> bool:
    """False when the DCT is degenerate: so many coefficients sit at the median (stripes,
    checkerboards, smooth gradients) that any change in the luma, however small, reshuffles
    the bits. A luma that only approximates the reference's (a JPEG's own luma channel, not
    luma computed from the decoded RGB) then gives a hash far from the reference's; on other
    pictures it stays within 2 bits (specs/pdq.md, section 4.5)."""
    near = np.abs(dct - _median(dct)) <= np.float32(STABLE_MARGIN)
    return int(np.count_nonzero(near)) <= STABLE_LIMIT


def _dct_of(luma: npt.NDArray[Any], skip_if_64: bool) -> tuple[FloatArray, int] | None:
    x = _as_luma_transposed(luma)
    if _too_small(x.shape):
        return None
    block = _block_64(x, skip_if_64)
    dct = _dct16(block)
    return (dct, _quality(block)) if _is_stable(dct) else None


def hash_luma_if_stable(luma: npt.NDArray[Any]) -> PdqHash | None:
    """PDQ of an approximate luma (e.g. a JPEG's Y channel, uint8 or float), or None when the
    picture's DCT is degenerate and only the reference's exact luma gives its bits; the
    caller then hashes the exact pixels. Pictures under 5 pixels a side also give None."""
    found = _dct_of(luma, skip_if_64=True)
    return None if found is None else _make_hash(*found)


def hash_luma_dihedral_if_stable(luma: npt.NDArray[Any]) -> Dihedral | None:
    """The eight dihedral hashes of an approximate luma, or None (see hash_luma_if_stable)."""
    found = _dct_of(luma, skip_if_64=False)
    return None if found is None else _dihedral_from_dct(*found)
