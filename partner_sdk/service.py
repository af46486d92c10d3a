"""``ncii-partner serve``: a local HTTP match service for a platform's upload pipeline.

Why a local service: upload workers in any language POST a file or a hash to 127.0.0.1 and
get candidates back, while the index stays in one warm process that follows the store as
sync changes it (a background thread polls the store's cursor; no restart).

Why it is guarded although it is local: any web page an employee opens can reach loopback
(simple cross-origin POSTs, DNS rebinding), and an answer over the stored hashes is an oracle
on them. So every request must name an allowed ``Host`` (421 otherwise), carry the bearer
token when one is set (401), and POSTs must carry ``X-NCII-Match: 1`` (403) and a JSON or
raw-bytes content type (415), which a page cannot send without a CORS preflight that this
service never grants. Thresholds are capped (at most 64 bits: specs/matching.md 6.3); answers
name entries by log index and never carry a hash value. Work is bounded: request bodies,
JSON depth, concurrent matching requests, decoded pixels per picture and in total, idle and
slow connections. Routes, formats and limits: specs/matching.md section 6.

For operators: ``GET /healthz`` (the process answers) and ``GET /readyz`` (the store opens
afresh and reads, the index is loaded and its reloads succeed; 503 otherwise) need no token and
tell a stranger only alive/ready. ``GET /stats`` and ``GET /metrics`` (Prometheus text format,
from a registry of this app alone) reveal defence state (suppressed candidates by reason,
quarantines), from which a caller comparing counters around its own query would learn that a
suppressed entry was near it; so they need the operator credential (``--operator-token-file``),
never the match token (see :meth:`_Guard._operator` for the default without one). Metric labels
come from fixed vocabularies (endpoint paths, outcomes, refusal codes, algorithm names); never a
hash value, address or token.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import logging
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector
from starlette.concurrency import run_in_threadpool

from crypto import boundedjson
from hashing import MATCH_THRESHOLD, HashingError, PdqHash, VpdqFeature
from hashing.image import DEFAULT_MAX_PIXELS
from partner_sdk.defences import DEFAULT_FLOOD_LIMIT, DEFAULT_FLOOD_WINDOW, Defences, FloodPolicy
from partner_sdk.errors import PartnerError, UsageError
from partner_sdk.matcher import STORE_FILE, ExactDigest, Match, Matcher, Query, VideoQuery
from partner_sdk.servelimits import MAX_JSON_DEPTH, Busy, PixelBudget

__all__ = ["HARD_MAX_THRESHOLD", "MATCH_HEADER", "ServiceSettings", "create_app", "parse_hash"]

HARD_MAX_THRESHOLD: Final = 64
"""No setting lets a caller ask for more: specs/matching.md 6.3 says why."""

MATCH_HEADER: Final = "x-ncii-match"
"""Every POST must carry ``X-NCII-Match: 1``; browsers cannot add it without a preflight."""

LOOPBACK_HOSTS: Final = frozenset({"localhost", "127.0.0.1", "[::1]"})

_HEX = frozenset("0123456789abcdef")
_SIZES = {"pdq": 32, "md5": 16, "sha256": 32}
_FILE_TYPES = ("application/octet-stream", "image/", "video/")
_HOST_NAME = frozenset("abcdefghijklmnopqrstuvwxyz0123456789.-")
_MATCH_PATHS = frozenset({"/v1/match/file", "/v1/match/hash", "/v1/match/hashes"})
_OPERATOR_PATHS = frozenset({"/stats", "/metrics"})  # they reveal defence state
_FORWARDING = frozenset({b"forwarded", b"via", b"x-real-ip", b"true-client-ip"})
_OPERATOR = "ncii.operator"  # scope key: the request may read operator details (/readyz)
_ENDPOINTS = _MATCH_PATHS | {"/health", "/stats", "/healthz", "/readyz", "/metrics"}
_REFUSAL = "ncii.refusal"  # scope keys: the refusal code, the number of matches answered
_MATCHES = "ncii.matches"
_log = logging.getLogger("partner_sdk.service")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class ServiceSettings:
    """What ``serve`` runs with; every value is checked here (UsageError, exit status 2).

    A host that is not loopback needs ``allow_remote``, and ``allow_remote`` needs a
    ``token``. ``operator_token`` alone opens /stats and /metrics and must differ from
    ``token``. Neither is ever shown (``repr=False``) nor logged.
    """

    directory: Path
    host: str = "127.0.0.1"
    port: int = 8765
    threshold: int = MATCH_THRESHOLD
    max_threshold: int = MATCH_THRESHOLD
    rotations: bool = False
    allowed_hosts: tuple[str, ...] = ()
    token: bytes | None = field(default=None, repr=False)
    operator_token: bytes | None = field(default=None, repr=False)
    allow_remote: bool = False
    max_file_bytes: int = 256 << 20
    max_json_bytes: int = 8 << 20
    max_batch: int = 10_000
    max_frames: int = 100_000
    max_concurrent: int = 4
    max_pixels: int = 50_000_000
    pixel_budget: int = 100_000_000
    busy_wait: float = 1.0
    body_timeout: float = 60.0
    header_timeout: float = 10.0
    max_connections: int = 64
    poll_seconds: float = 1.0
    flood_limit: int = DEFAULT_FLOOD_LIMIT
    flood_window: float = DEFAULT_FLOOD_WINDOW

    def __post_init__(self) -> None:
        FloodPolicy(self.flood_limit, self.flood_window)  # UsageError when out of range
        if not self.allow_remote and not _is_loopback(self.host):
            raise UsageError(
                "bind the match service to 127.0.0.1 (or ::1), or pass --allow-remote with "
                "--token-file and put TLS in front of it"
            )
        if self.allow_remote and self.token is None:
            raise UsageError("--allow-remote needs --token-file: remote callers must send it")
        if (
            self.token is not None
            and self.operator_token is not None
            and hmac.compare_digest(self.token, self.operator_token)
        ):
            raise UsageError(
                "--operator-token-file must hold a different token from --token-file: "
                "callers must not read the defence counters"
            )
        if not 0 <= self.port <= 65535:
            raise UsageError("the port is between 0 and 65535")
        if not 0 <= self.max_threshold <= HARD_MAX_THRESHOLD:
            raise UsageError(
                f"--max-threshold is 0..{HARD_MAX_THRESHOLD}: larger ones let callers probe "
                "the stored hashes (specs/matching.md 6.3)"
            )
        if not 0 <= self.threshold <= self.max_threshold:
            raise UsageError(f"--threshold is 0..--max-threshold ({self.max_threshold})")
        if min(self.max_file_bytes, self.max_json_bytes, self.max_batch, self.max_frames) < 1:
            raise UsageError("size limits must be positive")
        if not 1 <= self.max_concurrent <= 64:
            raise UsageError("--max-concurrent is 1..64")
        if not 1 <= self.max_pixels <= DEFAULT_MAX_PIXELS:
            raise UsageError(f"--max-pixels is 1..{DEFAULT_MAX_PIXELS}")
        if not self.max_pixels <= self.pixel_budget <= 1 << 32:
            raise UsageError("--pixel-budget is at least --max-pixels (and at most 2^32)")
        if not 0 <= self.busy_wait <= 60:
            raise UsageError("--busy-wait is 0..60 seconds")
        if not (0 < self.body_timeout <= 3600 and 0 < self.header_timeout <= 300):
            raise UsageError("--body-timeout is 0..3600 and --header-timeout 0..300 seconds")
        if not 1 <= self.max_connections <= 10_000:
            raise UsageError("--max-connections is 1..10000")
        if not self.poll_seconds > 0:
            raise UsageError("poll_seconds must be positive")
        for name in self.allowed_hosts:
            _allowed_name(name)

    def hosts(self) -> frozenset[str]:
        """Host names (without port) a request may name: loopback, the bound IP, extras."""
        names = set(LOOPBACK_HOSTS) | {_allowed_name(n) for n in self.allowed_hosts}
        try:
            ip = ipaddress.ip_address(self.host)
        except ValueError:
            pass
        else:
            if not ip.is_unspecified:
                names.add(f"[{ip}]" if ip.version == 6 else str(ip))
        return frozenset(names)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _allowed_name(name: str) -> str:
    """An --allowed-host value as compared with Host headers: lower case, IPv6 in brackets."""
    value = name.strip().lower()
    try:
        ip = ipaddress.ip_address(value.removeprefix("[").removesuffix("]"))
    except ValueError:
        if value and _HOST_NAME.issuperset(value) and not value.startswith((".", "-")):
            return value
        raise UsageError(f"--allowed-host {name!r} is not a host name or IP address") from None
    return f"[{ip}]" if ip.version == 6 else str(ip)


def _host_of(value: str) -> str | None:
    """The name part of a Host header (``name``, ``name:port``, ``[v6]:port``); None if bad."""
    value = value.lower()
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return None
        name, rest = value[: end + 1], value[end + 1 :]
    else:
        name, colon, port = value.partition(":")
        rest = colon + port
    if rest and not (rest[0] == ":" and rest[1:].isascii() and rest[1:].isdigit()):
        return None
    return name


class _BadRequest(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code = status, code


def _hex(value: object, size: int, name: str) -> bytes:
    if not isinstance(value, str) or len(value) != 2 * size or not _HEX.issuperset(value):
        raise _BadRequest(400, "bad_hash", f"{name} must be {2 * size} lowercase hex digits")
    return bytes.fromhex(value)


def _quality(value: object) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
        raise _BadRequest(400, "bad_hash", "quality must be an integer between 0 and 100")
    return value


def parse_hash(item: object, max_frames: int) -> Query:
    """One hash object of the API (specs/matching.md 6.2) -> a matcher query; strict."""
    if not isinstance(item, dict):
        raise _BadRequest(400, "bad_hash", "each hash is a JSON object")
    algorithm = item.get("algorithm")
    allowed = {"algorithm", "hash", "quality"} if algorithm != "vpdq" else {"algorithm", "frames"}
    if set(item) - allowed:
        raise _BadRequest(400, "bad_hash", f"unknown fields for {algorithm!s:.10}")
    if algorithm == "pdq":
        return PdqHash(_hex(item.get("hash"), 32, "a PDQ hash"), _quality(item.get("quality")))
    if algorithm in ("md5", "sha256"):
        return ExactDigest(algorithm, _hex(item.get("hash"), _SIZES[algorithm], algorithm))
    if algorithm == "vpdq":
        frames = item.get("frames")
        if not isinstance(frames, list) or not 1 <= len(frames) <= max_frames:
            raise _BadRequest(400, "bad_hash", f"frames is a list of 1..{max_frames} objects")
        features = []
        for i, f in enumerate(frames):
            if not isinstance(f, dict) or set(f) - {"quality", "hash", "frame", "timestamp"}:
                raise _BadRequest(400, "bad_hash", "a frame is {quality, hash}")
            q = _quality(f.get("quality"))
            features.append(VpdqFeature(i, q, PdqHash(_hex(f.get("hash"), 32, "a frame"), q), 0.0))
        return VideoQuery(tuple(features))
    raise _BadRequest(400, "bad_hash", "algorithm is one of pdq, md5, sha256, vpdq")


async def _body(request: Request, cap: int, timeout: float) -> bytes:
    """The raw body, refused with 413 as soon as it exceeds ``cap`` (before any parsing) and
    with 408 when it has not all arrived within ``timeout`` seconds."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isascii() or not declared.isdigit() or len(declared) > 18:
            raise _BadRequest(400, "bad_request", "invalid Content-Length")
        if int(declared) > cap:
            raise _BadRequest(413, "too_large", f"the body is larger than {cap} bytes")
    buf = bytearray()
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.stream():
                buf += chunk
                if len(buf) > cap:
                    raise _BadRequest(413, "too_large", f"the body is larger than {cap} bytes")
    except TimeoutError:
        raise _BadRequest(408, "body_timeout", f"the body took over {timeout:g} s") from None
    return bytes(buf)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise ValueError("duplicate key")
    return out


