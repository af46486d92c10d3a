"""SQL tables of the hub (specs/hub-storage.md section 3).

No column holds a hash value, a salt, or any key able to decrypt one: entry bodies and salts are
ciphertexts under per-entry keys, and feed batches under per-batch keys, that live only in the
key store outside the database (hub.vault); tombstones are under master.key (a file). Leaf data
(version, kind, commitment) is public anyway once logged.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Double,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    text,
)
from sqlmodel import Field, SQLModel

__all__ = [
    "AdmissionBucketRow",
    "CaseRow",
    "EntryRow",
    "FeedBatchRow",
    "FeedRedactionRow",
    "FeedStateRow",
    "FeedWrapRow",
    "HeldEntryRow",
    "HeldSubmissionRow",
    "LogStateRow",
    "PartnerNonceRow",
    "PartnerRow",
    "ReplayRow",
    "SubmitterRow",
    "WitnessCheckpointRow",
    "WitnessCosignatureRow",
    "WitnessStatusRow",
    "table_of",
]


class CaseRow(SQLModel, table=True):
    """One case: its public key, whether it was withdrawn as a whole, how many entries."""

    __tablename__ = "cases"
    # The case puzzle counts recently created cases (hub.puzzle); created by hub.db.engine
    # for databases made before this index existed.
    __table_args__ = (Index("ix_cases_created", "created_at"),)

    case_id: str = Field(sa_column=Column(String(16), primary_key=True))
    public_key: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    withdrawn: bool = Field(default=False, nullable=False)
    entry_count: int = Field(default=0, sa_column=Column(Integer, nullable=False))
    created_at: int = Field(sa_column=Column(BigInteger, nullable=False))


class EntryRow(SQLModel, table=True):
    """One log entry (addition or tombstone). ``log_index`` is NULL while pending.

    ``seq`` orders pending entries (acceptance order); ``leaf_data`` is NULL only for a
    tombstone not yet sequenced (its body names a log index the sequencer resolves).
    """

    __tablename__ = "entries"
    __table_args__ = (
        Index("ix_entries_pending", "log_index", "seq"),
        Index("ix_entries_case", "case_id", "seq"),
        # Proofs by leaf hash look up sequenced entries only, so pending ones stay out of
        # this index: a leaf hash is random, and each one inserted at intake dirtied a page of
        # its own in every group commit (the sequencer adds it when it assigns the index).
        Index(
            "ix_entries_logged_leaf",
            "leaf_hash",
            sqlite_where=text("log_index IS NOT NULL"),
            postgresql_where=text("log_index IS NOT NULL"),
        ),
    )

    seq: int | None = Field(
        default=None,
        sa_column=Column(
            BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
        ),
    )
    entry_id: str = Field(sa_column=Column(String(32), nullable=False, unique=True))
    case_id: str = Field(sa_column=Column(String(16), nullable=False))
    kind: int = Field(sa_column=Column(Integer, nullable=False))
    leaf_data: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    leaf_hash: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    ciphertext: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    log_index: int | None = Field(
        default=None, sa_column=Column(BigInteger, nullable=True, unique=True)
    )
    withdraws: str | None = Field(default=None, sa_column=Column(String(32), nullable=True))
    withdrawn_by: str | None = Field(default=None, sa_column=Column(String(32), nullable=True))
    created_at: int = Field(sa_column=Column(BigInteger, nullable=False))


class ReplayRow(SQLModel, table=True):
    """A processed envelope: its replay key, digest of its exact bytes, and the answer given."""

    __tablename__ = "replays"

    replay_key: bytes = Field(sa_column=Column(LargeBinary, primary_key=True))
    envelope_sha256: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    status: int = Field(sa_column=Column(Integer, nullable=False))
    response: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    expires_at: int = Field(sa_column=Column(BigInteger, nullable=False, index=True))


class LogStateRow(SQLModel, table=True):
    """The single row (id 1) that says how far the log is sequenced and published."""

    __tablename__ = "log_state"

    id: int = Field(sa_column=Column(Integer, primary_key=True))
    size: int = Field(sa_column=Column(BigInteger, nullable=False))
    state: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    published_size: int = Field(sa_column=Column(BigInteger, nullable=False))
    published_state: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    checkpoint: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class PartnerRow(SQLModel, table=True):
    """A registered partner (specs/partner-api.md section 3): public keys only.

    ``rewrap`` asks the feed sealer to (re)create this partner's wraps for every batch (set by
    ``partner add`` and ``partner rotate``); ``acked`` is the log position it acknowledged.
    """

    __tablename__ = "partners"

    name: str = Field(sa_column=Column(String(64), primary_key=True))
    request_key: bytes = Field(sa_column=Column(LargeBinary, nullable=False, unique=True))
    feed_key: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    revoked: bool = Field(default=False, nullable=False)
    key_version: int = Field(default=1, sa_column=Column(Integer, nullable=False))
    rewrap: bool = Field(default=True, nullable=False)
    acked: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    created_at: int = Field(sa_column=Column(BigInteger, nullable=False))
    changed_at: int = Field(sa_column=Column(BigInteger, nullable=False))


class PartnerNonceRow(SQLModel, table=True):
    """A partner request nonce seen (key || nonce), kept until its timestamp leaves the window."""

    __tablename__ = "partner_nonces"

    replay_key: bytes = Field(sa_column=Column(LargeBinary, primary_key=True))
    expires_at: int = Field(sa_column=Column(BigInteger, nullable=False, index=True))


class FeedBatchRow(SQLModel, table=True):
    """One sealed feed batch [start, end) and its ciphertext file; its key is in the key store.

    ``file`` is the lowercase hex SHA-256 of the sealed bytes (DATA/feed/<file>); ``version``
    grows by one at each re-seal (redaction after a withdrawal). The batch key of
    (start, version) lives only in the key store (hub.vault), never in the database.
    """

    __tablename__ = "feed_batches"

    start: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    end: int = Field(sa_column=Column(BigInteger, nullable=False, unique=True))
    version: int = Field(sa_column=Column(Integer, nullable=False))
    file: str = Field(sa_column=Column(String(64), nullable=False))
    size: int = Field(sa_column=Column(BigInteger, nullable=False))
    sealed_at: int = Field(sa_column=Column(BigInteger, nullable=False))


class FeedWrapRow(SQLModel, table=True):
    """The batch key of one batch wrapped (HPKE) for one partner's feed key."""

    __tablename__ = "feed_wraps"

    partner: str = Field(sa_column=Column(String(64), primary_key=True))
    start: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    version: int = Field(sa_column=Column(Integer, nullable=False))
    wrap: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class FeedRedactionRow(SQLModel, table=True):
    """An addition sealed as redacted (withdrawn), and the tombstone's log index."""

    __tablename__ = "feed_redactions"

    log_index: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    tombstone_index: int = Field(sa_column=Column(BigInteger, nullable=False))


