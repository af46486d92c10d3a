"""Fuzzing over real HTTP against a ``ncii-hub serve`` subprocess: no 5xx, ever.

1. schemathesis generates requests (valid and invalid by the schema) for every operation in
   the hub's own /openapi.json; every answer must be below 500, every 4xx a JSON error with a
   snake_case code, and the hub's output must hold no traceback. Runs on SQLite and PostgreSQL:
   the log and feed routes reach the database with client-chosen integers (sizes, indexes,
   cursors), where the two differ (PostgreSQL refuses integers beyond bigint).
2. hypothesis builds envelopes that are correctly signed by a case key but carry hostile JSON
   bodies (wrong types, huge numbers, deep nesting, unicode, unknown fields, duplicate keys,
   NaN, lists over the caps, non-UTF-8) for /v1/submissions, /v1/status and /v1/withdrawals.
   Each body is invalid by construction; every answer must be the 4xx JSON error the spec lists
   for it (specs/hub-api.md section 5) and nothing may be stored. SQLite only: these bodies are
   refused by the parser before any storage call, so PostgreSQL would double the time (a second
   hub start and the same requests) without reaching different code.

Example counts are bounded (deterministic, ``derandomize``) to keep this well under a minute.
"""

from __future__ import annotations

import json
import math
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import requests
import schemathesis
from hubkit import (
    ENVELOPE_TYPE,
    Case,
    HubFactory,
    HubProcess,
    mixed_hashes,
    post,
    random_md5,
    random_pdq,
    random_sha256,
    random_vpdq,
    wait_for_size,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.core.result import Ok

# The envelope endpoints take raw bytes: let schemathesis send its binary bodies as they are.
schemathesis.serializer.alias(ENVELOPE_TYPE, "application/octet-stream")

CAPS = {"max_hashes_per_request": 6, "max_vpdq_frames": 5, "max_withdraw_entries": 4}
ARGS = (
    *(f"--set={k}={v}" for k, v in CAPS.items()),
    "--set=ip_rate=100000",
    "--set=ip_burst=100000",
    "--set=case_rate=100000",
    "--set=case_burst=100000",
)
HOST_PATHS = {  # every route the hub serves; the fuzz must reach each one
    "/v1/submissions",
    "/v1/status",
    "/v1/withdrawals",
    "/checkpoint",
    "/tile/{path}",
    "/v1/log",
    "/v1/proof/inclusion",
    "/v1/proof/consistency",
    "/",
    "/s/{name}/{path}",
    "/page/manifest",
}
CODE = re.compile(r"[a-z][a-z0-9_]*")
STATUS_OF = {  # specs/hub-api.md section 5: the status each body-level refusal comes with
    "invalid_body": 400,
    "unsupported_version": 400,
    "invalid_hash": 400,
    "body_too_large": 413,
    "unknown_entry": 404,
    "low_quality": 422,
    "duplicate_hash": 422,
    "too_many_hashes": 422,
    "too_many_frames": 422,
    "too_many_entries": 422,
}


@dataclass
class Seeded:
    hub: HubProcess
    case: Case  # holds integrated entries
    entry_ids: list[str]
    size: int


@pytest.fixture
def seeded(hub_factory: HubFactory) -> Seeded:
    """A hub whose log holds one case's entries, so proofs, tiles and status have data."""
    hub = hub_factory(*ARGS)
    case = Case()
    with hub.client() as client:
        r = post(client, "/v1/submissions", case.submission(mixed_hashes(5)))
        assert r.status_code == 202, r.text
        size = wait_for_size(client, 5, timeout=60)
    return Seeded(hub, case, [e["entry_id"] for e in r.json()["entries"]], size)


def _assert_error(status: int, content_type: str, content: bytes) -> str:
    """A 4xx answer is ``{"error": {"code": <snake_case>, "message": <text>}}``."""
    assert 400 <= status < 500, (status, content[:500])
    assert content_type.startswith("application/json"), content_type
    error = json.loads(content)["error"]
    assert isinstance(error["message"], str) and error["message"]
    code = error["code"]
    assert isinstance(code, str) and CODE.fullmatch(code), code
    return code


def _no_traceback(hub: HubProcess) -> None:
    out = hub.output()
    assert "Traceback" not in out, out[-4000:]
    assert "unexpected" not in out, out[-4000:]  # hub/app.py logs each 500 this way


# -- 1. schemathesis over /openapi.json -----------------------------------------------------


def test_openapi_operations_never_fail(seeded: Seeded) -> None:
    hub = seeded.hub
    schema = schemathesis.openapi.from_url(hub.url + "/openapi.json")
    reached: set[str] = set()
    statuses: dict[str, set[int]] = {}
    with requests.Session() as session:
        for result in schema.get_all_operations():
            assert isinstance(result, Ok), result  # the schema itself must be valid
            operation = result.ok()
            reached.add(operation.path)
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                seen = statuses.setdefault(f"{operation.label} {mode.value}", set())

                @settings(
                    max_examples=12,
                    deadline=None,
                    derandomize=True,
                    database=None,
                    suppress_health_check=list(HealthCheck),
                )
                @given(case=operation.as_strategy(generation_mode=mode))
                def check(case: Any) -> None:
                    r = case.call(base_url=hub.url, session=session, timeout=60)
                    seen.add(r.status_code)  # noqa: B023
                    if r.status_code >= 400:
                        media = r.headers.get("content-type", [""])
                        _assert_error(r.status_code, media[0], r.content)

                try:
                    check()
                except Unsatisfiable:
                    # No request violates the schema of an operation whose only inputs are free
                    # text (a path, a binary body) or that has none.
                    assert mode is GenerationMode.NEGATIVE
    assert HOST_PATHS <= reached, HOST_PATHS - reached
    assert any(s for s in statuses.values())
    _no_traceback(hub)


# -- 2. signed envelopes with hostile JSON bodies -------------------------------------------


@dataclass(frozen=True)
class Raw:
    """A JSON token written verbatim (NaN, 1e999, 5000-digit integers, deep nesting)."""

    text: str


@dataclass(frozen=True)
class Dup:
    """An object whose first key is written twice (a duplicate key)."""

    pairs: tuple[tuple[str, Any], ...]


def dump(value: Any) -> str:
    """JSON text of ``value`` with Raw tokens and Dup objects; NaN and Infinity as tokens."""
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, Dup):
        pairs = [value.pairs[0], *value.pairs]
        return "{" + ",".join(f"{json.dumps(k)}:{dump(v)}" for k, v in pairs) + "}"
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{dump(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(dump(v) for v in value) + "]"
    return json.dumps(value, allow_nan=True)


def _as_python(value: Any) -> Any:
    """What Python's JSON parser makes of a value (Raw tokens parsed; None if unparsable)."""
    if isinstance(value, Raw):
        try:
            return json.loads(value.text)
        except (ValueError, RecursionError):
            return Raw  # unparsable: surely invalid
    return value


RAW_TOKENS = [
    "NaN",
    "Infinity",
    "-Infinity",
    "1e999",
    "-1e999",
    "1" * 5000,  # beyond Python's 4300-digit int conversion limit
    "-" + "9" * 400,
    "1.0",
    "1E0",
    "-0",
    "0.5e1",
    "[" * 50_000 + "]" * 50_000,  # deep nesting
    '{"a":' * 30_000 + "1" + "}" * 30_000,
]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([2**31, 2**63, 2**64, -(2**63) - 1, 10**30, -1, 0, 1, 50, 100, 101]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=80),
    st.text(alphabet="0123456789abcdefABCDEF", min_size=30, max_size=66),
    st.sampled_from([Raw(t) for t in RAW_TOKENS]),
)
hostile = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=8,
)


