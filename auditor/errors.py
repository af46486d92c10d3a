"""Errors of the auditor tools that are not verdicts about the log, and the exit codes.

Verdicts about the log (a bad signature, an inconsistent tree) are crypto/ errors or alerts;
these classes are for what stops a tool from reaching a verdict: the log cannot be reached, a
local file is unusable, a command line makes no sense. Exit codes: specs/audit.md section 1.
"""

from __future__ import annotations

from typing import Final

EXIT_OK: Final = 0
"""Everything checked and nothing wrong."""
EXIT_ALERT: Final = 1
"""The log misbehaved (or its data does not match its signed checkpoint): see the alert."""
EXIT_USAGE: Final = 2
"""Bad command line, key, configuration or local state: fix it and run again."""
EXIT_FETCH: Final = 3
"""The log (or a source) could not be reached or answered oddly: no verdict, try again later."""
EXIT_INCOMPLETE: Final = 3
"""compare: no fork found, but some pairs of checkpoints could not be checked (give --log):
no verdict, as for :data:`EXIT_FETCH` (row 3 of the one exit-code table)."""
EXIT_REFUSED: Final = 4
"""A witness or log answered and refused the request."""
EXIT_STORE: Final = 5
"""A local state file or directory could not be read or written."""
EXIT_BROKEN_PIPE: Final = 141
"""Standard output was closed early (``| head``): 128 + SIGPIPE, as a shell reports it."""


class AuditError(Exception):
    """A failure that prevents a verdict; ``exit_code`` says how the command line ends."""

    exit_code: int = EXIT_USAGE


class ConfigError(AuditError):
    """A key, option, state file or directory the tool cannot use."""

    exit_code = EXIT_USAGE


class FetchError(AuditError):
    """The log or a source could not be fetched (network, HTTP status, size cap)."""

    exit_code = EXIT_FETCH


class NotFoundError(FetchError):
    """The source answered, but has nothing at that path (HTTP 404, missing file)."""


class ResponseTooLargeError(FetchError):
    """A source sent more bytes than the kind of file it names can hold (a tile, a checkpoint).

    Reading stopped at the cap, so memory stays bounded; a log that does this is misbehaving
    or the URL does not point at a log.
    """


class InputError(AuditError):
    """Data from another party (a state file, a JSON body) is too large, too deep or malformed."""

    exit_code = EXIT_USAGE
