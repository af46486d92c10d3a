"""Helpers for the matching tests: a partner store filled directly through Store.apply_batch
(the same code sync uses), media files made from scikit-image's sample photos."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance

from hashing import VpdqFeature
from partner_sdk.batch import Addition, Frame, Tombstone
from partner_sdk.store import Store, TrustedCheckpoint

Item = Addition | Tombstone


def pdq(digest: bytes, quality: int = 90) -> Addition:
    return Addition("pdq", digest, quality)


def video(features: Sequence[VpdqFeature]) -> Addition:
    frames = tuple(Frame(f.frame_number, f.quality, f.hash.digest, f.timestamp) for f in features)
    return Addition("vpdq", None, None, frames)


class StoreWriter:
    """Appends batches to DIR/store.sqlite3 as sync would (cursor, checkpoint, withdrawals)."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.store = Store(directory / "store.sqlite3")
        self.cursor = self.store.state().cursor

    def append(self, items: Sequence[Item]) -> list[int]:
        start = self.cursor
        end = start + len(items)
        records = list(enumerate(items, start))
        cp = TrustedCheckpoint(b"test checkpoint\n", end, bytes(32))
        self.store.apply_batch(start, end, records, cp, 0)
        self.cursor = end
        return list(range(start, end))

    def close(self) -> None:
        self.store.close()


def photo(name: str) -> Image.Image:
    from skimage import data

    pixels = np.asarray(getattr(data, name)())
    if pixels.ndim == 2:
        pixels = np.stack([pixels] * 3, axis=-1)
    return Image.fromarray(pixels[..., :3].astype(np.uint8))


def encode(im: Image.Image, fmt: str = "PNG", **kw: object) -> bytes:
    out = io.BytesIO()
    im.save(out, format=fmt, **kw)
    return out.getvalue()


def variants(im: Image.Image) -> dict[str, bytes]:
    """The edits an upload typically went through."""
    w, h = im.size
    dx, dy = max(1, w // 100), max(1, h // 100)
    return {
        "jpeg-q50": encode(im, "JPEG", quality=50),
        "resized-half": encode(im.resize((w // 2, h // 2), Image.Resampling.LANCZOS)),
        "cropped-1pct": encode(im.crop((dx, dy, w - dx, h - dy))),
        "brightened": encode(ImageEnhance.Brightness(im).enhance(1.2), "JPEG", quality=90),
    }
