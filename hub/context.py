"""What request handlers share: settings, keys, storage, deny-list, limiters, clock.

Built once per app by :func:`hub.app.create_app` (no import-time singletons), so tests can run
several hubs in one process.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Engine

from crypto import envelope
from crypto.errors import (
    InvalidSignatureError,
    LimitExceededError,
    MalformedError,
    StaleMessageError,
    VerificationError,
    WrongPurposeError,
)
from hub.admission import Policy, RecentlyHeld
from hub.errors import HubError
from hub.keystore import HubKeys
from hub.metrics import HubMetrics
from hub.puzzle import CasePuzzle
from hub.ratelimit import RateLimiter
from hub.settings import Settings
from hub.storage import Storage
from hub.submission import DenyList, Limits
from hub.submitters import SubmitterRegistry
from hub.tilestore import TileStore

__all__ = ["HubContext", "max_age_of", "open_envelope"]


@dataclass
class HubContext:
    settings: Settings
    keys: HubKeys
    storage: Storage
    tiles: TileStore
    deny: DenyList
    ip_limiter: RateLimiter
    case_limiter: RateLimiter
    clock: Callable[[], float] = time.time
    wake_sequencer: Callable[[], None] = field(default=lambda: None)
    acked_positions: Callable[[], list[int]] = field(default=lambda: [])
    metrics: HubMetrics = field(default_factory=HubMetrics)  # this app's own (hub.metrics)
    # admission control (hub/admission.py): limits, the secret keying address tags, and the
    # trusted submitters; None: no admission control (tests of other parts)
    admission: Policy | None = None
    admission_key: bytes = b""
    submitters: SubmitterRegistry | None = None
    admission_engine: Engine | None = None  # for the early, read-only review-allowance check
    admission_recent: RecentlyHeld = field(default_factory=RecentlyHeld)
    puzzle: CasePuzzle | None = None  # the case puzzle (hub.puzzle); None: never asked

    @property
    def limits(self) -> Limits:
        s = self.settings
        return Limits(
            max_hashes=s.max_hashes_per_request,
            max_frames=s.max_vpdq_frames,
            quality_floor=s.pdq_quality_floor,
            max_withdraw=s.max_withdraw_entries,
        )

    def now(self) -> int:
        return int(self.clock())

    def limit_case(self, case_id: str) -> None:
        """429 when this case sends faster than its bucket allows."""
        wait = self.case_limiter.take(case_id)
        if wait > 0:
            raise HubError(
                429,
                "rate_limited",
                "too many requests for this case; wait and retry (see Retry-After)",
                retry_after=wait,
            )


def max_age_of(ctx: HubContext, purpose: envelope.Purpose) -> int:
    """How old an envelope of this purpose may be, in seconds; also its replay record's life."""
    if purpose == envelope.Purpose.SUBMISSION:
        return ctx.settings.submission_max_age
    return ctx.settings.window_seconds


def open_envelope(
    ctx: HubContext, raw: bytes, purpose: envelope.Purpose
) -> envelope.OpenedEnvelope:
    """Verify the signature over the exact bytes, then purpose and time; map failures to
    API errors (specs/hub-api.md section 5).

    Submissions may be up to ``submission_max_age`` old (offline bundles uploaded days later;
    safe because a submission is idempotent by content and its replay record lives that long);
    every envelope may be at most ``window_seconds`` in the future."""
    window = ctx.settings.window_seconds
    max_age = max_age_of(ctx, purpose)
    now = ctx.now()
    try:
        opened = envelope.open(
            raw,
            purpose,
            now,
            window_seconds=max(window, max_age),
            max_body=ctx.settings.max_body_bytes,
        )
        if opened.timestamp - now > window or now - opened.timestamp > max_age:
            raise StaleMessageError("envelope timestamp outside the accepted range")
        return opened
    except LimitExceededError:
        raise HubError(
            413, "body_too_large", f"the envelope body exceeds {ctx.settings.max_body_bytes} bytes"
        ) from None
    except WrongPurposeError:
        raise HubError(
            400,
            "wrong_purpose",
            f"this endpoint takes envelopes signed for {str(purpose)!r} (protocol v1)",
        ) from None
    except InvalidSignatureError:
        raise HubError(
            401, "invalid_signature", "the envelope signature does not verify over these bytes"
        ) from None
    except StaleMessageError:
        raise HubError(
            401,
            "stale_timestamp",
            f"the envelope timestamp is more than {max_age} s before or {window} s after "
            "the hub's clock; check the device clock and sign again",
        ) from None
    except MalformedError:
        raise HubError(
            400, "malformed_envelope", "the body is not a signed envelope (specs/envelope.md)"
        ) from None
    except VerificationError:
        raise HubError(401, "invalid_signature", "the envelope does not verify") from None
