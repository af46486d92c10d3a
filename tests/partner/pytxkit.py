"""Helpers for the python-threatexchange (pytx) plug-in tests: a real hub on loopback behind a
recording (and, on demand, lying) proxy, the real command lines (``ncii-hub``, ``ncii-partner``,
``ncii-client``, ``threatexchange``) in subprocesses, and pytx's state in a temporary folder
(``TX_STATEDIR`` and ``HOME`` point into the test's tmp_path).

What every test starts from is made once per module (``make_template``: the hub's keys from
``ncii-hub init``, a partner folder from ``ncii-partner init`` registered with ``ncii-hub
partner add``, pytx with ``threatexchange config extensions add partner_sdk.pytx``, and one
case from ``ncii-client case new`` for each person) and copied into each test's folder, where
a hub of its own serves it: each of those commands costs a process start of about 1 s of
imports, and a copy makes the same files."""

from __future__ import annotations

import io
import json
import os
import pickle
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
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


PEOPLE = ("a", "b", "c")  # each with one case in the template


@dataclass(frozen=True)
class Template:
    """The files a deployment starts from (see the module docstring) and the hub's log key."""

    root: Path
    log_key: str


def make_template(root: Path) -> Template:
    """A hub's keys and database with the partner registered, the partner folder, pytx's state
    with our extension added and a case for each of ``PEOPLE``, from the real command lines."""
    folder = Folder(root)
    data, partner = root / "hub-data", root / "partner"
    steps: list[Sequence[str]] = [
        ("ncii-hub", "init", "--data", str(data), "--json"),
        ("ncii-partner", "init", "--name", "examplecorp", "--dir", str(partner)),
        ("threatexchange", "config", "extensions", "add", "partner_sdk.pytx"),
    ]
    with ThreadPoolExecutor(len(steps) + len(PEOPLE)) as pool:  # independent: side by side
        cases = [pool.submit(folder.ncii, "ncii-client", "case", "new", "--json", person=p)
                 for p in PEOPLE]  # fmt: skip
        made = list(pool.map(lambda argv: folder.ncii(*argv), steps))
        for case in cases:
            case.result()
    folder.ncii("ncii-hub", "partner", "add", "examplecorp", "--keys",
                str(partner / "partner-public.json"), "--data", str(data),
                "--database-url", f"sqlite:///{root / 'hub.sqlite3'}")  # fmt: skip
    return Template(root, str(json.loads(made[0].out)["verifier_key"]))


@dataclass
class Folder:
    """The command lines, run with their state (pytx's, the people's clients) in ``root``."""

    root: Path

    def env(self, person: str = "a", workaround: bool = False) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "TX_VERBOSE")}
        env.update(
            HOME=str(self.root / "home"),
            TX_STATEDIR=str(self.root / "txstate"),
            NCII_CLIENT_HOME=str(self.root / f"client-{person}"),
            PYTHONUNBUFFERED="1",
        )
        if workaround and not PDQ_INDEX_OK:
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
            # The faiss workaround only where pytx runs: it imports faiss (the ncii-* commands
            # never need it).
            env=self.env(person, workaround=argv[0] == "threatexchange"),
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


@dataclass
class Deployment(Folder):
    """A hub, one registered partner folder, people's clients, and pytx's CLI state: a copy of
    ``template`` in ``root``, with a hub of its own."""

    template: Template
    hub: HubProcess = field(init=False)
    proxy: HeaderProxy = field(init=False)
    log_key: str = field(init=False)
    partner_dir: Path = field(init=False)
    requests: list[str] = field(default_factory=list)  # paths the proxy forwarded
    lie: Lie | None = None

    def __post_init__(self) -> None:
        shutil.copytree(self.template.root, self.root, dirs_exist_ok=True)
        self.db = f"sqlite:///{self.root / 'hub.sqlite3'}"
        self.hub = HubProcess(self.root / "hub-data", self.db, (*FEED_FAST, *NO_LIMITS)).start()
        self.proxy = HeaderProxy(self.hub.url, mutate=self._mutate)
        self.log_key = self.template.log_key
        self.partner_dir = self.root / "partner"

    def close(self) -> None:
        self.proxy.close()
        self.hub.kill()

    def _mutate(self, path: str, status: int, body: bytes) -> tuple[int, bytes]:
        self.requests.append(path)
        return (status, body) if self.lie is None else self.lie(path, status, body)

    # -- the steps a platform engineer runs

    def configure_pytx(self, **extra: Any) -> None:
        """The collaboration (pytx has our extension from the template)."""
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

    def submit(self, *files: Path, person: str = "a", wait: bool = False) -> dict[str, Any]:
        """A person's submission of ``files`` (the real client; each of ``PEOPLE`` submits
        once, to the case the template made), all sealed. ``wait``: with ``--wait``, which
        polls every 0.5 s and adds the receipts' counts to the result; the feed is waited for
        either way."""
        assert person in PEOPLE
        before = self.log_size()
        argv = ["submit", *map(str, files), "--hub", self.hub.url, "--yes", "--json"]
        argv += ["--wait"] if wait else []
        result: dict[str, Any] = json.loads(self.ncii("ncii-client", *argv, person=person).out)
        self.wait_sealed(before + len(result["entries"]))
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
