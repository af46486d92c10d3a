"""A submission that carries a case puzzle solution is prepared on threads of its own: checking
a solution costs one scrypt run (up to 300 ms at the largest allowed N), and anyone can send
wrong solutions, so those checks must never hold back the hub's one preparing thread, which
serves every other submission (hub.app)."""

from __future__ import annotations

import asyncio
import threading
import warnings
from pathlib import Path
from typing import Any

from hubkit import Case, random_pdq

from hub.app import create_app
from hub.puzzle import HEADER
from hub.settings import Settings

ENVELOPE = b"application/vnd.ncii.envelope"


async def _post(app: Any, raw: bytes, puzzle: str | None) -> int:
    headers = [(b"host", b"hub.test"), (b"content-type", ENVELOPE)]
    if puzzle is not None:
        headers.append((HEADER.lower().encode(), puzzle.encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/submissions",
        "raw_path": b"/v1/submissions",
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": ("198.51.100.7", 40000),
        "server": ("hub.test", 80),
    }
    sent = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": raw, "more_body": False}
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


def test_a_slow_puzzle_check_does_not_hold_back_other_submissions(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "hub", sequencer=False, admission_control=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        app = create_app(settings)
    service = app.state.hub.puzzle
    release = threading.Event()
    checking = threading.Event()

    def check(header_value: str | None, public_key: bytes, now: int) -> None:
        if header_value == "slow":  # a solution whose check takes long (a large scrypt N)
            checking.set()
            release.wait(30)

    service.check = check
    known = Case()

    async def main() -> tuple[int, int, int, bool]:
        first = await _post(app, known.submission([random_pdq()]), "fast")
        slow = asyncio.ensure_future(_post(app, Case().submission([random_pdq()]), "slow"))
        while not checking.is_set():
            await asyncio.sleep(0.01)
        # The known case needs no puzzle: answered while the slow check still runs.
        other = await asyncio.wait_for(_post(app, known.submission([random_pdq()]), None), 10)
        still_checking = not slow.done()
        release.set()
        return first, other, await slow, still_checking

    try:
        first, other, slow, still_checking = asyncio.run(main())
    finally:
        release.set()
    assert (first, other, slow) == (202, 202, 202)
    assert still_checking
