"""The client's errors: each carries the exit code the CLI returns and a message for people.

Messages are written for someone frightened and not technical: what happened, what to do next.
They never hold hash values, secrets or recovery codes. Callers (the CLI, the local web page)
catch :class:`ClientError` and show ``str(exc)``.
"""

from __future__ import annotations

__all__ = [
    "EXIT_FAILURE",
    "EXIT_HUB",
    "EXIT_OK",
    "EXIT_REFUSED",
    "EXIT_STORE",
    "EXIT_USAGE",
    "AmbiguousCaseError",
    "BundleFormatError",
    "ClientError",
    "HubAnswerTooLargeError",
    "HubKeyChangedError",
    "HubProtocolError",
    "HubRefusedError",
    "HubUnreachableError",
    "InsecureHubError",
    "NoCaseError",
    "NothingToSendError",
    "StoreError",
    "UnknownCaseError",
    "UsageError",
]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_HUB = 3
EXIT_REFUSED = 4
EXIT_STORE = 5


class ClientError(Exception):
    """Base of every error the client library raises on purpose."""

    exit_code = EXIT_FAILURE


class UsageError(ClientError):
    """The request cannot be carried out as asked (wrong case, bad file): fix the command."""

    exit_code = EXIT_USAGE


class NoCaseError(UsageError):
    """No case exists in this data folder yet."""


class AmbiguousCaseError(UsageError):
    """Several cases exist and none was named; ``cases`` lists their ids."""

    def __init__(self, message: str, cases: list[str]) -> None:
        super().__init__(message)
        self.cases = cases


class UnknownCaseError(UsageError):
    """The named case is not in this data folder."""


class InsecureHubError(UsageError):
    """A plain ``http://`` hub address on another machine, without the explicit permission
    (``--insecure-http``): fingerprints and signed requests would cross the network unencrypted.
    """


class BundleFormatError(UsageError):
    """A file that is not a valid ``.ncii`` bundle (specs/client-store.md section 5)."""


class NothingToSendError(ClientError):
    """Every file was refused or failed: there is nothing to submit."""


class StoreError(ClientError):
    """The data folder cannot be read or written (permissions, disk full, damaged file)."""

    exit_code = EXIT_STORE


class HubUnreachableError(ClientError):
    """The hub could not be reached, or kept failing (5xx, 429) after every retry."""

    exit_code = EXIT_HUB


class HubRefusedError(ClientError):
    """The hub answered and refused; ``code`` is its stable error code (specs/hub-api.md 5)."""

    exit_code = EXIT_REFUSED

    def __init__(self, message: str, code: str, status: int) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


class HubKeyChangedError(ClientError):
    """The hub presents another log key than the one pinned at first contact (it does not
    verify: exit 1)."""

    exit_code = EXIT_FAILURE


class HubProtocolError(ClientError):
    """The hub answered something this client cannot read or that contradicts itself
    (a bad proof, a log that went backwards): a broken or dishonest hub. It does not verify:
    exit 1."""

    exit_code = EXIT_FAILURE


class HubAnswerTooLargeError(HubProtocolError):
    """The hub kept sending past the most this client reads for that request (a broken or
    lying hub trying to exhaust memory); reading stopped at the cap."""
