"""The user's data folder: one secret file per case, receipts per case, pinned hub keys.

Layout and file formats: specs/client-store.md. The folder is 0700 and every file 0600; every
write is atomic (client.fsutil). The case file holds the case secret and nothing else; receipts
and pins hold nothing secret (but receipts do say which log entries are this person's, so they
stay private too).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from client.errors import AmbiguousCaseError, NoCaseError, StoreError, UnknownCaseError, UsageError
from client.fsutil import MAX_STORE_FILE, atomic_write, ensure_private_dir, read_limited
from client.receipts import HubPin, Receipt, decode_receipt, encode_receipt
from crypto import boundedjson
from crypto.case import CaseSecret, parse_case_id
from crypto.errors import KeyFormatError, MalformedError

__all__ = ["CaseSummary", "ClientHome", "NewCase", "default_home", "normalise_hub_url"]

_CASE_FILE = re.compile(r"([0-9A-Z]{16})\.case")
MAX_CASE_FILE = 4096  # {"v":1,"case_id":...,"secret":...} is ~90 bytes
_RECEIPT_FILE = re.compile(r"([0-9a-f]{32})\.json")


@dataclass(frozen=True, slots=True)
class NewCase:
    """A case just created: show ``recovery_code`` once, then forget it."""

    case_id: str
    recovery_code: str

    def __repr__(self) -> str:
        return f"NewCase(case_id={self.case_id!r}, recovery_code=<redacted>)"


@dataclass(frozen=True, slots=True)
class CaseSummary:
    """What ``case list`` shows: no secret, no hash values."""

    case_id: str
    entries: int
    included: int
    hubs: tuple[str, ...]


def default_home(env: Mapping[str, str] | None = None) -> Path:
    """$NCII_CLIENT_HOME, else $XDG_DATA_HOME/ncii-client, else ~/.local/share/ncii-client."""
    env = os.environ if env is None else env
    if env.get("NCII_CLIENT_HOME"):
        return Path(env["NCII_CLIENT_HOME"])
    if env.get("XDG_DATA_HOME"):
        return Path(env["XDG_DATA_HOME"]) / "ncii-client"
    return Path.home() / ".local" / "share" / "ncii-client"


def normalise_hub_url(url: str) -> str:
    """One spelling per hub (pins and receipts are keyed by it): scheme and host lower case,
    no trailing slash, no query. Only http and https."""
    import httpx

    try:
        parsed = httpx.URL(url.strip())
    except (httpx.InvalidURL, TypeError):
        raise UsageError(
            "the hub address is not a valid URL (e.g. https://hub.example.org)"
        ) from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise UsageError("the hub address must start with https:// (or http:// for a local test)")
    if parsed.query or parsed.fragment:
        raise UsageError("the hub address must not contain ? or #")
    port = f":{parsed.port}" if parsed.port is not None else ""
    host = parsed.host if ":" not in parsed.host else f"[{parsed.host}]"
    path = parsed.path.rstrip("/")
    return f"{parsed.scheme}://{host.lower()}{port}{path}"


class ClientHome:
    """One data folder. Not thread-safe across processes beyond atomic single-file writes."""

    def __init__(self, root: Path) -> None:
        self.root = root
        ensure_private_dir(root)
        ensure_private_dir(self.cases_dir)

    @classmethod
    def open(
        cls, path: Path | str | None = None, env: Mapping[str, str] | None = None
    ) -> ClientHome:
        """The folder ``path``, else the default one (see :func:`default_home`)."""
        return cls(Path(path) if path is not None else default_home(env))

    @property
    def cases_dir(self) -> Path:
        return self.root / "cases"

    def _case_file(self, case_id: str) -> Path:
        return self.cases_dir / f"{case_id}.case"

    def _receipts_dir(self, case_id: str) -> Path:
        return self.cases_dir / case_id / "receipts"

    # -- cases ---------------------------------------------------------------------------

    def _save_secret(self, secret: CaseSecret) -> str:
        case_id = secret.case_id()
        record = {"v": 1, "case_id": case_id, "secret": secret.to_bytes().hex()}
        atomic_write(self._case_file(case_id), (json.dumps(record) + "\n").encode("ascii"))
        ensure_private_dir(self._receipts_dir(case_id))
        return case_id

    def create_case(self) -> NewCase:
        """Draw a fresh case secret, save it, and return the id and the one-time recovery code."""
        secret = CaseSecret.generate()
        case_id = self._save_secret(secret)
        return NewCase(case_id, secret.recovery_code())

    def recover_case(self, code: str) -> str:
        """Restore a case from its recovery code (RecoveryCodeError names the group of a typo).

        Recovering a case already here is harmless: the same secret is written again."""
        secret = CaseSecret.from_recovery_code(code)
        return self._save_secret(secret)

    def case_ids(self) -> list[str]:
        """Every case in this folder, sorted."""
        try:
            names = os.listdir(self.cases_dir)
        except OSError as exc:
            raise StoreError(f"could not read {self.cases_dir} ({exc.strerror})") from None
        return sorted(m.group(1) for n in names if (m := _CASE_FILE.fullmatch(n)))

    def resolve_case(self, case_id: str | None) -> str:
        """The case named (typed loosely), or the only case; a clear error otherwise."""
        cases = self.case_ids()
        if case_id is None:
            if not cases:
                raise NoCaseError(
                    "there is no case on this computer yet: create one with "
                    "'ncii-client case new' (or 'ncii-client case recover CODE')"
                )
            if len(cases) > 1:
                raise AmbiguousCaseError(
                    "there are several cases here; choose one with --case ID: " + ", ".join(cases),
                    cases,
                )
            return cases[0]
        try:
            wanted = parse_case_id(case_id)
        except MalformedError:
            raise UnknownCaseError(
                "that is not a case id (16 letters and digits, e.g. GRVPT81D2V6E8MRE)"
            ) from None
        if wanted not in cases:
            known = ", ".join(cases) if cases else "none"
            raise UnknownCaseError(
                f"case {wanted} is not on this computer (cases here: {known}); "
                "use 'ncii-client case recover CODE' to restore it"
            )
        return wanted

    def load_secret(self, case_id: str) -> CaseSecret:
        """The case secret (for signing); StoreError if the file is damaged."""
        path = self._case_file(case_id)
        damaged = StoreError(
            f"the file for case {case_id} is damaged; restore it with "
            "'ncii-client case recover' and your recovery code"
        )
        try:
            record = boundedjson.loads(read_limited(path), max_bytes=MAX_CASE_FILE)
            secret = CaseSecret(bytes.fromhex(record["secret"]))
        except (ValueError, KeyError, TypeError, KeyFormatError, UnicodeDecodeError):
            raise damaged from None
        if not isinstance(record, dict) or record.get("v") != 1 or secret.case_id() != case_id:
            raise damaged
        return secret

    def list_cases(self) -> list[CaseSummary]:
        """A summary of each case (counts only)."""
        out = []
        for case_id in self.case_ids():
            receipts = self.receipts(case_id, skip_damaged=True)
            out.append(
                CaseSummary(
                    case_id,
                    entries=len(receipts),
                    included=sum(1 for r in receipts if r.included),
                    hubs=tuple(sorted({r.hub for r in receipts} or self._remembered(case_id))),
                )
            )
        return out

    # -- the hub of a case without receipts here (a recovered case) ----------------------

    def _hub_file(self, case_id: str) -> Path:
        return self.cases_dir / case_id / "hub.json"

    def _remembered(self, case_id: str) -> set[str]:
        hub = self.remembered_hub(case_id)
        return {hub} if hub is not None else set()

    def remembered_hub(self, case_id: str) -> str | None:
        """The hub given for this case when its receipts were not on this computer."""
        path = self._hub_file(case_id)
        if not path.exists():
            return None
        try:
            record = boundedjson.loads(read_limited(path), max_bytes=MAX_CASE_FILE)
            if not isinstance(record, dict) or record.get("v") != 1:
                raise ValueError
            return normalise_hub_url(str(record["hub"]))
        except (ValueError, KeyError, TypeError, UnicodeDecodeError, UsageError):
            raise StoreError(
                f"{path} is damaged; remove it and give the hub again with --hub"
            ) from None

    def remember_hub(self, case_id: str, url: str) -> None:
        """Keep ``url`` as this case's hub, so later commands need no ``--hub`` (finding 6)."""
        ensure_private_dir(self.cases_dir / case_id)
        record = {"v": 1, "hub": normalise_hub_url(url)}
        atomic_write(self._hub_file(case_id), (json.dumps(record) + "\n").encode("ascii"))

    # -- receipts ------------------------------------------------------------------------

    def save_receipt(self, case_id: str, receipt: Receipt) -> None:
        directory = self._receipts_dir(case_id)
        ensure_private_dir(directory)
        atomic_write(directory / f"{receipt.entry_id}.json", encode_receipt(receipt))

    def receipt_files(self, case_id: str) -> list[Path]:
        directory = self._receipts_dir(case_id)
        try:
            names = os.listdir(directory)
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise StoreError(f"could not read {directory} ({exc.strerror})") from None
        return [directory / n for n in sorted(names) if _RECEIPT_FILE.fullmatch(n)]

    def load_receipt(self, path: Path) -> Receipt:
        try:
            receipt = decode_receipt(read_limited(path))
        except MalformedError:
            raise StoreError(f"the receipt file {path.name} is damaged") from None
        if path.name != f"{receipt.entry_id}.json":
            raise StoreError(f"the receipt file {path.name} is damaged (wrong entry)")
        return receipt

    def receipts(self, case_id: str, *, skip_damaged: bool = False) -> list[Receipt]:
        """Every receipt of the case (pending and complete), sorted by entry id."""
        out = []
        for path in self.receipt_files(case_id):
            try:
                out.append(self.load_receipt(path))
            except StoreError:
                if not skip_damaged:
                    raise
        return out

    # -- hub pins (trust on first use) ---------------------------------------------------

    @property
    def _pins_file(self) -> Path:
        return self.root / "hubs.json"

    def _load_pins(self) -> dict[str, Any]:
        if not self._pins_file.exists():
            return {}
        try:
            record = boundedjson.loads(read_limited(self._pins_file), max_bytes=MAX_STORE_FILE)
            hubs = record["hubs"]
            if record.get("v") != 1 or not isinstance(hubs, dict):
                raise ValueError
            return hubs
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            raise StoreError(
                f"{self._pins_file} is damaged; move it away to trust the hubs afresh"
            ) from None

    def _save_pins(self, hubs: dict[str, Any]) -> None:
        data = json.dumps({"v": 1, "hubs": hubs}, indent=1, sort_keys=True) + "\n"
        atomic_write(self._pins_file, data.encode("utf-8"))

    def pin(self, url: str) -> HubPin | None:
        """The pinned identity of the hub at ``url``, or None before first contact."""
        entry = self._load_pins().get(url)
        if entry is None:
            return None
        try:
            return HubPin(url, str(entry["origin"]), str(entry["verifier_key"]))
        except (KeyError, TypeError):
            raise StoreError(f"{self._pins_file} is damaged") from None

    def save_pin(self, pin: HubPin) -> None:
        hubs = self._load_pins()
        old = hubs.get(pin.url, {})
        hubs[pin.url] = {**old, "origin": pin.origin, "verifier_key": pin.verifier_key}
        self._save_pins(hubs)

    def last_checkpoint(self, url: str) -> str | None:
        """The newest checkpoint note of this hub we verified (for consistency checks)."""
        value = self._load_pins().get(url, {}).get("checkpoint")
        return value if isinstance(value, str) else None

    def save_checkpoint(self, url: str, note: str) -> None:
        hubs = self._load_pins()
        if url not in hubs:
            raise StoreError("internal: checkpoint saved for a hub that is not pinned")
        hubs[url]["checkpoint"] = note
        self._save_pins(hubs)
