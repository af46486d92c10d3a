"""The hub routes the page uses, forwarded from ``/<token>/...`` to ``--hub``, within bounds.

The page makes relative requests (``v1/submissions``, ``checkpoint``, ``tile/...``), so under
``ncii-client ui`` they reach this process, which passes them on. What passes is an allow-list
(method and path), and only what the hub needs: the body (capped, of the envelope media type),
``Content-Type`` and the case puzzle header. No cookie, credential, ``Origin``, ``Referer`` or
browser header goes to the hub, and of the answer only the status, a media type from a short
list (anything else becomes ``application/octet-stream``, so a hostile hub cannot make this
origin serve a script or a page) and ``Retry-After`` come back. Answers are capped in size and
time, redirects are refused, and a few forwards run at once at most.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from typing import Final

import httpx

__all__ = [
    "ENVELOPE_MEDIA_TYPE",
    "MAX_ANSWER_BYTES",
    "MAX_BODY_BYTES",
    "ForwardRefused",
    "Forwarded",
    "HubForwarder",
    "forwarded_route",
]

#: The media type of every POST the page makes (specs/envelope.md, specs/hub-api.md).
ENVELOPE_MEDIA_TYPE: Final = "application/vnd.ncii.envelope"
#: Largest request body passed on: the hub's own cap is 1 MiB by default, 64 MiB at most.
MAX_BODY_BYTES: Final = 16 << 20
#: Largest answer passed back (a status answer of a full case is a few MB).
MAX_ANSWER_BYTES: Final = 16 << 20
#: Longest query string (only the proof routes take one).
MAX_QUERY_BYTES: Final = 512
#: Most forwards at once; more get 503 ``busy`` with Retry-After.
MAX_CONCURRENT: Final = 8
#: Seconds to connect, and for a whole exchange (submission included).
CONNECT_TIMEOUT: Final = 10.0
DEADLINE: Final = 90.0

_GET_EXACT: Final = frozenset(
    {
        "checkpoint",
        "page/manifest",
        "v1/log",
        "v1/case-puzzle",
        "v1/witnesses",
        "v1/checkpoint/cosigned",
        "v1/proof/inclusion",
        "v1/proof/consistency",
    }
)
# C2SP tlog-tiles paths: tile/<L>/<N>[.p/<W>] and tile/entries/<N>, N in x123/ groups.
_TILE: Final = re.compile(r"tile/(?:[0-9]{1,2}|entries)(?:/x[0-9]{3})*/[0-9]{3}(?:\.p/[0-9]{1,3})?")
_POST_EXACT: Final = frozenset({"v1/submissions", "v1/status", "v1/withdrawals"})
_QUERY: Final = re.compile(r"[A-Za-z0-9_.=&-]*")
#: Request headers passed on, besides Content-Type: the solved case puzzle (specs/case-puzzle.md).
_PUZZLE_HEADER: Final = "NCII-Case-Puzzle"
_MAX_PUZZLE_HEADER: Final = 256
_ANSWER_TYPES: Final = {
    "application/json": "application/json",
    "text/plain": "text/plain; charset=utf-8",
    "application/octet-stream": "application/octet-stream",
}


def forwarded_route(method: str, route: str) -> bool:
    """Whether ``method route`` (route: the path after ``/<token>/``) goes to the hub."""
    if method in ("GET", "HEAD"):
        return route in _GET_EXACT or _TILE.fullmatch(route) is not None
    return method == "POST" and route in _POST_EXACT


class ForwardRefused(Exception):
    """Not forwarded, or no usable answer: ``status`` and a stable ``code`` for the page."""

    def __init__(
        self, status: int, code: str, message: str, retry_after: int | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.retry_after = status, code, retry_after


@dataclass(frozen=True, slots=True)
class Forwarded:
    """The hub's answer as passed back to the page."""

    status: int
    body: bytes
    content_type: str
    retry_after: str | None


