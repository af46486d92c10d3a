"""Request bodies inside envelopes and the entry bodies the log commits to (specs/submission.md).

Why strict: these bytes come from anyone on the internet and end up in partners' block lists.
Only one spelling is accepted (UTF-8 JSON, no duplicate keys, no unknown fields, lowercase hex),
every count is capped, and each refusal names the offending field (never its value, which may
be a hash).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crypto import boundedjson
from crypto.errors import JsonBoundsError
from hub.errors import HubError

__all__ = [
    "BODY_VERSION",
    "DenyList",
    "Limits",
    "SubmittedHash",
    "addition_entry",
    "load_deny_list",
    "parse_status",
    "parse_submission",
    "parse_withdrawal",
    "tombstone_entry",
]

BODY_VERSION = 1
ALGORITHMS = ("pdq", "md5", "sha256", "vpdq")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_HEX32 = re.compile(r"[0-9a-f]{32}")
_ENTRY_ID = re.compile(r"[0-9a-f]{32}")
MAX_FRAME_NUMBER = 2**31 - 1
# The envelope already holds the body to max_body_bytes; this is that setting's upper bound.
MAX_JSON_BYTES = 64 << 20
MAX_TIMESTAMP_SECONDS = 10_000_000.0  # 115 days of video


@dataclass(frozen=True, slots=True)
class Limits:
    """The subset of Settings the body parser needs."""

    max_hashes: int
    max_frames: int
    quality_floor: int
    max_withdraw: int


@dataclass(frozen=True, slots=True)
class SubmittedHash:
    """One validated hash: its canonical JSON object and its entry body."""

    algorithm: str
    canonical: dict[str, Any]
    body: bytes = b""  # addition_entry(canonical), computed once (parse_submission)

    def entry_body(self) -> bytes:
        """The exact entry bytes committed in the log and delivered to partners."""
        return self.body or addition_entry(self.canonical)


DenyList = frozenset[str]


def load_deny_list(path: Path) -> DenyList:
    """Lowercase hex hashes, one per line; blank lines and '#' comments ignored."""
    out: set[str] = set()
    for number, raw in enumerate(path.read_text("utf-8").splitlines(), 1):
        line = raw.split("#", 1)[0].strip().lower()
        if not line:
            continue
        if _HEX64.fullmatch(line) is None and _HEX32.fullmatch(line) is None:
            raise ValueError(f"{path}:{number}: expected a 64-hex PDQ/SHA-256 or 32-hex MD5 hash")
        out.add(line)
    return frozenset(out)


# addition_entry's output for the flat algorithms, spelled out: the values are validated
# lowercase hex and an int from 0 to 100, so this is that same canonical JSON without
# json.dumps's cost per hash (test_hub_formats checks the two agree).
_PDQ_ENTRY = '{"hash":{"algorithm":"pdq","hash":"%s","quality":%d},"kind":"addition","v":1}'
_DIGEST_ENTRY = '{"hash":{"algorithm":"%s","hash":"%s"},"kind":"addition","v":1}'


def canonical_json(value: object) -> bytes:
    """Sorted keys, no spaces, ASCII only: one byte string per value."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def addition_entry(hash_object: dict[str, Any]) -> bytes:
    """``{"hash":{...},"kind":"addition","v":1}`` in canonical JSON."""
    return canonical_json({"hash": hash_object, "kind": "addition", "v": BODY_VERSION})


def tombstone_entry(withdrawn_index: int) -> bytes:
    """``{"kind":"tombstone","v":1,"withdraws":<log index>}`` in canonical JSON."""
    return canonical_json({"kind": "tombstone", "v": BODY_VERSION, "withdraws": withdrawn_index})


# -- strict JSON ----------------------------------------------------------------------------


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise HubError(400, "invalid_body", f"field {key!r} appears twice")
        out[key] = value
    return out


def _load(body: bytes) -> dict[str, Any]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise HubError(400, "invalid_body", "the body is not UTF-8 text") from None
    if text.startswith("\ufeff"):
        raise HubError(400, "invalid_body", "the body must not start with a byte order mark")
    try:
        value = boundedjson.loads(text, max_bytes=MAX_JSON_BYTES, object_pairs_hook=_no_duplicates)
    except HubError:
        raise
    except JsonBoundsError as exc:
        raise HubError(400, "invalid_body", f"the body is not accepted: {exc}") from None
    if not isinstance(value, dict):
        raise HubError(400, "invalid_body", "the body must be a JSON object")
    return value


