"""URLs as they may be shown: without userinfo, query or fragment.

Why here: a witness, hub, webhook or peer URL may carry credentials (``https://user:pass@host/``)
or a token in its query; every component shows such URLs (start-up lines, errors, ``--json``,
status pages, logs) and must show them redacted. One pure helper, shared, instead of four
copies (the components never import each other). Scheme, host, port and path stay: they are
what an operator needs to tell which address failed.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["REDACTED", "redact_url", "redact_urls"]

REDACTED: Final = "[redacted]"

# scheme://[userinfo@]rest, where rest runs to whitespace or a quote/bracket that ends a URL
# in prose, repr() or JSON. Userinfo is everything up to the last '@' before the first
# whitespace: a password with an unencoded '/' or '?' is still caught (at worst the host is
# redacted with it).
_URL: Final = re.compile(r"""(?i)\b([a-z][a-z0-9+.\-]*://)([^\s'"<>`]*)""")
_END: Final = re.compile(r"[\\)\],;]+$")


def _redact_one(scheme: str, rest: str) -> str:
    tail = ""
    end = _END.search(rest)
    if end is not None:  # closing punctuation of the sentence, not of the URL
        rest, tail = rest[: end.start()], rest[end.start() :]
    at = rest.rfind("@")
    if at >= 0:
        rest = f"{REDACTED}@{rest[at + 1 :]}"
    for mark in ("?", "#"):
        cut = rest.find(mark)
        if cut >= 0:
            rest = f"{rest[:cut]}{mark}{REDACTED}"
    return f"{scheme}{rest}{tail}"


def redact_urls(text: str) -> str:
    """``text`` with every ``scheme://`` URL in it redacted (log lines, exception messages)."""
    if "://" not in text:
        return text
    return _URL.sub(lambda m: _redact_one(m.group(1), m.group(2)), text)


def redact_url(url: str) -> str:
    """One URL as it may be shown: ``https://[redacted]@host/path?[redacted]``; a value that is
    not a ``scheme://`` URL is redacted as a whole if it holds an ``@`` or ``?``."""
    if "://" not in url:
        return REDACTED if ("@" in url or "?" in url) else url
    return redact_urls(url)
