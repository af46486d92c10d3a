"""Strict decoding of decrypted feed batches (specs/feed.md section 3) and entry bodies.

Why strict: a batch decides what a platform blocks. Decoding never guesses: any length,
tag, kind or field that is not exactly the documented form is MalformedBatchError, raised
before anything is applied. Entry bodies follow specs/submission.md section 4.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import json
import re
import struct
from binascii import unhexlify
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from crypto.commitment import (
    COMMITMENT_DOMAIN,
    LEAF_DATA_SIZE,
    LEAF_VERSION,
    SALT_SIZE,
    LeafData,
    LeafKind,
)
from crypto.errors import MalformedError
from crypto.merkle import range_nodes, root_from_leaf_hashes
from partner_sdk.errors import MalformedBatchError, RedactionError

__all__ = [
    "Addition",
    "ApplyCounts",
    "BatchPlan",
    "EntryRecord",
    "Frame",
    "Prepared",
    "Record",
    "RedactedRecord",
    "Tombstone",
    "check_header",
    "decode_batch",
    "decode_record",
    "parse_entry_body",
    "plan_batch",
    "prepare_batch",
]

MAGIC = b"NCFP"
VERSION = 1
HEADER = struct.Struct(">4sBQQI")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_HEX = {64: re.compile(r"[0-9a-f]{64}"), 32: re.compile(r"[0-9a-f]{32}")}
_HASH_SIZE = {"pdq": 64, "md5": 32, "sha256": 64}
_KINDS = {1: LeafKind.ADDITION, 2: LeafKind.TOMBSTONE}


# Frame, Addition and Tombstone are named tuples, not dataclasses: a sync makes one per log
# entry, and a tuple is made in half the time of a frozen dataclass (immutable all the same).
class Frame(NamedTuple):
    frame: int
    quality: int
    hash: bytes
    timestamp: float


class Addition(NamedTuple):
    """A hash to block: algorithm, raw hash bytes (None for vPDQ), PDQ quality, vPDQ frames."""

    algorithm: str
    hash: bytes | None
    quality: int | None
    frames: tuple[Frame, ...] = ()


class Tombstone(NamedTuple):
    """Withdraws the addition at log index ``withdraws``."""

    withdraws: int


@dataclass(frozen=True, slots=True)
class EntryRecord:
    kind: LeafKind
    salt: bytes
    body: bytes


@dataclass(frozen=True, slots=True)
class RedactedRecord:
    leaf_data: bytes
    tombstone_index: int


def decode_batch(data: bytes, start: int, end: int) -> list[EntryRecord | RedactedRecord]:
    """Records for [start, end), exactly one per index; anything else raises."""
    count = check_header(data, start, end)
    out: list[EntryRecord | RedactedRecord] = []
    pos = HEADER.size
    size = len(data)
    for _ in range(count):
        record, pos = decode_record(data, pos)
        out.append(record)
    if pos != size:
        raise MalformedBatchError("batch plaintext has bytes after its last record")
    return out


def check_header(data: bytes, start: int, end: int) -> int:
    """Check the plaintext header against the batch's range; returns the record count."""
    if len(data) < HEADER.size:
        raise MalformedBatchError("batch plaintext is shorter than its header")
    magic, version, p_start, p_end, count = HEADER.unpack_from(data)
    if magic != MAGIC or version != VERSION:
        raise MalformedBatchError("batch plaintext has an unknown magic or version")
    if p_start != start or p_end != end or count != end - start:
        raise MalformedBatchError("batch plaintext header does not match the batch's range")
    return int(count)


