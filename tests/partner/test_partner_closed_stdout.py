"""The command line ends quietly (exit 141, no traceback) when its reader closes the pipe."""

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


def test_init_into_a_closed_pipe(tmp_path: Path) -> None:
    out = run_into_closed_pipe(
        str(BIN / "ncii-partner"), "init", "--dir", str(tmp_path / "p"), "--name", "p1"
    )
    assert out.returncode == 141, out.stderr
    assert "Traceback" not in out.stderr and "Exception ignored" not in out.stderr
