"""``serve --reuse-port`` shares one port between processes of one log. Attack (an operator's
slip, or a stale unit file): a second process of ANOTHER log joins the port (another data
folder: another key), or of the same key with another database (a second tree signed with the
same key: a fork). The kernel would hand it a share of the connections, so a person's
submission could land in a log nobody follows, or the key would sign two trees. It must refuse
to start, and the first process must go on alone."""

from __future__ import annotations

from pathlib import Path

from hubkit import Case, HubFactory, HubProcess, mixed_hashes, post, wait_for_size


def refused(proc: HubProcess, why: str) -> None:
    """``proc`` exits with a message naming ``why`` (start() may return at once: the port
    already answers, from the first process)."""
    try:
        proc.start(timeout=30)
    except RuntimeError:
        pass
    assert proc.proc is not None
    code = proc.proc.wait(60)
    assert code != 0
    assert why in proc.output(), proc.output()


def test_another_data_folder_cannot_join_the_port(hub_factory: HubFactory, tmp_path: Path) -> None:
    one = hub_factory("--reuse-port")
    other = hub_factory("--reuse-port", data_dir=tmp_path / "other-data", start=False)
    other.port = one.port
    refused(other, "another log")
    with one.client() as client:
        assert client.get("/v1/log").status_code == 200


def test_same_key_another_database_cannot_join_the_port(
    hub_factory: HubFactory, tmp_path: Path
) -> None:
    one = hub_factory("--reuse-port")
    with one.client() as client:
        assert post(client, "/v1/submissions", Case().submission(mixed_hashes(2))).is_success
        wait_for_size(client, 2)
    other = hub_factory("--reuse-port", data_dir=one.data_dir, start=False)
    other.database_url = f"sqlite:///{tmp_path / 'another.sqlite3'}"
    other.port = one.port
    refused(other, "another database")
