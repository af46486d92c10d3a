"""API errors: every refusal is JSON ``{"error": {"code": ..., "message": ...}}``.

Codes are stable snake_case identifiers clients branch on (listed in specs/hub-api.md section
5); messages are for people and say what to do. Messages never carry hash values, keys or
request bodies.
"""

from __future__ import annotations

import json
import math

from starlette.responses import Response

__all__ = ["HubError", "error_response"]


class HubError(Exception):
    """An expected refusal with an HTTP status, a stable code and an actionable message."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after

    def response(self) -> Response:
        """The JSON response for this error."""
        headers: dict[str, str] = {}
        if self.retry_after is not None:
            headers["Retry-After"] = str(max(1, math.ceil(self.retry_after)))
        return error_response(self.status, self.code, self.message, headers)


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> Response:
    """``{"error": {"code": code, "message": message}}`` with ``status``."""
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    return Response(
        body,
        status_code=status,
        media_type="application/json",
        headers={"Cache-Control": "no-store", **(headers or {})},
    )
