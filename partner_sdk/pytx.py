"""The verified feed as a python-threatexchange (pytx) signal exchange, for HMA and the pytx CLI.

Why a plug-in: platforms that run Meta's Hasher-Matcher-Actioner (HMA) or the ``threatexchange``
CLI fetch hash lists through "signal exchange" classes. This module is one: each fetch runs the
SDK's full verified sync (:meth:`partner_sdk.Partner.sync`: signature, witness quorum,
consistency, every leaf recomputed, withheld batches reported) into the partner's own store,
then hands pytx what changed since pytx's checkpoint, read back from that verified store:
additions as records, withdrawals as deletes (an update value of ``None``).

Stable names (HMA pickles fetched records and checkpoints, and stores collaboration configs by
class): ``partner_sdk.pytx.NCIIExchange``, ``partner_sdk.pytx.NCIICollabConfig``,
``partner_sdk.pytx.NCIICheckpoint``, ``partner_sdk.pytx.NCIISignalMetadata``, the exchange name
``ncii_exchange``. They stay in this module and keep their fields; a new field gets a default.

Use (specs/pytx-exchange.md; README "Using it from HMA or python-threatexchange")::

    threatexchange config extensions add partner_sdk.pytx
    threatexchange config collab edit ncii_exchange --create --json \\
        '{"name": "ncii", "hub": "https://hub.example.org", "log_key": "...",
          "partner_dir": "/srv/ncii-partner-data"}'
    threatexchange fetch
    threatexchange match photo upload.jpg

Needs the ``hma`` extra (``pip install 'ncii-exchange[hma]'``: ``threatexchange>=1.2.17``).
"""

# No ``from __future__ import annotations`` here: the pytx CLI reads the config dataclass's
# field types at run time to build its --flags, and a string annotation breaks that.

import json
import logging
import time
import typing as t
from dataclasses import dataclass, field
from pathlib import Path

try:
    from threatexchange.cli.exceptions import CommandError
    from threatexchange.exchanges import fetch_state as state
    from threatexchange.exchanges.collab_config import CollaborationConfigBase
    from threatexchange.exchanges.signal_exchange_api import SignalExchangeAPI
    from threatexchange.extensions.manifest import ThreatExchangeExtensionManifest
    from threatexchange.signal_type.md5 import VideoMD5Signal
    from threatexchange.signal_type.pdq.signal import PdqSignal
    from threatexchange.signal_type.sha256 import VideoSHA256Signal
    from threatexchange.signal_type.signal_base import SignalType
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "partner_sdk.pytx needs python-threatexchange: pip install 'ncii-exchange[hma]' "
        f"(threatexchange>=1.2.17); {exc}"
    ) from exc

from crypto.errors import CryptoError
from crypto.keys import parse_verifier_key
from partner_sdk.errors import CheckpointForkError, FeedLagError, PartnerError, UsageError
from partner_sdk.store import Store
from partner_sdk.sync import Partner, SyncSummary

__all__ = [
    "EXCHANGE_NAME",
    "TX_MANIFEST",
    "CollabConfigError",
    "NCIICheckpoint",
    "NCIICollabConfig",
    "NCIIExchange",
    "NCIISignalMetadata",
    "ReportRefusedError",
    "StateMismatchError",
]

log = logging.getLogger(__name__)

EXCHANGE_NAME = "ncii_exchange"
NCII_TAG = "ncii"
CHUNK = 20_000
"""Log indexes per FetchDelta: pytx may flush (and HMA commits) between deltas."""

VPDQ_SIGNAL_NAME = "vpdq"
"""pytx's vPDQ signal type name (extension ``threatexchange.extensions.vpdq.manifest``)."""

_SIGNAL_NAME = {
    "pdq": PdqSignal.get_name(),
    "md5": VideoMD5Signal.get_name(),
    "sha256": VideoSHA256Signal.get_name(),
    "vpdq": VPDQ_SIGNAL_NAME,
}
"""Our algorithm -> pytx signal type name. MD5 and SHA-256 are of file bytes: pytx has them
only as video signals (a photo's exact copy is caught by its PDQ anyway)."""

WHY_NO_REPORTS = (
    "ncii_exchange does not report opinions or sightings back: by design the hub never learns "
    "what a platform matched (the feed is one-way; see README 'Using it from HMA or "
    "python-threatexchange'). Act on the match locally."
)


class ReportRefusedError(NotImplementedError):
    """report_opinion / report_seen: refused on purpose (pytx callers catch NotImplementedError)."""


class CollabConfigError(UsageError, CommandError):
    """An incomplete or malformed collaboration config (the pytx CLI prints it, exit 2)."""

    def __init__(self, message: str) -> None:
        CommandError.__init__(self, message, 2)


