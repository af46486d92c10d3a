"""The sequencer: the one writer of the log (specs/hub-storage.md section 5).

Each round runs three steps, each atomic on its own, in a fixed order:

1. ``Storage.sequence_batch``: one transaction gives pending entries the next log indexes,
   computes tombstone leaves, and stores the extended tree state (compare-and-swap on size).
2. Tiles and entry bundles for [published, size) are written from the database (deterministic:
   a rewrite after a crash gives identical bytes; full tiles never change).
3. The checkpoint for the new size is signed, written to tiles/checkpoint, then stored
   (compare-and-swap on published size): the file is never behind what the API reports.

A crash after any step leaves ``published_size <= size``; the next round (or the next start)
redoes steps 2 and 3 for that range before sequencing anything new. Nothing accepted is lost
and only one tree can ever be signed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
import time
from collections.abc import Callable

from crypto.checkpoint import Checkpoint, parse_checkpoint, sign_checkpoint
from crypto.commitment import LeafData, LeafKind, new_salt
from crypto.errors import InconsistentTreeError
from crypto.note import parse_note
from crypto.tiles import TILE_HEIGHT, EntryBundle, Tile, TileUpdate, append_tiles
from hub.atrest import seal_tombstone
from hub.keystore import HubKeys
from hub.seqlock import SequencerLock
from hub.storage import ConflictError, Storage
from hub.submission import tombstone_entry
from hub.tilestore import TileStore

__all__ = ["Sequencer", "SequencerTask", "sign_tree_head"]

log = logging.getLogger("ncii.hub.sequencer")


def sign_tree_head(keys: HubKeys, size: int, root: bytes) -> bytes:
    """The log's signed checkpoint note for (size, root)."""
    return sign_checkpoint(Checkpoint(keys.origin, size, root), [keys.signer])


