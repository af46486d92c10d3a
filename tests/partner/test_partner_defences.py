"""Partners defend themselves (issue 13 item 5; specs/partner-defences.md): flood quarantine,
the allow list (a negative bank) and local review marks, through the Python API, the CLI and
the match service over real HTTP. Nothing of it reaches the hub."""

from __future__ import annotations

import json
import logging
import random
import secrets
import socket
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from matchkit import JSON_HEADERS, MatchService, StoreWriter, encode, pdq, photo
from test_partner_erasure import encodings, folder_bytes

from hashing import PdqHash, digest_bytes, hash_image
from partner_sdk import Defences, FloodPolicy, MarkState, Matcher
from partner_sdk.batch import Addition
from partner_sdk.cli import main
from partner_sdk.errors import UsageError


def near(digest: bytes, seed: int, flips: int = 6) -> bytes:
    """A synthetic upload: ``digest`` with ``flips`` bits flipped (distinct per seed)."""
    out = bytearray(digest)
    for bit in random.Random(seed).sample(range(256), flips):
        out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(tmp_path: Path) -> Iterator[tuple[Path, list[bytes]]]:
    """A partner folder with three random PDQ entries (log indexes 0, 1, 2)."""
    directory = tmp_path / "partner"
    writer = StoreWriter(directory)
    rng = random.Random(13)  # fixed values: the flood estimate is then the same on every run
    values = [rng.randbytes(32) for _ in range(3)]
    writer.append([pdq(v) for v in values])
    writer.close()
    yield directory, values


def indexes(found: tuple[Any, ...]) -> list[int]:
    return [m.log_index for m in found]


def test_one_hash_matching_1000_distinct_uploads_is_quarantined(
    store: tuple[Path, list[bytes]], caplog: pytest.LogCaptureFixture
) -> None:
    directory, (a, b, _) = store
    # A fixed counter key, so that the estimate (about 4 % standard error) is the same on
    # every run; bench/bench_defences.py measures its spread over fresh keys.
    key = directory / "defences.key"
    key.write_bytes(b"5e" * 32 + b"\n")
    key.chmod(0o600)
    clock = Clock()
    uploads = [near(a, seed) for seed in range(1000)]
    with Defences(directory, clock=clock) as defences, Matcher(directory, defences=defences) as m:
        answered = 0
        with caplog.at_level(logging.WARNING, logger="partner_sdk.defences"):
            for i, upload in enumerate(uploads):
                # An unrelated stored hash keeps matching the whole time (its uploads differ).
                found = m.match_hashes([PdqHash(upload, 90), PdqHash(near(b, -1 - i % 50), 90)])
                answered += bool(found[0])
                assert indexes(found[1]) == [1]
        # The default limit is 500 distinct uploads a day, counted to within a few percent.
        assert 450 <= answered <= 560, answered  # 512 with this key and these values
        assert indexes(m.match_hashes([PdqHash(a, 90)])[0]) == []  # even the exact value
        held = defences.marks(MarkState.QUARANTINED)
        assert [x.log_index for x in held] == [0] and held[0].distinct is not None
        assert held[0].distinct > 500
        assert defences.summary()["suppressed"]["quarantine"] >= 1000 - 560

    # The operator's log names the entry by log index only, never a hash value.
    records = [r for r in caplog.records if r.name == "partner_sdk.defences"]
    assert len(records) == 1 and "log index 0" in records[0].getMessage()
    text = "\n".join(r.getMessage() + json.dumps(r.__dict__, default=str) for r in records)
    for value in (a, b, *uploads[:50]):
        assert not any(form.decode() in text for form in encodings(value)[1:])

    # The defences file keeps no upload: only keyed sketches, and none once quarantined.
    files = folder_bytes(directory)
    assert "defences.sqlite3" in files
    defence_files = {k: v for k, v in files.items() if k.startswith("defences")}
    assert not any(form in data for u in uploads for form in encodings(u)[:3]
                   for data in defence_files.values())  # fmt: skip
    for name in ("defences.sqlite3", "defences.key"):
        assert stat.S_IMODE((directory / name).stat().st_mode) == 0o600
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700

    # Survives a restart; released, it matches again and is never quarantined again.
    with Matcher(directory) as m:
        assert indexes(m.match_hashes([PdqHash(a, 90)])[0]) == []
        assert main(["review", "release", "0", "--dir", str(directory)]) == 0
        for seed in range(1000, 2200):
            assert indexes(m.match_hashes([PdqHash(near(a, seed), 90)])[0]) == [0]
        assert m.defences is not None and not m.defences.marks(MarkState.QUARANTINED)


