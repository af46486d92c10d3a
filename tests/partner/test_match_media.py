"""Matcher on real media: edited photos still match their entries, unrelated photos do not;
a re-encoded clip matches its video, another clip does not; digests match exactly;
incremental refresh (additions, withdrawals) equals a fresh build."""

from __future__ import annotations

from pathlib import Path

import pytest
from matchkit import StoreWriter, encode, pdq, photo, reencode, variants, video
from PIL import Image

from hashing import FileDigests, PdqHash, digest_bytes, hash_image, hash_video
from partner_sdk.batch import Addition, Tombstone
from partner_sdk.errors import StoreError, UsageError
from partner_sdk.matcher import ExactDigest, Matcher, Query, VideoQuery

STORED = ("astronaut", "camera", "coffee", "chelsea", "rocket")
UNRELATED = ("horse", "immunohistochemistry", "hubble_deep_field", "brick", "page")


@pytest.fixture(scope="module")
def photo_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    directory = tmp_path_factory.mktemp("photos")
    writer = StoreWriter(directory)
    items = [pdq(hash_image(encode(photo(n))).digest) for n in STORED]
    ids = writer.append(items)
    writer.close()
    return directory, dict(zip(STORED, ids, strict=True))


CASES = [(n, v) for n in STORED for v in ("jpeg-q50", "resized-half", "cropped-1pct", "brightened")]


@pytest.mark.parametrize(("name", "variant"), CASES, ids=[f"{n}/{v}" for n, v in CASES])
def test_edited_photo_matches_its_entry(
    photo_store: tuple[Path, dict[str, int]], name: str, variant: str
) -> None:
    directory, ids = photo_store
    data = variants(photo(name))[variant]
    with Matcher(directory) as m:
        result = m.match_image_bytes(data)
    pdq_hits = [x for x in result.matches if x.algorithm == "pdq"]
    assert [x.log_index for x in pdq_hits] == [ids[name]]
    assert pdq_hits[0].distance <= 31 and pdq_hits[0].quality == 90
    assert result.quality is not None and result.quality >= 50


@pytest.mark.parametrize("name", UNRELATED)
def test_unrelated_photo_does_not_match(
    photo_store: tuple[Path, dict[str, int]], name: str
) -> None:
    directory, _ = photo_store
    with Matcher(directory) as m:
        for data in (encode(photo(name)), *variants(photo(name)).values()):
            assert m.match_image_bytes(data).matches == ()


def test_rotations_only_with_the_option(photo_store: tuple[Path, dict[str, int]]) -> None:
    directory, ids = photo_store
    turned = encode(photo("astronaut").transpose(Image.Transpose.ROTATE_90), "JPEG", quality=80)
    with Matcher(directory) as m:
        assert m.match_image_bytes(turned).matches == ()
    with Matcher(directory, rotations=True) as m:
        hits = m.match_image_bytes(turned).matches
    assert [(h.log_index, h.algorithm) for h in hits] == [(ids["astronaut"], "pdq")]
    assert hits[0].transform in ("rotate90", "rotate270") and hits[0].distance <= 31


def test_exact_digests_and_batch_api(tmp_path: Path) -> None:
    blob = b"not a picture, just bytes"
    d = digest_bytes(blob)
    writer = StoreWriter(tmp_path)
    ids = writer.append([Addition("md5", d.md5, None), Addition("sha256", d.sha256, None)])
    writer.close()
    with Matcher(tmp_path) as m:
        result = m.match_bytes(blob)
        assert result.kind == "file" and result.error is None
        assert [(x.log_index, x.algorithm, x.distance) for x in result.matches] == [
            (ids[0], "md5", 0),
            (ids[1], "sha256", 0),
        ]
        other = digest_bytes(b"other")
        got = m.match_hashes(
            [
                ExactDigest("md5", d.md5),
                other,
                FileDigests(d.md5, other.sha256, 1),
                PdqHash(bytes(32), 0),
                VideoQuery(()),
            ]
        )
        assert [[x.log_index for x in r] for r in got] == [[ids[0]], [], [ids[0]], [], []]


def test_video_reencoded_matches_other_clip_does_not(
    conformance_vectors: Path, tmp_path: Path
) -> None:
    chair = conformance_vectors / "vpdq" / "chair-19-sd-bar.mp4"
    pattern = conformance_vectors / "vpdq" / "pattern-sd-grey-bar.mp4"
    writer = StoreWriter(tmp_path)
    (chair_id,) = writer.append([video(hash_video(chair.read_bytes()))])
    writer.close()
    smaller = reencode(chair, 320, 240)
    with Matcher(tmp_path) as m:
        result = m.match_bytes(smaller)
        assert result.kind == "video" and result.frames and result.frames > 0
        (hit,) = result.matches
        assert hit.log_index == chair_id and hit.algorithm == "vpdq"
        assert hit.query_match_percent is not None and hit.query_match_percent >= 80
        assert hit.candidate_match_percent is not None and hit.candidate_match_percent >= 80
        assert m.match_bytes(pattern.read_bytes()).matches == ()
        assert m.match_bytes(reencode(pattern, 320, 240)).matches == ()


def test_refresh_applies_additions_and_withdrawals(
    tmp_path: Path, conformance_vectors: Path
) -> None:
    writer = StoreWriter(tmp_path)
    hashes = {n: hash_image(encode(photo(n))) for n in ("astronaut", "camera", "coffee")}
    clip = hash_video((conformance_vectors / "vpdq" / "chair-19-sd-bar.mp4").read_bytes())
    a, c = writer.append([pdq(hashes["astronaut"].digest), pdq(hashes["camera"].digest)])
    with Matcher(tmp_path) as m:
        assert [x.log_index for x in m.match_hashes([hashes["astronaut"]])[0]] == [a]
        assert not m.refresh()
        (v, co) = writer.append([video(clip), pdq(hashes["coffee"].digest)])
        assert m.refresh()
        assert [x.log_index for x in m.match_hashes([hashes["coffee"]])[0]] == [co]
        assert [x.log_index for x in m.match_hashes([VideoQuery(tuple(clip))])[0]] == [v]
        writer.append([Tombstone(a), Tombstone(v)])
        assert m.refresh()
        assert m.match_hashes([hashes["astronaut"], VideoQuery(tuple(clip))]) == [(), ()]
        stats = m.stats()
        assert stats["pdq"] == 2 and stats["vpdq_videos"] == 0 and stats["cursor"] == 6
        with Matcher(tmp_path) as fresh:
            queries: list[Query] = [*hashes.values(), VideoQuery(tuple(clip))]
            assert fresh.match_hashes(queries) == m.match_hashes(queries)
        assert [x.log_index for x in m.match_hashes([hashes["camera"]])[0]] == [c]
    writer.close()


def test_refusals(tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        Matcher(tmp_path / "nothing")
    (tmp_path / "store.sqlite3").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError):
        Matcher(tmp_path)
    writer = StoreWriter(tmp_path / "ok")
    writer.close()
    for bad in (-1, 257, True):
        with pytest.raises(UsageError):
            Matcher(tmp_path / "ok", threshold=bad)
    with Matcher(tmp_path / "ok") as m, pytest.raises(UsageError):
        m.match_file(tmp_path / "missing.jpg")
    with Matcher(tmp_path / "ok") as m:
        broken = m.match_image_bytes(b"\xff\xd8\xff" + b"\x00" * 50)
        assert broken.error is not None and broken.matches == ()
