"""``--log-format text|json``: how the witness daemon's log lines look.

Why JSON: a service manager's journal or a log shipper can index one JSON object per line
(``time``, ``level``, ``logger``, ``message`` and the record's structured fields) without
parsing prose. The rule for what may be logged does not change with the format: never a hash
value, secret, case id or address; the formatter adds only what the code passed explicitly.
(partner_sdk has its own copy: the packages never import each other.)
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any, Final

from crypto.urlredact import redact_urls

__all__ = ["LOG_FORMATS", "JsonFormatter", "RedactUrls", "configure_logging", "redact_handlers"]

LOG_FORMATS: Final = ("text", "json")

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD: Final = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()
    | {"message", "asctime", "color_message", "taskName"}
)


class RedactUrls(logging.Filter):
    """Strips userinfo, query and fragment from every URL in a record before any handler
    writes it: its message, exception text and ``extra=`` fields. Why a filter: libraries
    log URLs themselves (httpx's ``HTTP Request: POST https://user:pass@...`` at INFO; an
    exception's message may embed the URL), so redacting at each call site is not enough."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact_urls(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_urls(record.exc_text)
        if record.stack_info:
            record.stack_info = redact_urls(record.stack_info)
        for key, value in list(vars(record).items()):
            if key not in _STANDARD and isinstance(value, str):
                setattr(record, key, redact_urls(value))
        return True


def redact_handlers(logger: logging.Logger | None = None) -> None:
    """Put one :class:`RedactUrls` on each handler of ``logger`` (default: the root)."""
    for handler in (logger or logging.getLogger()).handlers:
        if not any(isinstance(f, RedactUrls) for f in handler.filters):
            handler.addFilter(RedactUrls())


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC, RFC 3339), level, logger, message, fields."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value if isinstance(value, (int, float, bool, str)) else str(value)
        if record.exc_info:
            # exc_text: the (redacted, see RedactUrls) text a filter may have prepared
            out["exception"] = record.exc_text or self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, separators=(",", ":"))


def configure_logging(log_format: str, level: int = logging.INFO) -> None:
    """Send every logger's records (uvicorn's included) to stderr in ``log_format``."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format is one of {', '.join(LOG_FORMATS)}")
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    handler.addFilter(RedactUrls())
    root.addHandler(handler)
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
