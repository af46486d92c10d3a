"""The local web server behind ``ncii-client ui`` (specs/client-ui.md).

Why the stdlib server: one person, one browser tab, on 127.0.0.1; it needs no framework, and a
hand-written request path makes the security checks easy to read in one place:

1. the ``Host`` header must name this server (``127.0.0.1:PORT`` or ``localhost:PORT``), which
   defeats DNS rebinding: a hostile page on another name never reaches the routes;
2. the first path segment must equal the secret token (constant-time comparison), so other
   local users and other web pages cannot drive the server: every other request gets 403;
3. state-changing requests must be same-origin POSTs with a JSON or octet-stream body.

Uploaded file bytes are read into one in-memory buffer, fingerprinted, then overwritten and
dropped; they are never written to disk and never leave this process.
"""

from __future__ import annotations

import hmac
import json
import secrets
import threading
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any

from client.ui.fingerprint import FileReport, fingerprint
from client.ui.ops import CaseOps, OpsError
from crypto import boundedjson

__all__ = ["MAX_FILES", "MAX_UPLOAD_BYTES", "UiServer", "UiState"]

MAX_UPLOAD_BYTES = 1 << 30  # one file held in memory at a time
MAX_JSON_BYTES = 64 * 1024
MAX_FILES = 10_000  # the hub's default per-case cap on additions
_STATIC = {
    "": ("index.html", "text/html; charset=utf-8"),
    "app.js": ("app.js", "text/javascript; charset=utf-8"),
    "style.css": ("style.css", "text/css; charset=utf-8"),
}
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; "
    "media-src blob:; connect-src 'self'; form-action 'none'; frame-ancestors 'none'; "
    "base-uri 'none'"
)


