"""The few signed hub requests the page needs: submit, status, withdraw (specs/hub-api.md).

A minimal adapter so the page works on its own; it speaks exactly the bodies of
specs/submission.md inside crypto.envelope envelopes. Every envelope is signed once and resent
byte for byte on a network error, 5xx or 429 (the hub answers a repeat with its stored answer,
so a retry never submits twice). Hub refusals become :class:`HubError` with a message for people.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from crypto import envelope
from crypto.case import CaseSecret

__all__ = ["HubClient", "HubError", "chunk_hashes"]

ENVELOPE_TYPE = "application/vnd.ncii.envelope"
MAX_HASHES_PER_ENVELOPE = 500  # below the hub's default 1000 (specs/hub-api.md section 6)
MAX_BODY_PER_ENVELOPE = 768 * 1024  # below the hub's default 1 MiB body cap
ATTEMPTS = 4

_MESSAGES = {
    "low_quality": (
        "The service refused a picture as too plain to recognise. Remove it and try again."
    ),
    "denied_hash": (
        "The service refused a file because it matches a common, harmless picture "
        "(for example an icon or a stock photo). Remove it and try again."
    ),
    "duplicate_hash": "The same file was chosen twice. Remove the copy and try again.",
    "too_many_hashes": "Too many files at once. Send fewer files at a time.",
    "too_many_frames": "A video is too long for the service. Try a shorter clip.",
    "case_limit": "This case is full. Start a new case for more files.",
    "case_withdrawn": "This case was withdrawn and cannot take new files. Start a new case.",
    "unknown_case": "The service does not know this case yet. Nothing has been sent with it.",
    "unknown_entry": "Some of these fingerprints are not part of this case.",
    "stale_timestamp": (
        "This computer's clock seems wrong. Set the correct date and time, then try again."
    ),
    "rate_limited": "The service is busy. Wait a minute and try again.",
    "body_too_large": "Too much at once. Send fewer files at a time.",
}


class HubError(Exception):
    """The hub could not be reached or refused: ``code`` is the hub's (or ``unreachable``),
    the message is plain advice; nothing in it names a hash, key or file."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _hash_size(item: dict[str, Any]) -> int:
    return len(json.dumps(item, separators=(",", ":")))


def chunk_hashes(hashes: Sequence[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    """Split hub hash objects into submission bodies under the hub's default caps."""
    chunk: list[dict[str, Any]] = []
    size = 0
    for item in hashes:
        item_size = _hash_size(item) + 1
        if chunk and (
            len(chunk) >= MAX_HASHES_PER_ENVELOPE or size + item_size > MAX_BODY_PER_ENVELOPE
        ):
            yield chunk
            chunk, size = [], 0
        chunk.append(item)
        size += item_size
    if chunk:
        yield chunk


@dataclass
class HubClient:
    """Signed requests for one case to one hub; ``clock`` and ``sleep`` injectable for tests."""

    url: str
    timeout: float = 30.0
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep

    def _seal(self, secret: CaseSecret, purpose: str, body: dict[str, Any]) -> bytes:
        raw = json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
        return envelope.seal(
            secret.signing_key(), purpose, raw, int(self.clock()), envelope.new_nonce()
        )

    def _post(self, path: str, data: bytes) -> dict[str, Any]:
        """POST the same bytes until an answer that is not a transient failure."""
        delay = 1.0
        last: HubError | None = None
        for attempt in range(ATTEMPTS):
            if attempt:
                self.sleep(delay)
                delay = min(delay * 2, 10.0)
            try:
                with httpx.Client(timeout=self.timeout, follow_redirects=False) as http:
                    response = http.post(
                        self.url.rstrip("/") + path,
                        content=data,
                        headers={"Content-Type": ENVELOPE_TYPE},
                    )
            except httpx.HTTPError:
                last = HubError(
                    "unreachable",
                    "Could not reach the service. Nothing was lost: check the internet "
                    "connection and try again.",
                )
                continue
            if response.status_code == 429 or response.status_code >= 500:
                retry_after = response.headers.get("Retry-After", "")
                if retry_after.isdigit():
                    delay = min(float(retry_after), 30.0)
                last = HubError(
                    "busy", "The service is busy or having trouble. Wait a minute and try again."
                )
                continue
            return self._answer(response)
        assert last is not None
        raise last

    @staticmethod
    def _answer(response: httpx.Response) -> dict[str, Any]:
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if response.is_success and isinstance(payload, dict):
            return payload
        code = "unexpected"
        if isinstance(payload, dict) and isinstance(payload.get("error"), dict):
            code = str(payload["error"].get("code", "unexpected"))
        message = _MESSAGES.get(
            code,
            "The service refused the request. Check the service address and try again later.",
        )
        raise HubError(code, message)

    def submit(self, secret: CaseSecret, hashes: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Submit every hash (in as many envelopes as the caps need); returns the entries."""
        entries: list[dict[str, Any]] = []
        for chunk in chunk_hashes(hashes):
            raw = self._seal(secret, "submission", {"v": 1, "hashes": chunk})
            answer = self._post("/v1/submissions", raw)
            got = answer.get("entries")
            if not isinstance(got, list):
                raise HubError("unexpected", "The service gave an answer this tool cannot read.")
            entries.extend(got)
        return entries

    def status(self, secret: CaseSecret) -> dict[str, Any]:
        """The hub's status of the case (specs/submission.md section 6)."""
        return self._post("/v1/status", self._seal(secret, "status-query", {"v": 1}))

    def withdraw(self, secret: CaseSecret, entries: Sequence[str] | None = None) -> dict[str, Any]:
        """Withdraw the listed entries, or the whole case when ``entries`` is None."""
        body: dict[str, Any] = {"v": 1}
        if entries is None:
            body["all"] = True
        else:
            body["entries"] = list(entries)
        return self._post("/v1/withdrawals", self._seal(secret, "withdrawal", body))
