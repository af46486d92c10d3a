"""What every HTTP server the tests run themselves (proxies, fake hubs, static servers) shares.

``serve_forever()`` looks for ``shutdown()`` once per poll interval, 0.5 s by default, so each
server's close waited up to that long: with ``**POLL`` it is 0.05 s (test_hostile_log.py alone,
49 proxies: 31.1 -> 8.8 s)."""

from __future__ import annotations

POLL = {"poll_interval": 0.05}
