"""Hub settings: one frozen value built once at start, refusing unsafe or nonsensical values.

Every limit the API enforces lives here with its default, so specs/hub-api.md section "Limits"
and the code cannot drift apart: the spec names these fields.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path

from crypto.feed import BATCH_HEADER_SIZE, DEFAULT_MAX_BATCH, TAG_SIZE
from hub.witness_config import WitnessConfig, WitnessConfigError, check_witnesses

__all__ = ["DEFAULT_DATA_DIR", "DEFAULT_ORIGIN", "Settings", "SettingsError"]

DEFAULT_DATA_DIR = Path("ncii-hub-data")
DEFAULT_ORIGIN = "localhost/ncii-hub"
_ORIGIN_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/:-]{0,127}")


class SettingsError(ValueError):
    """A setting that would make the hub unsafe or unusable; the message says which and why."""


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a hub process needs to know; see specs/hub-api.md section 6 (Limits)."""

    data_dir: Path = DEFAULT_DATA_DIR
    database_url: str | None = None  # None: sqlite file DATA/hub.sqlite3
    origin: str | None = None  # None: keep the stored origin, or DEFAULT_ORIGIN on first start
    deny_list: Path | None = None
    web_dir: Path | None = None  # None: the web/ shipped with the package (hub/page.py)

    # request limits
    max_body_bytes: int = 1 << 20
    body_read_seconds: float = 30.0  # whole body read (slow clients), hub/deadline.py
    # connections (hub/serving.py): open at once (beyond it the oldest idle one is closed), and
    # seconds for a request head to arrive (from connect, or from the previous response)
    max_connections: int = 1024
    header_timeout: float = 10.0
    max_hashes_per_request: int = 1000
    max_vpdq_frames: int = 10_000
    max_entries_per_case: int = 10_000
    max_withdraw_entries: int = 10_000
    pdq_quality_floor: int = 50
    window_seconds: int = 300
    # Offline bundles (specs/client-store.md) are uploaded days after signing: submissions may
    # be this old (future skew stays window_seconds); their replay records live as long.
    submission_max_age: int = 30 * 86400

    # rate limits (token buckets): sustained requests per second and burst size
    ip_rate: float = 20.0
    ip_burst: int = 60
    case_rate: float = 2.0
    case_burst: int = 20
    rate_table_size: int = 100_000

    # admission control (hub/admission.py, specs/hub-api.md section 6.2): hashes and new cases,
    # per client address (IPv4 /32, IPv6 /64) and for the whole hub, kept in the database; a
    # submission beyond them is held for review (202 "held"), not refused
    admission_control: bool = True
    anon_hashes_per_hour: float = 1000.0
    anon_hashes_burst: int = 1000
    anon_cases_per_day: float = 5.0
    anon_cases_burst: int = 5
    global_hashes_per_hour: float = 100_000.0
    global_hashes_burst: int = 20_000
    global_cases_per_hour: float = 500.0
    global_cases_burst: int = 200
    # what one address may have held for review: beyond it, 429 (the review queue is bounded)
    held_hashes_per_day: float = 20_000.0
    held_hashes_burst: int = 10_000
    held_max_entries: int = 1_000_000
    # trusted submitters (ncii-hub submitter add) without limits of their own get these
    submitter_hashes_per_hour: float = 100_000.0
    submitter_hashes_burst: int = 20_000
    submitter_cases_per_day: float = 2_000.0
    submitter_cases_burst: int = 500
    admission_retention: int = 7 * 86400  # seconds an address's counters are kept

    # sequencer
    sequencer: bool = True
    batch_interval: float = 0.5
    batch_max_entries: int = 4096
    lock_retry_seconds: float = 2.0

    # partner feed (specs/partner-api.md): seal a batch at this many entries (aligned to it),
    # or when the oldest unsealed entry is this many seconds old
    feed_batch_entries: int = 4096  # 16 entry-bundle tiles; the age trigger bounds latency
    feed_max_age: float = 0.0
    # merge the short batches of a full aligned range once the newest is this many seconds old
    feed_compact_age: float = 60.0
    # ... or earlier, before the entry that would take its plaintext past this many bytes (at
    # least one entry per batch). At most the partner SDK's sealed-batch limit less the sealing
    # overhead (crypto.feed.DEFAULT_MAX_BATCH, 256 MiB), so partners never refuse a batch.
    feed_batch_max_bytes: int = 64 << 20

    # witnesses (specs/hub-api.md section 9): asked to cosign each new checkpoint
    witnesses: tuple[WitnessConfig, ...] = ()
    witness_timeout: float = 10.0  # seconds per add-checkpoint request
    witness_max_backoff: float = 60.0  # retry delay cap for a failing witness
    witness_concurrency: int = 8  # add-checkpoint requests in flight at once

    # case puzzle (specs/case-puzzle.md, hub/puzzle.py): a memory-hard cost for creating a
    # case. Difficulty = leading zero bits (about 2**difficulty scrypt runs to solve, one to
    # check); it rises by one for each doubling of new cases beyond puzzle_normal_cases per
    # puzzle_rate_window seconds, up to puzzle_max_difficulty. A challenge is good for its
    # epoch and the next (puzzle_epoch_seconds each).
    puzzle: bool = True
    puzzle_difficulty: int = 6
    puzzle_max_difficulty: int = 12
    puzzle_scrypt_n: int = 1024
    puzzle_scrypt_r: int = 8
    puzzle_scrypt_p: int = 1
    puzzle_epoch_seconds: int = 600
    puzzle_normal_cases: int = 100
    puzzle_rate_window: int = 3600

    # proxies whose X-Forwarded-For is believed (uvicorn's list: addresses, networks or "*");
    # empty: trust none, so no client can pick the address its rate limit is charged to
    forwarded_allow_ips: str = ""

    # GET /metrics for anyone (true), or only from loopback without forwarding headers (false)
    metrics_public: bool = False

    def __post_init__(self) -> None:
        if self.origin is not None and _ORIGIN_RE.fullmatch(self.origin) is None:
            raise SettingsError(
                "origin must be 1-128 characters of letters, digits and . _ / : - "
                "(a schema-less URL such as example.org/ncii-hub)"
            )
        if self.database_url is not None and not self.database_url.startswith(
            ("sqlite://", "postgresql://", "postgresql+psycopg://")
        ):
            raise SettingsError(
                "database URL must start with sqlite:// or postgresql+psycopg:// "
                "(postgresql:// is accepted and uses psycopg 3)"
            )
        _range("max_body_bytes", self.max_body_bytes, 1024, 64 << 20)
        _frange("body_read_seconds", self.body_read_seconds, 0.5, 600.0)
        _range("max_connections", self.max_connections, 16, 1_000_000)
        _frange("header_timeout", self.header_timeout, 0.5, 600.0)
        _range("max_hashes_per_request", self.max_hashes_per_request, 1, 100_000)
        _range("max_vpdq_frames", self.max_vpdq_frames, 1, 1_000_000)
        _range("max_entries_per_case", self.max_entries_per_case, 1, 10_000_000)
        _range("max_withdraw_entries", self.max_withdraw_entries, 1, 10_000_000)
        _range("pdq_quality_floor", self.pdq_quality_floor, 0, 100)
        # A longer window keeps replay records longer and widens the replay exposure.
        _range("window_seconds", self.window_seconds, 10, 3600)
        # Safe only because submissions are idempotent by content and their replay records are
        # kept this long (specs/submission.md section 7); a year bounds the replay table.
        _range("submission_max_age", self.submission_max_age, 10, 366 * 86400)
        if self.submission_max_age < self.window_seconds:
            raise SettingsError("submission_max_age must be at least window_seconds")
        _range("ip_burst", self.ip_burst, 1, 1_000_000)
        _range("case_burst", self.case_burst, 1, 1_000_000)
        _range("rate_table_size", self.rate_table_size, 100, 10_000_000)
        _range("batch_max_entries", self.batch_max_entries, 1, 1_000_000)
        for name in (
            "anon_hashes_per_hour",
            "anon_cases_per_day",
            "global_hashes_per_hour",
            "global_cases_per_hour",
            "held_hashes_per_day",
            "submitter_hashes_per_hour",
            "submitter_cases_per_day",
        ):
            _frange(name, getattr(self, name), 0.001, 1e9)
        for name in (
            "anon_hashes_burst",
            "anon_cases_burst",
            "global_hashes_burst",
            "global_cases_burst",
            "held_hashes_burst",
            "submitter_hashes_burst",
            "submitter_cases_burst",
        ):
            _range(name, getattr(self, name), 1, 1_000_000_000)
        _range("held_max_entries", self.held_max_entries, 0, 1_000_000_000)
        # Shorter than a day would forget the per-day case counts before they matter.
        _range("admission_retention", self.admission_retention, 86400, 366 * 86400)
        _frange("ip_rate", self.ip_rate, 0.001, 1e6)
        _frange("case_rate", self.case_rate, 0.001, 1e6)
        # Batches further apart than this break the promise of inclusion within seconds.
        _frange("batch_interval", self.batch_interval, 0.01, 60.0)
        _frange("lock_retry_seconds", self.lock_retry_seconds, 0.05, 600.0)
        _range("feed_batch_entries", self.feed_batch_entries, 1, 1 << 20)
        _frange("feed_max_age", self.feed_max_age, 0.0, 3600.0)
        _frange("feed_compact_age", self.feed_compact_age, 0.0, 86400.0)
        _range(
            "feed_batch_max_bytes",
            self.feed_batch_max_bytes,
            64 << 10,
            DEFAULT_MAX_BATCH - BATCH_HEADER_SIZE - TAG_SIZE,
        )
        try:
            check_witnesses(self.witnesses)
        except WitnessConfigError as exc:
            raise SettingsError(str(exc)) from None
        _frange("witness_timeout", self.witness_timeout, 0.1, 300.0)
        _frange("witness_max_backoff", self.witness_max_backoff, 0.1, 3600.0)
        _range("witness_concurrency", self.witness_concurrency, 1, 256)
        _check_proxy_list(self.forwarded_allow_ips)
        self._check_puzzle()

    def _check_puzzle(self) -> None:
        _range("puzzle_difficulty", self.puzzle_difficulty, 0, 24)
        _range("puzzle_max_difficulty", self.puzzle_max_difficulty, self.puzzle_difficulty, 24)
        n = self.puzzle_scrypt_n
        if isinstance(n, bool) or not isinstance(n, int) or n < 2 or n > 1 << 16 or n & (n - 1):
            raise SettingsError("puzzle_scrypt_n must be a power of two from 2 to 65536")
        _range("puzzle_scrypt_r", self.puzzle_scrypt_r, 1, 32)
        _range("puzzle_scrypt_p", self.puzzle_scrypt_p, 1, 16)
        if 128 * self.puzzle_scrypt_r * n > 64 << 20:
            # clients refuse more (crypto.puzzle.MAX_MEMORY): a phone must be able to solve it
            raise SettingsError("puzzle scrypt memory (128 * r * n bytes) must be at most 64 MiB")
        _range("puzzle_epoch_seconds", self.puzzle_epoch_seconds, 60, 86400)
        _range("puzzle_normal_cases", self.puzzle_normal_cases, 1, 100_000_000)
        _range("puzzle_rate_window", self.puzzle_rate_window, 60, 7 * 86400)

    @property
    def sqlite_path(self) -> Path:
        """Where the default SQLite database lives."""
        return self.data_dir / "hub.sqlite3"

    @property
    def effective_database_url(self) -> str:
        """The database URL in use: the configured one or the default SQLite file."""
        if self.database_url is not None:
            url = self.database_url
            if url.startswith("postgresql://"):
                url = "postgresql+psycopg://" + url[len("postgresql://") :]
            return url
        return f"sqlite:///{self.sqlite_path.resolve()}"

    @property
    def tiles_dir(self) -> Path:
        """Directory below which tiles, entry bundles and the checkpoint file are written."""
        return self.data_dir / "tiles"

    @property
    def feed_dir(self) -> Path:
        """Directory of sealed feed batches (content-addressed, immutable files)."""
        return self.data_dir / "feed"

    def replace(self, **changes: object) -> Settings:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def tunable_fields(cls) -> dict[str, type]:
        """Numeric fields that ``ncii-hub serve --set NAME=VALUE`` may change (not those with
        an option of their own: ``sequencer`` is ``--no-sequencer``)."""
        out: dict[str, type] = {}
        for f in dataclasses.fields(cls):
            if f.type in ("int", "float", "bool") and f.name != "sequencer":
                out[f.name] = {"int": int, "float": float, "bool": bool}[str(f.type)]
        return out


