"""The clients besides ``atm device`` over TLS on real sockets: the console's bench (front
panel, relay to a running host) and the fleet, both against a host that requires client
certificates; the console's refusals (a host from another CA, TLS options without a running
host, a host off the allow-list) are one clear line each."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from atm.certs import DevPki, write_dev_pki
from atm.cli import build_parser, main
from atm.commands.console import _options
from atm.commands.fleet import FleetTls, run_fleet
from atm.frontpanel import Bench, BenchError, BenchOptions, FrontPanel
from host.app import Host
from host.bank.models import LinkRequest
from host.config import HostConfig
from host.link.config import LinkConfig, LinkTls
from tests.host.link_helpers import start_host

ALICE_CHECKING = "1000-0001-0001"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> DevPki:
    return write_dev_pki(tmp_path_factory.mktemp("pki"), ["ATM00001", "ATM00002"])


@pytest.fixture
async def host(host_config: HostConfig, pki: DevPki) -> AsyncIterator[Host]:
    tls = LinkTls(str(pki.host_cert), str(pki.host_key), str(pki.ca))  # mutual TLS
    host = await start_host(host_config, LinkConfig(tls=tls))
    yield host
    await host.close()


def _tls(pki: DevPki, terminal: str = "ATM00001") -> dict[str, Any]:
    return {
        "tls_ca": str(pki.ca),
        "tls_cert": str(pki.terminal_cert(terminal)),
        "tls_key": str(pki.terminal_key(terminal)),
    }


def on(screen_id: str) -> Any:
    return lambda p: p.screen is not None and p.screen.id == screen_id


async def _withdraw_100(panel: FrontPanel) -> None:
    await panel.wait_for(on("welcome"))
    await panel.insert_card("alice")
    await panel.wait_for(on("enter_pin"))
    await panel.type_pin("1234")
    await panel.wait_for(on("main_menu"))
    await panel.press("F1")  # withdrawal
    await panel.wait_for(on("select_account"))
    await panel.press("F1")  # checking
    await panel.wait_for(on("select_amount"))
    await panel.press("F4")  # $100
    await panel.wait_for(on("take_cash"))
    await panel.take_cash()
    await panel.wait_for(on("take_card"))
    await panel.take_card()
    await panel.wait_for(on("welcome"))


async def test_the_console_withdraws_from_a_running_host_over_mutual_tls(host, pki, tmp_path):
    options = BenchOptions(host=f"127.0.0.1:{host.server.port}", work_dir=tmp_path, **_tls(pki))
    bench = Bench(options)
    panel = await bench.start()
    try:
        assert bench.relay is not None and bench.relay.tls is not None
        await _withdraw_100(panel)
    finally:
        await bench.close()
    # The host requires client certificates and checks DE 41 against them: the withdrawal
    # went through the relay's TLS connection with ATM00001's certificate.
    assert host.balance(ALICE_CHECKING) == 515_000


async def test_the_console_names_a_host_from_another_ca(host, tmp_path):
    other = write_dev_pki(tmp_path / "other", ["ATM00001"])
    bench = Bench(
        BenchOptions(host=f"127.0.0.1:{host.server.port}", work_dir=tmp_path, **_tls(other))
    )
    with pytest.raises(BenchError) as refused:
        await bench.start()
    message = str(refused.value)
    assert message.startswith(f"TLS handshake with the host at 127.0.0.1:{host.server.port} failed")
    assert "--tls-ca" in message


async def test_console_tls_options_need_a_running_host_and_a_ca(pki, tmp_path):
    with pytest.raises(BenchError, match="--tls-ca is for a running host"):
        await Bench(BenchOptions(work_dir=tmp_path, tls_ca=str(pki.ca))).start()
    with pytest.raises(BenchError, match="needs the host CA"):
        await Bench(BenchOptions(host="127.0.0.1:1", work_dir=tmp_path, tls_cert="x")).start()


async def test_the_console_refuses_a_host_off_the_allow_list(tmp_path):
    bench = Bench(BenchOptions(host="bank.example.com:8583", work_dir=tmp_path))
    with pytest.raises(BenchError, match=r"'bank\.example\.com' is not on the allow-list"):
        await bench.start()


def test_console_command_line_carries_the_tls_options(pki):
    args = build_parser().parse_args(
        ["console", "--host", "atm-host:8583", "--allow-host", "atm-host",
         "--tls-ca", str(pki.ca), "--tls-cert", str(pki.terminal_cert("ATM00001")),
         "--tls-key", str(pki.terminal_key("ATM00001")), "--tls-server-name", "localhost"]
    )  # fmt: skip
    options = _options(args)
    assert (options.tls_ca, options.tls_server_name) == (str(pki.ca), "localhost")
    assert options.tls_cert == str(pki.terminal_cert("ATM00001"))
    assert "atm-host" in options.device["allowed_hosts"]


async def test_a_fleet_runs_over_mutual_tls(host, pki, tmp_path):
    report = await run_fleet(
        2, "127.0.0.1", host.server.port, 0.0, "balance-bob", tmp_path / "fleet",
        sessions_each=1, tls=FleetTls(str(pki.ca), pki.directory),
    )  # fmt: skip
    assert report.sessions >= 2
    with host.sessions() as session:
        answered = session.scalars(
            select(LinkRequest.terminal_id).where(LinkRequest.response_code == "00")
        ).all()
    assert set(answered) == {"ATM00001", "ATM00002"}


def test_fleet_tls_options_are_checked_before_anything_starts(pki, tmp_path: Path, capsys):
    assert main(["fleet", "--terminals", "1", "--tls-certs", str(pki.directory)]) == 2
    assert capsys.readouterr().err == "atm fleet: --tls-certs and --tls-server-name need --tls-ca\n"
    # ATM00003 has no certificate in the directory: refused before any ATM connects.
    code = main(
        ["fleet", "--terminals", "3", "--port", "1", "--tls-ca", str(pki.ca),
         "--tls-certs", str(pki.directory)]
    )  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("atm fleet: ") and "terminal-ATM00003.pem" in err
