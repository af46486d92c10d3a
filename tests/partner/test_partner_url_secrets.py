"""A hub URL may carry credentials (``http://user:pass@hub/``, behind a proxy that checks
them): the partner uses them and shows them nowhere. Attack: sync with such a URL, as a
command (JSON logs, where httpx logs every request line with its URL) and as a library under
an application's INFO logging, then ``status --json`` and a sync against a hub that is gone;
the password never appears."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from feedkit import FeedKit
from hubkit import Case, mixed_hashes, post, wait_for_size

from partner_sdk import Partner

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "pw-s3cret-4c1d"


def partner(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    return subprocess.run(
        [sys.executable, "-m", "partner_sdk.cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
    )


def with_password(url: str) -> str:
    scheme, rest = url.split("://", 1)
    return f"{scheme}://ops:{PASSWORD}@{rest}"


def test_hub_credentials_never_shown(
    kit: FeedKit, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    directory = kit.new_partner("urlsecrets")
    with kit.hub.client() as client:
        assert post(client, "/v1/submissions", Case().submission(mixed_hashes(2))).is_success
        wait_for_size(client, 2)
    kit.wait_sealed(2)
    hub = with_password(kit.hub.url)

    sync = partner(
        "sync", "--dir", str(directory), "--hub", hub, "--log-key", kit.log_key,
        "--log-format", "json",
    )  # fmt: skip
    assert sync.returncode == 0, sync.stderr
    assert "HTTP Request" in sync.stderr  # httpx's own lines, with the hub URL, were logged
    assert PASSWORD not in sync.stdout + sync.stderr

    status = partner("status", "--dir", str(directory), "--json")
    assert status.returncode == 0, status.stderr
    assert PASSWORD not in status.stdout + status.stderr
    assert "127.0.0.1" in json.loads(status.stdout)["hub"]

    # As a library, under the application's own logging (no configure_logging of ours).
    with caplog.at_level(logging.DEBUG):
        with Partner(directory, hub, kit.log_key) as p:
            p.sync()
    assert "HTTP Request" in caplog.text
    assert PASSWORD not in caplog.text

    kit.hub.kill()
    gone = partner("sync", "--dir", str(directory), "--json")
    assert gone.returncode != 0
    assert PASSWORD not in gone.stdout + gone.stderr
