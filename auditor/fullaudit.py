"""Full audit: rebuild a log's whole tree from its entries and check every tile against it.

Every entry bundle is hashed into leaves, every level is recomputed from the one below, and
each stored tile is compared with the recomputed hashes; the recomputed root must equal the
verified checkpoint's. Blame (specs/audit.md §5): if the entries rebuild the signed root, every
stored tile that differs is wrong; if they do not, and the stored tiles authenticate against the
signed root, the entry bundles that differ from their level-0 tile are wrong.

Downloads go through :class:`CachedSource` (one file per tile, written atomically), so a rerun
continues where an interrupted one stopped. Memory is O(size / 256).
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from auditor.errors import ConfigError, NotFoundError
from auditor.fsutil import write_atomic
from auditor.proofs import tile_reader
from auditor.source import LogSource, path_cap, read_file_capped
from auditor.trust import VerifiedCheckpoint
from crypto.errors import InconsistentTreeError, MalformedError
from crypto.merkle import EMPTY_ROOT, NodeId
from crypto.tiles import (
    TILE_HEIGHT,
    TILE_WIDTH,
    EntryBundle,
    Tile,
    decode_entry_bundle,
    decode_tile,
    entry_bundles_for_size,
    partial_tile_frontier,
    tile_levels,
    tiles_for_size,
)

__all__ = ["AuditReport", "CachedSource", "TileProblem", "full_audit"]

PREFETCH: Final = 32
"""Tiles requested ahead of the one being checked (HTTP latency hiding)."""
PREFETCH_BYTES: Final = 64 << 20
"""Sum of the caps of the reads in flight or waiting (an entry bundle's cap is 16 MiB)."""
_sha256 = hashlib.sha256


class CachedSource:
    """A LogSource that keeps every tile and bundle it fetched under ``cache_dir``.

    Tiles are immutable by path (a partial tile's path names its width), so a cached copy is
    reused as is; the audit rechecks it anyway.
    """

    def __init__(self, inner: LogSource, cache_dir: Path) -> None:
        self.inner = inner
        self.cache_dir = cache_dir
        self.name = inner.name
        self.fetched = 0
        self.reused = 0

    def get(self, path: str) -> bytes:
        if path == "checkpoint":
            return self.inner.get(path)
        cap, what = path_cap(path)  # parsed before it names a file
        target = self.cache_dir / path
        try:
            data = read_file_capped(target, cap, what)
            self.reused += 1
            return data
        except NotFoundError:
            pass
        data = self.inner.get(path)
        write_atomic(target, data)
        self.fetched += 1
        return data


@dataclass(frozen=True)
class TileProblem:
    """One wrong resource: which file, which level (None for an entry bundle), where."""

    kind: str  # tile_mismatch, tile_malformed, tile_missing, bundle_mismatch, bundle_malformed, ...
    path: str
    level: int | None
    index: int
    position: int | None
    message: str

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "path": self.path,
            "level": self.level,
            "index": self.index,
            "position": self.position,
            "message": self.message,
        }


@dataclass
class AuditReport:
    """The outcome: ``ok`` only if every tile and bundle matched and the root is the signed one."""

    size: int
    root: bytes
    recomputed_root: bytes
    tiles_checked: int = 0
    bundles_checked: int = 0
    problems: list[TileProblem] = field(default_factory=list)
    stored_tiles_authentic: bool | None = None

    @property
    def ok(self) -> bool:
        return not self.problems and self.recomputed_root == self.root

    def to_json(self) -> dict[str, Any]:
        import base64

        return {
            "status": "ok" if self.ok else "alert",
            "size": self.size,
            "root": base64.b64encode(self.root).decode(),
            "recomputed_root": base64.b64encode(self.recomputed_root).decode(),
            "tiles_checked": self.tiles_checked,
            "bundles_checked": self.bundles_checked,
            "stored_tiles_authentic": self.stored_tiles_authentic,
            "problems": [p.to_json() for p in self.problems],
        }


