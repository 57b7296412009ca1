"""``atm console``: the ATM in a terminal, a Textual view of ``atm.frontpanel.FrontPanel``."""

from atm.console.app import ConsoleApp, screen_text

__all__ = ["ConsoleApp", "screen_text"]
