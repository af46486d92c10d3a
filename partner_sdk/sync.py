"""Verified feed sync: checkpoint, consistency, batches, leaves, store (specs/partner-store.md).

Why every step verifies: the hub is not trusted. The checkpoint must be signed by the pinned
log key and consistent with the last trusted one; each batch must decrypt for this partner
and exactly its range, and its entries must recompute the log's leaves for that range,
proven through tiles against the verified root; batches must be contiguous from the cursor.
Only then is the batch applied, with cursor and checkpoint, in one store transaction.
"""

from __future__ import annotations

import os
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from crypto.checkpoint import Checkpoint, open_checkpoint
from crypto.errors import CryptoError, DecryptionError
from crypto.feed import DEFAULT_MAX_BATCH, BatchBinding, open_wrapped_batch
from crypto.keys import VerifierKey, parse_verifier_key
from crypto.merkle import consistency_proof, range_nodes, verify_consistency
from crypto.tiles import TileHashReader
from partner_sdk.batch import Prepared, prepare_batch
from partner_sdk.errors import (
    BatchDecryptionError,
    CheckpointForkError,
    CheckpointSignatureError,
    FeedLagError,
    HubAnswerTooLargeError,
    HubProtocolError,
    HubRefusedError,
    LeafMismatchError,
    MissingRangeError,
    StoreError,
    UsageError,
    WitnessQuorumError,
)
from partner_sdk.hubclient import BatchRef, HubClient
from partner_sdk.keys import PartnerKeys, load_keys
from partner_sdk.store import Store, TrustedCheckpoint
from partner_sdk.syncworker import WorkerPool
from partner_sdk.witnesses import WitnessPolicy, check_quorum, resolve_policy, save_policy

__all__ = ["DEFAULT_LAG_GRACE", "MAX_LAG_GRACE", "LagReport", "Partner", "SyncSummary"]

STORE_FILE = "store.sqlite3"
PAGE = 1000
QUORUM_POLL = 0.25
DEFAULT_LAG_GRACE = 600.0
MAX_LAG_GRACE = 7 * 86400.0


MAX_RELISTS = 8


class _Relist(Exception):
    """A listed batch was merged into a longer one while this sync read it: list again."""


@dataclass
class SyncSummary:
    """What one sync did (``--json`` prints this)."""

    origin: str
    checkpoint_size: int
    cursor: int
    behind: int  # verified log entries not yet sealed into a batch by the hub
    batches: int = 0
    entries: int = 0
    additions: int = 0
    tombstones: int = 0
    redactions: int = 0
    withdrawn: int = 0
    seconds: float = 0.0
    cosignatures: int = 0  # configured witnesses that cosigned the accepted checkpoint
    latest_size: int = 0  # the hub's newest checkpoint (larger if it lacked the quorum)
    lag: LagReport | None = None  # verified entries the hub has not delivered (None: none)
    sealed_size: int | None = None  # the hub's sealed feed end, as it says (None: not said)
    ready_in: float | None = None  # seconds until the undelivered entries are expected

    def to_json(self) -> dict[str, Any]:
        return {"v": 1, **asdict(self)}

    def log_fields(self) -> dict[str, int]:
        """The counts a JSON log record of this sync carries (sync and sync --follow)."""
        return {
            "entries": self.entries,
            "batches": self.batches,
            "additions": self.additions,
            "withdrawn": self.withdrawn,
            "cursor": self.cursor,
            "checkpoint_size": self.checkpoint_size,
        }


@dataclass(frozen=True)
class LagReport:
    """The feed's gap behind the verified checkpoint (specs/partner-store.md section 8)."""

    entries: int  # verified log entries not delivered (checkpoint size - cursor)
    since: int  # unix time of the first sync that saw the oldest of them missing
    seconds: int  # how long that gap has persisted
    grace: float  # --lag-grace
    exceeded: bool  # seconds > grace: FeedLagError

    def text(self) -> str:
        return (
            f"the hub has not delivered {self.entries} entries of the verified checkpoint; "
            f"this gap has persisted for {self.seconds} s (--lag-grace {self.grace:g} s)"
        )


