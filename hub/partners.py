"""Partner registry: public keys of vetted partners, their state, nonces and acknowledgements.

Why a registry of public keys only: partners authenticate every request with their Ed25519
key (no bearer secret the hub could leak) and receive batch keys wrapped to their X25519 key.
Administered from the command line (``ncii-hub partner ...``) against the same database the
running hub uses; the feed sealer picks changes up in its next round (specs/partner-api.md).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from crypto import boundedjson
from crypto.errors import JsonBoundsError, KeyFormatError
from crypto.feed import load_recipient_public
from hub.db.engine import read_connection
from hub.db.models import FeedWrapRow, PartnerNonceRow, PartnerRow, table_of

__all__ = [
    "PARTNER_KEYS_VERSION",
    "Partner",
    "PartnerKeys",
    "PartnerRegistry",
    "RegistryError",
    "check_partner_name",
    "parse_partner_keys",
]

PARTNERS = table_of(PartnerRow)
NONCES = table_of(PartnerNonceRow)
WRAPS = table_of(FeedWrapRow)
PARTNER_KEYS_VERSION = 1
_NAME_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_MAX_KEYS_FILE = 4096


class RegistryError(ValueError):
    """A registry command cannot be done; the message says why and what to do."""


def check_partner_name(name: str) -> str:
    """Partner names: 1-64 of ``a-z 0-9 . _ -``, starting with a letter or digit."""
    if not isinstance(name, str) or _NAME_RE.fullmatch(name) is None:
        raise RegistryError(
            "a partner name is 1-64 characters of a-z, 0-9, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def _b64url_key(value: object, what: str) -> bytes:
    if not isinstance(value, str) or len(value) != 43:
        raise RegistryError(f"{what} must be 43 characters of unpadded base64url")
    try:
        raw = base64.urlsafe_b64decode(value + "=")
    except (binascii.Error, ValueError):
        raise RegistryError(f"{what} is not base64url") from None
    if len(raw) != 32 or base64.urlsafe_b64encode(raw).rstrip(b"=").decode() != value:
        raise RegistryError(f"{what} is not canonical base64url of 32 bytes")
    return raw


@dataclass(frozen=True, slots=True)
class PartnerKeys:
    """The public part a partner sends to the hub operator (partner-public.json)."""

    name: str
    request_key: bytes  # Ed25519 public key (32)
    feed_key: bytes  # X25519 public key (32)


def parse_partner_keys(data: bytes) -> PartnerKeys:
    """Strictly parse partner-public.json (specs/partner-api.md section 2)."""
    if len(data) > _MAX_KEYS_FILE:
        raise RegistryError("the keys file is too large to be a partner-public.json")
    try:
        value = boundedjson.loads(data, max_bytes=_MAX_KEYS_FILE, max_depth=2)
    except JsonBoundsError:  # too large or deep, not UTF-8, not JSON
        raise RegistryError("the keys file is not UTF-8 JSON (use partner-public.json)") from None
    fields = {"v", "name", "request_key", "feed_key"}
    if not isinstance(value, dict) or set(value) != fields:
        raise RegistryError(f"the keys file must be a JSON object with exactly {sorted(fields)}")
    if value["v"] != PARTNER_KEYS_VERSION or isinstance(value["v"], bool):
        raise RegistryError("unsupported keys file version (expected v 1)")
    name = check_partner_name(value["name"])
    request_key = _b64url_key(value["request_key"], "request_key")
    feed_key = _b64url_key(value["feed_key"], "feed_key")
    try:
        import nacl.signing

        nacl.signing.VerifyKey(request_key)
        load_recipient_public(feed_key)
    except (KeyFormatError, ValueError):
        raise RegistryError("the keys file holds an invalid public key") from None
    if feed_key == bytes(32):
        raise RegistryError("feed_key is the all-zero X25519 point")
    return PartnerKeys(name, request_key, feed_key)


@dataclass(frozen=True, slots=True)
class Partner:
    """A registry row as the API and the CLI see it."""

    name: str
    request_key: bytes
    feed_key: bytes
    revoked: bool
    key_version: int
    rewrap: bool
    acked: int
    created_at: int
    changed_at: int


_COLUMNS = (
    PARTNERS.c.name,
    PARTNERS.c.request_key,
    PARTNERS.c.feed_key,
    PARTNERS.c.revoked,
    PARTNERS.c.key_version,
    PARTNERS.c.rewrap,
    PARTNERS.c.acked,
    PARTNERS.c.created_at,
    PARTNERS.c.changed_at,
)


def _partner(row: Sequence[Any]) -> Partner:
    r = row
    return Partner(
        str(r[0]),
        bytes(r[1]),
        bytes(r[2]),
        bool(r[3]),
        int(r[4]),
        bool(r[5]),
        int(r[6]),
        int(r[7]),
        int(r[8]),
    )


class PartnerRegistry:
    """Registry operations; each method is one transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add(self, name: str, keys: PartnerKeys, now: int) -> Partner:
        """Register a partner; the sealer then wraps every existing batch for it."""
        check_partner_name(name)
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    insert(PARTNERS).values(
                        name=name,
                        request_key=keys.request_key,
                        feed_key=keys.feed_key,
                        revoked=False,
                        key_version=1,
                        rewrap=True,
                        acked=0,
                        created_at=now,
                        changed_at=now,
                    )
                )
        except IntegrityError:
            raise RegistryError(
                f"partner {name!r} or its request key is already registered "
                "(use 'partner rotate' to change keys)"
            ) from None
        found = self.get(name)
        assert found is not None
        return found

    def get(self, name: str) -> Partner | None:
        with read_connection(self.engine) as conn:
            row = conn.execute(select(*_COLUMNS).where(PARTNERS.c.name == name)).first()
        return None if row is None else _partner(row)

    def by_request_key(self, key: bytes) -> Partner | None:
        with read_connection(self.engine) as conn:
            row = conn.execute(select(*_COLUMNS).where(PARTNERS.c.request_key == key)).first()
        return None if row is None else _partner(row)

    def all(self) -> list[tuple[Partner, int]]:
        """Every partner with its number of wraps (sorted by name)."""
        counts = (
            select(WRAPS.c.partner, func.count().label("n")).group_by(WRAPS.c.partner).subquery()
        )
        with read_connection(self.engine) as conn:
            rows = conn.execute(
                select(*_COLUMNS, func.coalesce(counts.c.n, 0))
                .select_from(PARTNERS.outerjoin(counts, counts.c.partner == PARTNERS.c.name))
                .order_by(PARTNERS.c.name)
            ).all()
        return [(_partner(r[:9]), int(r[9])) for r in rows]

    def revoke(self, name: str, now: int) -> Partner:
        """No wraps for batches sealed from now on; its requests get 403; old wraps dropped."""
        with self.engine.begin() as conn:
            result = conn.execute(
                update(PARTNERS)
                .where(PARTNERS.c.name == name)
                .values(revoked=True, rewrap=False, changed_at=now)
            )
            if result.rowcount != 1:
                raise RegistryError(f"no partner named {name!r} (see 'ncii-hub partner list')")
            conn.execute(delete(WRAPS).where(WRAPS.c.partner == name))
        found = self.get(name)
        assert found is not None
        return found

    def rotate(self, name: str, keys: PartnerKeys, now: int) -> Partner:
        """Replace both keys; the sealer re-wraps every batch for the new feed key."""
        try:
            with self.engine.begin() as conn:
                row = conn.execute(
                    select(PARTNERS.c.revoked).where(PARTNERS.c.name == name)
                ).first()
                if row is None:
                    raise RegistryError(f"no partner named {name!r} (see 'ncii-hub partner list')")
                if bool(row[0]):
                    raise RegistryError(f"partner {name!r} is revoked; add it under a new name")
                conn.execute(
                    update(PARTNERS)
                    .where(PARTNERS.c.name == name)
                    .values(
                        request_key=keys.request_key,
                        feed_key=keys.feed_key,
                        key_version=PARTNERS.c.key_version + 1,
                        rewrap=True,
                        changed_at=now,
                    )
                )
                # Wraps for the old key are useless to the new one: drop them now, so the
                # partner sees no batch until the sealer has wrapped it for the new key.
                conn.execute(delete(WRAPS).where(WRAPS.c.partner == name))
        except IntegrityError:
            raise RegistryError("that request key belongs to another partner") from None
        found = self.get(name)
        assert found is not None
        return found

    def use_nonce(self, replay_key: bytes, expires_at: int) -> bool:
        """Record a request nonce; False if it was seen before (a replay)."""
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(NONCES).values(replay_key=replay_key, expires_at=expires_at))
        except IntegrityError:
            return False
        return True

    def purge_nonces(self, now: int) -> int:
        with self.engine.begin() as conn:
            result = conn.execute(delete(NONCES).where(NONCES.c.expires_at < now))
        return int(result.rowcount)

    def acknowledge(self, name: str, position: int) -> int:
        """Raise the partner's acknowledged position (never lowers it); returns the new one."""
        with self.engine.begin() as conn:
            conn.execute(
                update(PARTNERS)
                .where(PARTNERS.c.name == name, PARTNERS.c.acked < position)
                .values(acked=position)
            )
            value = conn.execute(
                select(PARTNERS.c.acked).where(PARTNERS.c.name == name)
            ).scalar_one()
        return int(value)

    def acked_positions(self) -> list[int]:
        """Every partner's acknowledged position, sorted (who is who is not returned)."""
        with read_connection(self.engine) as conn:
            rows = conn.execute(select(PARTNERS.c.acked)).all()
        return sorted(int(r[0]) for r in rows)
