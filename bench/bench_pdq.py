"""PDQ speed: images per second for a 1 MP and a 12 MP JPEG, ours (exact full decode, and the
fast path) against pdqhash end to end (PIL decode + convert("RGB") + pdqhash.compute), measured
in the same run; the fast path's distance to the exact hash; peak memory on the 12 MP photo.

Run: .venv/bin/python bench/bench_pdq.py
"""

from __future__ import annotations

import io
import time
import tracemalloc
from collections.abc import Callable

import numpy as np
import pdqhash
import skimage.data
from PIL import Image

from hashing.image import hash_image


def make_photo(width: int, height: int, seed: int) -> bytes:
    """A scikit-image photo upscaled to the size, with grain so it has real detail."""
    rng = np.random.default_rng(seed)
    base = Image.fromarray(skimage.data.chelsea()).resize((width, height), Image.Resampling.LANCZOS)
    noisy = np.asarray(base).astype(np.int16) + rng.normal(0, 6, (height, width, 3)).astype(
        np.int16
    )
    buffer = io.BytesIO()
    Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(buffer, "JPEG", quality=92)
    return buffer.getvalue()


def pdqhash_end_to_end(data: bytes) -> tuple[np.ndarray, int]:
    with Image.open(io.BytesIO(data)) as im:
        bits, quality = pdqhash.compute(np.asarray(im.convert("RGB")))
    return bits, int(quality)


def rate(fn: Callable[[], object], seconds: float = 3.0) -> float:
    fn()  # warm up
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds or count < 3:
        fn()
        count += 1
    return count / (time.perf_counter() - start)


def peak_mib(fn: Callable[[], object]) -> float:
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20


def main() -> None:
    photos = {
        "1 MP (1152x864)": make_photo(1152, 864, 1),
        "12 MP (4000x3000)": make_photo(4000, 3000, 2),
    }
    print(f"{'photo':<18} {'pdqhash e2e':>12} {'ours exact':>11} {'ratio':>6} {'ours fast':>10} "
          f"{'ratio':>6} {'fast vs exact':>14}")  # fmt: skip
    for name, data in photos.items():
        base = rate(lambda d=data: pdqhash_end_to_end(d))
        exact = rate(lambda d=data: hash_image(d))
        fast = rate(lambda d=data: hash_image(d, fast_decode=True))
        bits = hash_image(data).distance(hash_image(data, fast_decode=True))
        print(f"{name:<18} {base:>9.1f}/s {exact:>8.1f}/s {exact / base:>5.2f}x {fast:>7.1f}/s "
              f"{fast / base:>5.2f}x {bits:>9} bits")  # fmt: skip
    big = photos["12 MP (4000x3000)"]
    print("peak traced memory on 12 MP (tracemalloc, MiB):")
    print(f"  pdqhash e2e {peak_mib(lambda: pdqhash_end_to_end(big)):7.1f}")
    print(f"  ours exact  {peak_mib(lambda: hash_image(big)):7.1f}")
    print(f"  ours fast   {peak_mib(lambda: hash_image(big, fast_decode=True)):7.1f}")


if __name__ == "__main__":
    main()