def _is_int(v: Any, low: int, high: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and low <= v <= high


def _is_hex(v: Any, digits: int) -> bool:
    return isinstance(v, str) and re.fullmatch(f"[0-9a-f]{{{digits}}}", v) is not None


# For each replaceable field: a predicate saying which values would be VALID there (those are
# filtered out, so every generated body is invalid).
Valid = Callable[[Any], bool]


def _valid_timestamp(v: Any) -> bool:
    return (
        isinstance(v, int | float)
        and not isinstance(v, bool)
        and math.isfinite(v)
        and 0 <= v <= 10_000_000
    )


def _valid_items(v: Any) -> bool:  # hostile lists here are never lists of valid items
    return isinstance(v, list) and bool(v) and all(isinstance(x, dict) for x in v)


FIELDS: dict[str, Valid] = {
    "v": lambda v: _is_int(v, 1, 1),
    "hashes": _valid_items,
    "item": lambda v: isinstance(v, dict) and "algorithm" in v,
    "algorithm": lambda v: v in ("pdq", "md5", "sha256", "vpdq"),
    "hash64": lambda v: _is_hex(v, 64),
    "hash32": lambda v: _is_hex(v, 32),
    "quality": lambda v: _is_int(v, 50, 100),
    "frames": _valid_items,
    "frame": lambda v: isinstance(v, dict),
    "frame.frame": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "frame.quality": lambda v: _is_int(v, 0, 100),
    "frame.timestamp": _valid_timestamp,
    "all": lambda v: v is True,
    "entries": _valid_items,  # (ids are strings: a list of dicts is never valid either)
    "entry_id": lambda v: _is_hex(v, 32),
}


def _slots(body: dict[str, Any]) -> list[tuple[list[Any], str]]:
    """Every (path, field kind) of a valid body where a hostile value can go."""
    out: list[tuple[list[Any], str]] = [(["v"], "v")]
    if "hashes" in body:
        out.append((["hashes"], "hashes"))
        for i, item in enumerate(body["hashes"]):
            out += [(["hashes", i], "item"), (["hashes", i, "algorithm"], "algorithm")]
            if item["algorithm"] == "vpdq":
                out.append((["hashes", i, "frames"], "frames"))
                for j, _ in enumerate(item["frames"]):
                    at = ["hashes", i, "frames", j]
                    out += [(at, "frame"), ([*at, "hash"], "hash64")]
                    out += [([*at, f], f"frame.{f}") for f in ("frame", "quality", "timestamp")]
            else:
                digits = "hash32" if item["algorithm"] == "md5" else "hash64"
                out.append((["hashes", i, "hash"], digits))
                if item["algorithm"] == "pdq":
                    out.append((["hashes", i, "quality"], "quality"))
    if "all" in body:
        out.append((["all"], "all"))
    if "entries" in body:
        out.append((["entries"], "entries"))
        out += [(["entries", i], "entry_id") for i in range(len(body["entries"]))]
    return out


def _replace(body: Any, path: list[Any], value: Any) -> Any:
    if not path:
        return value
    copy = dict(body) if isinstance(body, dict) else list(body)
    copy[path[0]] = _replace(body[path[0]], path[1:], value)
    return copy


def _objects(body: Any, path: list[Any] | None = None) -> list[list[Any]]:
    """Paths of every JSON object in the body (where a key can be added, dropped, doubled)."""
    path = path or []
    out: list[list[Any]] = []
    if isinstance(body, dict):
        out.append(path)
        for k, v in body.items():
            out += _objects(v, [*path, k])
    elif isinstance(body, list):
        for i, v in enumerate(body):
            out += _objects(v, [*path, i])
    return out


def _get(body: Any, path: list[Any]) -> Any:
    for p in path:
        body = body[p]
    return body


def _valid_bodies(kind: str, entry_ids: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    if kind == "submission":
        makers = [random_pdq, random_md5, random_sha256, lambda: random_vpdq(frames=2)]
        return st.lists(st.sampled_from(makers), min_size=1, max_size=3).map(
            lambda ms: {"v": 1, "hashes": [m() for m in ms]}
        )
    if kind == "withdrawal":
        return st.one_of(
            st.just({"v": 1, "all": True}),
            st.lists(st.sampled_from(entry_ids), min_size=1, max_size=3, unique=True).map(
                lambda ids: {"v": 1, "entries": ids}
            ),
        )
    return st.just({"v": 1})


@st.composite
def hostile_body(draw: st.DrawFn, kind: str, entry_ids: list[str]) -> bytes:
    """An invalid body for ``kind``: a valid one with one hostile change."""
    body = draw(_valid_bodies(kind, entry_ids))
    how = draw(
        st.sampled_from(
            ["value", "value", "value", "unknown", "drop", "dup", "over_cap", "top", "bytes"]
        )
    )
    if how == "value":
        path, field = draw(st.sampled_from(_slots(body)))
        value = draw(hostile.filter(lambda v: not FIELDS[field](_as_python(v))))
        body = _replace(body, path, value)
    elif how == "unknown":
        path = draw(st.sampled_from(_objects(body)))
        obj = _get(body, path)
        key = draw(st.text(max_size=20).filter(lambda k: k not in obj))
        body = _replace(body, path, {**obj, key: draw(hostile)})
    elif how == "drop":
        path = draw(st.sampled_from(_objects(body)))
        obj = _get(body, path)
        key = draw(st.sampled_from(sorted(obj)))
        body = _replace(body, path, {k: v for k, v in obj.items() if k != key})
    elif how == "dup":
        path = draw(st.sampled_from(_objects(body)))
        body = _replace(body, path, Dup(tuple(_get(body, path).items())))
    elif how == "over_cap":
        if kind == "submission" and draw(st.booleans()):
            extra = draw(st.integers(1, 3))
            body = {"v": 1, "hashes": mixed_hashes(CAPS["max_hashes_per_request"] + extra)}
        elif kind == "submission":
            frames = CAPS["max_vpdq_frames"] + draw(st.integers(1, 3))
            body = {"v": 1, "hashes": [random_vpdq(frames=frames)]}
        elif kind == "withdrawal":
            ids = [secrets.token_hex(16) for _ in range(CAPS["max_withdraw_entries"] + 1)]
            body = {"v": 1, "entries": ids}
        else:
            body = {"v": 1, "extra": [0] * 1000}
    elif how == "top":  # not an object at all
        body = draw(hostile.filter(lambda v: not isinstance(_as_python(v), dict)))
    text = dump(body)
    if how == "bytes":
        return draw(
            st.sampled_from(
                [
                    b"\xef\xbb\xbf" + text.encode(),  # byte order mark
                    text.encode() + b" x",  # trailing data
                    text.encode()[:-1],  # truncated
                    text.encode().replace(b'"v"', b'"\xff"', 1),  # not UTF-8
                    text.encode("utf-16"),
                    b"",
                ]
            )
        )
    return text.encode("utf-8", "surrogatepass")  # lone surrogates: not UTF-8 either


def _explicit(kind: str) -> list[tuple[str, bytes, str]]:
    """Hand-picked hostile bodies with the exact code each must get (always tried)."""
    pdq = random_pdq()
    base = {"submission": {"v": 1, "hashes": [pdq]}, "withdrawal": {"v": 1, "all": True}}
    rest = dump(base.get(kind, {"v": 1})).removeprefix('{"v":1').encode()
    nested = "[" * 100_000 + "]" * 100_000
    rows: list[tuple[str, bytes, str]] = [
        ("v-float", b'{"v":1.0' + rest, "unsupported_version"),
        ("v-exponent", b'{"v":1E0' + rest, "unsupported_version"),
        ("v-true", b'{"v":true' + rest, "unsupported_version"),
        ("v-2", b'{"v":2' + rest, "unsupported_version"),
        ("v-nan", b'{"v":NaN' + rest, "invalid_body"),
        ("v-5000-digits", b'{"v":' + b"1" * 5000 + rest, "invalid_body"),
        ("v-dup", b'{"v":1,"v":1' + rest, "invalid_body"),
        ("deep-nesting", nested.encode(), "invalid_body"),
        ("bom", b"\xef\xbb\xbf" + b'{"v":1' + rest, "invalid_body"),
        ("not-utf8", b'{"\xff":1,"v":1' + rest, "invalid_body"),
        ("trailing", b'{"v":1' + rest + b"{}", "invalid_body"),
        ("top-list", b"[]", "invalid_body"),
        ("empty", b"", "invalid_body"),
    ]
    if kind == "submission":
        frames = random_vpdq(frames=CAPS["max_vpdq_frames"] + 1)
        rows += [
            (
                "quality-float",
                dump({"v": 1, "hashes": [{**pdq, "quality": 90.0}]}).encode(),
                "invalid_hash",
            ),
            (
                "quality-huge",
                dump({"v": 1, "hashes": [{**pdq, "quality": 10**30}]}).encode(),
                "invalid_hash",
            ),
            (
                "quality-1e999",
                dump({"v": 1, "hashes": [{**pdq, "quality": Raw("1e999")}]}).encode(),
                "invalid_hash",
            ),
            (
                "timestamp-inf",
                dump(
                    {
                        "v": 1,
                        "hashes": [
                            {
                                "algorithm": "vpdq",
                                "frames": [
                                    {
                                        "frame": 0,
                                        "quality": 90,
                                        "hash": pdq["hash"],
                                        "timestamp": Raw("1e999"),
                                    }
                                ],
                            }
                        ],
                    }
                ).encode(),
                "invalid_hash",
            ),
            (
                "hash-upper",
                dump({"v": 1, "hashes": [{**pdq, "hash": pdq["hash"].upper()}]}).encode(),
                "invalid_hash",
            ),
            (
                "hash-fullwidth",
                dump({"v": 1, "hashes": [{**pdq, "hash": "\uff10" * 64}]}).encode(),
                "invalid_hash",
            ),
            (
                "unknown-field",
                dump({"v": 1, "hashes": [{**pdq, "file": "a.jpg"}]}).encode(),
                "invalid_body",
            ),
            (
                "dup-hash-key",
                dump({"v": 1, "hashes": [Dup(tuple(pdq.items()))]}).encode(),
                "invalid_body",
            ),
            (
                "hashes-over-cap",
                dump({"v": 1, "hashes": mixed_hashes(CAPS["max_hashes_per_request"] + 1)}).encode(),
                "too_many_hashes",
            ),
            ("frames-over-cap", dump({"v": 1, "hashes": [frames]}).encode(), "too_many_frames"),
            ("duplicate-hash", dump({"v": 1, "hashes": [pdq, pdq]}).encode(), "duplicate_hash"),
            (
                "low-quality",
                dump({"v": 1, "hashes": [{**pdq, "quality": 49}]}).encode(),
                "low_quality",
            ),
        ]
    elif kind == "withdrawal":
        ids = [secrets.token_hex(16) for _ in range(CAPS["max_withdraw_entries"] + 1)]
        rows += [
            ("entries-over-cap", dump({"v": 1, "entries": ids}).encode(), "too_many_entries"),
            ("all-1", b'{"v":1,"all":1}', "invalid_body"),
            (
                "all-and-entries",
                dump({"v": 1, "all": True, "entries": ids[:1]}).encode(),
                "invalid_body",
            ),
            ("unknown-entry", dump({"v": 1, "entries": ids[:1]}).encode(), "unknown_entry"),
            ("entry-upper", dump({"v": 1, "entries": [ids[0].upper()]}).encode(), "invalid_body"),
        ]
    return rows


ENDPOINTS = [
    ("/v1/submissions", "submission"),
    ("/v1/status", "status-query"),
    ("/v1/withdrawals", "withdrawal"),
]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_signed_hostile_bodies_get_4xx(seeded: Seeded) -> None:
    hub, case = seeded.hub, seeded.case
    codes: dict[str, set[str]] = {}
    with hub.client() as client:
        before = client.get("/v1/log").json()
        status_before = post(client, "/v1/status", case.status_query()).json()
        for path, purpose in ENDPOINTS:
            kind = purpose.split("-")[0]
            seen = codes.setdefault(path, set())
            for name, body, expected in _explicit(kind):
                r = post(client, path, case.seal(purpose, body))
                code = _assert_error(r.status_code, r.headers["content-type"], r.content)
                assert (code, r.status_code) == (expected, STATUS_OF[expected]), (kind, name)

            @settings(
                max_examples=120,
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            @given(body=hostile_body(kind, seeded.entry_ids))
            def check(body: bytes) -> None:
                r = post(client, path, case.seal(purpose, body))  # noqa: B023
                code = _assert_error(r.status_code, r.headers["content-type"], r.content)
                assert STATUS_OF.get(code) == r.status_code, (code, r.status_code, body[:300])
                seen.add(code)  # noqa: B023

            check()
        # Refused requests stored nothing: same log, same case.
        wait_for_size(client, before["size"])
        after = client.get("/v1/log").json()
        assert (after["size"], after["root_hash"]) == (before["size"], before["root_hash"])
        assert post(client, "/v1/status", case.status_query()).json() == status_before
    # The generated bodies reached the parser's main refusals, not just the first check.
    assert {"invalid_body", "invalid_hash", "unsupported_version"} <= codes["/v1/submissions"]
    assert {"invalid_body", "unsupported_version"} <= codes["/v1/status"]
    assert {"invalid_body", "unsupported_version"} <= codes["/v1/withdrawals"]
    _no_traceback(hub)
