"""A batch of atomic writes (hub.atomicfile.write_many_atomically, used for a round's tiles):
every file whole or absent, no temporary left behind, whatever fails."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hub import atomicfile
from hub.atomicfile import write_many_atomically


def _files(tmp_path: Path) -> list[tuple[Path, bytes]]:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    return [(tmp_path / "a" / f"{i}", bytes([i]) * (1000 + i)) for i in range(5)] + [
        (tmp_path / "b" / "x", b"x" * 70_000)
    ]


def _leftovers(tmp_path: Path) -> list[str]:
    return sorted(p.name for p in tmp_path.rglob("*.tmp"))


def test_every_file_is_written_whole_with_nothing_left_over(tmp_path: Path) -> None:
    files = _files(tmp_path)
    (tmp_path / "a" / "0").write_bytes(b"old")  # replaced, as a rewrite after a crash does
    write_many_atomically(files)
    for target, data in files:
        assert target.read_bytes() == data
        assert target.stat().st_mode & 0o777 == 0o644
    assert _leftovers(tmp_path) == []
    write_many_atomically([])  # nothing to do


def test_a_failed_write_renames_nothing_and_cleans_up(tmp_path: Path) -> None:
    files = _files(tmp_path)
    files.insert(3, (tmp_path / "missing" / "y", b"y"))  # its folder does not exist
    with pytest.raises(FileNotFoundError):
        write_many_atomically(files)
    assert not any(target.exists() for target, _data in files)
    assert _leftovers(tmp_path) == []


def test_a_crash_between_renames_leaves_whole_files_or_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = _files(tmp_path)
    calls = [0]
    real = os.replace

    def replace(src: Path, dst: Path) -> None:
        calls[0] += 1
        if calls[0] == 3:
            raise OSError("simulated crash")
        real(src, dst)

    monkeypatch.setattr(atomicfile.os, "replace", replace)
    with pytest.raises(OSError, match="simulated crash"):
        write_many_atomically(files)
    assert [target.exists() for target, _data in files] == [True, True] + [False] * 4
    for target, data in files[:2]:
        assert target.read_bytes() == data
    assert _leftovers(tmp_path) == []
