"""Helpers for the tests of web/case.js, envelope.js, submission.js and hubclient.js: run the
Node drivers next to this file with one JSON request and read their JSON answer."""

from __future__ import annotations

import json
import subprocess
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
