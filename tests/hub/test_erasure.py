"""Withdrawal erases for good (issue 12, finding 1): an attacker holding every byte of the hub's
data directory after the withdrawal, plus a database backup taken before it, and every key the
hub holds, recovers no withdrawn hash value, neither from the database nor from feed batches.

The attacker knows the code: it tries master.key, every 32-byte value in any column of any table
(main database and key store, before and after), every 32-byte window of the key-store files,
and every 72-byte blob unwrapped under master.key with the labels any hub version used, against
every entry ciphertext (both label versions) and every feed batch file it has seen. The same
search must still find the entries that were not withdrawn, so it is known to work.
"""

from __future__ import annotations

import secrets
import sqlite3
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nacl.bindings
import nacl.exceptions
import pytest
from hubkit import Case, HubFactory, HubProcess, post, random_md5, random_pdq, wait_for_size
from sqlalchemy import create_engine, inspect, make_url, select, text

from crypto.feed import BatchBinding, SealedBatch
from hub.db.engine import LegacyDatabaseError, create_schema, make_engine
from hub.vault import KeyVault, VaultError

FEED_FAST = ("--set", "feed_max_age=0.2")
NONCE = 24
ENTRY_LABELS = (b"ncii-hub/entry/v1\x00", b"ncii-hub/entry/v2\x00")
CASE_KEY_LABEL = b"ncii-hub/case-key/v1\x00"
BATCH_KEY_LABEL = b"ncii-hub/feed-key/v1\x00"


def _xopen(key: bytes, aad: bytes, blob: bytes) -> bytes | None:
    if len(blob) < NONCE + 16:
        return None
    try:
        return bytes(
            nacl.bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(
                blob[NONCE:], aad, blob[:NONCE], key
            )
        )
    except nacl.exceptions.CryptoError:
        return None


# -- what the attacker holds ------------------------------------------------------------------


@dataclass
class Loot:
    """Everything copied from one hub state: raw files, database rows, key-store rows."""

    files: dict[str, bytes] = field(default_factory=dict)  # relative path -> bytes
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # table -> rows
    vault_rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def all_rows(self) -> Iterable[dict[str, Any]]:
        for table in (self.rows, self.vault_rows):
            for rows in table.values():
                yield from rows


def _sqlite_rows(path: Path) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table of a copied SQLite file (its copied -wal applied)."""
    conn = sqlite3.connect(path)
    try:
        conn.row_factory = sqlite3.Row
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {n: [dict(r) for r in conn.execute(f'SELECT * FROM "{n}"')] for n in names}
    finally:
        conn.close()


def _pg_rows(url: str) -> dict[str, list[dict[str, Any]]]:
    """A pg_dump-like copy: every row of every table, through SQL."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            names = inspect(conn).get_table_names()
            return {
                n: [dict(r._mapping) for r in conn.execute(text(f'SELECT * FROM "{n}"'))]
                for n in names
            }
    finally:
        engine.dispose()


def _database_files(hub: HubProcess) -> list[Path]:
    """The SQLite database file of the hub and its -wal/-shm (none for PostgreSQL)."""
    if not hub.database_url.startswith("sqlite"):
        return []
    db = Path(make_url(hub.database_url).database or "")
    return [db.with_name(db.name + suffix) for suffix in ("", "-wal", "-shm")]


def copy_running(hub: HubProcess, dest: Path, *, database_only: bool = False) -> Loot:
    """Copy every file of the running hub (data directory, and the SQLite database with its
    -wal and -shm) to ``dest`` and read it; ``database_only`` copies just the database, as a
    backup the README asks for (for PostgreSQL: every row of every table, through SQL)."""
    dest.mkdir(parents=True)
    loot = Loot()
    sources = [(f"db/{p.name}", p) for p in _database_files(hub)]
    if not database_only:
        sources += [
            (str(p.relative_to(hub.data_dir)), p)
            for p in sorted(hub.data_dir.rglob("*"))
            if p.is_file()
        ]
    for rel, path in sources:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            continue
        loot.files[rel] = data
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        (dest / rel).write_bytes(data)
    if hub.database_url.startswith("sqlite"):
        loot.rows = _sqlite_rows(dest / "db" / "hub.sqlite3")
    else:
        loot.rows = _pg_rows(hub.database_url)
    if (dest / "keys.sqlite3").exists():
        loot.vault_rows = _sqlite_rows(dest / "keys.sqlite3")
    return loot


