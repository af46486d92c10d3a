"""``serve --reuse-port`` shares one port between processes of one log. Attack (an operator's
slip, or a stale unit file): a second process of ANOTHER log joins the port (another data
folder: another key), or of the same key with another database (a second tree signed with the
same key: a fork). The kernel would hand it a share of the connections, so a person's
submission could land in a log nobody follows, or the key would sign two trees. It must refuse
to start, and the first process must go on alone."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
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


@pytest.mark.parametrize("nested", [False, True], ids=["endless-body", "nested-60000"])
def test_an_endless_answer_on_the_port_is_read_only_so_far(
    hub_factory: HubFactory, tmp_path: Path, nested: bool
) -> None:
    """Whatever answers on the port is another party: a 200 whose body never ends must not
    hold the starting hub (nor its memory), and one nested 60,000 deep must not crash its
    JSON reader; either is refused as another service."""
    import socket
    import threading

    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    stop = threading.Event()

    def endless() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n")
            if nested:
                conn.recv(65536)  # the request: closing with it unread would reset the answer
                conn.sendall(b"[" * 60_000)
                return
            chunk = b" " * 65536
            while not stop.is_set():
                try:
                    conn.sendall(chunk)
                except OSError:
                    return

    threading.Thread(target=endless, daemon=True).start()
    try:
        other = hub_factory("--reuse-port", start=False)
        other.port = listener.getsockname()[1]
        # Started by hand: hubkit's readiness probe would itself read the endless answer.
        env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
        done = subprocess.run(
            other.command(),
            capture_output=True,
            text=True,
            cwd=Path(__file__).resolve().parents[2],
            env=env,
            timeout=60,
            check=False,
        )
        assert done.returncode != 0
        assert "another log" in done.stdout + done.stderr, done.stdout + done.stderr
        assert "Traceback" not in done.stdout + done.stderr
    finally:
        stop.set()
        listener.close()