class FeedStateRow(SQLModel, table=True):
    """The single row (id 1): log position up to which tombstones were checked for re-seals."""

    __tablename__ = "feed_state"

    id: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    scanned: int = Field(sa_column=Column(BigInteger, nullable=False))


class WitnessCheckpointRow(SQLModel, table=True):
    """A log-signed checkpoint sent to witnesses, kept while cosignatures for it are served."""

    __tablename__ = "witness_checkpoints"

    size: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    note: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class WitnessCosignatureRow(SQLModel, table=True):
    """One witness's verified cosignature line for the checkpoint of one size."""

    __tablename__ = "witness_cosignatures"

    size: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    witness_key: str = Field(sa_column=Column(String(512), primary_key=True))
    line: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    cosigned_at: int = Field(sa_column=Column(BigInteger, nullable=False))


class WitnessStatusRow(SQLModel, table=True):
    """What the hub knows of one witness: its size for this log, last success and error."""

    __tablename__ = "witness_status"

    witness_key: str = Field(sa_column=Column(String(512), primary_key=True))
    known_size: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    cosigned_size: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    cosigned_at: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    last_status: int | None = Field(default=None, sa_column=Column(Integer, nullable=True))
    last_error: str | None = Field(default=None, sa_column=Column(String(500), nullable=True))
    failures: int = Field(default=0, sa_column=Column(Integer, nullable=False))
    updated_at: int = Field(sa_column=Column(BigInteger, nullable=False))