PARALLEL_MIN_ENTRIES = 20_000
"""A sync of at least this many entries runs the per-entry work in worker processes."""
MAX_WORKERS = 4
AHEAD_BYTES = 64 << 20
"""Batches fetched, decrypted and prepared ahead of the one being applied: at most this many
listed bytes (always at least one batch), so a hub's large batches cannot fill the memory."""


def _worker_count() -> int:
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return 0 if cpus < 2 else min(MAX_WORKERS, cpus)


class Partner:
    """A partner's keys, store and hub: ``Partner(dir, hub_url, log_key).sync()``."""

    def __init__(
        self,
        directory: Path | str,
        hub_url: str | None = None,
        log_key: str | VerifierKey | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.time,
        progress: bool = False,
        max_batch_bytes: int = DEFAULT_MAX_BATCH,
        witnesses: Sequence[str | VerifierKey] | None = None,
        quorum: int | None = None,
        quorum_wait: float = 5.0,
        sleep: Callable[[float], None] = time.sleep,
        lag_grace: float = DEFAULT_LAG_GRACE,
    ) -> None:
        self.directory = Path(directory)
        if not 0 <= lag_grace <= MAX_LAG_GRACE:
            raise UsageError(f"--lag-grace must be from 0 to {MAX_LAG_GRACE:g} seconds")
        self.lag_grace = lag_grace
        self.keys: PartnerKeys = load_keys(self.directory)
        _private_directory(self.directory)
        # Witness policy (specs/partner-store.md 7): flags replace the stored one after a
        # successful sync; without flags the stored one applies.
        self.policy: WitnessPolicy | None = resolve_policy(self.directory, witnesses, quorum)
        self._policy_given = bool(witnesses) or quorum is not None
        self.quorum_wait = quorum_wait
        self.sleep = sleep
        self._latest_size = 0
        self._cosignatures = 0
        self.store = Store(self.directory / STORE_FILE)
        state = self.store.state()
        hub_url = hub_url or state.hub_url
        key_text = (
            log_key.encode() if isinstance(log_key, VerifierKey) else (log_key or state.log_key)
        )
        if hub_url is None or key_text is None:
            self.store.close()
            raise UsageError("give --hub URL and --log-key KEY (remembered after the first sync)")
        try:
            self.log_key = parse_verifier_key(key_text.strip())
        except CryptoError:
            self.store.close()
            raise UsageError(
                "--log-key is not a note verifier key (ncii-hub keys prints it)"
            ) from None
        if not hub_url.startswith(("http://", "https://")):
            self.store.close()
            raise UsageError("--hub must be an http:// or https:// URL")
        if state.log_key is not None and state.log_key != self.log_key.encode():
            self.store.close()
            raise UsageError("this store follows another log key; use a new --dir for another log")
        self.hub_url = hub_url
        self.origin = self.log_key.name
        self.clock = clock
        self.progress = progress
        self.max_batch_bytes = max_batch_bytes
        self.client = HubClient(hub_url, self.keys, transport=transport, clock=clock)

    def close(self) -> None:
        self.client.close()
        self.store.close()

    def __enter__(self) -> Partner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- checkpoint

    def _open_checkpoint(self, note: bytes) -> Checkpoint:
        try:
            return open_checkpoint(note, [self.log_key], origin=self.origin).checkpoint
        except CryptoError as exc:
            raise CheckpointSignatureError(
                f"the checkpoint does not verify under the pinned log key: {exc}"
            ) from exc

    def _witnessed(self, note: bytes, cp: Checkpoint) -> tuple[bytes, Checkpoint, int]:
        """A checkpoint that meets the witness quorum (specs/partner-store.md 7).

        The newest checkpoint if a quorum cosigned it; else the hub's newest fully cosigned
        one if it is newer than the trusted one; else poll for up to ``quorum_wait`` seconds
        (cosigning runs just after each checkpoint is published), then WitnessQuorumError.
        """
        policy = self.policy
        if policy is None or policy.quorum == 0:
            return note, cp, 0
        trusted = self.store.state().checkpoint
        deadline = time.monotonic() + self.quorum_wait
        while True:
            try:
                return note, cp, check_quorum(note, self.log_key, policy, self.origin)
            except WitnessQuorumError as exc:
                shortfall = exc
            fallback = self.client.cosigned_checkpoint()
            if fallback is not None:
                fcp = self._open_checkpoint(fallback)
                try:
                    count = check_quorum(fallback, self.log_key, policy, self.origin)
                except WitnessQuorumError:
                    pass
                else:
                    if trusted is None or fcp.size > trusted.size:
                        return fallback, fcp, count
            if time.monotonic() >= deadline:
                raise shortfall
            self.sleep(QUORUM_POLL)
            note = self.client.checkpoint()
            cp = self._open_checkpoint(note)

    def _verified_checkpoint(self) -> tuple[TrustedCheckpoint, TileHashReader]:
        note = self.client.checkpoint()
        cp = self._open_checkpoint(note)
        self._latest_size = cp.size
        note, cp, self._cosignatures = self._witnessed(note, cp)
        reader = TileHashReader(cp.size, cp.root_hash, self.client.tile)
        old = self.store.state().checkpoint
        if old is not None:
            if cp.size < old.size:
                raise CheckpointForkError("the hub serves a smaller tree than the one trusted")
            try:
                proof = consistency_proof(old.size, cp.size, reader) if old.size else []
                verify_consistency(old.size, cp.size, proof, old.root, cp.root_hash)
            except HubAnswerTooLargeError:
                raise
            except (CryptoError, HubProtocolError) as exc:
                raise CheckpointForkError(
                    f"the checkpoint is not consistent with the trusted one: {exc}"
                ) from exc
        return TrustedCheckpoint(note, cp.size, cp.root_hash), reader

    # -- one batch

    def _open(self, ref: BatchRef) -> bytes:
        binding = BatchBinding(self.origin, ref.start, ref.end)
        for _attempt in range(3):
            sealed = self.client.ciphertext(ref, self.max_batch_bytes)
            if sealed is not None:
                try:
                    return open_wrapped_batch(
                        sealed, ref.wrap, self.keys.feed_key, binding, self.max_batch_bytes
                    )
                except DecryptionError as exc:
                    raise BatchDecryptionError(
                        f"batch [{ref.start}, {ref.end}) does not decrypt for this partner"
                    ) from exc
                except CryptoError as exc:
                    raise BatchDecryptionError(
                        f"batch [{ref.start}, {ref.end}) is malformed: {exc}"
                    ) from exc
            # Re-sealed after a withdrawal while we listed: take the current version.
            try:
                fresh = self.client.wrap(ref.start)
            except HubRefusedError as exc:
                if exc.code == "unknown_batch":
                    raise _Relist from None  # merged into a longer batch meanwhile
                raise
            if (fresh.start, fresh.end) != (ref.start, ref.end):
                if fresh.start == ref.start and fresh.end > ref.end:
                    raise _Relist  # merged with the batches after it meanwhile
                raise MissingRangeError("a batch changed its range")
            ref = fresh
        raise HubProtocolError(f"batch [{ref.start}, {ref.end}) keeps disappearing")

    def _prepare(
        self, ref: BatchRef, apply_from: int, size: int, procs: WorkerPool | None
    ) -> Prepared:
        """Fetch, decrypt and prepare one batch (runs in a fetch thread; the per-entry work
        in a worker process if there are any). Nothing is trusted until :meth:`_check`."""
        plaintext = self._open(ref)
        if procs is not None:
            return procs.prepare(plaintext, ref.start, ref.end, apply_from, size)
        return prepare_batch(plaintext, ref.start, ref.end, apply_from, size)

    def _check(self, ref: BatchRef, roots: Sequence[bytes], reader: TileHashReader) -> None:
        """The batch's recomputed subtree roots against the log's, proven through tiles."""
        nodes = range_nodes(ref.start, ref.end)
        try:
            proven = reader.read_hashes(nodes)
        except HubAnswerTooLargeError:
            raise
        except (CryptoError, HubProtocolError) as exc:
            raise LeafMismatchError(
                f"the log's tiles for [{ref.start}, {ref.end}) do not verify: {exc}"
            ) from exc
        if len(roots) != len(nodes):
            raise LeafMismatchError(f"entries of [{ref.start}, {ref.end}) do not cover it")
        offset = 0
        for node, root, expected in zip(nodes, roots, proven, strict=True):
            width = 1 << node.level
            if root != expected:
                raise LeafMismatchError(
                    f"entries of [{ref.start}, {ref.end}) do not recompute the log's leaves "
                    f"(first mismatch within [{ref.start + offset}, {ref.start + offset + width}))"
                )
            offset += width

    # -- sync

    def sync(self) -> SyncSummary:
        """Bring the store up to the hub's latest verified checkpoint (fails closed).

        Withdrawn values are erased from the store's files before it returns, also when it
        fails after applying a batch. FeedLagError (with ``.summary``) if the feed has lagged
        the verified checkpoint for longer than ``lag_grace`` seconds.
        """
        self.store.erase()  # a previous sync interrupted before its erasure
        try:
            summary = self._sync()
        except BaseException:
            try:
                self.store.erase()
            except StoreError:
                pass  # the first error is the one to report; the next sync erases
            raise
        self.store.erase()
        if summary.lag is not None and summary.lag.exceeded:
            raise FeedLagError(summary.lag.text(), summary)
        return summary

    def _sync(self) -> SyncSummary:
        began = time.monotonic()
        cp, reader = self._verified_checkpoint()
        if self.store.state().log_key is None:
            self.store.pin(self.origin, self.log_key.encode(), self.hub_url)
        cursor = self.store.state().cursor
        summary = SyncSummary(self.origin, cp.size, cursor, cp.size - cursor)
        bar = self._bar(cp.size - cursor)
        incoming = cp.size - cursor
        workers = _worker_count() if incoming >= PARALLEL_MIN_ENTRIES else 0
        # Fetch threads: while one batch is checked and stored, the next ones are fetched,
        # decrypted and prepared (I/O, AEAD and the worker processes run outside the GIL).
        # A prepared batch is only used once it is reached, after every check of the loop
        # below, so errors surface in log order and nothing of a bad batch is applied.
        bulk = self.store.wants_bulk_load(incoming)
        if bulk:
            self.store.defer_hash_index()
        else:
            self.store.build_hash_index()  # if a bulk load was killed before it rebuilt it
        fetch = ThreadPoolExecutor(workers + 1, thread_name_prefix="feed-fetch")
        procs: WorkerPool | None = None
        if workers:
            try:
                procs = WorkerPool(workers)
            except OSError:
                procs = None  # cannot start processes here: the fetch threads do the work
        relists = 0
        completed = False
        try:
            done = False
            while not done:
                origin, refs, nxt = self.client.batches(cursor, PAGE)
                if origin != self.origin:
                    raise HubProtocolError("the feed is for another log origin")
                ahead: deque[tuple[int, Future[Prepared]]] = deque()  # (position in refs, work)
                ahead_bytes = 0
                for i, ref in enumerate(refs):
                    # A batch may start before the cursor: the hub merged the short batches
                    # this store applied into one (specs/feed.md 2). All of it is verified;
                    # only the entries from the cursor on are applied.
                    if not ref.start <= cursor < ref.end:
                        raise MissingRangeError(
                            f"the feed jumps from {cursor} to [{ref.start}, {ref.end}): "
                            "a range is missing"
                        )
                    if ref.end > cp.size:
                        done = True  # sealed after this checkpoint: next sync
                        break
                    if not ahead:
                        ahead.append((i, fetch.submit(self._prepare, ref, cursor, cp.size, procs)))
                        ahead_bytes = ref.size
                    # Keep the following batches in flight while they continue this one.
                    last = ahead[-1][0]
                    while (
                        last + 1 < len(refs)
                        and len(ahead) <= workers + 1
                        and ahead_bytes + refs[last + 1].size <= AHEAD_BYTES
                    ):
                        prev, nref = refs[last], refs[last + 1]
                        if nref.start != prev.end or nref.end > cp.size:
                            break
                        last += 1
                        ahead.append(
                            (last, fetch.submit(self._prepare, nref, nref.start, cp.size, procs))
                        )
                        ahead_bytes += nref.size
                    _, work = ahead.popleft()
                    ahead_bytes -= ref.size
                    try:
                        prepared = work.result()
                    except _Relist:
                        relists += 1
                        if relists > MAX_RELISTS:
                            raise HubProtocolError(
                                "the hub keeps changing its batches while they are read"
                            ) from None
                        nxt = cursor  # list again from the cursor
                        break
                    self._check(ref, prepared.roots, reader)
                    counts = self.store.apply_batch(
                        cursor, ref.end, prepared.plan, cp, int(self.clock())
                    )
                    summary.batches += 1
                    summary.entries += ref.end - cursor
                    if bar is not None:
                        bar.update(ref.end - cursor)
                    cursor = ref.end
                    summary.additions += counts.additions
                    summary.tombstones += counts.tombstones
                    summary.redactions += counts.redactions
                    summary.withdrawn += counts.withdrawn
                for _, work in ahead:
                    work.cancel()  # listed again after a relist; running ones just finish
                if nxt is None:
                    done = True
            completed = True
        finally:
            fetch.shutdown(wait=True, cancel_futures=True)
            if procs is not None:
                procs.close()
            if bar is not None:
                bar.close()
            if bulk:
                try:
                    self.store.build_hash_index()
                except StoreError:
                    if completed:
                        raise
                    # else the first error is the one to report; the next sync builds it
        # Only now (all verified, batches applied) is the checkpoint trusted on its own: a
        # failed sync leaves the store exactly as it was.
        if self.hub_url != self.store.state().hub_url:
            self.store.pin(self.origin, self.log_key.encode(), self.hub_url)
        self.store.trust_checkpoint(cp, int(self.clock()))
        summary.lag = self._lag(cursor, cp.size)
        if self._policy_given and self.policy is not None:
            save_policy(self.directory, self.policy)
        if cursor > 0:
            self.client.ack(cursor)
        summary.cursor = cursor
        summary.behind = cp.size - cursor
        outlook = self.client.outlook
        if outlook is not None:
            summary.sealed_size = outlook.sealed_size
            if summary.behind > 0:
                ready = outlook.ready_in
                if ready is None and outlook.sealed_size >= cp.size:
                    ready = 0.0  # sealed after this checkpoint, not late: sync again now
                summary.ready_in = ready
        summary.seconds = round(time.monotonic() - began, 3)
        summary.cosignatures = self._cosignatures
        summary.latest_size = max(self._latest_size, cp.size)
        return summary

    def _lag(self, cursor: int, size: int) -> LagReport | None:
        now = int(self.clock())
        lag = self.store.record_lag(cursor, size, now)
        if lag is None:
            return None
        seconds = max(0, now - lag.since)
        return LagReport(
            size - cursor, lag.since, seconds, self.lag_grace, seconds > self.lag_grace
        )

    def _bar(self, total: int) -> Any:
        if not self.progress or not sys.stderr.isatty():
            return None
        from tqdm import tqdm

        return tqdm(total=total, unit="entries", file=sys.stderr, desc="sync", leave=False)

    def status(self) -> dict[str, Any]:
        """Store size, cursor and trusted checkpoint (no network)."""
        return status_of(self.store)


def _private_directory(directory: Path) -> None:
    """The data folder holds keys and plaintext hashes: owner only (0700)."""
    try:
        if directory.stat().st_mode & 0o077:
            os.chmod(directory, 0o700)
    except OSError as exc:
        raise UsageError(f"cannot restrict {directory} to its owner: {exc.strerror}") from None


def status_of(store: Store) -> dict[str, Any]:
    state = store.state()
    return {
        "v": 1,
        "origin": state.origin,
        "hub": state.hub_url,
        "cursor": state.cursor,
        "checkpoint_size": None if state.checkpoint is None else state.checkpoint.size,
        "checkpoint_root": None if state.checkpoint is None else state.checkpoint.root.hex(),
        "store": store.counts(),
    }
