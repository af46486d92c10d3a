"""A case restored from its recovery code finds its hub (issue 18, finding 6).

The receipts that name the hub stay on the first computer; on the second one the hub is given
once (to ``case recover --hub`` or to the first command that needs it) and remembered.
"""

from __future__ import annotations

import json
from pathlib import Path

from clientkit import make_photos, run_cli
from hubkit import HubProcess


def _submitted_case(hub: HubProcess, tmp_path: Path) -> tuple[str, str]:
    home = tmp_path / "first"
    made = json.loads(run_cli("case", "new", "--json", home=home).out)
    photo = make_photos(tmp_path / "pics", ("camera",))[0]
    sent = run_cli("submit", str(photo), "--hub", hub.url, "--yes", "--wait", home=home)
    assert sent.code == 0, sent.err
    return made["case_id"], made["recovery_code"]


def test_recovered_case_asks_for_its_hub_once_then_remembers_it(
    client_hub: HubProcess, tmp_path: Path
) -> None:
    case_id, code = _submitted_case(client_hub, tmp_path)
    other = tmp_path / "second"
    assert run_cli("case", "recover", home=other, stdin=code + "\n").code == 0

    asked = run_cli("status", home=other)
    assert asked.code == 2
    # Plain words: what is missing, how to give it, and that it is asked only once.
    assert "was not sent anywhere" not in asked.err
    assert "--hub" in asked.err and "helpline" in asked.err and "remember" in asked.err

    first = run_cli("status", "--hub", client_hub.url, home=other)
    assert first.code == 0, first.err
    again = run_cli("status", "--json", home=other)
    assert again.code == 0, again.err
    record = json.loads(again.out)
    assert record["case_id"] == case_id and len(record["entries"]) == 3  # one photo, 3 hashes
    assert [c["hubs"] for c in json.loads(run_cli("case", "list", "--json", home=other).out)] == [
        [client_hub.url]
    ]


def test_case_recover_with_hub_records_it(client_hub: HubProcess, tmp_path: Path) -> None:
    case_id, code = _submitted_case(client_hub, tmp_path)
    other = tmp_path / "second"
    recovered = run_cli(
        "case", "recover", "--hub", client_hub.url, "--json", home=other, stdin=code + "\n"
    )
    assert recovered.code == 0, recovered.err
    assert json.loads(recovered.out) == {"case_id": case_id, "hub": client_hub.url}
    status = run_cli("status", "--json", home=other)
    assert status.code == 0, status.err
    assert json.loads(status.out)["hub"] == client_hub.url
    # The receipts, once fetched, name the same hub: nothing is ambiguous afterwards.
    assert run_cli("receipts", "fetch", home=other).code == 0
    assert run_cli("status", home=other).code == 0