class Sequencer:
    """Synchronous sequencing steps over a storage and a tile store (no threads, no clock)."""

    def __init__(self, storage: Storage, tiles: TileStore, keys: HubKeys) -> None:
        self.storage = storage
        self.tiles = tiles
        self.keys = keys

    def _make_tombstone(self, case_id: str, entry_id: str, withdrawn: int) -> tuple[bytes, bytes]:
        body = tombstone_entry(withdrawn)
        salt = new_salt()
        leaf = LeafData.for_entry(LeafKind.TOMBSTONE, body, salt).encode()
        return leaf, seal_tombstone(self.keys.master_key, case_id, entry_id, salt, body)

    def publish_pending(self) -> int:
        """Steps 2 and 3 for whatever is sequenced but not published; returns the new size."""
        state = self.storage.load_log_state()
        if state.size == state.published_size:
            return state.size
        leaves = self.storage.leaf_data_range(state.published_size, state.size)
        if len(leaves) != state.size - state.published_size:
            raise InconsistentTreeError("sequenced entries are missing from the database")
        update = append_tiles(
            state.published_size,
            self.tiles.read,
            entries=leaves,
            state=state.published_state,
        )
        if update.state != state.state:
            raise InconsistentTreeError("tiles rebuilt from the database disagree with the state")
        self.tiles.write_many(list(update.tiles.items()))  # all durable before the checkpoint
        note = sign_tree_head(self.keys, update.state.size, update.root)
        # The file first: the database's published size is what /v1/log, proofs and status
        # report, so the checkpoint file (which a CDN may serve as /checkpoint) must never be
        # behind it. A crash in between leaves the file ahead at a sequenced size whose tiles
        # exist; the next round signs the same note again (Ed25519 is deterministic).
        self.tiles.write("checkpoint", note)
        self.storage.publish(state.published_size, update.state.size, update.state, note)
        return update.state.size

    def _right_edge(self, size: int) -> list[str]:
        """The last tile of each level and the last entry bundle of a log of ``size``: a
        lost or partly lost tiles/ directory is missing at least one of them (or the file
        ``checkpoint``), so checking these few is the cheap test."""
        paths = ["checkpoint"]
        level = 0
        while (count := size >> (TILE_HEIGHT * level)) > 0:
            index = (count - 1) >> TILE_HEIGHT
            paths.append(Tile(level, index, count - (index << TILE_HEIGHT)).path)
            level += 1
        if size:
            index = (size - 1) >> TILE_HEIGHT
            paths.append(EntryBundle(index, size - (index << TILE_HEIGHT)).path)
        return paths

    def _rebuild(self, size: int, write: Callable[[str, bytes], None] | None) -> TileUpdate:
        """Tiles and bundles of ``[0, size)`` from the database, 65,536 entries at a time;
        the right edge of each chunk is kept in memory for the next (nothing is read)."""
        chunk = 1 << (2 * TILE_HEIGHT)
        edge: dict[str, bytes] = {}

        def read(tile: Tile | EntryBundle) -> bytes:
            return edge[tile.path]

        update = append_tiles(0, read, entries=[])
        done = 0
        while done < size:
            leaves = self.storage.leaf_data_range(done, min(size, done + chunk))
            if len(leaves) != min(size, done + chunk) - done:
                raise InconsistentTreeError("published entries are missing from the database")
            update = append_tiles(done, read, entries=leaves, state=update.state)
            if write is not None:
                for path, data in update.tiles.items():
                    write(path, data)
            edge.clear()
            edge.update(update.tiles)
            done += len(leaves)
        return update

    def restore_tiles(self) -> bool:
        """Rebuild the published tiles, bundles and checkpoint file if any is missing.

        Deterministic from the database; the root is checked against the published
        checkpoint before anything is written (InconsistentTreeError if it differs: the hub
        must not start). Returns whether a rebuild happened.
        """
        state = self.storage.load_log_state()
        size = state.published_size
        if all(self.tiles.get(path) is not None for path in self._right_edge(size)):
            return False
        if size == 0:
            # A new (or still empty) log has no tiles at all: only its checkpoint file is
            # still to be written, which is not a loss worth a warning.
            self.tiles.write("checkpoint", state.checkpoint)
            return False
        log.warning("tiles for published size %d are missing; rebuilding from the database", size)
        signed = state.published_state.root()
        if size:
            signed = parse_checkpoint(parse_note(state.checkpoint).text).root_hash
        if self._rebuild(size, None).root not in {signed} & {state.published_state.root()}:
            raise InconsistentTreeError(
                f"tiles rebuilt from the database do not match the published checkpoint of "
                f"size {size}; refusing to start (restore the database or tiles/ from backup)"
            )
        self._rebuild(size, self.tiles.write)
        self.tiles.write("checkpoint", state.checkpoint)
        return True

    def recover(self) -> int:
        """Run at start: finish any half-done round and mirror the current checkpoint."""
        self.restore_tiles()
        size = self.publish_pending()
        self.tiles.write("checkpoint", self.storage.load_log_state().checkpoint)
        return size

    def step(self, max_entries: int) -> int:
        """One round: finish the previous one, sequence up to ``max_entries``, publish.
        Returns how many entries were integrated."""
        self.publish_pending()
        batch = self.storage.sequence_batch(max_entries, self._make_tombstone)
        if batch is None:
            return 0
        self.publish_pending()
        return batch.new_size - batch.old_size


