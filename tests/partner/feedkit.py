"""Helpers for the partner feed tests: partners registered with a real hub (``FeedKit``) and
a tampering httpx transport between the SDK and the hub (``Rewriter``)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "hub"))

from hubkit import HubProcess, verifier_of

from hub.db.engine import make_engine
from hub.partners import PartnerRegistry, parse_partner_keys
from partner_sdk import Partner, init_partner

# Hub settings for feed tests: short rounds, small batches sealed quickly.
FEED_FAST = (
    "--set",
    "batch_interval=0.05",
    "--set",
    "lock_retry_seconds=0.2",
    "--set",
    "feed_max_age=0.1",
    "--set",
    "feed_batch_entries=8",
)


class Rewriter(httpx.BaseTransport):
    """Forwards to the real transport, letting a test rewrite any response (or request)."""

    def __init__(
        self,
        hook: Callable[[httpx.Request, Callable[[httpx.Request], httpx.Response]], httpx.Response],
    ) -> None:
        self.inner = httpx.HTTPTransport()
        self.hook = hook

    def forward(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        response.read()
        return httpx.Response(
            response.status_code, headers=response.headers, content=response.content
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self.hook(request, self.forward)


class FeedKit:
    """One hub plus helpers to make, register, revoke, rotate and sync partners."""

    def __init__(self, hub: HubProcess, root: Path) -> None:
        self.hub = hub
        self.root = root
        self.engine = make_engine(hub.database_url)
        self.registry = PartnerRegistry(self.engine)
        with hub.client() as client:
            key, self.origin = verifier_of(client)
        self.log_key = key.encode()

    def new_partner(self, name: str, register: bool = True) -> Path:
        directory = self.root / f"partner-{name}-{time.monotonic_ns()}"
        init_partner(directory, name)
        if register:
            self.register(name, directory)
        return directory

    def register(self, name: str, directory: Path) -> None:
        keys = parse_partner_keys((directory / "partner-public.json").read_bytes())
        self.registry.add(name, keys, int(time.time()))

    def partner(
        self, directory: Path, transport: httpx.BaseTransport | None = None, **kw: object
    ) -> Partner:
        return Partner(directory, self.hub.url, self.log_key, transport=transport, **kw)  # type: ignore[arg-type]

    def wait_sealed(self, size: int, timeout: float = 20.0) -> None:
        """Until the hub has sealed batches through ``size`` and wrapped them for everyone."""
        from sqlalchemy import func, select

        from hub.db.models import FeedBatchRow, PartnerRow, table_of

        batches, partners = table_of(FeedBatchRow), table_of(PartnerRow)
        deadline = time.monotonic() + timeout
        while True:
            with self.engine.connect() as conn:
                end = conn.execute(select(func.max(batches.c.end))).scalar() or 0
                pending = conn.execute(
                    select(func.count()).select_from(partners).where(partners.c.rewrap.is_(True))
                ).scalar()
            if end >= size and not pending:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"feed sealed only to {end} < {size}")
            time.sleep(0.05)

    def close(self) -> None:
        self.engine.dispose()
