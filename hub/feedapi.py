"""Partner feed API: signed batch listing, wraps and acknowledgements; public ciphertexts.

Every /v1/feed request is signed by the partner's Ed25519 key (specs/envelope.md section 5):
the hub checks the key is registered, the signature over the request it received, the time
window, revocation, and finally records the nonce (durably, shared by every hub process).
Sealed batch files are served without authentication: they are encrypted and immutable, so
any CDN may cache them (specs/partner-api.md section 4).
"""

from __future__ import annotations

import base64
import math
import time
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from sqlalchemy import Engine, func, select
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from crypto import boundedjson, envelope
from crypto.errors import (
    InvalidSignatureError,
    JsonBoundsError,
    MalformedError,
    StaleMessageError,
)
from hub.context import HubContext
from hub.db.engine import read_connection
from hub.db.models import FeedBatchRow, FeedWrapRow, LogStateRow, table_of
from hub.errors import HubError
from hub.feed import FeedFiles, FeedSealer
from hub.feedwait import MAX_WAIT, FeedWatch, feed_stamp
from hub.partners import Partner, PartnerRegistry

__all__ = ["SIGNATURE_HEADER", "feed_router"]

SIGNATURE_HEADER = "NCII-Signature"
MAX_SIGNED_BODY = 4096
MAX_PAGE = 1000
DEFAULT_PAGE = 256
IMMUTABLE = "public, max-age=31536000, immutable"
BATCHES = table_of(FeedBatchRow)
WRAPS = table_of(FeedWrapRow)
LOG = table_of(LogStateRow)


