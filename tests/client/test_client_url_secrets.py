"""The client never keeps or shows a hub URL's credentials: an address with userinfo is
stored (pins, receipts, cached puzzles) and shown without it, and one with a query is refused
without being echoed."""

from __future__ import annotations

import pytest

from client.errors import UsageError
from client.hub import check_hub_address
from client.store import normalise_hub_url

SECRET = "pw-s3cret-55aa"


def test_userinfo_is_dropped_and_a_query_refused_unechoed() -> None:
    assert normalise_hub_url(f"https://ops:{SECRET}@Hub.Example/x/") == "https://hub.example/x"
    for bad in (f"https://hub.example/?token={SECRET}", f"https://hub.example/#{SECRET}"):
        with pytest.raises(UsageError) as err:
            normalise_hub_url(bad)
        assert SECRET not in str(err.value)
    with pytest.raises(Exception) as err2:
        check_hub_address(f"http://ops:{SECRET}@hub.example/")  # plain http elsewhere: refused
    assert SECRET not in str(err2.value)
