"""Conformance: our PDQ reproduces Meta's reference hashes for the 47 shared vector images.

Each image is one case (id = its path under images/). Raw pixels: Pillow ``convert("RGB")``
with no EXIF rotation, as python-threatexchange hashes; oriented: EXIF applied first.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pdqhash
import pytest
from PIL import Image

from hashing.image import hash_image, hash_image_dihedral
from hashing.pdq import hamming_distance, hash_rgb, hash_rgb_dihedral

VECTOR_DIR = Path(__file__).resolve().parent / "vectors" / "pdq"


def _records() -> list[dict[str, Any]]:
    path = VECTOR_DIR / "expected.json"
    if not path.is_file():  # the fixture below turns this into a loud failure
        return [{"file": "<missing expected.json>"}]
    records: list[dict[str, Any]] = json.loads(path.read_text())
    return records


RECORDS = _records()
IDS = [r["file"] for r in RECORDS]


@pytest.fixture(scope="module")
def pdq_dir(conformance_vectors: Path) -> Path:
    directory = conformance_vectors / "pdq"
    assert (directory / "expected.json").is_file(), "pdq/expected.json missing from vectors"
    return directory


def _raw_rgb(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def _oracle_bytes(bits: np.ndarray) -> bytes:
    return np.packbits(bits.astype(np.uint8)).tobytes()


def test_all_47_vectors_present() -> None:
    assert len(RECORDS) == 47


@pytest.mark.parametrize("record", RECORDS, ids=IDS)
def test_raw_pixels_bit_exact(pdq_dir: Path, record: dict[str, Any]) -> None:
    h = hash_rgb(_raw_rgb(pdq_dir / "images" / record["file"]))
    expected = bytes.fromhex(record["pdq_raw_pixels"])
    distance = hamming_distance(h.digest, expected)
    print(f"{record['file']}: distance {distance}, quality {h.quality}")
    assert distance == 0
    assert h.quality == record["quality_raw_pixels"]


@pytest.mark.parametrize("record", RECORDS, ids=IDS)
def test_file_bytes_raw_and_exif_oriented(pdq_dir: Path, record: dict[str, Any]) -> None:
    data = (pdq_dir / "images" / record["file"]).read_bytes()
    raw = hash_image(data, apply_exif=False, fast_decode=False)
    assert raw.hex() == record["pdq_raw_pixels"]
    assert raw.quality == record["quality_raw_pixels"]
    oriented = hash_image(data, fast_decode=False)
    assert oriented.hex() == record["pdq_exif_oriented"]
    assert oriented.quality == record["quality_exif_oriented"]
    dihedral = hash_image_dihedral(data, fast_decode=False)
    assert dihedral.original == oriented


@pytest.mark.parametrize("record", RECORDS, ids=IDS)
def test_default_fast_decode_within_2_bits(pdq_dir: Path, record: dict[str, Any]) -> None:
    """The default decode (luma-only for JPEGs of 0.75 MP or more) stays within 2 bits of the
    reference on every vector; smaller pictures and other formats are bit-exact."""
    data = (pdq_dir / "images" / record["file"]).read_bytes()
    fast = hash_image(data)
    distance = hamming_distance(fast.digest, bytes.fromhex(record["pdq_exif_oriented"]))
    print(f"{record['file']}: fast decode distance {distance}")
    assert distance <= 2
    assert abs(fast.quality - record["quality_exif_oriented"]) <= 2
    assert hash_image_dihedral(data).original == fast


@pytest.mark.parametrize("record", RECORDS, ids=IDS)
def test_dihedral_equals_pdqhash_oracle(pdq_dir: Path, record: dict[str, Any]) -> None:
    rgb = _raw_rgb(pdq_dir / "images" / record["file"])
    oracle, quality = pdqhash.compute_dihedral(rgb)
    ours = hash_rgb_dihedral(rgb)
    assert [h.digest for h in ours] == [_oracle_bytes(b) for b in oracle]
    assert ours.quality == quality


def test_dihedral_vector_images_match_their_variants(pdq_dir: Path) -> None:
    """reg-test-input/dih holds the bridge turned 8 ways: each turned file's own hash is the
    matching dihedral variant of the original, within the reference's tolerance (JPEG noise)."""
    names = [
        "bridge-1-original", "bridge-2-rotate-90", "bridge-3-rotate-180", "bridge-4-rotate-270",
        "bridge-5-flipx", "bridge-6-flipy", "bridge-7-flip-plus-1", "bridge-8-flip-minus-1",
    ]  # fmt: skip
    base = pdq_dir / "images" / "reg-test-input" / "dih"
    first = (base / f"{names[0]}.jpg").read_bytes()
    variants = list(hash_image_dihedral(first, apply_exif=False, fast_decode=False))
    for name, variant in zip(names, variants, strict=True):
        own = hash_image((base / f"{name}.jpg").read_bytes(), apply_exif=False, fast_decode=False)
        distance = own.distance(variant)
        print(f"{name}: {distance}")
        assert distance <= 10
