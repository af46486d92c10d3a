"""auditor: what an independent party runs to check a log it does not operate.

A checkpoint monitor (:mod:`auditor.monitor`), a full audit from tiles (:mod:`auditor.fullaudit`),
split-view detection over checkpoints gathered elsewhere (:mod:`auditor.compare`) and a C2SP
tlog-witness (:mod:`auditor.witness`). It builds on crypto/ only and meets the hub over HTTP
(specs/audit.md, specs/witness.md). The command line is :mod:`auditor.cli` (``ncii-audit``).
"""

from auditor.errors import EXIT_ALERT, EXIT_FETCH, EXIT_OK, EXIT_USAGE, AuditError, FetchError
from auditor.trust import LogTrust

__all__ = [
    "EXIT_ALERT",
    "EXIT_FETCH",
    "EXIT_OK",
    "EXIT_USAGE",
    "AuditError",
    "FetchError",
    "LogTrust",
]
