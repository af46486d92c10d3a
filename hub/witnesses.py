"""The hub's witness client: each new checkpoint goes to every configured witness.

Why a task of its own: the log must never wait for a witness. After each sequencer round the
cosigner is woken; one asyncio loop per witness sends the newest published checkpoint with a
consistency proof from the size that witness last cosigned (C2SP tlog-witness, specs/witness.md),
verifies the answer with the witness's key, and stores the line (hub.witness_store), from
where every hub process serves it on /checkpoint. A witness that is down or refuses gets
retries with exponential backoff (capped), never blocking the log or the other witnesses.
Protocol and status rules: specs/hub-api.md section 9.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from crypto.cosignature import verify_cosignature
from crypto.errors import CryptoError
from crypto.merkle import HashReader, consistency_proof
from crypto.witness_protocol import (
    MAX_RESPONSE_BYTES,
    SIZE_CONTENT_TYPE,
    attach_signatures,
    encode_add_checkpoint,
    parse_cosignature_response,
    parse_size_body,
)
from hub.witness_config import WitnessConfig
from hub.witness_store import CosignatureStore

if TYPE_CHECKING:
    import httpx

__all__ = ["Attempt", "Cosigner", "Published"]

log = logging.getLogger("ncii.hub.witnesses")

BASE_BACKOFF: Final = 0.5
IDLE_POLL: Final = 5.0
"""Even without a wake-up, each loop re-reads the published checkpoint this often."""


@dataclass(frozen=True, slots=True)
class Published:
    """The newest published checkpoint: what witnesses are asked to cosign."""

    size: int
    root: bytes
    note: bytes


@dataclass(frozen=True, slots=True)
class Attempt:
    """The outcome of one add-checkpoint exchange (after at most one 409 retry)."""

    ok: bool
    status: int | None = None
    error: str = ""
    retry: bool = True  # False: a refusal that repeats until the log or witness changes


class Cosigner:
    """Collects cosignatures from ``witnesses`` for the checkpoints ``published()`` returns."""

    def __init__(
        self,
        witnesses: Sequence[WitnessConfig],
        store: CosignatureStore,
        *,
        origin: str,
        published: Callable[[], Published],
        reader: Callable[[int, bytes], HashReader],
        timeout: float,
        max_backoff: float,
        concurrency: int,
        clock: Callable[[], float] = time.time,
        transport: httpx.AsyncBaseTransport | None = None,
        on_failure: Callable[[str], object] | None = None,
    ) -> None:
        self.witnesses = tuple(witnesses)
        self.on_failure = on_failure  # called with the witness's name (hub.metrics)
        self.store = store
        self.origin = origin
        self.published = published
        self.reader = reader
        self.timeout = timeout
        self.max_backoff = max_backoff
        self.clock = clock
        self._limit = asyncio.Semaphore(concurrency)
        self._transport = transport
        self._wake: dict[str, asyncio.Event] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._stop = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._http: httpx.AsyncClient | None = None

    @property
    def keys(self) -> list[str]:
        """Verifier key strings of the configured witnesses (how rows are keyed)."""
        return [w.key.encode() for w in self.witnesses]

    def start(self) -> None:
        import httpx  # here: a hub without witnesses never needs it (~0.1 s of every start)

        self._loop = asyncio.get_running_loop()
        self._http = httpx.AsyncClient(timeout=self.timeout, transport=self._transport)
        for w in self.witnesses:
            self._wake[w.name] = asyncio.Event()
            self._tasks.append(asyncio.create_task(self._run(w), name=f"ncii-witness-{w.name}"))

    def notify(self) -> None:
        """A new checkpoint may be published (thread-safe; called after each sequencer round)."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake_all)

    def _wake_all(self) -> None:
        for event in self._wake.values():
            event.set()

    async def stop(self) -> None:
        self._stop.set()
        self._wake_all()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._http is not None:
            await self._http.aclose()

    async def _wait(self, witness: WitnessConfig, seconds: float, wakeable: bool) -> None:
        event = self._wake[witness.name]
        if not wakeable:
            # Backing off: a new checkpoint must not cut the delay short.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=seconds)
            event.clear()
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout=seconds)
        event.clear()

    async def _run(self, witness: WitnessConfig) -> None:
        key = witness.key.encode()
        failures = 0
        while not self._stop.is_set():
            try:
                target = await asyncio.to_thread(self.published)
                status = await asyncio.to_thread(self.store.status, key)
                if target.size == 0 or (
                    status is not None
                    and status.cosigned_size == target.size
                    and await asyncio.to_thread(self._holds_line, key, target)
                ):
                    failures = 0
                    await self._wait(witness, IDLE_POLL, wakeable=True)
                    continue
                known = 0 if status is None or status.known_size is None else status.known_size
                async with self._limit:
                    began = time.monotonic()
                    attempt = await self.add_checkpoint(witness, known, target)
                if attempt.ok:
                    failures = 0
                    log.info(
                        "witness %s cosigned size %d in %.0f ms",
                        witness.name,
                        target.size,
                        (time.monotonic() - began) * 1000,
                    )
                    continue
                failures += 1
                if self.on_failure is not None:
                    self.on_failure(witness.name)
                log.warning(
                    "witness %s did not cosign size %d: %s",
                    witness.name,
                    target.size,
                    attempt.error,
                )
                await asyncio.to_thread(
                    self.store.record_failure,
                    key,
                    attempt.status,
                    attempt.error,
                    int(self.clock()),
                )
                delay = min(self.max_backoff, BASE_BACKOFF * 2 ** min(failures - 1, 16))
                if not attempt.retry:
                    delay = self.max_backoff
                jitter = random.uniform(0.8, 1.0)  # noqa: S311 (spreads retries; not a secret)
                await self._wait(witness, delay * jitter, wakeable=False)
            except asyncio.CancelledError:
                raise
            except Exception:
                failures += 1
                if self.on_failure is not None:
                    self.on_failure(witness.name)
                log.exception("witness %s round failed; retrying", witness.name)
                await self._wait(witness, min(self.max_backoff, 2.0 * failures), wakeable=False)

    def _holds_line(self, key: str, target: Published) -> bool:
        """Whether the witness's line for ``target`` is stored: its status alone must not make
        the loop idle, or a lost line would stay missing until the next checkpoint (the
        witness cosigns the same checkpoint again when asked from its own size)."""
        return bool(self.store.lines_for(target.size, target.note, [key]))

    async def add_checkpoint(self, witness: WitnessConfig, old: int, target: Published) -> Attempt:
        """Send ``target`` from size ``old``; on 409 resend once from the size the witness
        gave. Stores the cosignature on success and the witness's size on a 409."""
        key = witness.key.encode()
        for _round in range(2):
            if old > target.size:
                return Attempt(
                    False,
                    409,
                    f"the witness has cosigned size {old}, larger than the published "
                    f"{target.size}: a fork, or this hub lost log state",
                    retry=False,
                )
            proof: list[bytes] = []
            if 0 < old < target.size:
                reader = await asyncio.to_thread(self.reader, target.size, target.root)
                proof = await asyncio.to_thread(consistency_proof, old, target.size, reader)
            body = encode_add_checkpoint(old, proof, target.note)
            import httpx  # imported by start(): a lookup

            try:
                assert self._http is not None
                response = await self._http.post(witness.url + "/add-checkpoint", content=body)
            except httpx.HTTPError as exc:
                return Attempt(False, None, f"witness unreachable ({type(exc).__name__})")
            status = response.status_code
            if status == 200:
                return await self._accept(witness, target, response.content)
            if status == 409:
                media = response.headers.get("content-type", "").split(";")[0].strip()
                try:
                    if media != SIZE_CONTENT_TYPE:
                        raise CryptoError("no text/x.tlog.size body")
                    size = parse_size_body(response.content)
                except CryptoError:
                    return Attempt(False, 409, "409 without a valid text/x.tlog.size body")
                if size == old:
                    return Attempt(
                        False,
                        409,
                        f"the witness holds another root at size {size}: a fork of this log",
                        retry=False,
                    )
                await asyncio.to_thread(self.store.set_known_size, key, size, int(self.clock()))
                old = size
                continue
            if status == 422:
                return Attempt(
                    False,
                    422,
                    f"the witness refused the consistency proof from {old} to {target.size}: "
                    "its tree at that size differs (a fork of this log)",
                    retry=False,
                )
            if 400 <= status < 500:
                return Attempt(
                    False,
                    status,
                    f"the witness refused the request ({status}); check its --log ORIGIN=VKEY",
                    retry=False,
                )
            return Attempt(False, status, f"the witness failed ({status}); retrying")
        return Attempt(False, 409, "the witness's size moved twice in a row; retrying")

    async def _accept(self, witness: WitnessConfig, target: Published, body: bytes) -> Attempt:
        if len(body) > MAX_RESPONSE_BYTES:
            return Attempt(False, 200, "the witness's answer is too large")
        try:
            lines = parse_cosignature_response(body)
            merged = attach_signatures(target.note, lines)
            verify_cosignature(merged, witness.key, origin=self.origin)
        except CryptoError as exc:
            return Attempt(
                False, 200, f"the witness's cosignature does not verify ({type(exc).__name__})"
            )
        line = next(s for s in lines if s.matches(witness.key)).encode_line()
        await asyncio.to_thread(
            self.store.record_cosignature,
            witness.key.encode(),
            target.size,
            target.note,
            line,
            int(self.clock()),
        )
        await asyncio.to_thread(self.store.prune, self.keys)
        return Attempt(True, 200)
