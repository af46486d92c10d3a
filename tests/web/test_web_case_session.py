"""web/hubclient.js's CaseSession against a real hub process over HTTP, on SQLite and PostgreSQL
(issue 15: "a hub that is down or refuses mid-way loses nothing and never creates a second case").

Node runs the page's modules with its own fetch; the hub is ``ncii-hub serve`` with the case
puzzle on. The records are those `ncii-client hash --json` prints for real pictures (the same
records fingerprint() gives in the page).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from client.hub import HubSession
from client.plan import hash_paths, plan_submission
from client.store import ClientHome
from crypto.case import CaseSecret

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "hub"))

from casekit import NODE, PROJECT_ROOT, SESSION_DRIVER, noise_pictures, page_records
from hubkit import HubProcess

PUZZLE = ("--set", "puzzle=true", "--set", "batch_interval=0.05")


@pytest.fixture(scope="module")
def pictures(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return noise_pictures(tmp_path_factory.mktemp("pictures"), 6)


@pytest.fixture(scope="module")
def files(pictures: list[Path]) -> list[list[dict[str, Any]]]:
    records, failed = page_records(pictures)
    assert not failed and len(records) == 6
    return records


@pytest.fixture
def hub(tmp_path: Path, database_url: str) -> Iterator[HubProcess]:
    proc = HubProcess(tmp_path / "data", database_url, PUZZLE).start()
    yield proc
    proc.kill()


def run_session(
    hub: HubProcess,
    secret: CaseSecret,
    steps: list[dict[str, Any]],
    tmp_path: Path,
    *,
    on_pause: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Run the steps in one Node process; at each pause call ``on_pause[name]()`` (stop or
    restart the hub) and let Node go on."""
    pauses = tmp_path / "pauses"
    pauses.mkdir(exist_ok=True)
    request = {
        "base": hub.url + "/",
        "secret": secret.to_bytes().hex(),
        "steps": steps,
        "pauseDir": str(pauses),
        **extra,
    }
    (tmp_path / "request.json").write_text(json.dumps(request))
    out_path, err_path = tmp_path / "node.out", tmp_path / "node.err"
    with (
        open(tmp_path / "request.json") as stdin,
        open(out_path, "w") as stdout,
        open(err_path, "w") as stderr,
    ):
        proc = subprocess.Popen(
            [NODE, str(SESSION_DRIVER)], stdin=stdin, stdout=stdout, stderr=stderr, cwd=PROJECT_ROOT
        )
        handled: set[str] = set()
        deadline = time.monotonic() + 300
        while proc.poll() is None and time.monotonic() < deadline:
            for name, action in (on_pause or {}).items():
                if name not in handled and (pauses / f"{name}.ready").exists():
                    action()
                    handled.add(name)
                    (pauses / f"{name}.go").write_text("")
            time.sleep(0.05)
        if proc.poll() is None:
            proc.kill()
        proc.wait(30)
    out, err = out_path.read_text(), err_path.read_text()
    assert proc.returncode == 0, out[-3000:] + err[-3000:]
    assert handled == set(on_pause or {})
    answer: dict[str, Any] = json.loads(out)
    return answer


def python_status(hub: HubProcess, secret: CaseSecret, tmp_path: Path) -> Any:
    """The case as the Python client sees it (a recovered case: interoperable both ways)."""
    home = ClientHome(tmp_path / "python-home")
    case_id = home.recover_case(secret.recovery_code())
    with HubSession(hub.url, home) as session:
        return session.status(case_id)


