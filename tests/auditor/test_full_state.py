"""ncii-audit full keeps state by default and reports a fork or rollback (issue 12, finding 7).

Each log's state (last trusted checkpoint, tile cache) lives in
``./ncii-audit-state/<origin>/<key hash>``, so two logs sharing an origin never share a cache;
a cache of another tree is told apart from a log at fault and rebuilt; ``--no-state`` says
plainly that it cannot detect a fork.
"""

from __future__ import annotations

import json
import secrets
import shutil
import urllib.parse
from pathlib import Path

from auditkit import MemLog, Scenario, StaticServer, extend_log, run_audit

from auditor.trust import LogTrust


def _state_of(cwd: Path, origin: str, vkey: str) -> Path:
    trust = LogTrust.from_strings(vkey)
    return cwd / "ncii-audit-state" / urllib.parse.quote(origin, safe="") / trust.key_hash


def test_full_run_twice_reports_fork_rollback_and_inconsistency(
    scenario: Scenario, tmp_path: Path
) -> None:
    def full(url: str) -> tuple[int, str, str]:
        out = run_audit("full", "--log", url, "--log-key", scenario.vkey, cwd=tmp_path)
        return out.returncode, out.stdout, out.stderr

    code, out, err = full(scenario.hub.url)
    assert code == 0 and out.startswith("ok: 303 entries"), err
    state = _state_of(tmp_path, scenario.origin, scenario.vkey)
    assert json.loads((state / "full.json").read_text())["latest"]["size"] == 303

    for server, kind in (
        (scenario.fork_same, "fork"),  # size 303, another root
        (scenario.fork_longer, "inconsistent"),  # size 403, not an extension of 303
        (scenario.rollback, "rollback"),  # size 3 again
    ):
        code, out, err = full(server.url)
        assert code == 1, (kind, out, err)
        assert out.startswith(f"ALERT {kind}:"), (kind, out)
        assert "Traceback" not in err

    alerts = [json.loads(line) for line in (state / "full-alerts.jsonl").read_text().splitlines()]
    assert [a["alert"] for a in alerts] == ["fork", "inconsistent", "rollback"]
    assert alerts[1]["consistency_proof"] is not None  # the evidence is kept
    # The trusted checkpoint stayed the honest one: the honest log still audits ok.
    code, out, err = full(scenario.hub.url)
    assert code == 0, (out, err)
    assert json.loads((state / "full.json").read_text())["latest"]["size"] == 303


def test_no_state_says_plainly_it_cannot_see_a_fork(scenario: Scenario, tmp_path: Path) -> None:
    for url in (scenario.hub.url, scenario.fork_longer.url):
        out = run_audit(
            "full", "--no-state", "--log", url, "--log-key", scenario.vkey, cwd=tmp_path
        )
        assert out.returncode == 0, out.stderr  # each is a self-consistent log on its own
        assert "cannot detect a fork or a rollback" in out.stderr
    assert not (tmp_path / "ncii-audit-state").exists()
    both = run_audit(
        "full", "--no-state", "--state", "s", "--log", scenario.hub.url,
        "--log-key", scenario.vkey, cwd=tmp_path,
    )  # fmt: skip
    assert both.returncode == 2


def _small_log(root: Path, origin: str, seed: bytes, n: int) -> MemLog:
    log = MemLog(origin, seed)
    root.mkdir(parents=True)
    extend_log(root, 0, [secrets.token_bytes(40) for _ in range(n)], log.key, origin)
    return log


def test_two_logs_with_one_origin_and_two_keys_from_one_folder(
    tmp_path: Path, static_server
) -> None:
    origin = "twin.example.org/log"
    a = _small_log(tmp_path / "a", origin, b"\x01" * 32, 300)
    b = _small_log(tmp_path / "b", origin, b"\x02" * 32, 300)
    server_a: StaticServer = static_server(tmp_path / "a")
    server_b: StaticServer = static_server(tmp_path / "b")
    work = tmp_path / "work"
    work.mkdir()
    for _ in range(2):
        for log, server in ((a, server_a), (b, server_b)):
            out = run_audit("full", "--log", server.url, "--log-key", log.vkey, cwd=work)
            assert out.returncode == 0, (out.stdout, out.stderr)
            assert out.stdout.startswith("ok: 300 entries"), out.stdout
            assert "tile cache" not in out.stderr
    assert _state_of(work, origin, a.vkey) != _state_of(work, origin, b.vkey)
    # One explicit --state for both: refused with a message, not a false alarm.
    first = run_audit("full", "--log", server_a.url, "--log-key", a.vkey, "--state", "s", cwd=work)
    assert first.returncode == 0, first.stderr
    second = run_audit("full", "--log", server_b.url, "--log-key", b.vkey, "--state", "s", cwd=work)
    assert second.returncode == 2, second.stdout
    assert "belongs to another log key" in second.stderr


def test_a_cache_of_another_tree_is_rebuilt_not_blamed_on_the_log(
    scenario: Scenario, tmp_path: Path
) -> None:
    """Same origin and key, a tile cache holding another tree's tiles (a copied folder, a log
    recreated under the same key) and no trusted checkpoint: the audit refetches and is ok."""
    honest = run_audit(
        "full", "--log", scenario.hub.url, "--log-key", scenario.vkey, "--state", "h",
        cwd=tmp_path,
    )  # fmt: skip
    assert honest.returncode == 0, honest.stderr
    (tmp_path / "f").mkdir()
    shutil.copytree(tmp_path / "h/tiles", tmp_path / "f/tiles")
    out = run_audit(
        "full", "--log", scenario.fork_same.url, "--log-key", scenario.vkey, "--state", "f",
        cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 0, (out.stdout, out.stderr)
    assert "tile cache held tiles of another tree" in out.stderr
    # With the honest checkpoint trusted, the same fork is a fork, whatever the cache holds.
    again = run_audit(
        "full", "--log", scenario.fork_same.url, "--log-key", scenario.vkey, "--state", "h",
        cwd=tmp_path,
    )  # fmt: skip
    assert again.returncode == 1 and again.stdout.startswith("ALERT fork:"), again.stdout


def test_an_earlier_monitor_state_is_kept_not_forgotten(scenario: Scenario, tmp_path: Path) -> None:
    """A monitor state from before the key hash was part of the default path still holds the
    trusted checkpoint: a rollback against it is an alert, not a fresh start."""
    legacy = tmp_path / "ncii-audit-state" / urllib.parse.quote(scenario.origin, safe="")
    first = run_audit(
        "monitor", "--once", "--log", scenario.hub.url, "--log-key", scenario.vkey,
        "--state", str(legacy), cwd=tmp_path,
    )  # fmt: skip
    assert first.returncode == 0, first.stderr
    (legacy / "log.json").unlink()  # as an earlier version left it
    out = run_audit(
        "monitor", "--once", "--log", scenario.rollback.url, "--log-key", scenario.vkey,
        cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 1 and "rollback" in out.stdout, (out.stdout, out.stderr)
    assert "earlier state directory" in out.stderr
