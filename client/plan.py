"""From files on disk to signed submission envelopes: hash locally, decide, split, seal.

hash_paths() fingerprints files with hashing/ (through the walk of client.hash_command) and
decides per file whether it can be sent: pictures and videos whose fingerprints are fit for
matching; files too flat (PDQ quality < 50), damaged ones and non-media files are not sent.
plan_submission() turns what is sendable into hub hash objects exactly as specs/submission.md
section 3 says, without duplicates; seal_plan() splits them under the hub's per-request caps and
signs each body as an envelope (specs/envelope.md). No file name, path, size or metadata is in
any body: there is no field for them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from client.hash_command import Fingerprint, Options, collect, hash_file
from crypto import envelope
from crypto.case import CaseSecret
from hashing.kinds import Kind
from hashing.pdq import QUALITY_FLOOR, PdqHash
from hashing.vpdq import DEFAULT_SECONDS_PER_HASH, VpdqFeature

__all__ = [
    "DEFAULT_LIMITS",
    "FileReport",
    "HashReport",
    "SubmissionPlan",
    "SubmitLimits",
    "canonical_hash_key",
    "encode_body",
    "hash_paths",
    "plan_submission",
    "seal_plan",
    "split_bodies",
]

Progress = Callable[[int, int], None]
HubHash = dict[str, Any]

READY, LOW_QUALITY, ERROR, SKIPPED = "ready", "low-quality", "error", "skipped"


@dataclass(frozen=True, slots=True)
class SubmitLimits:
    """The hub's per-request caps (specs/hub-api.md 6) with a safety margin; the body limit
    leaves room below max_body_bytes (1 MiB) and long videos are split into several vPDQ
    entries of at most ``max_frames`` frames."""

    max_hashes: int = 1000
    max_body: int = 1_000_000
    max_frames: int = 5000


DEFAULT_LIMITS = SubmitLimits()


@dataclass(frozen=True, slots=True)
class FileReport:
    """One file as the person sees it: what will be sent (counts and kinds), or why not.

    ``hashes`` (the hub objects) is kept out of repr: hash values are confidential."""

    path: str
    kind: str  # "image" | "video" | "file" | "unknown"
    state: str  # "ready" | "low-quality" | "error" | "skipped"
    algorithms: tuple[str, ...] = ()
    message: str | None = None
    hashes: tuple[HubHash, ...] = field(default=(), repr=False)

    @property
    def hash_count(self) -> int:
        return len(self.hashes)


@dataclass(frozen=True, slots=True)
class HashReport:
    """Every file met, in walk order, and how many hidden entries the walk skipped."""

    files: tuple[FileReport, ...]
    skipped_hidden: int = 0


@dataclass(frozen=True, slots=True)
class SubmissionPlan:
    """The distinct hub hash objects to send and the per-file reports they came from."""

    hashes: tuple[HubHash, ...] = field(repr=False)
    files: tuple[FileReport, ...]

    @property
    def hash_count(self) -> int:
        return len(self.hashes)

    @property
    def ready_files(self) -> list[FileReport]:
        return [f for f in self.files if f.state == READY]

    @property
    def refused_files(self) -> list[FileReport]:
        return [f for f in self.files if f.state in (LOW_QUALITY, ERROR)]

    def without(self, keys: Iterable[str]) -> SubmissionPlan:
        """The plan minus hashes already on the hub (by :func:`canonical_hash_key`)."""
        drop = set(keys)
        kept = tuple(h for h in self.hashes if canonical_hash_key(h) not in drop)
        return SubmissionPlan(kept, self.files)


def canonical_hash_key(obj: HubHash) -> str:
    """One string per hash object (sorted keys, float timestamps), as the hub's entry bodies
    spell it (specs/submission.md 4): equal keys mean the hub would see a duplicate."""
    if obj.get("algorithm") == "vpdq":
        frames = [{**f, "timestamp": float(f["timestamp"])} for f in obj.get("frames", [])]
        obj = {**obj, "frames": frames}
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def _pdq_object(pdq: PdqHash) -> HubHash:
    return {"algorithm": "pdq", "hash": pdq.hex(), "quality": pdq.quality}


def _vpdq_objects(features: Sequence[VpdqFeature], max_frames: int) -> list[HubHash]:
    frames: list[dict[str, Any]] = [
        {
            "frame": f.frame_number,
            "quality": f.quality,
            "hash": f.hash.hex(),
            "timestamp": round(f.timestamp, 3),
        }
        for f in features
    ]
    return [
        {"algorithm": "vpdq", "frames": frames[i : i + max_frames]}
        for i in range(0, len(frames), max_frames)
        # A chunk whose every frame is too flat would be refused whole by the hub.
        if any(fr["quality"] >= QUALITY_FLOOR for fr in frames[i : i + max_frames])
    ]


def _report(
    path: str, prints: list[Fingerprint], problem_message: str | None, limits: SubmitLimits
) -> FileReport:
    kind = prints[0].kind.value if prints else "unknown"
    if problem_message is not None:
        return FileReport(path, kind, ERROR, message=problem_message)
    if not prints or prints[0].kind is Kind.OTHER:
        return FileReport(
            path, kind, SKIPPED, message="not a picture or video, so there is nothing to protect"
        )
    digests: list[HubHash] = []
    media: list[HubHash] = []
    for fp in prints:
        if fp.algorithm in ("md5", "sha256") and isinstance(fp.value, str):
            digests.append({"algorithm": fp.algorithm, "hash": fp.value})
        elif isinstance(fp.value, PdqHash):
            if not fp.fit:
                return FileReport(
                    path,
                    kind,
                    LOW_QUALITY,
                    message=(
                        "this picture is too plain (almost one colour or very blurry) to be "
                        "recognised reliably, so it was not sent; if it matters, try the "
                        "original, uncropped photo"
                    ),
                )
            media.append(_pdq_object(fp.value))
        elif isinstance(fp.value, list):
            if not fp.fit:
                return FileReport(
                    path,
                    kind,
                    LOW_QUALITY,
                    message=(
                        "every frame of this video is too plain (dark or one colour) to be "
                        "recognised reliably, so it was not sent"
                    ),
                )
            media.extend(_vpdq_objects(fp.value, limits.max_frames))
    hashes = (*media, *digests)
    algorithms = tuple(dict.fromkeys(h["algorithm"] for h in hashes))
    return FileReport(path, kind, READY, algorithms, hashes=hashes)


def hash_paths(
    paths: Sequence[str],
    *,
    progress: Progress | None = None,
    hidden: bool = False,
    seconds_per_hash: float = DEFAULT_SECONDS_PER_HASH,
    limits: SubmitLimits = DEFAULT_LIMITS,
) -> HashReport:
    """Fingerprint every file under ``paths`` on this computer; nothing is sent.

    ``progress(done, total)`` is called after each file. Errors are per file, never raised."""
    walk = collect(list(paths), hidden=hidden)
    options = Options(seconds_per_hash=seconds_per_hash, hidden=hidden)
    reports = [FileReport(e.path, "unknown", ERROR, message=e.message) for e in walk.errors]
    total = len(walk.files)
    for done, path in enumerate(walk.files, 1):
        prints, problem = hash_file(path, options)
        reports.append(_report(path, prints, problem.message if problem else None, limits))
        if progress is not None:
            progress(done, total)
    return HashReport(tuple(reports), walk.skipped_hidden)


def plan_submission(report: HashReport) -> SubmissionPlan:
    """The distinct hash objects of every ready file, in file order (copies of one photo, or
    the same file named twice, would otherwise be refused by the hub as duplicates)."""
    seen: set[str] = set()
    hashes: list[HubHash] = []
    for f in report.files:
        if f.state != READY:
            continue
        for h in f.hashes:
            key = canonical_hash_key(h)
            if key not in seen:
                seen.add(key)
                hashes.append(h)
    return SubmissionPlan(tuple(hashes), report.files)


def encode_body(hashes: Sequence[HubHash]) -> bytes:
    """The submission body bytes (specs/submission.md 3), compact JSON, ASCII."""
    return json.dumps({"v": 1, "hashes": list(hashes)}, separators=(",", ":")).encode("ascii")


def split_bodies(hashes: Sequence[HubHash], limits: SubmitLimits = DEFAULT_LIMITS) -> list[bytes]:
    """Submission bodies each within ``max_hashes`` items and ``max_body`` bytes."""
    bodies: list[bytes] = []
    chunk: list[HubHash] = []
    size = len(encode_body([]))
    for h in hashes:
        item = len(json.dumps(h, separators=(",", ":"))) + 1
        if chunk and (len(chunk) >= limits.max_hashes or size + item > limits.max_body):
            bodies.append(encode_body(chunk))
            chunk, size = [], len(encode_body([]))
        chunk.append(h)
        size += item
    if chunk:
        bodies.append(encode_body(chunk))
    return bodies


def seal_plan(
    secret: CaseSecret,
    plan: SubmissionPlan,
    now: int,
    *,
    limits: SubmitLimits = DEFAULT_LIMITS,
    nonce: Callable[[], bytes] | None = None,
) -> list[bytes]:
    """Sign every body of the plan as a ``submission`` envelope at time ``now``.

    ``nonce`` draws each 16-byte nonce (default os.urandom; pass a fixed source for vectors)."""
    draw = nonce or (lambda: os.urandom(envelope.NONCE_SIZE))
    key = secret.signing_key()
    return [
        envelope.seal(key, envelope.Purpose.SUBMISSION, body, now, draw())
        for body in split_bodies(plan.hashes, limits)
    ]