def test_new_case_with_puzzle_submit_status_withdraw(
    hub: HubProcess, files: list[list[dict[str, Any]]], tmp_path: Path
) -> None:
    secret = CaseSecret.generate()
    steps: list[dict[str, Any]] = [
        {"do": "submit", "files": files[:3]},
        {"do": "submit", "files": files[:4]},  # one more picture: only its hashes are new
        {"do": "status"},
        {"do": "withdraw", "entries": "FIRST_FILE"},
        {"do": "receipts"},
        {"do": "withdraw", "entries": "all"},
        {"do": "submit", "files": files[4:]},
    ]
    # The entry ids to withdraw are known only after the first step: run in two parts.
    first = run_session(hub, secret, steps[:3], tmp_path)
    new, more, status = (r["answer"] for r in first["results"])
    assert first["caseId"] == secret.case_id() == new["case_id"]
    # The case puzzle was solved with progress, and only the case's first submission carried it.
    assert first["results"][0]["progress"] and first["results"][0]["progress"][0] == 1
    posts = [s for s in first["seen"] if s["path"] == "/v1/submissions"]
    assert [p["puzzle"] for p in posts] == [True, False]
    assert sum(s["path"] == "/v1/case-puzzle" for s in first["seen"]) == 1
    assert new["status"] == "pending" and len(new["entries"]) == 9
    assert [len(f["entry_ids"]) for f in new["files"]] == [3, 3, 3]
    assert more["already_sent"] == 9 and len(more["entries"]) == 3
    assert [len(f["entry_ids"]) for f in more["files"]] == [3, 3, 3, 3]
    assert more["files"][:3] == new["files"]  # the same entries, found in the status answer
    assert len(status["entries"]) == 12 and not status["withdrawn"]
    assert all(
        e["kind"] == "addition" and e["state"] in ("pending", "integrated")
        for e in status["entries"]
    )
    # Nothing identifying crossed the network: only the hub's API paths were asked.
    assert {s["path"] for s in first["seen"]} <= {
        "/v1/status",
        "/v1/case-puzzle",
        "/v1/submissions",
    }

    first_file = new["files"][0]["entry_ids"]
    steps[3]["entries"] = first_file
    second = run_session(hub, secret, steps[3:], tmp_path)
    one, receipts, everything, refused = second["results"]
    assert sorted(w["entry_id"] for w in one["answer"]["withdrawn"]) == sorted(first_file)
    assert one["answer"]["case_withdrawn"] is False
    # Receipts from the page's own modules: the 12 additions and the 3 tombstones, all in the log.
    assert receipts["answer"] == [{"state": "in-log", "problem": None}] * 15
    assert everything["answer"]["case_withdrawn"] is True
    withdrawn_now = {w["entry_id"] for w in everything["answer"]["withdrawn"]}
    assert len(withdrawn_now) == 9 and not withdrawn_now & set(first_file)
    assert refused["error"] == {
        "name": "HubError",
        "code": "case_withdrawn",
        "status": 410,
        "retryable": False,
    }
    # The Python client, given only the recovery code, sees the same case.
    seen = python_status(hub, secret, tmp_path)
    assert seen.withdrawn and len(seen.additions) == 12


def test_hub_stopped_mid_submission_loses_nothing_and_makes_one_case(
    hub: HubProcess, files: list[list[dict[str, Any]]], tmp_path: Path
) -> None:
    """Four hashes per envelope (18 hashes: 5 envelopes). The hub is killed right after it
    acknowledged the first, so the second fails; the page keeps the sealed envelopes; the hub is
    restarted and the same session retries: every hash is stored once, in one case."""
    secret = CaseSecret.generate()
    steps = [
        {"do": "prepare"},  # the puzzle solved when the case is made, before files are picked
        {"do": "submit", "files": files, "pauseAfterFirst": "first-acked"},
        {"do": "pause", "name": "hub-down"},
        {"do": "submit", "files": files},
        {"do": "status"},
    ]
    answer = run_session(
        hub,
        secret,
        steps,
        tmp_path,
        on_pause={"first-acked": hub.kill, "hub-down": hub.start},
        limits={"maxHashes": 4},
    )
    prepared, failed, _, retried, status = answer["results"]
    assert prepared["answer"]["required"] is True and prepared["progress"]
    assert failed["progress"] == []  # nothing solved again at submission time
    assert failed["error"]["code"] == "network" and failed["error"]["retryable"] is True
    assert failed["pending"] == 4  # the four envelopes the hub never acknowledged
    assert retried["pending"] == 0
    assert len(retried["answer"]["entries"]) == 14  # the remaining four envelopes' hashes
    assert all(len(f["entry_ids"]) == 3 for f in retried["answer"]["files"])
    entries = status["answer"]["entries"]
    assert len(entries) == 18 and len({e["entry_id"] for e in entries}) == 18
    # The same bytes were sent again: the hub holds each hash once, and one case.
    posts = [s for s in answer["seen"] if s["path"] == "/v1/submissions"]
    assert len(posts) >= 6 and posts[0]["puzzle"] and not any(p["puzzle"] for p in posts[1:])
    assert sum(s["path"] == "/v1/case-puzzle" for s in answer["seen"]) == 1
    seen = python_status(hub, secret, tmp_path)
    assert len(seen.additions) == 18
    assert len({json.dumps(e.hash, sort_keys=True) for e in seen.additions}) == 18


