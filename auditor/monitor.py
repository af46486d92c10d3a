"""Follow a log's checkpoints and alert when the log contradicts what was seen before.

Each round (specs/audit.md §2): fetch ``/checkpoint``, verify it (log key, witness quorum),
compare it with the last checkpoint this monitor trusted, prove consistency from the log's
tiles, then record it. Any contradiction is an :class:`Alert` (and the state keeps the last good
checkpoint, so the alert repeats until a person looks). The state directory holds the latest
trusted checkpoint (replaced atomically) and an append-only history and alert log.
"""

from __future__ import annotations

import base64
import dataclasses
import fcntl
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import httpx

from auditor.errors import ConfigError, FetchError, InputError
from auditor.fsutil import append_line, write_atomic
from auditor.proofs import check_consistency, tile_reader
from auditor.source import LogSource, describe_transport, read_file_capped
from auditor.trust import LogTrust, VerifiedCheckpoint
from crypto import boundedjson
from crypto.errors import (
    InconsistentTreeError,
    JsonBoundsError,
    MalformedError,
    NoKnownSignatureError,
    VerificationError,
)
from crypto.urlredact import redact_url

__all__ = ["ALERT_KINDS", "Alert", "Monitor", "MonitorState", "RoundResult", "note_json"]

STATE_VERSION: Final = 1
MAX_STATE_BYTES: Final = 8 << 20
"""Largest state file read: one checkpoint note (at most 1 MiB) as JSON text, with room."""
ALERT_KINDS: Final = ("bad_signature", "rollback", "fork", "inconsistent", "bad_tiles")


def note_json(note: bytes) -> str:
    """A note as JSON text: its UTF-8 text, or ``base64:`` + base64 if it is not UTF-8."""
    try:
        return note.decode("utf-8")
    except UnicodeDecodeError:
        return "base64:" + base64.b64encode(note).decode()


def _cp_json(cp: VerifiedCheckpoint) -> dict[str, Any]:
    return {
        "size": cp.size,
        "root": base64.b64encode(cp.root).decode(),
        "note": note_json(cp.note),
    }


@dataclass(frozen=True)
class Alert:
    """A contradiction by the log; ``to_json`` is what the webhook receives (specs/audit.md §3)."""

    kind: str
    origin: str
    source: str
    message: str
    at: int
    trusted: VerifiedCheckpoint | None
    served_note: bytes | None
    served: VerifiedCheckpoint | None = None
    evidence: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "version": 1,
            "alert": self.kind,
            "origin": self.origin,
            "source": self.source,
            "message": self.message,
            "at": self.at,
            "trusted": _cp_json(self.trusted) if self.trusted else None,
            "served": (
                _cp_json(self.served)
                if self.served
                else {"note": note_json(self.served_note)}
                if self.served_note is not None
                else None
            ),
            "consistency_proof": self.evidence,
        }


@dataclass
class RoundResult:
    """What one round found: a new or unchanged checkpoint, or an alert."""

    checkpoint: VerifiedCheckpoint | None
    previous_size: int | None
    alert: Alert | None = None
    changed: bool = False
    awaiting_cosignatures: bool = False
    """The served checkpoint is log-signed but lacks the witness quorum (not yet cosigned)."""

    def to_json(self) -> dict[str, Any]:
        status = "alert" if self.alert else "pending" if self.awaiting_cosignatures else "ok"
        return {
            "status": status,
            "size": self.checkpoint.size if self.checkpoint else None,
            "root": base64.b64encode(self.checkpoint.root).decode() if self.checkpoint else None,
            "previous_size": self.previous_size,
            "changed": self.changed,
            "alert": self.alert.to_json() if self.alert else None,
        }


_FILES: Final = {
    # kind -> (latest trusted, history, alerts, lock)
    "monitor": ("monitor.json", "history.jsonl", "alerts.jsonl", ".lock"),
    "full": ("full.json", "full-history.jsonl", "full-alerts.jsonl", ".full.lock"),
}
IDENTITY_FILE: Final = "log.json"
"""Names the log (origin and key hash) a state directory belongs to."""


