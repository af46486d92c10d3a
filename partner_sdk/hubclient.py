"""HTTP to the hub: signed partner requests, public tiles and sealed batches.

Why its own module: every hub answer is untrusted input. Transport failures and 5xx become
HubUnreachableError, documented refusals HubRefusedError (with the hub's code), anything
outside specs/partner-api.md HubProtocolError. Each signed request gets a fresh nonce.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from crypto import envelope
from crypto.feed import WRAP_SIZE
from crypto.tiles import EntryBundle, Tile
from partner_sdk.errors import HubProtocolError, HubRefusedError, HubUnreachableError
from partner_sdk.keys import PartnerKeys

__all__ = ["BatchRef", "HubClient"]

MAX_CHECKPOINT = 64 << 10
MAX_JSON = 16 << 20
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


class HubClient:
    """A session with one hub for one partner."""

    def __init__(
        self,
        base_url: str,
        keys: PartnerKeys,
        *,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.time,
        timeout: float = 60.0,
    ) -> None:
        self.keys = keys
        self.clock = clock
        self.http = httpx.Client(
            base_url=base_url.rstrip("/"), transport=transport, timeout=timeout
        )

    def close(self) -> None:
        self.http.close()

    def _send(
        self, method: str, target: str, body: bytes = b"", signed: bool = False
    ) -> httpx.Response:
        headers: dict[str, str] = {}
        if signed:
            sig = envelope.sign_partner_request(
                self.keys.request_key, method, target, body, int(self.clock()), envelope.new_nonce()
            )
            headers[envelope_header()] = sig.to_header()
        if body:
            headers["Content-Type"] = "application/json"
        try:
            response = self.http.request(method, target, content=body or None, headers=headers)
        except httpx.TransportError as exc:
            raise HubUnreachableError(f"cannot reach the hub: {type(exc).__name__}") from None
        if response.status_code >= 500:
            raise HubUnreachableError(f"the hub answered {response.status_code}; retry later")
        return response

    @staticmethod
    def _refused(response: httpx.Response) -> HubRefusedError:
        code, message = "unknown", response.reason_phrase
        try:
            err = response.json()["error"]
            code, message = str(err["code"]), str(err["message"])
        except (ValueError, KeyError, TypeError):
            pass
        return HubRefusedError(response.status_code, code, message)

    def _json(self, response: httpx.Response) -> dict[str, Any]:
        if response.status_code != 200:
            raise self._refused(response)
        if len(response.content) > MAX_JSON:
            raise HubProtocolError("the hub's answer is too large")
        try:
            value = json.loads(response.content)
        except ValueError:
            raise HubProtocolError("the hub's answer is not JSON") from None
        if not isinstance(value, dict):
            raise HubProtocolError("the hub's answer is not a JSON object")
        return value

    def checkpoint(self) -> bytes:
        response = self._send("GET", "/checkpoint")
        if response.status_code != 200:
            raise self._refused(response)
        if len(response.content) > MAX_CHECKPOINT:
            raise HubProtocolError("the checkpoint is too large")
        return response.content

    def cosigned_checkpoint(self) -> bytes | None:
        """The newest checkpoint cosigned by all the hub's witnesses, None if there is none."""
        response = self._send("GET", "/v1/checkpoint/cosigned")
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise self._refused(response)
        if len(response.content) > MAX_CHECKPOINT:
            raise HubProtocolError("the cosigned checkpoint is too large")
        return response.content

    def tile(self, tile: Tile | EntryBundle) -> bytes:
        response = self._send("GET", "/" + tile.path)
        if response.status_code != 200:
            raise HubProtocolError(f"tile {tile.path} is not served ({response.status_code})")
        return response.content

    def batches(self, cursor: int, limit: int) -> tuple[str, list[BatchRef], int | None]:
        """(origin, batches with end > cursor, next cursor or None)."""
        value = self._json(
            self._send("GET", f"/v1/feed/batches?cursor={cursor}&limit={limit}", signed=True)
        )
        if value.get("v") != 1 or not isinstance(value.get("batches"), list):
            raise HubProtocolError("the batch list is not v1")
        origin = value.get("origin")
        nxt = value.get("next")
        if not isinstance(origin, str) or (nxt is not None and _int(nxt, "next") <= cursor):
            raise HubProtocolError("the batch list has a bad origin or next cursor")
        return origin, [_batch_ref(b) for b in value["batches"]], nxt

    def wrap(self, start: int) -> BatchRef:
        value = self._json(self._send("GET", f"/v1/feed/batches/{start}/wrap", signed=True))
        return _batch_ref({**value, "size": 0})

    def ciphertext(self, ref: BatchRef, max_size: int) -> bytes | None:
        """The sealed batch, or None if it is gone (re-sealed meanwhile)."""
        response = self._send("GET", ref.ciphertext)
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise self._refused(response)
        if len(response.content) > max_size:
            raise HubProtocolError("a sealed batch is larger than the limit")
        return response.content

    def ack(self, position: int) -> None:
        body = json.dumps({"v": 1, "position": position}, separators=(",", ":")).encode()
        value = self._json(self._send("POST", "/v1/feed/ack", body, signed=True))
        if not isinstance(value.get("position"), int):
            raise HubProtocolError("the acknowledgement answer is not v1")


def envelope_header() -> str:
    """The request signature header name (specs/envelope.md 5.2)."""
    return "NCII-Signature"
