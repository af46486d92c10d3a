"""``ncii-partner sync --follow``: keep the store current, waking as soon as the hub seals.

Why a daemon with a long poll: a timer that syncs every few minutes leaves a new entry
unmatchable for minutes; polling often costs requests. Between syncs the daemon waits on
``GET /v1/feed/batches?wait=S`` (specs/partner-api.md 4.2), which the hub answers the moment
a batch past the cursor is sealed. Rules (specs/partner-store.md section 9):

- every sync is the full verified sync; a verification failure (any VerificationFailure,
  FeedLagError included) stops the daemon with a CRITICAL alert and exit status 1: it never
  continues past what it could not verify;
- the hub unreachable (5xx, network), busy (429, 503) or a replayed nonce: retry with
  exponential backoff and jitter, capped at ``max_backoff``;
- other refusals (revoked, unknown partner), store and usage errors: exit with their status
  (a service manager restarts it after a delay, or an operator looks);
- SIGTERM (and SIGINT): a wait is abandoned at once; a sync in progress finishes its batch
  transaction first (each batch is atomic anyway), then exit 0 (SIGINT: 130).
"""

from __future__ import annotations

import logging
import random
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from partner_sdk.errors import (
    FeedLagError,
    HubRefusedError,
    HubUnreachableError,
    PartnerError,
    VerificationFailure,
)
from partner_sdk.sync import Partner, SyncSummary

__all__ = ["FollowSettings", "follow"]

log = logging.getLogger("partner_sdk.follow")

_TRANSIENT_REFUSALS = frozenset({409, 429})  # replayed nonce (clock or retry), rate limited


@dataclass
class FollowSettings:
    """How the daemon waits and retries."""

    wait: int = 30  # seconds per long poll (hub: up to 60; the CLI: up to 45, under the
    # HTTP client's 60 s read timeout)
    min_backoff: float = 1.0
    max_backoff: float = 60.0
    min_interval: float = 0.2  # between two syncs that found nothing new
    rng: random.Random = field(default_factory=random.Random)


class _Stopped(Exception):
    """SIGTERM or SIGINT arrived while waiting."""


class _Signals:
    """Turns SIGTERM/SIGINT into a stop request; interrupts a wait, never a sync."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.signum = 0
        self.waiting = False
        self._old: dict[int, Any] = {}

    def __enter__(self) -> _Signals:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.signum = signum
        self.stop.set()
        if self.waiting:
            raise _Stopped

    def sleep(self, seconds: float) -> None:
        self.stop.wait(seconds)


def _backoff(attempt: int, settings: FollowSettings) -> float:
    """Exponential backoff with jitter: half to all of min(cap, base * 2**attempt)."""
    ceiling = min(settings.max_backoff, settings.min_backoff * float(1 << min(attempt, 30)))
    return ceiling * settings.rng.uniform(0.5, 1.0)


def follow(
    partner: Partner,
    settings: FollowSettings | None = None,
    *,
    on_sync: Callable[[SyncSummary], None] | None = None,
) -> int:
    """Sync, wait for the next batch, sync again, until stopped; returns the exit status."""
    settings = settings or FollowSettings()
    attempt = 0
    with _Signals() as signals:
        while not signals.stop.is_set():
            began = time.monotonic()
            try:
                summary = partner.sync()
            except (VerificationFailure, FeedLagError) as exc:
                log.critical(
                    "ALERT: sync verification failed, stopping (nothing unverified was "
                    "applied): %s",
                    exc,
                    extra={"error": type(exc).__name__, "exit_status": exc.exit_code},
                )
                return exc.exit_code
            except (HubUnreachableError, HubRefusedError) as exc:
                if isinstance(exc, HubRefusedError) and exc.status not in _TRANSIENT_REFUSALS:
                    log.error(
                        "the hub refused this partner, stopping: %s",
                        exc,
                        extra={"error": type(exc).__name__, "exit_status": exc.exit_code},
                    )
                    return exc.exit_code
                delay = _backoff(attempt, settings)
                attempt += 1
                log.warning(
                    "sync failed, retrying in %.1f s: %s",
                    delay,
                    exc,
                    extra={"error": type(exc).__name__, "retry_in": round(delay, 1)},
                )
                signals.sleep(delay)
                continue
            except PartnerError as exc:
                log.error(
                    "stopping: %s",
                    exc,
                    extra={"error": type(exc).__name__, "exit_status": exc.exit_code},
                )
                return exc.exit_code
            attempt = 0
            if on_sync is not None:
                on_sync(summary)
            if summary.entries:
                log.info(
                    "synced %d entries in %d batches; cursor %d of checkpoint %d",
                    summary.entries,
                    summary.batches,
                    summary.cursor,
                    summary.checkpoint_size,
                    extra={**summary.log_fields(), "seconds": summary.seconds},
                )
            elif time.monotonic() - began < settings.min_interval:
                signals.sleep(settings.min_interval)  # nothing new: never spin
            if signals.stop.is_set():
                break
            try:
                signals.waiting = True
                if signals.stop.is_set():
                    break
                partner.client.batches(summary.cursor, 1, wait=settings.wait)
            except _Stopped:
                break
            except PartnerError as exc:
                # The next sync reports it properly (alert or backoff); just do not spin.
                log.debug("waiting for batches failed: %s", exc)
                signals.sleep(_backoff(0, settings))
            finally:
                signals.waiting = False
    log.info("stopped", extra={"signal": signals.signum})
    return 130 if signals.signum == signal.SIGINT else 0