def _check_proxy_list(value: str) -> None:
    for item in value.split(","):
        item = item.strip()
        if not value.strip() or item == "*":
            continue
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise SettingsError(
                "forwarded_allow_ips must be a comma-separated list of IP addresses or "
                "networks (or *)"
            ) from None


def _range(name: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise SettingsError(f"{name} must be an integer from {low} to {high}")


def _frange(name: str, value: object, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise SettingsError(f"{name} must be a number from {low} to {high}")


SETTING_HELP: dict[str, str] = {
    "max_body_bytes": "largest request body, bytes",
    "body_read_seconds": "time a client has to send a whole request body, seconds",
    "max_connections": "open connections at most (lowered to fit the open-file limit)",
    "header_timeout": "time a client has to send a request's head, seconds",
    "max_hashes_per_request": "hashes one submission may carry",
    "max_vpdq_frames": "vPDQ frames one video hash may carry",
    "max_entries_per_case": "log entries one case may hold",
    "max_withdraw_entries": "entries one withdrawal may name",
    "pdq_quality_floor": "PDQ hashes below this quality (0-100) are refused",
    "window_seconds": "how far a request's timestamp may be from the hub's clock, seconds",
    "submission_max_age": "oldest signed submission accepted (offline bundles), seconds",
    "ip_rate": "requests per second one client address may make, sustained",
    "ip_burst": "requests one client address may make at once",
    "case_rate": "requests per second one case may make, sustained",
    "case_burst": "requests one case may make at once",
    "rate_table_size": "client addresses and cases the rate limiter tracks",
    "admission_control": "count hashes and new cases per address and hub-wide; hold the excess",
    "anon_hashes_per_hour": "hashes one address may add per hour, sustained (beyond: held)",
    "anon_hashes_burst": "hashes one address may add at once",
    "anon_cases_per_day": "new cases one address may create per day, sustained (beyond: held)",
    "anon_cases_burst": "new cases one address may create at once",
    "global_hashes_per_hour": "hashes the whole hub takes per hour from anonymous submitters",
    "global_hashes_burst": "hashes the whole hub takes at once (beyond: held)",
    "global_cases_per_hour": "new cases the whole hub takes per hour",
    "global_cases_burst": "new cases the whole hub takes at once (beyond: held)",
    "held_hashes_per_day": "hashes one address may have held for review per day (beyond: 429)",
    "held_hashes_burst": "hashes one address may have held at once",
    "held_max_entries": "entries waiting for review at most, hub-wide (beyond: 429)",
    "submitter_hashes_per_hour": "default hashes per hour of a trusted submitter",
    "submitter_hashes_burst": "default hashes a trusted submitter may add at once",
    "submitter_cases_per_day": "default new cases per day of a trusted submitter",
    "submitter_cases_burst": "default new cases a trusted submitter may create at once",
    "admission_retention": "seconds an address's admission counters are kept",
    "sequencer": "integrate entries into the log (false: serve only)",
    "batch_interval": "seconds between log integrations",
    "batch_max_entries": "entries integrated at most per integration",
    "lock_retry_seconds": "seconds between attempts to take the sequencer lock",
    "feed_batch_entries": "seal a partner feed batch at this many entries",
    "feed_max_age": "... or when its oldest entry is this many seconds old",
    "feed_compact_age": "merge a full range's short feed batches once this many seconds old",
    "feed_batch_max_bytes": "... or before its plaintext passes this many bytes",
    "witness_timeout": "seconds per cosignature request to a witness",
    "witness_max_backoff": "longest wait before asking a failing witness again, seconds",
    "witness_concurrency": "cosignature requests in flight at once",
    "metrics_public": "serve /metrics to every address (false: loopback, unproxied only)",
    "puzzle": "ask a solved case puzzle of every submission that creates a case",
    "puzzle_difficulty": "case puzzle difficulty at normal load, leading zero bits",
    "puzzle_max_difficulty": "case puzzle difficulty at most, under a burst of new cases",
    "puzzle_scrypt_n": "case puzzle scrypt N (power of two; memory is 128 * r * N bytes)",
    "puzzle_scrypt_r": "case puzzle scrypt r (block size)",
    "puzzle_scrypt_p": "case puzzle scrypt p (parallelism)",
    "puzzle_epoch_seconds": "case puzzle challenge epoch; a challenge lasts two, seconds",
    "puzzle_normal_cases": "new cases per puzzle_rate_window seen as normal load",
    "puzzle_rate_window": "how far back new cases are counted for the difficulty, seconds",
}
"""One line of meaning per ``--set`` name; ``ncii-hub serve --help`` prints them (a test checks
every tunable field has one, so the help cannot drift from the fields)."""


def settings_help() -> str:
    """Every ``--set NAME=VALUE`` setting with its default and meaning, one a line."""
    defaults = {f.name: f.default for f in dataclasses.fields(Settings)}
    rows = []
    for name in Settings.tunable_fields():
        value = defaults[name]
        shown = str(value).lower() if isinstance(value, bool) else str(value)
        rows.append((f"{name}={shown}", SETTING_HELP.get(name, "")))
    width = max(len(left) for left, _ in rows)
    lines = [f"  {left:<{width}}  {meaning}".rstrip() for left, meaning in rows]
    return (
        "settings (--set NAME=VALUE; the value shown is the default):\n" + "\n".join(lines) + "\n"
    )
