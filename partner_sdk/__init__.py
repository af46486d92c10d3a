"""partner_sdk: what a platform runs to receive, verify and store the hub's hashes.

Public API: :class:`Partner` (``Partner(dir, hub_url, log_key).sync()``), :class:`SyncSummary`,
:func:`init_partner`, and the errors in :mod:`partner_sdk.errors`. Meets the hub only over
HTTP and the formats in specs/ (partner-api.md, feed.md, partner-store.md).
"""

from partner_sdk.errors import PartnerError
from partner_sdk.keys import init_partner
from partner_sdk.sync import Partner, SyncSummary

__all__ = ["Partner", "PartnerError", "SyncSummary", "init_partner"]
