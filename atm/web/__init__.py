"""The web front panel: the ATM in a browser, served by the ATM process (``atm demo --web``,
``atm console --web``). See ``atm.web.server``."""

from atm.web.server import WebPanel, make_app, snapshot, start_web

__all__ = ["WebPanel", "make_app", "snapshot", "start_web"]
