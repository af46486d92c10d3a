"""deploy/'s systemd units: ``systemd-analyze verify`` accepts each one (with ExecStart pointed
at this checkout's console scripts), each carries the hardening the README promises, and each
ExecStart names a real subcommand with flags that command's own argument parser accepts."""

from __future__ import annotations

import argparse
import configparser
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from auditor.cli import build_parser as audit_parser
from hub.cli import _parser as hub_parser
from partner_sdk.cli import _parser as partner_parser

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
INSTALL_BIN = "/opt/ncii-exchange/bin/"
PARSERS: dict[str, Callable[[], argparse.ArgumentParser]] = {
    "ncii-hub": hub_parser,
    "ncii-partner": partner_parser,
    "ncii-audit": audit_parser,
}
SERVICES = sorted(DEPLOY.glob("*.service"))
EXPECTED = {
    "ncii-hub.service",
    "ncii-hub-sequence.service",
    "ncii-partner-sync.service",
    "ncii-partner-match.service",
    "ncii-witness.service",
}
HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "PrivateTmp": "yes",
    "SystemCallFilter": "@system-service",
    "StateDirectoryMode": "0700",
}


def unit(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read_string(path.read_text())
    return parser


def test_every_unit_is_there() -> None:
    assert {p.name for p in SERVICES} == EXPECTED
    assert not list(DEPLOY.glob("*.timer"))  # the partner's sync follows the feed itself


def test_partner_sync_is_a_follow_daemon_that_stays_failed_on_verification_failures() -> None:
    service = unit(DEPLOY / "ncii-partner-sync.service")["Service"]
    ns = partner_parser().parse_args(shlex.split(service["ExecStart"])[1:])
    assert ns.command == "sync" and ns.follow
    assert service["Type"] == "exec" and service["Restart"] == "on-failure"
    assert set(service["RestartPreventExitStatus"].split()) == {"1", "2"}


@pytest.mark.parametrize("path", SERVICES, ids=lambda p: p.name)
def test_hardening_and_exec_start(path: Path) -> None:
    service = unit(path)["Service"]
    for key, value in HARDENING.items():
        assert service.get(key) == value, key
    assert service.get("DynamicUser") == "yes" or service.get("User")
    assert service.get("StateDirectory")
    assert service["RestrictAddressFamilies"].split() == ["AF_INET", "AF_INET6", "AF_UNIX"]
    assert service.get("MemoryMax") and service.get("LimitNOFILE")
    argv = shlex.split(service["ExecStart"].replace("${CREDENTIALS_DIRECTORY}", "/run/cred"))
    assert argv[0].startswith(INSTALL_BIN)
    program = argv[0].removeprefix(INSTALL_BIN)
    ns = PARSERS[program]().parse_args(argv[1:])  # exits (fails the test) on a bad flag
    assert callable(getattr(ns, "func", None)) or getattr(ns, "command", None)
    if program != "ncii-hub":  # the hub has no --log-format yet (its logs come later)
        assert ns.log_format == "json"


def test_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    assert analyze, "install Debian's systemd package for systemd-analyze (.ci/run does)"
    bindir = str(Path(sys.executable).parent) + "/"
    names = []
    for path in sorted(DEPLOY.glob("ncii-*")):
        for program in PARSERS:
            assert (Path(bindir) / program).exists() or program not in path.read_text()
        (tmp_path / path.name).write_text(path.read_text().replace(INSTALL_BIN, bindir))
        names.append(path.name)
    done = subprocess.run(
        [analyze, "verify", *names], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    about_ours = [line for line in done.stderr.splitlines() if "ncii-" in line]
    assert about_ours == []


def test_systemd_analyze_catches_a_broken_unit(tmp_path: Path) -> None:
    """The check above is not vacuous: a missing program fails verification."""
    analyze = shutil.which("systemd-analyze")
    assert analyze
    text = (DEPLOY / "ncii-witness.service").read_text()
    (tmp_path / "ncii-witness.service").write_text(text.replace(INSTALL_BIN, "/nonexistent/"))
    done = subprocess.run(
        [analyze, "verify", "ncii-witness.service"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0 and "not executable" in done.stderr
