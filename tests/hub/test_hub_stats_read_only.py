"""``ncii-hub stats`` is a report: it opens the key store and the database read-only and leaves
the data folder exactly as it found it. Attack: the hub's files are 0400 and its folder 0500
(a backup copy, an auditor's read-only mount, or a report run by a less trusted operator
account); stats must still answer, and no file may be created, written, touched or re-moded.
As root, the stats process runs without capabilities (``setpriv --bounding-set=-all``), so the
permission bits bind it as they would bind any other user."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from hubkit import PROJECT_ROOT, Case, HubFactory, mixed_hashes, post, wait_for_size

Snapshot = dict[str, tuple[int, int, bytes | None]]


def snapshot(root: Path) -> Snapshot:
    """Every path under ``root`` (root included): mode, mtime in ns, and bytes of files."""
    out: Snapshot = {}
    for path in [root, *sorted(root.rglob("*"))]:
        st = path.lstat()
        data = path.read_bytes() if stat.S_ISREG(st.st_mode) else None
        out[str(path.relative_to(root))] = (st.st_mode, st.st_mtime_ns, data)
    return out


def run_stats(data: Path, database_url: str) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable,
        "-m",
        "hub.cli",
        "stats",
        "--data",
        str(data),
        "--database-url",
        database_url,
        "--json",
    ]
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv: permission bits would not bind")
        command = [setpriv, "--bounding-set=-all", *command]
    env = {**os.environ}
    env.pop("DATABASE_URL", None)
    return subprocess.run(
        command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.parametrize("read_only_dir", [False, True], ids=["files-0400", "dir-0500"])
def test_stats_on_read_only_data_changes_nothing(
    hub_factory: HubFactory, read_only_dir: bool
) -> None:
    hub = hub_factory()
    with hub.client() as client:
        assert post(client, "/v1/submissions", Case().submission(mixed_hashes(3))).is_success
        wait_for_size(client, 3)
    assert hub.terminate() == 0
    data = hub.data_dir
    # The test's SQLite database sits beside the data folder: the whole parent is watched.
    top = data.parent
    files = [data / "keys.sqlite3"]
    if hub.database_url.startswith("sqlite"):
        files.append(Path(hub.database_url.removeprefix("sqlite:///")))
    for path in files:
        assert path.is_file()
        os.chmod(path, 0o400)
    if read_only_dir:
        os.chmod(data, 0o500)
        os.chmod(top, 0o500)
    try:
        before = snapshot(top)
        done = run_stats(data, hub.database_url)
        after = snapshot(top)
    finally:
        os.chmod(top, 0o700)
        os.chmod(data, 0o700)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["totals"]["hashes_accepted"] == 3, report
    # Types are read from the key store: it was opened, read-only.
    assert sum(report["totals"]["hashes_by_type"].values()) == 3, report
    assert sorted(after) == sorted(before), "stats created or removed a file"
    for name, (mode, mtime, data_bytes) in before.items():
        got = after[name]
        assert got[0] == mode, f"{name}: mode changed"
        assert got[2] == data_bytes, f"{name}: bytes changed"
        assert got[1] == mtime, f"{name}: mtime changed"


def test_keys_on_read_only_data_changes_nothing(tmp_path: Path) -> None:
    """``ncii-hub keys`` prints the public verifier key: it needs hub.json and log.key, and
    must neither open the key store (read-write, as it did) nor touch anything."""
    data = tmp_path / "data"
    made = subprocess.run(
        [sys.executable, "-m", "hub.cli", "init", "--data", str(data), "--origin", "t.example/log"],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    for path in data.iterdir():
        if path.is_file():
            os.chmod(path, 0o400)
    os.chmod(data, 0o500)
    command = [sys.executable, "-m", "hub.cli", "keys", "--data", str(data), "--json"]
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv: permission bits would not bind")
        command = [setpriv, "--bounding-set=-all", *command]
    try:
        before = snapshot(data)
        done = subprocess.run(
            command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60, check=False
        )
        after = snapshot(data)
    finally:
        os.chmod(data, 0o700)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["origin"] == "t.example/log"
    assert after == before
