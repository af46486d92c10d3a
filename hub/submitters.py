"""Trusted submitters: helplines whose Ed25519 key the operator registered, with own limits.

Why: a helpline submits for many people from one office address; charged to that address it
would be held after a thousand hashes. A submission endorsed by a registered key (header
``NCII-Submitter``, crypto/submitter.py, specs/submitter.md) is charged to the
submitter's bucket instead. Public keys only are stored; administered with
``ncii-hub submitter add|list|revoke`` against the database the running hub uses.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from hub.admission import Bucket
from hub.db.engine import read_connection
from hub.db.models import SubmitterRow, table_of

__all__ = [
    "Submitter",
    "SubmitterError",
    "SubmitterRegistry",
    "check_submitter_name",
    "parse_public_key",
]

SUBMITTERS = table_of(SubmitterRow)
_NAME_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


class SubmitterError(ValueError):
    """A submitter command cannot be done; the message says why and what to do."""


def check_submitter_name(name: str) -> str:
    """Names: 1-64 of ``a-z 0-9 . _ -``, starting with a letter or digit."""
    if not isinstance(name, str) or _NAME_RE.fullmatch(name) is None:
        raise SubmitterError(
            "a submitter name is 1-64 characters of a-z, 0-9, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def parse_public_key(text: str) -> bytes:
    """An Ed25519 public key as 43 characters of unpadded base64url (what
    ``ncii-client submitter-key new`` prints)."""
    text = text.strip()
    try:
        raw = base64.urlsafe_b64decode(text + "=")
    except (binascii.Error, ValueError):
        raw = b""
    if (
        len(text) != 43
        or len(raw) != 32
        or base64.urlsafe_b64encode(raw).rstrip(b"=") != (text.encode())
    ):
        raise SubmitterError(
            "--public-key must be 43 characters of unpadded base64url (the line "
            "'ncii-client submitter-key new' prints)"
        )
    try:
        import nacl.signing

        nacl.signing.VerifyKey(raw)
    except (ValueError, TypeError):
        raise SubmitterError("--public-key is not an Ed25519 public key") from None
    return raw


@dataclass(frozen=True, slots=True)
class Submitter:
    """A registry row; ``None`` limits mean the hub's ``submitter_*`` defaults."""

    name: str
    public_key: bytes
    revoked: bool
    hashes_per_hour: float | None
    hashes_burst: int | None
    cases_per_day: float | None
    cases_burst: int | None
    created_at: int
    changed_at: int

    def bucket(self, default: Bucket) -> Bucket:
        """This submitter's limits, its own where set, else the hub's defaults."""
        return Bucket(
            default.hashes_rate if self.hashes_per_hour is None else self.hashes_per_hour / 3600,
            default.hashes_burst if self.hashes_burst is None else self.hashes_burst,
            default.cases_rate if self.cases_per_day is None else self.cases_per_day / 86400,
            default.cases_burst if self.cases_burst is None else self.cases_burst,
        )

    @property
    def key_text(self) -> str:
        return base64.urlsafe_b64encode(self.public_key).rstrip(b"=").decode()


_COLUMNS = (
    SUBMITTERS.c.name,
    SUBMITTERS.c.public_key,
    SUBMITTERS.c.revoked,
    SUBMITTERS.c.hashes_per_hour,
    SUBMITTERS.c.hashes_burst,
    SUBMITTERS.c.cases_per_day,
    SUBMITTERS.c.cases_burst,
    SUBMITTERS.c.created_at,
    SUBMITTERS.c.changed_at,
)


def _row(r: Sequence[Any]) -> Submitter:
    v = tuple(r)
    return Submitter(
        str(v[0]),
        bytes(v[1]),
        bool(v[2]),
        None if v[3] is None else float(v[3]),
        None if v[4] is None else int(v[4]),
        None if v[5] is None else float(v[5]),
        None if v[6] is None else int(v[6]),
        int(v[7]),
        int(v[8]),
    )


class SubmitterRegistry:
    """The ``submitters`` table."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add(
        self,
        name: str,
        public_key: bytes,
        now: int,
        *,
        hashes_per_hour: float | None = None,
        hashes_burst: int | None = None,
        cases_per_day: float | None = None,
        cases_burst: int | None = None,
    ) -> None:
        check_submitter_name(name)
        for what, value in (
            ("--hashes-per-hour", hashes_per_hour),
            ("--hashes-burst", hashes_burst),
            ("--cases-per-day", cases_per_day),
            ("--cases-burst", cases_burst),
        ):
            if value is not None and not 0 < value <= 1e9:
                raise SubmitterError(f"{what} must be a positive number up to 10^9")
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    insert(SUBMITTERS).values(
                        name=name,
                        public_key=public_key,
                        revoked=False,
                        hashes_per_hour=hashes_per_hour,
                        hashes_burst=hashes_burst,
                        cases_per_day=cases_per_day,
                        cases_burst=cases_burst,
                        created_at=now,
                        changed_at=now,
                    )
                )
        except IntegrityError:
            raise SubmitterError(
                f"a submitter named {name!r} or with this public key is already registered "
                "(a revoked one too: pick another name and make a new key)"
            ) from None

    def revoke(self, name: str, now: int) -> None:
        with self.engine.begin() as conn:
            result = conn.execute(
                update(SUBMITTERS)
                .where(SUBMITTERS.c.name == name)
                .values(revoked=True, changed_at=now)
            )
        if result.rowcount != 1:
            raise SubmitterError(f"no submitter named {name!r}; see 'ncii-hub submitter list'")

    def all(self) -> list[Submitter]:
        with read_connection(self.engine) as conn:
            return [_row(r) for r in conn.execute(select(*_COLUMNS).order_by(SUBMITTERS.c.name))]

    def by_key(self, public_key: bytes) -> Submitter | None:
        """The submitter registered with this public key (revoked ones too)."""
        with read_connection(self.engine) as conn:
            row = conn.execute(
                select(*_COLUMNS).where(SUBMITTERS.c.public_key == public_key)
            ).first()
        if row is None:
            return None
        found = _row(row)
        # The lookup key is public; compared again in constant time all the same.
        return found if hmac.compare_digest(found.public_key, public_key) else None