# -- the attack -------------------------------------------------------------------------------


def candidate_keys(copies: list[Loot]) -> set[bytes]:
    """Every key the hub holds, as an attacker who read the code would look for them."""
    keys: set[bytes] = set()
    masters: set[bytes] = set()
    for loot in copies:
        if "master.key" in loot.files:
            masters.add(bytes.fromhex(loot.files["master.key"].decode().strip()))
        for rel, data in loot.files.items():
            if rel.startswith("keys.sqlite3"):
                keys.update(data[i : i + 32] for i in range(0, max(0, len(data) - 31)))
    keys |= masters
    case_ids = {str(r["case_id"]) for loot in copies for r in loot.rows.get("cases", [])}
    bindings = {
        (int(r["start"]), int(r["end"]), int(r["version"]))
        for loot in copies
        for r in loot.rows.get("feed_batches", [])
    }
    origin = _origin(copies)
    wrap_aads = [CASE_KEY_LABEL + c.encode() for c in case_ids] + [
        BATCH_KEY_LABEL + BatchBinding(origin, s, e).encode() + v.to_bytes(4, "big")
        for s, e, v in bindings
    ]
    for loot in copies:
        for row in loot.all_rows():
            for value in row.values():
                if not isinstance(value, bytes | memoryview):
                    continue
                blob = bytes(value)
                if len(blob) == 32:
                    keys.add(blob)
                elif len(blob) == NONCE + 32 + 16:
                    for master in masters:
                        for aad in wrap_aads:
                            key = _xopen(master, aad, blob)
                            if key is not None:
                                keys.add(key)
    return keys


def _origin(copies: list[Loot]) -> str:
    import json

    for loot in copies:
        if "hub.json" in loot.files:
            return str(json.loads(loot.files["hub.json"])["origin"])
    raise AssertionError("no hub.json copied")


def recover(copies: list[Loot], keys: set[bytes]) -> list[bytes]:
    """Every plaintext any candidate key opens: entry ciphertexts and feed batch files."""
    found: list[bytes] = []
    entries = {
        (str(r["case_id"]), str(r["entry_id"]), bytes(r["ciphertext"]))
        for loot in copies
        for r in loot.rows.get("entries", [])
        if r.get("ciphertext") is not None
    }
    for case_id, entry_id, blob in entries:
        aads = [label + case_id.encode() + b"\x00" + entry_id.encode() for label in ENTRY_LABELS]
        for key in keys:
            for aad in aads:
                plain = _xopen(key, aad, blob)
                if plain is not None:
                    found.append(plain)
    origin = _origin(copies)
    ranges = {
        (int(r["start"]), int(r["end"]))
        for loot in copies
        for r in loot.rows.get("feed_batches", [])
    }
    batches = {
        data for loot in copies for rel, data in loot.files.items() if rel.startswith("feed/")
    }
    for data in batches:
        sealed = SealedBatch.decode(data)
        for start, end in ranges:
            aad = BatchBinding(origin, start, end).batch_aad()
            for key in keys:
                try:
                    plain = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(
                        sealed.ciphertext, aad, sealed.nonce, key
                    )
                except nacl.exceptions.CryptoError:
                    continue
                found.append(bytes(plain))
    return found


def assert_erased(copies: list[Loot], withdrawn: list[str], kept: list[str]) -> list[bytes]:
    """No withdrawn hash value in clear anywhere, none recoverable; every kept one recoverable."""
    for loot in copies:
        for rel, data in loot.files.items():
            for value in [*withdrawn, *kept]:
                assert value.encode() not in data, f"a hash value in clear in {rel}"
                assert bytes.fromhex(value) not in data, f"a raw hash value in {rel}"
        for row in loot.all_rows():
            dump = repr(row).encode()
            for value in [*withdrawn, *kept]:
                assert value.encode() not in dump, "a hash value in clear in a database row"
    plains = recover(copies, candidate_keys(copies))
    for value in withdrawn:
        assert not any(value.encode() in p for p in plains), "a withdrawn hash value recovered"
    for value in kept:
        assert any(value.encode() in p for p in plains), "the attack misses a live entry"
    return plains


