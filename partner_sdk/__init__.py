"""partner_sdk: what a platform runs to receive, verify and store the hub's hashes, and match.

Public API: :class:`Partner` (``Partner(dir, hub_url, log_key).sync()``), :class:`SyncSummary`,
:func:`init_partner`, :class:`Matcher` (``Matcher(dir).match_file(path)``: local lookups, no
network; specs/matching.md) with its :class:`Match` and :class:`FileResult`, the partner's
own defences against false positives (:class:`Defences`: flood quarantine with
:class:`FloodPolicy`, the allow list (:class:`AllowItem`), review marks (:class:`EntryMark`,
:class:`MarkState`); specs/partner-defences.md), and the errors in :mod:`partner_sdk.errors`.
Meets the hub only over HTTP and the formats in specs/
(partner-api.md, feed.md, partner-store.md).
"""

from partner_sdk.defences import AllowItem, Defences, EntryMark, FloodPolicy, MarkState
from partner_sdk.errors import PartnerError
from partner_sdk.keys import init_partner
from partner_sdk.matcher import FileResult, Match, Matcher
from partner_sdk.sync import Partner, SyncSummary

__all__ = [
    "AllowItem",
    "Defences",
    "EntryMark",
    "FileResult",
    "FloodPolicy",
    "MarkState",
    "Match",
    "Matcher",
    "Partner",
    "PartnerError",
    "SyncSummary",
    "init_partner",
]
