"""A lying hub cannot exhaust a partner's memory (issue 12 finding 5): a real HTTP server in
front of a real hub answers some requests with a 1 GiB body (generated lazily, streamed with
or without a Content-Length) or with deeply nested JSON. The SDK reads each answer only up to
its endpoint's cap, stops there with HubAnswerTooLargeError, and its peak memory stays small.
"""

from __future__ import annotations

import secrets
import threading
import tracemalloc
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from feedkit import FEED_FAST, FeedKit
from hubkit import Case, HubProcess, mixed_hashes, post, wait_for_size
from serverkit import POLL

from partner_sdk import Partner
from partner_sdk.errors import HubAnswerTooLargeError, HubProtocolError, PartnerError

GiB = 1 << 30
CHUNK = b"\0" * (1 << 16)

Answer = Callable[[BaseHTTPRequestHandler], None]


def huge(chunked: bool, total: int = GiB) -> Answer:
    """Stream ``total`` bytes without ever holding more than one 64 KiB chunk."""

    def answer(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/octet-stream")
        if chunked:
            handler.send_header("Transfer-Encoding", "chunked")
        else:
            handler.send_header("Content-Length", str(total))
        handler.end_headers()
        sent = 0
        try:
            while sent < total:
                if chunked:
                    handler.wfile.write(b"%x\r\n" % len(CHUNK) + CHUNK + b"\r\n")
                else:
                    handler.wfile.write(CHUNK)
                sent += len(CHUNK)
            if chunked:
                handler.wfile.write(b"0\r\n\r\n")
        except OSError:
            pass  # the client hung up at its cap: what the test wants
        handler.server.sent.append(sent)  # type: ignore[attr-defined]

    return answer


def body(data: bytes, content_type: str = "application/json") -> Answer:
    def answer(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    return answer


class LyingHub:
    """A real HTTP server that forwards to the hub, except for the paths it lies about."""

    def __init__(self, upstream: str) -> None:
        self.upstream = httpx.Client(base_url=upstream, timeout=30)
        self.lies: dict[str, Answer] = {}  # path prefix -> answer
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _handle(self) -> None:
                for prefix, answer in outer.lies.items():
                    if self.path.startswith(prefix):
                        answer(self)
                        self.close_connection = True
                        return
                length = int(self.headers.get("Content-Length") or 0)
                content = self.rfile.read(length) if length else None
                keep = {"ncii-signature", "content-type"}
                headers = {k: v for k, v in self.headers.items() if k.lower() in keep}
                r = outer.upstream.request(
                    self.command, self.path, content=content, headers=headers
                )
                self.send_response(r.status_code)
                self.send_header("Content-Type", r.headers.get("content-type", "text/plain"))
                self.send_header("Content-Length", str(len(r.content)))
                self.end_headers()
                self.wfile.write(r.content)

            do_GET = _handle
            do_POST = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.sent = []  # type: ignore[attr-defined]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs=POLL, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def sent(self) -> list[int]:
        return self.server.sent  # type: ignore[attr-defined, no-any-return]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.upstream.close()


@pytest.fixture
def lying(kit: FeedKit) -> Iterator[LyingHub]:
    hub = LyingHub(kit.hub.url)
    yield hub
    hub.close()


@pytest.fixture(scope="module")
def sealed_kit(
    module_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FeedKit]:
    """One hub per module and database holding 8 sealed entries, for the tests whose partner
    (a new one each) only has to refuse a lie: nothing they do changes the hub."""
    root = tmp_path_factory.mktemp("bounds")
    hub = HubProcess(root / "data", module_database_url, FEED_FAST).start()
    kit = FeedKit(hub, root)
    try:
        submitted(kit)
        yield kit
    finally:
        kit.close()
        hub.kill()


@pytest.fixture
def sealed_lying(sealed_kit: FeedKit) -> Iterator[LyingHub]:
    hub = LyingHub(sealed_kit.hub.url)
    yield hub
    hub.close()


def peak_of(run: Callable[[], object]) -> tuple[int, BaseException | None]:
    """Peak Python memory (bytes) while ``run`` runs, and what it raised."""
    tracemalloc.start()
    try:
        run()
    except PartnerError as exc:
        raised: BaseException | None = exc
    else:
        raised = None
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return peak, raised


def sync_via(kit: FeedKit, lying: LyingHub, directory: Path, **kw: object) -> Callable[[], object]:
    def run() -> object:
        with Partner(directory, lying.url, kit.log_key, **kw) as p:  # type: ignore[arg-type]
            return p.sync()

    return run


def submitted(kit: FeedKit, n: int = 8) -> None:
    with kit.hub.client() as client:
        assert (
            post(client, "/v1/submissions", Case().submission(mixed_hashes(n))).status_code == 202
        )
        wait_for_size(client, n)
    kit.wait_sealed(n)


@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "content-length"])
def test_a_1gib_sealed_batch_is_cut_off_at_its_cap(
    kit: FeedKit, lying: LyingHub, chunked: bool
) -> None:
    a = kit.new_partner("alpha")
    submitted(kit)
    lying.lies["/feed/"] = huge(chunked)
    peak, raised = peak_of(sync_via(kit, lying, a))
    assert isinstance(raised, HubAnswerTooLargeError), raised
    assert peak < 32 << 20, f"peak {peak >> 20} MiB"
    assert lying.sent and max(lying.sent) < 64 << 20  # the client stopped reading early

    # A batch listed without a size is read up to the batch limit, never further.
    lying.sent.clear()
    lying.lies["/v1/feed/batches?"] = listed_without_size(lying)
    peak, raised = peak_of(sync_via(kit, lying, a, max_batch_bytes=4 << 20))
    assert isinstance(raised, HubAnswerTooLargeError), raised
    assert peak < 32 << 20, f"peak {peak >> 20} MiB"
    with kit.partner(a) as p:
        assert p.store.state().cursor == 0
        assert p.sync().cursor == 8  # the honest hub still works


