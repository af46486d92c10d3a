"""PDQ speed: images per second for a 1 MP and a 12 MP JPEG, ours (reference-exact full decode,
and the default luma-only fast decode) against pdqhash end to end (PIL decode +
convert("RGB") + pdqhash.compute), measured in the same run; the fast path's distance to the
exact hash; peak memory on the 12 MP photo.

Times are CPU seconds of this process (time.process_time), best of paired rounds, so that the
ratios hold on a shared, busy machine. ``--distances`` also hashes a corpus (scikit-image photos
upscaled to 1-12 MP with grain in all 8 EXIF orientations, synthetic graphics, the shared vector
JPEGs) both ways and prints the distance distribution reported in specs/pdq.md, section 4.5.

Run: .venv/bin/python bench/bench_pdq.py [--distances]
"""

from __future__ import annotations

import collections
import io
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pdqhash
import skimage.data
from PIL import Image

from hashing.image import hash_image

ROUNDS = 5


def make_photo(width: int, height: int, seed: int, name: str = "chelsea", orientation: int = 1,
               grain: float = 6.0) -> bytes:  # fmt: skip
    """A scikit-image picture upscaled to the size, with grain so it has real detail."""
    source = getattr(skimage.data, name)()
    if source.dtype == bool:
        source = source.astype(np.uint8) * 255
    if source.dtype != np.uint8:
        source = (np.clip(source, 0, 1) * 255).astype(np.uint8)
    if source.ndim == 2:
        source = np.stack([source] * 3, axis=-1)
    if orientation >= 5:  # stored transposed
        width, height = height, width
    base = Image.fromarray(source[:, :, :3]).resize((width, height), Image.Resampling.LANCZOS)
    pixels = np.asarray(base).astype(np.int16)
    if grain:
        rng = np.random.default_rng(seed)
        pixels = pixels + rng.normal(0, grain, pixels.shape).astype(np.int16)
    exif = Image.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(
        buffer, "JPEG", quality=90, exif=exif.tobytes()
    )
    return buffer.getvalue()


def pdqhash_end_to_end(data: bytes) -> tuple[np.ndarray, int]:
    with Image.open(io.BytesIO(data)) as im:
        bits, quality = pdqhash.compute(np.asarray(im.convert("RGB")))
    return bits, int(quality)


def cpu_seconds(fn: Callable[[], object]) -> float:
    start = time.process_time()
    fn()
    return time.process_time() - start


def paired_rates(fns: list[Callable[[], object]]) -> list[float]:
    """Images per CPU second for each function: best of ROUNDS rounds, the functions taking
    turns within each round so machine load hits all of them alike."""
    for fn in fns:
        fn()  # warm up
    best = [float("inf")] * len(fns)
    for _ in range(ROUNDS):
        for i, fn in enumerate(fns):
            best[i] = min(best[i], cpu_seconds(fn))
    return [1.0 / max(b, 1e-9) for b in best]


def peak_mib(fn: Callable[[], object]) -> float:
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20


def speed() -> None:
    photos = {
        "1 MP (1152x864)": make_photo(1152, 864, 1),
        "12 MP (4000x3000)": make_photo(4000, 3000, 2),
    }
    print(f"{'photo':<18} {'pdqhash e2e':>12} {'ours exact':>11} {'ratio':>6} {'ours fast':>10} "
          f"{'ratio':>6} {'fast vs exact':>14}")  # fmt: skip
    for name, data in photos.items():
        base, exact, fast = paired_rates(
            [
                lambda d=data: pdqhash_end_to_end(d),
                lambda d=data: hash_image(d, fast_decode=False),
                lambda d=data: hash_image(d),
            ]
        )
        bits = hash_image(data, fast_decode=False).distance(hash_image(data))
        print(f"{name:<18} {base:>9.1f}/s {exact:>8.1f}/s {exact / base:>5.2f}x {fast:>7.1f}/s "
              f"{fast / base:>5.2f}x {bits:>9} bits")  # fmt: skip
    big = photos["12 MP (4000x3000)"]
    print("peak traced memory on 12 MP (tracemalloc, MiB):")
    print(f"  pdqhash e2e {peak_mib(lambda: pdqhash_end_to_end(big)):7.1f}")
    print(f"  ours exact  {peak_mib(lambda: hash_image(big, fast_decode=False)):7.1f}")
    print(f"  ours fast   {peak_mib(lambda: hash_image(big)):7.1f}")


SIZES = [(1152, 864), (1632, 1224), (2304, 1728), (3264, 2448), (4000, 3000)]
PHOTOS = ["astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "retina", "camera",
          "immunohistochemistry", "moon", "coins", "clock", "brick", "grass", "gravel",
          "cell"]  # fmt: skip
GRAPHICS = ["colorwheel", "logo", "page", "text", "checkerboard", "horse", "shepp_logan_phantom",
            "binary_blobs"]  # fmt: skip
VECTORS = Path(__file__).resolve().parents[2] / "shared" / "vectors" / "pdq" / "images"


def corpus() -> Iterator[tuple[str, bytes]]:
    """(kind, JPEG bytes): each picture in all 8 orientations, sizes cycling 1..12 MP."""
    seed = 0
    for kind, names, grain in (("photo", PHOTOS, 5.0), ("graphic", GRAPHICS, 0.0)):
        for p, name in enumerate(names):
            for orientation in range(1, 9):
                width, height = SIZES[(p + orientation) % len(SIZES)]
                yield kind, make_photo(width, height, seed, name, orientation, grain)
                seed += 1
    for path in sorted(VECTORS.rglob("*.jp*g")):
        yield "vector JPEG", path.read_bytes()


def distances() -> None:
    found: dict[str, collections.Counter[int]] = collections.defaultdict(collections.Counter)
    for kind, data in corpus():
        found[kind][hash_image(data).distance(hash_image(data, fast_decode=False))] += 1
    print("default (fast) decode vs exact, bits: count")
    for kind, counts in found.items():
        print(f"  {kind:<12} n={sum(counts.values()):<4} {dict(sorted(counts.items()))}")


if __name__ == "__main__":
    speed()
    if "--distances" in sys.argv[1:]:
        distances()