def _json(raw: bytes, max_containers: int) -> Any:
    """Strict UTF-8 JSON (crypto.boundedjson): depth and container count bounded before
    parsing, no duplicate keys, no NaN/Infinity, no unpaired surrogates."""
    try:
        return boundedjson.loads(
            raw,
            max_bytes=len(raw),
            max_depth=MAX_JSON_DEPTH,
            max_items=max_containers,
            object_pairs_hook=_no_duplicates,
        )
    except boundedjson.JsonBoundsError as exc:
        raise _BadRequest(400, "bad_json", f"the body is refused: {exc}") from None


def _threshold(request: Request, default: int, maximum: int) -> int:
    raw = request.query_params.get("threshold")
    if raw is None:
        return default
    if not raw.isascii() or not raw.isdigit() or len(raw) > 3 or int(raw) > maximum:
        raise _BadRequest(400, "bad_threshold", f"threshold is an integer between 0 and {maximum}")
    return int(raw)


class _Reloader:
    """Polls the store's cursor and applies sync's changes to the index in place."""

    def __init__(self, matcher: Matcher, every: float) -> None:
        self.matcher, self.every = matcher, every
        self.stop = threading.Event()
        self.last_error: str | None = None
        self.last_check = 0.0
        self.thread = threading.Thread(target=self._run, name="ncii-match-reload", daemon=True)

    def _run(self) -> None:
        while not self.stop.wait(self.every):
            try:
                self.matcher.refresh()
                self.last_error = None
            except PartnerError as exc:  # keep serving the last good index
                self.last_error = type(exc).__name__
            self.last_check = time.time()


