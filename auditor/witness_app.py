"""The witness's HTTP edge (FastAPI): routes parse and delegate to :class:`Witness`.

Routes (specs/witness.md §2, §5): ``POST /add-checkpoint`` (C2SP tlog-witness),
``GET /checkpoint/<origin>`` (latest cosigned checkpoint), ``GET /witness`` (identity and logs),
and for operators ``GET /healthz`` (the process answers), ``GET /readyz`` (the state store opens
afresh, reads and takes its write lock; the key and logs are loaded) and ``GET /metrics``
(Prometheus text format, from a registry of this app alone: several apps may share a process).
Metric labels are status codes, route templates and the configured logs' public origins; never
a request's content.
Bodies are capped in size and in time (``--body-timeout``) before they are read in full; the
request head's own deadline and the connection cap are :mod:`auditor.httpguard`.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector
from starlette.requests import ClientDisconnect
from starlette.routing import Match

from auditor.httpguard import DEFAULT_BODY_TIMEOUT
from auditor.witness import TEXT, Witness
from crypto.witness_protocol import MAX_REQUEST_BYTES

__all__ = ["create_app"]

_log = logging.getLogger("auditor.witness")


def _plain(status: int, message: str) -> Response:
    return Response(message + "\n", status_code=status, media_type=TEXT)


def _refuse_body(status: int, message: str) -> Response:
    """An answer sent before the body was read: close the connection, so the rest of the body
    (still trickling in, perhaps) is not kept open and read."""
    return Response(
        message + "\n", status_code=status, media_type=TEXT, headers={"Connection": "close"}
    )


class _LogSizes(Collector):
    """Per-log gauges read from the store at scrape time (origins are public log names)."""

    def __init__(self, witness: Witness) -> None:
        self.witness = witness

    def collect(self) -> Iterator[Metric]:
        size = GaugeMetricFamily(
            "ncii_witness_log_cosigned_size",
            "Tree size of the latest checkpoint cosigned, per configured log",
            labels=["origin"],
        )
        at = GaugeMetricFamily(
            "ncii_witness_log_cosigned_timestamp_seconds",
            "When the latest checkpoint of each configured log was cosigned (Unix time)",
            labels=["origin"],
        )
        logs = GaugeMetricFamily("ncii_witness_logs", "Logs this witness is configured for")
        logs.add_metric([], len(self.witness.logs))
        try:
            records = self.witness.store.all()
        except sqlite3.Error:
            records = []
        for record in records:
            if record.origin in self.witness.logs:
                size.add_metric([record.origin], record.size)
                at.add_metric([record.origin], record.cosigned_at)
        yield from (size, at, logs)


def _readiness(witness: Witness) -> dict[str, str]:
    """Each check's problem (empty when ready): a fresh connection must open the state file
    (never creating it), read it and take its write lock, and the key and logs be loaded."""
    problems: dict[str, str] = {}
    try:
        uri = f"{witness.store.path.resolve().as_uri()}?mode=rw"
        conn = sqlite3.connect(uri, uri=True, timeout=2.0, isolation_level=None)
        try:
            conn.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")
        finally:
            conn.close()
    except (sqlite3.Error, OSError) as exc:
        problems["state"] = f"the state store cannot be read and written ({type(exc).__name__})"
    if not witness.logs:
        problems["logs"] = "no log configured"
    if not witness.verifier.encode():
        problems["key"] = "the witness key is not loaded"
    return problems


def _route_of(app: FastAPI, scope: MutableMapping[str, Any]) -> str:
    """The matched route's template (``/checkpoint/{origin}``), never the raw path."""
    for route in app.router.routes:
        match, _ = route.matches(scope)
        if match is Match.FULL:
            path = getattr(route, "path", "")
            return path.replace("{origin:path}", "{origin}") if path else "other"
    return "other"


def create_app(witness: Witness, body_timeout: float = DEFAULT_BODY_TIMEOUT) -> FastAPI:
    """Build the witness service around one :class:`Witness` (no import-time state)."""
    app = FastAPI(title="ncii-audit witness", docs_url=None, redoc_url=None, openapi_url=None)
    registry = CollectorRegistry(auto_describe=True)
    requests = Counter(
        "ncii_witness_http_requests",
        "HTTP requests answered, by route template and status code",
        ["route", "status"],
        registry=registry,
    )
    latency = Histogram(
        "ncii_witness_http_request_duration_seconds",
        "Time to answer a request, by route template",
        ["route"],
        registry=registry,
    )
    cosign = Counter(
        "ncii_witness_add_checkpoint_requests",
        "add-checkpoint requests by result: cosigned, or the status code of the refusal",
        ["result"],
        registry=registry,
    )
    cosigned = Counter(
        "ncii_witness_cosignatures", "Cosignatures issued (all logs)", registry=registry
    )
    registry.register(_LogSizes(witness))
    app.state.metrics_registry = registry

    @app.middleware("http")
    async def measure(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        route = _route_of(app, request.scope)
        response = await call_next(request)
        latency.labels(route).observe(time.perf_counter() - started)
        requests.labels(route, str(response.status_code)).inc()
        if route == "/add-checkpoint":
            if response.status_code == 200:
                cosign.labels("cosigned").inc()
                cosigned.inc()
            else:
                cosign.labels(str(response.status_code)).inc()
        return response

    @app.get("/healthz")
    def healthz() -> Response:
        return _plain(200, "alive")

    @app.get("/readyz")
    def readyz() -> JSONResponse:
        problems = _readiness(witness)
        if problems:
            _log.warning(
                "not ready: %s", "; ".join(problems.values()), extra={"checks": ",".join(problems)}
            )
        body = {"ready": not problems, "problems": problems}
        return JSONResponse(
            body, status_code=503 if problems else 200, headers={"Cache-Control": "no-cache"}
        )

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    @app.post("/add-checkpoint")
    async def add_checkpoint(request: Request) -> Response:
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > MAX_REQUEST_BYTES):
            return _refuse_body(413, f"request body above {MAX_REQUEST_BYTES} bytes")
        chunks: list[bytes] = []
        total = 0
        try:
            async with asyncio.timeout(body_timeout):
                async for chunk in request.stream():
                    total += len(chunk)
                    if total > MAX_REQUEST_BYTES:
                        return _refuse_body(413, f"request body above {MAX_REQUEST_BYTES} bytes")
                    chunks.append(chunk)
        except TimeoutError:
            return _refuse_body(408, f"request body not received within {body_timeout:g} s")
        except ClientDisconnect:
            return _refuse_body(400, "the client went away before sending its whole body")
        answer = await run_in_threadpool(witness.add_checkpoint, b"".join(chunks))
        # Set verbatim: Starlette would append "; charset=utf-8" to text/x.tlog.size.
        return Response(
            answer.body, status_code=answer.status, headers={"Content-Type": answer.content_type}
        )

    @app.get("/checkpoint/{origin:path}")
    def latest_checkpoint(origin: str) -> Response:
        note = witness.latest(origin)
        if note is None:
            return _plain(404, "no checkpoint cosigned for that origin")
        return Response(note, media_type=TEXT, headers={"Cache-Control": "no-cache"})

    @app.get("/witness")
    def identity() -> JSONResponse:
        sizes = {r.origin: r.size for r in witness.store.all()}
        body: dict[str, Any] = {
            "name": witness.verifier.name,
            "verifier_key": witness.verifier.encode(),
            "logs": [
                {"origin": origin, "size": sizes.get(origin)} for origin in sorted(witness.logs)
            ],
        }
        return JSONResponse(body, headers={"Cache-Control": "no-cache"})

    return app
