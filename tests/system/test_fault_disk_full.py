"""The tile directory's file system fills up while submissions stream (a 1 MiB tmpfs mounted
on DATA/tiles). The hub keeps accepting (202: entries are durable in the database), says why in
its log, never serves a torn tile or a checkpoint its tiles do not back, and catches up by
itself once space returns: every 202 ends up in a log whose tiles all verify."""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from hubkit import Case, HubFactory, mixed_hashes, post, verifier_of, verify_log, wait_for_size
from syskit import NO_LIMITS, wait_until


@pytest.fixture
def tiny_tiles_fs(tmp_path: Path) -> Iterator[Path]:
    """DATA/tiles on its own 1 MiB tmpfs (root here; CI runs as root)."""
    tiles = tmp_path / "data" / "tiles"
    tiles.mkdir(parents=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m,mode=0755", "tmpfs", str(tiles)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs for the full-disk test (needs root): {done.stderr}")
    try:
        yield tiles
    finally:
        subprocess.run(["umount", "-l", str(tiles)], check=False)


def fill(directory: Path, leave: int) -> Path:
    """Take every free byte of the file system with one file, then give back ``leave`` bytes
    (one page: the next large tile write is then cut short by the kernel, not refused)."""
    filler = directory / "filler.bin"
    with open(filler, "wb", buffering=0) as f:
        for size in (1 << 16, 4096, 512):
            with contextlib.suppress(OSError):
                while True:
                    try:
                        f.write(b"\0" * size)
                    except OSError as exc:
                        assert exc.errno == errno.ENOSPC
                        raise
    os.truncate(filler, filler.stat().st_size - leave)
    return filler


@pytest.mark.parametrize("leave", [0, 4096], ids=["no-space", "one-page-left"])
def test_tile_disk_full_then_space_returns(
    hub_factory: HubFactory, tiny_tiles_fs: Path, leave: int
) -> None:
    hub = hub_factory(*NO_LIMITS)
    with hub.client() as client:
        key, origin = verifier_of(client)
        r = post(client, "/v1/submissions", Case().submission(mixed_hashes(300)))
        assert r.status_code == 202
        before = wait_for_size(client, 300)
        filler = fill(tiny_tiles_fs, leave)
        accepted = 0
        for _ in range(12):  # the log grows past tile and bundle boundaries while full
            r = post(client, "/v1/submissions", Case().submission(mixed_hashes(60)))
            assert r.status_code == 202, r.text  # keeps accepting: entries are in the database
            accepted += 60
        wait_until(
            lambda: "No space left on device" in hub.output(),
            what="the hub's log names the full disk",
        )
        stuck = verify_log(client, key, origin)  # what it serves still verifies
        assert before <= stuck.checkpoint.size < before + accepted
        for path in tiny_tiles_fs.rglob("*"):
            assert not path.name.endswith(".tmp"), path  # no torn temporary left behind
        assert client.get("/v1/log").status_code == 200

        os.unlink(filler)  # space returns
        final = wait_for_size(client, before + accepted, timeout=60)
        log = verify_log(client, key, origin)
        assert log.checkpoint.size == final == before + accepted
    assert hub.proc is not None and hub.proc.poll() is None


def test_tile_store_never_renames_a_short_write_into_place(tiny_tiles_fs: Path) -> None:
    """With one page free, the kernel accepts the first 4096 bytes of an 8 KiB tile and
    returns a short count; the store must finish the write (and so hit ENOSPC), not rename a
    torn tile into place."""
    from hub.tilestore import FileTileStore

    store = FileTileStore(tiny_tiles_fs)
    (tiny_tiles_fs / "tile" / "0").mkdir(parents=True)
    filler = fill(tiny_tiles_fs, 4096)
    with pytest.raises(OSError) as caught:
        store.write("tile/0/000", b"\x07" * 8192)
    assert caught.value.errno == errno.ENOSPC
    assert store.get("tile/0/000") is None
    assert [p.name for p in (tiny_tiles_fs / "tile" / "0").iterdir()] == []  # no temporary left
    os.unlink(filler)
    store.write("tile/0/000", b"\x07" * 8192)
    assert store.get("tile/0/000") == b"\x07" * 8192
