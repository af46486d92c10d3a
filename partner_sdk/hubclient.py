"""HTTP to the hub: signed partner requests, public tiles and sealed batches.

Why its own module: every hub answer is untrusted input. Transport failures and 5xx become
HubUnreachableError, documented refusals HubRefusedError (with the hub's code), anything
outside specs/partner-api.md HubProtocolError. Each signed request gets a fresh nonce.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from crypto import boundedjson, envelope
from crypto.feed import WRAP_SIZE
from crypto.tiles import TILE_WIDTH, EntryBundle, Tile
from partner_sdk.errors import (
    HubAnswerTooLargeError,
    HubProtocolError,
    HubRefusedError,
    HubUnreachableError,
)
from partner_sdk.keys import PartnerKeys
from partner_sdk.logformat import RedactUrls

__all__ = ["BatchRef", "FeedOutlook", "HubClient", "parse_json"]

MAX_CHECKPOINT = 64 << 10
"""A signed checkpoint with its cosignatures (specs/checkpoint.md limits notes to far less)."""
MAX_BATCH_LIST = 4 << 20
"""One page of the batch list: 1000 items of about 250 bytes each, with room to spare."""
MAX_SMALL_JSON = 64 << 10
"""A wrap or an acknowledgement answer."""
MAX_ERROR = 64 << 10
"""An error answer's body (only its code and message are used)."""
MAX_TILE = 32 * TILE_WIDTH
"""A full hash tile: 256 hashes of 32 bytes (specs/tiles.md)."""
MAX_ENTRY_BUNDLE = 16 << 20
MAX_JSON_DEPTH = 8
"""The deepest hub JSON is 3 levels (list object, batches array, item); 8 leaves margin."""
_CHUNK = 64 << 10
_CIPHERTEXT_PATH = re.compile(r"/feed/[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class BatchRef:
    """One item of the batch list: range, version, where the ciphertext is, our wrap."""

    start: int
    end: int
    version: int
    size: int
    ciphertext: str
    wrap: bytes


MAX_READY_IN = 7 * 86400.0
"""A ``ready_in`` beyond a week is not believed (the hub's own limits make minutes at most)."""


@dataclass(frozen=True, slots=True)
class FeedOutlook:
    """What the last batch list said about entries not in the feed yet (advisory, unverified:
    only ever shown to people, never used to decide what is trusted)."""

    sealed_size: int  # entries [0, sealed_size) are sealed into batches
    ready_in: float | None  # seconds until the rest is expected in this partner's feed


def _outlook(value: dict[str, Any]) -> FeedOutlook | None:
    """The optional ``sealed_size``/``ready_in`` of a batch list; None if absent or odd."""
    sealed, ready = value.get("sealed_size"), value.get("ready_in")
    if isinstance(sealed, bool) or not isinstance(sealed, int) or not 0 <= sealed < 2**63:
        return None
    if ready is not None and (
        isinstance(ready, bool)
        or not isinstance(ready, int | float)
        or not 0 <= ready <= MAX_READY_IN
    ):
        return None
    return FeedOutlook(sealed, None if ready is None else float(ready))


def _int(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 2**63 - 1:
        raise HubProtocolError(f"hub answer field {what} is not a log index")
    return value


def _batch_ref(item: object) -> BatchRef:
    fields = {"start", "end", "version", "size", "ciphertext", "wrap"}
    if not isinstance(item, dict) or set(item) != fields:
        raise HubProtocolError("a batch list item does not have the documented fields")
    path = item["ciphertext"]
    if not isinstance(path, str) or _CIPHERTEXT_PATH.fullmatch(path) is None:
        raise HubProtocolError("a batch's ciphertext path is not /feed/<64 hex>")
    wrap_text = item["wrap"]
    try:
        if not isinstance(wrap_text, str):
            raise ValueError
        wrap = base64.b64decode(wrap_text.encode("ascii"), validate=True)
    except (ValueError, binascii.Error, UnicodeEncodeError):
        raise HubProtocolError("a batch's wrap is not base64") from None
    if len(wrap) != WRAP_SIZE:
        raise HubProtocolError("a batch's wrap has the wrong length")
    start, end = _int(item["start"], "start"), _int(item["end"], "end")
    if start >= end:
        raise HubProtocolError("a batch's range is empty or reversed")
    return BatchRef(
        start, end, _int(item["version"], "version"), _int(item["size"], "size"), path, wrap
    )


class _Answer:
    """A hub answer read in full, but never past its cap."""

    __slots__ = ("body", "reason", "status")

    def __init__(self, status: int, reason: str, body: bytes) -> None:
        self.status = status
        self.reason = reason
        self.body = body


def parse_json(data: bytes, what: str) -> object:
    """Parse a hub JSON answer of at most its cap (crypto.boundedjson: depth bounded before
    parsing, UTF-8 only, no NaN or unpaired surrogates); HubProtocolError otherwise."""
    try:
        return boundedjson.loads(data, max_bytes=len(data), max_depth=MAX_JSON_DEPTH)
    except boundedjson.JsonBoundsError as exc:
        raise HubProtocolError(f"{what} is refused: {exc}") from None


def redact_httpx_log() -> None:
    """httpx logs each request's URL at INFO, credentials included; a partner that embeds
    this SDK may log INFO with handlers of its own, so the filter sits on httpx's logger
    itself (idempotent)."""
    logger = logging.getLogger("httpx")
    if not any(isinstance(f, RedactUrls) for f in logger.filters):
        logger.addFilter(RedactUrls())


class HubClient:
    """A session with one hub for one partner.

    Every answer is streamed and read only up to a per-endpoint cap (checkpoints 64 KiB, JSON
    4 MiB or less, tiles 8 KiB, a sealed batch its listed size or the batch limit): past the
    cap reading stops and HubAnswerTooLargeError is raised, so a lying hub cannot exhaust the
    partner's memory. Compressed answers are refused (a small body could expand without bound).
    """

    def __init__(
        self,
        base_url: str,
        keys: PartnerKeys,
        *,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.time,
        timeout: float = 60.0,
    ) -> None:
        redact_httpx_log()
        self.keys = keys
        self.clock = clock
        self.outlook: FeedOutlook | None = None  # from the last batch list
        self.http = httpx.Client(
            base_url=base_url.rstrip("/"),
            transport=transport,
            timeout=timeout,
            headers={"Accept-Encoding": "identity"},
        )

    def close(self) -> None:
        self.http.close()

    def _send(
        self,
        method: str,
        target: str,
        body: bytes = b"",
        signed: bool = False,
        *,
        cap: int,
        what: str,
        skip_body_on: tuple[int, ...] = (),
    ) -> _Answer:
        headers: dict[str, str] = {}
        if signed:
            sig = envelope.sign_partner_request(
                self.keys.request_key, method, target, body, int(self.clock()), envelope.new_nonce()
            )
            headers[envelope_header()] = sig.to_header()
        if body:
            headers["Content-Type"] = "application/json"
        try:
            with self.http.stream(
                method, target, content=body or None, headers=headers
            ) as response:
                status = response.status_code
                if status >= 500:
                    raise HubUnreachableError(f"the hub answered {status}; retry later")
                if status in skip_body_on:
                    return _Answer(status, response.reason_phrase, b"")
                return _Answer(
                    status,
                    response.reason_phrase,
                    _read_capped(response, cap if status == 200 else MAX_ERROR, what),
                )
        except httpx.TransportError as exc:
            raise HubUnreachableError(f"cannot reach the hub: {describe_transport(exc)}") from None

    @staticmethod
    def _refused(answer: _Answer) -> HubRefusedError:
        code, message = "unknown", answer.reason
        try:
            err = parse_json(answer.body, "the hub's error")
            assert isinstance(err, dict)
            detail = err["error"]
            code, message = str(detail["code"])[:100], str(detail["message"])[:500]
        except (HubProtocolError, AssertionError, KeyError, TypeError):
            pass
        return HubRefusedError(answer.status, code, message)

    def _json(self, answer: _Answer, what: str) -> dict[str, Any]:
        if answer.status != 200:
            raise self._refused(answer)
        value = parse_json(answer.body, what)
        if not isinstance(value, dict):
            raise HubProtocolError(f"{what} is not a JSON object")
        return value

    def checkpoint(self) -> bytes:
        answer = self._send("GET", "/checkpoint", cap=MAX_CHECKPOINT, what="the checkpoint")
        if answer.status != 200:
            raise self._refused(answer)
        return answer.body

    def cosigned_checkpoint(self) -> bytes | None:
        """The newest checkpoint cosigned by all the hub's witnesses, None if there is none."""
        answer = self._send(
            "GET",
            "/v1/checkpoint/cosigned",
            cap=MAX_CHECKPOINT,
            what="the cosigned checkpoint",
            skip_body_on=(404,),
        )
        if answer.status == 404:
            return None
        if answer.status != 200:
            raise self._refused(answer)
        return answer.body

    def tile(self, tile: Tile | EntryBundle) -> bytes:
        cap = MAX_TILE if isinstance(tile, Tile) else MAX_ENTRY_BUNDLE
        answer = self._send(
            "GET", "/" + tile.path, cap=cap, what=f"tile {tile.path}", skip_body_on=(404,)
        )
        if answer.status != 200:
            raise HubProtocolError(f"tile {tile.path} is not served ({answer.status})")
        return answer.body

    def batches(
        self, cursor: int, limit: int, wait: int = 0
    ) -> tuple[str, list[BatchRef], int | None]:
        """(origin, batches with end > cursor, next cursor or None).

        ``wait`` > 0: long poll, the hub answers once there is a batch or after ``wait``
        seconds (specs/partner-api.md 4.2).
        """
        target = f"/v1/feed/batches?cursor={cursor}&limit={limit}"
        if wait:
            target += f"&wait={wait}"
        value = self._json(
            self._send(
                "GET",
                target,
                signed=True,
                cap=MAX_BATCH_LIST,
                what="the batch list",
            ),
            "the batch list",
        )
        if value.get("v") != 1 or not isinstance(value.get("batches"), list):
            raise HubProtocolError("the batch list is not v1")
        origin = value.get("origin")
        nxt = value.get("next")
        self.outlook = _outlook(value)
        if not isinstance(origin, str) or (nxt is not None and _int(nxt, "next") <= cursor):
            raise HubProtocolError("the batch list has a bad origin or next cursor")
        return origin, [_batch_ref(b) for b in value["batches"]], nxt

    def wrap(self, start: int) -> BatchRef:
        answer = self._send(
            "GET", f"/v1/feed/batches/{start}/wrap", signed=True, cap=MAX_SMALL_JSON, what="a wrap"
        )
        value = self._json(answer, "a wrap")
        return _batch_ref({**value, "size": 0})

    def ciphertext(self, ref: BatchRef, max_size: int) -> bytes | None:
        """The sealed batch, or None if it is gone (re-sealed meanwhile).

        Read up to its listed size (exactly that many bytes are expected) or, when no size
        was listed, ``max_size``; a longer body is cut off there (HubAnswerTooLargeError).
        """
        if ref.size > max_size:
            raise HubAnswerTooLargeError(
                f"batch [{ref.start}, {ref.end}) is listed at {ref.size} bytes, over the "
                f"{max_size}-byte limit"
            )
        cap = ref.size or max_size
        answer = self._send(
            "GET",
            ref.ciphertext,
            cap=cap,
            what=f"the sealed batch [{ref.start}, {ref.end})",
            skip_body_on=(404,),
        )
        if answer.status == 404:
            return None
        if answer.status != 200:
            raise self._refused(answer)
        if ref.size and len(answer.body) != ref.size:
            raise HubProtocolError(
                f"the sealed batch [{ref.start}, {ref.end}) is not the listed size"
            )
        return answer.body

    def ack(self, position: int) -> None:
        body = json.dumps({"v": 1, "position": position}, separators=(",", ":")).encode()
        answer = self._send(
            "POST", "/v1/feed/ack", body, signed=True, cap=MAX_SMALL_JSON, what="the ack answer"
        )
        value = self._json(answer, "the ack answer")
        if not isinstance(value.get("position"), int):
            raise HubProtocolError("the acknowledgement answer is not v1")


def _read_capped(response: httpx.Response, cap: int, what: str) -> bytes:
    """The body, read chunk by chunk and abandoned as soon as it passes ``cap`` bytes."""
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise HubProtocolError(f"{what} came compressed ({encoding[:20]}); it must not be")
    declared = response.headers.get("content-length")
    if declared is not None and declared.strip().isdigit() and int(declared) > cap:
        raise HubAnswerTooLargeError(f"{what} is {int(declared)} bytes, over its {cap}-byte cap")
    chunks: list[bytes] = []
    size = 0
    # iter_bytes: the raw chunks (identity coding was checked above); it also serves an
    # answer a custom transport handed over already read.
    for chunk in response.iter_bytes(_CHUNK):
        size += len(chunk)
        if size > cap:
            raise HubAnswerTooLargeError(f"{what} is over its {cap}-byte cap (reading stopped)")
        chunks.append(chunk)
    return b"".join(chunks)


def envelope_header() -> str:
    """The request signature header name (specs/envelope.md 5.2)."""
    return "NCII-Signature"


_PLAIN_HTTP_REASONS = frozenset(
    {"WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "HTTP_REQUEST", "UNKNOWN_PROTOCOL"}
)


def describe_transport(exc: BaseException) -> str:
    """A transport failure in words, naming an http/https mismatch (issue 18, finding 9)."""
    import ssl

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLError):
            reason = str(getattr(current, "reason", "") or "").upper()
            if reason in _PLAIN_HTTP_REASONS or "WRONG_VERSION_NUMBER" in str(current):
                return (
                    "this address speaks plain HTTP, not HTTPS; try http:// if it is on "
                    "this computer, otherwise check the address"
                )
        text = str(current)
        if isinstance(current, httpx.RemoteProtocolError) and "illegal" in text:
            # The first bytes back were not an HTTP status line: a TLS record, most likely.
            return (
                "the answer was not plain HTTP (this address probably speaks HTTPS); write "
                "https:// instead of http://"
            )
        current = current.__cause__ or current.__context__
    if isinstance(exc, httpx.ConnectError):
        return "the connection was refused or the address was not found"
    if isinstance(exc, httpx.TimeoutException):
        return "it did not answer in time"
    return "the connection broke"