def _prefetch(
    get: Callable[[str], bytes], paths: Iterator[str], workers: int
) -> Iterator[tuple[str, bytes | Exception]]:
    """(path, bytes or the exception) in order, with up to PREFETCH reads in flight and at
    most PREFETCH_BYTES of them by their caps (a lying log sending maximal bundles cannot make
    the prefetch window hold 32 x 16 MiB)."""
    if workers <= 1:
        for path in paths:
            try:
                yield path, get(path)
            except Exception as exc:  # handed to the caller, which classifies it
                yield path, exc
        return

    def safe(path: str) -> bytes | Exception:
        try:
            return get(path)
        except Exception as exc:  # handed to the caller, which classifies it
            return exc

    def cap(path: str) -> int:
        try:
            return path_cap(path)[0]
        except ConfigError:
            return 0

    with ThreadPoolExecutor(workers) as pool:
        window: deque[tuple[str, int, Future[bytes | Exception]]] = deque()
        held = 0
        for path in paths:
            size = cap(path)
            while window and (len(window) >= PREFETCH or held + size > PREFETCH_BYTES):
                p, c, fut = window.popleft()
                held -= c
                yield p, fut.result()
            window.append((path, size, pool.submit(safe, path)))
            held += size
        while window:
            p, _, fut = window.popleft()
            yield p, fut.result()


def _first_difference(a: Sequence[bytes], b: Sequence[bytes]) -> int:
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return i
    return min(len(a), len(b))


