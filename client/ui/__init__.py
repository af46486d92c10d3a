"""client.ui: the local web page behind ``ncii-client ui`` (specs/client-ui.md)."""

from client.ui.server import UiServer, UiState

__all__ = ["UiServer", "UiState"]
