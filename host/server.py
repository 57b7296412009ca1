"""The host's TCP server for the ISO-8583 link.

Each connection has its own framer. A frame that does not decode gets a format-error response
(39=30) when its MTI is a readable request, else it is dropped with a log line; a bad length
prefix closes that connection. Nothing a terminal sends can stop the server or delay other
terminals: services run in a worker pool, off the event loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import datetime as dt
import logging
from collections.abc import Callable

from host.services import AuthorizationService, CardRequest, Outcome
from protocol.errors import FrameError, MessageError, ProtocolError
from protocol.framing import Framer, encode_frame
from protocol.link import MessageTap
from protocol.messages import (
    Message,
    Mti,
    NetworkCode,
    TransactionType,
    decode,
    encode,
    format_balances,
    is_request,
    parse_amount,
    parse_processing_code,
    response_mti,
)
from protocol.response_codes import ResponseCode

__all__ = ["LinkServer"]

log = logging.getLogger(__name__)

_ECHOED = ("2", "3", "4", "7", "11", "12", "13", "37", "41", "42", "49", "70", "102", "103")
_REQUIRED = {"0100": ("2", "3", "7", "11", "41"), "0200": ("2", "3", "4", "7", "11", "41")}


class LinkServer:
    def __init__(
        self,
        service: AuthorizationService,
        executor: concurrent.futures.Executor,
        *,
        max_frame: int = 4096,
        tap: MessageTap | None = None,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        self._service = service
        self._executor = executor
        self._max_frame = max_frame
        self._tap = tap
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self._server: asyncio.Server | None = None
        self._connections: dict[asyncio.Task[None], asyncio.StreamWriter] = {}

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self, host: str, port: int) -> None:
        self._server = await asyncio.start_server(self._serve, host, port)
        log.info("link server listening on %s:%d", host, self.port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._connections.values()):
                writer.close()
            await asyncio.gather(*self._connections, return_exceptions=True)
            await self._server.wait_closed()
            self._server = None

    async def serve_forever(self) -> None:
        assert self._server is not None
        await self._server.serve_forever()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections[task] = writer
        peer = writer.get_extra_info("peername")
        framer = Framer(self._max_frame)
        write_lock = asyncio.Lock()
        handlers: set[asyncio.Task[None]] = set()
        try:
            while data := await reader.read(65536):
                for frame in framer.feed(data):
                    handler = asyncio.create_task(self._handle_frame(frame, writer, write_lock))
                    handlers.add(handler)
                    handler.add_done_callback(handlers.discard)
        except FrameError as exc:
            log.warning("closing connection from %s: %s", peer, exc)
        except (ConnectionError, OSError) as exc:
            log.info("connection from %s lost: %s", peer, exc)
        finally:
            if handlers:
                await asyncio.gather(*handlers, return_exceptions=True)
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            self._connections.pop(task, None)

    async def _handle_frame(
        self, frame: bytes, writer: asyncio.StreamWriter, write_lock: asyncio.Lock
    ) -> None:
        try:
            request = decode(frame)
        except MessageError as exc:
            log.warning("format error in frame (%s); field %s", exc, exc.field)
            if exc.mti is None or not exc.mti.isdigit() or not is_request(exc.mti):
                return
            response: Message | None = {"t": response_mti(exc.mti), "39": ResponseCode.FORMAT_ERROR}
        else:
            if self._tap:
                self._tap("recv", request)
            response = await self._respond(request)
        if response is None:
            return
        if self._tap:
            self._tap("send", response)
        async with write_lock:
            try:
                writer.write(encode_frame(encode(response)))
                await writer.drain()
            except (ConnectionError, OSError) as exc:
                log.info("could not send %s: %s", response["t"], exc)

    async def _respond(self, request: Message) -> Message | None:
        mti = request["t"]
        if not is_request(mti):
            log.warning("ignoring unsolicited %s", mti)
            return None
        response: Message = {k: v for k, v in request.items() if k in _ECHOED}
        response["t"] = response_mti(mti)
        try:
            if mti == Mti.NETWORK_REQUEST:
                response["39"] = self._network(request)
                return response
            if mti not in _REQUIRED:
                response["39"] = ResponseCode.INVALID_TRANSACTION
                return response
            card_request = self._card_request(request)
        except ProtocolError as exc:
            log.warning("format error in %s STAN %s: %s", mti, request.get("11"), exc)
            response["39"] = ResponseCode.FORMAT_ERROR
            return response
        try:
            loop = asyncio.get_running_loop()
            outcome = await loop.run_in_executor(
                self._executor, self._service.authorize, card_request
            )
        except Exception:
            log.exception("service failure on %r", card_request)
            response["39"] = ResponseCode.MALFUNCTION
            return response
        return self._fill(response, outcome)

    @staticmethod
    def _network(request: Message) -> str:
        code = request.get("70", "")
        if code in (NetworkCode.SIGN_ON, NetworkCode.SIGN_OFF, NetworkCode.ECHO):
            log.info("terminal %s network code %s", request.get("41", "?"), code)
            return ResponseCode.APPROVED
        return ResponseCode.INVALID_TRANSACTION

    @staticmethod
    def _card_request(request: Message) -> CardRequest:
        mti = request["t"]
        missing = [f for f in _REQUIRED[mti] if not request.get(f)]
        if missing:
            raise MessageError(f"missing field(s) {', '.join(missing)}", field=missing[0])
        transaction, from_account, to_account = parse_processing_code(request["3"])
        if mti == Mti.AUTHORIZATION_REQUEST and transaction is not TransactionType.BALANCE_INQUIRY:
            raise MessageError("0100 carries only balance inquiries", field="3")
        pin_hex = request.get("52")
        try:
            pin_block = bytes.fromhex(pin_hex) if pin_hex else None
        except ValueError as exc:
            raise MessageError("field 52 is not hexadecimal", field="52") from exc
        new_pin_hex = request.get("48") if transaction is TransactionType.PIN_CHANGE else None
        try:
            new_pin_block = bytes.fromhex(new_pin_hex) if new_pin_hex else None
        except ValueError as exc:
            raise MessageError("field 48 (new PIN block) is not hexadecimal", field="48") from exc
        track2 = request.get("35", "")
        expiry = track2.replace("D", "=").partition("=")[2][:4] or None
        return CardRequest(
            mti_class=mti,
            terminal_id=request["41"],
            stan=request["11"],
            transmission_time=request["7"],
            pan=request["2"],
            transaction=transaction,
            from_account=from_account,
            to_account=to_account,
            amount_cents=parse_amount(request["4"]) if "4" in request else 0,
            pin_block=pin_block,
            expiry=expiry,
            currency=request.get("49", "840"),
            to_account_number=request.get("103"),
            new_pin_block=new_pin_block,
        )

    @staticmethod
    def _fill(response: Message, outcome: Outcome) -> Message:
        response["39"] = outcome.response_code
        response["37"] = outcome.rrn
        if outcome.auth_code:
            response["38"] = outcome.auth_code
        if outcome.balances:
            response["54"] = format_balances(list(outcome.balances))
        return response
