"""Every help teaches and every command that reports a result can report it as JSON
(issue 18, finding 8): a walk over every subcommand of the four command lines."""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from auditor.cli import build_parser as audit_parser
from client.cli import build_parser as client_parser
from hub.cli import _parser as hub_parser
from hub.settings import Settings
from partner_sdk.cli import _parser as partner_parser

BIN = Path(sys.executable).parent
LONG_RUNNING = {
    "ncii-client ui",
    "ncii-hub serve",
    "ncii-hub sequence",
    "ncii-partner serve",
    "ncii-audit witness serve",
}
PARSERS: tuple[Callable[[], argparse.ArgumentParser], ...] = (
    client_parser,
    hub_parser,
    partner_parser,
    audit_parser,
)


def _walk(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                yield from _walk(child)


def _commands() -> list[argparse.ArgumentParser]:
    return [p for make in PARSERS for p in _walk(make())]


def _leaf(parser: argparse.ArgumentParser) -> bool:
    return not any(isinstance(a, argparse._SubParsersAction) for a in parser._actions)


@pytest.mark.parametrize("parser", _commands(), ids=lambda p: p.prog)
def test_every_help_has_examples_and_the_exit_codes(parser: argparse.ArgumentParser) -> None:
    text = parser.format_help()
    assert "examples:" in text or "start here:" in text, text
    example_lines = [line for line in text.splitlines() if line.startswith(f"  {parser.prog}")]
    assert example_lines, f"{parser.prog}: no example of itself"
    assert "exit status (the same for ncii-client" in text


@pytest.mark.parametrize("parser", [p for p in _commands() if _leaf(p)], ids=lambda p: p.prog)
def test_every_command_that_reports_a_result_takes_json(parser: argparse.ArgumentParser) -> None:
    options = {o for a in parser._actions for o in a.option_strings}
    assert ("--json" in options) != (parser.prog in LONG_RUNNING), parser.prog


def test_serve_help_lists_every_setting_with_its_default() -> None:
    text = subprocess.run(
        [str(BIN / "ncii-hub"), "serve", "--help"], capture_output=True, text=True, check=True
    ).stdout
    defaults = {f.name: f.default for f in dataclasses.fields(Settings)}
    for name in Settings.tunable_fields():
        line = next((x for x in text.splitlines() if x.strip().startswith(f"{name}=")), None)
        assert line is not None, name
        assert line.strip().startswith(
            f"{name}={defaults[name]}".lower()
            if isinstance(defaults[name], bool)
            else f"{name}={defaults[name]}"
        ), line
        assert len(line.split(None, 1)) == 2, f"{name}: no meaning"  # NAME=DEFAULT  meaning
    assert "(default: 8000)" in text and "(default: 127.0.0.1)" in text


def _json(*argv: str) -> object:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # exactly one JSON document


def test_json_on_the_commands_that_lacked_it(tmp_path: Path) -> None:
    init = _json(str(BIN / "ncii-partner"), "init", "--json", "--name", "p1",
                 "--dir", str(tmp_path / "p"))  # fmt: skip
    assert isinstance(init, dict) and init["name"] == "p1" and "public" in init
    hub = str(BIN / "ncii-hub")
    data = ("--data", str(tmp_path / "hub"))
    made = _json(hub, "init", "--json", *data)  # makes the data directory
    assert made == _json(hub, "keys", "--json", *data)
    keys = str(tmp_path / "p" / "partner-public.json")
    added = _json(hub, "partner", "add", "p1", "--keys", keys, "--json", *data)
    assert added == {"v": 1, "partner": "p1", "action": "added"}
    rotated = _json(hub, "partner", "rotate", "p1", "--keys", keys, "--json", *data)
    assert rotated == {"v": 1, "partner": "p1", "action": "rotated"}
    revoked = _json(hub, "partner", "revoke", "p1", "--json", *data)
    assert revoked == {"v": 1, "partner": "p1", "action": "revoked"}
    witness = _json(str(BIN / "ncii-audit"), "witness", "init", "--json", "--name", "w.example",
                    "--key", str(tmp_path / "w.key"))  # fmt: skip
    assert isinstance(witness, dict) and witness["verifier_key"].startswith("w.example+")