class StateMismatchError(PartnerError):
    """pytx's stored checkpoint does not belong to the partner folder's verified history."""

    exit_code = 2


@dataclass
class NCIICollabConfig(CollaborationConfigBase):
    """One collaboration: which hub, which log key, which partner folder (``ncii-partner init``).

    Every field has a default so the pytx CLI accepts ``--json``; :meth:`NCIIExchange.for_collab`
    refuses an incomplete config with a message.
    """

    hub: str = field(default="", metadata={"help": "the hub's URL, e.g. https://hub.example.org"})
    log_key: str = field(
        default="", metadata={"help": "the log's verifier key (ncii-hub keys prints it)"}
    )
    partner_dir: str = field(
        default="",
        metadata={"help": "the partner's data folder (made by ncii-partner init; 0700)"},
    )
    witness_keys: list[str] = field(
        default_factory=list,
        metadata={"help": "witness verifier keys whose cosignatures count toward --quorum"},
    )
    quorum: t.Optional[int] = field(  # noqa: UP045 - the pytx CLI needs typing.Union here
        default=None,
        metadata={"help": "how many of the witness keys must cosign (default: all given)"},
    )


@dataclass
class NCIICheckpoint(state.FetchCheckpointBase):
    """Where pytx's copy stands: the verified cursor and the checkpoint (size, root) behind it.

    ``cursor`` log entries have been handed to pytx; ``size`` and ``root`` (hex) are the
    verified, consistent checkpoint of the sync that produced them; ``synced_at`` (unix time,
    never decreasing) is what pytx and HMA show as progress; ``log_key`` names the log.
    """

    cursor: int
    size: int
    root: str
    synced_at: int
    log_key: str = ""
    """The verifier key of the log this history belongs to ("" in checkpoints written before
    it was added): a checkpoint of another log is refused rather than continued."""

    def is_stale(self) -> bool:
        return False  # consistency proofs extend any old checkpoint: it never expires

    def get_progress_timestamp(self) -> t.Optional[int]:  # noqa: UP045 - pytx's signature
        return self.synced_at


@dataclass
class NCIISignalMetadata(state.FetchedSignalMetadata):
    """One live addition of the log: its index, algorithm and pytx signal string.

    Every entry is a hash a person asked platforms to block: a positive opinion tagged
    ``ncii``, never owned by this platform.
    """

    log_index: int
    algorithm: str
    signal: str
    quality: t.Optional[int] = None  # noqa: UP045 - kept plain for pickles read elsewhere

    def get_as_opinions(self) -> t.Sequence[state.SignalOpinion]:
        return [state.SignalOpinion(False, state.SignalOpinionCategory.POSITIVE_CLASS, {NCII_TAG})]

    def __repr__(self) -> str:
        # Hash values never reach logs or tracebacks (pytx logs records it cannot use).
        return f"NCIISignalMetadata(log_index={self.log_index}, algorithm={self.algorithm!r})"


Delta = state.FetchDelta[int, NCIISignalMetadata, NCIICheckpoint]


