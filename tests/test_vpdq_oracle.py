"""vPDQ against Meta's ``vpdq`` package (0.2.5, what HMA and python-threatexchange run).

The package is a test oracle only: its output on small generated clips (re-encodes of one
scene: H.264 at several qualities and sizes, colour-tagged BT.709, full range, 4:4:4 at an odd
size, 29.97 fps, VP9, VP9 full range, MPEG-4 Part 2, MJPEG 4:2:2, GIF, 10-bit H.264 and HEVC)
and on Meta's two sample videos is recorded in tests/vectors/vpdq-oracle (README: how it was
made). Ours must give the same frame numbers, timestamps and qualities, and frame hashes within
2 bits; we measure 0 on every frame.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from hashing.pdq import PdqHash
from hashing.vpdq import VpdqFeature, hash_video, match_features

ORACLE = Path(__file__).resolve().parent / "vectors" / "vpdq-oracle"
NAMES = sorted(path.name.removesuffix(".vpdq.json") for path in ORACLE.glob("*.vpdq.json"))

# The bar is 0-2 bits; we measure 0 on every frame of every clip.
MAX_DISTANCE = 2


def _load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((ORACLE / f"{name}.vpdq.json").read_text("ascii"))
    return data


def _features(rows: list[list[Any]]) -> list[VpdqFeature]:
    return [
        VpdqFeature(frame, quality, PdqHash(bytes.fromhex(digest), quality), float(seconds))
        for frame, quality, digest, seconds in rows
    ]


def _ours(clip: str, seconds_per_hash: float) -> list[VpdqFeature]:
    with (ORACLE.parent / clip).open("rb") as stream:
        return hash_video(stream, seconds_per_hash=seconds_per_hash)


def test_every_clip_has_oracle_output() -> None:
    assert len(NAMES) >= 12
    for name in NAMES:
        data = _load(name)
        assert data["oracle"].startswith("vpdq 0.2.5, FFmpeg ")
        assert (ORACLE.parent / data["clip"]).is_file()


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("sampling", ["every_frame", "one_per_second"])
def test_same_features_as_vpdq(name: str, sampling: str) -> None:
    data = _load(name)
    theirs = _features(data[sampling])
    ours = _ours(data["clip"], 0 if sampling == "every_frame" else 1)

    assert len(ours) == len(theirs)
    assert [f.frame_number for f in ours] == [f.frame_number for f in theirs]
    # vpdq's timestamp is the same float32 quotient, so equal to the last bit.
    assert [f.timestamp for f in ours] == [f.timestamp for f in theirs]
    distances = [a.hash.distance(b.hash) for a, b in zip(ours, theirs, strict=True)]
    histogram = Counter(distances)
    print(
        f"\n{name} {sampling}: {len(distances)} frames, {histogram[0]} exact,"
        f" max {max(distances)}, mean {sum(distances) / len(distances):.2f}"
    )
    assert max(distances) <= MAX_DISTANCE
    assert [f.quality for f in ours] == [f.quality for f in theirs]
    assert histogram[0] == len(distances)  # what we measure; a change is worth a look


@pytest.mark.parametrize("name", NAMES)
def test_vpdq_verdict_is_ours(name: str) -> None:
    # HMA's question: does our hash of the video match vpdq's? Both ways, fully.
    data = _load(name)
    result = match_features(_ours(data["clip"], 1), _features(data["one_per_second"]))
    assert (result.query_match_percent, result.candidate_match_percent) == (100.0, 100.0)


def test_re_encodes_match_each_other_through_vpdq_hashes() -> None:
    # The generated clips are re-encodes of one scene at the same frame rate: our hash of one
    # matches vpdq's hash of another, as vpdq's own hashes of the two match each other.
    ours = _ours(_load("h264-crf18")["clip"], 1)
    for other in NAMES:
        # Meta's videos are other content; the GIF is cut to 256 dithered colours, too far.
        if other in ("chair-19-sd-bar", "pattern-sd-grey-bar", "gif"):
            continue
        theirs = _features(_load(other)["one_per_second"])
        assert match_features(ours, theirs).is_match(), other