def listed_without_size(lying: LyingHub) -> Answer:
    """The real batch list (signed request forwarded as is) with every size set to 0."""

    def answer(handler: BaseHTTPRequestHandler) -> None:
        keep = {"ncii-signature"}
        headers = {k: v for k, v in handler.headers.items() if k.lower() in keep}
        r = lying.upstream.get(handler.path, headers=headers)
        value = r.json()
        for item in value["batches"]:
            item["size"] = 0
        body(httpx.Response(200, json=value).content)(handler)

    return answer


@pytest.mark.parametrize("path", ["/checkpoint", "/v1/feed/batches?", "/tile/"])
def test_1gib_checkpoint_list_or_tile_is_cut_off(
    sealed_kit: FeedKit, sealed_lying: LyingHub, path: str
) -> None:
    kit, lying = sealed_kit, sealed_lying
    a = kit.new_partner(f"alpha-{secrets.token_hex(4)}")  # a new partner of the shared hub
    kit.wait_sealed(8)  # and wrapped for the new partner
    lying.lies[path] = huge(chunked=True)
    peak, raised = peak_of(sync_via(kit, lying, a))
    assert isinstance(raised, HubAnswerTooLargeError), raised
    assert peak < 32 << 20, f"peak {peak >> 20} MiB"


def test_deeply_nested_json_is_refused_before_parsing(
    sealed_kit: FeedKit, sealed_lying: LyingHub
) -> None:
    kit, lying = sealed_kit, sealed_lying
    a = kit.new_partner(f"alpha-{secrets.token_hex(4)}")  # a new partner of the shared hub
    kit.wait_sealed(8)  # and wrapped for the new partner
    deep = b'{"v":1,"origin":"x","next":null,"batches":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    lying.lies["/v1/feed/batches?"] = body(deep)
    with pytest.raises(HubProtocolError, match="deeper"), Partner(a, lying.url, kit.log_key) as p:
        p.sync()