def decode_record(data: bytes, pos: int) -> tuple[EntryRecord | RedactedRecord, int]:
    """The record at ``pos`` and the position after it (strict, as :func:`decode_batch`)."""
    size = len(data)
    if pos >= size:
        raise MalformedBatchError("batch plaintext ends before its last record")
    tag = data[pos]
    if tag == 1:
        if pos + 2 + SALT_SIZE + 4 > size:
            raise MalformedBatchError("batch entry record is truncated")
        kind = data[pos + 1]
        if kind not in (1, 2):
            raise MalformedBatchError("batch entry record has an unknown kind")
        salt = data[pos + 2 : pos + 34]
        (length,) = _U32.unpack_from(data, pos + 34)
        pos += 38
        if pos + length > size:
            raise MalformedBatchError("batch entry body runs past the end")
        return EntryRecord(_KINDS[kind], salt, data[pos : pos + length]), pos + length
    if tag == 2:
        if pos + 1 + LEAF_DATA_SIZE + 8 > size:
            raise MalformedBatchError("batch redaction record is truncated")
        leaf = data[pos + 1 : pos + 1 + LEAF_DATA_SIZE]
        (tomb,) = _U64.unpack_from(data, pos + 1 + LEAF_DATA_SIZE)
        try:
            parsed = LeafData.decode(leaf)
        except MalformedError as exc:
            raise MalformedBatchError(f"redacted leaf data is malformed: {exc}") from None
        if parsed.kind != LeafKind.ADDITION:
            raise MalformedBatchError("only additions can be redacted")
        return RedactedRecord(leaf, tomb), pos + 1 + LEAF_DATA_SIZE + 8
    raise MalformedBatchError(f"batch record has an unknown tag {tag}")


# One regex call frames and parses the common record: an entry record (tag 1, kind 1) whose
# body is the canonical bytes of a fixed-size hash (as _FAST_HASH below). The caller checks the
# length field equals the matched body's length, so the body is exactly the framed bytes and
# the result is what decode_record + parse_entry_body give; anything else takes that path.
FAST_ADDITION_RECORD = re.compile(
    rb'\x01\x01(.{32})(.{4})(\{"hash":\{"algorithm":"(pdq|md5|sha256)",'
    rb'"hash":"([0-9a-f]{64}|[0-9a-f]{32})"(?:,"quality":(100|[1-9]?[0-9]))?\},'
    rb'"kind":"addition","v":1\})',
    re.DOTALL,
)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise MalformedBatchError("entry body has a duplicate key")
    return out


