"""The local web server behind ``ncii-client ui`` (specs/client-ui.md).

It serves the person's page (web/, the hub's page) under ``/<token>/`` and passes the page's
hub requests on to ``--hub`` (client/ui/forward.py). Why the stdlib server: one person, one
browser tab, on 127.0.0.1; a hand-written request path keeps every check readable in one place:

1. the ``Host`` header must name this server (``127.0.0.1:PORT`` or ``localhost:PORT``), which
   defeats DNS rebinding: a hostile page on another name never reaches a route;
2. the first path segment must equal the secret token (constant-time comparison), so other
   local users and other web pages cannot use it: every other request gets 403;
3. a POST must come from this origin (``Origin``, ``Sec-Fetch-Site``) with the envelope media
   type (never sent cross-site without a preflight) and a bounded ``Content-Length``.

No file the person picks ever reaches this process: the page fingerprints in the browser and
sends only signed fingerprints, which this server forwards unread.
"""

from __future__ import annotations

import hmac
import json
import secrets
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final

from client.ui.forward import (
    ENVELOPE_MEDIA_TYPE,
    MAX_BODY_BYTES,
    ForwardRefused,
    HubForwarder,
    forwarded_route,
)
from client.ui.webapp import WebApp
from crypto.page import content_type

__all__ = ["MAX_BODY_BYTES", "SOCKET_TIMEOUT", "UiServer", "new_token"]

#: Seconds an idle or slow connection is kept.
SOCKET_TIMEOUT: Final = 30.0
#: Longest request target accepted.
MAX_TARGET: Final = 4096
#: The policy of every answer that is not the page (JSON errors, forwarded hub answers):
#: nothing loads, nothing runs, even if a browser were made to render it.
_DATA_CSP: Final = "default-src 'none'; sandbox; frame-ancestors 'none'; base-uri 'none'"