def test_the_same_upload_again_and_again_is_one_upload(store: tuple[Path, list[bytes]]) -> None:
    directory, (a, _, _) = store
    with Matcher(directory) as m:
        upload = PdqHash(near(a, 7), 90)
        for _ in range(2000):
            assert indexes(m.match_hashes([upload])[0]) == [0]
        assert m.defences is not None and not m.defences.marks()


def test_the_window_forgets_old_uploads(store: tuple[Path, list[bytes]]) -> None:
    directory, (a, _, _) = store
    clock = Clock()
    policy = FloodPolicy(limit=100, window=3600)
    with Defences(directory, flood=policy, clock=clock) as d, Matcher(directory, defences=d) as m:
        for seed in range(80):
            assert indexes(m.match_hashes([PdqHash(near(a, seed), 90)])[0]) == [0]
        clock.now += 3 * 3600
        for seed in range(80, 160):
            assert indexes(m.match_hashes([PdqHash(near(a, seed), 90)])[0]) == [0]
        assert not d.marks()
        for seed in range(160, 240):  # 160 within the hour: over the limit
            m.match_hashes([PdqHash(near(a, seed), 90)])
        assert [x.log_index for x in d.marks(MarkState.QUARANTINED)] == [0]


def test_a_confirmed_entry_is_never_quarantined(store: tuple[Path, list[bytes]]) -> None:
    """An abuser who floods near copies of real content cannot get it off a partner's list
    once a reviewer confirmed it."""
    directory, (a, _, _) = store
    policy = FloodPolicy(limit=50)
    with Defences(directory, flood=policy) as d, Matcher(directory, defences=d) as m:
        d.confirm(0, "ticket 1")
        for seed in range(300):
            assert indexes(m.match_hashes([PdqHash(near(a, seed), 90)])[0]) == [0]
        assert [(x.log_index, x.state) for x in d.marks()] == [(0, MarkState.CONFIRMED)]
        with pytest.raises(UsageError):
            d.release(0)  # not quarantined


def test_allow_listed_image_file_and_raw_hash_never_match(tmp_path: Path) -> None:
    directory = tmp_path / "partner"
    picture = encode(photo("astronaut"))
    (tmp_path / "benign.png").write_bytes(picture)
    image = hash_image(picture)
    files = digest_bytes(picture)
    other = secrets.token_bytes(32)
    sha = secrets.token_bytes(32)
    writer = StoreWriter(directory)
    writer.append(
        [
            pdq(image.digest),  # 0: the picture's PDQ
            Addition("md5", files.md5, None),  # 1: its MD5
            pdq(other),  # 2: a raw PDQ the partner knows to be benign
            Addition("sha256", sha, None),  # 3: a raw SHA-256
            pdq(secrets.token_bytes(32)),  # 4: unrelated, keeps matching
        ]
    )
    writer.close()
    with Matcher(directory) as m:
        before = m.match_file(tmp_path / "benign.png")
        assert sorted(indexes(before.matches)) == [0, 1]

    assert main(["allow", "add", str(tmp_path / "benign.png"), "--dir", str(directory)]) == 0
    assert main(["allow", "add", other.hex().upper(), f"sha256:{sha.hex()}", "--dir",
                 str(directory), "--note", "known benign"]) == 0  # fmt: skip
    with Matcher(directory) as m:
        assert m.match_file(tmp_path / "benign.png").matches == ()
        # Another encoding of the same picture: the stored PDQ is near the allow-listed one.
        jpeg = m.match_bytes(encode(photo("astronaut"), "JPEG", quality=40))
        assert jpeg.matches == ()
        assert m.match_hashes([PdqHash(near(other, 3), 90)])[0] == ()
        from partner_sdk.matcher import ExactDigest

        assert m.match_hashes([ExactDigest("sha256", sha)])[0] == ()
        fourth = m._read("SELECT hash FROM entries WHERE log_index = 4")[0][0]
        assert indexes(m.match_hashes([PdqHash(bytes(fourth), 90)])[0]) == [4]
        assert m.defences is not None
        assert m.defences.summary()["suppressed"]["allow_list"] >= 4

        # Removing the raw PDQ (item 2) brings entry 2 back, without a restart.
        items = m.defences.allow_items()
        assert [(i.id, i.source) for i in items] == [(1, "file"), (2, "hash"), (3, "hash")]
        assert items[0].algorithms == ("md5", "sha256", "pdq")
        assert main(["allow", "remove", "2", "--dir", str(directory)]) == 0
        assert indexes(m.match_hashes([PdqHash(near(other, 3), 90)])[0]) == [2]


