"""Helpers for the matching tests: a partner store filled directly through Store.apply_batch
(the same code sync uses), media files made from scikit-image's sample photos, and a real
``ncii-partner serve`` subprocess (:class:`MatchService`)."""

from __future__ import annotations

import contextlib
import io
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
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


# -- a real ``ncii-partner serve`` process ----------------------------------------------------

MATCH_HEADERS = {"X-NCII-Match": "1"}
JSON_HEADERS = {**MATCH_HEADERS, "Content-Type": "application/json"}
RAW_HEADERS = {**MATCH_HEADERS, "Content-Type": "application/octet-stream"}
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# httpx's default TLS settings, built once (a client built without it makes its own: 25 ms).
TLS = httpx.create_ssl_context()


@dataclass
class MatchService:
    """``ncii-partner serve`` in a subprocess on a free loopback port (stdout+stderr in a log)."""

    directory: Path
    extra_args: Sequence[str] = ()
    host: str = "127.0.0.1"
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "partner_sdk.cli",
            "serve",
            "--dir",
            str(self.directory),
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--poll",
            "0.05",
            *self.extra_args,
        ]

    def launch(self) -> subprocess.Popen[bytes]:
        self.log_path = self.directory.parent / f"serve-{self.port}-{secrets.token_hex(3)}.log"
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        with open(self.log_path, "wb") as out:
            self.proc = subprocess.Popen(
                self.command(), stdout=out, stderr=subprocess.STDOUT, cwd=PROJECT_ROOT, env=env
            )
        return self.proc

    def start(self, timeout: float = 30.0, headers: dict[str, str] | None = None) -> MatchService:
        self.launch()
        deadline = time.monotonic() + timeout
        # One client for every probe: a new httpx client builds an SSL context (25 ms of CPU).
        no_reuse = httpx.Limits(max_keepalive_connections=0)
        with httpx.Client(timeout=1.0, verify=TLS, limits=no_reuse) as probe:
            while time.monotonic() < deadline:
                assert self.proc is not None
                if self.proc.poll() is not None:
                    raise RuntimeError(
                        f"serve exited with {self.proc.returncode}:\n{self.output()}"
                    )
                with contextlib.suppress(httpx.HTTPError):
                    if probe.get(self.url + "/health", headers=headers).is_success:
                        return self
                time.sleep(0.05)
        raise RuntimeError(f"serve not ready after {timeout}s:\n{self.output()}")

    def run_to_exit(self, timeout: float = 30.0) -> tuple[int, str]:
        """For settings that must be refused: the exit status and what it printed."""
        proc = self.launch()
        return proc.wait(timeout), self.output()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def peak_rss_kib(self) -> int:
        """VmHWM of the server process: the most resident memory it ever had."""
        assert self.proc is not None
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        (line,) = [x for x in status.splitlines() if x.startswith("VmHWM:")]
        return int(line.split()[1])

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def client(self, **kw: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=60.0, **{"verify": TLS, **kw})


def reencode(source: Path, width: int, height: int) -> bytes:
    """Decode every frame and encode it again with libx264 at another resolution (x264's
    fastest preset: another encoder's artefacts, in a third of the default preset's time)."""
    import av  # only the video tests need it

    out = io.BytesIO()
    with av.open(str(source)) as inp:
        src = inp.streams.video[0]
        rate = src.average_rate or 30
        frames = [f.to_ndarray(width=width, height=height, format="rgb24") for f in inp.decode(src)]
    with av.open(out, "w", format="mp4") as outp:
        stream = outp.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "28", "preset": "ultrafast"}
        for rgb in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                outp.mux(packet)
        for packet in stream.encode():
            outp.mux(packet)
    return out.getvalue()