class AdmissionBucketRow(SQLModel, table=True):
    """Token buckets of one admission key (hub/admission.py, specs/hub-api.md section 6.2).

    ``tag`` is an HMAC-SHA256 under the hub's admission key of an address prefix (never the
    address), or a fixed tag for the whole hub, or of a trusted submitter's name. Tokens are
    the state at ``stamp`` (seconds); the ``seen_*`` counters are the history a reviewer sees.
    The row is deleted after ``expires_at``.
    """

    __tablename__ = "admission_buckets"

    tag: bytes = Field(sa_column=Column(LargeBinary, primary_key=True))
    hashes: float = Field(sa_column=Column(Double, nullable=False))
    cases: float = Field(sa_column=Column(Double, nullable=False))
    held: float = Field(sa_column=Column(Double, nullable=False))
    stamp: float = Field(sa_column=Column(Double, nullable=False))
    first_seen: int = Field(sa_column=Column(BigInteger, nullable=False))
    seen_hashes: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    seen_cases: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    held_hashes: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    expires_at: int = Field(sa_column=Column(BigInteger, nullable=False, index=True))


class SubmitterRow(SQLModel, table=True):
    """A trusted submitter (a helpline): its Ed25519 public key and its own limits (NULL: the
    hub's ``submitter_*`` defaults)."""

    __tablename__ = "submitters"

    name: str = Field(sa_column=Column(String(64), primary_key=True))
    public_key: bytes = Field(sa_column=Column(LargeBinary, nullable=False, unique=True))
    revoked: bool = Field(default=False, sa_column=Column(Boolean, nullable=False))
    hashes_per_hour: float | None = Field(default=None, sa_column=Column(Double, nullable=True))
    hashes_burst: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    cases_per_day: float | None = Field(default=None, sa_column=Column(Double, nullable=True))
    cases_burst: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    created_at: int = Field(sa_column=Column(BigInteger, nullable=False))
    changed_at: int = Field(sa_column=Column(BigInteger, nullable=False))


class HeldSubmissionRow(SQLModel, table=True):
    """A submission held for review (hub/review.py): counts and timing only, never a hash.

    ``state`` is held, released or rejected. The address history is copied at hold time
    (bucket rows expire); ``address_tag`` is the keyed hash, never the address.
    """

    __tablename__ = "held_submissions"

    review_id: str = Field(sa_column=Column(String(32), primary_key=True))
    case_id: str = Field(sa_column=Column(String(16), nullable=False, index=True))
    state: str = Field(sa_column=Column(String(16), nullable=False, index=True))
    reason: str = Field(sa_column=Column(String(32), nullable=False))
    new_case: bool = Field(sa_column=Column(Boolean, nullable=False))
    entry_count: int = Field(sa_column=Column(Integer, nullable=False))
    address_tag: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    submitter: str | None = Field(default=None, sa_column=Column(String(64), nullable=True))
    addr_seen_hashes: int = Field(sa_column=Column(BigInteger, nullable=False))
    addr_seen_cases: int = Field(sa_column=Column(BigInteger, nullable=False))
    addr_held_hashes: int = Field(sa_column=Column(BigInteger, nullable=False))
    addr_first_seen: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    case_entries_before: int = Field(sa_column=Column(Integer, nullable=False))
    held_at: int = Field(sa_column=Column(BigInteger, nullable=False))
    decided_at: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))


class HeldEntryRow(SQLModel, table=True):
    """An addition held for review: stored like a pending entry (sealed under its own key in
    the key store) but outside ``entries``, so the sequencer never sees it. Released entries
    move to ``entries``; rejected or withdrawn ones keep only id and leaf hash (for the
    person's status) and their keys are erased like a withdrawal's."""

    __tablename__ = "held_entries"
    __table_args__ = (Index("ix_held_entries_case", "case_id", "position"),)

    entry_id: str = Field(sa_column=Column(String(32), primary_key=True))
    review_id: str = Field(sa_column=Column(String(32), nullable=False, index=True))
    case_id: str = Field(sa_column=Column(String(16), nullable=False))
    position: int = Field(sa_column=Column(BigInteger, nullable=False))
    state: str = Field(sa_column=Column(String(16), nullable=False))
    leaf_data: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    leaf_hash: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    ciphertext: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    created_at: int = Field(sa_column=Column(BigInteger, nullable=False))


def table_of(model: type[SQLModel]) -> Table:
    """The SQLAlchemy Core table of a model (Core statements keep the hot paths lean)."""
    table = model.__table__  # type: ignore[attr-defined]
    assert isinstance(table, Table)
    return table