_KEY_SETS: dict[tuple[str, ...], frozenset[str]] = {}  # the few field lists of this module


def _fields(
    obj: object, where: str, required: tuple[str, ...], optional: Iterable[str] = ()
) -> None:
    if not isinstance(obj, dict):
        raise HubError(400, "invalid_body", f"{where} must be a JSON object")
    if not optional:
        # The usual case, every field there and no other, in one set comparison (this
        # runs for every hash of every submission); otherwise the checks below name the
        # field that is wrong.
        keys = _KEY_SETS.get(required)
        if keys is None:
            keys = _KEY_SETS.setdefault(required, frozenset(required))
        if obj.keys() == keys:
            return
    req = set(required)
    allowed = req | set(optional)
    for key in obj:
        if key not in allowed:
            raise HubError(400, "invalid_body", f"{where} has an unknown field {key!r}"[:200])
    for key in sorted(req):
        if key not in obj:
            raise HubError(400, "invalid_body", f"{where} lacks the field {key!r}")


def _version(obj: dict[str, Any]) -> None:
    v = obj.get("v")
    # Only the JSON integer 1: 1.0 and true compare equal to 1 in Python but are other spellings.
    if isinstance(v, bool) or not isinstance(v, int) or v != BODY_VERSION:
        raise HubError(400, "unsupported_version", f"body version must be {BODY_VERSION}")