def _error(status: int, code: str, message: str, **headers: str) -> JSONResponse:
    return JSONResponse(
        {"v": 1, "error": code, "message": message}, status_code=status, headers=headers
    )


def _unauthorized(message: str) -> JSONResponse:
    return _error(401, "unauthorized", message, **{"WWW-Authenticate": "Bearer"})


def _same(given: bytes | None, token: bytes) -> bool:
    """A bearer credential equals ``token``; compare_digest's time does not depend on where
    they differ."""
    return given is not None and hmac.compare_digest(given, token)


def _is_loopback_ip(peer: str) -> bool:
    try:
        return ipaddress.ip_address(peer).is_loopback
    except ValueError:
        return False


class _Guard:
    """ASGI middleware run before any route: Host allow-list, bearer token, then for POSTs
    the custom header and the content type. Refusals are JSON and carry no CORS header."""

    def __init__(
        self,
        app: ASGIApp,
        hosts: frozenset[str],
        token: bytes | None,
        operator_token: bytes | None = None,
    ) -> None:
        self.app, self.hosts, self.token = app, hosts, token
        self.operator_token = operator_token

    def _operator(
        self, scope: Scope, headers: dict[bytes, list[bytes]], host: str, given: bytes | None
    ) -> JSONResponse | None:
        """None when the request may read defence state (/stats, /metrics), else the refusal.

        Why a separate credential: a pipeline caller holding the match token could compare
        the suppression counters before and after a query and learn that a suppressed
        (quarantined, allow-listed, false-positive) entry was near it (specs/partner-defences.md
        section 6). With ``--operator-token-file`` only that token opens these routes. Without
        it they are off when a match token is set (the only credential offered would be the
        match token), and with no token at all they answer only a loopback peer that names a
        loopback Host and sends no forwarding header (so nothing behind a proxy reaches them).
        """
        if self.operator_token is not None:
            if _same(given, self.operator_token):
                return None
            if self.token is not None and _same(given, self.token):
                return _error(
                    403,
                    "operator_only",
                    "the match token does not open this route: send the operator token "
                    "(--operator-token-file)",
                )
            return _unauthorized("send Authorization: Bearer <operator token>")
        if self.token is not None:
            if not _same(given, self.token):
                return _unauthorized("send Authorization: Bearer <token>")
            return _error(
                403,
                "operator_token_required",
                "this route is off while only a match token is set: start serve with "
                "--operator-token-file and send that token",
            )
        client = scope.get("client")
        peer = client[0] if client else ""
        forwarded = any(k in _FORWARDING or k.startswith(b"x-forwarded-") for k in headers)
        if not (_is_loopback_ip(peer) and _host_of(host) in LOOPBACK_HOSTS) or forwarded:
            return _error(
                403,
                "operator_only",
                "without --operator-token-file this route answers only loopback callers that "
                "name a loopback Host and send no forwarding headers",
            )
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self._check(scope)
        if refusal is not None:
            scope[_REFUSAL] = json.loads(bytes(refusal.body))["error"]
        if refusal is None:
            await self.app(scope, receive, send)
        else:
            await refusal(scope, receive, send)

    def _check(self, scope: Scope) -> JSONResponse | None:
        headers: dict[bytes, list[bytes]] = {}
        for key, value in scope["headers"]:
            headers.setdefault(key, []).append(value)

        def one(name: bytes) -> str | None:
            values = headers.get(name, [])
            return values[0].decode("latin-1") if len(values) == 1 else None

        host = one(b"host")
        if host is None or _host_of(host) not in self.hosts:
            return _error(
                421, "misdirected_host", "this Host is not served here (see --allowed-host)"
            )
        method = scope["method"]
        if method not in ("GET", "HEAD", "POST"):
            return _error(405, "method_not_allowed", "GET or POST only", Allow="GET, POST")
        path = scope["path"]
        scheme, _, credential = (one(b"authorization") or "").partition(" ")
        given = credential.encode("latin-1") if scheme.lower() == "bearer" else None
        if path in _OPERATOR_PATHS:
            return self._operator(scope, headers, host, given)
        if path == "/readyz":
            scope[_OPERATOR] = self._operator(scope, headers, host, given) is None
        elif self.token is not None and path != "/healthz" and not _same(given, self.token):
            return _unauthorized("send Authorization: Bearer <token>")
        if method != "POST":
            return None
        if one(MATCH_HEADER.encode()) != "1":
            return _error(403, "missing_match_header", "POSTs must carry X-NCII-Match: 1")
        ctype = (one(b"content-type") or "").partition(";")[0].strip().lower()
        if path == "/v1/match/file":
            ok = ctype.startswith(_FILE_TYPES) and ctype.count("/") == 1
            wanted = "application/octet-stream (or image/*, video/*)"
        else:
            ok, wanted = ctype == "application/json", "application/json"
        if not ok:
            return _error(415, "unsupported_media_type", f"send Content-Type: {wanted}")
        return None


