"""The bench a front panel stands on: a host (embedded in this process by default, or a
running one), a relay on the host link (for link faults), the four devices by URL (as
``atm device`` takes them), the controller, and the ``FrontPanel`` that observes it.

``Bench.start()`` raises ``BenchError`` with a message a person can act on when the host
cannot be reached, a device URL is wrong, a device does not answer or a simulator's control
channel is not there. ``Bench.close()`` first brings the ATM to rest (``FrontPanel.settle``:
no card left inside, cash not taken retracted and reversed), lets queued reversals reach the
host, then stops everything in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import shutil
import ssl
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from atm.database import display_url
from atm.demo import HoldingRelay
from atm.devices import KINDS, DeviceKit, open_kit
from atm.frontpanel.model import FrontPanel, LinkControls
from atm.frontpanel.sides import DeviceSide, HardwareSide, LocalSide, RemoteSide
from device.config import DeviceConfig
from device.controller import AtmController
from device.errors import DeviceConfigError
from device.states import State
from host.app import Host
from host.config import HostConfig
from protocol.tls import TlsError, client_context

__all__ = ["Bench", "BenchError", "BenchOptions", "kit_sides", "parse_address"]

PROBE_TIMEOUT = 3.0


class BenchError(Exception):
    """The bench cannot be set up as asked; the message says what to do."""


def parse_address(text: str, what: str) -> tuple[str, int]:
    """``HOST:PORT`` (or ``:PORT``, ``PORT``: on 127.0.0.1)."""
    host, sep, port = text.strip().rpartition(":")
    if not sep:
        host, port = "", text.strip()
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise BenchError(f"{what} is HOST:PORT (e.g. 127.0.0.1:8583), got {text!r}")
    return host or "127.0.0.1", int(port)


async def kit_sides(
    kit: DeviceKit, urls: Mapping[str, str], controls: Mapping[str, str]
) -> dict[str, DeviceSide]:
    """The customer's side of each device of ``kit`` (``urls`` as asked, kind -> URL):
    in this process for ``sim`` and ``pty``, an external simulator's control channel where
    ``controls`` names one (kind -> HOST:PORT), else the hardware itself. ``BenchError``
    when a control channel is not there."""
    sides: dict[str, DeviceSide] = {}
    devices = kit.by_kind()
    for kind in KINDS:
        asked = urls.get(kind, "sim")
        url = kit.urls[kind]
        if asked == "sim":
            sides[kind] = LocalSide(kind, "sim", devices[kind])
        elif kind in kit.simulators:
            sides[kind] = LocalSide(kind, f"pty {url}", kit.simulators[kind])
        elif kind in controls:
            host, port = parse_address(controls[kind], f"--control {kind}")
            remote = RemoteSide(kind, url, host, port)
            try:
                await remote.connect()
            except OSError as exc:
                raise BenchError(
                    f"{exc} (start the simulator with `atm sim {kind}`; it prints its "
                    "control channel)"
                ) from exc
            sides[kind] = remote
        else:
            sides[kind] = HardwareSide(kind, url)
    if kit.devices.depository is not None:
        sides["depository"] = LocalSide("depository", "sim", kit.devices.depository)
    return sides


@dataclass(frozen=True)
class BenchOptions:
    host: str | None = None  # HOST:PORT of a running host; None: embedded host
    urls: Mapping[str, str] = field(default_factory=dict)  # device kind -> URL
    controls: Mapping[str, str] = field(default_factory=dict)  # kind -> control HOST:PORT
    work_dir: Path | None = None  # None: a fresh temporary directory
    # The embedded host's database; None: a fresh SQLite file in the work directory.
    database_url: str | None = None
    device: Mapping[str, Any] = field(default_factory=dict)  # DeviceConfig overrides
    # TLS to a running host (--host): the CA its certificate must chain to, this terminal's
    # client certificate and key for mutual TLS, the name the host's certificate must carry
    # (default the host's address). Paths or PEM text, as ``protocol.tls`` reads them.
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_server_name: str | None = None
    start_timeout: float = 15.0
    # The controller's clock (tests inject one: the "more time?" countdown follows it).
    clock: Callable[[], dt.datetime] | None = None


class Bench:
    def __init__(
        self,
        options: BenchOptions,
        host_config: HostConfig | None = None,
        *,
        say: Callable[[str], None] = lambda text: None,
    ) -> None:
        self.options = options
        self.host_config = host_config
        self.say = say
        self.host: Host | None = None
        self.relay: HoldingRelay | None = None
        self.kit: DeviceKit | None = None
        self.controller: AtmController | None = None
        self.panel: FrontPanel | None = None
        self.work_dir: Path | None = None
        self._temporary = False
        self._runner: asyncio.Task[None] | None = None
        self._host_address: tuple[str, int] | None = None

    async def start(self) -> FrontPanel:
        try:
            return await self._start()
        except BaseException:
            await self._teardown()
            raise

    async def _start(self) -> FrontPanel:
        options = self.options
        for kind in [*options.urls, *options.controls]:
            if kind not in KINDS:
                raise BenchError(f"unknown device {kind!r}; devices: {', '.join(KINDS)}")
        if options.work_dir is None:
            self.work_dir = Path(tempfile.mkdtemp(prefix="atm-console-"))
            self._temporary = True
        else:
            self.work_dir = options.work_dir
            self.work_dir.mkdir(parents=True, exist_ok=True)
        tls = self._tls()
        host, port = await self._host(tls)
        self._host_address = (host, port)
        self.relay = HoldingRelay(host, port, tls=tls, server_name=options.tls_server_name)
        relay_port = await self.relay.start()
        try:
            config = DeviceConfig(
                **{
                    "state_dir": self.work_dir / "device",
                    **dict(options.device),
                    "host": "127.0.0.1",
                    "port": relay_port,
                }
            )
        except (DeviceConfigError, TypeError) as exc:
            raise BenchError(f"device configuration: {exc}") from exc
        try:
            self.kit = await open_kit(dict(options.urls), config, depository=True)
        except (ValueError, OSError) as exc:
            raise BenchError(f"device URL: {exc} (see `atm device --help`)") from exc
        if any(url != "sim" for url in self.kit.urls.values()):
            problems = await self.kit.check()
            if problems:
                raise BenchError("\n".join(f"device not answering: {p}" for p in problems))
        sides = await self._sides()
        self.controller = AtmController(config, self.kit.devices, clock=options.clock)
        relay = self.relay
        embedded = self.host
        self.panel = FrontPanel(
            self.controller,
            sides,
            link=LinkControls(
                host_down=embedded.server.close if embedded else None,
                host_up=(lambda: self._restart_host()) if embedded else None,
                set_holding=lambda on: setattr(relay, "holding", on),
                set_replies_held=lambda on: relay.hold_replies() if on else relay.release_replies(),
                set_reply_delay=lambda seconds: setattr(relay, "reply_delay", seconds),
            ),
            balance=embedded.balance if embedded else None,
            host_label=f"{host}:{port}",
        )
        self._runner = asyncio.create_task(self.controller.run())
        panel = self.panel
        try:
            await panel.wait_for(
                lambda p: p.state != State.out_of_service.value or self._runner_done(),
                options.start_timeout,
            )
        except TimeoutError:
            panel.notify(
                f"The ATM has not signed on to the host at {host}:{port} yet: it stays out of "
                "service and retries (a wrong TERMINAL_MASTER_KEY or key scheme is refused by "
                "the host; see the link log)",
                error=True,
            )
        if self._runner.done():
            error = self._runner.exception()
            raise BenchError(f"the ATM stopped at start: {error}")
        return panel

    def _runner_done(self) -> bool:
        return self._runner is not None and self._runner.done()

    def _tls(self) -> ssl.SSLContext | None:
        options = self.options
        if not options.tls_ca:
            if options.tls_cert or options.tls_key or options.tls_server_name:
                raise BenchError(
                    "a terminal certificate or server name needs the host CA (--tls-ca)"
                )
            return None
        if options.host is None:
            raise BenchError(
                "--tls-ca is for a running host (--host HOST:PORT); the host inside the "
                "console is reached on this process's loopback without TLS"
            )
        try:
            return client_context(options.tls_ca, options.tls_cert, options.tls_key)
        except TlsError as exc:
            raise BenchError(str(exc)) from exc

    async def _host(self, tls: ssl.SSLContext | None = None) -> tuple[str, int]:
        if self.options.host is not None:
            host, port = parse_address(self.options.host, "--host")
            try:  # the allow-list: the ATM itself talks to the relay on loopback
                DeviceConfig(**{**dict(self.options.device), "host": host})
            except (DeviceConfigError, TypeError) as exc:
                raise BenchError(f"device configuration: {exc}") from exc
            name = (self.options.tls_server_name or host) if tls else None
            try:
                async with asyncio.timeout(PROBE_TIMEOUT):
                    _, writer = await asyncio.open_connection(
                        host, port, ssl=tls, server_hostname=name
                    )
            except ssl.SSLError as exc:
                raise BenchError(
                    f"TLS handshake with the host at {host}:{port} failed: "
                    f"{exc.reason or exc} (check --tls-ca, --tls-server-name and, for mutual "
                    "TLS, --tls-cert/--tls-key)"
                ) from exc
            except (OSError, TimeoutError) as exc:
                why = exc.strerror if isinstance(exc, OSError) and exc.strerror else "no answer"
                raise BenchError(
                    f"cannot reach the host at {host}:{port} ({why}). Start one with "
                    "`atm host` (its LINK_PORT, 8583 by default), or leave out --host to run "
                    "a host inside the console"
                ) from exc
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            self.say(f"host at {host}:{port}{' over TLS' if tls else ''}")
            return host, port
        assert self.work_dir is not None
        base = self.host_config or HostConfig.from_env({})
        url = self.options.database_url or f"sqlite:///{self.work_dir / 'host.db'}"
        config = dataclasses.replace(base, database_url=url)
        self.host = Host(config)
        self.say(f"host database {display_url(url)} (migrating and seeding)")
        await asyncio.to_thread(self.host.upgrade_and_seed)
        port = await self.host.start("127.0.0.1", 0)
        self.say(f"host listening on 127.0.0.1:{port}")
        return "127.0.0.1", port

    async def _restart_host(self) -> None:
        assert self.host is not None and self._host_address is not None
        await self.host.server.start(*self._host_address)

    async def _sides(self) -> dict[str, DeviceSide]:
        assert self.kit is not None
        return await kit_sides(self.kit, self.options.urls, self.options.controls)

    async def close(self) -> list[str]:
        """Bring the ATM to rest, deliver queued reversals, stop everything; a few lines
        saying how it ended."""
        lines: list[str] = []
        panel, controller = self.panel, self.controller
        if panel is not None and controller is not None and not self._runner_done():
            if not await panel.settle():
                lines.append(f"the ATM did not come to rest (state {panel.state})")
            await self._deliver_reversals(controller)
            lines.extend(panel.summary())
        await self._teardown()
        return lines

    async def _deliver_reversals(self, controller: AtmController, timeout: float = 10.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        link = controller.link
        while link.pending_reversals() and loop.time() < deadline:
            if not await link.ensure_online():
                break

    async def _teardown(self) -> None:
        if self.panel is not None:
            self.panel.detach()
        if self._runner is not None:
            # transitions 0.9.3 swallows a CancelledError that lands inside a trigger: repeat
            # until the task has ended.
            while not self._runner.done():
                self._runner.cancel()
                await asyncio.wait({self._runner}, timeout=0.1)
            with contextlib.suppress(asyncio.CancelledError, Exception):
                self._runner.result()
            self._runner = None
        if self.panel is not None:
            for side in self.panel.sides.values():
                await side.close()
        if self.relay is not None:
            await self.relay.close()
            self.relay = None
        if self.kit is not None:
            self.kit.close()
            self.kit = None
        if self.host is not None:
            await self.host.close()
            self.host = None
        if self._temporary and self.work_dir is not None:
            shutil.rmtree(self.work_dir, ignore_errors=True)
            self._temporary = False
