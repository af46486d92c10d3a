"""A lying hub: a proxy in front of a real hub rewrites one kind of answer (checkpoint, hash
tile, entry bundle) into garbage, truncation, a huge body, another log's note, a 500, ... and
the real command lines (``ncii-partner sync``, ``ncii-audit monitor --once``, ``ncii-audit
full``) must each stop with a typed refusal: non-zero exit, a message, no traceback, no hang,
and the partner's store untouched."""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hubkit import Case, HubProcess, mixed_hashes, post, verifier_of, wait_for_size
from syskit import (
    FEED_FAST,
    HeaderProxy,
    assert_clean_failure,
    new_partner,
    run_module,
    sealed_through,
    store_rows,
    wait_until,
)

Rewrite = Callable[[bytes], tuple[int, bytes]]


def _flip_last_sig_char(note: bytes) -> bytes:
    head, _, sig = note.rstrip(b"\n").rpartition(b" ")
    return head + b" " + (b"A" if sig[:1] != b"A" else b"B") + sig[1:] + b"\n"


def _size_line(note: bytes, size: bytes) -> bytes:
    lines = note.split(b"\n")
    lines[1] = size
    return b"\n".join(lines)


CHECKPOINT_LIES: dict[str, Rewrite] = {
    "empty": lambda b: (200, b""),
    "garbage": lambda b: (200, secrets.token_bytes(300)),
    "not-utf8": lambda b: (200, b"\xff\xfe" + b[2:]),
    "control-chars": lambda b: (200, b.replace(b"\n", b"\n\x1b[2J", 1)),
    "truncated": lambda b: (200, b[: len(b) // 2]),
    "trailing-data": lambda b: (200, b + b"extra\n"),
    "huge": lambda b: (200, b + b"x" * (20 << 20)),
    "bad-signature": lambda b: (200, _flip_last_sig_char(b)),
    "size-negative": lambda b: (200, _size_line(b, b"-5")),
    "size-enormous": lambda b: (200, _size_line(b, b"99999999999999999999999")),
    "other-origin": lambda b: (200, b.replace(b"localhost/ncii-hub", b"evil.example/log", 1)),
    "status-500": lambda b: (500, b"oops"),
    "status-404": lambda b: (404, b""),
}
TILE_LIES: dict[str, Rewrite] = {
    "truncated": lambda b: (200, b[:-1]),
    "empty": lambda b: (200, b""),
    "wrong-content": lambda b: (200, secrets.token_bytes(len(b))),
    "one-bit": lambda b: (200, bytes([b[0] ^ 1]) + b[1:]),
    "huge": lambda b: (200, b * 4000),
    "status-500": lambda b: (500, b"oops"),
    "missing": lambda b: (404, b""),
}


@dataclass
class LyingHub:
    hub: HubProcess
    log_key: str
    size: int
    partner_dir: Path


@pytest.fixture(scope="module")
def lying(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LyingHub]:
    base = tmp_path_factory.mktemp("lying")
    hub = HubProcess(base / "data", f"sqlite:///{base / 'hub.sqlite3'}", FEED_FAST).start()
    try:
        partner = new_partner(hub, base / "partner", "victim")
        with hub.client() as client:
            key, _ = verifier_of(client)
            for _ in range(2):
                r = post(client, "/v1/submissions", Case().submission(mixed_hashes(150)))
                assert r.status_code == 202
            size = wait_for_size(client, 300)
        wait_until(lambda: sealed_through(hub) >= size)
        yield LyingHub(hub, key.encode(), size, partner)
    finally:
        hub.kill()


def _proxy(lying: LyingHub, kind: str, rewrite: Rewrite) -> HeaderProxy:
    def mutate(path: str, status: int, body: bytes) -> tuple[int, bytes]:
        hit = {
            "checkpoint": path.split("?")[0] in ("/checkpoint", "/v1/checkpoint/cosigned"),
            "tile": path.startswith("/tile/0/") or path.startswith("/tile/1/"),
            "bundle": path.startswith("/tile/entries/"),
        }[kind]
        return rewrite(body) if hit and status == 200 else (status, body)

    return HeaderProxy(lying.hub.url, mutate=mutate)


CASES = [("checkpoint", n) for n in CHECKPOINT_LIES] + [
    (k, n) for k in ("tile", "bundle") for n in TILE_LIES
]


def _rewrite(kind: str, name: str) -> Rewrite:
    return (CHECKPOINT_LIES if kind == "checkpoint" else TILE_LIES)[name]


def _main(module: str, args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """The command line in this process (fast); an unhandled exception fails the test."""
    import importlib

    main = importlib.import_module(module).main
    try:
        code = int(main(args))
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.err + captured.out


@pytest.mark.parametrize(("kind", "name"), CASES, ids=[f"{k}/{n}" for k, n in CASES])
def test_auditor_refuses_a_lying_log(
    lying: LyingHub, kind: str, name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    proxy = _proxy(lying, kind, _rewrite(kind, name))
    try:
        common = ["--log", proxy.url, "--log-key", lying.log_key, "--state"]
        if kind == "checkpoint":  # the monitor reads checkpoints (and proofs between them)
            code, text = _main("auditor.cli", ["monitor", "--once", *common, str(tmp_path)], capsys)
            assert code != 0 and text.strip()
        full = _main("auditor.cli", ["full", *common, str(tmp_path / "f")], capsys)
    finally:
        proxy.close()
    assert full[0] != 0 and full[1].strip()


SDK_CASES = [c for c in CASES if c[0] != "bundle"]  # partners get entries from the feed


@pytest.mark.parametrize(("kind", "name"), SDK_CASES, ids=[f"{k}/{n}" for k, n in SDK_CASES])
def test_partner_sdk_refuses_a_lying_log(
    lying: LyingHub, kind: str, name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = tmp_path / "p"
    shutil.copytree(lying.partner_dir, directory)
    proxy = _proxy(lying, kind, _rewrite(kind, name))
    args = ["sync", "--dir", str(directory), "--hub", proxy.url, "--log-key", lying.log_key]
    try:
        code, text = _main("partner_sdk.cli", args, capsys)
    finally:
        proxy.close()
    assert code != 0 and text.strip()
    if (directory / "store.sqlite3").exists():
        rows = store_rows(directory)
        assert rows["entries"] == [] and rows["sync_state"][0][2] == 0


@pytest.mark.parametrize(("kind", "name"), [("checkpoint", "garbage"), ("tile", "huge")])
def test_real_command_lines_exit_cleanly(
    lying: LyingHub, kind: str, name: str, tmp_path: Path
) -> None:
    """The same refusals through real processes: exit status, message, no traceback."""
    proxy = _proxy(lying, kind, _rewrite(kind, name))
    directory = tmp_path / "p"
    shutil.copytree(lying.partner_dir, directory)
    try:
        common = ("--log", proxy.url, "--log-key", lying.log_key, "--state")
        full = run_module("auditor.cli", "full", *common, str(tmp_path / "f"), timeout=90)
        sync = run_module(
            "partner_sdk.cli", "sync", "--dir", str(directory), "--hub", proxy.url,
            "--log-key", lying.log_key, timeout=90,
        )  # fmt: skip
    finally:
        proxy.close()
    assert_clean_failure(full)
    assert_clean_failure(sync)