# -- driving the hub --------------------------------------------------------------------------


def _query(url: str, sql: str) -> list[Any]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(text(sql)).all())
    finally:
        engine.dispose()


def wait_sealed(hub: HubProcess, end: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        row = _query(hub.database_url, 'SELECT max("end") FROM feed_batches')
        if row and row[0][0] is not None and int(row[0][0]) >= end:
            return
        assert time.monotonic() < deadline, "the feed was not sealed in time"
        time.sleep(0.1)


def wait_redacted(hub: HubProcess, count: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        row = _query(hub.database_url, "SELECT count(*) FROM feed_redactions")
        if int(row[0][0]) >= count:
            return
        assert time.monotonic() < deadline, "the withdrawn entries were not re-sealed in time"
        time.sleep(0.1)


def submit(hub: HubProcess, case: Case, hashes: list[dict[str, Any]]) -> list[str]:
    with hub.client() as client:
        r = post(client, "/v1/submissions", case.submission(hashes))
        assert r.status_code == 202, r.text
        return [e["entry_id"] for e in r.json()["entries"]]


def withdraw(hub: HubProcess, case: Case, entries: list[str] | None) -> None:
    with hub.client() as client:
        r = post(client, "/v1/withdrawals", case.withdrawal(entries))
        assert r.status_code == 202, r.text


def _values(hashes: list[dict[str, Any]]) -> list[str]:
    return [str(h["hash"]) for h in hashes]


def test_withdrawn_hashes_unrecoverable_from_data_dir_and_earlier_backup(
    hub_factory: HubFactory, tmp_path: Path
) -> None:
    hub = hub_factory(*FEED_FAST)
    case_a, case_b = Case(), Case()
    hashes_a = [random_pdq(), random_md5(), random_pdq()]
    hashes_b = [random_pdq(), random_pdq(), random_md5()]
    submit(hub, case_a, hashes_a)
    with hub.client() as client:
        wait_for_size(client, 3)
    wait_sealed(hub, 3)
    ids_b = submit(hub, case_b, hashes_b)
    with hub.client() as client:
        wait_for_size(client, 6)
    wait_sealed(hub, 6)

    backup = copy_running(hub, tmp_path / "backup", database_only=True)
    before = copy_running(hub, tmp_path / "before")
    # The attack works: before the withdrawal everything is recoverable.
    assert_erased([before], [], _values(hashes_a + hashes_b))

    withdraw(hub, case_a, None)
    withdraw(hub, case_b, [ids_b[0]])
    withdrawn = [*_values(hashes_a), hashes_b[0]["hash"]]
    kept = _values(hashes_b[1:])

    # At once (the 202 was sent): the data directory and the earlier database backup yield
    # nothing withdrawn; the live entries still open (from the database; their feed batch
    # waits for its re-seal).
    right_after = copy_running(hub, tmp_path / "right-after")
    assert_erased([right_after, backup], withdrawn, kept)
    # Not even the old batch files copied before the withdrawal open with what the hub holds.
    old_feed = Loot(files={k: v for k, v in before.files.items() if k.startswith("feed/")})
    old_feed.files["hub.json"] = before.files["hub.json"]
    old_feed.rows = {"feed_batches": before.rows["feed_batches"]}
    assert_erased([right_after, backup, old_feed], withdrawn, kept)

    # Once the tombstones are published the feed is re-sealed without them: still nothing,
    # and the live entries are in the new batch again.
    wait_redacted(hub, 4)
    settled = copy_running(hub, tmp_path / "settled")
    plains = assert_erased([settled, backup, old_feed], withdrawn, kept)
    assert any(kept[0].encode() in p and p.startswith(b"NCFP") for p in plains)

    # Restoring the pre-withdrawal key store (it holds the erased keys) and restarting: the hub
    # erases them again before it serves.
    hub.kill()
    for name in ("keys.sqlite3", "keys.sqlite3-wal", "keys.sqlite3-shm"):
        (hub.data_dir / name).unlink(missing_ok=True)
        if name in before.files and not name.endswith("-shm"):
            (hub.data_dir / name).write_bytes(before.files[name])
            (hub.data_dir / name).chmod(0o600)
    hub.start()
    restored = copy_running(hub, tmp_path / "restored")
    assert_erased([restored, backup, old_feed], withdrawn, kept)


def test_key_store_is_private_and_outside_the_database(
    hub_factory: HubFactory, tmp_path: Path
) -> None:
    hub = hub_factory()
    submit(hub, Case(), [random_pdq()])
    for name in ("keys.sqlite3", "keys.sqlite3-wal"):
        path = hub.data_dir / name
        if path.exists():
            assert path.stat().st_mode & 0o077 == 0, name
    loot = copy_running(hub, tmp_path / "copy")
    assert loot.vault_rows["entry_keys"], "the entry key is in the key store"
    for row in loot.rows.get("cases", []):
        assert "wrapped_key" not in row
    for row in loot.rows.get("feed_batches", []):
        assert "wrapped_key" not in row


def test_database_with_keys_inside_is_refused(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "CREATE TABLE cases (case_id VARCHAR(16) PRIMARY KEY, wrapped_key BYTEA)"
                    if engine.dialect.name == "postgresql"
                    else "CREATE TABLE cases (case_id VARCHAR(16) PRIMARY KEY, wrapped_key BLOB)"
                )
            )
        with pytest.raises(LegacyDatabaseError, match="cannot be migrated"):
            create_schema(engine, b"checkpoint")
        with engine.connect() as conn:
            assert "entries" not in inspect(conn).get_table_names()
            assert conn.execute(select(text("1"))).scalar() == 1
    finally:
        engine.dispose()


def test_legacy_data_dir_refused_by_serve(hub_factory: HubFactory, database_url: str) -> None:
    proc = hub_factory(start=False)
    proc.data_dir.mkdir(parents=True)
    engine = make_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text("CREATE TABLE feed_batches (start BIGINT PRIMARY KEY, wrapped_key BYTEA)")
                if engine.dialect.name == "postgresql"
                else text("CREATE TABLE feed_batches (start INTEGER PRIMARY KEY, wrapped_key BLOB)")
            )
    finally:
        engine.dispose()
    with pytest.raises(RuntimeError, match="cannot be migrated"):
        proc.start(timeout=20)


