"""POST /v1/submissions on the lean path (hub.app.HubApp) answers exactly like the ordinary
FastAPI route it bypasses: status, headers, error body, the 500 that is re-raised, and the
request metrics. Each case is sent once to an app with the lean path and once to an identical
app without it, over raw ASGI (so malformed heads, a stalled body and a disconnect can be sent).
"""

from __future__ import annotations

import asyncio
import json
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hubkit import Case, random_md5, random_pdq
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.exc import OperationalError

from hub import intake
from hub.app import HubApp, create_app
from hub.settings import Settings

ENVELOPE = b"application/vnd.ncii.envelope"
Answer = tuple[int, list[tuple[bytes, bytes]], bytes]


def make_app(tmp_path: Path, name: str, lean: bool, **extra: Any) -> HubApp:
    settings = Settings(
        data_dir=tmp_path / name,
        sequencer=False,
        puzzle=False,
        admission_control=False,
        body_read_seconds=0.5,
        **extra,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        app = create_app(settings)
    app.lean = lean
    return app


def call(
    app: HubApp,
    body: list[bytes],
    headers: list[tuple[bytes, bytes]] | None = None,
    method: str = "POST",
    stall: bool = False,
    disconnect: bool = False,
) -> Answer:
    """One request over ASGI: ``body`` in chunks; ``stall``: the rest never comes;
    ``disconnect``: the client goes away after the chunks."""
    if headers is None:
        headers = [(b"content-type", ENVELOPE)]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": "/v1/submissions",
        "raw_path": b"/v1/submissions",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"hub.test"), *headers],
        "client": ("198.51.100.7", 40000),
        "server": ("hub.test", 80),
    }
    pending = [
        {"type": "http.request", "body": chunk, "more_body": i + 1 < len(body) or stall}
        for i, chunk in enumerate(body)
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if pending:
            return pending.pop(0)
        if disconnect:
            return {"type": "http.disconnect"}
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def run() -> None:
        try:
            await app(scope, receive, send)
        except Exception:  # re-raised after the 500 was sent, like Starlette's outermost layer
            pass

    asyncio.run(run())
    start = next(m for m in sent if m["type"] == "http.response.start")
    content = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return int(start["status"]), list(start.get("headers", [])), content


def request_counts(app: HubApp) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The request and refusal counters (not latencies, not gauges)."""
    text = app.state.hub.metrics.exposition().decode()
    out = {}
    for family in text_string_to_metric_families(text):
        if family.name in ("ncii_hub_http_requests", "ncii_hub_refusals", "ncii_hub_rate_limited"):
            for s in family.samples:
                if s.name.endswith("_total") and s.value:
                    out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def both(tmp_path: Path, **extra: Any) -> tuple[HubApp, HubApp]:
    return make_app(tmp_path, "lean", True, **extra), make_app(tmp_path, "plain", False, **extra)


def assert_same(lean: Answer, plain: Answer) -> None:
    assert lean[0] == plain[0]
    assert lean[1] == plain[1]  # the same headers in the same order
    assert lean[2] == plain[2]


def _flip_last(raw: bytes) -> bytes:
    return raw[:-1] + bytes([raw[-1] ^ 1])


OVERSIZED = b"x" * ((1 << 20) + 1000)

CASES: dict[str, Callable[[], tuple[list[bytes], dict[str, Any]]]] = {
    "wrong media type": lambda: ([b"{}"], {"headers": [(b"content-type", b"application/json")]}),
    "no media type": lambda: ([b"{}"], {"headers": []}),
    "bad content-length": lambda: (
        [b"{}"],
        {"headers": [(b"content-type", ENVELOPE), (b"content-length", b"12x")]},
    ),
    "declared too large": lambda: (
        [b"{}"],
        {"headers": [(b"content-type", ENVELOPE), (b"content-length", b"99999999")]},
    ),
    "streamed too large": lambda: ([OVERSIZED[:70000]] * 20, {}),
    "not an envelope": lambda: ([b"\x00garbage"], {}),
    "empty body": lambda: ([b""], {}),
    "bad signature": lambda: ([_flip_last(Case().submission([random_pdq()]))], {}),
    "bad JSON in a signed envelope": lambda: ([Case().seal("submission", b"{not json")], {}),
    "unknown field": lambda: ([Case().seal("submission", {"v": 1, "hashes": [], "x": 1})], {}),
    "wrong purpose": lambda: ([Case().seal("withdrawal", {"v": 1, "all": True})], {}),
    "media type with parameters, split body": lambda: (
        [b"\x00", b"garbage"],
        {"headers": [(b"content-type", b"Application/Vnd.NCII.Envelope; x=1")]},
    ),
    "body stalls": lambda: ([b"\x00gar"], {"stall": True}),
    "GET": lambda: ([b""], {"method": "GET"}),
    "PUT": lambda: ([b"{}"], {"method": "PUT"}),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_refusals_are_answered_alike(tmp_path: Path, name: str) -> None:
    lean, plain = both(tmp_path)
    chunks, kw = CASES[name]()
    a, b = call(lean, chunks, **kw), call(plain, chunks, **kw)
    assert a[0] >= 400
    assert_same(a, b)
    assert request_counts(lean) == request_counts(plain)
    assert request_counts(lean)  # counted


def test_body_deadline_is_408(tmp_path: Path) -> None:
    lean, plain = both(tmp_path)
    a = call(lean, [b"\x00gar"], stall=True)
    assert_same(a, call(plain, [b"\x00gar"], stall=True))
    assert (a[0], json.loads(a[2])["error"]["code"]) == (408, "request_timeout")


def test_accepted_and_retried_alike(tmp_path: Path, database_url: str) -> None:
    lean, plain = both(tmp_path, database_url=database_url)  # one database, two apps
    answers = []
    for app in (lean, plain):
        case = Case()
        raw = case.submission([random_pdq(), random_md5()])
        first = call(app, [raw])
        assert first[0] == 202
        doc = json.loads(first[2])
        assert (doc["v"], doc["case_id"], doc["status"]) == (1, case.case_id, "pending")
        assert len(doc["entries"]) == 2
        # An identical retry gets the first answer, byte for byte.
        assert call(app, [raw]) == first
        answers.append(first)
    (_, a_headers, _), (_, b_headers, _) = answers
    assert a_headers == b_headers  # same order; the length is the same too (same shapes)
    assert a_headers[0] == (b"cache-control", b"no-store")
    counts = request_counts(lean)
    assert counts == request_counts(plain)
    route = (("route", "/v1/submissions"), ("status", "202"))
    assert counts[("ncii_hub_http_requests_total", route)] == 2
    assert lean.middleware_stack is None  # Starlette's stack was never built: the lean path
    assert plain.middleware_stack is not None


def test_rate_limited_alike(tmp_path: Path) -> None:
    lean, plain = both(tmp_path, ip_rate=0.001, ip_burst=1)
    raw = Case().submission([random_pdq()])
    assert call(lean, [raw])[0] == call(plain, [raw])[0] == 202
    a, b = call(lean, [raw]), call(plain, [raw])
    assert a[0] == 429
    assert (b"retry-after", b"1000") in a[1]
    assert_same(a, b)
    assert request_counts(lean) == request_counts(plain)


def test_client_disconnect_alike(tmp_path: Path) -> None:
    lean, plain = both(tmp_path)
    a = call(lean, [b"\x00gar"], disconnect=True, stall=True)
    assert_same(a, call(plain, [b"\x00gar"], disconnect=True, stall=True))
    assert a[0] == 500
    assert request_counts(lean) == request_counts(plain)


@pytest.mark.parametrize(
    ("failure", "status", "code"),
    [
        (RuntimeError("boom"), 500, "internal_error"),
        (OperationalError("SELECT", {}, Exception("gone")), 503, "database_unavailable"),
    ],
)
def test_failures_alike(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    failure: Exception,
    status: int,
    code: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(*_args: Any) -> intake.Prepared:
        raise failure

    # both paths come here (prepare and prepare_each) after the envelope and replay checks
    monkeypatch.setattr(intake, "_prepare_opened", broken)
    lean, plain = both(tmp_path)
    raw = Case().submission([random_pdq()])
    with caplog.at_level("WARNING", logger="ncii.hub"):
        a = call(lean, [raw])
        lean_log = [r.getMessage() for r in caplog.records]
        caplog.clear()
        b = call(plain, [raw])
        plain_log = [r.getMessage() for r in caplog.records]
    assert (a[0], json.loads(a[2])["error"]["code"]) == (status, code)
    assert_same(a, b)
    assert lean_log == plain_log and lean_log
    assert request_counts(lean) == request_counts(plain)


def test_a_submission_after_the_intake_closed_is_answered_503_retry(tmp_path: Path) -> None:
    """During a graceful stop (the lifespan ended, the intake threads are closed) a late
    submission is told to retry (503, Retry-After), not that the hub failed (500)."""
    app = make_app(tmp_path, "lean", True)

    async def start_and_stop() -> None:
        async with app.router.lifespan_context(app):
            pass

    asyncio.run(start_and_stop())
    status, headers, body = call(app, [Case().submission([random_pdq()])])
    assert status == 503
    assert (b"retry-after", b"1") in headers
    assert json.loads(body)["error"]["code"] == "hub_stopping"
