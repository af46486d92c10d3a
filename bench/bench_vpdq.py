"""vPDQ speed and memory, beside Meta's ``vpdq`` PyPI package measured in the same run.

Prints, per video and sampling rate, the compute (CPU seconds, user + system) spent per second of
video, for our hashing/vpdq.py and for the ``vpdq`` package (C++ reference with its own FFmpeg),
and their ratio; then the peak RSS while hashing a large generated video, beside the RSS of a
process that only imports the same modules (the baseline).

Each measurement runs in a fresh subprocess, so CPU time and peak RSS belong to it alone.

    .venv/bin/python bench/bench_vpdq.py           # vector videos, a 60 s clip, a ~200 MB video
    .venv/bin/python bench/bench_vpdq.py --big     # also a ~1 GB video
    .venv/bin/python bench/bench_vpdq.py --quick   # vector videos and the 60 s clip
    .venv/bin/python bench/bench_vpdq.py --smoke   # a 3 s 160x120 clip only (CI)

``--json`` adds the rows of bench/README.md's convention (for the generated clip, and the peak
RSS on the largest video) as the last line of stdout.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _report import Rows, add_mode_flags, mode_of

ROOT = Path(__file__).resolve().parents[1]
VECTORS = ROOT / "tests" / "vectors" / "vpdq"


# -- worker side (one measurement per process) -----------------------------------------------


def worker(engine: str, path: str, seconds_per_hash: float) -> None:
    if engine == "ours":
        sys.path.insert(0, str(ROOT))
        from hashing.vpdq import hash_video

        def run() -> list[tuple[int, int, str]]:
            with open(path, "rb") as stream:
                features = hash_video(stream, seconds_per_hash=seconds_per_hash)
            return [(f.frame_number, f.quality, f.hash.hex()) for f in features]

    elif engine == "vpdq":
        import vpdq  # type: ignore[import-not-found]

        def run() -> list[tuple[int, int, str]]:
            features = vpdq.computeHash(path, seconds_per_hash=seconds_per_hash)
            return [(f.frame_number, f.quality, f.hex) for f in features]

    elif engine == "import-only":
        sys.path.insert(0, str(ROOT))
        import hashing.vpdq  # noqa: F401

        def run() -> list[tuple[int, int, str]]:
            return []

    else:
        raise SystemExit(f"unknown engine {engine}")
    before = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    features = run()
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    record = {"cpu": cpu, "wall": wall, "features": features, "maxrss_kib": peak_rss_kib()}
    print(json.dumps(record))


def peak_rss_kib() -> int:
    """VmHWM, this process's own peak resident set (ru_maxrss keeps the parent's peak across
    fork + exec on Linux, which hid the worker's figure behind the generator's)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def measure(engine: str, path: Path, seconds_per_hash: float) -> dict[str, Any] | None:
    result = subprocess.run(
        [sys.executable, __file__, "--worker", engine, str(path), str(seconds_per_hash)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        if engine == "vpdq":
            return None
        raise SystemExit(f"{engine} failed on {path.name}: {result.stderr[-2000:]}")
    record: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return record


def vpdq_available() -> bool:
    probe = subprocess.run([sys.executable, "-c", "import vpdq"], capture_output=True, check=False)
    return probe.returncode == 0


# -- generated videos ------------------------------------------------------------------------


def duration_of(path: Path) -> float:
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.demux(stream) if _.size)
        rate = stream.average_rate or stream.base_rate
        return frames / float(rate or 1)


def generate(path: Path, seconds: int, size: tuple[int, int], bit_rate: int) -> Path:
    """A moving-gradient-plus-noise clip (so every frame differs), MPEG-4 part 2 in MP4."""
    import av
    import numpy as np

    width, height = size
    rng = np.random.default_rng(1)
    noise = rng.integers(0, 64, (8, height, width, 3), dtype=np.uint8)
    x = np.linspace(0, 255, width, dtype=np.float32)[None, :, None]
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None, None]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=30)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.bit_rate = bit_rate
        for index in range(seconds * 30):
            shift = index * 4 % 256
            base = ((x + y + shift) % 256).astype(np.uint8)
            rgb = np.ascontiguousarray(np.broadcast_to(base, (height, width, 3)) + noise[index % 8])
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


# -- report ----------------------------------------------------------------------------------


def agreement(ours: dict[str, Any], theirs: dict[str, Any]) -> str:
    a, b = ours["features"], theirs["features"]
    if [f[0] for f in a] != [f[0] for f in b]:
        return f"frame numbers differ ({len(a)} vs {len(b)} features)"
    distances = [(int(x[2], 16) ^ int(y[2], 16)).bit_count() for x, y in zip(a, b, strict=True)]
    exact = sum(d == 0 for d in distances)
    return f"{exact}/{len(distances)} exact, max distance {max(distances, default=0)}"


