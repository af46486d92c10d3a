"""The witness's HTTP edge (FastAPI): routes parse and delegate to :class:`Witness`.

Routes (specs/witness.md §2, §5): ``POST /add-checkpoint`` (C2SP tlog-witness),
``GET /checkpoint/<origin>`` (latest cosigned checkpoint), ``GET /witness`` (identity and logs).
Bodies are capped in size and in time (``--body-timeout``) before they are read in full; the
request head's own deadline and the connection cap are :mod:`auditor.httpguard`.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from starlette.requests import ClientDisconnect

from auditor.httpguard import DEFAULT_BODY_TIMEOUT
from auditor.witness import TEXT, Witness
from crypto.witness_protocol import MAX_REQUEST_BYTES

__all__ = ["create_app"]


def _plain(status: int, message: str) -> Response:
    return Response(message + "\n", status_code=status, media_type=TEXT)


def _refuse_body(status: int, message: str) -> Response:
    """An answer sent before the body was read: close the connection, so the rest of the body
    (still trickling in, perhaps) is not kept open and read."""
    return Response(
        message + "\n", status_code=status, media_type=TEXT, headers={"Connection": "close"}
    )


def create_app(witness: Witness, body_timeout: float = DEFAULT_BODY_TIMEOUT) -> FastAPI:
    """Build the witness service around one :class:`Witness` (no import-time state)."""
    app = FastAPI(title="ncii-audit witness", docs_url=None, redoc_url=None, openapi_url=None)

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
