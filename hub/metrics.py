"""The hub's Prometheus metrics (``GET /metrics``, specs/hub-api.md section 10).

Why a per-app :class:`HubMetrics` and not prometheus-client's global registry: tests run
several hubs in one process, and each hub must report only its own counts.

Two kinds of numbers:

- counters kept in memory by this process (reset at restart, as Prometheus expects): accepted
  submissions and hashes by algorithm, refusals by error code, rate-limited and held requests,
  witness cosignature failures, HTTP requests and their latency by route template;
- gauges read from the database at scrape time (:class:`LogGauges`), so every process of a
  multi-process hub reports the same log: log size, pending entries and sequencing lag, feed
  sealing lag, each partner's acknowledged position and lag, each witness's cosigned size.

Label values come from fixed sets chosen by the code or the operator: algorithm names, error
codes, route templates (never the raw path), HTTP status codes, partner names and witness names
(both chosen by the operator at registration). Never a hash value, case id, entry id, key,
token or client address.
"""

from __future__ import annotations

import collections
import ipaddress
import json
import re
import time
from collections.abc import Callable, Iterator, MutableMapping, Sequence
from typing import Any, Final

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from starlette.types import ASGIApp, Receive, Scope, Send

from hub.db.engine import read_connection
from hub.db.models import (
    EntryRow,
    FeedBatchRow,
    LogStateRow,
    PartnerRow,
    WitnessStatusRow,
    table_of,
)

__all__ = [
    "CONTENT_TYPE_LATEST",
    "HubMetrics",
    "LogGauges",
    "ObserveRequests",
    "SequencerView",
    "error_code",
    "metrics_allowed",
]

ALGORITHMS: Final = ("pdq", "vpdq", "md5", "sha256")
"""The hash algorithms a submission may carry (specs/submission.md); each starts at 0."""

_CODE_RE: Final = re.compile(r"[a-z][a-z0-9_]{0,39}")
_MAX_CODES: Final = 100  # distinct refusal codes kept as labels; later ones count as "other"
_ERROR_BODY_CAP: Final = 4096  # bytes of an error body read to find its code
# Headers a reverse proxy or CDN adds when it relays a request (nginx, Apache, Squid, Caddy,
# Cloudflare, Akamai, Fastly, ingresses): any one of them means "not a local scraper". Every
# header named x-forwarded* counts too.
_FORWARDING_HEADERS: Final = frozenset(
    {
        b"forwarded",
        b"x-real-ip",
        b"via",
        b"x-original-forwarded-for",
        b"x-client-ip",
        b"x-cluster-client-ip",
        b"true-client-ip",
        b"cf-connecting-ip",
        b"fastly-client-ip",
    }
)

ENTRIES = table_of(EntryRow)
LOG_STATE = table_of(LogStateRow)
PARTNERS = table_of(PartnerRow)
BATCHES = table_of(FeedBatchRow)
WITNESS_STATUS = table_of(WitnessStatusRow)