class _Metrics:
    """ASGI middleware outside the guard: counts every request (refusals by the guard too) by
    endpoint and outcome, and times it. Labels come from fixed sets, never from the request."""

    def __init__(self, app: ASGIApp, registry: CollectorRegistry) -> None:
        self.app = app
        self.requests = Counter(
            "ncii_match_requests",
            "Requests by endpoint and outcome (match, no_match, ok, refused, busy, error)",
            ["endpoint", "outcome"],
            registry=registry,
        )
        self.refusals = Counter(
            "ncii_match_refusals",
            "Refused requests by reason (the API's error code)",
            ["reason"],
            registry=registry,
        )
        self.latency = Histogram(
            "ncii_match_request_duration_seconds",
            "Time to answer a request, by endpoint",
            ["endpoint"],
            registry=registry,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        endpoint = path if path in _ENDPOINTS else "other"
        status = 500
        started = time.perf_counter()

        async def watch(message: MutableMapping[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            self.latency.labels(endpoint).observe(time.perf_counter() - started)
            reason = scope.get(_REFUSAL)
            if status < 400:
                if endpoint in _MATCH_PATHS:
                    outcome = "match" if scope.get(_MATCHES, 0) else "no_match"
                else:
                    outcome = "ok"
            elif reason == "busy":
                outcome = "busy"
            elif status < 500:
                outcome = "refused"
            else:
                outcome = "error"
            self.requests.labels(endpoint, outcome).inc()
            if status >= 400 and isinstance(reason, str):
                self.refusals.labels(reason).inc()


@dataclass(frozen=True, slots=True)
class _StoreProbe:
    cursor: int
    checkpoint_size: int | None
    synced_at: int | None


def _probe_store(directory: Path) -> _StoreProbe:
    """Open the store afresh (read-only, never creating it) and read its sync state; raises
    sqlite3.Error or OSError when it cannot, which is what /readyz must notice."""
    path = (directory / STORE_FILE).resolve()
    conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=2.0)
    try:
        row = conn.execute(
            "SELECT cursor, checkpoint_size, synced_at FROM sync_state WHERE id = 1"
        ).fetchone()
    finally:
        conn.close()
    if row is None:
        raise sqlite3.DatabaseError("the store has no sync state")
    return _StoreProbe(int(row[0]), row[1], row[2])


class _StoreGauges(Collector):
    """Gauges read at scrape time: what the index holds and what the last sync verified."""

    def __init__(self, matcher: Matcher, directory: Path, budget: PixelBudget) -> None:
        self.matcher, self.directory, self.budget = matcher, directory, budget

    def _defences(self) -> Iterator[Metric]:
        """Suppressed candidates by reason, quarantines, and what the defences file holds."""
        defences = self.matcher.defences
        if defences is None:
            return
        summary = defences.summary()
        suppressed = CounterMetricFamily(
            "ncii_match_suppressed",
            "Candidates not answered: false_positive, quarantine or allow_list",
            labels=["reason"],
        )
        for reason, n in summary["suppressed"].items():
            suppressed.add_metric([reason], n)
        yield suppressed
        yield CounterMetricFamily(
            "ncii_match_quarantines",
            "Entries this process put in flood quarantine",
            value=defences.quarantines,
        )
        marks = GaugeMetricFamily(
            "ncii_match_marked_entries",
            "Entries with a local mark, by state",
            labels=["state"],
        )
        for state, n in summary["marks"].items():
            marks.add_metric([state], n)
        yield marks
        yield GaugeMetricFamily(
            "ncii_match_allow_list_hashes",
            "Hashes in the local allow list (a video counts its frames)",
            value=summary["allow_hashes"],
        )

    def collect(self) -> Iterator[Metric]:
        yield from self._defences()
        stored = GaugeMetricFamily(
            "ncii_match_stored_hashes",
            "Live hashes in the index by algorithm (vpdq: videos)",
            labels=["algorithm"],
        )
        stats = self.matcher.stats()
        for algorithm, key in (("pdq", "pdq"), ("md5", "md5"), ("sha256", "sha256")):
            stored.add_metric([algorithm], stats[key])
        stored.add_metric(["vpdq"], stats["vpdq_videos"])
        yield stored
        yield GaugeMetricFamily(
            "ncii_match_index_cursor", "Log entries the index has applied", value=stats["cursor"]
        )
        yield GaugeMetricFamily(
            "ncii_match_pixels_in_use",
            "Decoded pixels reserved by requests now",
            value=self.budget.in_use,
        )
        try:
            probe: _StoreProbe | None = _probe_store(self.directory)
        except (sqlite3.Error, OSError):
            probe = None
        if probe is not None and probe.checkpoint_size is not None:
            yield GaugeMetricFamily(
                "ncii_match_sync_checkpoint_size",
                "Tree size of the checkpoint the last sync verified",
                value=probe.checkpoint_size,
            )
        if probe is not None and probe.synced_at is not None:
            yield GaugeMetricFamily(
                "ncii_match_sync_timestamp_seconds",
                "When the last sync stored a verified checkpoint (Unix time)",
                value=probe.synced_at,
            )


def create_app(settings: ServiceSettings, matcher: Matcher | None = None) -> Any:
    """Build the guarded service (an ASGI app); opens the store unless given a matcher."""
    budget = PixelBudget(settings.pixel_budget, settings.busy_wait)
    defences: Defences | None = None
    if matcher is None:
        if not (settings.directory / STORE_FILE).is_file():  # before creating defences.sqlite3
            raise UsageError(f"no store in {settings.directory}: run 'ncii-partner sync' first")
        defences = Defences(
            settings.directory, flood=FloodPolicy(settings.flood_limit, settings.flood_window)
        )
    m = matcher or Matcher(
        settings.directory,
        threshold=settings.threshold,
        rotations=settings.rotations,
        max_file_bytes=settings.max_file_bytes,
        max_pixels=settings.max_pixels,
        pixel_budget=budget,
        defences=defences or False,
    )
    reloader = _Reloader(m, settings.poll_seconds)
    slots = asyncio.Semaphore(settings.max_concurrent)
    max_containers = settings.max_batch + settings.max_frames + 16

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        reloader.thread.start()
        try:
            yield
        finally:
            reloader.stop.set()
            reloader.thread.join(timeout=10)
            if matcher is None:
                m.close()
            if defences is not None:
                defences.close()

    @asynccontextmanager
    async def slot() -> AsyncIterator[None]:
        """One of ``max_concurrent`` matching slots, or 503 after ``busy_wait`` seconds."""
        if not slots.locked():
            await slots.acquire()  # free: returns without yielding to the loop
        elif settings.busy_wait == 0:
            raise Busy("every matching slot is in use")
        else:
            try:
                await asyncio.wait_for(slots.acquire(), timeout=settings.busy_wait)
            except TimeoutError:
                raise Busy("every matching slot is in use") from None
        try:
            yield
        finally:
            slots.release()

    app = FastAPI(
        title="ncii-partner match",
        lifespan=lifespan,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )

    registry = CollectorRegistry(auto_describe=True)
    found = Counter(
        "ncii_match_matches",
        "Candidate matches answered, by the stored entry's algorithm",
        ["algorithm"],
        registry=registry,
    )
    registry.register(_StoreGauges(m, settings.directory, budget))

    def refused(request: Request, status: int, code: str, message: str, **h: str) -> JSONResponse:
        request.scope[_REFUSAL] = code
        return _error(status, code, message, **h)

    def count(request: Request, matches: list[Match]) -> None:
        request.scope[_MATCHES] = len(matches)
        for match in matches:
            found.labels(match.algorithm).inc()

    @app.exception_handler(_BadRequest)
    async def bad_request(request: Request, exc: _BadRequest) -> JSONResponse:
        return refused(request, exc.status, exc.code, str(exc))

    @app.exception_handler(Busy)
    async def busy(request: Request, exc: Busy) -> JSONResponse:
        return refused(request, 503, "busy", str(exc), **{"Retry-After": "1"})

    @app.exception_handler(HashingError)
    async def bad_hash(request: Request, exc: HashingError) -> JSONResponse:
        return refused(request, 400, "bad_hash", type(exc).__name__)

    @app.exception_handler(404)
    async def not_found(request: Request, exc: Exception) -> JSONResponse:
        return refused(request, 404, "not_found", "no such route")

    @app.exception_handler(405)
    async def wrong_method(request: Request, exc: Exception) -> JSONResponse:
        return refused(request, 405, "method_not_allowed", "wrong method for this route")

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        return {"v": 1, "status": "alive"}

    @app.get("/readyz")
    def readyz(request: Request) -> JSONResponse:
        problems: dict[str, str] = {}
        body: dict[str, Any] = {"v": 1, "index_cursor": m.cursor}
        try:
            probe = _probe_store(settings.directory)
        except (sqlite3.Error, OSError) as exc:
            problems["store"] = f"the store cannot be opened and read ({type(exc).__name__})"
        else:
            body.update(
                store_cursor=probe.cursor,
                checkpoint_size=probe.checkpoint_size,
                synced_at=probe.synced_at,
                sync_age_seconds=None
                if not probe.synced_at
                else max(0, int(time.time()) - probe.synced_at),
                index_behind=max(0, probe.cursor - m.cursor),
            )
        if reloader.last_error is not None:
            problems["index"] = f"the index could not follow the store ({reloader.last_error})"
        if problems:
            _log.warning(
                "not ready: %s", "; ".join(problems.values()), extra={"checks": ",".join(problems)}
            )
        body.update(ready=not problems, problems=problems)
        if not request.scope.get(_OPERATOR):  # anyone may ask; only operators see the state
            body = {"v": 1, "ready": not problems, "problems": sorted(problems)}
        return JSONResponse(
            body, status_code=503 if problems else 200, headers={"Cache-Control": "no-cache"}
        )

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"v": 1, "status": "ok", "cursor": m.cursor}

    @app.get("/stats")
    def stats() -> dict[str, Any]:
        out = m.stats()
        out["max_threshold"] = settings.max_threshold
        out["reload"] = {
            "poll_seconds": settings.poll_seconds,
            "last_check": reloader.last_check,
            "last_error": reloader.last_error,
        }
        out["limits"] = {
            "max_concurrent": settings.max_concurrent,
            "max_pixels": settings.max_pixels,
            "pixel_budget": settings.pixel_budget,
            "pixels_in_use": budget.in_use,
        }
        return out

    def threshold(request: Request) -> int:
        return _threshold(request, settings.threshold, settings.max_threshold)

    @app.post("/v1/match/file")
    async def match_file(request: Request) -> dict[str, Any]:
        t = threshold(request)
        kind = request.query_params.get("kind")
        if kind not in (None, "image"):
            raise _BadRequest(400, "bad_request", "kind is image or absent")
        async with slot():
            data = await _body(request, settings.max_file_bytes, settings.body_timeout)
            work = m.match_image_bytes if kind == "image" else m.match_bytes
            result = await run_in_threadpool(work, data, threshold=t)
        count(request, list(result.matches))
        return {"v": 1, **result.to_json()}

    def one_query(raw: bytes) -> Query:
        return parse_hash(_json(raw, max_containers), settings.max_frames)

    def many_queries(raw: bytes) -> list[Query]:
        doc = _json(raw, max_containers)
        items = doc.get("hashes") if isinstance(doc, dict) and set(doc) == {"hashes"} else None
        if not isinstance(items, list) or not 1 <= len(items) <= settings.max_batch:
            raise _BadRequest(400, "bad_request", f'{{"hashes": [1..{settings.max_batch}]}}')
        return [parse_hash(item, settings.max_frames) for item in items]

    # Parsing runs in the thread pool too: 8 MiB of JSON must not stall the event loop.
    @app.post("/v1/match/hash")
    async def match_hash(request: Request) -> dict[str, Any]:
        t = threshold(request)
        async with slot():
            raw = await _body(request, settings.max_json_bytes, settings.body_timeout)
            query = await run_in_threadpool(one_query, raw)
            hits = await run_in_threadpool(m.match_hashes, [query], threshold=t)
        count(request, list(hits[0]))
        return {"v": 1, "matches": [x.to_json() for x in hits[0]]}

    @app.post("/v1/match/hashes")
    async def match_hashes(request: Request) -> dict[str, Any]:
        t = threshold(request)
        async with slot():
            raw = await _body(request, settings.max_json_bytes, settings.body_timeout)
            queries = await run_in_threadpool(many_queries, raw)
            hits = await run_in_threadpool(m.match_hashes, queries, threshold=t)
        count(request, [x for f in hits for x in f])
        return {"v": 1, "results": [{"matches": [x.to_json() for x in f]} for f in hits]}

    guard = _Guard(app, settings.hosts(), settings.token, settings.operator_token)
    return _Metrics(guard, registry)


def serve(settings: ServiceSettings, log_format: str = "text") -> None:
    """Run the service until interrupted (uvicorn with a header timeout and connection cap);
    logs go to stderr as ``log_format`` (text or json)."""
    import warnings

    from PIL import Image

    from partner_sdk.httpserver import run
    from partner_sdk.logformat import configure_logging

    # Pictures over Pillow's own warning size are refused by max_pixels; in this process only,
    # do not print Pillow's warning for each of them.
    warnings.simplefilter("ignore", Image.DecompressionBombWarning)
    configure_logging(log_format)
    app = create_app(settings)
    where = f"[{settings.host}]" if ":" in settings.host else settings.host
    auth = "bearer token required" if settings.token is not None else "no token"
    if settings.operator_token is not None:
        auth += "; /stats and /metrics need the operator token"
    elif settings.token is not None:
        auth += "; /stats and /metrics off (no --operator-token-file)"
    else:
        auth += "; /stats and /metrics for direct loopback callers only"
    _log.info(
        "matching on http://%s:%d (%s; candidates for human review, not verdicts)",
        where,
        settings.port,
        auth,
        extra={"port": settings.port, "token_required": settings.token is not None},
    )
    run(
        app,
        host=settings.host,
        port=settings.port,
        header_timeout=settings.header_timeout,
        max_connections=settings.max_connections,
        log_format=log_format,
    )
