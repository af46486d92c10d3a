"""vPDQ conformance against Meta's reference output (tests/vectors/vpdq, README there).

At every-frame sampling our features must agree with the reference's: same frame count and
numbers, same quality, timestamps equal to 3 decimals, and each frame hash within distance 31
(the reference's own tolerance across FFmpeg versions). The measured distribution is printed
(run with ``-s``) and recorded in specs/vpdq.md. Bit-exact agreement with today's vpdq package
is tested against its recorded output in tests/test_vpdq_oracle.py.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from hashing.vpdq import VpdqFeature, hash_video, match_features, parse_features

VIDEOS = ["chair-19-sd-bar", "pattern-sd-grey-bar"]


@pytest.fixture(scope="module")
def expected(conformance_vectors: Path) -> dict[str, list[VpdqFeature]]:
    return {
        name: parse_features(
            (conformance_vectors / "vpdq" / f"{name}.expected.txt").read_text("ascii")
        )
        for name in VIDEOS
    }


@pytest.fixture(scope="module")
def computed(conformance_vectors: Path) -> dict[str, list[VpdqFeature]]:
    out = {}
    for name in VIDEOS:
        with (conformance_vectors / "vpdq" / f"{name}.mp4").open("rb") as stream:
            out[name] = hash_video(stream, seconds_per_hash=0)
    return out


@pytest.mark.parametrize("name", VIDEOS)
def test_frames_numbers_quality_timestamps(
    name: str, expected: dict[str, list[VpdqFeature]], computed: dict[str, list[VpdqFeature]]
) -> None:
    ours, theirs = computed[name], expected[name]
    assert len(ours) == len(theirs)
    assert [f.frame_number for f in ours] == [f.frame_number for f in theirs]
    assert [f.quality for f in ours] == [f.quality for f in theirs]
    assert [f"{f.timestamp:.3f}" for f in ours] == [f"{f.timestamp:.3f}" for f in theirs]


@pytest.mark.parametrize("name", VIDEOS)
def test_every_frame_hash_within_31_bits(
    name: str, expected: dict[str, list[VpdqFeature]], computed: dict[str, list[VpdqFeature]]
) -> None:
    distances = [
        a.hash.distance(b.hash) for a, b in zip(computed[name], expected[name], strict=True)
    ]
    histogram = Counter(distances)
    print(
        f"\n{name}: {len(distances)} frames, {histogram[0]} exact, max distance {max(distances)},"
        f" histogram {dict(sorted(histogram.items()))}"
    )
    assert max(distances) <= 31
    # These published hashes date from 2022, when vpdq piped frames out of the ffmpeg command
    # line (its own scaler flags); we follow today's vpdq 0.2.5 instead, bit for bit
    # (tests/test_vpdq_oracle.py). Measured here (specs/vpdq.md): 270/564 and 178/206 frames
    # identical, every other frame 2-6 bits away. A jump beyond that means a regression.
    assert max(distances) <= 8


@pytest.mark.parametrize("name", VIDEOS)
def test_video_matches_itself_fully(
    name: str, expected: dict[str, list[VpdqFeature]], computed: dict[str, list[VpdqFeature]]
) -> None:
    for query, candidate in [
        (computed[name], expected[name]),
        (expected[name], computed[name]),
        (computed[name], computed[name]),
    ]:
        result = match_features(query, candidate)
        assert (result.query_match_percent, result.candidate_match_percent) == (100.0, 100.0)
        assert result.is_match()


@pytest.mark.parametrize(("query", "candidate"), [VIDEOS, VIDEOS[::-1]])
@pytest.mark.parametrize("source", ["expected", "computed"])
def test_different_videos_do_not_match(
    query: str,
    candidate: str,
    source: str,
    expected: dict[str, list[VpdqFeature]],
    computed: dict[str, list[VpdqFeature]],
) -> None:
    features = expected if source == "expected" else computed
    result = match_features(features[query], features[candidate])
    assert result.query_match_percent < 80.0
    assert result.candidate_match_percent < 80.0
    assert not result.is_match()


@pytest.mark.parametrize("name", VIDEOS)
def test_one_per_second_is_every_thirtieth_frame(
    name: str, conformance_vectors: Path, expected: dict[str, list[VpdqFeature]]
) -> None:
    # 30 fps: the default 1 s sampling picks frames 0, 30, 60... with the reference's hashes.
    with (conformance_vectors / "vpdq" / f"{name}.mp4").open("rb") as stream:
        sampled = hash_video(stream)
    reference = [f for f in expected[name] if f.frame_number % 30 == 0]
    assert [f.frame_number for f in sampled] == [f.frame_number for f in reference]
    assert all(a.hash.distance(b.hash) <= 31 for a, b in zip(sampled, reference, strict=True))
    assert match_features(sampled, expected[name]).query_match_percent == 100.0