class HubMetrics:
    """Counters and histograms of one hub app, in a registry of its own.

    Other parts of the hub call :meth:`accepted`, :meth:`held` and
    :meth:`witness_failure`; the HTTP middleware (:class:`ObserveRequests`) calls
    :meth:`observe`. Each method is cheap and thread-safe (prometheus-client's own locks).
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self._submissions = Counter(
            "ncii_hub_submissions_accepted",
            "Submissions stored (new ones; an identical retry is not counted again)",
            registry=r,
        )
        self._hashes = Counter(
            "ncii_hub_hashes_accepted",
            "Hashes stored, by algorithm",
            ["algorithm"],
            registry=r,
        )
        # Children looked up once: labels() takes a lock and builds a key per call.
        self._hash_counts = {algorithm: self._hashes.labels(algorithm) for algorithm in ALGORITHMS}
        self._refusals = Counter(
            "ncii_hub_refusals",
            "Requests refused, by the API error code (specs/hub-api.md section 5)",
            ["code"],
            registry=r,
        )
        self._rate_limited = Counter(
            "ncii_hub_rate_limited",
            "Requests refused with 429 rate_limited, by route template",
            ["route"],
            registry=r,
        )
        self._held = Counter(
            "ncii_hub_held",
            "Hashes held for human review instead of being logged (see HubMetrics.held)",
            registry=r,
        )
        self._held.inc(0)
        self._witness_failures = Counter(
            "ncii_hub_witness_failures",
            "Cosignature requests to a witness that failed, by witness name",
            ["witness"],
            registry=r,
        )
        self._requests = Counter(
            "ncii_hub_http_requests",
            "HTTP requests answered, by route template and status code",
            ["route", "status"],
            registry=r,
        )
        self._latency = Histogram(
            "ncii_hub_http_request_duration_seconds",
            "Time to answer a request, by route template",
            ["route"],
            registry=r,
        )
        self._codes: set[str] = set()
        self._by_route: dict[tuple[str, int], tuple[Any, Any]] = {}

    def accepted(self, algorithms: Sequence[str]) -> None:
        """A new submission was stored with hashes of these algorithms (one item per hash)."""
        self._submissions.inc()
        for algorithm, n in collections.Counter(algorithms).items():
            child = self._hash_counts.get(algorithm)
            if child is None:
                child = self._hashes.labels("other")
            child.inc(n)

    def held(self, n: int = 1) -> None:
        """``n`` hashes were held for review rather than logged (the review feature calls
        this when it holds them; ``ncii_hub_held_total`` stays 0 until then)."""
        if n > 0:
            self._held.inc(n)

    def witness_failure(self, witness: str) -> None:
        """One cosignature request to the witness the operator named ``witness`` failed."""
        self._witness_failures.labels(witness).inc()

    def witness_names(self, names: Sequence[str]) -> None:
        """Start each configured witness's failure count at 0 (so it shows before a failure)."""
        for name in names:
            self._witness_failures.labels(name)

    def observe(self, route: str, status: int, seconds: float, code: str | None) -> None:
        """One answered request: its route template, status, duration and error code."""
        key = (route, status)
        pair = self._by_route.get(key)
        if pair is None:  # routes and statuses are few (templates, not paths)
            pair = self._requests.labels(route, str(status)), self._latency.labels(route)
            self._by_route[key] = pair
        pair[0].inc()
        pair[1].observe(seconds)
        if status >= 400 and code is not None:
            self._refusals.labels(self._code_label(code)).inc()
            if code == "rate_limited":
                self._rate_limited.labels(route).inc()

    def _code_label(self, code: str) -> str:
        if _CODE_RE.fullmatch(code) is None:
            return "other"
        if code not in self._codes:
            if len(self._codes) >= _MAX_CODES:
                return "other"
            self._codes.add(code)
        return code

    def exposition(self) -> bytes:
        """The registry in Prometheus text format."""
        return generate_latest(self.registry)


class SequencerView:
    """What /metrics and /readyz need to know of this process's sequencer (if it has one)."""

    def __init__(
        self,
        enabled: bool,
        running: Callable[[], bool] = lambda: False,
        holds_lock: Callable[[], bool] = lambda: False,
        last_round: Callable[[], float | None] = lambda: None,
    ) -> None:
        self.enabled = enabled
        self.running = running
        self.holds_lock = holds_lock
        self.last_round = last_round


