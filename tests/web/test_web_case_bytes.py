"""The page's protocol modules give the Python client's bytes (issue 15, "same envelope bytes").

- web/case.js parses thousands of typed recovery codes (substitutions, swaps, insertions,
  deletions, stray characters, lower case, separators) exactly as crypto/case.py does: the same
  secret, or an error naming the same group; and derives the same key and case id.
- web/submission.js + envelope.js build, from the records `ncii-client hash --json` prints for
  real files (the records fingerprint() gives in the page), the same submission envelopes as
  client/plan.py for the same secret, time and nonces, split the same way under small caps.
- Status-query and withdrawal bodies equal the ones client/hub.py sends (captured on the wire).
- A real hub accepts the Node-built envelope over HTTP, and the Python client then sees the case.
"""

from __future__ import annotations

import json
import random
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from client.hub import HubSession
from client.plan import SubmitLimits, canonical_hash_key, hash_paths, plan_submission, seal_plan
from client.store import ClientHome
from crypto import envelope
from crypto.case import ALPHABET, CaseSecret
from crypto.errors import RecoveryCodeError

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "hub"))

from casekit import PROJECT_ROOT, driver, page_records
from hubkit import ENVELOPE_TYPE, HubProcess

NOW = 1767225600


# -- recovery codes ---------------------------------------------------------------------------


def _typed_codes(rng: random.Random) -> list[str]:
    """Codes as people mistype them, with their expected outcome left to crypto/case.py."""
    codes: list[str] = []
    others = "0123456789abcdefghijklmnopqrstuvwxyzIiLlOoUu .,_/é€\u0663"
    for _ in range(60):
        code = CaseSecret(rng.randbytes(16)).recovery_code()
        plain = code.replace("-", "")
        codes += [code, code.lower(), plain, " ".join(code.split("-")), code.replace("1", "l")]
        for _ in range(12):
            i = rng.randrange(28)
            codes.append(plain[:i] + rng.choice(ALPHABET) + plain[i + 1 :])  # substitution
            j = rng.randrange(27)
            codes.append(plain[:j] + plain[j + 1] + plain[j] + plain[j + 2 :])  # adjacent swap
            codes.append(plain[:i] + plain[i + 1 :])  # deletion
            codes.append(plain[:i] + rng.choice(ALPHABET) + plain[i:])  # insertion
            codes.append(plain[:i] + rng.choice(others) + plain[i + 1 :])  # stray character
            k = rng.randrange(28)
            two = list(plain)
            two[i], two[k] = rng.choice(ALPHABET), rng.choice(ALPHABET)
            codes.append("".join(two))  # two substitutions
    codes += ["", "-", "\t \t", "x" * 201, "0" * 200, "7ZZZ" * 7, "8" * 28, "ü" * 28]
    codes += ["".join(rng.choice(ALPHABET) for _ in range(28)) for _ in range(300)]
    return codes


def test_recovery_codes_parse_exactly_as_crypto_case() -> None:
    rng = random.Random(15)
    codes = _typed_codes(rng)
    got = driver({"op": "parse-codes", "codes": codes})["results"]
    assert len(got) == len(codes) > 4500
    errors = groups = 0
    for code, js in zip(codes, got, strict=True):
        try:
            want = CaseSecret.from_recovery_code(code).to_bytes().hex()
        except RecoveryCodeError as exc:
            assert js.get("error") == "RecoveryCodeError", code
            assert js["group"] == exc.group, code
            assert js["code"] in ("empty", "length", "character", "check")
            errors += 1
            groups += exc.group is not None
            continue
        assert js == {"secret": want}, code
    assert errors > 3000 and groups > 2000  # the corpus really exercises the typo paths


def test_derived_keys_and_ids_equal_crypto_case() -> None:
    secrets = [CaseSecret.generate() for _ in range(50)]
    got = driver({"op": "derive", "secrets": [s.to_bytes().hex() for s in secrets]})["cases"]
    for secret, js in zip(secrets, got, strict=True):
        assert js == {
            "code": secret.recovery_code(),
            "public_key": secret.public_key().hex(),
            "case_id": secret.case_id(),
        }


