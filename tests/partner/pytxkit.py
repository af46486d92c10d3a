"""Helpers for the python-threatexchange (pytx) plug-in tests: a real hub on loopback behind a
recording (and, on demand, lying) proxy, the real command lines (``ncii-hub``, ``ncii-partner``,
``ncii-client``, ``threatexchange``) in subprocesses, and pytx's state in a temporary folder
(``TX_STATEDIR`` and ``HOME`` point into the test's tmp_path)."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "hub"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "system"))

from hubkit import HubProcess
from syskit import FEED_FAST, NO_LIMITS, HeaderProxy, sealed_through, wait_until

BIN = Path(sys.executable).parent
COLLAB = "ncii"
WORKAROUND = Path(__file__).parent / "pytx_faiss_workaround"


def pdq_index_survives_disk() -> bool:
    """Whether pytx's PDQ index still finds a hash after serialize + deserialize (see
    pytx_faiss_workaround/sitecustomize.py: with pytx 1.2.17 and current faiss it does not)."""
    import io

    from threatexchange.signal_type.pdq.pdq_index import PDQIndex

    digest = "3b2792417bf7f8f63318b31bf4eaa46e32111b112b157ce488e73709270c2f8d"
    buffer = io.BytesIO()
    PDQIndex.build([(digest, 1)]).serialize(buffer)
    buffer.seek(0)
    return bool(PDQIndex.deserialize(buffer).query(digest))


PDQ_INDEX_OK = pdq_index_survives_disk()

Lie = Callable[[str, int, bytes], tuple[int, bytes]]


def picture(seed: int, size: int = 512) -> Image.Image:
    """Smooth random colours: a stand-in for a photo (as in the README walkthrough)."""
    colours = np.random.default_rng(seed).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    return Image.fromarray(colours).resize((size, size), Image.Resampling.BICUBIC)


@dataclass
class Run:
    code: int
    out: str
    err: str

    def lines(self) -> list[str]:
        return [x for x in self.out.splitlines() if x.strip()]


@dataclass
class Deployment:
    """A hub, one registered partner folder, a person's client, and pytx's CLI state."""

    root: Path
    hub: HubProcess = field(init=False)
    proxy: HeaderProxy = field(init=False)
    log_key: str = field(init=False)
    partner_dir: Path = field(init=False)
    requests: list[str] = field(default_factory=list)  # paths the proxy forwarded
    lie: Lie | None = None

    def __post_init__(self) -> None:
        self.db = f"sqlite:///{self.root / 'hub.sqlite3'}"
        self.hub = HubProcess(self.root / "hub-data", self.db, (*FEED_FAST, *NO_LIMITS)).start()
        self.proxy = HeaderProxy(self.hub.url, mutate=self._mutate)
        self.log_key = json.loads(self.ncii("ncii-hub", "keys", "--data", str(self.hub.data_dir),
                                            "--json").out)["verifier_key"]  # fmt: skip
        self.partner_dir = self.root / "partner"
        self.ncii("ncii-partner", "init", "--name", "examplecorp", "--dir", str(self.partner_dir))
        self.ncii("ncii-hub", "partner", "add", "examplecorp", "--keys",
                  str(self.partner_dir / "partner-public.json"), "--data",
                  str(self.hub.data_dir), "--database-url", self.db)  # fmt: skip

    def close(self) -> None:
        self.proxy.close()
        self.hub.kill()

    def _mutate(self, path: str, status: int, body: bytes) -> tuple[int, bytes]:
        self.requests.append(path)
        return (status, body) if self.lie is None else self.lie(path, status, body)

    # -- command lines

    def env(self, person: str = "a") -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "TX_VERBOSE")}
        env.update(
            HOME=str(self.root / "home"),
            TX_STATEDIR=str(self.root / "txstate"),
            NCII_CLIENT_HOME=str(self.root / f"client-{person}"),
            PYTHONUNBUFFERED="1",
        )
        if not PDQ_INDEX_OK:
            paths = [str(WORKAROUND), env.get("PYTHONPATH", "")]
            env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
        return env

    def run(self, *argv: str, person: str = "a", timeout: float = 180.0) -> Run:
        (self.root / "home").mkdir(exist_ok=True)
        done = subprocess.run(
            [str(BIN / argv[0]), *argv[1:]],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self.env(person),
            cwd=self.root,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        return Run(done.returncode, done.stdout, done.stderr)

    def ncii(self, *argv: str, person: str = "a") -> Run:
        """An ncii-* command that must succeed (``person``: whose client folder)."""
        result = self.run(*argv, person=person)
        assert result.code == 0, f"{argv[:3]} exited {result.code}:\n{result.out}\n{result.err}"
        return result

    def tx(self, *argv: str) -> Run:
        return self.run("threatexchange", *argv)

    # -- the steps a platform engineer runs

    def configure_pytx(self, **extra: Any) -> None:
        added = self.tx("config", "extensions", "add", "partner_sdk.pytx")
        assert added.code == 0, added.err
        config = {
            "name": COLLAB,
            "hub": self.proxy.url,
            "log_key": self.log_key,
            "partner_dir": str(self.partner_dir),
            **extra,
        }
        made = self.tx("config", "collab", "edit", "ncii_exchange", "--create", "--json",
                       json.dumps(config))  # fmt: skip
        assert made.code == 0, made.err

    def log_size(self) -> int:
        with self.hub.client() as client:
            return int(client.get("/v1/log").json()["size"])

    def wait_sealed(self, size: int) -> None:
        wait_until(lambda: self.log_size() >= size, what=f"log size {size}")
        wait_until(lambda: sealed_through(self.hub) >= size, what=f"feed sealed to {size}")

    def submit(self, *files: Path, person: str = "a") -> dict[str, Any]:
        """A person's new case and submission of ``files`` (the real client), all sealed."""
        self.ncii("ncii-client", "case", "new", "--json", person=person)
        argv = ["submit", *map(str, files), "--hub", self.hub.url, "--yes", "--wait", "--json"]
        result: dict[str, Any] = json.loads(self.ncii("ncii-client", *argv, person=person).out)
        self.wait_sealed(self.log_size())
        return result

    def withdraw_all(self, person: str = "a") -> None:
        before = self.log_size()
        out = json.loads(
            self.ncii("ncii-client", "withdraw", "--all", "--yes", "--json", person=person).out
        )
        self.wait_sealed(before + len(out["withdrawn"]))

    def fetch(self, verbose: bool = False) -> Run:
        """``threatexchange fetch``; with ``-v`` pytx shows its log (reasons, notes)."""
        return self.tx(*(["-v"] if verbose else []), "fetch")

    def match(self, kind: str, path: Path) -> list[str]:
        result = self.tx("match", kind, str(path))
        assert result.code == 0, result.err
        return result.lines()

    # -- pytx's files

    def state_file(self) -> Path:
        (path,) = (self.root / "txstate").glob(f"**/{COLLAB}.state.pickle")
        return path

    def state(self) -> Any:
        return pickle.loads(self.state_file().read_bytes())

    def partner_status(self) -> dict[str, Any]:
        out = self.ncii("ncii-partner", "status", "--dir", str(self.partner_dir), "--json").out
        status: dict[str, Any] = json.loads(out)
        return status