class LogGauges(Collector):
    """Gauges read from the database at scrape time (one short read transaction)."""

    def __init__(
        self,
        engine: Engine,
        witnesses: Sequence[tuple[str, str]],
        sequencer: SequencerView,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.engine = engine
        self.witnesses = witnesses  # (name, verifier key string)
        self.sequencer = sequencer
        self.clock = clock

    def collect(self) -> Iterator[Metric]:
        now = self.clock()
        seq = GaugeMetricFamily(
            "ncii_hub_sequencer_running",
            "1 if this process runs a sequencer task (it may be standing by for the lock)",
        )
        seq.add_metric([], 1 if self.sequencer.enabled and self.sequencer.running() else 0)
        lock = GaugeMetricFamily(
            "ncii_hub_sequencer_lock_held", "1 if this process holds the sequencer lock"
        )
        lock.add_metric([], 1 if self.sequencer.holds_lock() else 0)
        yield from (seq, lock)
        last = self.sequencer.last_round()
        if last is not None:
            yield GaugeMetricFamily(
                "ncii_hub_sequencer_last_round_timestamp_seconds",
                "When this process's sequencer last finished a round (Unix time)",
                value=last,
            )
        ok = GaugeMetricFamily(
            "ncii_hub_database_up", "1 if the database answered this scrape's queries"
        )
        try:
            families = list(self._from_database(now))
        except SQLAlchemyError:
            ok.add_metric([], 0)
            yield ok
            return
        ok.add_metric([], 1)
        yield ok
        yield from families

    def _from_database(self, now: float) -> Iterator[Metric]:
        with read_connection(self.engine) as conn:
            state = conn.execute(select(LOG_STATE.c.size, LOG_STATE.c.published_size)).first()
            size, published = (0, 0) if state is None else (int(state[0]), int(state[1]))
            pending, oldest = conn.execute(
                select(func.count(), func.min(ENTRIES.c.created_at)).where(
                    ENTRIES.c.log_index.is_(None)
                )
            ).one()
            sealed = int(conn.execute(select(func.max(BATCHES.c.end))).scalar() or 0)
            first_unsealed = None
            if sealed < published:
                first_unsealed = conn.execute(
                    select(ENTRIES.c.created_at).where(ENTRIES.c.log_index == sealed)
                ).scalar()
            partners = conn.execute(
                select(PARTNERS.c.name, PARTNERS.c.acked).where(PARTNERS.c.revoked.is_(False))
            ).all()
            status = {
                str(r[0]): (r[1], r[2], r[3])
                for r in conn.execute(
                    select(
                        WITNESS_STATUS.c.witness_key,
                        WITNESS_STATUS.c.cosigned_size,
                        WITNESS_STATUS.c.cosigned_at,
                        WITNESS_STATUS.c.failures,
                    )
                ).all()
            }

        def gauge(name: str, text: str, value: float) -> GaugeMetricFamily:
            return GaugeMetricFamily(name, text, value=value)

        yield gauge("ncii_hub_log_size", "Entries sequenced into the log", size)
        yield gauge(
            "ncii_hub_log_published_size", "Tree size of the published checkpoint", published
        )
        yield gauge("ncii_hub_pending_entries", "Entries accepted, not yet sequenced", pending)
        yield gauge(
            "ncii_hub_sequencing_lag_seconds",
            "Age of the oldest entry waiting to be sequenced (0 when none waits)",
            max(0.0, now - int(oldest)) if pending and oldest is not None else 0.0,
        )
        yield gauge("ncii_hub_feed_sealed_size", "Log entries sealed into feed batches", sealed)
        yield gauge(
            "ncii_hub_sealing_lag_entries",
            "Published log entries not yet sealed into a feed batch",
            max(0, published - sealed),
        )
        yield gauge(
            "ncii_hub_sealing_lag_seconds",
            "Age of the oldest published entry not yet sealed (0 when all are sealed)",
            max(0.0, now - int(first_unsealed)) if first_unsealed is not None else 0.0,
        )
        acked = GaugeMetricFamily(
            "ncii_hub_partner_acked",
            "Log position each active partner acknowledged (label: its registered name)",
            labels=["partner"],
        )
        lag = GaugeMetricFamily(
            "ncii_hub_partner_lag_entries",
            "Published entries each active partner has not acknowledged yet",
            labels=["partner"],
        )
        for name, position in partners:
            acked.add_metric([str(name)], int(position))
            lag.add_metric([str(name)], max(0, published - int(position)))
        yield from (acked, lag)
        size_w = GaugeMetricFamily(
            "ncii_hub_witness_cosigned_size",
            "Largest tree size each witness cosigned (0 before its first cosignature)",
            labels=["witness"],
        )
        behind = GaugeMetricFamily(
            "ncii_hub_witness_lag_entries",
            "Published entries beyond each witness's latest cosignature",
            labels=["witness"],
        )
        at = GaugeMetricFamily(
            "ncii_hub_witness_cosigned_timestamp_seconds",
            "When each witness last cosigned (Unix time; 0 before its first cosignature)",
            labels=["witness"],
        )
        failing = GaugeMetricFamily(
            "ncii_hub_witness_consecutive_failures",
            "Failed cosignature requests to each witness since its last success",
            labels=["witness"],
        )
        for name, key in self.witnesses:
            cosigned, when, failures = status.get(key, (None, None, 0))
            got = int(cosigned or 0)
            size_w.add_metric([name], got)
            behind.add_metric([name], max(0, published - got))
            at.add_metric([name], int(when or 0))
            failing.add_metric([name], int(failures or 0))
        yield from (size_w, behind, at, failing)


def route_template(scope: Scope) -> str:
    """The template of the route that handled the request (``/tile/{path:path}``), which the
    router leaves in the scope; never the raw path. ``other`` when no route matched."""
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) else "other"


