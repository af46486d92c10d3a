"""Every command line ends quietly (exit 141 = 128 + SIGPIPE, no traceback) when its reader
closes the pipe, as in `ncii-client hash DIR | head`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent


def run_into_closed_pipe(*argv: str) -> subprocess.CompletedProcess[str]:
    """Run with stdout a pipe whose reading end is already closed (`... | head` once head
    has exited): every write fails with EPIPE."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run(
            argv, stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=120
        )
    finally:
        os.close(write_end)


def test_client_hash_into_a_closed_pipe(tmp_path: Path) -> None:
    import numpy as np
    from PIL import Image

    pixels = np.random.default_rng(7).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "a.png")
    out = run_into_closed_pipe(str(BIN / "ncii-client"), "hash", str(tmp_path / "a.png"))
    assert out.returncode == 141, out.stderr
    assert "Traceback" not in out.stderr and "Exception ignored" not in out.stderr


def test_hub_keys_into_a_closed_pipe(tmp_path: Path) -> None:
    out = run_into_closed_pipe(str(BIN / "ncii-hub"), "init", "--data", str(tmp_path / "d"))
    assert out.returncode == 141, out.stderr
    out = run_into_closed_pipe(str(BIN / "ncii-hub"), "keys", "--data", str(tmp_path / "d"))
    assert out.returncode == 141, out.stderr
    assert "Traceback" not in out.stderr and "Broken pipe" not in out.stderr


def test_partner_init_into_a_closed_pipe(tmp_path: Path) -> None:
    out = run_into_closed_pipe(
        str(BIN / "ncii-partner"), "init", "--dir", str(tmp_path / "p"), "--name", "p1"
    )
    assert out.returncode == 141, out.stderr
    assert "Traceback" not in out.stderr and "Exception ignored" not in out.stderr


def test_audit_witness_init_into_a_closed_pipe(tmp_path: Path) -> None:
    out = run_into_closed_pipe(
        str(BIN / "ncii-audit"), "witness", "init", "--key", str(tmp_path / "w.key")
    )
    assert out.returncode == 141, out.stderr
    assert "Traceback" not in out.stderr and "Exception ignored" not in out.stderr
    assert (tmp_path / "w.key").exists()
