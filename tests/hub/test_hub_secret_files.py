"""Hub secrets made on first use (master.key, admission.key): hub processes starting at once on
one data folder all get the one secret that was linked first, never a half-written file."""

from __future__ import annotations

import threading
from pathlib import Path

from hub.keystore import load_hex_secret


def test_concurrent_first_use_agrees_on_one_private_secret(tmp_path: Path) -> None:
    path = tmp_path / "admission.key"
    start = threading.Barrier(16)
    got: list[bytes] = []

    def load() -> None:
        start.wait()
        got.append(load_hex_secret(path, 32))

    threads = [threading.Thread(target=load) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 16 and len(set(got)) == 1 and len(got[0]) == 32
    assert path.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["admission.key"]  # no temporary left
