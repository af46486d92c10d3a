"""``create_app(settings)``: build one hub (FastAPI app) from settings; nothing at import time.

Routes only read the capped body and delegate to services (intake, cases, logapi); the
sequencer runs as a background task in the lifespan, if this process wins the sequencer lock.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import InterfaceError, OperationalError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from crypto import envelope
from crypto.merkle import EMPTY_ROOT
from crypto.tiles import TileHashReader
from hub import cases, intake
from hub.admission import Policy, load_admission_key, purge_buckets
from hub.context import HubContext
from hub.db.engine import create_schema, make_engine
from hub.deadline import BodyDeadline
from hub.erasure import reconcile
from hub.errors import HubError, error_response
from hub.feed import FeedFiles, FeedSealer
from hub.feedapi import feed_router
from hub.feedwait import FeedWatch, feed_stamp
from hub.health import SharedReadiness, readiness
from hub.intakeprep import IntakePreparer
from hub.intakewriter import IntakeWriter, WriterClosedError
from hub.keystore import load_keys
from hub.logapi import log_router
from hub.metrics import (
    CONTENT_TYPE_LATEST,
    LogGauges,
    ObserveRequests,
    SequencerView,
    error_code,
    metrics_allowed,
)
from hub.page import default_web_dir, load_page, page_router
from hub.partners import PartnerRegistry
from hub.puzzle import HEADER as PUZZLE_HEADER
from hub.puzzle import CasePuzzle, puzzle_router
from hub.ratelimit import RateLimiter
from hub.seqlock import lock_for
from hub.sequencer import Sequencer, SequencerTask, sign_tree_head
from hub.settings import Settings
from hub.storage import SqlStorage
from hub.submission import DenyList, load_deny_list
from hub.submitters import SubmitterRegistry
from hub.tilestore import FileTileStore
from hub.vault import VAULT_NAME
from hub.witness_store import CosignatureStore
from hub.witnessapi import attach_cosignatures, witness_router
from hub.witnesses import Cosigner, Published

__all__ = ["ENVELOPE_MEDIA_TYPE", "HubApp", "create_app"]

ENVELOPE_MEDIA_TYPE = "application/vnd.ncii.envelope"
# Envelope bytes around the body: header (6) + purpose (<= 64) + key, time, nonce, length (60)
# + signature (64).
ENVELOPE_OVERHEAD = 6 + 64 + 60 + 64

log = logging.getLogger("ncii.hub")

# The lean path's submissions are prepared by one thread (hub.intakeprep) and stored by
# another (hub.intakewriter). A submission that carries a case puzzle solution is prepared
# on threads of its own: its check is a scrypt run (up to 300 ms at the largest N), anyone can
# send wrong solutions, and the one preparing thread serves every other submission.
PUZZLE_THREADS = 4

_ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
            "required": ["code", "message"],
        }
    },
    "required": ["error"],
}


class HubApp(FastAPI):
    """The hub's FastAPI app, with one lean path: ``POST /v1/submissions`` goes straight to
    ``submissions`` (set by create_app), before Starlette's middleware stack and FastAPI's
    router. Why: at ingest rates that machinery cost more CPU than the submission itself
    (bench/bench_ingest.py). Every other request, and any other method on that path (405),
    takes the ordinary route."""

    submissions: ASGIApp | None = None
    lean: bool = True  # False: the ordinary route answers (tests compare the two)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            self.submissions is not None
            and self.lean
            and scope["type"] == "http"
            and scope["path"] == "/v1/submissions"
            and scope["method"] == "POST"
            and not scope.get("root_path")
        ):
            await self.submissions(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def _envelope_doc(purpose: str, ok: int, what: str) -> dict[str, Any]:
    error = {"content": {"application/json": {"schema": _ERROR_SCHEMA}}}
    return {
        "openapi_extra": {
            "requestBody": {
                "required": True,
                "description": (
                    f"A signed envelope (specs/envelope.md) with purpose {purpose!r}; its body "
                    f"is the JSON described in specs/submission.md ({what})."
                ),
                "content": {
                    ENVELOPE_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}
                },
            }
        },
        "status_code": ok,
        "response_class": Response,
        "responses": {
            ok: {"content": {"application/json": {}}, "description": "accepted"},
            **{
                code: {**error, "description": "refused"}
                for code in (400, 401, 403, 404, 409, 410, 413, 415, 422, 429)
            },
        },
    }


def _sqlstate(exc: Exception) -> str:
    """The database's own error code (PostgreSQL's SQLSTATE, SQLite's error name): it tells a
    deadlock (40P01) from a lost server (08006) in the log without logging the statement or
    its parameters, which may hold case data."""
    orig = getattr(exc, "orig", None)
    code = getattr(orig, "sqlstate", None) or getattr(orig, "sqlite_errorname", None)
    return str(code) if code else "unknown"


def database_down(exc: Exception) -> Response:
    """503 for a lost or restarting database: an outage, not a bug. The request had no effect
    (its transaction rolled back) or is idempotent on retry (specs/hub-api.md 5)."""
    log.warning(
        "database unavailable (%s, SQLSTATE %s); answering 503",
        type(exc).__name__,
        _sqlstate(exc),
    )
    return error_response(
        503,
        "database_unavailable",
        "the hub's database is unavailable; retry shortly",
        {"Retry-After": "1"},
    )


def unexpected(exc: Exception) -> Response:
    """500 for anything else; only the exception's type is logged (never its message, which
    may quote request data)."""
    log.error("unexpected %s while handling a request", type(exc).__name__)
    return error_response(500, "internal_error", "the hub failed; retry later")


def create_app(settings: Settings) -> HubApp:
    """A hub bound to ``settings``: loads keys, opens the database, mounts the routes."""
    keys = load_keys(settings.data_dir, settings.origin)
    site = load_page(settings.web_dir or default_web_dir(), keys.origin, keys.signer)
    engine = make_engine(settings.effective_database_url)
    create_schema(engine, sign_tree_head(keys, 0, EMPTY_ROOT))
    reconcile(engine, keys.vault)  # before serving: keys of anything withdrawn are gone
    storage = SqlStorage(engine)
    tiles = FileTileStore(settings.tiles_dir)
    deny: DenyList = frozenset()
    if settings.deny_list is not None:
        deny = load_deny_list(settings.deny_list)
    ctx = HubContext(
        settings=settings,
        keys=keys,
        storage=storage,
        tiles=tiles,
        deny=deny,
        ip_limiter=RateLimiter(settings.ip_rate, settings.ip_burst, settings.rate_table_size),
        case_limiter=RateLimiter(settings.case_rate, settings.case_burst, settings.rate_table_size),
        admission=Policy.from_settings(settings),
        admission_key=load_admission_key(settings.data_dir),
        submitters=SubmitterRegistry(engine),
        admission_engine=engine,
    )
    case_puzzle = CasePuzzle(settings, keys.master_key, storage)
    ctx.puzzle = case_puzzle
    registry = PartnerRegistry(engine)
    ctx.acked_positions = registry.acked_positions
    feed_files = FeedFiles(settings.feed_dir)
    sealer = FeedSealer(
        engine,
        feed_files,
        keys,
        batch_entries=settings.feed_batch_entries,
        batch_max_bytes=settings.feed_batch_max_bytes,
        max_age=settings.feed_max_age,
        compact_age=settings.feed_compact_age,
    )

    watch = FeedWatch(lambda: feed_stamp(engine))

    def seal_feed() -> None:
        # A feed failure must not stop the log: log it and retry next round.
        try:
            if sealer.step():
                watch.poke()  # long-polling partners of this process learn of it at once
        except Exception:
            log.exception("feed sealer round failed; retrying next round")

    # Witnesses (specs/hub-api.md section 9): only the sequencer's process asks for cosignatures;
    # every process serves the ones stored.
    cosignatures = CosignatureStore(engine)
    cosigner: Cosigner | None = None
    if settings.sequencer and settings.witnesses:

        def published() -> Published:
            state = storage.load_log_state()
            return Published(state.published_size, state.published_state.root(), state.checkpoint)

        cosigner = Cosigner(
            settings.witnesses,
            cosignatures,
            origin=keys.origin,
            published=published,
            reader=lambda size, root: TileHashReader(size, root, tiles.read),
            timeout=settings.witness_timeout,
            max_backoff=settings.witness_max_backoff,
            concurrency=settings.witness_concurrency,
            on_failure=ctx.metrics.witness_failure,
        )

    def after_step() -> None:
        if cosigner is not None:
            cosigner.notify()  # first: cosigning must not wait for the feed sealer
        seal_feed()

    def purge(now: int) -> int:
        return storage.purge_replays(now) + registry.purge_nonces(now) + purge_buckets(engine, now)

    task: SequencerTask | None = None
    if settings.sequencer:
        task = SequencerTask(
            Sequencer(storage, tiles, keys),
            lock_for(settings.effective_database_url, settings.data_dir),
            interval=settings.batch_interval,
            max_entries=settings.batch_max_entries,
            lock_retry=settings.lock_retry_seconds,
            purge=purge,
            after_step=after_step,
            on_recover=sealer.collect_garbage,
            # Idle rounds: a batch due by age is sealed at most this late (a second, or the
            # feed's own age limit if shorter; never more often than rounds run).
            idle_sweep=max(settings.batch_interval, min(1.0, settings.feed_max_age or 1.0)),
        )
        ctx.wake_sequencer = task.wake

    # Operators' endpoints (specs/hub-api.md section 10): /healthz, /readyz, /metrics.
    view = SequencerView(settings.sequencer)
    if task is not None:
        seq_task = task
        view = SequencerView(
            True, seq_task.running, lambda: seq_task.holds_lock, lambda: seq_task.last_round
        )
    ctx.metrics.witness_names([w.name for w in settings.witnesses])
    ctx.metrics.registry.register(
        LogGauges(engine, [(w.name, w.key.encode()) for w in settings.witnesses], view)
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if task is not None:
            # Before serving: lost tiles are rebuilt, or the hub refuses to start.
            await asyncio.to_thread(task.sequencer.restore_tiles)
            task.start()
        if cosigner is not None:
            cosigner.start()
        try:
            yield
        finally:
            if cosigner is not None:
                await cosigner.stop()
            if task is not None:
                await task.stop()
            # No request is running any more: what is prepared is stored, then they end.
            await asyncio.to_thread(puzzle_pool.shutdown)
            await asyncio.to_thread(preparer.close)
            await asyncio.to_thread(writer.close)
            storage.close()  # its replay readers
            engine.dispose()
            # The key store's connection, closed here and not left to the garbage collector
            # (serve freezes the startup heap out of its sight): the last connection to close
            # checkpoints the WAL and removes keys.sqlite3-wal and -shm.
            keys.vault.close()

    app = HubApp(
        title="ncii-hub",
        version="1",
        summary="Signed hash submissions and a verifiable transparency log (specs/hub-api.md)",
        lifespan=lifespan,
        # The interactive pages load scripts and fonts from third-party CDNs: the hub serves
        # no third-party code. /openapi.json (plain JSON, no links) stays.
        docs_url=None,
        redoc_url=None,
    )
    app.state.hub = ctx
    app.add_middleware(BodyDeadline, seconds=settings.body_read_seconds)
    app.add_middleware(ObserveRequests, metrics=ctx.metrics)

    @app.exception_handler(HubError)
    async def _hub_error(_request: Request, exc: HubError) -> Response:
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> Response:
        where = ", ".join(".".join(str(p) for p in e.get("loc", ())) for e in exc.errors()[:3])
        return error_response(400, "invalid_request", f"invalid request parameters: {where}")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail))

    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    async def _database_down(_request: Request, exc: Exception) -> Response:
        return database_down(exc)

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> Response:
        return unexpected(exc)

    cap = settings.max_body_bytes + ENVELOPE_OVERHEAD

    async def read_envelope(client: str, headers: Headers, stream: AsyncIterator[bytes]) -> bytes:
        """Rate-limit the address, check the media type, read at most the cap."""
        wait = ctx.ip_limiter.take(client)
        if wait > 0:
            raise HubError(
                429,
                "rate_limited",
                "too many requests from this address; retry later",
                retry_after=wait,
            )
        media = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media != ENVELOPE_MEDIA_TYPE:
            raise HubError(
                415, "unsupported_media_type", f"send the envelope as {ENVELOPE_MEDIA_TYPE}"
            )
        too_large = HubError(
            413, "body_too_large", f"the request is larger than {cap} bytes; send fewer hashes"
        )
        declared = headers.get("content-length")
        if declared is not None:
            if not declared.isdigit():
                raise HubError(400, "invalid_request", "Content-Length must be a number")
            if int(declared) > cap:
                raise too_large
        buf = bytearray()
        async for chunk in stream:
            buf += chunk
            if len(buf) > cap:
                raise too_large
        return bytes(buf)

    def envelope_route(
        handler: Callable[[HubContext, bytes], tuple[int, bytes]],
    ) -> Callable[[Request], Awaitable[Response]]:
        async def route(request: Request) -> Response:
            client = request.client.host if request.client else "unknown"
            raw = await read_envelope(client, request.headers, request.stream())
            status, body = await run_in_threadpool(handler, ctx, raw)
            return Response(
                body,
                status_code=status,
                media_type="application/json",
                headers={"Cache-Control": "no-store"},
            )

        return route

    async def submission_route(request: Request) -> Response:
        """POST /v1/submissions as an ordinary route: what /openapi.json documents. The hub
        answers it on the lean path (``submissions`` below) before FastAPI routes; this one
        serves only an app whose lean path is switched off (HubApp.lean = False)."""
        client = request.client.host if request.client else "unknown"
        raw = await read_envelope(client, request.headers, request.stream())
        peer = request.client.host if request.client else ""
        status, body = await run_in_threadpool(intake.submit, ctx, raw, peer, request.headers)
        return Response(
            body,
            status_code=status,
            media_type="application/json",
            headers={"Cache-Control": "no-store"},
        )

    body_seconds = settings.body_read_seconds
    puzzle_pool = ThreadPoolExecutor(PUZZLE_THREADS, thread_name_prefix="ncii-puzzle")
    writer = IntakeWriter(keys.vault, storage)
    preparer = IntakePreparer(functools.partial(intake.prepare_each, ctx), writer)

    async def with_puzzle(arrival: intake.Arrival) -> tuple[intake.Prepared | None, Any]:
        """A submission carrying a case puzzle solution, prepared on the puzzle threads."""
        prepared = await asyncio.get_running_loop().run_in_executor(
            puzzle_pool,
            functools.partial(intake.prepare, ctx, arrival.raw, arrival.client, arrival.headers),
        )
        if isinstance(prepared, tuple):
            return None, prepared
        return prepared, await writer.store(prepared)

    async def submissions(scope: Scope, receive: Receive, send: Send) -> None:
        """POST /v1/submissions without FastAPI's routing, dependency and middleware layers,
        answering exactly as they would (HubApp): the body deadline (hub.deadline), the
        exception handlers above, the request metrics (hub.metrics.ObserveRequests)."""
        started = time.perf_counter()
        deadline = asyncio.get_running_loop().time() + body_seconds
        answered = False
        status = 500
        code: str | None = "internal_error"

        async def chunks() -> AsyncIterator[bytes]:
            # Starlette's Request.stream, each wait for the body under the total deadline.
            while True:
                try:
                    async with asyncio.timeout_at(deadline):
                        message = await receive()
                except TimeoutError:
                    raise HubError(
                        408,
                        "request_timeout",
                        f"the request body did not arrive within {body_seconds:g} s; "
                        "send it at once",
                    ) from None
                if message["type"] == "http.request":
                    body = message.get("body", b"")
                    if body:
                        yield body
                    if not message.get("more_body", False):
                        return
                elif message["type"] == "http.disconnect":
                    raise ClientDisconnect()

        async def answer(response: Response) -> None:
            nonlocal answered, status, code
            answered = True
            status = response.status_code
            code = error_code(bytes(response.body)) or "other" if status >= 400 else None
            await response(scope, receive, send)

        try:
            try:
                peer = scope.get("client")
                headers = Headers(scope=scope)
                raw = await read_envelope(peer[0] if peer else "unknown", headers, chunks())
                arrival = intake.Arrival(raw, peer[0] if peer else "", headers)
                if PUZZLE_HEADER in headers:
                    prepared, outcome = await with_puzzle(arrival)
                else:
                    prepared, outcome = await preparer.submit(arrival)
                if prepared is None:  # an identical retry: the stored answer
                    result, body = outcome
                else:
                    result, body = intake.answer(ctx, prepared, outcome)
                response = Response(
                    body,
                    status_code=result,
                    media_type="application/json",
                    headers={"Cache-Control": "no-store"},
                )
            except HubError as exc:
                response = exc.response()
            except (OperationalError, InterfaceError) as exc:
                response = database_down(exc)
            except WriterClosedError:  # a graceful stop: the intake threads have ended
                response = error_response(
                    503, "hub_stopping", "the hub is stopping; retry shortly", {"Retry-After": "1"}
                )
            await answer(response)
        except Exception as exc:
            # Like Starlette's outermost handler: answer 500 if nothing was sent, re-raise.
            status, code = 500, "internal_error"
            failure = unexpected(exc)
            if not answered:
                await failure(scope, receive, send)
            raise
        finally:
            ctx.metrics.observe("/v1/submissions", status, time.perf_counter() - started, code)

    app.submissions = submissions

    @app.get("/healthz", summary="The process answers (liveness)", tags=["operators"])
    def healthz() -> Response:
        return Response(
            b'{"v":1,"status":"alive"}\n',
            media_type="application/json",
            headers={"Cache-Control": "no-store"},
        )

    ready = SharedReadiness(  # one check at a time, shared: a /readyz flood holds no threads
        lambda: readiness(
            engine,
            settings.data_dir / VAULT_NAME,
            settings.tiles_dir,
            view,
            stale_after=max(30.0, 20 * settings.batch_interval),
        )
    )

    @app.get(
        "/readyz", summary="Database, key store, sequencer and tiles usable", tags=["operators"]
    )
    async def readyz() -> Response:
        problems = await ready.problems()
        if problems:
            log.warning(
                "not ready: %s", "; ".join(problems.values()), extra={"checks": ",".join(problems)}
            )
        body = json.dumps({"v": 1, "ready": not problems, "problems": problems})
        return Response(
            body.encode() + b"\n",
            status_code=503 if problems else 200,
            media_type="application/json",
            headers={"Cache-Control": "no-store"},
        )

    @app.get(
        "/metrics", summary="Prometheus text format (loopback only by default)", tags=["operators"]
    )
    def metrics(request: Request) -> Response:
        if not metrics_allowed(request.scope, settings.metrics_public):
            return error_response(
                403,
                "metrics_restricted",
                "metrics are served to loopback only (without forwarding headers); "
                "scrape from this host, or start the hub with --set metrics_public=true",
            )
        return Response(
            ctx.metrics.exposition(),
            headers={"Content-Type": CONTENT_TYPE_LATEST, "Cache-Control": "no-store"},
        )

    app.post(
        "/v1/submissions",
        summary="Submit hashes (signed envelope, purpose submission)",
        tags=["cases"],
        **_envelope_doc(envelope.Purpose.SUBMISSION, 202, "submission"),
    )(submission_route)
    app.post(
        "/v1/status",
        summary="Status of a case (signed envelope, purpose status-query)",
        tags=["cases"],
        **_envelope_doc(envelope.Purpose.STATUS_QUERY, 200, "status"),
    )(envelope_route(cases.status))
    app.post(
        "/v1/withdrawals",
        summary="Withdraw entries or a whole case (purpose withdrawal)",
        tags=["cases"],
        **_envelope_doc(envelope.Purpose.WITHDRAWAL, 202, "withdrawal"),
    )(envelope_route(cases.withdraw))
    app.include_router(
        log_router(
            ctx,
            lambda size, note: attach_cosignatures(cosignatures, settings.witnesses, size, note),
        )
    )
    app.include_router(witness_router(ctx, settings.witnesses, cosignatures))
    app.include_router(
        feed_router(
            ctx,
            engine,
            registry,
            feed_files,
            sealer=sealer,
            leading=lambda: task is not None and task.leading,
            watch=watch,
        )
    )
    app.include_router(puzzle_router(ctx, case_puzzle))
    # The person's page (specs/hub-api.md section 11): read once, before serving.
    app.include_router(page_router(site))
    return app
