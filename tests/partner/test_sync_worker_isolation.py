"""Sync worker processes run only this package's code. Attack: the partner runs
``ncii-partner sync`` from a folder another local user can write (``/tmp``, a shared
checkout) holding ``pickle.py``, ``struct.py`` and ``queue.py``. A ``python -c`` child puts
the working folder first on ``sys.path``, so it would import those instead of the standard
library and run them as the partner (the ``ncii-partner`` command itself never does); the
workers must not. Also: a hostile batch that makes the worker raise comes back as the same
typed error, and the pool stays usable."""

from __future__ import annotations

from pathlib import Path

import pytest

from partner_sdk.errors import MalformedBatchError
from partner_sdk.syncworker import WorkerPool

SHADOWED = ("pickle", "struct", "queue", "os", "signal", "subprocess")


def test_workers_do_not_import_from_the_working_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hostile = tmp_path / "working-folder"
    hostile.mkdir()
    marker = tmp_path / "ran"
    for name in SHADOWED:
        (hostile / f"{name}.py").write_text(
            f"open({str(marker / name)!r}, 'w').close()\nraise SystemExit(0)\n"
        )
    marker.mkdir()
    monkeypatch.chdir(hostile)
    pool = WorkerPool(2)
    try:
        for _ in range(3):  # a malformed batch: typed error, workers stay in the pool
            with pytest.raises(MalformedBatchError):
                pool.prepare(b"\xff" * 64, 0, 1, 0, 1)
        assert pool._gone == 0, "a worker died (it imported a shadowed module?)"
    finally:
        pool.close()
    assert sorted(p.name for p in marker.iterdir()) == []