def speed_table(videos: list[Path], have_vpdq: bool, rows: Rows, row_video: Path) -> None:
    print("compute (CPU s) per second of video; ratio = ours / vpdq package (lower is better)")
    print(
        f"{'video':<28}{'sampling':>10}{'ours':>9}{'vpdq':>9}{'ratio':>8}"
        "  wall ours/vpdq  agreement with vpdq"
    )
    for path in videos:
        length = duration_of(path)
        for label, seconds in (("1 fps", 1.0), ("every", 0.0)):
            ours = measure("ours", path, seconds)
            assert ours is not None
            theirs = measure("vpdq", path, seconds) if have_vpdq else None
            ours_rate = ours["cpu"] / length
            if path == row_video:
                rows.add(
                    f"compute per s of video, {path.stem}, {label.replace('every', 'every frame')}",
                    ours_rate,
                    "CPU s/s",
                    "vpdq package" if have_vpdq else "vpdq package (not installed)",
                    theirs["cpu"] / length if theirs is not None else None,
                )
            if theirs is None:
                print(f"{path.name:<28}{label:>10}{ours_rate:>9.3f}{'n/a':>9}{'n/a':>8}")
                continue
            theirs_rate = theirs["cpu"] / length
            print(
                f"{path.name:<28}{label:>10}{ours_rate:>9.3f}{theirs_rate:>9.3f}"
                f"{ours_rate / theirs_rate:>8.2f}  {ours['wall']:.2f}/{theirs['wall']:.2f} s"
                f"  {agreement(ours, theirs)}"
            )


def memory_table(videos: list[Path], have_vpdq: bool, rows: Rows) -> None:
    baseline = measure("import-only", videos[0], 1.0)
    assert baseline is not None
    print(
        f"\npeak RSS while hashing at 1 fps (baseline: import only = "
        f"{baseline['maxrss_kib'] / 1024:.0f} MiB)"
    )
    for path in videos:
        size_mb = path.stat().st_size / 1e6
        ours = measure("ours", path, 1.0)
        assert ours is not None
        line = (
            f"{path.name:<28}{size_mb:>8.0f} MB  ours {ours['maxrss_kib'] / 1024:>6.0f} MiB"
            f" (+{(ours['maxrss_kib'] - baseline['maxrss_kib']) / 1024:.0f} over baseline)"
        )
        theirs = measure("vpdq", path, 1.0) if have_vpdq else None
        if theirs is not None:
            line += f"  vpdq {theirs['maxrss_kib'] / 1024:>6.0f} MiB"
        print(line)
        if path == videos[-1]:
            rows.add(
                f"peak RSS hashing {path.stem} ({size_mb:.0f} MB) at 1 fps",
                ours["maxrss_kib"] / 1024,
                "MiB",
                "process that only imports the same modules",
                baseline["maxrss_kib"] / 1024,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    add_mode_flags(
        parser,
        smoke="one 3 s 160x120 clip",
        quick="vector videos and a 60 s clip",
        full="vector videos, a 60 s clip and a ~200 MB video",
    )
    parser.add_argument("--big", action="store_true", help="also generate and hash a ~1 GB video")
    parser.add_argument(
        "--worker", nargs=3, metavar=("ENGINE", "PATH", "SECONDS"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.worker:
        worker(args.worker[0], args.worker[1], float(args.worker[2]))
        return
    mode = mode_of(args)
    rows = Rows()
    have_vpdq = vpdq_available()
    if not have_vpdq:
        print(
            "vpdq PyPI package: NOT AVAILABLE (pip install vpdq needs FFmpeg development headers:"
            " apt-get install libavcodec-dev libavformat-dev libavdevice-dev libavfilter-dev"
            " libswscale-dev); its columns show n/a"
        )
    else:
        import importlib.metadata

        print(
            f"vpdq PyPI package {importlib.metadata.version('vpdq')} (system FFmpeg), "
            f"ours: PyAV's bundled FFmpeg"
        )
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        started = time.perf_counter()
        if mode == "smoke":
            clip = generate(tmpdir / "generated-3s-160x120.mp4", 3, (160, 120), 200_000)
        else:
            clip = generate(tmpdir / "generated-60s-640x360.mp4", 60, (640, 360), 2_000_000)
        large = []
        if mode == "full":
            large.append(
                generate(tmpdir / "generated-large-1280x720.mp4", 150, (1280, 720), 14_000_000)
            )
        if args.big:
            large.append(
                generate(tmpdir / "generated-1gb-1280x720.mp4", 600, (1280, 720), 14_000_000)
            )
        print(f"(generated test videos in {time.perf_counter() - started:.0f} s)\n")
        vectors = [] if mode == "smoke" else sorted(VECTORS.glob("*.mp4"))
        speed_table([*vectors, clip], have_vpdq, rows, clip)
        memory_table([*vectors[:1], clip, *large], have_vpdq, rows)
    if args.json:
        rows.print_json()


if __name__ == "__main__":
    main()
