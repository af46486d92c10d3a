"""Which witnesses the hub asks to cosign: ``NAME=URL=VKEY`` options and witnesses files.

Why its own module: settings must validate witnesses at start (a typo in a key would
otherwise show up only as a silent lack of cosignatures), without importing the HTTP client.
Format: specs/hub-api.md section 9.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from crypto.errors import KeyFormatError
from crypto.keys import ALG_COSIGNATURE_V1, VerifierKey, parse_verifier_key
from crypto.urlredact import redact_url

__all__ = [
    "MAX_WITNESSES",
    "WitnessConfig",
    "WitnessConfigError",
    "check_witnesses",
    "load_witness_file",
    "parse_witness",
]

MAX_WITNESSES = 32
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class WitnessConfigError(ValueError):
    """A witness option or file line that cannot be used; the message says which and why."""


@dataclass(frozen=True, slots=True)
class WitnessConfig:
    """One witness: a local name (status, logs), its add-checkpoint URL prefix, its key."""

    name: str
    url: str
    key: VerifierKey


def parse_witness(value: str) -> WitnessConfig:
    """``NAME=URL=VKEY``: the URL must be http(s) without ``=``; VKEY a cosignature/v1 key."""
    name, sep, rest = value.partition("=")
    url, sep2, vkey = rest.partition("=")
    if not sep or not sep2:
        # Not the value itself: its URL may carry credentials.
        shown = name[:40] if sep and _NAME_RE.fullmatch(name) else "option"
        raise WitnessConfigError(f"witness {shown}: expected NAME=URL=VKEY")
    if _NAME_RE.fullmatch(name) is None:
        raise WitnessConfigError(
            f"witness name {redact_url(name[:40])!r}: 1-64 letters, digits, '.', '_' or '-'"
        )
    if not url.startswith(("http://", "https://")) or any(c.isspace() for c in url):
        raise WitnessConfigError(f"witness {name}: URL must start with http:// or https://")
    if "?" in url or "#" in url:
        # /add-checkpoint is appended to the URL: after a query it would land in the query.
        raise WitnessConfigError(
            f"witness {name}: the URL must not hold a query or fragment (? or #); "
            "credentials go in its user part (https://user:password@host/)"
        )
    try:
        key = parse_verifier_key(vkey.strip())
    except KeyFormatError as exc:
        raise WitnessConfigError(f"witness {name}: bad verifier key ({exc})") from None
    if key.alg != ALG_COSIGNATURE_V1:
        raise WitnessConfigError(
            f"witness {name}: the key must be a cosignature/v1 (type 0x04) key, "
            "as 'ncii-audit witness init' prints"
        )
    return WitnessConfig(name, url.rstrip("/"), key)


def load_witness_file(path: Path) -> list[WitnessConfig]:
    """One ``NAME=URL=VKEY`` a line; blank lines and lines starting with ``#`` are skipped."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise WitnessConfigError(f"cannot read the witnesses file {path}: {exc}") from None
    out = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if line and not line.startswith("#"):
            try:
                out.append(parse_witness(line))
            except WitnessConfigError as exc:
                raise WitnessConfigError(f"{path}:{number}: {exc}") from None
    return out


def check_witnesses(witnesses: Iterable[WitnessConfig]) -> tuple[WitnessConfig, ...]:
    """Refuse duplicates: two names alike, or one public key twice (they would be one witness)."""
    items = tuple(witnesses)
    if len(items) > MAX_WITNESSES:
        raise WitnessConfigError(f"at most {MAX_WITNESSES} witnesses")
    names = [w.name for w in items]
    if len(set(names)) != len(names):
        raise WitnessConfigError("two witnesses share a name")
    publics = [w.key.public_key for w in items]
    if len(set(publics)) != len(publics):
        raise WitnessConfigError("two witnesses share a public key; they are one witness")
    return items
