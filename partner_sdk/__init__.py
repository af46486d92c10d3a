"""partner_sdk: what a platform runs to receive, verify and store the hub's hashes, and match.

Public API: :class:`Partner` (``Partner(dir, hub_url, log_key).sync()``), :class:`SyncSummary`,
:func:`init_partner`, :class:`Matcher` (``Matcher(dir).match_file(path)``: local lookups, no
network; specs/matching.md) with its :class:`Match` and :class:`FileResult`, and the errors in
:mod:`partner_sdk.errors`. Meets the hub only over HTTP and the formats in specs/
(partner-api.md, feed.md, partner-store.md).
"""

from partner_sdk.errors import PartnerError
from partner_sdk.keys import init_partner
from partner_sdk.matcher import FileResult, Match, Matcher
from partner_sdk.sync import Partner, SyncSummary

__all__ = [
    "FileResult",
    "Match",
    "Matcher",
    "Partner",
    "PartnerError",
    "SyncSummary",
    "init_partner",
]