def _int(value: object, where: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise HubError(400, "invalid_hash", f"{where} must be an integer from {low} to {high}")
    return value


def _hex(value: object, pattern: re.Pattern[str], where: str, digits: int) -> str:
    if not isinstance(value, str) or pattern.fullmatch(value) is None:
        raise HubError(
            400, "invalid_hash", f"{where} must be {digits} lowercase hexadecimal digits"
        )
    return value


# -- bodies ---------------------------------------------------------------------------------


def _quality(value: object, where: str, floor: int) -> int:
    quality = _int(value, where, 0, 100)
    if quality < floor:
        raise HubError(
            422,
            "low_quality",
            f"{where} is {quality}, below the floor of {floor}: this image has too little "
            "detail to match reliably; leave it out",
        )
    return quality


def _frames(value: object, where: str, limits: Limits, deny: DenyList) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not value:
        raise HubError(400, "invalid_hash", f"{where} must be a non-empty list of frames")
    if len(value) > limits.max_frames:
        raise HubError(
            422,
            "too_many_frames",
            f"{where} has {len(value)} frames; the limit is "
            f"{limits.max_frames} (sample the video more sparsely)",
        )
    out: list[dict[str, Any]] = []
    previous = -1
    best = -1
    all_denied = True
    for i, frame in enumerate(value):
        at = f"{where}[{i}]"
        _fields(frame, at, ("frame", "quality", "hash", "timestamp"))
        number = _int(frame["frame"], f"{at}.frame", 0, MAX_FRAME_NUMBER)
        if number <= previous:
            raise HubError(400, "invalid_hash", f"{at}.frame must be larger than the previous")
        previous = number
        quality = _int(frame["quality"], f"{at}.quality", 0, 100)
        best = max(best, quality)
        digest = _hex(frame["hash"], _HEX64, f"{at}.hash", 64)
        all_denied = all_denied and digest in deny
        ts = frame["timestamp"]
        if (
            isinstance(ts, bool)
            or not isinstance(ts, int | float)
            or not math.isfinite(ts)
            or not 0 <= ts <= MAX_TIMESTAMP_SECONDS
        ):
            raise HubError(
                400, "invalid_hash", f"{at}.timestamp must be seconds from 0 to 10000000"
            )
        out.append({"frame": number, "hash": digest, "quality": quality, "timestamp": float(ts)})
    if best < limits.quality_floor:
        raise HubError(
            422,
            "low_quality",
            f"every frame of {where} has quality below the floor of {limits.quality_floor}: "
            "this video has too little detail to match reliably; leave it out",
        )
    if all_denied:
        raise HubError(422, "denied_hash", f"{where} holds only hashes of known benign content")
    return out


def _one_hash(obj: object, where: str, limits: Limits, deny: DenyList) -> SubmittedHash:
    if not isinstance(obj, dict):
        raise HubError(400, "invalid_hash", f"{where} must be a JSON object")
    algorithm = obj.get("algorithm")
    if algorithm not in ALGORITHMS:
        raise HubError(
            400, "invalid_hash", f"{where}.algorithm must be one of pdq, md5, sha256, vpdq"
        )
    canonical: dict[str, Any]
    if algorithm == "pdq":
        _fields(obj, where, ("algorithm", "hash", "quality"))
        digest = _hex(obj["hash"], _HEX64, f"{where}.hash", 64)
        quality = _quality(obj["quality"], f"{where}.quality", limits.quality_floor)
        canonical = {"algorithm": "pdq", "hash": digest, "quality": quality}
        entry = _PDQ_ENTRY % (digest, quality)
    elif algorithm == "md5":
        _fields(obj, where, ("algorithm", "hash"))
        digest = _hex(obj["hash"], _HEX32, f"{where}.hash", 32)
        canonical = {"algorithm": "md5", "hash": digest}
        entry = _DIGEST_ENTRY % ("md5", digest)
    elif algorithm == "sha256":
        _fields(obj, where, ("algorithm", "hash"))
        digest = _hex(obj["hash"], _HEX64, f"{where}.hash", 64)
        canonical = {"algorithm": "sha256", "hash": digest}
        entry = _DIGEST_ENTRY % ("sha256", digest)
    else:
        _fields(obj, where, ("algorithm", "frames"))
        frames = _frames(obj["frames"], f"{where}.frames", limits, deny)
        return _hash("vpdq", {"algorithm": "vpdq", "frames": frames})
    if digest in deny:
        raise HubError(
            422,
            "denied_hash",
            f"{where} is the hash of known benign content (a blank or stock image); leave it out",
        )
    return SubmittedHash(str(algorithm), canonical, entry.encode("ascii"))


def _hash(algorithm: str, canonical: dict[str, Any]) -> SubmittedHash:
    return SubmittedHash(algorithm, canonical, addition_entry(canonical))


def parse_submission(body: bytes, limits: Limits, deny: DenyList) -> list[SubmittedHash]:
    """``{"v":1,"hashes":[...]}`` -> validated hashes in request order."""
    obj = _load(body)
    _fields(obj, "the body", ("v", "hashes"))
    _version(obj)
    hashes = obj["hashes"]
    if not isinstance(hashes, list) or not hashes:
        raise HubError(400, "invalid_body", "hashes must be a non-empty list")
    if len(hashes) > limits.max_hashes:
        raise HubError(
            422,
            "too_many_hashes",
            f"{len(hashes)} hashes in one request; the limit is {limits.max_hashes}: "
            "split them over several requests",
        )
    out = [_one_hash(h, f"hashes[{i}]", limits, deny) for i, h in enumerate(hashes)]
    seen: dict[bytes, int] = {}
    for i, item in enumerate(out):
        key = item.body  # one canonical spelling per hash object, so equal iff same hash
        if key in seen:
            raise HubError(
                422, "duplicate_hash", f"hashes[{i}] repeats hashes[{seen[key]}]; send it once"
            )
        seen[key] = i
    return out


def parse_withdrawal(body: bytes, limits: Limits) -> list[str] | None:
    """``{"v":1,"all":true}`` -> None (the whole case); ``{"v":1,"entries":[ids]}`` -> ids."""
    obj = _load(body)
    _fields(obj, "the body", ("v",), ("all", "entries"))
    _version(obj)
    if ("all" in obj) == ("entries" in obj):
        raise HubError(400, "invalid_body", "give exactly one of all (true) or entries (ids)")
    if "all" in obj:
        if obj["all"] is not True:
            raise HubError(400, "invalid_body", "all must be true")
        return None
    ids = obj["entries"]
    if not isinstance(ids, list) or not ids:
        raise HubError(400, "invalid_body", "entries must be a non-empty list of entry ids")
    if len(ids) > limits.max_withdraw:
        raise HubError(
            422, "too_many_entries", f"at most {limits.max_withdraw} entries per withdrawal"
        )
    out: list[str] = []
    for i, entry_id in enumerate(ids):
        if not isinstance(entry_id, str) or _ENTRY_ID.fullmatch(entry_id) is None:
            raise HubError(
                400, "invalid_body", f"entries[{i}] must be an entry id (32 lowercase hex)"
            )
        out.append(entry_id)
    if len(set(out)) != len(out):
        raise HubError(400, "invalid_body", "entries lists an entry id twice")
    return out


def parse_status(body: bytes) -> None:
    """``{"v":1}``: a status query carries nothing but its version."""
    obj = _load(body)
    _fields(obj, "the body", ("v",))
    _version(obj)
