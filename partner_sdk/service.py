"""``ncii-partner serve``: a local HTTP match service for a platform's upload pipeline.

Why a local service: upload workers in any language POST a file or a hash to 127.0.0.1 and
get candidates back, while the index stays in one warm process that follows the store as
sync changes it (a background thread polls the store's cursor; no restart). It has no
authentication, so it binds to loopback unless told otherwise, and every body is capped
before it is parsed. Routes and formats: specs/matching.md section 6.
"""

from __future__ import annotations

import ipaddress
import json
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from hashing import MATCH_THRESHOLD, HashingError, PdqHash, VpdqFeature
from partner_sdk.errors import PartnerError, UsageError
from partner_sdk.matcher import ExactDigest, Matcher, Query, VideoQuery

__all__ = ["ServiceSettings", "create_app", "parse_hash"]

_HEX = frozenset("0123456789abcdef")
_SIZES = {"pdq": 32, "md5": 16, "sha256": 32}


@dataclass(frozen=True, slots=True)
class ServiceSettings:
    """What ``serve`` runs with; refuses a non-loopback host unless ``allow_remote``."""

    directory: Path
    host: str = "127.0.0.1"
    port: int = 8765
    threshold: int = MATCH_THRESHOLD
    rotations: bool = False
    max_file_bytes: int = 256 << 20
    max_json_bytes: int = 8 << 20
    max_batch: int = 10_000
    max_frames: int = 100_000
    poll_seconds: float = 1.0
    allow_remote: bool = False

    def __post_init__(self) -> None:
        if not self.allow_remote and not _is_loopback(self.host):
            raise UsageError(
                "the match service has no authentication: bind it to 127.0.0.1 (or ::1), "
                "or pass --allow-remote behind your own access control"
            )
        if not 0 <= self.port <= 65535:
            raise UsageError("the port is between 0 and 65535")
        if min(self.max_file_bytes, self.max_json_bytes, self.max_batch, self.max_frames) < 1:
            raise UsageError("size limits must be positive")
        if not self.poll_seconds > 0:
            raise UsageError("poll_seconds must be positive")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


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


async def _body(request: Request, cap: int) -> bytes:
    """The raw body, refused with 413 as soon as it exceeds ``cap`` (before any parsing)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit() or len(declared) > 18:
            raise _BadRequest(400, "bad_request", "invalid Content-Length")
        if int(declared) > cap:
            raise _BadRequest(413, "too_large", f"the body is larger than {cap} bytes")
    buf = bytearray()
    async for chunk in request.stream():
        buf += chunk
        if len(buf) > cap:
            raise _BadRequest(413, "too_large", f"the body is larger than {cap} bytes")
    return bytes(buf)


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise _BadRequest(400, "bad_json", "the body is not UTF-8 JSON") from None


def _threshold(request: Request, default: int) -> int:
    raw = request.query_params.get("threshold")
    if raw is None:
        return default
    if not raw.isdigit() or len(raw) > 3 or int(raw) > 256:
        raise _BadRequest(400, "bad_threshold", "threshold is an integer between 0 and 256")
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


def create_app(settings: ServiceSettings, matcher: Matcher | None = None) -> FastAPI:
    """Build the service; opens the store and builds the index unless given a matcher."""
    m = matcher or Matcher(
        settings.directory,
        threshold=settings.threshold,
        rotations=settings.rotations,
        max_file_bytes=settings.max_file_bytes,
    )
    reloader = _Reloader(m, settings.poll_seconds)

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

    app = FastAPI(title="ncii-partner match", lifespan=lifespan, openapi_url=None)

    @app.exception_handler(_BadRequest)
    async def bad_request(request: Request, exc: _BadRequest) -> JSONResponse:
        body = {"v": 1, "error": exc.code, "message": str(exc)}
        return JSONResponse(body, status_code=exc.status)

    @app.exception_handler(HashingError)
    async def bad_hash(request: Request, exc: HashingError) -> JSONResponse:
        body = {"v": 1, "error": "bad_hash", "message": type(exc).__name__}
        return JSONResponse(body, status_code=400)

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"v": 1, "status": "ok", "cursor": m.cursor}

    @app.get("/stats")
    def stats() -> dict[str, Any]:
        out = m.stats()
        out["reload"] = {
            "poll_seconds": settings.poll_seconds,
            "last_check": reloader.last_check,
            "last_error": reloader.last_error,
        }
        return out

    @app.post("/v1/match/file")
    async def match_file(request: Request) -> dict[str, Any]:
        t = _threshold(request, settings.threshold)
        data = await _body(request, settings.max_file_bytes)
        if request.query_params.get("kind") == "image":
            result = await run_in_threadpool(m.match_image_bytes, data, threshold=t)
        else:
            result = await run_in_threadpool(m.match_bytes, data, threshold=t)
        return {"v": 1, **result.to_json()}

    @app.post("/v1/match/hash")
    async def match_hash(request: Request) -> dict[str, Any]:
        t = _threshold(request, settings.threshold)
        query = parse_hash(
            _json(await _body(request, settings.max_json_bytes)), settings.max_frames
        )
        found = await run_in_threadpool(m.match_hashes, [query], threshold=t)
        return {"v": 1, "matches": [x.to_json() for x in found[0]]}

    @app.post("/v1/match/hashes")
    async def match_hashes(request: Request) -> dict[str, Any]:
        t = _threshold(request, settings.threshold)
        doc = _json(await _body(request, settings.max_json_bytes))
        items = doc.get("hashes") if isinstance(doc, dict) and set(doc) == {"hashes"} else None
        if not isinstance(items, list) or not 1 <= len(items) <= settings.max_batch:
            raise _BadRequest(400, "bad_request", f'{{"hashes": [1..{settings.max_batch}]}}')
        queries = [parse_hash(item, settings.max_frames) for item in items]
        found = await run_in_threadpool(m.match_hashes, queries, threshold=t)
        return {"v": 1, "results": [{"matches": [x.to_json() for x in f]} for f in found]}

    return app


def serve(settings: ServiceSettings) -> None:
    """Run the service with uvicorn until interrupted."""
    import sys

    import uvicorn

    app = create_app(settings)
    print(
        f"ncii-partner: matching on http://{settings.host}:{settings.port} "
        "(candidates for human review, not verdicts)",
        file=sys.stderr,
        flush=True,
    )
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning")