class NCIIExchange(
    SignalExchangeAPI[NCIICollabConfig, NCIICheckpoint, NCIISignalMetadata, int, NCIISignalMetadata]
):
    """The ``ncii_exchange`` signal exchange: records keyed by log index (deletes by index)."""

    def __init__(
        self,
        collab: NCIICollabConfig,
        *,
        clock: t.Callable[[], float] = time.time,
        partner_options: t.Optional[dict[str, t.Any]] = None,  # noqa: UP045
    ) -> None:
        self.collab = collab
        self.clock = clock
        self.partner_options = dict(partner_options or {})
        self.last_summary: SyncSummary | None = None

    # -- pytx's class-level API

    @classmethod
    def get_name(cls) -> str:
        return EXCHANGE_NAME

    @staticmethod
    def get_config_cls() -> type[NCIICollabConfig]:
        return NCIICollabConfig

    @staticmethod
    def get_checkpoint_cls() -> type[NCIICheckpoint]:
        return NCIICheckpoint

    @staticmethod
    def get_record_cls() -> type[NCIISignalMetadata]:
        return NCIISignalMetadata

    @classmethod
    def for_collab(cls, collab: NCIICollabConfig) -> "NCIIExchange":
        """Check the config offline (URL, key, folder, quorum) and return the exchange."""
        if not isinstance(collab, NCIICollabConfig):
            raise CollabConfigError(f"{EXCHANGE_NAME} needs an NCIICollabConfig")
        check_config(collab)
        return cls(collab)

    @classmethod
    def naive_convert_to_signal_type(
        cls,
        signal_types: t.Sequence[type[SignalType]],
        collab: NCIICollabConfig,
        fetched: t.Mapping[int, NCIISignalMetadata],
    ) -> dict[type[SignalType], dict[str, NCIISignalMetadata]]:
        """Records -> {signal type: {signal string: record}} for the types pytx has loaded.

        vPDQ records only appear once pytx's vpdq extension is loaded (they are kept in the
        fetched state either way, so adding the extension later needs no refetch).
        """
        by_name = {st.get_name(): st for st in signal_types}
        out: dict[type[SignalType], dict[str, NCIISignalMetadata]] = {}
        for record in fetched.values():
            if record is None:
                continue
            s_type = by_name.get(_SIGNAL_NAME.get(record.algorithm, ""))
            if s_type is None:
                continue
            try:
                s_type.validate_signal_str(record.signal)
            except ValueError:
                log.warning("log entry %d is not a valid %s signal", record.log_index, s_type)
                continue
            out.setdefault(s_type, {})[record.signal] = record
        return out

    # -- fetch

    def fetch_iter(
        self,
        supported_signal_types: t.Sequence[type[SignalType]],
        checkpoint: t.Optional[NCIICheckpoint],  # noqa: UP045
    ) -> t.Iterator[Delta]:
        """Verified sync, then the store's changes since ``checkpoint`` in chunks.

        Any verification failure raises (a :class:`partner_sdk.errors.PartnerError`) before
        anything is yielded: pytx keeps its last good state and checkpoint. A feed that lags
        its verified checkpoint for longer than the grace period yields what did verify and
        then raises :class:`~partner_sdk.errors.FeedLagError`.
        """
        collab = self.collab
        check_config(collab)
        lag: FeedLagError | None = None
        with Partner(
            Path(collab.partner_dir),
            collab.hub,
            collab.log_key,
            witnesses=collab.witness_keys or None,
            quorum=collab.quorum,
            **self.partner_options,
        ) as partner:
            try:
                self.last_summary = partner.sync()
            except FeedLagError as exc:
                lag, self.last_summary = exc, exc.summary
            summary = self.last_summary
            log.info(
                "%s %s: verified checkpoint %d, cursor %d (+%d additions, %d withdrawn)",
                EXCHANGE_NAME,
                collab.name,
                summary.checkpoint_size,
                summary.cursor,
                summary.additions,
                summary.withdrawn,
            )
            yield from self._deltas(partner.store, checkpoint, supported_signal_types)
        if lag is not None:
            raise lag

    def _deltas(
        self,
        store: Store,
        checkpoint: t.Optional[NCIICheckpoint],  # noqa: UP045
        signal_types: t.Sequence[type[SignalType]],
    ) -> t.Iterator[Delta]:
        st = store.state()
        trusted = st.checkpoint
        if trusted is None:  # nothing verified yet (an empty log)
            size, root = 0, ""
        else:
            size, root = trusted.size, trusted.root.hex()
        end = st.cursor
        start = 0 if checkpoint is None else checkpoint.cursor
        log_key = st.log_key or ""
        if checkpoint is not None:
            _check_continuity(checkpoint, end, size, root, log_key)
        now = int(self.clock())
        synced_at = now if checkpoint is None else max(now, checkpoint.synced_at)
        vpdq_loaded = any(s.get_name() == VPDQ_SIGNAL_NAME for s in signal_types)
        vpdq_seen = 0
        pos = start
        while True:
            stop = min(end, pos + CHUNK)
            updates, videos = _changes(store, pos, stop)
            vpdq_seen += videos
            yield state.FetchDelta(updates, NCIICheckpoint(stop, size, root, synced_at, log_key))
            pos = stop
            if pos >= end:
                break
        if vpdq_seen and not vpdq_loaded:
            log.warning(
                "%s: %d vPDQ video entries were fetched but are not matched: pytx's vpdq "
                "extension is not loaded (threatexchange config extensions add "
                "threatexchange.extensions.vpdq.manifest; needs the vpdq package). They stay "
                "in the fetched state and match once it is added.",
                EXCHANGE_NAME,
                vpdq_seen,
            )

    # -- reports back: refused on purpose

    def report_opinion(
        self, s_type: type[SignalType], signal: str, opinion: state.SignalOpinion
    ) -> None:
        raise ReportRefusedError(WHY_NO_REPORTS)

    def report_seen(self, *args: object, **kwargs: object) -> None:
        raise ReportRefusedError(WHY_NO_REPORTS)


