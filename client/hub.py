"""Talking to a hub over HTTP (specs/hub-api.md): signed requests, safe retries, receipts.

Every request is retried on network errors, 5xx and 429 (honouring Retry-After) with the SAME
bytes: the hub answers a repeated signed submission or withdrawal with its stored answer, so a
retry never creates a second entry. Before anything else the session pins the hub's log key
(trust on first use, per hub URL) and checks every checkpoint it later sees against it, and
that each new checkpoint extends the last one verified (RFC 9162 consistency proof).

Only hashes leave this module: bodies are built by client.plan / here from hub hash objects and
entry ids; no file name, path or size is known to it.

A hub is not trusted to be honest or sane (issue 12): every answer is read as a stream and
reading stops at a cap per kind of answer (:data:`ANSWER_LIMITS`), JSON is parsed with a size
and depth limit (crypto.boundedjson), plain ``http://`` is refused for any host but this
computer unless the caller insists, and receipts are built from the public tiles that everyone
fetches alike, so no request ever names one of the case's leaf hashes.
"""

from __future__ import annotations

import ipaddress
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import httpx
import nacl.signing

from client.bundle import Bundle
from client.errors import (
    HubAnswerTooLargeError,
    HubKeyChangedError,
    HubProtocolError,
    HubRefusedError,
    HubUnreachableError,
    InsecureHubError,
    UsageError,
)
from client.plan import DEFAULT_LIMITS, SubmissionPlan, SubmitLimits, canonical_hash_key, seal_plan
from client.puzzle import load_cached, save_cached, solve_answer
from client.receipts import HubPin, Receipt
from client.store import ClientHome, normalise_hub_url
from crypto import boundedjson, envelope, puzzle
from crypto.case import case_id as case_id_of
from crypto.checkpoint import SignedCheckpoint, open_checkpoint
from crypto.errors import CryptoError
from crypto.keys import parse_verifier_key
from crypto.merkle import NodeId, inclusion_proof, leaf_hash, verify_consistency, verify_inclusion
from crypto.submitter import SUBMITTER_HEADER, endorse
from crypto.tiles import TILE_WIDTH, EntryBundle, Tile, TileHashReader, decode_entry_bundle

__all__ = [
    "ANSWER_LIMITS",
    "CaseStatus",
    "EntryRef",
    "EntryStatus",
    "HubInfo",
    "HubSession",
    "ReceiptSummary",
    "SubmitResult",
    "WithdrawOutcome",
    "check_hub_address",
]

ENVELOPE_TYPE = "application/vnd.ncii.envelope"
Progress = Callable[[int, int], None]

ANSWER_LIMITS: dict[str, int] = {
    # Each cap is far above what a working hub sends, far below what would hurt this computer.
    "log": 64 << 10,  # origin, key, a checkpoint note with up to 32 witness lines: ~5 kB
    "checkpoint": 64 << 10,
    "consistency": 64 << 10,  # at most 64 hashes: ~4.5 kB
    "status": 32 << 20,  # 10,000 entries with their hash objects (videos: frames) ~ 4-20 MB
    "submission": 4 << 20,  # one entry per hash sent, at most 1000 per request: ~110 kB
    "withdrawal": 16 << 20,  # one pair per entry withdrawn: 10,000 entries ~ 0.8 MB
    "tile": TILE_WIDTH * 32,  # exactly 8192 bytes for a full tile
    "entries": TILE_WIDTH * (2 + 256),  # 256 leaves of 34 bytes (specs/commitment.md) ~ 9 kB
    "error": 64 << 10,  # {"error":{"code","message"}}
    "puzzle": 4 << 10,  # challenge, difficulty, scrypt parameters, expiry: ~250 bytes
}
"""The most bytes read from an answer of each kind; past it reading stops with
:class:`HubAnswerTooLargeError`. Errors (non-2xx answers) of any request use ``error``."""

_CHUNK = 64 << 10

_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class HubInfo:
    """The hub's log identity (pinned) and its current size."""

    url: str
    origin: str
    verifier_key: str
    size: int


@dataclass(frozen=True, slots=True)
class EntryRef:
    """One entry the hub accepted: its opaque id and RFC 9162 leaf hash."""

    entry_id: str
    leaf_hash: str


@dataclass(frozen=True, slots=True)
class SubmitResult:
    """What a submission did: entries accepted now, and hashes skipped as already sent."""

    case_id: str
    entries: tuple[EntryRef, ...]
    already_sent: int = 0
    held: int = 0  # of ``entries``, held for review by the hub's operator (not yet logged)