@dataclass
class MonitorState:
    """A state directory: the latest trusted checkpoint, history and alert logs.

    ``kind`` "monitor" (``monitor.json``, ``history.jsonl``, ``alerts.jsonl``, ``.lock``) or
    "full" (``full.json``, ``full-history.jsonl``, ``full-alerts.jsonl``, ``.full.lock``), so a
    full audit can run while a monitor holds its own lock on the same directory.
    """

    directory: Path
    origin: str
    latest: VerifiedCheckpoint | None = None
    _lock_fd: int | None = field(default=None, repr=False)
    kind: str = "monitor"

    @classmethod
    def open(cls, directory: Path, trust: LogTrust, kind: str = "monitor") -> MonitorState:
        """Load (or start) the state for ``trust``'s log; lock it against a second run."""
        if kind not in _FILES:
            raise ValueError(f"unknown state kind {kind!r}")
        try:
            directory.mkdir(parents=True, exist_ok=True)
            fd = os.open(directory / _FILES[kind][3], os.O_WRONLY | os.O_CREAT, 0o644)
        except OSError as exc:
            raise ConfigError(
                f"{directory}: cannot use as state directory: {exc}; give --state DIR"
            ) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            raise ConfigError(f"{directory}: another {kind} run is using this state") from exc
        state = cls(directory, trust.origin, None, fd, kind)
        try:
            state._claim(trust)
            path = directory / _FILES[kind][0]
            if path.exists():
                state.latest = state._load(path, trust)
        except BaseException:
            state.close()
            raise
        return state

    def _claim(self, trust: LogTrust) -> None:
        """Record which log this directory is for; refuse a directory of another log key."""
        path = self.directory / IDENTITY_FILE
        mine = {"version": STATE_VERSION, "origin": trust.origin, "key_hash": trust.key_hash}
        if path.exists():
            try:
                raw = read_file_capped(path, 1 << 16, "state identity file")
                theirs = _loads_bounded(raw, max_bytes=1 << 16, what=str(path))
            except (FetchError, InputError) as exc:
                raise ConfigError(f"{path}: unreadable ({exc})") from exc
            if not isinstance(theirs, dict) or (
                theirs.get("origin"),
                theirs.get("key_hash"),
            ) != (trust.origin, trust.key_hash):
                raise ConfigError(
                    f"{self.directory}: this state directory belongs to another log key "
                    f"({path} names another origin or key hash than {trust.key_hash}); "
                    "give another --state, or leave --state out for a directory per log key"
                )
            return
        write_atomic(path, json.dumps(mine, indent=1).encode())

    def _load(self, path: Path, trust: LogTrust) -> VerifiedCheckpoint | None:
        try:
            raw = read_file_capped(path, MAX_STATE_BYTES, "monitor state file")
            data = _loads_bounded(raw, max_bytes=MAX_STATE_BYTES, what=str(path))
            if not isinstance(data, dict):
                raise ConfigError(f"{path}: unreadable monitor state (not a JSON object)")
            if data.get("version") != STATE_VERSION:
                raise ConfigError(f"{path}: unknown state version")
            if data.get("origin") != self.origin:
                raise ConfigError(f"{path}: state of another log ({data.get('origin')!r})")
            latest = data.get("latest")
            if latest is None:
                return None
            # Re-verified at load, so a tampered state file is noticed, not trusted.
            return trust.open(str(latest["note"]).encode())
        except ConfigError:
            raise
        except (FetchError, InputError) as exc:
            raise ConfigError(f"{path}: unreadable monitor state ({exc})") from exc
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ConfigError(f"{path}: unreadable monitor state ({exc})") from exc
        except (MalformedError, VerificationError) as exc:
            raise ConfigError(
                f"{path}: stored checkpoint no longer verifies with the given keys ({exc})"
            ) from exc

    def close(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def record(self, cp: VerifiedCheckpoint, at: int) -> None:
        """History first, then the latest pointer: a crash in between only repeats a line."""
        latest, history, _, _ = _FILES[self.kind]
        append_line(self.directory / history, json.dumps({**_cp_json(cp), "seen_at": at}).encode())
        body = {
            "version": STATE_VERSION,
            "origin": self.origin,
            "latest": _cp_json(cp),
            "updated_at": at,
        }
        write_atomic(self.directory / latest, json.dumps(body, indent=1).encode())
        self.latest = cp

    def record_alert(self, alert: Alert) -> None:
        append_line(self.directory / _FILES[self.kind][2], json.dumps(alert.to_json()).encode())


def _system_clock() -> int:
    return int(time.time())


def _loads_bounded(data: bytes, *, max_bytes: int, what: str) -> Any:
    """A JSON file of the auditor's own, bounded (crypto.boundedjson); InputError if refused."""
    try:
        return boundedjson.loads(data, max_bytes=max_bytes)
    except JsonBoundsError as exc:
        raise InputError(f"{what}: {exc}") from None


class Monitor:
    """One log, one state directory; :meth:`round` is one check (``--once``)."""

    def __init__(
        self,
        source: LogSource,
        trust: LogTrust,
        state: MonitorState,
        clock: Callable[[], int] = _system_clock,
    ) -> None:
        self.source = source
        self.trust = trust
        self.state = state
        self.clock = clock

    def _alert(self, kind: str, message: str, **kw: Any) -> Alert:
        return Alert(
            kind,
            self.trust.origin,
            self.source.name,
            message,
            self.clock(),
            self.state.latest,
            **kw,
        )

    def round(self) -> RoundResult:
        """Fetch, verify and compare one checkpoint. FetchError if the log cannot be read."""
        note = self.source.get("checkpoint")
        prev = self.state.latest
        prev_size = prev.size if prev else None
        try:
            new = self.trust.open(note)
        except NoKnownSignatureError as exc:
            if self._awaiting_cosignatures(note):
                # Witnesses cosign after the log publishes: not evidence, keep T, retry later.
                return RoundResult(prev, prev_size, None, False, awaiting_cosignatures=True)
            bad = self._alert(
                "bad_signature", f"the served checkpoint does not verify: {exc}", served_note=note
            )
            return self._finish(RoundResult(None, prev_size, bad))
        except (MalformedError, VerificationError) as exc:
            bad = self._alert(
                "bad_signature", f"the served checkpoint does not verify: {exc}", served_note=note
            )
            return self._finish(RoundResult(None, prev_size, bad))
        alert = self.compare(prev, new)
        if alert is not None:
            return self._finish(RoundResult(new, prev_size, alert))
        changed = prev is None or prev.size != new.size
        if changed:
            self.state.record(new, self.clock())
        return RoundResult(new, prev_size, None, changed)

    def _awaiting_cosignatures(self, note: bytes) -> bool:
        """True if only the quorum is missing: the log's signature and every line by a
        configured witness verify (a failing line or a missing log signature is an alert)."""
        if self.trust.log_key is None or self.trust.quorum == 0:
            return False
        try:
            dataclasses.replace(self.trust, quorum=0).open(note)
        except (MalformedError, VerificationError):
            return False
        return True

    def compare(self, prev: VerifiedCheckpoint | None, new: VerifiedCheckpoint) -> Alert | None:
        """An alert if ``new`` contradicts ``prev`` (same size, other root; smaller; not a
        consistent extension by a proof from the source's tiles), else None."""
        if prev is not None and new.size == prev.size:
            if new.root == prev.root:
                return None
            return self._alert(
                "fork",
                f"two different roots signed for tree size {new.size}",
                served_note=new.note,
                served=new,
            )
        if prev is not None and new.size < prev.size:
            evidence = None
            try:  # the older tree's tiles may still prove more; an alert either way
                result = check_consistency(new, prev, self.source)
                if not result.consistent:
                    evidence = result.evidence()
            except (FetchError, InconsistentTreeError, MalformedError):
                pass
            return self._alert(
                "rollback",
                f"the log went back from size {prev.size} to {new.size}",
                served_note=new.note,
                served=new,
                evidence=evidence,
            )
        try:
            if prev is None:
                tile_reader(self.source, new.size, new.root).state()
                return None
            result = check_consistency(prev, new, self.source)
        except InconsistentTreeError as exc:
            return self._alert(
                "bad_tiles",
                f"the log's tiles do not match its checkpoint of size {new.size}: {exc}",
                served_note=new.note,
                served=new,
            )
        if not result.consistent:
            return self._alert(
                "inconsistent",
                f"the checkpoint of size {new.size} does not extend the trusted one of size "
                f"{prev.size}: the log forked",
                served_note=new.note,
                served=new,
                evidence=result.evidence(),
            )
        return None

    def _finish(self, result: RoundResult) -> RoundResult:
        if result.alert is not None:
            self.state.record_alert(result.alert)
        return result


def _shown_webhook(url: str) -> str:
    """Scheme and host only: a webhook's path is often its secret (chat services' hooks)."""
    scheme, sep, rest = redact_url(url).partition("://")
    host = rest.split("/", 1)[0].rsplit("@", 1)[-1]
    return f"{scheme}{sep}{host}/..." if sep else "the webhook"


def post_webhook(url: str, alert: Alert, client: httpx.Client | None = None) -> str | None:
    """POST the alert JSON; returns an error message instead of raising (the alert stands)."""
    try:
        own = client or httpx.Client(timeout=10.0)
        try:
            # Streamed and never read: only the status matters, so a receiver cannot make the
            # monitor hold a large answer.
            with own.stream("POST", url, json=alert.to_json()) as response:
                status = response.status_code
        finally:
            if client is None:
                own.close()
    except httpx.HTTPError as exc:
        return f"webhook {_shown_webhook(url)}: {describe_transport(exc)}"
    if status >= 300:
        return f"webhook {_shown_webhook(url)}: HTTP {status}"
    return None