def _json(value: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(value, status_code=status, headers={"Cache-Control": "no-store"})


def _target(request: Request) -> str:
    """The request target as received: raw path, plus '?' and the raw query if any."""
    raw = request.scope.get("raw_path") or request.url.path.encode()
    path = bytes(raw).split(b"?", 1)[0].decode("latin-1")
    query = bytes(request.scope.get("query_string", b"")).decode("latin-1")
    return f"{path}?{query}" if query else path


def feed_router(
    ctx: HubContext,
    engine: Engine,
    registry: PartnerRegistry,
    files: FeedFiles,
    *,
    sealer: FeedSealer | None = None,
    leading: Callable[[], bool] = lambda: False,
    watch: FeedWatch | None = None,
) -> APIRouter:
    """Routes of the feed API bound to one hub.

    ``sealer`` and ``leading`` (this process holds the sequencer lock): a partner just added
    or rotated gets the history wrapped on its first request rather than a round later, and
    every listing says when entries not yet sealed are expected (specs/partner-api.md 4).
    ``watch`` wakes long-polling partners."""
    router = APIRouter(tags=["feed"])
    if watch is None:
        watch = FeedWatch(lambda: feed_stamp(engine))
    window = ctx.settings.window_seconds

    def authenticate(request: Request, body: bytes) -> Partner:
        header = request.headers.get(SIGNATURE_HEADER)
        if header is None:
            raise HubError(
                401, "bad_signature", f"sign the request: send the {SIGNATURE_HEADER} header"
            )
        try:
            sig = envelope.RequestSignature.from_header(header)
        except MalformedError:
            raise HubError(
                401, "bad_signature", f"the {SIGNATURE_HEADER} header is not in the v1 format"
            ) from None
        partner = registry.by_request_key(sig.public_key)
        if partner is None:
            raise HubError(
                401, "unknown_partner", "this request key is not registered with the hub"
            )
        now = ctx.now()
        try:
            envelope.verify_partner_request(
                partner.request_key, sig, request.method, _target(request), body, now, window
            )
        except StaleMessageError:
            raise HubError(
                401,
                "stale_timestamp",
                f"the request timestamp is more than {window} s from the hub's clock; "
                "check the clock and sign again",
            ) from None
        except (InvalidSignatureError, MalformedError):
            raise HubError(
                401, "bad_signature", "the request signature does not verify for this request"
            ) from None
        if partner.revoked:
            raise HubError(403, "partner_revoked", "this partner's access has been revoked")
        if not registry.use_nonce(sig.replay_key, sig.timestamp + window + 1):
            raise HubError(
                409, "replayed_nonce", "this request nonce was already used; sign with a fresh one"
            )
        return partner

    async def signed(request: Request) -> tuple[Partner, bytes]:
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > MAX_SIGNED_BODY):
            raise HubError(
                413, "body_too_large", f"feed requests carry at most {MAX_SIGNED_BODY} bytes"
            )
        buf = bytearray()
        async for chunk in request.stream():
            buf += chunk
            if len(buf) > MAX_SIGNED_BODY:
                raise HubError(
                    413, "body_too_large", f"feed requests carry at most {MAX_SIGNED_BODY} bytes"
                )
        body = bytes(buf)
        partner = await run_in_threadpool(authenticate, request, body)
        return partner, body

    def list_batches(partner: Partner, cursor: int, limit: int) -> dict[str, Any]:
        if partner.rewrap and sealer is not None and leading():
            sealer.wrap_new_partners()
        with read_connection(engine) as conn:
            published = int(
                conn.execute(select(LOG.c.published_size).where(LOG.c.id == 1)).scalar_one()
            )
            sealed = int(conn.execute(select(func.max(BATCHES.c.end))).scalar() or 0)
            due = None if sealer is None else sealer.due_in(conn, sealed, published)
            rows = conn.execute(
                select(
                    BATCHES.c.start,
                    BATCHES.c.end,
                    BATCHES.c.version,
                    BATCHES.c.file,
                    BATCHES.c.size,
                    WRAPS.c.version,
                    WRAPS.c.wrap,
                )
                .select_from(
                    BATCHES.outerjoin(
                        WRAPS,
                        (WRAPS.c.start == BATCHES.c.start) & (WRAPS.c.partner == partner.name),
                    )
                )
                .where(BATCHES.c.end > cursor)
                .order_by(BATCHES.c.start)
                .limit(limit + 1)
            ).all()
        out: list[dict[str, Any]] = []
        more = unwrapped = False
        for start, end, version, file, size, wrap_version, wrap in rows:
            if wrap is None or int(wrap_version) != int(version):
                unwrapped = True  # not wrapped for this partner yet (rotated, or another
                break  # process leads and wraps in its next round): stop here
            if len(out) == limit:
                more = True
                break
            out.append(
                {
                    "start": int(start),
                    "end": int(end),
                    "version": int(version),
                    "size": int(size),
                    "ciphertext": f"/feed/{file}",
                    "wrap": base64.b64encode(bytes(wrap)).decode("ascii"),
                }
            )
        # ready_in: seconds until what this partner cannot have yet is expected in its feed:
        # entries due for sealing are sealed by the first round after they are due.
        interval = ctx.settings.batch_interval
        ready_in = None if due is None else due + interval
        if unwrapped:
            ready_in = max(ready_in or 0.0, interval)
        return {
            "v": 1,
            "origin": ctx.keys.origin,
            "batches": out,
            "next": out[-1]["end"] if more else None,
            "sealed_size": sealed,
            "published_size": published,
            "ready_in": None if ready_in is None else math.ceil(ready_in * 10) / 10,
        }

    @router.get(
        "/v1/feed/batches", summary="Sealed batches from a cursor, with this partner's wraps"
    )
    async def get_batches(
        request: Request,
        cursor: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
        wait: Annotated[int, Query(ge=0, le=MAX_WAIT)] = 0,
    ) -> JSONResponse:
        partner, _ = await signed(request)
        answer = await run_in_threadpool(list_batches, partner, cursor, limit)
        if answer["batches"] or wait == 0:
            return _json(answer)
        # Long poll (specs/partner-api.md 4.2): answer as soon as a batch past the cursor is
        # there for this partner, or with the empty page after ``wait`` seconds.
        if not watch.try_enter():
            raise HubError(
                503, "busy", "too many partners are waiting; retry in a second", retry_after=1
            )
        try:
            deadline = time.monotonic() + wait
            while (left := deadline - time.monotonic()) > 0:
                await watch.changed(left)
                answer = await run_in_threadpool(list_batches, partner, cursor, limit)
                if answer["batches"]:
                    break
        finally:
            watch.leave()
        return _json(answer)

    def one_wrap(partner: Partner, start: int) -> dict[str, Any]:
        with read_connection(engine) as conn:
            row = conn.execute(
                select(
                    BATCHES.c.end, BATCHES.c.version, BATCHES.c.file, WRAPS.c.version, WRAPS.c.wrap
                )
                .select_from(
                    BATCHES.join(
                        WRAPS,
                        (WRAPS.c.start == BATCHES.c.start) & (WRAPS.c.partner == partner.name),
                    )
                )
                .where(BATCHES.c.start == start)
            ).first()
        if row is None or int(row[1]) != int(row[3]):
            raise HubError(
                404, "unknown_batch", "no batch starts here, or none is wrapped for you yet"
            )
        return {
            "start": start,
            "end": int(row[0]),
            "version": int(row[1]),
            "ciphertext": f"/feed/{row[2]}",
            "wrap": base64.b64encode(bytes(row[4])).decode("ascii"),
        }

    @router.get("/v1/feed/batches/{start}/wrap", summary="This partner's key wrap for one batch")
    async def get_wrap(request: Request, start: int) -> JSONResponse:
        partner, _ = await signed(request)
        if not 0 <= start <= 2**63 - 1:
            raise HubError(400, "invalid_request", "start must be a log index")
        return _json(await run_in_threadpool(one_wrap, partner, start))

    @router.post("/v1/feed/ack", summary="Acknowledge the log position this partner has applied")
    async def post_ack(request: Request) -> JSONResponse:
        partner, body = await signed(request)
        try:
            value = boundedjson.loads(body, max_bytes=MAX_SIGNED_BODY, max_depth=2)
        except JsonBoundsError:  # too large or deep, not UTF-8, not JSON
            raise HubError(400, "invalid_body", 'send {"v":1,"position":<log index>}') from None
        position = value.get("position") if isinstance(value, dict) else None
        if (
            not isinstance(value, dict)
            or set(value) != {"v", "position"}
            or value["v"] != 1
            or isinstance(value["v"], bool)
            or not isinstance(position, int)
            or isinstance(position, bool)
            or not 0 <= position <= 2**63 - 1
        ):
            raise HubError(400, "invalid_body", 'send {"v":1,"position":<log index>}')
        sealed = ctx.storage.load_log_state().published_size
        if position > sealed:
            raise HubError(400, "invalid_body", "position is beyond the published log")
        acked = await run_in_threadpool(registry.acknowledge, partner.name, position)
        return _json({"v": 1, "position": acked})

    @router.get(
        "/feed/{name}",
        response_class=Response,
        responses={200: {"content": {"application/octet-stream": {}}}},
        summary="A sealed batch (encrypted, immutable, content-addressed)",
    )
    def get_sealed(name: str) -> Response:
        if not FeedFiles.valid_name(name):
            raise HubError(404, "not_found", "feed files are named by 64 lowercase hex digits")
        data = files.read(name)
        if data is None:
            raise HubError(404, "not_found", "no such sealed batch (it may have been re-sealed)")
        return Response(
            data, media_type="application/octet-stream", headers={"Cache-Control": IMMUTABLE}
        )

    return router
