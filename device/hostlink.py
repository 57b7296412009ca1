"""The controller's connection to the host: sign-on with key exchange, MAC'd requests,
reversals through a persistent store-and-forward queue, echo when idle, reconnect with backoff.

``HostLink`` is the one object the controller uses to reach the host. It owns the
``protocol.link.LinkClient`` and everything the link needs besides plain request/response:

* ``ensure_online()``: connect, sign on (0800/001) and receive the working keys (DE 48, under
  the terminal master key): the PIN key goes to the PIN pad through ``on_pin_key``, the MAC key
  stays here. Then drain the store-and-forward queue. True only when all of that worked.
* ``request(message)``: send a request (MAC'd) and return the response, or raise
  ``LinkError``/``LinkTimeout``. Before any 0100/0200 the reversal queue is drained. A 0200
  that gets no valid answer in time (timeout, lost connection, bad MAC from the host) is
  reversed by the link itself (reason 4021); an approval that arrives after its timeout is
  never returned to anyone and is reversed (4006) if it was not already.
* ``queue_reversal(original, dispensed_cents, reason)``: a reversal advice (0420, repeated as
  0421 until a 0430 arrives) for a request the host approved but whose cash did not (all)
  leave. Persisted (``device.saf``) before this returns; drained in order. True when queued
  now, False when that original was already queued or reversed.
* ``on_reversal_queued(original, dispensed_cents, reason)``: called (synchronously, right
  after the advice is persisted) for every reversal the link queues *by itself* (4021, 4006),
  so the controller can journal it (DESIGN invariant 5). Not called for ``queue_reversal``
  calls from outside, whose caller journals them.
* ``pending_reversals()``: how many advices wait.
* ``echo()``: the echo test (0800/301); a background keeper sends one whenever the link has
  been idle for ``LinkTiming.echo_interval`` and reconnects (exponential backoff) when the
  connection is lost, signing on and draining the queue again.
* ``change_keys()``: ask the host for new working keys (0800/161); also done when the host
  answers an echo 88 (an operator forced a key change).
* ``host_stopped``: the host answered 89 (this terminal out of service) or 90 (maintenance)
  to a sign-on, echo or card request: the link counts as signed off and every sign-on is
  tried again (and refused) until the host approves one; the controller shows out-of-service
  meanwhile (docs/protocol.md section 7.5). The host may also say so unasked, with an
  0800/901 (DE 48 the reason): answered 0810/00, same effect; ``stopped`` is set then, so an
  idle controller need not wait for its next echo.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from device.config import DeviceConfig
from device.reversal_policy import moves_money, reversed_when_unanswered
from device.saf import SafQueue
from protocol.errors import LinkError, LinkUnavailable, ProtocolError
from protocol.keyblock import open_key_delivery
from protocol.link import LinkClient, MessageTap
from protocol.mac import TerminalCodec
from protocol.messages import (
    Message,
    Mti,
    NetworkCode,
    format_transmission_time,
    mti_class,
)
from protocol.response_codes import ResponseCode, ReversalReason
from protocol.security import KeyBlock, KeyScheme
from protocol.stan import StanGenerator

__all__ = ["DownReports", "HostLink", "LinkTiming", "PendingReversal", "ReversalReason"]

log = logging.getLogger(__name__)
security_log = logging.getLogger("device.security")

Clock = Callable[[], dt.datetime]

# 0430 codes after which the advice is sent again (the host could not process it yet).
RETRY_CODES = frozenset({ResponseCode.HOST_UNAVAILABLE.value, ResponseCode.MALFUNCTION.value})
_ORIGINAL_ECHOED = ("3", "4", "7", "11", "41", "42", "49")


def _request_key(message: Message) -> tuple[str, str, str]:
    """What ties a 0210 to its 0200: terminal, STAN, transmission time."""
    return (str(message.get("41", "")), str(message.get("11", "")), str(message.get("7", "")))


@dataclass(frozen=True)
class PendingReversal:
    original: Message
    dispensed_cents: int
    reason: str


@dataclass(frozen=True)
class LinkTiming:
    """How the link keeps itself alive. ``key_scheme`` must match the host's configuration
    for this terminal (``TERMINAL_KEY_SCHEMES``)."""

    echo_interval: float = 60.0
    backoff_initial: float = 1.0
    backoff_max: float = 60.0
    key_scheme: KeyScheme = KeyScheme.TDES

    def __post_init__(self) -> None:
        if self.echo_interval <= 0 or not 0 < self.backoff_initial <= self.backoff_max:
            raise ValueError("echo interval and backoff must be positive, initial <= max")


class DownReports:
    """A host that stays down is reported once, then again after growing intervals (30 s,
    1 min, 2 min, ... at most every 10 min), with the attempts so far; and once when it is
    back. The reconnect attempts themselves go on at their own pace."""

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        first_interval: float = 30.0,
        max_interval: float = 600.0,
    ) -> None:
        self._clock = clock
        self._first = first_interval
        self._max = max_interval
        self._since: float | None = None
        self._next = 0.0
        self._interval = first_interval
        self.attempts = 0

    def failed(self, reason: str) -> None:
        now = self._clock()
        self.attempts += 1
        if self._since is None:
            self._since, self._interval = now, self._first
            self._next = now + self._interval
            log.warning("host link not available: %s (retrying; reported again less often)", reason)
        elif now >= self._next:
            self._interval = min(self._interval * 2, self._max)
            self._next = now + self._interval
            log.warning(
                "host link still not available after %d attempts in %.0f s: %s",
                self.attempts,
                now - self._since,
                reason,
            )

    def back(self) -> None:
        if self._since is not None:
            log.warning(
                "host link back after %d failed attempts in %.0f s",
                self.attempts,
                self._clock() - self._since,
            )
        self._since, self.attempts = None, 0


class HostLink:
    def __init__(
        self,
        config: DeviceConfig,
        stan: StanGenerator,
        *,
        clock: Clock | None = None,
        tap: MessageTap | None = None,
        on_pin_key: Callable[[bytes, str], Awaitable[None]] | None = None,
        timing: LinkTiming | None = None,
        saf: SafQueue | None = None,
        on_reversal_queued: Callable[[Message, int, str], None] | None = None,
    ) -> None:
        self.config = config
        self.stan = stan
        self.timing = timing or LinkTiming(
            backoff_initial=min(1.0, config.reconnect_delay), key_scheme=config.key_scheme
        )
        self._clock: Clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self._on_pin_key = on_pin_key
        self.on_reversal_queued = on_reversal_queued
        # Financial requests sent and not timed out (most recent 64): a second answer to one
        # is a duplicate and is ignored.
        self._answered: collections.deque[tuple[str, str, str]] = collections.deque(maxlen=64)
        self._tap = tap
        self._codec = TerminalCodec(self.timing.key_scheme, config.master_key)
        self.client = LinkClient(
            config.host,
            config.port,
            response_timeout=config.response_timeout,
            tap=self._traffic,
            on_unmatched=self._on_unmatched,
            codec=self._codec,
            on_disconnect=self._on_disconnect,
            on_request=self._on_host_request,
            tls=config.tls_context(),
            server_hostname=config.tls_server_name,
        )
        self.saf = saf or SafQueue(config.saf_path)
        self.signed_on = False
        self.host_stopped: ResponseCode | None = None
        self.stopped = asyncio.Event()
        self._answers: set[asyncio.Task[None]] = set()
        self._connect_lock = asyncio.Lock()
        self._drain_lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._keeper: asyncio.Task[None] | None = None
        self._closing = False
        self._last_traffic = time.monotonic()
        self.down_reports = DownReports()
        # How long to wait for the answer to a request: ``response_timeout`` unless whoever
        # runs the ATM knows better (a scenario runner that knows whether its fault injection
        # loses this answer: atm.scenario.patience).
        self.response_timeout: Callable[[Message], float] = lambda _m: config.response_timeout

    # -- state ----------------------------------------------------------------------------
    @property
    def online(self) -> bool:
        return self.signed_on and self.client.connected

    @property
    def reversals(self) -> list[PendingReversal]:
        """The advices waiting in the store-and-forward queue, oldest first."""
        return [
            PendingReversal(dict(e.original), e.dispensed_cents, e.reason)
            for e in self.saf.pending()
        ]

    def pending_reversals(self) -> int:
        return len(self.saf)

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

    # -- connecting -----------------------------------------------------------------------
    async def ensure_online(self) -> bool:
        """Connect, sign on (with key exchange) and drain the reversal queue. False (with a
        log line) when any of it fails; the keeper keeps trying in the background."""
        async with self._connect_lock:
            if not self.client.connected:
                self.signed_on = False
                self._codec.set_mac_key(None)
                try:
                    await self.client.connect()
                except LinkError as exc:
                    self.down_reports.failed(str(exc))
                    self._start_keeper()
                    return False
                self.down_reports.back()
            if not self.signed_on and not await self._exchange_keys(NetworkCode.SIGN_ON):
                self._start_keeper()
                return False
        self._start_keeper()
        return await self.drain()

    async def change_keys(self) -> bool:
        """Ask the host for new working keys (0800/161)."""
        if not self.online:
            return await self.ensure_online()
        async with self._connect_lock:
            return await self._exchange_keys(NetworkCode.KEY_CHANGE)

    async def _exchange_keys(self, code: NetworkCode) -> bool:
        message = self.base_message(Mti.NETWORK_REQUEST)
        message["70"] = code
        message["48"] = self._codec.scheme.value
        try:
            response = await self.client.request(message, self.response_timeout(message))
        except LinkError as exc:
            log.warning("sign-on failed: %s", exc)
            return False
        if response.get("39") != ResponseCode.APPROVED:
            self._note_stop(response)
            log.warning("host refused sign-on with response code %s", response.get("39"))
            return False
        self.host_stopped = None
        self.stopped.clear()
        try:
            keys = open_key_delivery(
                response.get("48", ""),
                self.config.master_key,
                self._codec.scheme,
                self.config.key_block,
            )
            # The PIN pad loads its key in the pad's own layout (encrypted under the TMK, with
            # its check value), whatever layout the link used.
            block = KeyBlock.build(keys, self.config.master_key)
        except ProtocolError as exc:
            security_log.error("security: working keys from the host rejected: %s", exc)
            await self.client.close()
            return False
        if self._on_pin_key is not None:
            try:
                await self._on_pin_key(block.tpk_encrypted, block.tpk_kcv)
            except Exception as exc:
                security_log.error("security: the PIN pad refused the working key: %s", exc)
                await self.client.close()
                return False
        self._codec.set_mac_key(keys.tak)
        self.signed_on = True
        log.info(
            "signed on to %s:%d with %s keys", self.config.host, self.config.port, keys.scheme.name
        )
        return True

    # -- requests -------------------------------------------------------------------------
    async def request(self, message: Message) -> Message:
        mti = message["t"]
        if mti_class(mti) in (Mti.AUTHORIZATION_REQUEST, Mti.FINANCIAL_REQUEST):
            if not self.online and not await self.ensure_online():
                raise LinkUnavailable("the host link is down")
            if not await self.drain():
                raise LinkUnavailable("reversals are waiting and the host does not take them")
        if mti == Mti.FINANCIAL_REQUEST:
            # Remembered before the answer can arrive: a second answer to this request (the
            # host saw it twice) may be read right behind the first, and is not a late approval.
            self._answered.append(_request_key(message))
        try:
            response = await self.client.request(message, self.response_timeout(message))
        except LinkUnavailable:
            self._forget(message)
            raise
        except LinkError as exc:
            self._forget(message)
            if reversed_when_unanswered(mti, message.get("3", "")):
                log.warning("no valid answer to 0200 STAN %s (%s)", message.get("11"), exc)
                self._reverse_by_itself(message, ReversalReason.TIMEOUT)
            raise
        self._note_stop(response)
        return response

    def _note_stop(self, response: Message) -> None:
        """89/90 from the host: stop serving until a sign-on is approved again."""
        code = ResponseCode.parse(response.get("39", ""))
        if code is not None and code.out_of_service:
            if self.host_stopped is None:
                log.warning("host put this terminal out of service (%s %s)", code, code.text)
            self.host_stopped = code
            self.signed_on = False
            self.stopped.set()

    def _forget(self, message: Message) -> None:
        """Not answered in time: an approval that comes later is late, not a duplicate."""
        with contextlib.suppress(ValueError):
            self._answered.remove(_request_key(message))

    def queue_reversal(self, original: Message, dispensed_cents: int, reason: str) -> bool:
        """Persist a reversal advice for ``original`` and have it sent as soon as possible.
        False (nothing queued) when that original is already queued or was reversed."""
        entry = self.saf.add(
            original, dispensed_cents, reason, format_transmission_time(self._clock())
        )
        if entry is None:
            log.info("reversal of STAN %s is already queued or done", original.get("11"))
            return False
        log.warning(
            "reversal queued for STAN %s (dispensed %d, reason %s)",
            original.get("11"),
            dispensed_cents,
            reason,
        )
        self._wake.set()
        return True

    def _reverse_by_itself(self, original: Message, reason: str) -> None:
        """A reversal the link decides on (no answer in time, late approval), reported to
        ``on_reversal_queued`` once it is persisted."""
        kept = {k: v for k, v in original.items() if k in ("t", *_ORIGINAL_ECHOED)}
        if not self.queue_reversal(kept, 0, reason) or self.on_reversal_queued is None:
            return
        try:
            self.on_reversal_queued(kept, 0, reason)
        except Exception:
            # The advice is queued whatever the listener does; it must not break the link.
            log.exception("on_reversal_queued failed for STAN %s", original.get("11"))

    async def drain(self) -> bool:
        """Send every queued advice, oldest first, each until a 0430 answers it. True when
        the queue is empty."""
        async with self._drain_lock:
            while (entry := self.saf.head()) is not None:
                if not self.online:
                    return False
                advice = entry.advice()  # 0420 the first time, 0421 ever after
                self.saf.record_attempt(entry.id)
                try:
                    response = await self.client.request(advice, self.response_timeout(advice))
                except LinkError as exc:
                    log.warning("reversal advice STAN %s not answered: %s", advice["11"], exc)
                    return False
                code = response.get("39", "")
                if code in RETRY_CODES:
                    log.warning("host answered reversal STAN %s with %s", advice["11"], code)
                    return False
                self.saf.acknowledge(entry.id, code)
                log.info("reversal of STAN %s acknowledged (%s)", advice["11"], code)
            return True

    async def echo(self) -> bool:
        if not self.online:
            return await self.ensure_online()
        message = self.base_message(Mti.NETWORK_REQUEST)
        message["70"] = NetworkCode.ECHO
        try:
            response = await self.client.request(message, self.response_timeout(message))
        except LinkError as exc:
            log.warning("echo test failed: %s", exc)
            self.signed_on = False
            await self.client.close()
            return False
        if response.get("39") == ResponseCode.KEY_CHANGE_REQUIRED:
            log.warning("host asked for a key change")
            async with self._connect_lock:
                return await self._exchange_keys(NetworkCode.KEY_CHANGE)
        self._note_stop(response)
        return response.get("39") == ResponseCode.APPROVED

    async def close(self) -> None:
        # The flag as well as cancel(): asyncio.wait_for in 3.11 can swallow a cancellation
        # that races with the completion of what it waits for.
        self._closing = True
        if self._keeper is not None:
            self._keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keeper
            self._keeper = None
        self.signed_on = False
        await self.client.close()

    # -- callbacks and the keeper ---------------------------------------------------------
    def _traffic(self, direction: str, message: Message) -> None:
        self._last_traffic = time.monotonic()
        if self._tap is not None:
            self._tap(direction, message)

    def _on_unmatched(self, message: Message) -> None:
        mti = message.get("t", "")
        if (
            mti == Mti.FINANCIAL_RESPONSE
            and message.get("39") == ResponseCode.APPROVED
            and message.get("41") == self.config.terminal_id
            and moves_money(message.get("3", ""))
        ):
            if _request_key(message) in self._answered:
                log.info("second answer to STAN %s (a duplicate) ignored", message.get("11"))
                return
            log.warning("approval for STAN %s arrived too late", message.get("11"))
            original = {k: v for k, v in message.items() if k in _ORIGINAL_ECHOED}
            original["t"] = Mti.FINANCIAL_REQUEST
            self._reverse_by_itself(original, ReversalReason.LATE_RESPONSE)
        else:
            log.info("ignoring unmatched %s STAN %s", mti, message.get("11"))

    def _on_host_request(self, message: Message) -> None:
        """A host-initiated 0800: 901 (out of service, DE 48 the reason) is obeyed and
        answered 0810/00; any other code is answered 12 and changes nothing."""
        code = message.get("70", "")
        known = code == NetworkCode.OUT_OF_SERVICE
        reason = ResponseCode.parse(message.get("48", ""))
        if reason is None or not reason.out_of_service:
            reason = ResponseCode.TERMINAL_OUT_OF_SERVICE
        if known:
            self._note_stop({"39": reason})
        reply: Message = {k: v for k, v in message.items() if k in ("7", "11", "41", "70")}
        reply["t"] = Mti.NETWORK_RESPONSE
        reply["39"] = ResponseCode.APPROVED if known else ResponseCode.INVALID_TRANSACTION
        task = asyncio.create_task(self._answer(reply), name="hostlink-answer")
        self._answers.add(task)
        task.add_done_callback(self._answers.discard)

    async def _answer(self, reply: Message) -> None:
        try:
            await self.client.send(reply)
        except LinkError as exc:
            log.info("could not answer the host's %s: %s", reply.get("70"), exc)

    def _on_disconnect(self, error: LinkError) -> None:
        if self.signed_on:
            log.warning("host link lost: %s", error)
        self.signed_on = False
        self._codec.set_mac_key(None)
        self._wake.set()

    def _start_keeper(self) -> None:
        if self._closing:
            return
        if self._keeper is None or self._keeper.done():
            self._keeper = asyncio.create_task(self._keep(), name="hostlink-keeper")

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), max(0.0, seconds))
        self._wake.clear()

    async def _keep(self) -> None:
        """Reconnect with exponential backoff, drain the queue, echo when idle."""
        backoff = self.timing.backoff_initial
        while not self._closing:
            if not self.online or len(self.saf):
                if await self.ensure_online():
                    backoff = self.timing.backoff_initial
                else:
                    # Jitter for the reconnect back-off, not a secret.
                    await asyncio.sleep(backoff * random.uniform(0.8, 1.0))  # nosec B311
                    backoff = min(backoff * 2, self.timing.backoff_max)
                    continue
            idle = time.monotonic() - self._last_traffic
            if idle >= self.timing.echo_interval:
                await self.echo()
                continue
            await self._pause(self.timing.echo_interval - idle)