@dataclass(frozen=True, slots=True)
class EntryStatus:
    """One entry of a case as the hub reports it (specs/submission.md 6)."""

    entry_id: str
    kind: str
    state: str  # "integrated" | "pending" | "held" (for review) | "rejected" (after review)
    log_index: int | None
    leaf_hash: str | None
    withdrawn: bool | None = None
    withdraws: str | None = None
    partners: int | None = None
    hash: dict[str, Any] | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class CaseStatus:
    case_id: str
    withdrawn: bool
    checkpoint_size: int
    entries: tuple[EntryStatus, ...]

    @property
    def additions(self) -> list[EntryStatus]:
        return [e for e in self.entries if e.kind == "addition"]


@dataclass(frozen=True, slots=True)
class WithdrawOutcome:
    case_withdrawn: bool
    withdrawn: tuple[tuple[str, str], ...]  # (entry_id, tombstone_id)
    already_withdrawn: tuple[str, ...]
    held_withdrawn: tuple[str, ...] = ()  # held for review, erased without a tombstone


@dataclass(frozen=True, slots=True)
class ReceiptSummary:
    included: int
    pending: int


def _printable(text: str, limit: int = 300) -> str:
    return "".join(c if c.isprintable() else "?" for c in text[:limit])


_ADVICE = {
    "case_withdrawn": (
        "this case was withdrawn, so the hub accepts nothing more for it; to protect more "
        "images, start a new case with 'ncii-client case new'"
    ),
    "unknown_case": "the hub holds nothing for this case yet (nothing was submitted to it)",
    "stale_timestamp": (
        "the hub refused the request because this computer's clock (or the signing time of the "
        "bundle) is off by more than a few minutes; set the correct date and time and try again "
        "(a bundle must be signed again)"
    ),
    "unknown_entry": (
        "the hub has no such entry in this case; check the ids with 'ncii-client status'"
    ),
    "body_too_large": "the request was too large for this hub",
    "puzzle_required": (
        "the hub asks new cases for a solved puzzle, and this client could not get one; "
        "run the same command again"
    ),
    "puzzle_expired": (
        "the hub's case puzzle expired twice while this computer was solving it; the hub is "
        "very busy: run the same command again later"
    ),
    "puzzle_invalid": (
        "the hub did not accept this client's solution of its case puzzle; run the same "
        "command again, and tell the helpline if it keeps happening"
    ),
}
_PUZZLE_CODES = frozenset({"puzzle_required", "puzzle_expired", "puzzle_invalid"})


@dataclass(frozen=True, slots=True)
class _Answer:
    """One answer, its body read in full but never past the cap for its kind."""

    status_code: int
    headers: httpx.Headers
    content: bytes


def _refused(response: _Answer) -> HubRefusedError:
    code, message = "http_error", f"HTTP {response.status_code}"
    try:
        error = boundedjson.loads(response.content, max_bytes=ANSWER_LIMITS["error"])["error"]
        code = str(error["code"])[:64]
        message = str(error["message"])
    except (ValueError, KeyError, TypeError):
        pass
    code = _printable(code, 64)
    advice = _ADVICE.get(code) or f"the hub refused the request: {_printable(message)}"
    return HubRefusedError(f"{advice} [{code}]", code, response.status_code)


def check_hub_address(url: str, allow_insecure_http: bool = False) -> str:
    """The normalised hub URL; InsecureHubError for plain http to another computer (unless
    ``allow_insecure_http``), UsageError for an address that is not a hub URL at all."""
    url = normalise_hub_url(url)
    _check_transport(url, allow_insecure_http)
    return url


def _check_transport(url: str, allow_insecure_http: bool) -> None:
    """Refuse plain http to anything but this computer unless the caller insists.

    Loopback is 127.0.0.0/8, ::1 and the name ``localhost``; any other name is not resolved
    here (a name that happens to resolve to loopback today is still another machine's name)."""
    parsed = httpx.URL(url)
    if parsed.scheme != "http" or allow_insecure_http:
        return
    host = parsed.host.lower()
    if host == "localhost":
        return
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is not None and (
        (address.version == 4 and address in ipaddress.ip_network("127.0.0.0/8"))
        or address == ipaddress.ip_address("::1")
    ):
        return
    raise InsecureHubError(
        f"the hub address {url} is not encrypted (http:// instead of https://): your "
        "fingerprints and your case's signed requests would cross the network readable and "
        "changeable by anyone on the way. Nothing was sent. Use the https:// address your "
        "helpline gave you; only for a test network you control, add --insecure-http"
    )