# -- submissions from real files ------------------------------------------------------------


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Pictures (two different, one copied twice), a flat picture, a video, a text file, and a
    damaged picture, in the order a person might pick them."""
    folder = tmp_path_factory.mktemp("media")
    images = PROJECT_ROOT / "tests" / "vectors" / "pdq" / "images" / "bridge-mods"
    paths = [folder / "01-orig.jpg", folder / "02-blur.jpg", folder / "03-copy.jpg"]
    shutil.copy(images / "aaa-orig.jpg", paths[0])
    shutil.copy(images / "blur-a-lot.jpg", paths[1])
    shutil.copy(images / "aaa-orig.jpg", paths[2])
    flat = folder / "04-flat.png"
    Image.new("RGB", (64, 64), (120, 120, 120)).save(flat)
    video = folder / "05-clip.mp4"
    shutil.copy(PROJECT_ROOT / "tests" / "vectors" / "vpdq" / "pattern-sd-grey-bar.mp4", video)
    text = folder / "06-notes.txt"
    text.write_text("not a picture\n")
    broken = folder / "07-broken.jpg"
    broken.write_bytes((images / "high-contrast.jpg").read_bytes()[:700])
    return [*paths, flat, video, text, broken]


def _page_records(paths: list[Path]) -> list[list[dict[str, Any]]]:
    files, failed = page_records(paths)
    assert failed == {str(paths[-1])}
    return files


def _python_envelopes(
    secret: CaseSecret, paths: list[Path], nonces: list[bytes], limits: SubmitLimits
) -> list[bytes]:
    report = hash_paths([str(p) for p in paths], limits=limits)
    plan = plan_submission(report)
    draw = iter(nonces)
    return seal_plan(secret, plan, NOW, limits=limits, nonce=lambda: next(draw))


@pytest.mark.parametrize(
    "limits",
    [SubmitLimits(), SubmitLimits(max_hashes=2, max_body=1_000_000, max_frames=3)],
    ids=["default-caps", "tiny-caps"],
)
def test_node_builds_the_python_clients_submission_bytes(
    media: list[Path], limits: SubmitLimits
) -> None:
    secret = CaseSecret.generate()
    nonces = [bytes([i]) * 16 for i in range(1, 60)]
    want = _python_envelopes(secret, media, nonces, limits)
    got = driver(
        {
            "op": "seal-submission",
            "secret": secret.to_bytes().hex(),
            "now": NOW,
            "nonces": [n.hex() for n in nonces],
            "files": _page_records(media),
            "limits": {
                "maxHashes": limits.max_hashes,
                "maxBody": limits.max_body,
                "maxFrames": limits.max_frames,
            },
        }
    )
    assert [bytes.fromhex(e) for e in got["envelopes"]] == want
    assert len(want) == 1 if limits.max_hashes == 1000 else len(want) > 3
    states = [f["state"] for f in got["files"]]
    assert states == ["ready", "ready", "ready", "low-quality", "ready", "skipped"]
    bodies = [envelope.open(e, "submission", NOW).body for e in want]
    text = b"".join(bodies)
    assert b"timestamp" in text and b'"algorithm":"vpdq"' in text
    for name in (p.name.encode() for p in media):
        assert name not in text


def test_status_and_withdrawal_bodies_equal_the_python_clients(tmp_path: Path) -> None:
    home = ClientHome(tmp_path / "home")
    case_id = home.create_case().case_id
    secret = home.load_secret(case_id)
    sent: list[bytes] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request.content)
        if request.url.path == "/v1/status":
            body = {"v": 1, "case_id": case_id, "withdrawn": False, "checkpoint_size": 0}
            return httpx.Response(200, json={**body, "entries": []})
        return httpx.Response(
            202,
            json={
                "v": 1,
                "case_id": case_id,
                "status": "pending",
                "case_withdrawn": False,
                "withdrawn": [],
                "already_withdrawn": [],
            },
        )

    ids = ["0123456789ABCDEF0123456789abcdef ", "f" * 32, "0123456789abcdef0123456789abcdef"]
    with HubSession("http://127.0.0.1:9", home, transport=httpx.MockTransport(answer)) as session:
        session.status(case_id)
        session.withdraw(case_id, ids)
        session.withdraw(case_id, None)
    purposes = ["status-query", "withdrawal", "withdrawal"]
    python_bodies = [
        envelope.open(raw, purpose, int(time.time())).body
        for raw, purpose in zip(sent, purposes, strict=True)
    ]
    requests = [
        {"kind": "status"},
        {"kind": "withdrawal", "entries": ids},
        {"kind": "withdrawal", "entries": "all"},
    ]
    for request, purpose, want in zip(requests, purposes, python_bodies, strict=True):
        raw = driver(
            {
                "op": "seal-other",
                "secret": secret.to_bytes().hex(),
                "now": NOW,
                "nonce": "00" * 16,
                **request,
            }
        )["envelope"]
        assert envelope.open(bytes.fromhex(raw), purpose, NOW).body == want
        # and the whole envelope is what crypto/envelope.py seals for these inputs
        assert bytes.fromhex(raw) == envelope.seal(
            secret.signing_key(), purpose, want, NOW, bytes(16)
        )


# -- the hub takes what Node built ----------------------------------------------------------


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[HubProcess]:
    proc = HubProcess(tmp_path / "data", f"sqlite:///{tmp_path / 'hub.sqlite3'}").start()
    yield proc
    proc.kill()


def test_hub_accepts_the_node_built_submission(
    media: list[Path], hub: HubProcess, tmp_path: Path
) -> None:
    home = ClientHome(tmp_path / "home")
    case_id = home.create_case().case_id
    secret = home.load_secret(case_id)
    files = _page_records(media)
    got = driver(
        {
            "op": "seal-submission",
            "secret": secret.to_bytes().hex(),
            "now": int(time.time()),
            "nonces": [envelope.new_nonce().hex()],
            "files": files,
        }
    )
    (raw,) = (bytes.fromhex(e) for e in got["envelopes"])
    with httpx.Client(base_url=hub.url, timeout=30) as http:
        first = http.post("/v1/submissions", content=raw, headers={"Content-Type": ENVELOPE_TYPE})
        again = http.post("/v1/submissions", content=raw, headers={"Content-Type": ENVELOPE_TYPE})
    assert first.status_code == 202, first.text
    assert again.status_code == 202 and again.content == first.content  # idempotent retry
    answer = first.json()
    assert answer["case_id"] == case_id and answer["status"] == "pending"
    assert len(answer["entries"]) == got["count"]
    # The Python client sees the same case holding exactly the page's fingerprints.
    with HubSession(hub.url, home) as session:
        status = session.status(case_id)
    body = envelope.open(raw, "submission", int(time.time())).body
    sent = {canonical_hash_key(h) for h in json.loads(body)["hashes"]}
    held = {canonical_hash_key(e.hash) for e in status.entries if e.hash is not None}
    assert held == sent and len(held) == got["count"]