def test_lost_answers_and_a_reload_send_the_same_bytes(
    hub: HubProcess, files: list[list[dict[str, Any]]], tmp_path: Path
) -> None:
    """The hub stores a submission but its answer is lost (twice: the retries inside one call
    and the call itself fail); the page is reloaded and a new session takes the kept envelopes:
    the hub answers them from its replay record, so nothing is stored twice."""
    secret = CaseSecret.generate()
    steps = [
        {"do": "submit", "files": files[:2]},
        {"do": "newSession"},
        {"do": "submit", "files": files[:2]},
        {"do": "status"},
    ]
    answer = run_session(hub, secret, steps, tmp_path, dropAnswers=2)
    failed, restored, retried, status = answer["results"]
    assert failed["error"]["code"] == "network" and failed["pending"] == 1
    assert restored["restored"] == 1
    assert len(retried["answer"]["entries"]) == 6
    assert [len(f["entry_ids"]) for f in retried["answer"]["files"]] == [3, 3]
    assert len(status["answer"]["entries"]) == 6
    posts = [s for s in answer["seen"] if s["path"] == "/v1/submissions"]
    assert len(posts) == 3 and len({p["bytes"] for p in posts}) == 1


def test_case_session_in_chromium_on_the_hubs_page(
    hub: HubProcess, files: list[list[dict[str, Any]]], tmp_path: Path
) -> None:
    """The same session in Debian's Chromium, loaded from the hub's page (its policy, its
    content-addressed module URLs, base "/"): new case with the puzzle, status, withdrawal; every
    request stays on the hub and carries no file name."""
    from webkit import chromium

    secret = CaseSecret.generate()
    requests: list[tuple[str, str, bytes]] = []
    with chromium() as browser:
        page = browser.new_page()
        page.set_default_timeout(120_000)
        violations: list[str] = []
        page.on(
            "console", lambda m: violations.append(m.text) if "Content Security" in m.text else None
        )

        def route(r: Any) -> None:
            requests.append((r.request.method, r.request.url, r.request.post_data_buffer or b""))
            if r.request.url.startswith(hub.url):
                r.continue_()
            else:
                r.abort()

        page.route("**/*", route)
        page.goto(hub.url + "/")
        result = page.evaluate(
            """async ([secretHex, files]) => {
                const map = JSON.parse(
                    document.querySelector("script[type=importmap]").textContent);
                const url = (name) =>
                    Object.keys(map.integrity).find((u) => u.endsWith("/" + name));
                const { CaseSession } = await import(url("hubclient.js"));
                const { fromHex } = await import(url("case.js"));
                const session = new CaseSession({ secret: fromHex(secretHex) });
                const progress = [];
                const onPuzzleProgress = (p) => progress.push(p);
                const sent = await session.submit(files, { onPuzzleProgress });
                const status = await session.status();
                const gone = await session.withdraw(sent.files[0].entry_ids);
                return { caseId: session.caseId, sent, progress: progress.length,
                         status: status.entries.length, withdrawn: gone.withdrawn.length };
            }""",
            [secret.to_bytes().hex(), files[:2]],
        )
    assert result["caseId"] == secret.case_id()
    assert result["progress"] > 0 and len(result["sent"]["entries"]) == 6
    assert result["status"] == 6 and result["withdrawn"] == 3
    assert not violations
    api = [(m, u) for m, u, _ in requests if "/v1/" in u]
    assert [u.removeprefix(hub.url) for m, u in api if m == "POST"] == [
        "/v1/status",
        "/v1/submissions",
        "/v1/status",
        "/v1/withdrawals",
    ]
    assert all(u.startswith(hub.url) for _, u, _ in requests)
    for _, _, body in requests:
        assert b"picture-0" not in body and b".png" not in body


def test_a_case_made_by_the_cli_works_in_the_page(
    hub: HubProcess, pictures: list[Path], files: list[list[dict[str, Any]]], tmp_path: Path
) -> None:
    """The Python client makes a case (solving the puzzle) and sends three pictures; the page,
    given that case's recovery code, sees them, sends only the pictures the hub lacks, and
    withdraws the case, which the Python client then sees withdrawn."""
    home = ClientHome(tmp_path / "cli-home")
    new = home.create_case()
    with HubSession(hub.url, home) as session:
        session.submit(new.case_id, plan_submission(hash_paths([str(p) for p in pictures[:3]])))
    secret = CaseSecret.from_recovery_code(new.recovery_code.lower().replace("-", " "))
    steps: list[dict[str, Any]] = [
        {"do": "status"},
        {"do": "submit", "files": files},
        {"do": "withdraw", "entries": "all"},
    ]
    status, sent, gone = (r["answer"] for r in run_session(hub, secret, steps, tmp_path)["results"])
    assert status["case_id"] == new.case_id and len(status["entries"]) == 9
    assert sent["already_sent"] == 9 and len(sent["entries"]) == 9
    assert all(len(f["entry_ids"]) == 3 for f in sent["files"])
    assert gone["case_withdrawn"] is True and len(gone["withdrawn"]) == 18
    with HubSession(hub.url, home) as session:
        after = session.status(new.case_id)
    assert after.withdrawn and len(after.additions) == 18
