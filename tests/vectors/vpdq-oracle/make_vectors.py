"""Make the vPDQ oracle vectors: small generated clips and Meta's vpdq hashes of them.

Two steps:

    python tests/vectors/vpdq-oracle/make_vectors.py clips   # needs PyAV only
    python tests/vectors/vpdq-oracle/make_vectors.py oracle  # needs vpdq==0.2.5 (test oracle)

``clips`` draws one synthetic scene (a colour mosaic, moving shapes, seeded noise) and encodes it
as several variants: codecs, quality, sizes, colour tags and ranges, bit depths, frame rates;
they are re-encodes of the same content (the encoders' bytes may vary between runs, so the
checked-in clips are the reference). ``oracle`` runs Meta's ``vpdq.computeHash`` on every clip at
every frame (``seconds_per_hash=0``) and at the default one hash per second, and writes the
features as JSON beside the clip. The clips are checked in, so regenerating them is only needed
to add a variant; the oracle step must then be rerun (../README.md says with which builds).
"""

from __future__ import annotations

import json
import sys
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import numpy.typing as npt

HERE = Path(__file__).resolve().parent

# name: (file suffix, container format, codec, pixel format, width, height, frame rate, frames,
#        codec options, stream colour tags)
VARIANTS: dict[
    str, tuple[str, str, str, str, int, int, Fraction, int, dict[str, str], dict[str, Any]]
] = {
    "h264-crf18": (
        ".mp4",
        "mp4",
        "libx264",
        "yuv420p",
        176,
        144,
        Fraction(30),
        60,
        {"crf": "18"},
        {},
    ),
    "h264-crf35-small": (
        ".mp4",
        "mp4",
        "libx264",
        "yuv420p",
        128,
        96,
        Fraction(30),
        60,
        {"crf": "35"},
        {},
    ),
    "h264-bt709": (
        ".mp4",
        "mp4",
        "libx264",
        "yuv420p",
        176,
        144,
        Fraction(30),
        60,
        {"crf": "23"},
        {"colorspace": 1, "color_primaries": 1, "color_trc": 1},
    ),
    "h264-fullrange": (
        ".mp4",
        "mp4",
        "libx264",
        "yuvj420p",
        176,
        144,
        Fraction(30),
        60,
        {"crf": "23"},
        {"color_range": 2},
    ),
    "h264-yuv444-odd": (
        ".mp4",
        "mp4",
        "libx264",
        "yuv444p",
        175,
        131,
        Fraction(25),
        50,
        {"crf": "23"},
        {},
    ),
    "h264-ntsc": (
        ".mp4",
        "mp4",
        "libx264",
        "yuv420p",
        160,
        120,
        Fraction(30000, 1001),
        75,
        {"crf": "23"},
        {},
    ),
    "vp9": (
        ".webm",
        "webm",
        "libvpx-vp9",
        "yuv420p",
        176,
        144,
        Fraction(24),
        48,
        {"crf": "30", "b": "0", "deadline": "good", "cpu-used": "4"},
        {},
    ),
    "vp9-fullrange": (
        ".webm",
        "webm",
        "libvpx-vp9",
        "yuv420p",
        176,
        144,
        Fraction(24),
        48,
        {"crf": "30", "b": "0", "deadline": "good", "cpu-used": "4"},
        {"color_range": 2},
    ),
    "h264-10bit": (
        ".mp4",
        "mp4",
        "libx264",
        "yuv420p10le",
        176,
        144,
        Fraction(30),
        45,
        {"crf": "23"},
        {},
    ),
    "hevc-10bit": (
        ".mp4",
        "mp4",
        "libx265",
        "yuv420p10le",
        176,
        144,
        Fraction(30),
        45,
        {"crf": "28", "x265-params": "pools=none:frame-threads=1:log-level=error"},
        {},
    ),
    "mpeg4": (".avi", "avi", "mpeg4", "yuv420p", 176, 144, Fraction(25), 50, {"qscale": "4"}, {}),
    "mjpeg-yuvj422p": (
        ".avi",
        "avi",
        "mjpeg",
        "yuvj422p",
        176,
        144,
        Fraction(25),
        50,
        {},
        {},
    ),
    "gif": (".gif", "gif", "gif", "rgb8", 112, 84, Fraction(10), 15, {}, {}),
}