class _Auditor:
    def __init__(
        self,
        source: LogSource,
        cp: VerifiedCheckpoint,
        progress: Callable[[int], None] | None,
        workers: int,
        max_problems: int,
    ) -> None:
        self.source = source
        self.cp = cp
        self.progress = progress
        self.workers = workers
        self.max_problems = max_problems
        self.report = AuditReport(cp.size, cp.root, EMPTY_ROOT)
        self.frontier: dict[int, list[bytes]] = {}
        self.level0_mismatch: list[tuple[TileProblem, EntryBundle]] = []
        self.upper_mismatch: list[TileProblem] = []

    def problem(self, problem: TileProblem) -> None:
        if len(self.report.problems) < self.max_problems:
            self.report.problems.append(problem)

    def _read(self, tile: Tile, data: bytes | Exception) -> list[bytes] | None:
        if isinstance(data, NotFoundError):
            self.problem(
                TileProblem(
                    "tile_missing", tile.path, tile.level, tile.index, None, "tile is missing"
                )
            )
            return None
        if isinstance(data, Exception):
            raise data
        try:
            return decode_tile(tile, data)
        except MalformedError as exc:
            self.problem(
                TileProblem(
                    "tile_malformed",
                    tile.path,
                    tile.level,
                    tile.index,
                    None,
                    f"tile is malformed: {exc}",
                )
            )
            return None

    def _check(self, tile: Tile, computed: list[bytes], stored: list[bytes] | None) -> None:
        self.report.tiles_checked += 1
        if stored is None or stored == computed:
            return
        pos = _first_difference(stored, computed)
        # Blame is decided once the root is known (_blame): kept aside until then.
        self.upper_mismatch.append(
            TileProblem(
                "tile_mismatch",
                tile.path,
                tile.level,
                tile.index,
                pos,
                f"hash {pos} of tile level {tile.level} index {tile.index} differs from the hash "
                "recomputed from the level below",
            )
        )

    def _climb(self, tile: Tile, hashes: list[bytes], up: list[bytes]) -> None:
        levels = tile_levels(list(hashes))
        if tile.is_full:
            up.append(levels[TILE_HEIGHT][0])
        else:
            self.frontier[tile.level] = partial_tile_frontier(tile.width, levels)

    def level0(self) -> list[bytes]:
        up: list[bytes] = []

        def paths() -> Iterator[str]:
            for b in entry_bundles_for_size(self.cp.size):
                yield b.path
                yield Tile(0, b.index, b.width).path

        fetched = _prefetch(self.source.get, paths(), self.workers)
        sha = _sha256
        for bundle in entry_bundles_for_size(self.cp.size):
            _, bundle_data = next(fetched)
            tile = Tile(0, bundle.index, bundle.width)
            _, tile_data = next(fetched)
            stored = self._read(tile, tile_data)
            leaves = self._leaves(bundle, bundle_data)
            computed = [sha(b"\x00" + e).digest() for e in leaves] if leaves is not None else None
            if computed is not None:
                self.report.bundles_checked += 1
                if stored is not None and stored != computed:
                    pos = _first_difference(stored, computed)
                    problem = TileProblem(
                        "tile_mismatch",
                        tile.path,
                        0,
                        tile.index,
                        pos,
                        f"leaf hash {pos} of tile level 0 index {tile.index} differs from the "
                        f"hash of entry {tile.index * TILE_WIDTH + pos} in {bundle.path}",
                    )
                    self.level0_mismatch.append((problem, bundle))
                self.report.tiles_checked += 1
            base = computed if computed is not None else stored
            if base is None:
                raise _Unrecoverable(f"neither {bundle.path} nor {tile.path} can be read")
            self._climb(tile, base, up)
            if self.progress is not None:
                self.progress(bundle.width)
        return up

    def _leaves(self, bundle: EntryBundle, data: bytes | Exception) -> list[bytes] | None:
        if isinstance(data, NotFoundError):
            self.problem(
                TileProblem(
                    "bundle_missing",
                    bundle.path,
                    None,
                    bundle.index,
                    None,
                    "entry bundle is missing",
                )
            )
            return None
        if isinstance(data, Exception):
            raise data
        try:
            return decode_entry_bundle(data, bundle.width)
        except MalformedError as exc:
            self.problem(
                TileProblem(
                    "bundle_malformed",
                    bundle.path,
                    None,
                    bundle.index,
                    None,
                    f"entry bundle is malformed: {exc}",
                )
            )
            return None

    def upper(self, level: int, hashes: list[bytes]) -> list[bytes]:
        up: list[bytes] = []
        tiles = [
            Tile(level, i // TILE_WIDTH, min(TILE_WIDTH, len(hashes) - i))
            for i in range(0, len(hashes), TILE_WIDTH)
        ]
        fetched = _prefetch(self.source.get, (t.path for t in tiles), self.workers)
        for tile, (_, data) in zip(tiles, fetched, strict=True):
            start = tile.index * TILE_WIDTH
            computed = hashes[start : start + tile.width]
            self._check(tile, computed, self._read(tile, data))
            self._climb(tile, computed, up)
        return up

    def run(self) -> AuditReport:
        size = self.cp.size
        if size == 0:
            self.report.recomputed_root = EMPTY_ROOT
            return self.report
        hashes = self.level0()
        level = 1
        while hashes:
            hashes = self.upper(level, hashes)
            level += 1
        frontier = [h for lvl in sorted(self.frontier, reverse=True) for h in self.frontier[lvl]]
        root = frontier[-1]
        for h in reversed(frontier[:-1]):
            root = _sha256(b"\x01" + h + root).digest()
        self.report.recomputed_root = root
        self._blame()
        return self.report

    def _blame(self) -> None:
        report = self.report
        if report.recomputed_root == report.root:
            # The entries rebuild the signed tree: every differing stored tile is wrong.
            for p, _ in self.level0_mismatch:
                self.problem(p)
            for p in self.upper_mismatch:
                self.problem(p)
            report.stored_tiles_authentic = not any(
                p.kind.startswith("tile_") for p in report.problems
            )
            return
        report.stored_tiles_authentic = self._stored_tiles_authentic()
        if report.stored_tiles_authentic:
            for p, bundle in self.level0_mismatch:
                self.problem(
                    TileProblem(
                        "bundle_mismatch",
                        bundle.path,
                        None,
                        p.index,
                        p.position,
                        f"entry {p.index * TILE_WIDTH + (p.position or 0)} in {bundle.path} "
                        f"does not hash to its leaf in {p.path}, which matches the signed root",
                    )
                )
            # Differences above level 0 only follow from the altered leaves: not reported.
        else:
            for p, _ in self.level0_mismatch:
                self.problem(p)
            for p in self.upper_mismatch:
                self.problem(p)
        self.problem(
            TileProblem(
                "root_mismatch",
                "checkpoint",
                None,
                0,
                None,
                "the entries do not rebuild the signed root"
                + ("" if report.stored_tiles_authentic else ", and neither do the stored tiles"),
            )
        )

    def _stored_tiles_authentic(self) -> bool:
        reader = tile_reader(self.source, self.cp.size, self.cp.root)
        try:
            reader.state()
            for tile in tiles_for_size(self.cp.size):
                if tile.is_full:
                    reader.read_hashes([NodeId(TILE_HEIGHT * tile.level + 7, 2 * tile.index)])
        except (InconsistentTreeError, NotFoundError, MalformedError):
            return False
        return True


class _Unrecoverable(Exception):
    pass


def full_audit(
    source: LogSource,
    checkpoint: VerifiedCheckpoint,
    *,
    progress: Callable[[int], None] | None = None,
    workers: int = 1,
    max_problems: int = 100,
) -> AuditReport:
    """Rebuild the tree of a verified checkpoint from ``source`` and report every problem.

    FetchError propagates (no verdict); wrong or missing tiles and bundles are problems.
    """
    auditor = _Auditor(source, checkpoint, progress, workers, max_problems)
    try:
        return auditor.run()
    except _Unrecoverable as exc:
        auditor.problem(TileProblem("unreadable", "tile", None, 0, None, str(exc)))
        auditor.report.stored_tiles_authentic = False
        return auditor.report