def check_config(collab: NCIICollabConfig) -> None:
    """Refuse an incomplete or malformed config with a message that names the field."""
    name = collab.name
    for text_field in ("hub", "log_key", "partner_dir"):
        if not isinstance(getattr(collab, text_field, None), str):
            raise CollabConfigError(f"collab {name}: {text_field} must be a string")
    if not collab.hub.startswith(("http://", "https://")):
        raise CollabConfigError(f"collab {name}: hub must be the hub's http:// or https:// URL")
    try:
        parse_verifier_key(collab.log_key.strip())
    except CryptoError:
        raise CollabConfigError(
            f"collab {name}: log_key is not a note verifier key (ncii-hub keys prints it)"
        ) from None
    if not collab.partner_dir:
        raise CollabConfigError(
            f"collab {name}: partner_dir must name the folder of ncii-partner init"
        )
    directory = Path(collab.partner_dir)
    if not (directory / "partner-public.json").is_file():
        raise CollabConfigError(
            f"collab {name}: {directory} is not a partner folder (run ncii-partner init "
            "--dir DIR and register it with the hub first)"
        )
    if not isinstance(collab.witness_keys, list) or not all(
        isinstance(k, str) for k in collab.witness_keys
    ):
        raise CollabConfigError(f"collab {name}: witness_keys must be a list of verifier keys")
    quorum = collab.quorum
    if quorum is not None and (
        isinstance(quorum, bool)
        or not isinstance(quorum, int)
        or not 0 <= quorum <= len(collab.witness_keys)
    ):
        raise CollabConfigError(
            f"collab {name}: quorum must be from 0 to the number of witness_keys"
        )


def _check_continuity(
    checkpoint: NCIICheckpoint, cursor: int, size: int, root: str, log_key: str
) -> None:
    """pytx's checkpoint must be a point of the partner store's verified history."""
    numbers = (checkpoint.cursor, checkpoint.size, checkpoint.synced_at)
    if not all(type(n) is int and n >= 0 for n in numbers) or not isinstance(checkpoint.root, str):
        raise StateMismatchError(
            "the fetched state's checkpoint is malformed (a cursor, size or time that is not a "
            "whole number >= 0, or a root that is not text). Run `threatexchange fetch --clear` "
            "(or clear the exchange in HMA) and fetch again"
        )
    theirs = getattr(checkpoint, "log_key", "")
    if not isinstance(theirs, str) or (theirs and log_key and theirs != log_key):
        raise StateMismatchError(
            "the fetched state belongs to another log (its checkpoint names another log key "
            "than the partner folder's): the collaboration was pointed at another hub. Run "
            "`threatexchange fetch --clear` (or clear the exchange in HMA) and fetch again"
        )
    if checkpoint.cursor > cursor or checkpoint.size > size:
        raise StateMismatchError(
            f"the fetched state is ahead of the partner folder (cursor {checkpoint.cursor} > "
            f"{cursor} or size {checkpoint.size} > {size}): the folder was replaced or reset. "
            "Run `threatexchange fetch --clear` (or clear the exchange in HMA) and fetch again"
        )
    if checkpoint.size == size and checkpoint.root != root:
        raise CheckpointForkError(
            "the partner store's verified checkpoint has the size of the fetched state's but "
            "another root: two different logs; clear the fetched state after checking why"
        )


def _changes(
    store: Store, start: int, end: int
) -> tuple[dict[int, NCIISignalMetadata | None], int]:
    """Updates for log indexes [start, end): live additions, and deletes for withdrawals.

    A withdrawn addition keeps its row without its hash (specs/partner-store.md section 3),
    so withdrawals are found by the tombstones in the range (``withdraws``) and deleted by
    log index, whichever fetch delivered the addition.
    """
    conn = store.conn
    updates: dict[int, NCIISignalMetadata | None] = {}
    videos = 0
    frames: dict[int, list[str]] = {}
    for index, number, quality, digest, ts in conn.execute(
        "SELECT log_index, frame, quality, hash, timestamp FROM vpdq_frames "
        "WHERE log_index >= ? AND log_index < ? ORDER BY log_index, frame",
        (start, end),
    ):
        del number
        frames.setdefault(int(index), []).append(f"{bytes(digest).hex()},{int(quality)},{ts:.3f}")
    for index, kind, algorithm, digest, quality, withdrawn, withdraws in conn.execute(
        "SELECT log_index, kind, algorithm, hash, quality, withdrawn, withdraws FROM entries "
        "WHERE log_index >= ? AND log_index < ? ORDER BY log_index",
        (start, end),
    ):
        if kind == 2:
            updates[int(withdraws)] = None
            continue
        if withdrawn:
            continue
        if algorithm == "vpdq":
            listed = frames.get(int(index))
            if not listed:
                continue
            videos += 1
            signal = json.dumps(listed)
        elif digest is None:
            continue
        else:
            signal = bytes(digest).hex()
        updates[int(index)] = NCIISignalMetadata(
            int(index), str(algorithm), signal, None if quality is None else int(quality)
        )
    return updates, videos


TX_MANIFEST = ThreatExchangeExtensionManifest(apis=(NCIIExchange,))
"""What ``threatexchange config extensions add partner_sdk.pytx`` loads."""