def _hex(value: object, digits: int) -> str:
    if not isinstance(value, str) or len(value) != digits or value.strip("0123456789abcdef"):
        raise HubProtocolError("the hub sent an answer this client cannot read (bad id or hash)")
    return value


def _int_or_none(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
        raise HubProtocolError("the hub sent an answer this client cannot read (bad number)")
    return value


class HubSession:
    """One hub, one data folder. Use as a context manager (closes the HTTP client)."""

    def __init__(
        self,
        url: str,
        home: ClientHome,
        *,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        attempts: int = 5,
        max_wait: float = 60.0,
        timeout: float = 30.0,
        limits: SubmitLimits = DEFAULT_LIMITS,
        allow_insecure_http: bool = False,
        puzzle_progress: puzzle.Progress | None = None,
        puzzle_cancelled: Callable[[], bool] | None = None,
    ) -> None:
        self.url = check_hub_address(url, allow_insecure_http)
        self.home = home
        # A helpline's submitter key (ncii-client submitter-key); None: the anonymous path.
        self.submitter_key: nacl.signing.SigningKey | None = None
        self.clock, self.sleep = clock, sleep
        self.attempts, self.max_wait, self.limits = attempts, max_wait, limits
        self._http = httpx.Client(
            base_url=self.url,
            transport=transport,
            timeout=timeout,
            follow_redirects=False,
            # Compressed answers would make the caps count compressed bytes: ask for none.
            headers={"Accept-Encoding": "identity"},
        )
        self._pin: HubPin | None = None
        # case puzzle (specs/case-puzzle.md): progress(attempts, expected) while solving, a
        # cancel hook, and the solutions made in this session (case public key -> header)
        self.puzzle_progress, self.puzzle_cancelled = puzzle_progress, puzzle_cancelled
        self._solutions: dict[bytes, str] = {}
        self._status_size = -1  # checkpoint size the last status answer was judged at

    def __enter__(self) -> HubSession:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # -- transport with retries ------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        *,
        kind: str,
        content: bytes | None = None,
        params: Any = None,
        extra_headers: dict[str, str] | None = None,
    ) -> _Answer:
        """Send one request, retrying transient failures with the same bytes; read the answer
        as a stream, never past ``ANSWER_LIMITS[kind]`` (``error`` for a refusal)."""
        headers = {"Content-Type": ENVELOPE_TYPE} if content is not None else {}
        headers.update(extra_headers or {})
        delay = 0.5
        problem = "no answer"
        for attempt in range(self.attempts):
            if attempt:
                self.sleep(delay)
                delay = min(delay * 2, self.max_wait)
            try:
                request = self._http.build_request(
                    method, path, content=content, params=params, headers=headers
                )
                response = self._http.send(request, stream=True)
                try:
                    if response.status_code in _RETRY_STATUSES:
                        answer = _Answer(response.status_code, response.headers, b"")
                    else:
                        limit = ANSWER_LIMITS[kind if response.is_success else "error"]
                        body = self._read_capped(response, limit, kind)
                        return _Answer(response.status_code, response.headers, body)
                finally:
                    response.close()
            except httpx.TransportError as exc:
                problem = _describe_transport(exc)
                if _tls_mismatch(exc) is not None:  # asking again cannot help
                    raise HubUnreachableError(
                        f"could not talk to the hub at {self.url}: {problem}"
                    ) from None
                continue
            problem = (
                "it is busy (too many requests)"
                if answer.status_code == 429
                else f"it had a problem (HTTP {answer.status_code})"
            )
            after = _retry_after(answer)
            if after is not None:
                if after > self.max_wait:
                    break
                delay = max(after, 0.0)
        raise HubUnreachableError(
            f"could not get an answer from the hub at {self.url}: {problem}. Nothing was "
            "lost: check the internet connection (or ask the helpline whether the hub is "
            "running) and run the same command again later"
        )

    def _read_capped(self, response: httpx.Response, limit: int, kind: str) -> bytes:
        """The raw body, read 64 KiB at a time; more than ``limit`` bytes (declared or sent)
        stops reading at once."""
        encoding = response.headers.get("content-encoding", "identity").strip().lower()
        if encoding not in ("", "identity"):
            raise HubProtocolError(
                f"the hub at {self.url} sent a compressed answer although this client asks "
                "for none; it cannot check its size, so it did not read it. Tell the helpline"
            )
        declared = response.headers.get("content-length", "").strip()
        if declared.isdigit() and int(declared) > limit:
            raise self._too_large(kind, limit)
        body = bytearray()
        try:
            for chunk in response.iter_raw(_CHUNK):
                body += chunk
                if len(body) > limit:
                    raise self._too_large(kind, limit)
        except httpx.StreamConsumed:
            # Only an in-process transport (tests) hands over a body already in memory.
            body = bytearray(response.content)
            if len(body) > limit:
                raise self._too_large(kind, limit) from None
        return bytes(body)

    def _too_large(self, kind: str, limit: int) -> HubAnswerTooLargeError:
        size = f"{limit >> 20} MiB" if limit >= 1 << 20 else f"{max(limit >> 10, 1)} KiB"
        return HubAnswerTooLargeError(
            f"the hub at {self.url} sent an answer ({kind}) larger than {size}, far more than "
            "a working hub sends, so this client stopped reading it. The hub is broken or "
            "dishonest: tell the helpline. Nothing on this computer was changed"
        )

    def _json(self, response: _Answer, *ok: int) -> dict[str, Any]:
        if response.status_code not in ok:
            raise _refused(response)
        try:
            value = boundedjson.loads(response.content, max_bytes=len(response.content))
        except boundedjson.JsonBoundsError:
            raise HubProtocolError("the hub sent an answer this client cannot read") from None
        if not isinstance(value, dict):
            raise HubProtocolError("the hub sent an answer this client cannot read")
        return value

    def _post_envelope(
        self, path: str, kind: str, raw: bytes, *ok: int, headers: dict[str, str] | None = None
    ) -> dict[str, Any]:
        return self._json(
            self._request("POST", path, kind=kind, content=raw, extra_headers=headers), *ok
        )

    def _seal(self, case_id: str, purpose: str, body: bytes) -> bytes:
        key = self.home.load_secret(case_id).signing_key()
        return envelope.seal_now(key, purpose, body, int(self.clock()))

    # -- log identity --------------------------------------------------------------------

    def connect(self) -> HubInfo:
        """Fetch the hub's log identity; pin it at first contact, refuse a changed one."""
        info = self._json(self._request("GET", "/v1/log", kind="log"), 200)
        try:
            origin, vkey = str(info["origin"]), str(info["verifier_key"])
            key = parse_verifier_key(vkey)
            note = str(info["checkpoint"])
        except (KeyError, CryptoError):
            raise HubProtocolError("the hub's log identity cannot be read") from None
        pin = self.home.pin(self.url)
        if pin is None:
            pin = HubPin(self.url, origin, key.encode())
            try:
                open_checkpoint(note.encode("utf-8"), [key], origin=origin)
            except CryptoError:
                raise HubProtocolError(
                    "the hub's checkpoint is not signed by the key it presents"
                ) from None
            self.home.save_pin(pin)
        elif (pin.origin, pin.verifier_key) != (origin, key.encode()):
            raise HubKeyChangedError(
                f"the hub at {self.url} now presents a different log key than when this "
                "computer first contacted it; this can mean someone is impersonating it. "
                "Nothing was sent. Ask the helpline before continuing"
            )
        self._pin = pin
        checked = self._verify_checkpoint(note)
        return HubInfo(self.url, origin, pin.verifier_key, checked.checkpoint.size)

    def _require_pin(self) -> HubPin:
        if self._pin is None:
            self.connect()
        assert self._pin is not None
        return self._pin

    def _verify_checkpoint(self, note: str) -> SignedCheckpoint:
        """Verify a checkpoint with the pinned key and that it extends the last one seen."""
        pin = self._require_pin()
        key = parse_verifier_key(pin.verifier_key)
        try:
            signed = open_checkpoint(note.encode("utf-8"), [key], origin=pin.origin)
        except CryptoError:
            raise HubProtocolError(
                "the hub sent a checkpoint not signed by its pinned log key"
            ) from None
        last = self.home.last_checkpoint(self.url)
        if last is not None and last != note:
            old = open_checkpoint(last.encode("utf-8"), [key], origin=pin.origin).checkpoint
            new = signed.checkpoint
            if new.size < old.size:
                # An older, still valid checkpoint (a cache): fine, keep the newer one pinned.
                return signed
            answer = self._json(
                self._request(
                    "GET",
                    "/v1/proof/consistency",
                    kind="consistency",
                    params={"first": old.size, "second": new.size},
                ),
                200,
            )
            try:
                proof = [bytes.fromhex(_hex(h, 64)) for h in answer["proof"]]
                verify_consistency(old.size, new.size, proof, old.root_hash, new.root_hash)
            except (KeyError, TypeError, CryptoError):
                raise HubProtocolError(
                    "the hub's log does not extend the log this computer saw before (a "
                    "rewritten history); keep your receipts and tell the helpline"
                ) from None
        if last is None or signed.checkpoint.size >= _size_of(last):
            self.home.save_checkpoint(self.url, note)
        return signed

    def checkpoint(self) -> tuple[str, SignedCheckpoint]:
        """The latest checkpoint note, verified."""
        response = self._request("GET", "/checkpoint", kind="checkpoint")
        if response.status_code != 200:
            raise _refused(response)
        try:
            note = response.content.decode("utf-8")
        except UnicodeDecodeError:
            raise HubProtocolError("the hub's checkpoint is not text") from None
        return note, self._verify_checkpoint(note)

    # -- submissions ----------------------------------------------------------------------

    def submit(self, case_id: str, plan: SubmissionPlan) -> SubmitResult:
        """Sign and send the plan for ``case_id``, skipping hashes the case already holds
        (so running the same submit twice sends nothing twice), and record receipts."""
        self._require_pin()
        existing = self._existing_hash_keys(case_id)
        todo = plan.without(existing or set())
        already = plan.hash_count - todo.hash_count
        if not todo.hashes:
            return SubmitResult(case_id, (), already)
        secret = self.home.load_secret(case_id)
        if existing is None and self.submitter_key is None:
            # The hub does not know this case: the first submission creates it, and an
            # anonymous one needs the case puzzle solved (a registered submitter's does not).
            self._prepare_puzzle(secret.public_key())
        envelopes = seal_plan(secret, todo, int(self.clock()), limits=self.limits)
        result = self.submit_envelopes(envelopes)
        return SubmitResult(case_id, result.entries, already, result.held)

    def _existing_hash_keys(self, case_id: str) -> set[str] | None:
        """The hash keys the hub holds for this case; None if it does not know the case."""
        try:
            status = self.status(case_id)
        except HubRefusedError as exc:
            if exc.code == "unknown_case":
                return None
            raise
        if status.withdrawn:
            raise HubRefusedError(
                _ADVICE["case_withdrawn"] + " [case_withdrawn]", "case_withdrawn", 410
            )
        return {canonical_hash_key(e.hash) for e in status.entries if e.hash is not None}

    def submit_envelopes(self, envelopes: Sequence[bytes]) -> SubmitResult:
        """POST signed submission envelopes one by one (each retried with the same bytes).

        If this data folder holds the signing case, a pending receipt is saved per entry as
        soon as each answer arrives."""
        entries: list[EntryRef] = []
        case_id = ""
        held = 0
        for raw in envelopes:
            answer = self._post_submission(raw)
            try:
                case_id = str(answer["case_id"])
                if answer.get("status") == "held":
                    held += len(answer["entries"])
                got = [
                    EntryRef(_hex(e["entry_id"], 32), _hex(e["leaf_hash"], 64))
                    for e in answer["entries"]
                ]
            except (KeyError, TypeError):
                raise HubProtocolError("the hub's answer to a submission cannot be read") from None
            if case_id in self.home.case_ids():
                for ref in got:
                    self._save_pending(case_id, ref.entry_id, "addition", ref.leaf_hash)
            entries.extend(got)
        return SubmitResult(case_id, tuple(entries), held=held)

    def _post_submission(self, raw: bytes) -> dict[str, Any]:
        """POST one submission with the case puzzle solution made for its key, if any; when
        the hub asks for one (new case) or refuses it (expired), solve a fresh challenge and
        send the same bytes once more."""
        endorsement: dict[str, str] = {}
        if self.submitter_key is not None:
            # A helpline's endorsement over the exact envelope bytes (specs/submitter.md); the
            # hub then asks no puzzle and counts the submitter's limits.
            endorsement[SUBMITTER_HEADER] = endorse(self.submitter_key, raw).to_header()
        try:
            public_key = envelope.peek_public_key(raw, max_body=len(raw))
        except CryptoError:  # not an envelope: the hub will say so
            return self._post_envelope(
                "/v1/submissions", "submission", raw, 202, headers=endorsement or None
            )
        for attempt in (1, 2):
            solution = self._solutions.get(public_key)
            extra = dict(endorsement)
            if solution is not None:
                extra[puzzle.HEADER_NAME] = solution
            answer = self._request(
                "POST",
                "/v1/submissions",
                kind="submission",
                content=raw,
                extra_headers=extra or None,
            )
            if attempt == 1 and answer.status_code in (403, 428):
                refusal = _refused(answer)
                if refusal.code in _PUZZLE_CODES and self._solve_puzzle(public_key, fresh=True):
                    continue
            return self._json(answer, 202)
        raise AssertionError("unreachable")  # pragma: no cover

    def _prepare_puzzle(self, public_key: bytes) -> None:
        """Solve (or reuse the saved solution of) the case puzzle before a case's first
        submission, so it is sent at once rather than after a refusal."""
        self._solve_puzzle(public_key, fresh=False)

    def _solve_puzzle(self, public_key: bytes, *, fresh: bool) -> bool:
        """Get a solution for this case key: the saved one unless ``fresh``, else solve the
        hub's current challenge. False if the hub asks none (or predates the puzzle)."""
        case_id = case_id_of(public_key)
        own_case = case_id in self.home.case_ids()
        if not fresh and own_case:
            cached = load_cached(self.home, case_id, self.url, int(self.clock()))
            if cached is not None:
                self._solutions[public_key] = cached.header
                return True
        response = self._request("GET", "/v1/case-puzzle", kind="puzzle")
        if response.status_code == 404:
            return False
        answer = self._json(response, 200)
        if answer.get("required") is not True:
            return False
        solved = solve_answer(
            answer,
            public_key,
            hub=self.url,
            progress=self.puzzle_progress,
            cancelled=self.puzzle_cancelled,
        )
        if own_case:
            save_cached(self.home, case_id, solved)
        self._solutions[public_key] = solved.header
        return True

    def upload(self, bundle: Bundle) -> SubmitResult:
        """Send an offline bundle (no case secret needed); idempotent while the hub accepts it
        (its `submission_max_age`, 30 days by default)."""
        self._require_pin()
        return self.submit_envelopes(bundle.envelopes)

    def _save_pending(
        self,
        case_id: str,
        entry_id: str,
        kind: str,
        leaf_hash: str | None,
        withdraws: str | None = None,
    ) -> None:
        path = self.home.cases_dir / case_id / "receipts" / f"{entry_id}.json"
        if path.exists():
            return
        self.home.save_receipt(
            case_id, Receipt(self.url, entry_id, kind, leaf_hash, withdraws=withdraws)
        )

    # -- status and withdrawal ------------------------------------------------------------

    def status(self, case_id: str) -> CaseStatus:
        """The case's entries as the hub reports them (a signed status query)."""
        answer: dict[str, Any] = {}
        for attempt in range(2):
            # Each query is single-use at the hub (specs/hub-api.md): when an answer was lost
            # on the way back, the transport's retry of the same bytes is refused as a replay,
            # so ask once more with a freshly signed query.
            raw = self._seal(case_id, envelope.Purpose.STATUS_QUERY, b'{"v":1}')
            try:
                answer = self._post_envelope("/v1/status", "status", raw, 200)
                break
            except HubRefusedError as exc:
                if exc.code != "replayed_query" or attempt:
                    raise
        try:
            entries = tuple(_entry_status(e) for e in answer["entries"])
            return CaseStatus(
                str(answer["case_id"]),
                bool(answer["withdrawn"]),
                int(answer["checkpoint_size"]),
                entries,
            )
        except (KeyError, TypeError, ValueError):
            raise HubProtocolError("the hub's status answer cannot be read") from None

    def withdraw(self, case_id: str, entries: Sequence[str] | None) -> WithdrawOutcome:
        """Withdraw some entries, or (``None``) the whole case; records tombstone receipts."""
        if entries is None:
            body: dict[str, Any] = {"v": 1, "all": True}
        else:
            ids = list(dict.fromkeys(e.strip().lower() for e in entries))
            if not ids or any(len(i) != 32 or i.strip("0123456789abcdef") for i in ids):
                raise UsageError(
                    "an entry id is 32 letters and digits as shown by 'ncii-client status'"
                )
            body = {"v": 1, "entries": ids}
        raw = self._seal(
            case_id, envelope.Purpose.WITHDRAWAL, json.dumps(body, separators=(",", ":")).encode()
        )
        answer = self._post_envelope("/v1/withdrawals", "withdrawal", raw, 202)
        try:
            pairs = tuple(
                (_hex(w["entry_id"], 32), _hex(w["tombstone_id"], 32)) for w in answer["withdrawn"]
            )
            outcome = WithdrawOutcome(
                bool(answer["case_withdrawn"]),
                pairs,
                tuple(_hex(a, 32) for a in answer["already_withdrawn"]),
                tuple(_hex(a, 32) for a in answer.get("held_withdrawn", [])),
            )
        except (KeyError, TypeError):
            raise HubProtocolError("the hub's answer to the withdrawal cannot be read") from None
        for entry_id, tombstone_id in outcome.withdrawn:
            self._save_pending(case_id, tombstone_id, "tombstone", None, withdraws=entry_id)
        return outcome

    # -- receipts -----------------------------------------------------------------------

    def fetch_receipts(self, case_id: str, *, status: CaseStatus | None = None) -> ReceiptSummary:
        """Complete pending receipts of this hub with inclusion proofs built from its tiles.

        The case's entries and their log positions come from a signed status query (``status``
        if the caller just made one): entries sent from elsewhere (a bundle) and tombstones
        get receipts too. Each proof is then computed here from the public hash tiles, checked
        against the verified checkpoint, and the leaf is confirmed in the public entry bundle.
        No request names a leaf hash: the tiles fetched are the ones every log reader fetches.
        """
        self._require_pin()
        if status is None:
            status = self._status_if_known(case_id)
        positions: dict[str, int] = {}
        if status is not None:
            self._merge_status(case_id, status)
            positions = {e.entry_id: e.log_index for e in status.entries if e.log_index is not None}
            self._status_size = status.checkpoint_size
        note, signed = self.checkpoint()
        size = signed.checkpoint.size
        prover = _TileProver(self, signed)
        included = pending = 0
        for receipt in self.home.receipts(case_id):
            if receipt.hub != self.url:
                continue
            if receipt.included:
                included += 1
                continue
            index = positions.get(receipt.entry_id)
            if receipt.leaf_hash is None or index is None or index >= size:
                pending += 1
                continue
            proof = prover.prove(receipt.leaf_hash, index)
            self.home.save_receipt(
                case_id, receipt.with_proof(receipt.leaf_hash, index, size, proof, note)
            )
            included += 1
        return ReceiptSummary(included, pending)

    def _status_if_known(self, case_id: str) -> CaseStatus | None:
        try:
            return self.status(case_id)
        except HubRefusedError as exc:
            if exc.code == "unknown_case":
                return None
            raise

    def _merge_status(self, case_id: str, status: CaseStatus) -> None:
        known = {r.entry_id: r for r in self.home.receipts(case_id) if r.hub == self.url}
        for e in status.entries:
            have = known.get(e.entry_id)
            if have is None:
                self.home.save_receipt(
                    case_id, Receipt(self.url, e.entry_id, e.kind, e.leaf_hash, e.withdraws)
                )
            elif have.leaf_hash is None and e.leaf_hash is not None:
                self.home.save_receipt(
                    case_id,
                    Receipt(self.url, have.entry_id, have.kind, e.leaf_hash, have.withdraws),
                )

    def fetch_tile(self, tile: Tile | EntryBundle) -> bytes:
        """The bytes of one public tile or entry bundle (C2SP tlog-tiles), size-capped."""
        kind = "entries" if isinstance(tile, EntryBundle) else "tile"
        response = self._request("GET", "/" + tile.path, kind=kind)
        if response.status_code == 404:
            raise HubProtocolError(
                f"the hub does not serve {tile.path}, which its signed checkpoint needs; "
                "keep your receipts and tell the helpline"
            )
        if response.status_code != 200:
            raise _refused(response)
        return response.content

    def wait_for_inclusion(
        self,
        case_id: str,
        *,
        timeout: float = 60.0,
        poll: float = 0.5,
        progress: Progress | None = None,
    ) -> ReceiptSummary:
        """Fetch receipts until none of this hub's is pending or ``timeout`` seconds pass.

        Between rounds only the public checkpoint is polled; the signed status query (which
        gives the new entries' positions) is asked again only once the log has grown past the
        size the last status answer was judged at."""
        deadline = self.clock() + timeout
        summary = self.fetch_receipts(case_id)
        while True:
            if progress is not None:
                progress(summary.included, summary.included + summary.pending)
            if summary.pending == 0 or self.clock() >= deadline:
                return summary
            self.sleep(poll)
            _, signed = self.checkpoint()
            if signed.checkpoint.size > self._status_size:
                summary = self.fetch_receipts(case_id)