@dataclass
class UiState:
    """What the page has done so far in this run: fingerprints by opaque id, the open case."""

    ops: CaseOps
    hub_url: str
    files: dict[str, FileReport] = field(default_factory=dict)
    case_id: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Refused(Exception):
    def __init__(self, status: HTTPStatus, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code = status, code


def _static(name: str) -> bytes:
    return (resources.files("client.ui") / "static" / name).read_bytes()


class _Handler(BaseHTTPRequestHandler):
    server: UiServer
    protocol_version = "HTTP/1.1"
    server_version = "ncii-client-ui"
    sys_version = ""

    # -- plumbing --------------------------------------------------------------------------

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: request lines would hold the token."""

    def _send(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Security-Policy", _CSP)
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("X-Frame-Options", "DENY")
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Resource-Policy", "same-origin")
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: HTTPStatus, value: object) -> None:
        self._send(status, json.dumps(value).encode(), "application/json")

    def _error(self, refused: _Refused) -> None:
        self.close_connection = True
        self._json(refused.status, {"error": {"code": refused.code, "message": str(refused)}})

    def _check_host(self) -> None:
        host = self.headers.get("Host", "")
        if host not in self.server.allowed_hosts:
            raise _Refused(
                HTTPStatus.FORBIDDEN, "wrong_host", "Open the address ncii-client printed."
            )

    def _route(self) -> str:
        """The path after ``/<token>``, or 403 without the right token."""
        path = self.path.split("?", 1)[0].split("#", 1)[0]
        parts = path.split("/", 2)  # "", token, rest
        given = parts[1] if len(parts) > 1 else ""
        if not hmac.compare_digest(given.encode("latin-1"), self.server.token.encode("ascii")):
            raise _Refused(
                HTTPStatus.FORBIDDEN,
                "forbidden",
                "This address is missing its secret part. "
                "Open the full address ncii-client printed.",
            )
        if len(parts) == 2:
            return "/"  # /<token> alone
        return "/" + parts[2]

    def _check_post(self, content_type: str) -> None:
        origin = self.headers.get("Origin")
        if origin is not None and origin not in self.server.allowed_origins:
            raise _Refused(
                HTTPStatus.FORBIDDEN, "cross_origin", "Requests from other pages are refused."
            )
        if self.headers.get("Sec-Fetch-Site", "same-origin") not in {"same-origin", "none"}:
            raise _Refused(
                HTTPStatus.FORBIDDEN, "cross_origin", "Requests from other pages are refused."
            )
        given = self.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
        if given != content_type:
            raise _Refused(
                HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", f"Send {content_type}."
            )

    def _length(self, limit: int) -> int:
        raw = self.headers.get("Content-Length")
        if raw is None or self.headers.get("Transfer-Encoding"):
            raise _Refused(HTTPStatus.LENGTH_REQUIRED, "length_required", "Send a Content-Length.")
        if not raw.isdigit() or len(raw) > 15:
            raise _Refused(HTTPStatus.BAD_REQUEST, "bad_length", "Content-Length is not a number.")
        length = int(raw)
        if length > limit:
            raise _Refused(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                "too_large",
                f"This file is larger than {limit // (1 << 20)} MB "
                "and cannot be fingerprinted here.",
            )
        return length

    def _read_into(self, buffer: bytearray) -> None:
        view = memoryview(buffer)
        done = 0
        while done < len(buffer):
            count = self.rfile.readinto(view[done:])
            if not count:
                raise _Refused(HTTPStatus.BAD_REQUEST, "incomplete", "The upload was cut off.")
            done += count
        view.release()

    def _read_json(self) -> dict[str, Any]:
        self._check_post("application/json")
        buffer = bytearray(self._length(MAX_JSON_BYTES))
        self._read_into(buffer)
        try:
            value = boundedjson.loads(buffer, max_bytes=MAX_JSON_BYTES) if buffer else {}
        except boundedjson.JsonBoundsError:  # not UTF-8, not JSON, or too deep for any request
            raise _Refused(HTTPStatus.BAD_REQUEST, "bad_json", "The request is not JSON.") from None
        if not isinstance(value, dict):
            raise _Refused(HTTPStatus.BAD_REQUEST, "bad_json", "The request is not a JSON object.")
        return value

    # -- methods ---------------------------------------------------------------------------

    def do_GET(self) -> None:
        try:
            self._check_host()
            route = self._route()
            if route == "/" and not self.path.split("?", 1)[0].endswith("/"):
                self.send_response(HTTPStatus.SEE_OTHER)
                self.send_header("Location", f"/{self.server.token}/")
                self.send_header("Content-Length", "0")
                self.send_header("Referrer-Policy", "no-referrer")
                self.end_headers()
                return
            if route == "/api/state":
                self._json(HTTPStatus.OK, self.server.state_json())
                return
            entry = _STATIC.get(route.lstrip("/"))
            if entry is None:
                raise _Refused(HTTPStatus.NOT_FOUND, "not_found", "No such page.")
            self._send(HTTPStatus.OK, _static(entry[0]), entry[1])
        except _Refused as refused:
            self._error(refused)

    do_HEAD = do_GET

    def do_POST(self) -> None:
        try:
            self._check_host()
            route = self._route()
            if route == "/api/files":
                self._check_post("application/octet-stream")
                self._json(HTTPStatus.OK, self._upload())
                return
            handlers = {
                "/api/forget": self.server.forget,
                "/api/submit": self.server.submit,
                "/api/recover": self.server.recover,
                "/api/status": self.server.status,
                "/api/withdraw": self.server.withdraw,
            }
            handler = handlers.get(route)
            if handler is None:
                raise _Refused(HTTPStatus.NOT_FOUND, "not_found", "No such action.")
            body = self._read_json()
            try:
                self._json(HTTPStatus.OK, handler(body))
            except OpsError as exc:
                raise _Refused(HTTPStatus.BAD_GATEWAY, exc.code, str(exc)) from None
        except _Refused as refused:
            self._error(refused)

    def _upload(self) -> dict[str, Any]:
        with self.server.state.lock:
            if len(self.server.state.files) >= MAX_FILES:
                raise _Refused(
                    HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                    "too_many_files",
                    f"At most {MAX_FILES} files can be sent at once. Start again with fewer.",
                )
        buffer = bytearray(self._length(MAX_UPLOAD_BYTES))
        try:
            self._read_into(buffer)
            report = fingerprint(buffer)
        finally:
            buffer[:] = bytes(len(buffer))  # best effort: overwrite our copy of the file
            del buffer
        return self.server.add_file(report)


class UiServer(ThreadingHTTPServer):
    """The page's server on 127.0.0.1; ``url`` holds the token, ``state`` the run's progress."""

    daemon_threads = True

    def __init__(self, state: UiState, port: int = 0, token: str | None = None) -> None:
        self.token = token or secrets.token_urlsafe(32)
        self.state = state
        super().__init__(("127.0.0.1", port), _Handler)
        bound = self.server_address[1]
        self.allowed_hosts = frozenset({f"127.0.0.1:{bound}", f"localhost:{bound}"})
        self.allowed_origins = frozenset(f"http://{h}" for h in self.allowed_hosts)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/{self.token}/"

    # -- actions (JSON in, JSON out) -------------------------------------------------------

    def state_json(self) -> dict[str, Any]:
        with self.state.lock:
            return {"hub": self.state.hub_url, "case_id": self.state.case_id}

    def add_file(self, report: FileReport) -> dict[str, Any]:
        file_id = secrets.token_hex(8)
        with self.state.lock:
            self.state.files[file_id] = report
        return {
            "id": file_id,
            "kind": report.kind,
            "fingerprints": len(report.hashes),
            "frames": sum(len(h.get("frames", ())) for h in report.hashes),
            "problem": report.problem,
            "reason": report.reason,
        }

    def forget(self, body: dict[str, Any]) -> dict[str, Any]:
        with self.state.lock:
            self.state.files.clear()
        return {"ok": True}

    def _chosen(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        ids = body.get("files")
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise _Refused(HTTPStatus.BAD_REQUEST, "bad_request", "Choose files first.")
        hashes: list[dict[str, Any]] = []
        seen: set[str] = set()
        with self.state.lock:
            for file_id in ids:
                report = self.state.files.get(file_id)
                if report is None:
                    raise _Refused(HTTPStatus.CONFLICT, "stale", "Choose the files again.")
                for item in report.hashes:
                    key = json.dumps(item, sort_keys=True)
                    if key not in seen:  # the same file chosen twice is sent once
                        seen.add(key)
                        hashes.append(item)
        if not hashes:
            raise _Refused(HTTPStatus.BAD_REQUEST, "nothing_to_send", "No file can be sent.")
        return hashes

    def submit(self, body: dict[str, Any]) -> dict[str, Any]:
        hashes = self._chosen(body)
        created = None
        with self.state.lock:
            case_id = self.state.case_id
        if case_id is None or body.get("new_case") is True:
            created = self.state.ops.create_case()
            case_id = created.case_id
            with self.state.lock:
                self.state.case_id = case_id
        try:
            sent = self.state.ops.submit(case_id, hashes)
        except OpsError as exc:
            # The case exists (and its code must still be shown) even if sending failed.
            return {
                "ok": False,
                "case_id": case_id,
                "recovery_code": created.recovery_code if created else None,
                "error": {"code": exc.code, "message": str(exc)},
            }
        with self.state.lock:
            self.state.files.clear()
        return {
            "ok": True,
            "case_id": case_id,
            "recovery_code": created.recovery_code if created else None,
            "sent": sent,
        }

    def recover(self, body: dict[str, Any]) -> dict[str, Any]:
        code = body.get("code")
        if not isinstance(code, str) or len(code) > 200:
            raise _Refused(HTTPStatus.BAD_REQUEST, "bad_code", "Type the recovery code.")
        case_id = self.state.ops.recover_case(code)
        with self.state.lock:
            self.state.case_id = case_id
        return {"case_id": case_id}

    def _case(self) -> str:
        with self.state.lock:
            case_id = self.state.case_id
        if case_id is None:
            raise _Refused(
                HTTPStatus.CONFLICT, "no_case", "Send fingerprints or enter a recovery code first."
            )
        return case_id

    def status(self, body: dict[str, Any]) -> dict[str, Any]:
        return self.state.ops.status(self._case()).as_json()

    def withdraw(self, body: dict[str, Any]) -> dict[str, Any]:
        if body.get("all") is not True:
            raise _Refused(HTTPStatus.BAD_REQUEST, "bad_request", "Confirm the withdrawal.")
        return self.state.ops.withdraw_all(self._case()).as_json()