class ObserveRequests:
    """ASGI middleware: times each request and counts it by route template and status; for an
    error answer, reads the code from its small JSON body (``{"error": {"code": ...}}``)."""

    def __init__(self, app: ASGIApp, metrics: HubMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        body = bytearray()
        is_json = False

        async def watch(message: MutableMapping[str, Any]) -> None:
            nonlocal status, is_json
            if message["type"] == "http.response.start":
                status = int(message["status"])
                for name, value in message.get("headers", ()):
                    if name.lower() == b"content-type":
                        is_json = value.split(b";", 1)[0].strip().lower() == b"application/json"
            elif message["type"] == "http.response.body" and status >= 400 and is_json:
                if len(body) < _ERROR_BODY_CAP:
                    body.extend(message.get("body", b"")[: _ERROR_BODY_CAP - len(body)])
            await send(message)

        failed = False
        try:
            await self.app(scope, receive, watch)
        except Exception:
            failed = True  # answered 500 by Starlette's outermost handler (hub.app)
            raise
        finally:
            code = error_code(bytes(body)) if status >= 400 else None
            if failed:
                status, code = 500, "internal_error"
            elif status >= 400 and code is None:
                code = "other"
            seconds = time.perf_counter() - started
            self.metrics.observe(route_template(scope), status, seconds, code)


def error_code(body: bytes) -> str | None:
    """The ``code`` of an error answer's JSON body (its first _ERROR_BODY_CAP bytes, as
    ObserveRequests keeps), or None if it has none."""
    try:
        doc = json.loads(bytes(body[:_ERROR_BODY_CAP]))
    except ValueError:
        return None
    error = doc.get("error") if isinstance(doc, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    return code if isinstance(code, str) else None


def metrics_allowed(scope: Scope, public: bool) -> bool:
    """Whether this request may read /metrics: always with ``metrics_public``; otherwise only
    from a loopback peer that is not relaying for someone (no header a proxy adds) and that
    names a loopback host (``localhost``, ``127.0.0.1``, ``[::1]``)."""
    if public:
        return True
    client = scope.get("client")
    host = client[0] if client else None
    try:
        loopback = host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
    if not loopback:
        return False
    headers: list[tuple[bytes, bytes]] = scope.get("headers", [])
    if any(
        name.lower() in _FORWARDING_HEADERS or name.lower().startswith(b"x-forwarded")
        for name, _ in headers
    ):
        return False
    # DNS rebinding: a web page the operator opens on this machine can point its own name
    # at 127.0.0.1; the browser then connects from loopback but names the page's host.
    hosts = [value for name, value in headers if name.lower() == b"host"]
    return len(hosts) <= 1 and all(_loopback_host(h) for h in hosts)


def _loopback_host(value: bytes) -> bool:
    """Whether a Host header names this machine: ``localhost`` or a loopback address (any
    port)."""
    host = value.decode("latin-1").strip().lower()
    if host.startswith("["):
        host = host[1 : host.find("]")] if "]" in host else ""
    elif host.count(":") == 1:
        host = host.partition(":")[0]
    if host in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