class _TileProver:
    """Inclusion proofs for one verified checkpoint, from tiles fetched (and cached) once."""

    def __init__(self, session: HubSession, signed: SignedCheckpoint) -> None:
        self.session = session
        self.size = signed.checkpoint.size
        self.root = signed.checkpoint.root_hash
        self.reader = TileHashReader(self.size, self.root, session.fetch_tile)
        self.bundles: dict[int, list[bytes]] = {}

    def _entries(self, number: int) -> list[bytes]:
        if number not in self.bundles:
            width = min(TILE_WIDTH, self.size - number * TILE_WIDTH)
            bundle = EntryBundle(number, width)
            self.bundles[number] = decode_entry_bundle(self.session.fetch_tile(bundle), width)
        return self.bundles[number]

    def prove(self, leaf_hex: str, index: int) -> list[str]:
        """The RFC 9162 proof for the leaf at ``index``, after checking the leaf is there."""
        leaf = bytes.fromhex(leaf_hex)
        try:
            if self.reader.read_hashes([NodeId(0, index)])[0] != leaf:
                raise HubProtocolError(
                    "the hub's status places an entry at a log position that holds another "
                    "one; keep your receipts and tell the helpline"
                )
            entry = self._entries(index // TILE_WIDTH)[index % TILE_WIDTH]
            if leaf_hash(entry) != leaf:
                raise HubProtocolError(
                    "the hub's public entry bundle does not match its own tiles; keep your "
                    "receipts and tell the helpline"
                )
            proof = inclusion_proof(index, self.size, self.reader)
            verify_inclusion(leaf, index, self.size, proof, self.root)
        except CryptoError:
            raise HubProtocolError(
                "the hub's public tiles do not match its signed checkpoint; keep your "
                "receipts and tell the helpline"
            ) from None
        return [h.hex() for h in proof]


def _entry_status(e: Any) -> EntryStatus:
    kind = e["kind"]
    if kind not in ("addition", "tombstone"):
        raise ValueError("kind")
    h = e.get("hash")
    partners = e.get("partners")
    return EntryStatus(
        entry_id=_hex(e["entry_id"], 32),
        kind=kind,
        state=e["state"] if e["state"] in ("integrated", "held", "rejected") else "pending",
        log_index=_int_or_none(e["log_index"]),
        leaf_hash=None if e["leaf_hash"] is None else _hex(e["leaf_hash"], 64),
        withdrawn=bool(e["withdrawn"]) if kind == "addition" else None,
        withdraws=None if e.get("withdraws") is None else _hex(e["withdraws"], 32),
        partners=_int_or_none(partners) if partners is not None else None,
        hash=h if isinstance(h, dict) else None,
    )


def _size_of(note: str) -> int:
    try:
        return int(note.split("\n", 2)[1])
    except (IndexError, ValueError):
        return 0


def _retry_after(response: _Answer) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if seconds == seconds and seconds >= 0 else None


def _describe_transport(exc: httpx.TransportError) -> str:
    mismatch = _tls_mismatch(exc)
    if mismatch == "plain":
        return (
            "this address speaks plain HTTP, not HTTPS (try http:// instead of https:// if "
            "the hub runs on this computer; otherwise ask the helpline for the right address)"
        )
    if mismatch == "tls":
        return (
            "the answer was not plain HTTP (this address probably speaks HTTPS): write "
            "https:// instead of http://"
        )
    if isinstance(exc, httpx.ConnectError):
        return "the connection was refused or the address was not found"
    if isinstance(exc, httpx.TimeoutException):
        return "it did not answer in time"
    return "the connection broke"


# OpenSSL's reasons when an https:// client reaches a server that answers in plain HTTP.
_PLAIN_HTTP_REASONS = frozenset(
    {"WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "HTTP_REQUEST", "UNKNOWN_PROTOCOL"}
)


def _tls_mismatch(exc: BaseException) -> str | None:
    """``"plain"`` if an https:// address reached a plain-HTTP server, ``"tls"`` if an http://
    address reached a TLS server (its first bytes are a TLS record), else None (finding 9)."""
    import ssl

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLError):
            reason = str(getattr(current, "reason", "") or "").upper()
            if reason in _PLAIN_HTTP_REASONS or "WRONG_VERSION_NUMBER" in str(current):
                return "plain"
        text = str(current)
        if isinstance(current, httpx.RemoteProtocolError) and "illegal" in text:
            # The first bytes back were not an HTTP status line: a TLS record, most likely.
            return "tls"
        current = current.__cause__ or current.__context__
    return None
