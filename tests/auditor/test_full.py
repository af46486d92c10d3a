"""ncii-audit full: rebuild every level from the entries and name the wrong tile."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from auditkit import Scenario, run_audit

from auditor.cli import main
from auditor.errors import FetchError
from auditor.fullaudit import CachedSource, full_audit
from auditor.source import HttpSource
from auditor.trust import LogTrust
from crypto.tiles import decode_entry_bundle, encode_entry_bundle

MIRROR_WITNESS = "mirror.example.org+3fb148ef+BAAjjch9GyYz0sJsJx7ALhbdAtz2ov0unbzSl1vMp94O"
MIRROR_ORIGIN = "rome2026h1.example.org"


def full(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict]:
    code = main(["full", "--json", *args])
    return code, json.loads(capsys.readouterr().out)


def flip(path: Path, offset: int = 0) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def test_full_audit_of_the_hub(
    scenario: Scenario, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, report = full(
        capsys,
        "--log",
        scenario.hub.url,
        "--log-key",
        scenario.vkey,
        "--state",
        str(tmp_path / "s"),
    )
    assert code == 0, report
    assert report["size"] == 303 and report["problems"] == []
    assert report["tiles_checked"] == 3 and report["bundles_checked"] == 2
    assert (tmp_path / "s/tiles/tile/0/000").is_file()  # cached for a rerun
    out = run_audit(
        "full",
        "--log",
        scenario.hub.url,
        "--log-key",
        scenario.vkey,
        "--state",
        str(tmp_path / "s"),
    )
    assert out.returncode == 0 and out.stdout.startswith("ok: 303 entries"), out.stderr


@pytest.mark.parametrize(
    ("path", "offset", "level"),
    [("tile/0/000", 4000, 0), ("tile/0/001.p/47", 0, 0), ("tile/1/000.p/1", 31, 1)],
    ids=["level0-full", "level0-partial", "level1-partial"],
)
def test_names_the_corrupted_tile(
    scenario: Scenario,
    tmp_path: Path,
    static_server,
    capsys: pytest.CaptureFixture[str],
    path: str,
    offset: int,
    level: int,
) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(scenario.hub_copy, copy)
    flip(copy / path, offset)
    server = static_server(copy)
    code, report = full(
        capsys, "--log", server.url, "--log-key", scenario.vkey, "--state", str(tmp_path / "s")
    )
    assert code == 1
    assert [(p["kind"], p["path"], p["level"]) for p in report["problems"]] == [
        ("tile_mismatch", path, level)
    ]
    assert report["problems"][0]["position"] == offset // 32
    assert report["recomputed_root"] == report["root"]  # the entries are fine


def test_names_the_altered_entry_bundle(
    scenario: Scenario, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(scenario.hub_copy, copy)
    bundle = copy / "tile/entries/000"
    entries = decode_entry_bundle(bundle.read_bytes(), 256)
    entries[17] = bytes(34)
    bundle.write_bytes(encode_entry_bundle(entries))
    code, report = full(capsys, "--tiles-dir", str(copy), "--log-key", scenario.vkey)
    assert code == 1
    kinds = [(p["kind"], p["path"], p["position"]) for p in report["problems"]]
    assert kinds[0] == ("bundle_mismatch", "tile/entries/000", 17)
    assert report["stored_tiles_authentic"] is True


def test_resumes_where_an_interrupted_run_stopped(scenario: Scenario, tmp_path: Path) -> None:
    trust = LogTrust.from_strings(scenario.vkey)
    http = HttpSource(scenario.hub.url)
    cp = trust.open(http.get("checkpoint"))

    class Flaky:
        name = http.name
        calls = 0

        def get(self, path: str) -> bytes:
            Flaky.calls += 1
            if Flaky.calls > 3:
                raise FetchError("connection dropped")
            return http.get(path)

    with pytest.raises(FetchError):
        full_audit(CachedSource(Flaky(), tmp_path), cp)
    second = CachedSource(http, tmp_path)
    report = full_audit(second, cp)
    assert report.ok
    assert (second.reused, second.fetched) == (3, 2)  # 2 bundles + 3 tiles in all


def mirror_copy(conformance_vectors: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "mirror"
    shutil.copytree(conformance_vectors / "note/sunlight-mirror", copy)
    for p in copy.rglob("*"):
        p.chmod(0o755 if p.is_dir() else 0o644)
    return copy


def test_reproduces_the_sunlight_mirror_tiles(
    conformance_vectors: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The mirror's entry bundles are placeholders: write the real ones (entry i is
    ``record i``) and the audit rebuilds Sunlight's three hash tiles and root exactly."""
    copy = mirror_copy(conformance_vectors, tmp_path)
    entries = [f"record {i}".encode() for i in range(300)]
    (copy / "tile/entries/000").write_bytes(encode_entry_bundle(entries[:256]))
    (copy / "tile/entries/001.p/44").write_bytes(encode_entry_bundle(entries[256:]))
    trust = ["--witness-key", MIRROR_WITNESS, "--origin", MIRROR_ORIGIN]
    code, report = full(capsys, "--log", f"file://{copy}", *trust)
    assert code == 0, report
    assert report["tiles_checked"] == 3 and report["bundles_checked"] == 2
    assert report["recomputed_root"] == "gw31yQrqZZCcEOPrzX+bpy3nJ6QgngTKn8G1m0i62uU="


def test_sunlight_mirror_as_shipped(
    conformance_vectors: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """As shipped, the hash tiles are right and the two bundles are named as unreadable."""
    code, report = full(
        capsys,
        "--tiles-dir",
        str(conformance_vectors / "note/sunlight-mirror"),
        "--witness-key",
        MIRROR_WITNESS,
        "--origin",
        MIRROR_ORIGIN,
    )
    assert code == 1
    assert [(p["kind"], p["path"]) for p in report["problems"]] == [
        ("bundle_malformed", "tile/entries/000"),
        ("bundle_malformed", "tile/entries/001.p/44"),
    ]
    assert report["recomputed_root"] == report["root"]
    assert report["stored_tiles_authentic"] is True


def test_refuses_a_checkpoint_without_the_required_signature(
    conformance_vectors: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from auditkit import MemLog

    code, report = full(
        capsys,
        "--tiles-dir",
        str(conformance_vectors / "note/sunlight-mirror"),
        "--log-key",
        MemLog(origin=MIRROR_ORIGIN).vkey,
    )
    assert code == 1 and report["alert"] == "bad_signature"
    assert main(["full", "--tiles-dir", "/nonexistent", "--log-key", MemLog().vkey]) == 2
    capsys.readouterr()
