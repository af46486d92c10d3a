"""Talking to a hub over HTTP (specs/hub-api.md): signed requests, safe retries, receipts.

Every request is retried on network errors, 5xx and 429 (honouring Retry-After) with the SAME
bytes: the hub answers a repeated signed submission or withdrawal with its stored answer, so a
retry never creates a second entry. Before anything else the session pins the hub's log key
(trust on first use, per hub URL) and checks every checkpoint it later sees against it, and
that each new checkpoint extends the last one verified (RFC 9162 consistency proof).

Only hashes leave this module: bodies are built by client.plan / here from hub hash objects and
entry ids; no file name, path or size is known to it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import httpx

from client.bundle import Bundle
from client.errors import (
    HubKeyChangedError,
    HubProtocolError,
    HubRefusedError,
    HubUnreachableError,
    UsageError,
)
from client.plan import DEFAULT_LIMITS, SubmissionPlan, SubmitLimits, canonical_hash_key, seal_plan
from client.receipts import HubPin, Receipt
from client.store import ClientHome, normalise_hub_url
from crypto import envelope
from crypto.checkpoint import SignedCheckpoint, open_checkpoint
from crypto.errors import CryptoError
from crypto.keys import parse_verifier_key
from crypto.merkle import verify_consistency, verify_inclusion

__all__ = [
    "CaseStatus",
    "EntryRef",
    "EntryStatus",
    "HubInfo",
    "HubSession",
    "ReceiptSummary",
    "SubmitResult",
    "WithdrawOutcome",
]

ENVELOPE_TYPE = "application/vnd.ncii.envelope"
MAX_ANSWER_BYTES = 64 << 20
Progress = Callable[[int, int], None]

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


@dataclass(frozen=True, slots=True)
class EntryStatus:
    """One entry of a case as the hub reports it (specs/submission.md 6)."""

    entry_id: str
    kind: str
    state: str  # "integrated" | "pending"
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
}


def _refused(response: httpx.Response) -> HubRefusedError:
    code, message = "http_error", f"HTTP {response.status_code}"
    try:
        error = response.json()["error"]
        code = str(error["code"])[:64]
        message = str(error["message"])
    except (ValueError, KeyError, TypeError):
        pass
    code = _printable(code, 64)
    advice = _ADVICE.get(code) or f"the hub refused the request: {_printable(message)}"
    return HubRefusedError(f"{advice} [{code}]", code, response.status_code)


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
    ) -> None:
        self.url = normalise_hub_url(url)
        self.home = home
        self.clock, self.sleep = clock, sleep
        self.attempts, self.max_wait, self.limits = attempts, max_wait, limits
        self._http = httpx.Client(
            base_url=self.url, transport=transport, timeout=timeout, follow_redirects=False
        )
        self._pin: HubPin | None = None

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
        self, method: str, path: str, *, content: bytes | None = None, params: Any = None
    ) -> httpx.Response:
        """Send one request, retrying transient failures with the same bytes."""
        headers = {"Content-Type": ENVELOPE_TYPE} if content is not None else {}
        delay = 0.5
        problem = "no answer"
        for attempt in range(self.attempts):
            if attempt:
                self.sleep(delay)
                delay = min(delay * 2, self.max_wait)
            try:
                response = self._http.request(
                    method, path, content=content, params=params, headers=headers
                )
                response.read()
            except httpx.TransportError as exc:
                problem = _describe_transport(exc)
                continue
            if response.status_code not in _RETRY_STATUSES:
                return response
            problem = (
                "it is busy (too many requests)"
                if response.status_code == 429
                else f"it had a problem (HTTP {response.status_code})"
            )
            after = _retry_after(response)
            if after is not None:
                if after > self.max_wait:
                    break
                delay = max(after, 0.0)
        raise HubUnreachableError(
            f"could not get an answer from the hub at {self.url}: {problem}. Nothing was "
            "lost: check the internet connection (or ask the helpline whether the hub is "
            "running) and run the same command again later"
        )

    def _json(self, response: httpx.Response, *ok: int) -> dict[str, Any]:
        if response.status_code not in ok:
            raise _refused(response)
        if len(response.content) > MAX_ANSWER_BYTES:
            raise HubProtocolError("the hub sent an answer far larger than expected")
        try:
            value = json.loads(response.content)
        except ValueError:
            raise HubProtocolError("the hub sent an answer this client cannot read") from None
        if not isinstance(value, dict):
            raise HubProtocolError("the hub sent an answer this client cannot read")
        return value

    def _post_envelope(self, path: str, raw: bytes, *ok: int) -> dict[str, Any]:
        return self._json(self._request("POST", path, content=raw), *ok)

    def _seal(self, case_id: str, purpose: str, body: bytes) -> bytes:
        key = self.home.load_secret(case_id).signing_key()
        return envelope.seal_now(key, purpose, body, int(self.clock()))

    # -- log identity --------------------------------------------------------------------

    def connect(self) -> HubInfo:
        """Fetch the hub's log identity; pin it at first contact, refuse a changed one."""
        info = self._json(self._request("GET", "/v1/log"), 200)
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
        response = self._request("GET", "/checkpoint")
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
        todo = plan.without(existing)
        already = plan.hash_count - todo.hash_count
        if not todo.hashes:
            return SubmitResult(case_id, (), already)
        secret = self.home.load_secret(case_id)
        envelopes = seal_plan(secret, todo, int(self.clock()), limits=self.limits)
        result = self.submit_envelopes(envelopes)
        return SubmitResult(case_id, result.entries, already)

    def _existing_hash_keys(self, case_id: str) -> set[str]:
        try:
            status = self.status(case_id)
        except HubRefusedError as exc:
            if exc.code == "unknown_case":
                return set()
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
        for raw in envelopes:
            answer = self._post_envelope("/v1/submissions", raw, 202)
            try:
                case_id = str(answer["case_id"])
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
        return SubmitResult(case_id, tuple(entries))

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
        raw = self._seal(case_id, envelope.Purpose.STATUS_QUERY, b'{"v":1}')
        answer = self._post_envelope("/v1/status", raw, 200)
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
        answer = self._post_envelope("/v1/withdrawals", raw, 202)
        try:
            pairs = tuple(
                (_hex(w["entry_id"], 32), _hex(w["tombstone_id"], 32)) for w in answer["withdrawn"]
            )
            outcome = WithdrawOutcome(
                bool(answer["case_withdrawn"]),
                pairs,
                tuple(_hex(a, 32) for a in answer["already_withdrawn"]),
            )
        except (KeyError, TypeError):
            raise HubProtocolError("the hub's answer to the withdrawal cannot be read") from None
        for entry_id, tombstone_id in outcome.withdrawn:
            self._save_pending(case_id, tombstone_id, "tombstone", None, withdraws=entry_id)
        return outcome

    # -- receipts -----------------------------------------------------------------------

    def fetch_receipts(self, case_id: str, *, use_status: bool = True) -> ReceiptSummary:
        """Complete pending receipts of this hub with verified inclusion proofs.

        With ``use_status`` the case's entries are first learnt from a signed status query,
        so entries sent from elsewhere (a bundle) or tombstones get receipts too."""
        self._require_pin()
        if use_status:
            self._merge_status(case_id)
        note, signed = self.checkpoint()
        size = signed.checkpoint.size
        included = pending = 0
        for receipt in self.home.receipts(case_id):
            if receipt.hub != self.url:
                continue
            if receipt.included:
                included += 1
                continue
            if receipt.leaf_hash is None or size == 0:
                pending += 1
                continue
            completed = self._prove(receipt, note, signed)
            if completed is None:
                pending += 1
            else:
                self.home.save_receipt(case_id, completed)
                included += 1
        return ReceiptSummary(included, pending)

    def _merge_status(self, case_id: str) -> None:
        try:
            status = self.status(case_id)
        except HubRefusedError as exc:
            if exc.code == "unknown_case":
                return
            raise
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

    def _prove(self, receipt: Receipt, note: str, signed: SignedCheckpoint) -> Receipt | None:
        assert receipt.leaf_hash is not None
        size = signed.checkpoint.size
        response = self._request(
            "GET", "/v1/proof/inclusion", params={"leaf_hash": receipt.leaf_hash, "size": size}
        )
        if response.status_code == 404:
            return None  # not integrated yet (unknown_leaf)
        answer = self._json(response, 200)
        try:
            index = _int_or_none(answer["log_index"])
            proof = [_hex(h, 64) for h in answer["proof"]]
            if index is None or answer["leaf_hash"] != receipt.leaf_hash:
                raise HubProtocolError("the hub sent a proof for another entry")
            verify_inclusion(
                bytes.fromhex(receipt.leaf_hash),
                index,
                size,
                [bytes.fromhex(h) for h in proof],
                signed.checkpoint.root_hash,
            )
        except (KeyError, TypeError, CryptoError):
            raise HubProtocolError(
                "the hub sent an inclusion proof that does not verify; keep your receipts "
                "and tell the helpline"
            ) from None
        return receipt.with_proof(receipt.leaf_hash, index, size, proof, note)

    def wait_for_inclusion(
        self,
        case_id: str,
        *,
        timeout: float = 60.0,
        poll: float = 0.5,
        progress: Progress | None = None,
    ) -> ReceiptSummary:
        """Fetch receipts until none of this hub's is pending or ``timeout`` seconds pass."""
        deadline = self.clock() + timeout
        summary = self.fetch_receipts(case_id, use_status=False)
        last_status = self.clock()
        while True:
            if progress is not None:
                progress(summary.included, summary.included + summary.pending)
            if summary.pending == 0 or self.clock() >= deadline:
                return summary
            self.sleep(poll)
            # Tombstones learn their leaf hash from status; ask at most every 2 s (rate limit).
            need_status = self.clock() - last_status >= 2.0 and any(
                r.leaf_hash is None and not r.included
                for r in self.home.receipts(case_id)
                if r.hub == self.url
            )
            if need_status:
                last_status = self.clock()
            summary = self.fetch_receipts(case_id, use_status=need_status)


def _entry_status(e: Any) -> EntryStatus:
    kind = e["kind"]
    if kind not in ("addition", "tombstone"):
        raise ValueError("kind")
    h = e.get("hash")
    partners = e.get("partners")
    return EntryStatus(
        entry_id=_hex(e["entry_id"], 32),
        kind=kind,
        state="integrated" if e["state"] == "integrated" else "pending",
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


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if seconds == seconds and seconds >= 0 else None


def _describe_transport(exc: httpx.TransportError) -> str:
    if isinstance(exc, httpx.ConnectError):
        return "the connection was refused or the address was not found"
    if isinstance(exc, httpx.TimeoutException):
        return "it did not answer in time"
    return "the connection broke"
