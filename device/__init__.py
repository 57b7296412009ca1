"""The ATM controller: state machine, journal, cash handling, screens and receipts.

Knows devices only through ``drivers.interfaces`` and the host only through ``protocol``.

Map (where a new thing goes; ``docs/state-diagram.md`` has the diagram and the full table):

- ``states``: the machine as data: ``State``, ``TRANSITIONS``, ``TIMEOUTS``, ``SUPERVISOR_KEYS``.
  A new state or transition goes here.
- ``activities/``: what each state does, one ``async def state_name(atm)`` per state, listed in
  ``activities.ACTIVITIES``. Families: ``service`` (out of service, idle, fault), ``customer``
  (card, PIN, menus, accounts, amounts, new PIN, balance, another transaction: a new screen's
  activity), ``authorization`` (the host request: a new transaction type), ``cash`` (dispense,
  present, retract; a deposit gets its own ``deposit`` module beside it), ``session_end``
  (receipt, card returned or captured), ``operator`` (supervisor mode and its reports).
- ``controller``: ``AtmController``, the model and owner of the one event queue: run loop,
  session, journal, counters, host link, recovery on start, the public API.
- ``session``: the card session record. ``screens``: what the customer sees. ``receipt``,
  ``statement``: printed and shown text. ``cash``: note mix and counters (no I/O).
- ``journal``, ``recovery``, ``saf``, ``hostlink``: the electronic journal, restart recovery,
  the store-and-forward queue and the link to the host. ``config``, ``events``, ``errors``,
  ``diagram``: configuration, what consoles subscribe to, the exception root, the doc generator.
"""

from device.errors import CashError, DeviceConfigError, DeviceError, JournalError
from protocol.masking import install_log_redaction

__all__ = ["CashError", "DeviceConfigError", "DeviceError", "JournalError"]

# Every log line of this package is redacted (track data, PANs, PIN blocks, keys).
install_log_redaction()
