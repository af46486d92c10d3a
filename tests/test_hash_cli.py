"""``ncii-client hash`` run as a person runs it: the installed console script, in a subprocess."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tests.conftest import PROJECT_ROOT

CLI = Path(sys.executable).with_name("ncii-client")
if not CLI.exists():  # pragma: no cover - a checkout without the editable install
    CLI = PROJECT_ROOT / ".venv" / "bin" / "ncii-client"

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def ncii(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run the CLI with a hard timeout: nothing it is given may make it hang."""
    return subprocess.run(
        [str(CLI), *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def json_lines(stdout: str) -> list[dict[str, Any]]:
    lines = stdout.splitlines()
    assert all(line.startswith("{") for line in lines)
    return [json.loads(line) for line in lines]


def by_path(records: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        out.setdefault(Path(record["path"]).name, []).append(record)
    return out


def pdq_record(name: str) -> dict[str, Any]:
    from tests.conftest import CONFORMANCE_VECTORS

    records = json.loads((CONFORMANCE_VECTORS / "pdq" / "expected.json").read_text("utf-8"))
    return next(r for r in records if r["file"] == name)


def animated_gif() -> bytes:
    frames = [
        Image.fromarray(np.random.default_rng(i).integers(0, 256, (32, 32, 3), dtype=np.uint8))
        for i in range(4)
    ]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=500)
    return buffer.getvalue()


@pytest.fixture
def folder(tmp_path: Path, conformance_vectors: Path) -> Path:
    """A person's folder: good files, a broken one, an unreadable one, a loop, hidden files."""
    root = tmp_path / "private"
    (root / "sub").mkdir(parents=True)
    images = conformance_vectors / "pdq" / "images"
    shutil.copy(images / "bridge-mods/aaa-orig.jpg", root / "photo.jpg")
    shutil.copy(images / "reg-test-input/labelme-subset/q0003.jpg", root / "flat.jpg")
    # The extension lies and the video has none: the kind comes from the bytes.
    shutil.copy(images / "misc-images/c.png", root / "sub" / "picture.txt")
    shutil.copy(conformance_vectors / "vpdq" / "pattern-sd-grey-bar.mp4", root / "sub" / "clip")
    (root / "anim.gif").write_bytes(animated_gif())
    (root / "notes.txt").write_text("not a picture\n")
    (root / "broken.jpg").write_bytes((images / "bridge-mods/aaa-orig.jpg").read_bytes()[:4000])
    (root / ".hidden.jpg").write_bytes((root / "photo.jpg").read_bytes())
    os.symlink("loop", root / "loop")  # a link to itself: ELOOP
    os.symlink("..", root / "sub" / "up")  # a link to an ancestor: walked once
    os.mkfifo(root / "pipe")  # never opened: it would block
    if not IS_ROOT:
        secret = root / "locked.jpg"
        secret.write_bytes(b"\xff\xd8\xff")
        secret.chmod(0)
    return root


def test_folder_json(folder: Path) -> None:
    result = ncii("hash", "--json", str(folder))
    assert result.returncode == 1  # some files failed ...
    records = json_lines(result.stdout)
    files = by_path(records)

    # ... and every good file was still hashed.
    photo = {r["algorithm"]: r for r in files["photo.jpg"]}
    expected = pdq_record("bridge-mods/aaa-orig.jpg")
    assert set(photo) == {"md5", "sha256", "pdq"}
    assert photo["md5"]["hash"] == expected["md5"]
    assert photo["sha256"]["hash"] == expected["sha256"]
    assert photo["pdq"]["hash"] == expected["pdq_exif_oriented"]
    assert photo["pdq"]["quality"] == expected["quality_exif_oriented"]
    assert photo["pdq"]["fit"] is True
    assert {r["kind"] for r in files["photo.jpg"]} == {"image"}

    flat = {r["algorithm"]: r for r in files["flat.jpg"]}
    assert flat["pdq"]["quality"] < 50
    assert flat["pdq"]["fit"] is False

    picture = {r["algorithm"]: r for r in files["picture.txt"]}
    assert picture["pdq"]["kind"] == "image"

    clip = {r["algorithm"]: r for r in files["clip"]}
    assert set(clip) == {"md5", "sha256", "vpdq"}
    frames = clip["vpdq"]["hash"]
    assert [f["frame"] for f in frames] == [0, 30, 60, 90, 120, 150, 180]
    assert [f["timestamp"] for f in frames] == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    assert all(len(f["hash"]) == 64 and 0 <= f["quality"] <= 100 for f in frames)
    assert clip["vpdq"]["kind"] == "video" and clip["vpdq"]["fit"] is True
    assert clip["vpdq"]["quality"] is None

    anim = {r["algorithm"]: r for r in files["anim.gif"]}
    assert anim["vpdq"]["kind"] == "video"
    assert [f["frame"] for f in anim["vpdq"]["hash"]] == [0, 2]  # 2 fps GIF, one per second

    notes = {r["algorithm"]: r for r in files["notes.txt"]}
    assert set(notes) == {"md5", "sha256"}
    assert all(r["kind"] == "file" and r["quality"] is None for r in notes.values())

    # Failures: one JSON error line each, with a stable code, and a message on stderr.
    errors = {Path(r["path"]).name: r["error"] for r in records if "error" in r}
    assert errors["broken.jpg"]["code"] == "unreadable-media"
    assert errors["loop"]["code"] == "symlink-loop"
    assert errors["pipe"]["code"] == "not-a-regular-file"
    if not IS_ROOT:
        assert errors["locked.jpg"]["code"] == "permission-denied"
    for name, error in errors.items():
        assert error["message"]
        assert name in result.stderr
    broken = {r.get("algorithm") for r in files["broken.jpg"]}
    assert {"md5", "sha256"} <= broken  # the bytes were readable, so their digests are given

    # Hidden files are skipped inside folders, and the folder reached through "up" only once.
    assert ".hidden.jpg" not in files
    assert "hidden" in result.stderr
    assert len(files["photo.jpg"]) == 3
    assert "\r" not in result.stderr  # no progress bar when stderr is not a terminal


def test_hidden_option_and_explicit_hidden_file(folder: Path) -> None:
    records = json_lines(ncii("hash", "--json", "--hidden", str(folder)).stdout)
    assert ".hidden.jpg" in by_path(records)
    explicit = ncii("hash", "--json", str(folder / ".hidden.jpg"))
    assert explicit.returncode == 0
    assert {r["algorithm"] for r in json_lines(explicit.stdout)} == {"md5", "sha256", "pdq"}


def test_all_good_exits_zero_with_text_lines(folder: Path) -> None:
    result = ncii("hash", str(folder / "photo.jpg"), str(folder / "notes.txt"))
    assert result.returncode == 0
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    expected = pdq_record("bridge-mods/aaa-orig.jpg")
    assert [line.split()[0] for line in lines] == ["md5", "sha256", "pdq", "md5", "sha256"]
    assert lines[0].split()[1] == expected["md5"]
    assert lines[2].split()[1] == expected["pdq_exif_oriented"]
    assert "quality 100" in lines[2]
    assert lines[0].split()[2].endswith("photo.jpg")


def test_flat_image_flagged_in_text(folder: Path) -> None:
    result = ncii("hash", str(folder / "flat.jpg"))
    assert result.returncode == 0  # flagged, not failed
    assert "not fit for matching" in result.stdout


def test_missing_path_fails_but_others_hashed(folder: Path) -> None:
    result = ncii("hash", "--json", str(folder / "nope.jpg"), str(folder / "notes.txt"))
    assert result.returncode == 1
    records = json_lines(result.stdout)
    assert records[0]["error"]["code"] == "not-found"
    assert [r["algorithm"] for r in records[1:]] == ["md5", "sha256"]


def test_audio_only_container_is_a_plain_file(tmp_path: Path) -> None:
    from tests.test_vpdq import audio_only_mp4

    (tmp_path / "voice.m4v").write_bytes(audio_only_mp4())
    result = ncii("hash", "--json", str(tmp_path / "voice.m4v"))
    assert result.returncode == 0
    records = json_lines(result.stdout)
    assert [(r["algorithm"], r["kind"]) for r in records] == [("md5", "file"), ("sha256", "file")]


@pytest.mark.parametrize(
    ("option", "frames"),
    [
        (["--seconds-per-hash", "0"], list(range(206))),
        (["--fps", "2"], list(range(0, 206, 15))),
        (["--seconds-per-hash", "3"], [0, 90, 180]),
    ],
    ids=["every-frame", "fps-2", "every-3s"],
)
def test_video_sampling_options(option: list[str], frames: list[int], folder: Path) -> None:
    result = ncii("hash", "--json", *option, str(folder / "sub" / "clip"))
    assert result.returncode == 0
    vpdq = next(r for r in json_lines(result.stdout) if r["algorithm"] == "vpdq")
    assert [f["frame"] for f in vpdq["hash"]] == frames


def test_strange_file_names(tmp_path: Path) -> None:
    name = "line\nbreak\x1b[31m.txt"
    (tmp_path / name).write_text("x")
    text = ncii("hash", str(tmp_path))
    assert text.returncode == 0
    assert len(text.stdout.splitlines()) == 2  # one line per hash, the newline escaped
    assert "\x1b" not in text.stdout
    records = json_lines(ncii("hash", "--json", str(tmp_path)).stdout)
    assert Path(records[0]["path"]).name == name


def test_help_teaches() -> None:
    top = ncii("--help")
    assert top.returncode == 0
    assert "hash" in top.stdout
    result = ncii("hash", "--help")
    assert result.returncode == 0
    assert "examples:" in result.stdout
    assert "--json" in result.stdout and "--seconds-per-hash" in result.stdout


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["hash"],
        ["hash", "--fps", "0", "x"],
        ["hash", "--seconds-per-hash", "-1", "x"],
        ["hash", "--seconds-per-hash", "nan", "x"],
        ["hash", "--fps", "2", "--seconds-per-hash", "1", "x"],
        ["hash", "--bogus", "x"],
        ["frobnicate"],
    ],
    ids=["nothing", "no-path", "fps-0", "negative", "nan", "both-rates", "unknown-option", "verb"],
)
def test_usage_errors_exit_2(args: list[str]) -> None:
    result = ncii(*args)
    assert result.returncode == 2
    assert result.stdout == ""
    assert "usage:" in result.stderr


def test_no_network_code() -> None:
    # The hash command must be able to run on a machine with no network: it imports no client.
    for module in ("client/cli.py", "client/hash_command.py"):
        source = (PROJECT_ROOT / module).read_text("utf-8")
        for word in ("socket", "http", "urllib", "requests"):
            assert f"import {word}" not in source and f"from {word}" not in source
