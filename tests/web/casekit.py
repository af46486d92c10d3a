"""Helpers for the tests of web/case.js, envelope.js, submission.js and hubclient.js: run the
Node drivers next to this file with one JSON request and read their JSON answer."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PROJECT_ROOT = HERE.parents[1]
NODE = "node"
DRIVER = HERE / "web_case_driver.mjs"
SESSION_DRIVER = HERE / "web_case_session.mjs"


def node_json(script: Path, request: dict[str, Any], timeout: float = 300.0) -> dict[str, Any]:
    """Run ``node script`` with ``request`` on stdin; its stdout parsed as JSON."""
    done = subprocess.run(
        [NODE, str(script)],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=PROJECT_ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


def driver(request: dict[str, Any]) -> dict[str, Any]:
    return node_json(DRIVER, request)


def page_records(paths: list[Path]) -> tuple[list[list[dict[str, Any]]], set[str]]:
    """What the page holds after fingerprint() per file: the records `ncii-client hash --json`
    prints (specs/hash-output.md section 3: the same records), one list per file, and the paths
    whose hashing failed (left out: fingerprint() rejects them and the page sends nothing)."""
    done = subprocess.run(
        [sys.executable, "-m", "client.cli", "hash", "--json", *map(str, paths)],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        timeout=300,
        check=False,
    )
    files: dict[str, list[dict[str, Any]]] = {}
    failed: set[str] = set()
    for line in done.stdout.splitlines():
        record = json.loads(line)
        if "error" in record:
            failed.add(record["path"])
        else:
            files.setdefault(record["path"], []).append(record)
    return [records for path, records in files.items() if path not in failed], failed


def noise_pictures(folder: Path, count: int, seed: int = 15) -> list[Path]:
    """``count`` distinct, detailed PNG pictures (random noise: high PDQ quality)."""
    from PIL import Image

    rng = random.Random(seed)
    paths = []
    for i in range(count):
        path = folder / f"picture-{i:02d}.png"
        Image.frombytes("RGB", (96, 80), rng.randbytes(96 * 80 * 3)).save(path)
        paths.append(path)
    return paths
