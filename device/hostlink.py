"""The controller's connection to the host: sign-on, requests, reversals.

``HostLink`` is the one object the controller uses to reach the host. It owns the
``protocol.link.LinkClient`` and everything the link needs besides plain request/response:

* ``ensure_online()``: connect and sign on (0800/001); later also receive working keys and load
  the PIN key into the PIN pad through ``on_pin_key``.
* ``request(message)``: send a financial or inquiry request and return the response, or raise
  ``LinkError``/``LinkTimeout``. A financial request that timed out, or whose approval arrives
  too late, is reversed by the link itself (the controller never sees that response).
* ``queue_reversal(original, dispensed_cents, reason)``: a reversal advice (0420, repeated as
  0421 until a 0430 arrives) for a request the host approved but whose cash did not (all) leave.
  Store-and-forward: persisted before this returns, drained in order before any new financial
  request.
* ``echo()``: the idle-time echo test (0800/301).

This first version keeps the reversal queue in memory and sends each advice once; the link
issue makes it persistent (``DeviceConfig.saf_path``), MAC'd and repeated.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from device.config import DeviceConfig
from protocol.errors import LinkError
from protocol.link import LinkClient, MessageTap
from protocol.messages import Message, Mti, NetworkCode, format_transmission_time
from protocol.response_codes import ResponseCode
from protocol.stan import StanGenerator

__all__ = ["HostLink", "PendingReversal", "ReversalReason"]

log = logging.getLogger(__name__)

Clock = Callable[[], dt.datetime]


class ReversalReason:
    """ISO 1993 reversal reason codes (jPOS-CMF) we use."""

    PARTIAL = "4004"
    LATE_RESPONSE = "4006"
    NO_CASH = "4017"
    CASH_NOT_TAKEN = "4018"
    TIMEOUT = "4021"


@dataclass(frozen=True)
class PendingReversal:
    original: Message
    dispensed_cents: int
    reason: str


class HostLink:
    def __init__(
        self,
        config: DeviceConfig,
        stan: StanGenerator,
        *,
        clock: Clock | None = None,
        tap: MessageTap | None = None,
        on_pin_key: Callable[[bytes, str], Awaitable[None]] | None = None,
    ) -> None:
        self.config = config
        self.stan = stan
        self._clock: Clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self._on_pin_key = on_pin_key
        self.client = LinkClient(
            config.host, config.port, response_timeout=config.response_timeout, tap=tap
        )
        self.signed_on = False
        self.reversals: list[PendingReversal] = []

    @property
    def online(self) -> bool:
        return self.signed_on and self.client.connected

    def base_message(self, mti: str, stan: str | None = None) -> Message:
        """The header fields every request from this terminal carries."""
        now = self._clock()
        return {
            "t": mti,
            "7": format_transmission_time(now),
            "11": stan or self.stan.next(),
            "12": now.strftime("%H%M%S"),
            "13": now.strftime("%m%d"),
            "41": self.config.terminal_id,
            "42": self.config.acceptor_id,
        }

    async def ensure_online(self) -> bool:
        """Connect and sign on if needed. False (with a log line) when the host is not there."""
        if self.online:
            return True
        try:
            if not self.client.connected:
                await self.client.connect()
            message = self.base_message(Mti.NETWORK_REQUEST)
            message["70"] = NetworkCode.SIGN_ON
            response = await self.client.request(message)
        except LinkError as exc:
            log.warning("host link not available: %s", exc)
            self.signed_on = False
            return False
        self.signed_on = response.get("39") == ResponseCode.APPROVED
        return self.signed_on

    async def echo(self) -> bool:
        message = self.base_message(Mti.NETWORK_REQUEST)
        message["70"] = NetworkCode.ECHO
        try:
            response = await self.client.request(message)
        except LinkError:
            self.signed_on = False
            return False
        return response.get("39") == ResponseCode.APPROVED

    async def request(self, message: Message) -> Message:
        return await self.client.request(message)

    def queue_reversal(self, original: Message, dispensed_cents: int, reason: str) -> None:
        self.reversals.append(PendingReversal(dict(original), dispensed_cents, reason))
        log.warning(
            "reversal needed for STAN %s (dispensed %d, reason %s)",
            original.get("11"),
            dispensed_cents,
            reason,
        )

    async def close(self) -> None:
        self.signed_on = False
        await self.client.close()
