"""A log, page or webhook URL may carry credentials (userinfo, a query token; a chat
webhook's path is its secret): the auditor uses them and shows them nowhere. Attack: fetches
that fail every way (refused, HTTP error, too large, an httpx error whose text embeds the
URL), an undeliverable webhook, and the command line's error and JSON output."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from auditor.errors import FetchError
from auditor.monitor import post_webhook
from auditor.source import fetch_url
from crypto.keys import generate_signer_key

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "pw-s3cret-0e5f"
TOKEN = "tok-s3cret-a7d3"
HOOK = "hooksecret-T0B0X9"


def clean(text: str) -> None:
    for secret in (PASSWORD, TOKEN, HOOK):
        assert secret not in text


def client(handler: object) -> httpx.Client:
    return httpx.Client(transport=httpx.MockTransport(handler))  # type: ignore[arg-type]


@pytest.mark.parametrize("status", [500, 200])
def test_fetch_errors_show_no_credentials(status: int) -> None:
    url = f"https://ops:{PASSWORD}@log.example/tile/0/000?{TOKEN}"
    with pytest.raises(FetchError) as err:
        fetch_url(client(lambda r: httpx.Response(status, content=b"x" * 100)), url, 10)
    clean(str(err.value))
    assert "log.example" in str(err.value)


def test_httpx_error_text_with_url_is_redacted() -> None:
    url = f"https://ops:{PASSWORD}@log.example/checkpoint?{TOKEN}"

    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.DecodingError(f"cannot decode the answer from {request.url}")

    with pytest.raises(FetchError) as err:
        fetch_url(client(handler), url, 100)
    clean(str(err.value))


def test_webhook_failure_shows_no_secret() -> None:
    from auditor.monitor import Alert

    alert = Alert("fork", "log.example/ncii", "src", "two roots", 0, None, None)
    url = f"https://ops:{PASSWORD}@alerts.example/services/{HOOK}?{TOKEN}"
    message = post_webhook(url, alert, client(lambda r: httpx.Response(404)))
    assert message is not None and "alerts.example" in message
    clean(message)
    refused = post_webhook(f"http://ops:{PASSWORD}@127.0.0.1:1/services/{HOOK}?{TOKEN}", alert)
    assert refused is not None
    clean(refused)


def test_cli_errors_show_no_credentials(tmp_path: Path) -> None:
    key = generate_signer_key("log.example/ncii").verifier.encode()
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    for extra in ((), ("--json",)):
        done = subprocess.run(
            [
                sys.executable, "-m", "auditor.cli", "monitor",
                "--log", f"http://ops:{PASSWORD}@127.0.0.1:1/log?{TOKEN}",
                "--log-key", key, "--once", "--state", str(tmp_path / "state"), *extra,
            ],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == 3, done.stderr
        assert "127.0.0.1" in done.stderr
        clean(done.stdout + done.stderr)


def test_httpx_request_lines_are_redacted_for_an_embedding_app(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import logging

    from auditor.source import HttpSource

    source = HttpSource(
        f"https://ops:{PASSWORD}@log.example/p?{TOKEN}",
        client(lambda r: httpx.Response(404)),
    )
    with caplog.at_level(logging.DEBUG):
        with pytest.raises(FetchError):
            source.get("checkpoint")
    assert "HTTP Request" in caplog.text
    clean(caplog.text)
    assert "log.example" in source.name
    clean(source.name)
