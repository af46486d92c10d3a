"""The public, unauthenticated log API: C2SP tlog-tiles plus JSON proofs (specs/hub-api.md 4).

/checkpoint and /tile/... follow c2sp.org/tlog-tiles exactly, so any tlog client can follow the
log. Proofs are built with crypto.merkle from the tiles themselves, each tile authenticated
against a published checkpoint once per process (hub/proofcache.py): a proof the hub serves
can never disagree with the tiles it serves, and a warm proof re-hashes no tile.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query
from starlette.responses import JSONResponse, Response

from crypto.errors import InconsistentTreeError, MalformedError
from crypto.merkle import MAX_TREE_SIZE, NodeId, consistency_proof, inclusion_proof
from crypto.tiles import parse_path
from hub.context import HubContext
from hub.errors import HubError
from hub.proofcache import CachedReader, TileCache

__all__ = ["log_router"]

FULL_TILE_CACHE = "public, max-age=31536000, immutable"
PARTIAL_TILE_CACHE = "public, max-age=10"
_HEX64_CHARS = frozenset("0123456789abcdef")

SizeParam = Annotated[
    int | None, Query(ge=0, le=MAX_TREE_SIZE, description="tree size; default: latest checkpoint")
]


def _json(value: Any, cache: str = "no-cache") -> JSONResponse:
    return JSONResponse(value, headers={"Cache-Control": cache})


def log_router(ctx: HubContext, cosign: Callable[[int, bytes], bytes] | None = None) -> APIRouter:
    """Routes of the log API bound to one hub context. ``cosign(size, note)`` attaches the
    witness cosignatures collected for that checkpoint (specs/hub-api.md section 9)."""
    router = APIRouter(tags=["log"])

    def published() -> tuple[int, bytes]:
        state = ctx.storage.load_log_state()
        return state.published_size, state.published_state.root()

    cache = TileCache(ctx.tiles.read)

    def reader() -> tuple[int, CachedReader]:
        size, root = published()
        try:
            return size, cache.reader(size, root)
        except InconsistentTreeError:
            raise HubError(503, "log_unavailable", "the log's tiles are being repaired") from None

    def check_size(size: int | None, latest: int) -> int:
        if size is None:
            return latest
        if size > latest:
            raise HubError(
                400,
                "size_beyond_log",
                f"the latest checkpoint has size {latest}; ask for a size up to it",
            )
        return size

    @router.get(
        "/checkpoint",
        response_class=Response,
        responses={200: {"content": {"text/plain": {}}, "description": "signed checkpoint"}},
        summary="Latest signed checkpoint (C2SP tlog-checkpoint)",
    )
    def get_checkpoint() -> Response:
        state = ctx.storage.load_log_state()
        note = state.checkpoint
        if cosign is not None:
            note = cosign(state.published_size, note)
        return Response(
            note, media_type="text/plain; charset=utf-8", headers={"Cache-Control": "no-cache"}
        )

    @router.get(
        "/tile/{path:path}",
        response_class=Response,
        responses={
            200: {"content": {"application/octet-stream": {}}, "description": "tile bytes"},
            404: {"description": "no such tile (yet)"},
        },
        summary="Hash tile or entry bundle (C2SP tlog-tiles)",
    )
    def get_tile(path: str) -> Response:
        try:
            tile = parse_path("tile/" + path)
        except MalformedError:
            raise HubError(
                404, "not_found", "not a tile path (tile/<L>/<N>[.p/<W>], tile/entries/<N>)"
            ) from None
        data = ctx.tiles.get(tile.path)
        if data is None:
            raise HubError(404, "not_found", "this tile does not exist yet")
        cache = FULL_TILE_CACHE if tile.is_full else PARTIAL_TILE_CACHE
        return Response(
            data, media_type="application/octet-stream", headers={"Cache-Control": cache}
        )

    @router.get("/v1/log", summary="Origin, verifier key and size of the log")
    def get_log() -> JSONResponse:
        state = ctx.storage.load_log_state()
        return _json(
            {
                "origin": ctx.keys.origin,
                "verifier_key": ctx.keys.verifier.encode(),
                "size": state.published_size,
                "root_hash": state.published_state.root().hex(),
                "checkpoint": state.checkpoint.decode("utf-8"),
            }
        )

    @router.get("/v1/proof/inclusion", summary="RFC 9162 inclusion proof (hashes in hex)")
    def get_inclusion(
        size: SizeParam = None,
        index: Annotated[int | None, Query(ge=0, le=MAX_TREE_SIZE)] = None,
        leaf_hash: Annotated[
            str | None, Query(min_length=64, max_length=64, description="64 lowercase hex")
        ] = None,
    ) -> JSONResponse:
        if (index is None) == (leaf_hash is None):
            raise HubError(400, "invalid_request", "give exactly one of index or leaf_hash")
        latest, hashes = reader()
        tree_size = check_size(size, latest)
        if leaf_hash is not None:
            if not set(leaf_hash) <= _HEX64_CHARS:
                raise HubError(400, "invalid_request", "leaf_hash must be 64 lowercase hex")
            found = ctx.storage.log_index_of_leaf(bytes.fromhex(leaf_hash), tree_size)
            if found is None:
                raise HubError(
                    404, "unknown_leaf", "no leaf with this hash in the tree of this size"
                )
            index = found
        assert index is not None
        if index >= tree_size:
            raise HubError(400, "invalid_request", f"index must be below the tree size {tree_size}")
        try:
            proof = inclusion_proof(index, tree_size, hashes)
            leaf = hashes.read_hashes([NodeId(0, index)])[0]
        except InconsistentTreeError:
            raise HubError(503, "log_unavailable", "the log's tiles are being repaired") from None
        return _json(
            {
                "log_index": index,
                "tree_size": tree_size,
                "leaf_hash": leaf.hex(),
                "proof": [p.hex() for p in proof],
            },
            "public, max-age=60",
        )

    @router.get("/v1/proof/consistency", summary="RFC 9162 consistency proof (hashes in hex)")
    def get_consistency(
        first: Annotated[int, Query(ge=0, le=MAX_TREE_SIZE)],
        second: SizeParam = None,
    ) -> JSONResponse:
        latest, hashes = reader()
        second_size = check_size(second, latest)
        if first > second_size:
            raise HubError(400, "invalid_request", "first must not exceed second")
        try:
            proof = consistency_proof(first, second_size, hashes)
        except InconsistentTreeError:
            raise HubError(503, "log_unavailable", "the log's tiles are being repaired") from None
        return _json(
            {"first": first, "second": second_size, "proof": [p.hex() for p in proof]},
            "public, max-age=60",
        )

    return router
