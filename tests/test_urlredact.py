"""crypto.urlredact: no userinfo, query or fragment survives, in a URL alone or in prose
(log lines, httpx exception messages, repr(), JSON); scheme, host, port and path stay."""

from __future__ import annotations

import pytest

from crypto.urlredact import REDACTED, redact_url, redact_urls

SECRET = "s3cr3t"


@pytest.mark.parametrize(
    "text",
    [
        f"https://user:{SECRET}@host/x",
        f"https://{SECRET}@host/x",
        f"https://user:{SECRET}@host:8443/w?token={SECRET}#frag",
        f"http://host/p?{SECRET}",
        f"http://host/p#{SECRET}",
        f"https://user:pa/{SECRET}@host/x",  # an unencoded '/' in the password
        f"Client error '404 Not Found' for url 'https://u:{SECRET}@h/x?t={SECRET}'",
        f"URL('https://user:[secure]@host/x?token={SECRET}')",
        f'{{"url": "https://u:{SECRET}@h/x"}}',
        f"witness w1 (https://u:{SECRET}@h/x?{SECRET}), then http://o:{SECRET}@p/",
        f"postgresql+psycopg://ncii:{SECRET}@db.internal/hub",
        f"HTTPS://U:{SECRET}@H/",
    ],
)
def test_no_secret_survives(text: str) -> None:
    assert SECRET not in redact_urls(text)
    assert REDACTED in redact_urls(text)


def test_what_stays() -> None:
    assert redact_url("https://u:p@w.example:8443/a/b?t=1") == (
        f"https://{REDACTED}@w.example:8443/a/b?{REDACTED}"
    )
    assert redact_url("https://w.example/a") == "https://w.example/a"
    assert redact_urls("see https://h/x?q=1.") == f"see https://h/x?{REDACTED}"
    assert redact_urls("no url here: a@b?c") == "no url here: a@b?c"
    assert redact_url("user:pw@host") == REDACTED  # not a URL, but it looks like credentials
    assert redact_url("plain") == "plain"