def scene(t: float, width: int, height: int, rng: np.random.Generator) -> npt.NDArray[np.uint8]:
    """An RGB picture at time t (seconds): a coarse colour mosaic panning slowly, a gradient, a
    moving disc and a little noise. The mosaic gives PDQ strong, stable structure."""
    cells = np.random.default_rng(7).integers(0, 256, (8, 10, 3)).astype(np.float64)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    u, v = x / width, y / height
    shift = 0.04 * t
    rows = np.clip(((v + 0.5 * shift) * 7).astype(int), 0, 7)
    cols = np.clip(((u + shift) * 9).astype(int), 0, 9)
    rgb = 0.8 * cells[rows, cols] + 40 * (u + v)[..., None]
    cx, cy = 0.5 + 0.3 * np.cos(1.3 * t), 0.5 + 0.3 * np.sin(0.9 * t)
    disc = (u - cx) ** 2 + ((v - cy) * height / width) ** 2 < 0.01
    rgb[disc] = (240, 40, 30)
    rgb += rng.normal(0, 3, (height, width, 3))
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def _zero_padding(frame: av.VideoFrame) -> None:
    """Clear the bytes past each line's end: FFmpeg leaves them uninitialised and x264 reads
    some of them, which made the encoded bytes differ from run to run."""
    for plane in frame.planes:
        rows = np.frombuffer(memoryview(plane), dtype=np.uint8).reshape(-1, plane.line_size)
        sample_bytes = 2 if frame.format.name.endswith("le") else 1
        rows[:, plane.width * sample_bytes :] = 0


def make_clip(name: str) -> Path:
    suffix, fmt, codec, pix_fmt, width, height, rate, frames, options, tags = VARIANTS[name]
    path = HERE / f"{name}{suffix}"
    rng = np.random.default_rng(16)
    # One thread and FFmpeg's bitexact flags: no encoder version strings, times or random ids.
    with av.open(str(path), mode="w", format=fmt, options={"fflags": "+bitexact"}) as out:
        stream = out.add_stream(codec, rate=rate, options={"threads": "1", **options})
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        stream.thread_type = "NONE"
        stream.codec_context.thread_count = 1
        stream.codec_context.flags |= av.codec.context.Flags.bitexact
        for key, value in tags.items():
            setattr(stream.codec_context, key, value)
        for n in range(frames):
            # Every variant starts from the same 176x144 picture, so they are re-encodes of it.
            picture = scene(n / float(rate), 176, 144, rng)
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            if (width, height) != (176, 144):
                frame = frame.reformat(
                    width=width, height=height, interpolation="BICUBIC", threads=1
                )
            for key, value in tags.items():
                setattr(frame, key, value)
            frame = frame.reformat(format=pix_fmt, threads=1)
            _zero_padding(frame)
            frame.pts = n
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


# Meta's own sample videos (tests/vectors/vpdq), hashed by the oracle too.
META_VIDEOS = ["chair-19-sd-bar", "pattern-sd-grey-bar"]


def _ffmpeg_version() -> str:
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("avutil")
    if name is None:
        return "unknown"
    avutil = ctypes.CDLL(name)
    avutil.av_version_info.restype = ctypes.c_char_p
    return str(avutil.av_version_info().decode("ascii"))


def oracle(path: Path) -> dict[str, Any]:
    import importlib.metadata

    import vpdq  # the test oracle; never a runtime dependency

    def features(seconds_per_hash: float) -> list[list[Any]]:
        return [
            [f.frame_number, f.quality, f.hex, f.timestamp]
            for f in vpdq.computeHash(str(path), seconds_per_hash=seconds_per_hash)
        ]

    return {
        "clip": path.relative_to(HERE.parent).as_posix(),
        "oracle": f"vpdq {importlib.metadata.version('vpdq')}, FFmpeg {_ffmpeg_version()}",
        "format": "frame_number, quality, pdq_hex, timestamp",
        "every_frame": features(0),
        "one_per_second": features(1),
    }


def _dump(data: dict[str, Any]) -> str:
    """JSON with one feature per line (short diffs when the oracle is rerun)."""
    lines = ["{"]
    for key, value in data.items():
        if isinstance(value, list):
            rows = ",\n".join(f"  {json.dumps(row)}" for row in value)
            lines.append(f" {json.dumps(key)}: [\n{rows}\n ],")
        else:
            lines.append(f" {json.dumps(key)}: {json.dumps(value)},")
    lines[-1] = lines[-1].rstrip(",")
    return "\n".join(lines) + "\n}\n"


def main(argv: list[str]) -> int:
    if argv[1:] == ["clips"]:
        for name in VARIANTS:
            print(make_clip(name).name)
        return 0
    if argv[1:] == ["oracle"]:
        clips = [HERE / f"{name}{variant[0]}" for name, variant in VARIANTS.items()]
        clips += [HERE.parent / "vpdq" / f"{name}.mp4" for name in META_VIDEOS]
        for path in clips:
            name = path.stem
            data = oracle(path)
            (HERE / f"{name}.vpdq.json").write_text(_dump(data), "ascii")
            print(path.name, len(data["every_frame"]), "frames")
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