class SequencerTask:
    """The loop around :class:`Sequencer`: holds the lock, batches, stops cleanly.

    Rounds run on a thread of their own, not as tasks of the event loop: under load the loop
    is busy with requests, and a round's start (a timer callback) and each of its steps (a
    hop through the loop's executor) waited behind them, up to 0.15 s per round. The feed
    sealer and the purge stay an asyncio task (``_run_housekeeping``), woken after each round
    that integrated entries, and after an idle round only once ``idle_sweep`` seconds passed
    since it last ran: an idle hub's rounds then cost their own few reads, not also the sealer's
    (what the sealer has to do without a new entry waits on time or on another process: a
    batch's age, compaction, a partner added by the command line).
    """

    def __init__(
        self,
        sequencer: Sequencer,
        lock: SequencerLock,
        *,
        interval: float,
        max_entries: int,
        lock_retry: float,
        purge: Callable[[int], int],
        clock: Callable[[], float] = time.time,
        after_step: Callable[[], object] | None = None,
        on_recover: Callable[[], object] | None = None,
        idle_sweep: float = 1.0,
    ) -> None:
        self.sequencer = sequencer
        self.lock = lock
        self.interval = interval
        self.max_entries = max_entries
        self.lock_retry = lock_retry
        self.purge = purge
        self.clock = clock
        self.after_step = after_step
        self.on_recover = on_recover
        self.idle_sweep = idle_sweep
        self._swept = -math.inf  # time.monotonic() when the housekeeping was last woken
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._stepped = asyncio.Event()  # a round ended: the housekeeping task has work
        self._thread: threading.Thread | None = None
        self._housekeeping: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._last_purge = 0.0
        self.holds_lock = False  # for /metrics and /readyz (hub.health)
        # Lock held and recovery done: feed requests may wrap batches (hub.feedapi).
        self.leading = False
        self.last_round: float | None = None  # clock() when a round last finished

    def running(self) -> bool:
        """Whether the task was started and has not ended (it may be standing by)."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._run, name="ncii-sequencer", daemon=True)
        self._thread.start()
        self._housekeeping = asyncio.create_task(self._run_housekeeping(), name="ncii-sealer")

    def wake(self) -> None:
        """Ask for an early round (thread-safe; called after a large intake)."""
        self._wake.set()

    async def stop(self) -> None:
        """Let the current step finish (it is a transaction or idempotent), then release."""
        self._stop.set()
        self._wake.set()
        self._stepped.set()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join)
        if self._housekeeping is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._housekeeping
        self.leading = False
        await asyncio.to_thread(self.lock.release)
        self.holds_lock = False

    def _sleep(self, seconds: float) -> None:
        self._wake.wait(seconds)
        self._wake.clear()

    def _round_ended(self, integrated: bool) -> None:
        """Wake the housekeeping task (on the event loop's thread) after a round that
        integrated entries, or after an idle one once ``idle_sweep`` seconds passed."""
        now = time.monotonic()
        if not integrated and now - self._swept < self.idle_sweep:
            return
        self._swept = now
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed: stopping anyway
                loop.call_soon_threadsafe(self._stepped.set)

    def _run(self) -> None:
        held = False
        while not self._stop.is_set():
            try:
                if not held:
                    held = self.lock.acquire()
                    if not held:
                        self._sleep(self.lock_retry)
                        continue
                    self.holds_lock = True
                    self._swept = -math.inf  # the first round's housekeeping runs
                    size = self.sequencer.recover()
                    if self.on_recover is not None:
                        self.on_recover()
                    log.info("sequencer lock acquired; log size %d", size)
                elif not self.lock.still_held():
                    log.warning("sequencer lock lost; standing by")
                    held = self.holds_lock = self.leading = False
                    continue
                self.leading = True  # recovered; every round from here on is ours
                began = time.monotonic()
                done = self.sequencer.step(self.max_entries)
                self.last_round = self.clock()
                self._round_ended(done > 0)  # the sealer and purge run beside the next round
                if done >= self.max_entries:
                    continue  # more may be waiting
                # Rounds start every interval (specs/hub-storage.md 5), not interval after the
                # previous round ended: a slow round must not delay the next one further.
                self._sleep(max(0.0, self.interval - (time.monotonic() - began)))
            except ConflictError:
                log.warning("another sequencer moved the log; re-reading")
                self._sleep(self.lock_retry)
            except Exception:
                log.exception("sequencer round failed; retrying")
                self._sleep(self.lock_retry)

    async def _run_housekeeping(self) -> None:
        """After each round, off the rounds' path: the feed sealer (``after_step``: it reads
        only published checkpoints) and, once a minute, the purge of expired records. Before
        they ran between rounds, and a round that started late made every entry accepted
        meanwhile wait that much longer for its checkpoint (up to 0.4 s under load); rounds
        that end while these run are coalesced into one more pass."""
        while True:
            await self._stepped.wait()
            self._stepped.clear()
            if self._stop.is_set():
                return
            try:
                if self.after_step is not None and self.leading:
                    await asyncio.to_thread(self.after_step)
                now = self.clock()
                if now - self._last_purge > 60:
                    self._last_purge = now
                    await asyncio.to_thread(self.purge, int(now))
            except Exception:
                log.exception("feed sealing or purge failed; retrying after the next round")