class HubForwarder:
    """One hub; thread-safe (the page server handles each connection in a thread)."""

    def __init__(
        self,
        hub_url: str,
        *,
        transport: httpx.BaseTransport | None = None,
        deadline: float = DEADLINE,
    ) -> None:
        self.hub_url = hub_url
        self.deadline = deadline
        self._slots = threading.BoundedSemaphore(MAX_CONCURRENT)
        self._http = httpx.Client(
            base_url=hub_url,
            transport=transport,
            timeout=httpx.Timeout(30.0, connect=CONNECT_TIMEOUT),
            follow_redirects=False,
            limits=httpx.Limits(max_connections=MAX_CONCURRENT),
            # Compressed answers would make the cap count compressed bytes.
            headers={"Accept-Encoding": "identity", "User-Agent": "ncii-client-ui"},
        )

    def close(self) -> None:
        self._http.close()

    def forward(
        self,
        method: str,
        route: str,
        query: str,
        *,
        content_type: str | None = None,
        puzzle: str | None = None,
        body: bytes | None = None,
    ) -> Forwarded:
        """Pass one allowed request on; ForwardRefused for anything outside the bounds."""
        if not forwarded_route(method, route):
            raise ForwardRefused(404, "not_found", "No such page.")
        if len(query) > MAX_QUERY_BYTES or not _QUERY.fullmatch(query):
            raise ForwardRefused(400, "bad_query", "This request's query is not one the hub uses.")
        headers: dict[str, str] = {}
        if method == "POST":
            if content_type != ENVELOPE_MEDIA_TYPE:
                raise ForwardRefused(415, "unsupported_media_type", f"Send {ENVELOPE_MEDIA_TYPE}.")
            headers["Content-Type"] = ENVELOPE_MEDIA_TYPE
            if puzzle is not None:
                if (
                    len(puzzle) > _MAX_PUZZLE_HEADER
                    or not puzzle.isascii()
                    or not puzzle.isprintable()  # no control characters passed on
                ):
                    raise ForwardRefused(400, "bad_puzzle", "The puzzle answer is malformed.")
                headers[_PUZZLE_HEADER] = puzzle
        if not self._slots.acquire(blocking=False):
            raise ForwardRefused(
                503, "busy", "Too many requests at once; try again in a moment.", retry_after=1
            )
        try:
            return self._exchange(method, route, query, headers, body)
        finally:
            self._slots.release()

    def _exchange(
        self, method: str, route: str, query: str, headers: dict[str, str], body: bytes | None
    ) -> Forwarded:
        url = "/" + route + ("?" + query if query else "")
        started = time.monotonic()
        try:
            with self._http.stream(
                "GET" if method == "HEAD" else method, url, headers=headers, content=body
            ) as answer:
                if 300 <= answer.status_code < 400:
                    raise ForwardRefused(
                        502, "hub_redirect", "The service answered with a redirect; not followed."
                    )
                encoding = answer.headers.get("content-encoding", "identity").strip().lower()
                if encoding not in ("", "identity"):
                    raise ForwardRefused(502, "bad_answer", "The service sent a compressed answer.")
                declared = answer.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > MAX_ANSWER_BYTES:
                    raise self._too_large()
                chunks: list[bytes] = []
                total = 0
                for chunk in answer.iter_raw():
                    total += len(chunk)
                    if total > MAX_ANSWER_BYTES:
                        raise self._too_large()
                    if time.monotonic() - started > self.deadline:
                        raise ForwardRefused(504, "hub_timeout", "The service took too long.")
                    chunks.append(chunk)
                media = answer.headers.get("content-type", "").split(";", 1)[0].strip().lower()
                retry = answer.headers.get("retry-after", "").strip()
                return Forwarded(
                    answer.status_code,
                    b"".join(chunks),
                    _ANSWER_TYPES.get(media, "application/octet-stream"),
                    retry if retry.isdigit() and len(retry) <= 6 else None,
                )
        except httpx.TimeoutException:
            raise ForwardRefused(504, "hub_timeout", "The service took too long.") from None
        except httpx.HTTPError:
            raise ForwardRefused(
                502,
                "unreachable",
                "The service cannot be reached. Check the connection and try again.",
            ) from None

    def _too_large(self) -> ForwardRefused:
        return ForwardRefused(502, "too_large", "The service's answer is larger than expected.")
