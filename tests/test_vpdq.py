"""vPDQ: formats, sampling, limits, hostile input and the match rule (hashing/vpdq.py)."""

from __future__ import annotations

import io
import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import av
import numpy as np
import pytest
from av.video.reformatter import VideoReformatter
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

import hashing.vpdq as vpdq_module
from hashing.errors import (
    HashingError,
    InvalidHashError,
    MediaTooLargeError,
    UnreadableMediaError,
    UnsupportedMediaError,
)
from hashing.pdq import PdqHash
from hashing.vpdq import (
    NoVideoStreamError,
    VideoLimits,
    VpdqFeature,
    VpdqMatch,
    format_features,
    hash_video,
    match_features,
    parse_features,
)

PATTERN = "pattern-sd-grey-bar"
CHAIR = "chair-19-sd-bar"
SMALL = (240, 360)  # width, height: half the vector videos' 480x720


@pytest.fixture(autouse=True)
def no_hang() -> Iterator[None]:
    """Every test here must finish within 60 s: decoding hostile input must never hang."""

    def expire(signum: int, frame: object) -> None:
        raise TimeoutError("vPDQ test took longer than 60 s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(60)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


# -- generated videos -----------------------------------------------------------------------


def vector_frames(
    shared: Path, name: str, size: tuple[int, int], step: int = 1
) -> list[np.ndarray]:
    """Every ``step``-th frame of a vector video, resized (Pillow) to ``size``."""
    out: list[np.ndarray] = []
    with av.open(str(shared / "vpdq" / f"{name}.mp4")) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if index % step == 0:
                out.append(np.asarray(frame.to_image().resize(size, Image.Resampling.BILINEAR)))
    return out


def encode(frames: list[np.ndarray], fmt: str, codec: str, fps: int, pix_fmt: str) -> bytes:
    """Frames -> a video file's bytes, through PyAV's muxers and encoders."""
    buffer = io.BytesIO()
    height, width = frames[0].shape[:2]
    with av.open(buffer, "w", format=fmt) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        if codec == "libx264":
            stream.options = {"crf": "18"}
        elif codec in ("libvpx-vp9", "libvpx"):
            # libvpx's "good" deadline (alt-ref frames included) at speed 4 rather than its
            # default 0-1: the same quality target, 3-5x faster to encode (VP9: 5 s -> 1.7 s).
            stream.options = {"crf": "20", "b": "0", "deadline": "good", "cpu-used": "4"}
        else:
            stream.bit_rate = 2_000_000
        for rgb in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buffer.getvalue()


def animated_gif(frames: list[np.ndarray], frame_ms: int) -> bytes:
    images = [Image.fromarray(f) for f in frames]
    buffer = io.BytesIO()
    images[0].save(
        buffer, "GIF", save_all=True, append_images=images[1:], duration=frame_ms, loop=0
    )
    return buffer.getvalue()


FORMATS: dict[str, Callable[[list[np.ndarray]], bytes]] = {
    "mp4-h264": lambda f: encode(f, "mp4", "libx264", 15, "yuv420p"),
    "mov-mpeg4": lambda f: encode(f, "mov", "mpeg4", 15, "yuv420p"),
    "webm-vp9": lambda f: encode(f, "webm", "libvpx-vp9", 15, "yuv420p"),
    "webm-vp8": lambda f: encode(f, "webm", "libvpx", 15, "yuv420p"),
    "mkv-h264": lambda f: encode(f, "matroska", "libx264", 15, "yuv420p"),
    "avi-mpeg4": lambda f: encode(f, "avi", "mpeg4", 15, "yuv420p"),
    "gif": lambda f: animated_gif(f, 1000 // 15 + 1),
}


@pytest.fixture(scope="module")
def pattern_reference(conformance_vectors: Path) -> list[VpdqFeature]:
    with (conformance_vectors / "vpdq" / f"{PATTERN}.mp4").open("rb") as f:
        return hash_video(f, seconds_per_hash=0)


@pytest.fixture(scope="module")
def pattern_small(conformance_vectors: Path) -> list[np.ndarray]:
    # Every second frame: the 30 fps original becomes a 15 fps clip of the same length.
    return vector_frames(conformance_vectors, PATTERN, SMALL, step=2)


@pytest.fixture(scope="module")
def chair_small(conformance_vectors: Path) -> list[np.ndarray]:
    return vector_frames(conformance_vectors, CHAIR, SMALL, step=4)[:100]


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_reencoded_copy_matches_original(
    fmt: str, pattern_small: list[np.ndarray], pattern_reference: list[VpdqFeature]
) -> None:
    copy = hash_video(FORMATS[fmt](pattern_small), seconds_per_hash=0)
    assert len(copy) >= len(pattern_small) - 1  # encoders may not add or drop more than that
    result = match_features(copy, pattern_reference)
    assert result.query_match_percent >= 80.0
    assert result.is_match()


@pytest.mark.parametrize("fmt", ["mp4-h264", "webm-vp9", "gif"])
def test_different_clip_does_not_match(
    fmt: str, chair_small: list[np.ndarray], pattern_reference: list[VpdqFeature]
) -> None:
    other = hash_video(FORMATS[fmt](chair_small), seconds_per_hash=0)
    result = match_features(other, pattern_reference)
    assert result.query_match_percent < 80.0
    assert result.candidate_match_percent < 80.0
    assert not result.is_match()


def test_stream_and_bytes_agree(conformance_vectors: Path) -> None:
    data = (conformance_vectors / "vpdq" / f"{PATTERN}.mp4").read_bytes()
    from_bytes = hash_video(data)
    stream = io.BytesIO(b"junk" + data)
    stream.seek(4)  # read from the current position, not from 0
    assert hash_video(stream) == from_bytes


# -- sampling -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ten_fps_clip() -> bytes:
    rng = np.random.default_rng(7)
    frames = [rng.integers(0, 256, (48, 64, 3), dtype=np.uint8) for _ in range(25)]
    return encode(frames, "matroska", "ffv1", 10, "yuv420p")


@pytest.mark.parametrize(
    ("seconds", "frames"),
    [
        (1.0, [0, 10, 20]),
        (0.0, list(range(25))),
        (0.5, [0, 5, 10, 15, 20]),
        (0.05, list(range(25))),  # int(0.05 * 10) == 0 -> every frame, as the reference
        (0.26, [0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24]),  # int(2.6) == 2
        (100.0, [0]),
    ],
)
def test_sampling_follows_reference(ten_fps_clip: bytes, seconds: float, frames: list[int]) -> None:
    features = hash_video(ten_fps_clip, seconds_per_hash=seconds)
    assert [f.frame_number for f in features] == frames
    assert [f"{f.timestamp:.3f}" for f in features] == [f"{n / 10:.3f}" for n in frames]
    assert all(f.quality == f.hash.quality for f in features)


def test_timestamp_is_float32_division(ten_fps_clip: bytes) -> None:
    features = hash_video(ten_fps_clip, seconds_per_hash=0)
    assert features[1].timestamp == float(np.float32(1) / np.float32(10))


@pytest.mark.parametrize("seconds", [-1.0, float("nan"), float("inf")])
def test_bad_seconds_per_hash(ten_fps_clip: bytes, seconds: float) -> None:
    with pytest.raises(ValueError):
        hash_video(ten_fps_clip, seconds_per_hash=seconds)


# -- limits and hostile input ---------------------------------------------------------------


def test_limit_on_frame_pixels(ten_fps_clip: bytes) -> None:
    with pytest.raises(MediaTooLargeError):
        hash_video(ten_fps_clip, limits=VideoLimits(max_frame_pixels=64 * 48 - 1))


def test_limit_on_frames(ten_fps_clip: bytes) -> None:
    with pytest.raises(MediaTooLargeError):
        hash_video(ten_fps_clip, limits=VideoLimits(max_frames=24))
    assert (
        len(hash_video(ten_fps_clip, seconds_per_hash=0, limits=VideoLimits(max_frames=25))) == 25
    )


def test_limit_on_duration(ten_fps_clip: bytes) -> None:
    with pytest.raises(MediaTooLargeError):
        hash_video(ten_fps_clip, limits=VideoLimits(max_duration_seconds=2.0))


@pytest.mark.parametrize(
    "kwargs",
    [{"max_frame_pixels": 0}, {"max_frames": 0}, {"max_duration_seconds": float("inf")}],
)
def test_limits_must_be_positive(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        VideoLimits(**kwargs)  # type: ignore[arg-type]


def raw_avi(width: int, height: int) -> bytes:
    frames = [np.full((height, width, 3), 40 * i, dtype=np.uint8) for i in range(3)]
    return encode(frames, "avi", "rawvideo", 10, "bgr24")


def declare_size(avi: bytes, width: int, height: int) -> bytes:
    """Overwrite biWidth/biHeight in the AVI's BITMAPINFOHEADER (the strf chunk)."""
    at = avi.index(b"strf") + 12
    return avi[:at] + width.to_bytes(4, "little") + height.to_bytes(4, "little") + avi[at + 8 :]


def gif_declaring(width: int, height: int) -> bytes:
    frames = [np.full((16, 16, 3), 80 * i, dtype=np.uint8) for i in range(3)]
    gif = animated_gif(frames, 100)
    return gif[:6] + width.to_bytes(2, "little") + height.to_bytes(2, "little") + gif[10:]


def audio_only_mp4() -> bytes:
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=44100)
        for index in range(10):
            frame = av.AudioFrame.from_ndarray(
                np.zeros((1, 1024), dtype=np.float32), format="fltp", layout="mono"
            )
            frame.sample_rate, frame.pts = 44100, index * 1024
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buffer.getvalue()


def vector_bytes(name: str) -> bytes:
    from tests.conftest import CONFORMANCE_VECTORS

    return (CONFORMANCE_VECTORS / "vpdq" / f"{name}.mp4").read_bytes()


def corrupted(data: bytes) -> bytes:
    damaged = bytearray(data)
    start = len(damaged) // 3
    for index in range(start, start + 20_000, 7):
        damaged[index] ^= 0xFF
    return bytes(damaged)


HOSTILE: dict[str, tuple[Callable[[], bytes], type[HashingError]]] = {
    "zero-bytes": (lambda: b"", UnreadableMediaError),
    "random-bytes": (lambda: os.urandom(200_000), UnsupportedMediaError),
    "random-after-ftyp": (
        lambda: b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + os.urandom(200_000),
        UnreadableMediaError,
    ),
    "text-named-mp4": (lambda: b"hello, this is not a video\n" * 100, UnsupportedMediaError),
    "jpeg-not-video": (lambda: b"\xff\xd8\xff\xe0" + bytes(100), UnsupportedMediaError),
    "truncated-header": (lambda: vector_bytes(PATTERN)[:3000], UnreadableMediaError),
    "truncated-half": (
        lambda: vector_bytes(PATTERN)[: len(vector_bytes(PATTERN)) // 2],
        UnreadableMediaError,
    ),
    "truncated-one-frame": (lambda: vector_bytes(PATTERN)[:-3000], UnreadableMediaError),
    "corrupt-middle": (lambda: corrupted(vector_bytes(PATTERN)), UnreadableMediaError),
    "audio-only-mp4": (audio_only_mp4, NoVideoStreamError),
    "avi-declares-16000x16000": (
        lambda: declare_size(raw_avi(64, 48), 16000, 16000),
        MediaTooLargeError,
    ),
    "avi-declares-60000x60000": (
        lambda: declare_size(raw_avi(64, 48), 60000, 60000),
        HashingError,  # FFmpeg itself refuses the size: unreadable
    ),
    "gif-declares-16000x16000": (lambda: gif_declaring(16000, 16000), MediaTooLargeError),
    "avi-4x4-frames": (lambda: raw_avi(4, 4), UnsupportedMediaError),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_input_raises_typed_error(case: str) -> None:
    make, error = HOSTILE[case]
    with pytest.raises(error):
        hash_video(make(), seconds_per_hash=0)


def test_no_video_stream_is_unsupported_media() -> None:
    assert issubclass(NoVideoStreamError, UnsupportedMediaError)


@settings(max_examples=60, deadline=None)
@given(
    st.binary(max_size=4096),
    st.sampled_from(
        [
            b"",
            b"\x1aE\xdf\xa3",
            b"RIFF\x00\x00\x00\x00AVI ",
            b"\x00\x00\x00\x14ftypisom\x00\x00\x00\x00isom",
            b"GIF89a",
        ]
    ),
)
def test_fuzzed_bytes_never_leak_other_exceptions(tail: bytes, head: bytes) -> None:
    try:
        hash_video(head + tail, seconds_per_hash=0)
    except HashingError:
        pass


# -- the match rule -------------------------------------------------------------------------


def feature(frame: int, bits: int, quality: int = 100) -> VpdqFeature:
    """A feature whose hash has the lowest ``bits`` bits set (so distances are easy to reason)."""
    digest = ((1 << bits) - 1).to_bytes(32, "big")
    return VpdqFeature(frame, quality, PdqHash(digest, quality), frame / 30)


def test_match_is_inclusive_at_31_bits() -> None:
    assert match_features([feature(0, 0)], [feature(0, 31)]) == VpdqMatch(100.0, 100.0)
    assert match_features([feature(0, 0)], [feature(0, 32)]) == VpdqMatch(0.0, 0.0)


def test_match_counts_each_side_separately() -> None:
    query = [feature(0, 0), feature(1, 100)]
    candidate = [feature(0, 10), feature(1, 20), feature(2, 200), feature(3, 250)]
    result = match_features(query, candidate)
    assert result == VpdqMatch(50.0, 50.0)
    assert not result.is_match()
    assert VpdqMatch(80.0, 0.0).is_match()
    assert not VpdqMatch(79.9, 100.0).is_match()
    assert not VpdqMatch(90.0, 10.0).is_match(candidate_threshold=80.0)


def test_match_dedupes_then_filters_quality() -> None:
    # Ten copies of one hash count once; low-quality frames are not compared at all.
    query = [feature(i, 0) for i in range(10)] + [feature(10, 200)]
    assert match_features(query, [feature(0, 0)]).query_match_percent == 50.0
    low = [feature(0, 0, quality=49), feature(1, 120)]
    assert match_features(low, [feature(0, 0)]) == VpdqMatch(0.0, 0.0)
    # Reference order: the first occurrence decides, so a low-quality first copy hides a later one.
    shadowed = [feature(0, 0, quality=10), feature(1, 0, quality=90), feature(2, 120)]
    assert match_features(shadowed, [feature(0, 0)]).query_match_percent == 0.0


def test_match_with_nothing_fit_is_zero() -> None:
    assert match_features([], [feature(0, 0)]) == VpdqMatch(0.0, 0.0)
    assert match_features([feature(0, 0, quality=0)], [feature(0, 0)]) == VpdqMatch(0.0, 0.0)


features_strategy = st.lists(
    st.builds(
        lambda frame, digest, quality: VpdqFeature(frame, quality, PdqHash(digest, quality), 0.0),
        st.integers(0, 10_000),
        st.binary(min_size=32, max_size=32),
        st.integers(0, 100),
    ),
    max_size=40,
)


def kept(features: list[VpdqFeature]) -> list[VpdqFeature]:
    """The reference's preparation the slow way: first copy of each hash, quality >= 50."""
    seen: set[bytes] = set()
    out = []
    for f in features:
        if f.hash.digest not in seen:
            seen.add(f.hash.digest)
            if f.quality >= 50:
                out.append(f)
    return out


@settings(max_examples=100, deadline=None)
@given(features_strategy, features_strategy)
def test_match_is_symmetric(a: list[VpdqFeature], b: list[VpdqFeature]) -> None:
    ab, ba = match_features(a, b), match_features(b, a)
    assert (ab.query_match_percent, ab.candidate_match_percent) == (
        ba.candidate_match_percent,
        ba.query_match_percent,
    )
    assert 0.0 <= ab.query_match_percent <= 100.0


@settings(max_examples=100, deadline=None)
@given(features_strategy)
def test_match_with_itself_is_full(a: list[VpdqFeature]) -> None:
    result = match_features(a, a)
    fit = bool(kept(a))
    assert result == (VpdqMatch(100.0, 100.0) if fit else VpdqMatch(0.0, 0.0))


@settings(max_examples=100, deadline=None)
@given(features_strategy, features_strategy)
def test_match_agrees_with_pairwise_definition(a: list[VpdqFeature], b: list[VpdqFeature]) -> None:
    ka, kb = kept(a), kept(b)
    result = match_features(a, b)
    if ka and kb:
        hits = sum(any(x.hash.distance(y.hash) <= 31 for y in kb) for x in ka)
        assert result.query_match_percent == hits * 100 / len(ka)


# -- the text form --------------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.binary(min_size=32, max_size=32), st.integers(0, 100)), max_size=30))
def test_text_round_trip(rows: list[tuple[bytes, int]]) -> None:
    features = [
        VpdqFeature(n * 3, q, PdqHash(d, q), float(np.float32(n * 3) / np.float32(29.97)))
        for n, (d, q) in enumerate(rows)
    ]
    parsed = parse_features(format_features(features))
    assert [(f.frame_number, f.quality, f.hash) for f in parsed] == [
        (f.frame_number, f.quality, f.hash) for f in features
    ]
    assert [f"{f.timestamp:.3f}" for f in parsed] == [f"{f.timestamp:.3f}" for f in features]


GOOD = "0,100," + "ab" * 32 + ",0.000"
BAD_TEXT = {
    "short-hex": "0,100," + "ab" * 31 + ",0.000",
    "upper-hex": "0,100," + "AB" * 32 + ",0.000",
    "quality-101": "0,101," + "ab" * 32 + ",0.000",
    "negative-frame": "-1,100," + "ab" * 32 + ",0.000",
    "leading-zero": "01,100," + "ab" * 32 + ",0.000",
    "two-decimals": "0,100," + "ab" * 32 + ",0.00",
    "extra-field": GOOD + ",1",
    "spaces": " " + GOOD,
    "crlf": GOOD + "\r",
    "blank-line": GOOD + "\n\n" + GOOD,
    "not-increasing": GOOD + "\n" + GOOD,
    "non-ascii-digit": "\u0660,100," + "ab" * 32 + ",0.000",
    "nul": GOOD + "\x00",
}


@pytest.mark.parametrize("case", sorted(BAD_TEXT))
def test_text_parser_rejects(case: str) -> None:
    with pytest.raises(InvalidHashError):
        parse_features(BAD_TEXT[case])


def test_text_parser_limits_count() -> None:
    text = "".join(f"{n},100,{'ab' * 32},0.000\n" for n in range(5))
    assert len(parse_features(text)) == 5
    with pytest.raises(InvalidHashError):
        parse_features(text, max_features=4)


def test_feature_rejects_inconsistent_values() -> None:
    pdq = PdqHash(bytes(32), 80)
    with pytest.raises(InvalidHashError):
        VpdqFeature(0, 70, pdq, 0.0)
    with pytest.raises(InvalidHashError):
        VpdqFeature(-1, 80, pdq, 0.0)
    with pytest.raises(InvalidHashError):
        VpdqFeature(0, 80, pdq, float("nan"))


# -- high-bit-depth conversion (vpdq's swscale arithmetic, hashing/vpdq.py) -----------------


@pytest.mark.parametrize("pix_fmt", sorted(vpdq_module._HIGH_DEPTH))
def test_high_depth_conversion_takes_extreme_samples(pix_fmt: str) -> None:
    # Every sample at 0 or at the format's maximum (out of the legal range on purpose) stays
    # inside the lookup tables; the result is a picture of the frame's size.
    depth, halved = vpdq_module._HIGH_DEPTH[pix_fmt]
    rng = np.random.default_rng(16)
    width, height = 34, 22
    frame = av.VideoFrame(width, height, pix_fmt)
    for index, plane in enumerate(frame.planes):
        rows = height // 2 if index and halved else height
        cols = width // 2 if index else width
        samples = np.zeros((plane.height, plane.line_size // 2), dtype="<u2")
        samples[:rows, :cols] = rng.choice([0, (1 << depth) - 1], size=(rows, cols))
        plane.update(samples.tobytes())
    rgb = vpdq_module._rgb(VideoReformatter(), frame, width, height)
    assert rgb.shape == (height, width, 3) and rgb.dtype == np.uint8


def test_high_depth_uniform_grey_is_grey() -> None:
    # Mid-grey 10-bit (Y 502, U = V = 512) is the same grey in R, G and B, as in swscale.
    frame = av.VideoFrame(16, 8, "yuv420p10le")
    for index, plane in enumerate(frame.planes):
        samples = np.full((plane.height, plane.line_size // 2), 502 if index == 0 else 512, "<u2")
        plane.update(samples.tobytes())
    rgb = vpdq_module._rgb(VideoReformatter(), frame, 16, 8)
    assert (rgb == rgb[0, 0, 0]).all()
    assert 125 <= rgb[0, 0, 0] <= 130