def test_allow_and_review_commands_text_json_and_exit_codes(
    store: tuple[Path, list[bytes]], capsys: pytest.CaptureFixture[str]
) -> None:
    directory, (a, _, _) = store
    d = str(directory)
    assert main(["allow", "add", f"pdq:{a.hex()}", "--dir", d, "--json"]) == 0
    added = json.loads(capsys.readouterr().out)["added"]
    assert added["algorithms"] == ["pdq"] and added["hashes"] == 1
    assert main(["allow", "list", "--dir", d, "--json"]) == 0
    listing = capsys.readouterr().out
    assert a.hex() not in listing.lower() and json.loads(listing)["items"][0]["id"] == added["id"]
    assert main(["allow", "list", "--dir", d]) == 0
    assert a.hex() not in capsys.readouterr().out.lower()
    # Usage errors exit 2 with a message a person can act on; --json names the class.
    assert main(["allow", "add", "not-a-hash-or-file", "--dir", d]) == 2
    assert "pdq:HEX" in capsys.readouterr().err
    assert main(["allow", "add", "sha256:abcd", "--dir", d, "--json"]) == 2
    assert json.loads(capsys.readouterr().out)["error"] == "UsageError"
    assert main(["allow", "remove", "99", "--dir", d]) == 2
    assert main(["review", "release", "1", "--dir", d]) == 2  # not quarantined
    assert main(["review", "clear", "1", "--dir", d]) == 2  # no record
    capsys.readouterr()
    assert main(["review", "false-positive", "1", "2", "--note", "stock photo", "--dir", d]) == 0
    assert "log index 1: false positive" in capsys.readouterr().out
    assert main(["review", "confirm", "0", "--dir", d, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["records"][0]["state"] == "confirmed"
    assert main(["review", "list", "--state", "false_positive", "--dir", d, "--json"]) == 0
    records = json.loads(capsys.readouterr().out)["records"]
    assert [(r["log_index"], r["note"]) for r in records] == [
        (1, "stock photo"),
        (2, "stock photo"),
    ]
    assert main(["review", "clear", "2", "--dir", d]) == 0
    assert capsys.readouterr().out == "log index 2: cleared\n"
    assert main(["status", "--dir", d, "--json"]) == 0
    status = json.loads(capsys.readouterr().out)["defences"]
    assert status["marks"] == {"confirmed": 1, "false_positive": 1, "quarantined": 0,
                               "released": 0}  # fmt: skip
    assert status["allow_items"] == 1 and status["quarantined"] == []
    assert main(["status", "--dir", d]) == 0
    assert "defences: 0 quarantined, 1 false positive, 1 confirmed" in capsys.readouterr().out
    for command in ("allow", "review"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        assert "examples:" in capsys.readouterr().out


def test_no_defence_command_talks_to_the_hub(
    store: tuple[Path, list[bytes]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hub never learns a match: allow, review and status open no connection at all."""
    directory, (a, _, _) = store
    attempts: list[object] = []

    def refuse(*args: object, **kw: object) -> None:
        attempts.append(args)
        raise AssertionError("a defence command opened a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(httpx.Client, "send", refuse)
    monkeypatch.setattr(httpx.AsyncClient, "send", refuse)
    (tmp_path / "file.bin").write_bytes(b"some benign file")
    d = str(directory)
    with Defences(directory, flood=FloodPolicy(limit=20)) as defences:
        with Matcher(directory, defences=defences) as m:
            for seed in range(100):
                m.match_hashes([PdqHash(near(a, seed), 90)])
    commands = [
        ["allow", "add", str(tmp_path / "file.bin"), f"pdq:{secrets.token_hex(32)}"],
        ["allow", "list"],
        ["allow", "remove", "1"],
        ["review", "confirm", "1"],
        ["review", "false-positive", "2"],
        ["review", "list"],
        ["status"],
        ["review", "release", "0"],
        ["review", "clear", "2"],
        ["match", str(tmp_path / "file.bin")],
    ]
    for command in commands:
        assert main([*command, "--dir", d]) == 0, command
    assert attempts == []


def test_false_positive_survives_restart_and_later_syncs(kit: Any) -> None:
    """Marks live in defences.sqlite3 by log index: a restart, later syncs, and even a store
    rebuilt from the first batch (every batch re-delivered and re-verified) keep them; a
    withdrawal of the entry still erases it, and its mark with it."""
    from hubkit import Case, post, random_pdq, wait_for_size
    from test_partner_erasure import submit

    a = kit.new_partner("alpha")
    case = Case()
    hashes = [random_pdq() for _ in range(4)]
    with kit.hub.client() as client:
        ids = submit(client, case, hashes)
        wait_for_size(client, 4)
        kit.wait_sealed(4)
        with kit.partner(a) as p:
            p.sync()
        queries = [PdqHash(bytes.fromhex(h["hash"]), 90) for h in hashes]
        with Matcher(a) as m:
            found = [indexes(r) for r in m.match_hashes(queries)]
        assert all(len(f) == 1 for f in found)
        fp = found[0][0]
        assert main(["review", "false-positive", str(fp), "--dir", str(a)]) == 0

        def check() -> None:
            with Matcher(a) as m:  # a fresh process's view: restart
                got = [indexes(r) for r in m.match_hashes(queries)]
            assert got == [[], *found[1:]], got

        check()
        submit(client, Case(), [random_pdq() for _ in range(4)])
        wait_for_size(client, 8)
        kit.wait_sealed(8)
        with kit.partner(a) as p:
            assert p.sync().cursor == 8
        check()
        # The store is lost and rebuilt: every batch is delivered and applied again.
        for name in ("store.sqlite3", "store.sqlite3-wal", "store.sqlite3-shm"):
            (a / name).unlink(missing_ok=True)
        with kit.partner(a) as p:
            assert p.sync().cursor == 8
        check()

        # The withdrawal still deletes the entry; its mark goes with it.
        assert post(client, "/v1/withdrawals", case.withdrawal(ids[:1])).status_code == 202
        wait_for_size(client, 9)
        kit.wait_sealed(9)
        with kit.partner(a) as p:
            assert p.sync().cursor == 9
        with Matcher(a) as m:
            assert m.match_hashes(queries[:1])[0] == ()
            assert m.defences is not None and m.defences.marks() == []


def test_match_service_over_http_honours_all_three(
    store: tuple[Path, list[bytes]], tmp_path: Path
) -> None:
    directory, (a, b, c) = store
    service = MatchService(directory, ("--flood-limit", "100", "--flood-window", "3600")).start()
    try:
        with service.client(headers={**JSON_HEADERS, "Host": "127.0.0.1"}) as client:

            def ask(value: bytes) -> list[int]:
                r = client.post("/v1/match/hash", json={"algorithm": "pdq", "hash": value.hex()})
                assert r.status_code == 200, r.text
                return [x["log_index"] for x in r.json()["matches"]]

            def wait_for(value: bytes, want: list[int]) -> None:
                deadline = time.monotonic() + 10
                while ask(value) != want:
                    assert time.monotonic() < deadline, f"still not {want}"
                    time.sleep(0.05)

            assert ask(a) == [0] and ask(b) == [1] and ask(c) == [2]
            # Flood: 300 distinct uploads near a, in one batch: a is held, b is not.
            batch = [{"algorithm": "pdq", "hash": near(a, s).hex()} for s in range(300)]
            batch.append({"algorithm": "pdq", "hash": b.hex()})
            r = client.post("/v1/match/hashes", json={"hashes": batch})
            assert r.status_code == 200
            results = r.json()["results"]
            assert all(x["matches"] == [] for x in results[:300])
            assert [x["log_index"] for x in results[300]["matches"]] == [1]
            assert ask(a) == []
            # A false-positive mark and an allow-listed hash, made while it runs.
            assert main(["review", "false-positive", "1", "--dir", str(directory)]) == 0
            wait_for(b, [])
            assert main(["allow", "add", f"pdq:{near(c, 9).hex()}", "--dir", str(directory)]) == 0
            wait_for(c, [])
            # Released, the flooded entry matches again.
            assert main(["review", "release", "0", "--dir", str(directory)]) == 0
            wait_for(a, [0])

            metrics = client.get("/metrics").text
            assert 'ncii_match_suppressed_total{reason="quarantine"}' in metrics
            assert 'ncii_match_suppressed_total{reason="false_positive"}' in metrics
            assert 'ncii_match_suppressed_total{reason="allow_list"}' in metrics
            assert "ncii_match_quarantines_total 1.0" in metrics
            stats = client.get("/stats").json()["defences"]
            assert stats["flood_limit"] == 100 and stats["marks"]["released"] == 1
            for value in (a, b, c):
                assert value.hex() not in metrics and value.hex() not in json.dumps(stats)
    finally:
        service.stop()
    log = service.output()
    assert "quarantined the entry at log index 0" in log
    assert not any(near(a, s).hex() in log for s in range(300)) and a.hex() not in log


def test_allow_listed_video_file_never_matches(conformance_vectors: Path, tmp_path: Path) -> None:
    """A video is allow-listed by its vPDQ frames: the stored clip matches the allow-listed
    copy by the vPDQ rule, so uploads of either no longer return it; another clip still does."""
    from matchkit import video
    from test_match_media import reencode

    from hashing import hash_video

    chair = conformance_vectors / "vpdq" / "chair-19-sd-bar.mp4"
    pattern = conformance_vectors / "vpdq" / "pattern-sd-grey-bar.mp4"
    directory = tmp_path / "partner"
    writer = StoreWriter(directory)
    writer.append([video(hash_video(chair.read_bytes())), video(hash_video(pattern.read_bytes()))])
    writer.close()
    copy = tmp_path / "our-own-copy.mp4"
    copy.write_bytes(reencode(chair, 320, 240))
    with Matcher(directory) as m:
        assert indexes(m.match_file(chair).matches) == [0]
        assert m.defences is not None
        item = m.defences.allow_file(copy, note="licensed trailer")
        assert item.kind == "video" and item.algorithms == ("md5", "sha256", "vpdq")
        assert m.match_file(chair).matches == ()
        assert m.match_file(copy).matches == ()
        assert indexes(m.match_file(pattern).matches) == [1]
        assert m.defences.summary()["suppressed"]["allow_list"] == 2


def test_removed_allow_list_values_leave_the_folder(store: tuple[Path, list[bytes]]) -> None:
    directory, _ = store
    mine = [secrets.token_bytes(32) for _ in range(40)]
    with Defences(directory) as d:
        ids = [d.allow_hash(f"pdq:{v.hex()}").id for v in mine]
        files = folder_bytes(directory)
        assert all(any(v in data for data in files.values()) for v in mine)
        for item in ids[:20]:
            d.allow_remove(item)
        files = {k: v for k, v in folder_bytes(directory).items() if k.startswith("defences")}
    assert not [v for v in mine[:20] for form in encodings(v) for data in files.values()
                if form in data]  # fmt: skip
    assert all(any(v in data for data in files.values()) for v in mine[20:])


def test_two_processes_creating_the_flood_key_at_once_agree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``serve`` and a CLI command (or two ``serve`` workers) start together on a fresh folder:
    the second must never read the first's key file half-written (it failed with "must hold
    64 hex digits; delete it", and deleting it splits the counts), and both must end up with
    the same key. The interleaving is forced: the second start runs while the first is
    between creating the file and writing it."""
    import partner_sdk.defences as defences_module

    path = tmp_path / "defences.key"
    real = defences_module.secrets.token_bytes
    seen: list[bytes] = []

    def racing(n: int) -> bytes:
        if not seen:
            seen.append(b"")
            seen.append(defences_module._load_secret(path))  # the other process, meanwhile
        return real(n)

    monkeypatch.setattr(defences_module.secrets, "token_bytes", racing)
    first = defences_module._load_secret(path)
    assert first == seen[1]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["defences.key"]  # no temporary file left
