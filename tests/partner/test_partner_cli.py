"""The command lines as an operator and a platform run them (subprocesses): ncii-partner
init/sync/status and ncii-hub partner add/list/revoke, with exit statuses."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from feedkit import FeedKit
from hubkit import Case, mixed_hashes, post, wait_for_size

import hub.cli as hub_cli_module
import partner_sdk.cli as partner_cli

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    return subprocess.run(
        [sys.executable, "-m", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
    )


def partner(*args: str) -> subprocess.CompletedProcess[str]:
    return run("partner_sdk.cli", *args)


def hub_cli(kit: FeedKit, *args: str) -> subprocess.CompletedProcess[str]:
    return run(
        "hub.cli",
        "partner",
        *args,
        "--data",
        str(kit.hub.data_dir),
        "--database-url",
        kit.hub.database_url,
    )


def partner_main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """The same command line in-process (fast), for the refusal paths."""
    code = partner_cli.main(list(args))
    return code, capsys.readouterr().out


def hub_main(kit: FeedKit, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    db = ("--data", str(kit.hub.data_dir), "--database-url", kit.hub.database_url)
    code = hub_cli_module.main(["partner", *args, *db])
    return code, capsys.readouterr().out


def test_cli_init_add_sync_status_revoke(
    kit: FeedKit, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d1, d2 = tmp_path / "p1", tmp_path / "p2"
    r = partner("init", "--dir", str(d1), "--name", "examplecorp")
    assert r.returncode == 0, r.stderr
    outputs = [(d1, "examplecorp", r.stdout)]
    code, out = partner_main(capsys, "init", "--dir", str(d2), "--name", "otherco")
    assert code == 0
    outputs.append((d2, "otherco", out))
    for d, name, text in outputs:
        public = json.loads(text)
        assert public["name"] == name and set(public) == {"v", "name", "request_key", "feed_key"}
        assert stat.S_IMODE(d.stat().st_mode) == 0o700
        for key in ("request.key", "feed.key"):
            assert stat.S_IMODE((d / key).stat().st_mode) == 0o600
        assert json.loads((d / "partner-public.json").read_text()) == public
    assert partner("init", "--dir", str(d1)).returncode == 2  # never overwrites keys

    assert (
        hub_cli(kit, "add", "examplecorp", "--keys", str(d1 / "partner-public.json")).returncode
        == 0
    )
    assert hub_cli(kit, "add", "otherco", "--keys", str(d2 / "partner-public.json")).returncode == 0
    assert (
        hub_cli(kit, "add", "examplecorp", "--keys", str(d2 / "partner-public.json")).returncode
        == 2  # bad input: row 2 of the one exit-code table
    )
    bad = tmp_path / "bad.json"
    bad.write_text('{"v":1,"name":"x","request_key":"AAAA","feed_key":"AAAA"}')
    assert hub_cli(kit, "add", "badco", "--keys", str(bad)).returncode == 2

    with kit.hub.client() as client:
        assert (
            post(client, "/v1/submissions", Case().submission(mixed_hashes(10))).status_code == 202
        )
        wait_for_size(client, 10)
    kit.wait_sealed(10)

    sync = ("sync", "--hub", kit.hub.url, "--log-key", kit.log_key, "--json")
    r1 = partner(*sync, "--dir", str(d1))
    assert r1.returncode == 0, r1.stderr
    code, out = partner_main(capsys, *sync, "--dir", str(d2))
    assert code == 0
    s1, s2 = json.loads(r1.stdout), json.loads(out)
    assert s1["cursor"] == s2["cursor"] == 10 and s1["additions"] == 10
    # Hub and key are remembered.
    code, out = partner_main(capsys, "sync", "--json", "--dir", str(d1))
    assert code == 0 and json.loads(out)["batches"] == 0

    code, out = partner_main(capsys, "status", "--json", "--dir", str(d1))
    assert code == 0
    info = json.loads(out)
    assert info["cursor"] == info["checkpoint_size"] == 10
    assert sum(info["store"][a] for a in ("pdq", "md5", "sha256", "vpdq")) == 10

    code, out = hub_main(kit, capsys, "list", "--json")
    assert code == 0
    rows = {p["name"]: p for p in json.loads(out)["partners"]}
    assert rows["examplecorp"]["acked"] == 10 and rows["otherco"]["state"] == "active"

    assert hub_main(kit, capsys, "revoke", "otherco")[0] == 0
    code, out = partner_main(capsys, "sync", "--json", "--dir", str(d2))
    assert code == 4 and json.loads(out)["error"] == "HubRefusedError"

    # Usage errors and an unreachable hub.
    assert partner_main(capsys, "sync", "--dir", str(tmp_path / "none"))[0] == 2
    assert partner_main(capsys, "sync", "--dir", str(d1), "--log-key", "not a key")[0] == 2
    kit.hub.kill()
    assert partner_main(capsys, "sync", "--dir", str(d1))[0] == 3
