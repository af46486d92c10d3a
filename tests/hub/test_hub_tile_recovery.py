"""A lost tiles/ directory is rebuilt from the database at start (specs/hub-storage.md §5)."""

from __future__ import annotations

import shutil

from hubkit import Case, HubFactory, post, random_pdq, verifier_of, verify_log, wait_for_size


def test_lost_tiles_are_rebuilt_at_start(hub_factory: HubFactory) -> None:
    hub = hub_factory()
    with hub.client() as client:
        for n in (300, 7):  # a full tile and bundle, then partial ones
            r = post(client, "/v1/submissions", Case().submission([random_pdq() for _ in range(n)]))
            assert r.status_code == 202, r.text
        wait_for_size(client, 307)
        key, origin = verifier_of(client)
        before = verify_log(client, key, origin)
    hub.terminate()
    shutil.rmtree(hub.data_dir / "tiles")
    hub.start()
    with hub.client() as client:
        after = verify_log(client, key, origin)  # every tile and bundle, against the root
    assert after.checkpoint == before.checkpoint and after.leaves == before.leaves
    assert (hub.data_dir / "tiles" / "tile" / "0" / "001.p" / "51").exists()


REBUILD_WARNING = "are missing; rebuilding"


def test_a_brand_new_hub_does_not_warn_about_missing_tiles(hub_factory: HubFactory) -> None:
    """Issue 18 finding 5: a fresh data folder has nothing to rebuild, so no warning."""
    hub = hub_factory()
    with hub.client() as client:
        assert client.get("/checkpoint").status_code == 200
    hub.terminate()
    assert REBUILD_WARNING not in hub.output(), hub.output()
    hub.start()  # a restart of the still empty log: nothing missing either
    hub.terminate()
    assert REBUILD_WARNING not in hub.output(), hub.output()


def test_the_warning_appears_when_tiles_were_really_deleted(hub_factory: HubFactory) -> None:
    hub = hub_factory()
    with hub.client() as client:
        r = post(client, "/v1/submissions", Case().submission([random_pdq() for _ in range(3)]))
        assert r.status_code == 202, r.text
        wait_for_size(client, 3)
    hub.terminate()
    assert REBUILD_WARNING not in hub.output()
    shutil.rmtree(hub.data_dir / "tiles" / "tile")
    hub.start()
    with hub.client() as client:
        assert client.get("/tile/0/000.p/3").status_code == 200
    hub.terminate()
    assert "tiles for published size 3 are missing; rebuilding" in hub.output(), hub.output()