def _int(value: object, low: int, high: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise MalformedBatchError(f"entry body field {what} is not an integer in range")
    return value


def _hex(value: object, size: int, what: str) -> bytes:
    if not isinstance(value, str) or _HEX[size].fullmatch(value) is None:
        raise MalformedBatchError(f"entry body field {what} is not {size} lowercase hex")
    return bytes.fromhex(value)


def _addition(h: object) -> Addition:
    if not isinstance(h, dict):
        raise MalformedBatchError("entry body hash is not an object")
    algorithm = h.get("algorithm")
    if algorithm in _HASH_SIZE:
        fields = {"algorithm", "hash", "quality"} if algorithm == "pdq" else {"algorithm", "hash"}
        if set(h) != fields:
            raise MalformedBatchError("entry body hash has missing or unknown fields")
        quality = _int(h["quality"], 0, 100, "quality") if algorithm == "pdq" else None
        return Addition(
            str(algorithm), _hex(h["hash"], _HASH_SIZE[str(algorithm)], "hash"), quality
        )
    if algorithm == "vpdq":
        frames = h.get("frames")
        if set(h) != {"algorithm", "frames"} or not isinstance(frames, list) or not frames:
            raise MalformedBatchError("vPDQ entry needs a non-empty frames list")
        out: list[Frame] = []
        last = -1
        for f in frames:
            if not isinstance(f, dict) or set(f) != {"frame", "quality", "hash", "timestamp"}:
                raise MalformedBatchError("vPDQ frame has missing or unknown fields")
            number = _int(f["frame"], 0, 2**31 - 1, "frame")
            if number <= last:
                raise MalformedBatchError("vPDQ frame numbers must increase")
            last = number
            ts = f["timestamp"]
            if not isinstance(ts, float) or not 0.0 <= ts <= 1e7:
                raise MalformedBatchError("vPDQ frame timestamp is not a number in range")
            out.append(
                Frame(
                    number, _int(f["quality"], 0, 100, "quality"), _hex(f["hash"], 64, "hash"), ts
                )
            )
        return Addition("vpdq", None, None, tuple(out))
    raise MalformedBatchError("entry body names an unknown algorithm")


# Fast paths: the exact canonical bytes the hub writes (specs/submission.md section 4) for the
# fixed-size algorithms and tombstones. A full match leaves no room for another reading, so
# these are equivalent to the JSON path below, which handles everything else (and refuses).
_FAST_HASH = re.compile(
    rb'\{"hash":\{"algorithm":"(pdq|md5|sha256)","hash":"([0-9a-f]{32}|[0-9a-f]{64})"'
    rb'(?:,"quality":(100|[1-9]?[0-9]))?\},"kind":"addition","v":1\}'
)
_FAST_TOMBSTONE = re.compile(rb'\{"kind":"tombstone","v":1,"withdraws":(0|[1-9][0-9]{0,18})\}')
_DECODER = json.JSONDecoder(object_pairs_hook=_no_duplicates)


_FAST_ALGORITHM = {b"pdq": "pdq", b"md5": "md5", b"sha256": "sha256"}


def _fast(kind: LeafKind, body: bytes) -> Addition | Tombstone | None:
    if kind == LeafKind.ADDITION:
        m = _FAST_HASH.fullmatch(body)
        if m is None:
            return None
        raw_algorithm, digest, raw_quality = m.groups()
        algorithm = _FAST_ALGORITHM[raw_algorithm]
        if len(digest) != _HASH_SIZE[algorithm] or (raw_quality is None) == (algorithm == "pdq"):
            return None  # let the strict path name the problem
        quality = None if raw_quality is None else int(raw_quality)
        return Addition(algorithm, unhexlify(digest), quality)
    m = _FAST_TOMBSTONE.fullmatch(body)
    if m is None or int(m.group(1)) > 2**63 - 1:
        return None
    return Tombstone(int(m.group(1)))


def parse_entry_body(kind: LeafKind, body: bytes) -> Addition | Tombstone:
    """The meaning of one committed entry body of the given leaf kind."""
    fast = _fast(kind, body)
    if fast is not None:
        return fast
    try:
        value = _DECODER.decode(body.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise MalformedBatchError("entry body is not ASCII JSON") from None
    if not isinstance(value, dict) or value.get("v") != 1 or isinstance(value.get("v"), bool):
        raise MalformedBatchError("entry body is not a v1 object")
    if kind == LeafKind.ADDITION:
        if set(value) != {"hash", "kind", "v"} or value["kind"] != "addition":
            raise MalformedBatchError("addition entry body has wrong fields or kind")
        return _addition(value["hash"])
    if set(value) != {"kind", "v", "withdraws"} or value["kind"] != "tombstone":
        raise MalformedBatchError("tombstone entry body has wrong fields or kind")
    return Tombstone(_int(value["withdraws"], 0, 2**63 - 1, "withdraws"))


Record = tuple[int, Addition | Tombstone | int]
"""(log index, parsed entry) or (log index, tombstone index) for a redacted addition."""

_LEAF_PREFIX = {kind: b"\x00" + bytes((LEAF_VERSION, int(kind))) for kind in LeafKind}
"""RFC 9162 leaf prefix 0x00, then the leaf data's version and kind (specs/commitment.md)."""
_ALGORITHM = {b"pdq": "pdq", b"md5": "md5", b"sha256": "sha256"}


try:  # the C function hmac.digest calls, without its Python frame (once per log entry)
    from _hashlib import hmac_digest as _hmac_digest
except ImportError:  # a Python built without OpenSSL: the stdlib's own path
    _hmac_digest = hmac.digest  # type: ignore[assignment]
_HEX_SIZE = {b"pdq": 64, b"md5": 32, b"sha256": 64}


class PackedAdditions(NamedTuple):
    """Live PDQ, MD5 and SHA-256 additions at consecutive log indexes from ``start``, packed
    so that the store inserts them with one statement (:meth:`partner_sdk.store.Store.apply_batch`).

    ``codes`` is a JSON array with one integer per entry: the PDQ quality (0-100), or
    ``CODE_MD5`` or ``CODE_SHA256``. ``hashes`` holds 32 bytes per entry: the raw hash, an
    MD5 followed by 16 zero bytes.
    """

    start: int
    codes: bytes
    hashes: bytes


CODE_MD5 = 101
CODE_SHA256 = 102
_CODE_OF = {"md5": CODE_MD5, "sha256": CODE_SHA256}
_SLOT = 32
_MD5_PAD_HEX = b"0" * 32


@dataclass
class ApplyCounts:
    additions: int = 0
    tombstones: int = 0
    redactions: int = 0
    withdrawn: int = 0


@dataclass
class BatchPlan:
    """What applying some verified records writes (:func:`plan_batch`); the store checks
    ``withdraws`` and ``pending`` against what it holds inside the batch's transaction."""

    additions: list[tuple[int, str, bytes | None, int | None]]  # live: index, algorithm, ...
    rows: list[tuple[object, ...]]  # every other entries row (all nine columns)
    frames: list[tuple[object, ...]]  # vpdq_frames rows
    pending: dict[int, int]  # redactions of this batch: index -> tombstone
    withdraws: list[tuple[int, int]]  # (target, tombstone) for targets before the batch
    counts: ApplyCounts = field(default_factory=ApplyCounts)
    packed: list[PackedAdditions] = field(default_factory=list)  # more live additions


class _Planner:
    """Builds a :class:`BatchPlan` record by record, in log order (see :func:`plan_batch`)."""

    def __init__(self, checkpoint_size: int) -> None:
        self.size = checkpoint_size
        self.counts = ApplyCounts()
        self.additions: list[tuple[int, str, bytes | None, int | None] | None] = []
        self.rows: list[tuple[object, ...]] = []
        self.frames: list[tuple[object, ...]] = []
        self.in_batch: dict[int, int] = {}  # index -> position in additions (live ones)
        self.pending: dict[int, int] = {}  # redactions of this batch: index -> tombstone
        self.withdraws: list[tuple[int, int]] = []
        self.packed: list[PackedAdditions] = []

    def record(self, index: int, item: Addition | Tombstone | int) -> None:
        counts = self.counts
        if isinstance(item, Addition):
            self.in_batch[index] = len(self.additions)
            self.additions.append((index, item.algorithm, item.hash, item.quality))
            if item.frames:
                self.frames.extend(
                    (index, f.frame, f.quality, f.hash, f.timestamp) for f in item.frames
                )
            counts.additions += 1
        elif isinstance(item, Tombstone):
            target = item.withdraws
            if target >= index:
                raise RedactionError("a tombstone withdraws a later entry")
            counts.tombstones += 1
            self.rows.append((index, 2, None, None, None, 0, None, target, 0))
            if target in self.in_batch:
                pos = self.in_batch.pop(target)
                live = self.additions[pos]
                assert live is not None
                self.additions[pos] = None
                self.rows.append((target, 1, live[1], None, None, 1, index, None, 0))
                self.frames = [f for f in self.frames if f[0] != target]
                counts.withdrawn += 1
            elif target in self.pending:
                if self.pending.pop(target) != index:
                    raise RedactionError("a redaction names another tombstone")
            else:
                self.withdraws.append((target, index))
        else:
            if not index < item < self.size:
                raise RedactionError("a redaction names no tombstone in the verified log")
            self.rows.append((index, 1, None, None, None, 1, item, None, 1))
            self.pending[index] = item
            counts.redactions += 1

    def plan(self) -> BatchPlan:
        kept = [a for a in self.additions if a is not None]
        return BatchPlan(
            kept, self.rows, self.frames, self.pending, self.withdraws, self.counts, self.packed
        )


def pack_additions(plan: BatchPlan) -> None:
    """Move the runs of ``plan.additions`` that :class:`PackedAdditions` can hold (PDQ with a
    quality, MD5, SHA-256 at consecutive indexes) into ``plan.packed``; vPDQ rows stay.

    Why: the syncing process then inserts a run with one statement, in SQLite's C code,
    instead of receiving a tuple per entry and binding its four values (about a second of the
    sync's serial part per million entries). The batch fast path packs its additions itself.
    """
    if not plan.additions:
        return
    kept: list[tuple[int, str, bytes | None, int | None]] = []
    run: list[tuple[int, str, bytes | None, int | None]] = []

    def flush() -> None:
        if run:
            codes = b"[" + b",".join(b"%d" % _code(r) for r in run) + b"]"
            hashes = b"".join(r[2].ljust(_SLOT, b"\x00") for r in run if r[2] is not None)
            plan.packed.append(PackedAdditions(run[0][0], codes, hashes))
            run.clear()

    for row in plan.additions:
        index, algorithm, digest, quality = row
        if not _packable(algorithm, digest, quality):
            kept.append(row)
            continue
        if run and run[-1][0] + 1 != index:
            flush()
        run.append(row)
    flush()
    plan.additions = kept


def _packable(algorithm: str, digest: bytes | None, quality: int | None) -> bool:
    if algorithm == "pdq":
        return digest is not None and len(digest) == 32 and quality is not None
    return (
        algorithm in _CODE_OF and digest is not None and len(digest) == _HASH_SIZE[algorithm] // 2
    )


def _code(row: tuple[int, str, bytes | None, int | None]) -> int:
    quality = row[3]
    return quality if row[1] == "pdq" and quality is not None else _CODE_OF[row[1]]


def unpack_additions(plan: BatchPlan) -> list[tuple[int, str, bytes | None, int | None]]:
    """Every live addition of ``plan``, packed (:func:`pack_additions`) or not, in log order."""
    out = list(plan.additions)
    for run in plan.packed:
        codes = json.loads(run.codes)
        if not isinstance(codes, list) or len(run.hashes) != _SLOT * len(codes):
            raise ValueError("packed additions: codes and hashes disagree")
        for i, code in enumerate(codes):
            slot = run.hashes[_SLOT * i : _SLOT * (i + 1)]
            if code == CODE_MD5:
                out.append((run.start + i, "md5", slot[:16], None))
            elif code == CODE_SHA256:
                out.append((run.start + i, "sha256", slot, None))
            elif isinstance(code, int) and 0 <= code <= 100:
                out.append((run.start + i, "pdq", slot, code))
            else:
                raise ValueError("packed additions: unknown code")
    out.sort(key=lambda row: row[0])
    return out


def plan_batch(records: Sequence[Record], checkpoint_size: int) -> BatchPlan:
    """The store rows of verified records; withdrawals inside the batch are resolved here.

    Pure (no store access), so it can run beside the store's writes in a worker process.
    Live additions, nearly every row of a large sync, are short tuples (index, algorithm,
    hash, quality): fewer values to pass between processes and to bind per insert.
    """
    planner = _Planner(checkpoint_size)
    for index, item in records:
        planner.record(index, item)
    return planner.plan()


# The whole-batch fast path (:func:`_fast_batch`): one regex call frames and parses every record
# of a batch of canonical PDQ, MD5 and SHA-256 additions. One alternative per algorithm, so a
# match has exactly that algorithm's hash length and, for PDQ alone, its quality.
FAST_BATCH_RECORD = re.compile(
    rb'\x01\x01(.{32})(.{4})(\{"hash":\{"algorithm":"(?:pdq","hash":"([0-9a-f]{64})",'
    rb'"quality":(100|[1-9]?[0-9])|md5","hash":"([0-9a-f]{32})"|sha256","hash":"([0-9a-f]{64})")'
    rb'\},"kind":"addition","v":1\})',
    re.DOTALL,
)
_RECORD_FRAME = 2 + SALT_SIZE + 4  # tag, kind, salt, body length


def _fast_batch(
    plaintext: bytes, start: int, count: int, apply_from: int, planner: _Planner
) -> list[bytes] | None:
    """Leaf hashes of a batch whose records are all canonical fixed-size additions, with its
    live additions packed into ``planner``; None (nothing done) for any other batch.

    Why this is the strict decoding: ``findall`` returns non-overlapping matches in order
    from the first record's position; if there are exactly ``count`` of them, their lengths
    add up to the rest of the plaintext and each one's length field is its body's length,
    then they tile the records exactly as :func:`decode_record` frames them, and each body is
    the one canonical text :func:`parse_entry_body` reads. Anything else: the general path.
    """
    records = FAST_BATCH_RECORD.findall(plaintext, HEADER.size)
    if len(records) != count or count == 0:
        return None
    lengths = [len(r[2]) for r in records]
    if _RECORD_FRAME * count + sum(lengths) != len(plaintext) - HEADER.size:
        return None
    if b"".join([r[1] for r in records]) != struct.pack(f">{count}I", *lengths):
        return None
    sha, mac, domain = hashlib.sha256, _hmac_digest, COMMITMENT_DOMAIN
    prefix = _LEAF_PREFIX[LeafKind.ADDITION]
    # The leaf: SHA-256(prefix || HMAC-SHA256(salt, domain || body)) (specs/commitment.md).
    leaves = [sha(prefix + mac(r[0], domain + r[2], "sha256")).digest() for r in records]
    live = records[max(0, apply_from - start) :]
    if live:
        pad = _MD5_PAD_HEX
        codes = b"[" + b",".join([q or (b"101" if m else b"102") for _, _, _, _, q, m, _ in live])
        hexes = b"".join([p or x or m + pad for _, _, _, p, _, m, x in live])
        run = PackedAdditions(max(start, apply_from), codes + b"]", unhexlify(hexes))
        planner.packed.append(run)
        planner.counts.additions += len(live)
    return leaves


def _leaves_and_plan(
    plaintext: bytes, start: int, end: int, planner: _Planner, apply_from: int
) -> list[bytes]:
    """Decode a batch, recompute every leaf hash, and plan the records from ``apply_from``.

    Why one pass: this loop runs once per log entry of a sync. The common record (a PDQ,
    MD5 or SHA-256 addition in canonical form) is framed and parsed by one regex call
    (``FAST_ADDITION_RECORD``) and goes straight into the plan as the row it becomes; every
    other record takes the strict general path (``decode_record``, ``parse_entry_body``,
    ``_Planner.record``), so both give the same result.
    """
    count = check_header(plaintext, start, end)
    fast_leaves = _fast_batch(plaintext, start, count, apply_from, planner)
    if fast_leaves is not None:
        return fast_leaves
    leaf_hashes: list[bytes] = []
    pos = HEADER.size
    sha, mac, unhex = hashlib.sha256, _hmac_digest, binascii.unhexlify
    fast, domain = FAST_ADDITION_RECORD.match, COMMITMENT_DOMAIN
    add_prefix = _LEAF_PREFIX[LeafKind.ADDITION]
    leaf_append = leaf_hashes.append
    additions, in_batch = planner.additions, planner.in_batch
    add = additions.append
    fast_count = 0
    for index in range(start, start + count):
        m = fast(plaintext, pos)
        if m is not None:
            salt, raw_length, body, algorithm, digest, quality = m.groups()
            if (
                int.from_bytes(raw_length, "big") == len(body)
                and len(digest) == _HEX_SIZE[algorithm]
                and (quality is None) != (algorithm == b"pdq")
            ):
                leaf_append(sha(add_prefix + mac(salt, domain + body, "sha256")).digest())
                if index >= apply_from:
                    in_batch[index] = len(additions)
                    add(
                        (
                            index,
                            _ALGORITHM[algorithm],
                            unhex(digest),
                            None if quality is None else int(quality),
                        )
                    )
                    fast_count += 1
                pos = m.end()
                continue
        rec, pos = decode_record(plaintext, pos)
        item: Addition | Tombstone | int
        if isinstance(rec, EntryRecord):
            commitment = mac(rec.salt, domain + rec.body, "sha256")
            leaf_append(sha(_LEAF_PREFIX[rec.kind] + commitment).digest())
            item = parse_entry_body(rec.kind, rec.body)
        else:
            leaf_append(sha(b"\x00" + rec.leaf_data).digest())
            item = rec.tombstone_index
        if index >= apply_from:
            planner.record(index, item)
    if pos != len(plaintext):
        raise MalformedBatchError("batch plaintext has bytes after its last record")
    planner.counts.additions += fast_count
    return leaf_hashes


class Prepared(NamedTuple):
    """A decrypted batch's own Merkle roots (one per node of ``range_nodes``) and its plan."""

    roots: list[bytes]
    plan: BatchPlan


def prepare_batch(
    plaintext: bytes, start: int, end: int, apply_from: int, checkpoint_size: int
) -> Prepared:
    """All per-entry work of a batch, in one call that a worker process can run.

    Decodes and parses every record, recomputes every leaf and the root of each perfect
    subtree covering [start, end), and plans the store rows of the records from
    ``apply_from`` on. The caller compares the roots with the log's verified tiles before it
    applies anything: this function only computes.
    """
    planner = _Planner(checkpoint_size)
    leaf_hashes = _leaves_and_plan(plaintext, start, end, planner, apply_from)
    roots: list[bytes] = []
    offset = 0
    for node in range_nodes(start, end):
        width = 1 << node.level
        roots.append(root_from_leaf_hashes(leaf_hashes[offset : offset + width]))
        offset += width
    return Prepared(roots, planner.plan())