def test_vault_erase_leaves_no_copy_in_any_file(tmp_path: Path) -> None:
    """The key store's own promise, byte for byte: an erased key is in no file, the WAL is
    empty, and a key not erased is still there (so the scan can find keys)."""
    vault = KeyVault(tmp_path / "keys.sqlite3")
    keys = [(f"{i:032x}", secrets.token_bytes(32)) for i in range(300)]
    for i in range(0, 300, 30):
        vault.put_entry_keys(keys[i : i + 30])
    batch_key = secrets.token_bytes(32)
    vault.put_batch_key(0, 1, batch_key)
    gone = keys[::2]
    assert vault.erase([e for e, _ in gone], [(0, 1)]) == len(gone) + 1
    files = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert files.get("keys.sqlite3-wal", b"") == b""
    blob = b"".join(files.values())
    assert all(k not in blob for _, k in gone) and batch_key not in blob
    assert all(k in blob for _, k in keys[1::2])
    assert vault.entry_keys([e for e, _ in keys]) == dict(keys[1::2])
    assert vault.batch_key(0, 1) is None
    assert (tmp_path / "keys.sqlite3").stat().st_mode & 0o077 == 0
    vault.close()


def test_vault_group_commit_stores_every_concurrent_request(tmp_path: Path) -> None:
    """Concurrent submissions share commits; each one's keys are stored, none lost or mixed."""
    vault = KeyVault(tmp_path / "keys.sqlite3")
    requests = [
        [(secrets.token_hex(16), secrets.token_bytes(32)) for _ in range(3)] for _ in range(64)
    ]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(vault.put_entry_keys, requests))
    every = dict(kv for r in requests for kv in r)
    assert vault.entry_keys(list(every)) == every
    with pytest.raises(VaultError):  # a duplicate id fails alone ...
        vault.put_entry_keys([requests[0][0]])
    vault.put_entry_keys([("f" * 32, secrets.token_bytes(32))])  # ... and the writer goes on
    assert len(vault.entry_key_ids()) == len(every) + 1
    vault.close()
