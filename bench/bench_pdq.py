"""PDQ speed: images per second for a 1 MP and a 12 MP JPEG, ours (reference-exact full decode,
and the default luma-only fast decode) against pdqhash end to end (PIL decode +
convert("RGB") + pdqhash.compute), measured in the same run; the fast path's distance to the
exact hash; peak memory on the 12 MP photo.

Times are CPU seconds of this process (time.process_time), best of paired rounds, so that the
ratios hold on a shared, busy machine. ``--distances`` also hashes a corpus (scikit-image photos
upscaled to 1-12 MP with grain in all 8 EXIF orientations, synthetic graphics, the shared vector
JPEGs) both ways and prints the distance distribution reported in specs/pdq.md, section 4.5.

Run: .venv/bin/python bench/bench_pdq.py [--quick | --smoke] [--distances] [--json]
(``--smoke``: small pictures, one round; ``--quick``: 3 rounds instead of 5; ``--json``: the rows
of bench/README.md's convention as the last line of stdout.)
"""

from __future__ import annotations

import argparse
import collections
import functools
import io
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pdqhash
import skimage.data
from _report import Rows, add_mode_flags, mode_of
from PIL import Image

from hashing.image import hash_image

ROUNDS = {"smoke": 1, "quick": 3, "full": 5}
PHOTO_SIZES = {  # label -> (width, height)
    "smoke": {"0.08 MP (320x240)": (320, 240), "0.3 MP (640x480)": (640, 480)},
    "full": {"1 MP (1152x864)": (1152, 864), "12 MP (4000x3000)": (4000, 3000)},
}
PDQHASH = "pdqhash end to end"
AIM_12MP = ">= 5x pdqhash"


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


def paired_rates(fns: list[Callable[[], object]], rounds: int) -> list[float]:
    """Images per CPU second for each function: best of ``rounds`` rounds, the functions
    taking turns within each round so machine load hits all of them alike."""
    for fn in fns:
        fn()  # warm up
    best = [float("inf")] * len(fns)
    for _ in range(rounds):
        for i, fn in enumerate(fns):
            best[i] = min(best[i], cpu_seconds(fn))
    return [1.0 / max(b, 1e-9) for b in best]


def peak_mib(fn: Callable[[], object]) -> float:
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20


def speed(mode: str, rows: Rows) -> None:
    sizes = PHOTO_SIZES.get(mode, PHOTO_SIZES["full"])
    photos = {
        label: make_photo(width, height, seed)
        for seed, (label, (width, height)) in enumerate(sizes.items(), 1)
    }
    print(f"{'photo':<18} {'pdqhash e2e':>12} {'ours exact':>11} {'ratio':>6} {'ours fast':>10} "
          f"{'ratio':>6} {'fast vs exact':>14}")  # fmt: skip
    distances = []
    for name, data in photos.items():
        base, exact, fast = paired_rates(
            [
                functools.partial(pdqhash_end_to_end, data),
                functools.partial(hash_image, data, fast_decode=False),
                functools.partial(hash_image, data),
            ],
            ROUNDS[mode],
        )
        bits = hash_image(data, fast_decode=False).distance(hash_image(data))
        distances.append(bits)
        print(f"{name:<18} {base:>9.1f}/s {exact:>8.1f}/s {exact / base:>5.2f}x {fast:>7.1f}/s "
              f"{fast / base:>5.2f}x {bits:>9} bits")  # fmt: skip
        aim = AIM_12MP if name.startswith("12 MP") else None
        rows.add(f"{name}: ours default (fast)", fast, "images/s", PDQHASH, base,
                 aim=aim, met=fast >= 5 * base)  # fmt: skip
        rows.add(f"{name}: ours exact", exact, "images/s", PDQHASH, base)
    rows.add("fast vs exact hash distance, largest over the photos", max(distances), "bits")
    largest = list(photos)[-1]
    big = photos[largest]
    label = largest.split(" (")[0]
    theirs = peak_mib(lambda: pdqhash_end_to_end(big))
    exact_mib = peak_mib(lambda: hash_image(big, fast_decode=False))
    fast_mib = peak_mib(lambda: hash_image(big))
    print(f"peak traced memory on {label} (tracemalloc, MiB):")
    print(f"  pdqhash e2e {theirs:7.1f}")
    print(f"  ours exact  {exact_mib:7.1f}")
    print(f"  ours fast   {fast_mib:7.1f}")
    rows.add(f"peak traced memory, {label}: ours fast", fast_mib, "MiB", PDQHASH, theirs)
    rows.add(f"peak traced memory, {label}: ours exact", exact_mib, "MiB", PDQHASH, theirs)


SIZES = [(1152, 864), (1632, 1224), (2304, 1728), (3264, 2448), (4000, 3000)]
PHOTOS = ["astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "retina", "camera",
          "immunohistochemistry", "moon", "coins", "clock", "brick", "grass", "gravel",
          "cell"]  # fmt: skip
GRAPHICS = ["colorwheel", "logo", "page", "text", "checkerboard", "horse", "shepp_logan_phantom",
            "binary_blobs"]  # fmt: skip
VECTORS = Path(__file__).resolve().parents[1] / "tests" / "vectors" / "pdq" / "images"


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_mode_flags(
        parser,
        smoke="0.08 and 0.3 MP pictures, one round",
        quick="1 and 12 MP, best of 3 rounds",
        full="1 and 12 MP, best of 5 rounds",
    )
    parser.add_argument("--distances", action="store_true", help="also the corpus distances")
    args = parser.parse_args()
    rows = Rows()
    speed(mode_of(args), rows)
    if args.distances:
        distances()
    if args.json:
        rows.print_json()


if __name__ == "__main__":
    main()
