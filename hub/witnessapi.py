"""Witness routes: the newest fully cosigned checkpoint and each witness's status.

Why beside /checkpoint: /checkpoint is always the newest checkpoint with the cosignatures
collected so far (C2SP: the same note with extra signature lines), which may be fewer than a
partner's quorum for a moment after each round, or for long if a witness is down. A partner
that requires a quorum then falls back to ``/v1/checkpoint/cosigned``. specs/hub-api.md §9.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from crypto.errors import CryptoError
from crypto.note import NoteSignature, parse_note
from crypto.urlredact import redact_url
from crypto.witness_protocol import attach_signatures
from hub.context import HubContext
from hub.errors import HubError
from hub.witness_config import WitnessConfig
from hub.witness_store import CosignatureStore

__all__ = ["attach_cosignatures", "witness_router"]

TEXT = "text/plain; charset=utf-8"


def _merge(note: bytes, lines: Sequence[bytes]) -> bytes:
    if not lines:
        return note
    try:
        signatures: list[NoteSignature] = []
        for line in lines:
            signatures.extend(parse_note(b"x\n\n" + line).signatures)
        return attach_signatures(note, signatures)
    except CryptoError:
        # Stored lines were verified before they were stored; never serve a broken note.
        return note


def attach_cosignatures(
    store: CosignatureStore, witnesses: Sequence[WitnessConfig], size: int, note: bytes
) -> bytes:
    """``note`` (the log's checkpoint of ``size``) with every stored cosignature for it."""
    keys = [w.key.encode() for w in witnesses]
    return _merge(note, store.lines_for(size, note, keys))


def witness_router(
    ctx: HubContext, witnesses: Sequence[WitnessConfig], store: CosignatureStore
) -> APIRouter:
    """``GET /v1/checkpoint/cosigned`` and ``GET /v1/witnesses``."""
    router = APIRouter(tags=["log"])
    keys = [w.key.encode() for w in witnesses]

    @router.get(
        "/v1/checkpoint/cosigned",
        response_class=Response,
        responses={
            200: {"content": {"text/plain": {}}, "description": "cosigned checkpoint"},
            404: {"description": "no checkpoint is cosigned by every configured witness yet"},
        },
        summary="Newest checkpoint cosigned by every configured witness",
    )
    async def get_cosigned() -> Response:
        found = await run_in_threadpool(store.newest_fully_cosigned, keys)
        if found is None:
            raise HubError(
                404,
                "not_cosigned",
                "no checkpoint is cosigned by every configured witness yet"
                if keys
                else "this hub has no witnesses configured",
            )
        note, lines = found
        return Response(_merge(note, lines), media_type=TEXT, headers={"Cache-Control": "no-cache"})

    @router.get("/v1/witnesses", summary="Configured witnesses and their cosigning status")
    async def get_witnesses() -> JSONResponse:
        rows = await run_in_threadpool(store.all_status)
        state = await run_in_threadpool(ctx.storage.load_log_state)
        items: list[dict[str, Any]] = []
        for w in witnesses:
            row = rows.get(w.key.encode())
            items.append(
                {
                    "name": w.name,
                    "url": redact_url(w.url),  # public: never its credentials
                    "verifier_key": w.key.encode(),
                    "cosigned_size": None if row is None else row.cosigned_size,
                    "cosigned_at": None if row is None else row.cosigned_at,
                    "known_size": None if row is None else row.known_size,
                    "last_status": None if row is None else row.last_status,
                    "last_error": None if row is None else row.last_error,
                    "failures": 0 if row is None else row.failures,
                }
            )
        return JSONResponse(
            {"v": 1, "log_size": state.published_size, "witnesses": items},
            headers={"Cache-Control": "no-cache"},
        )

    return router
