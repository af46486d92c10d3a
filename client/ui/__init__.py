"""client.ui: ``ncii-client ui`` serves the person's page (web/) on 127.0.0.1 and passes its
hub requests on (specs/client-ui.md)."""

from client.ui.server import UiServer
from client.ui.webapp import WebApp, load_web_app

__all__ = ["UiServer", "WebApp", "load_web_app"]
