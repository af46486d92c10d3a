"""Split-view detection: prove a fork from checkpoints gathered at several vantage points.

Sources are files or URLs of checkpoint notes (a partner's stored checkpoint, a witness's
``/checkpoint/<origin>``, a monitor's history). Each is verified against the log's key; then
(specs/audit.md §4):

* two verified checkpoints with one size and two roots are a fork by themselves;
* two of different sizes are checked with a consistency proof computed from the log's tiles
  (``--log``), authenticated against the larger one (:mod:`auditor.proofs`); a proof that leads
  to a different root at the smaller size is a fork, published with the proof.

Pairs that cannot be checked directly (the log no longer serves the larger tree's tiles) are
settled by transitivity when both are proven prefixes of a common larger checkpoint.
"""

from __future__ import annotations

import base64
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import httpx

from auditor.errors import EXIT_ALERT, EXIT_INCOMPLETE, EXIT_OK, FetchError
from auditor.monitor import note_json
from auditor.proofs import check_consistency
from auditor.source import MAX_CHECKPOINT_BYTES, LogSource, fetch_url
from auditor.trust import LogTrust, VerifiedCheckpoint
from crypto.errors import InconsistentTreeError, MalformedError, VerificationError

__all__ = ["CompareReport", "MemoSource", "compare_checkpoints", "read_checkpoint_source"]

EVIDENCE_VERSION: Final = 1


def read_checkpoint_source(spec: str, client: httpx.Client | None = None) -> bytes:
    """The note bytes named by ``spec``: an http(s) URL or a local file (at most 1 MiB)."""
    if spec.startswith(("http://", "https://")):
        own = client or httpx.Client(timeout=30.0)
        try:
            return fetch_url(own, spec, MAX_CHECKPOINT_BYTES)
        finally:
            if client is None:
                own.close()
    try:
        with open(spec, "rb") as f:
            data = f.read(MAX_CHECKPOINT_BYTES + 1)
    except OSError as exc:
        raise FetchError(f"{spec}: {exc.strerror}") from exc
    if len(data) > MAX_CHECKPOINT_BYTES:
        raise FetchError(f"{spec}: larger than {MAX_CHECKPOINT_BYTES} bytes")
    return data


class MemoSource:
    """Remembers tiles within one comparison, so each pair does not refetch them."""

    def __init__(self, inner: LogSource) -> None:
        self.inner = inner
        self.name = inner.name
        self._memo: dict[str, bytes] = {}

    def get(self, path: str) -> bytes:
        if path == "checkpoint":
            return self.inner.get(path)
        if path not in self._memo:
            self._memo[path] = self.inner.get(path)
        return self._memo[path]


@dataclass(frozen=True)
class Seen:
    """One verified checkpoint and where it came from."""

    source: str
    checkpoint: VerifiedCheckpoint

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "size": self.checkpoint.size,
            "root": base64.b64encode(self.checkpoint.root).decode(),
            "note": note_json(self.checkpoint.note),
        }


@dataclass
class CompareReport:
    """Everything compare found; ``to_json`` is the evidence to publish (specs/audit.md §4)."""

    trust: LogTrust
    seen: list[Seen] = field(default_factory=list)
    rejected: list[dict[str, str]] = field(default_factory=list)
    forks: list[dict[str, Any]] = field(default_factory=list)
    undetermined: list[dict[str, str]] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        if self.forks:
            return "fork"
        return "incomplete" if self.undetermined or self.rejected else "consistent"

    @property
    def exit_code(self) -> int:
        return {"fork": EXIT_ALERT, "incomplete": EXIT_INCOMPLETE}.get(self.verdict, EXIT_OK)

    def to_json(self) -> dict[str, Any]:
        key = self.trust.log_key
        return {
            "version": EVIDENCE_VERSION,
            "verdict": self.verdict,
            "origin": self.trust.origin,
            "log_key": key.encode() if key is not None else None,
            "witness_keys": [w.encode() for w in self.trust.witnesses],
            "checkpoints": [
                {k: v for k, v in s.to_json().items() if k != "note"} for s in self.seen
            ],
            "forks": self.forks,
            "undetermined": self.undetermined,
            "rejected": self.rejected,
        }


def compare_checkpoints(
    trust: LogTrust,
    notes: Sequence[tuple[str, bytes]],
    log: LogSource | None = None,
) -> CompareReport:
    """Verify every (source name, note bytes) and look for a fork among them.

    With ``log``, its current checkpoint joins the comparison and its tiles provide the
    consistency proofs. FetchError from ``log`` propagates.
    """
    report = CompareReport(trust)
    gathered = list(notes)
    memo = MemoSource(log) if log is not None else None
    if memo is not None:
        gathered.append((f"{memo.name}/checkpoint", memo.get("checkpoint")))
    for name, note in gathered:
        try:
            report.seen.append(Seen(name, trust.open(note)))
        except (MalformedError, VerificationError) as exc:
            report.rejected.append({"source": name, "error": str(exc)})

    distinct: dict[tuple[int, bytes], Seen] = {}
    for s in report.seen:
        distinct.setdefault((s.checkpoint.size, s.checkpoint.root), s)
    ordered = sorted(distinct.values(), key=lambda s: s.checkpoint.size)

    for a, b in itertools.combinations(ordered, 2):
        if a.checkpoint.size == b.checkpoint.size:
            report.forks.append(
                {
                    "kind": "same_size",
                    "size": a.checkpoint.size,
                    "first": a.to_json(),
                    "second": b.to_json(),
                }
            )

    consistent: set[tuple[int, int]] = set()
    unknown: list[tuple[int, int]] = []
    for j, big in enumerate(ordered):
        smaller = [i for i in range(j) if ordered[i].checkpoint.size < big.checkpoint.size]
        if not smaller:
            continue
        if memo is None:
            unknown.extend((i, j) for i in smaller)
            continue
        for i in smaller:
            try:
                result = check_consistency(ordered[i].checkpoint, big.checkpoint, memo)
            except (InconsistentTreeError, FetchError):
                # The log does not serve this tree's tiles (any more): no proof from it.
                unknown.extend((k, j) for k in smaller if (k, j) not in consistent)
                break
            if result.consistent:
                consistent.add((i, j))
            else:
                report.forks.append(
                    {
                        "kind": "inconsistent",
                        "first": ordered[i].to_json(),
                        "second": big.to_json(),
                        "consistency_proof": result.evidence(),
                    }
                )
    for i, j in unknown:
        if (i, j) in consistent:
            continue
        common = any((i, k) in consistent and (j, k) in consistent for k in range(len(ordered)))
        if common:
            consistent.add((i, j))
        else:
            report.undetermined.append({"first": ordered[i].source, "second": ordered[j].source})
    return report


def load_notes(specs: Sequence[str]) -> list[tuple[str, bytes]]:
    """Read every source (files, URLs); FetchError names the first that cannot be read."""
    with httpx.Client(timeout=30.0) as client:
        return [(spec, read_checkpoint_source(spec, client)) for spec in specs]