class _Refused(Exception):
    def __init__(
        self, status: int, code: str, message: str, retry_after: int | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.retry_after = status, code, retry_after


class _Handler(BaseHTTPRequestHandler):
    server: UiServer
    protocol_version = "HTTP/1.1"
    server_version = "ncii-client-ui"
    sys_version = ""
    timeout = SOCKET_TIMEOUT

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: request lines hold the token."""

    # -- answers ---------------------------------------------------------------------------

    def _send(
        self,
        status: int,
        body: bytes,
        kind: str,
        csp: str = _DATA_CSP,
        extra: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Security-Policy", csp)
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("X-Frame-Options", "DENY")
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Resource-Policy", "same-origin")
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _error(self, refused: _Refused | ForwardRefused) -> None:
        self.close_connection = True
        body = json.dumps({"error": {"code": refused.code, "message": str(refused)}}).encode()
        extra = {} if refused.retry_after is None else {"Retry-After": str(refused.retry_after)}
        self._send(refused.status, body, "application/json", extra=extra)

    # -- checks ----------------------------------------------------------------------------

    def _check_host(self) -> None:
        if self.headers.get("Host", "") not in self.server.allowed_hosts:
            raise _Refused(403, "wrong_host", "Open the address ncii-client printed.")

    def _route(self) -> tuple[str, str, bool]:
        """(path after ``/<token>/``, query, whether the target was ``/<token>`` alone); 403
        without the right token."""
        target = self.path
        if len(target) > MAX_TARGET or not target.isascii():
            raise _Refused(414, "bad_target", "This address is too long.")
        path, _, query = target.partition("?")
        parts = path.split("/", 2)  # "", token, rest
        given = parts[1] if len(parts) > 1 and parts[0] == "" else ""
        if not hmac.compare_digest(given.encode(), self.server.token.encode()):
            raise _Refused(
                403,
                "forbidden",
                "This address is missing its secret part. "
                "Open the full address ncii-client printed.",
            )
        if len(parts) == 2:
            return "", query, True
        return parts[2], query, False

    def _check_same_origin(self) -> None:
        origin = self.headers.get("Origin")
        site = self.headers.get("Sec-Fetch-Site", "same-origin")
        if (origin is not None and origin not in self.server.allowed_origins) or site not in (
            "same-origin",
            "none",
        ):
            raise _Refused(403, "cross_origin", "Requests from other pages are refused.")

    def _body(self) -> bytes:
        raw = self.headers.get("Content-Length")
        if raw is None or self.headers.get("Transfer-Encoding"):
            raise _Refused(411, "length_required", "Send a Content-Length.")
        if not raw.isdigit() or len(raw) > 15:
            raise _Refused(400, "bad_length", "Content-Length is not a number.")
        length = int(raw)
        if length > MAX_BODY_BYTES:
            raise _Refused(413, "too_large", "This request is larger than the service accepts.")
        body = self.rfile.read(length)
        if len(body) != length:
            raise _Refused(400, "incomplete", "The request was cut off.")
        return body

    # -- methods ---------------------------------------------------------------------------

    def do_GET(self) -> None:
        try:
            self._check_host()
            route, query, bare = self._route()
            if bare:
                self.send_response(HTTPStatus.SEE_OTHER)
                self.send_header("Location", f"/{self.server.token}/")
                self.send_header("Content-Length", "0")
                self.send_header("Referrer-Policy", "no-referrer")
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                return
            app = self.server.app
            if route == "":
                self._send(200, app.index, "text/html; charset=utf-8", app.csp)
                return
            prefix = f"s/{app.tree}/"
            if route.startswith(prefix):
                name = route[len(prefix) :]
                data, kind = app.files.get(name), content_type(name)
                if data is None or kind is None or query:
                    raise _Refused(404, "not_found", "No such file; reload the page.")
                self._send(200, data, kind, app.csp)
                return
            self._forward(route, query)
        except (_Refused, ForwardRefused) as refused:
            self._error(refused)

    do_HEAD = do_GET

    def do_POST(self) -> None:
        try:
            self._check_host()
            route, query, _ = self._route()
            self._check_same_origin()
            if not forwarded_route("POST", route):
                raise _Refused(404, "not_found", "No such action.")
            self._forward(route, query)
        except (_Refused, ForwardRefused) as refused:
            self._error(refused)

    def _not_allowed(self) -> None:
        try:
            self._check_host()
            self._route()
            raise _Refused(405, "method_not_allowed", "This method is not used here.")
        except _Refused as refused:
            self._error(refused)

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_TRACE = do_CONNECT = _not_allowed

    def _forward(self, route: str, query: str) -> None:
        method = self.command
        if not forwarded_route(method, route):
            raise _Refused(404, "not_found", "No such page.")
        forwarder = self.server.forwarder
        if forwarder is None:
            raise _Refused(
                502,
                "no_hub",
                "No service address was given: start again with ncii-client ui --hub URL.",
            )
        self._check_same_origin()
        kind = ""
        body: bytes | None = None
        if method == "POST":
            kind = self.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
            if kind != ENVELOPE_MEDIA_TYPE:
                raise _Refused(415, "unsupported_media_type", "Send a signed envelope.")
            body = self._body()
        answer = forwarder.forward(
            method,
            route,
            query,
            content_type=kind or None,
            puzzle=self.headers.get("NCII-Case-Puzzle"),
            body=body,
        )
        extra = {} if answer.retry_after is None else {"Retry-After": answer.retry_after}
        self._send(answer.status, answer.body, answer.content_type, extra=extra)


class UiServer(ThreadingHTTPServer):
    """The page's server on 127.0.0.1; ``url`` holds the token."""

    daemon_threads = True

    def __init__(
        self,
        app: WebApp,
        token: str,
        forwarder: HubForwarder | None,
        port: int = 0,
    ) -> None:
        self.app, self.token, self.forwarder = app, token, forwarder
        super().__init__(("127.0.0.1", port), _Handler)
        bound = self.server_address[1]
        self.allowed_hosts = frozenset({f"127.0.0.1:{bound}", f"localhost:{bound}"})
        self.allowed_origins = frozenset(f"http://{h}" for h in self.allowed_hosts)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/{self.token}/"

    def server_close(self) -> None:
        super().server_close()
        if self.forwarder is not None:
            self.forwarder.close()


def new_token() -> str:
    """256 random bits, URL-safe: the first path segment of every address of one run."""
    return secrets.token_urlsafe(32)
