"""Matching end to end: a real hub, a real verified sync, then ``ncii-partner match`` with the
hub stopped and every socket connection blocked (in-process and in the CLI subprocess);
withdrawn entries never match after the next sync."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any, NoReturn

import pytest
from feedkit import FeedKit
from hubkit import Case, post, wait_for_size
from matchkit import encode, photo

from hashing import digest_bytes, hash_image
from partner_sdk.matcher import Matcher

BLOCKER = """
import pathlib, socket
_here = pathlib.Path(__file__).parent
(_here / "loaded").write_text("yes")
def _blocked(*args, **kwargs):
    with open(_here / "attempts", "a") as f:
        f.write(repr(args[1:]) + "\\n")
    raise OSError("network blocked by the test")
socket.socket.connect = _blocked
socket.socket.connect_ex = _blocked
socket.create_connection = _blocked
"""


def run_cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    guard = tmp_path / "guard"
    guard.mkdir(exist_ok=True)
    (guard / "sitecustomize.py").write_text(BLOCKER)
    env = {**os.environ, "PYTHONPATH": str(guard)}
    proc = subprocess.run(
        [sys.executable, "-m", "partner_sdk.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert (guard / "loaded").exists(), "the socket guard was not loaded"
    assert not (guard / "attempts").exists(), "match tried to open a connection"
    return proc


def lines(proc: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines()]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_match_offline_and_withdrawn_never_match(
    kit: FeedKit, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = kit.new_partner("matcher")
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    astro = uploads / "astronaut.jpg"
    astro.write_bytes(encode(photo("astronaut"), "JPEG", quality=50))
    cam = uploads / "camera.jpg"
    cam.write_bytes(encode(photo("camera").resize((256, 256)), "JPEG", quality=70))
    doc = uploads / "leaked.bin"
    doc.write_bytes(b"exact bytes of a leaked file")
    coffee = uploads / "coffee.png"
    coffee.write_bytes(encode(photo("coffee")))

    def pdq_of(name: str) -> dict[str, Any]:
        h = hash_image(encode(photo(name)))
        return {"algorithm": "pdq", "hash": h.hex(), "quality": h.quality}

    md5 = {"algorithm": "md5", "hash": digest_bytes(doc.read_bytes()).md5_hex}
    case = Case()
    with kit.hub.client() as client:
        r = post(client, "/v1/submissions", case.submission([pdq_of("astronaut"), md5]))
        assert r.status_code == 202, r.text
        astro_entry = r.json()["entries"][0]["entry_id"]
        r = post(client, "/v1/submissions", Case().submission([pdq_of("camera")]))
        assert r.status_code == 202, r.text
        wait_for_size(client, 3)
        kit.wait_sealed(3)
        with kit.partner(directory) as p:
            assert p.sync().cursor == 3

        matcher = Matcher(directory)
        hits = {f.name: matcher.match_file(f).matches for f in (astro, cam, doc, coffee)}
        # One submission is one sequencing round, shuffled (specs/hub-storage.md 5): its two
        # entries hold indexes 0 and 1 in either order.
        (astro_hit,) = hits["astronaut.jpg"]
        assert astro_hit.algorithm == "pdq" and astro_hit.log_index in (0, 1)
        md5_index = 1 - astro_hit.log_index
        assert [(m.log_index, m.algorithm) for m in hits["camera.jpg"]] == [(2, "pdq")]
        assert [(m.log_index, m.algorithm) for m in hits["leaked.bin"]] == [(md5_index, "md5")]
        assert hits["coffee.png"] == ()

        # Withdraw the astronaut: after the next sync it never matches again.
        r = post(client, "/v1/withdrawals", case.withdrawal([astro_entry]))
        assert r.status_code == 202, r.text
        wait_for_size(client, 4)
        kit.wait_sealed(4)
        with kit.partner(directory) as p:
            assert p.sync().withdrawn == 1
        assert matcher.refresh()
        assert matcher.match_file(astro).matches == ()

    kit.hub.kill()  # the hub is gone; matching must not need it (nor any network)

    def refuse(*args: object, **kwargs: object) -> NoReturn:
        raise AssertionError("matching opened a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    assert matcher.match_file(astro).matches == ()
    assert [m.log_index for m in matcher.match_file(cam).matches] == [2]
    matcher.close()
    with Matcher(directory) as fresh:
        assert fresh.match_file(astro).matches == ()
    monkeypatch.undo()

    files = [str(f) for f in (astro, cam, doc, coffee)]
    out = lines(run_cli(tmp_path, "match", *files, "--json", "--dir", str(directory)))
    assert [o["file"] for o in out] == files
    assert [[(m["log_index"], m["algorithm"]) for m in o["matches"]] for o in out] == [
        [],
        [(2, "pdq")],
        [(md5_index, "md5")],
        [],
    ]
    cam_hit = out[1]["matches"][0]
    assert 0 <= cam_hit["distance"] <= 31 and cam_hit["quality"] >= 50
    assert out[1]["kind"] == "image" and out[2]["kind"] == "file"
    strict = lines(
        run_cli(tmp_path, "match", str(cam), "--json", "--threshold", "0", "--dir", str(directory))
    )
    assert strict[0]["matches"] == [] or strict[0]["matches"][0]["distance"] == 0
    text = run_cli(tmp_path, "match", str(cam), "--dir", str(directory))
    assert text.returncode == 0 and "log index 2" in text.stdout and "pdq" in text.stdout
