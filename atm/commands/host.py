"""``atm host``: run the authorization host's ISO-8583 link server."""

from __future__ import annotations

import argparse
import asyncio
import logging
from typing import Any

from atm.commands._common import load_host_config
from host.app import Host


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "host",
        help="run the authorization host (ISO-8583 over TCP)",
        description="Run the authorization host. Configuration comes from the environment "
        "(see .env.example); the options below override it.",
    )
    parser.add_argument("--listen", help="address to listen on (LINK_HOST)")
    parser.add_argument("--port", help="ISO link port (LINK_PORT, default 8583)")
    parser.add_argument("--database-url", help="override DATABASE_URL")
    parser.add_argument(
        "--migrate", action="store_true", help="apply migrations and seed before serving"
    )
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    config = load_host_config(
        {"LINK_HOST": args.listen, "LINK_PORT": args.port, "DATABASE_URL": args.database_url}
    )
    if config is None:
        return 2
    logging.getLogger().setLevel(config.log_level)
    return asyncio.run(_serve(config, args.migrate))


async def _serve(config: Any, migrate: bool) -> int:
    host = Host(config)
    if migrate:
        host.upgrade_and_seed()
    port = await host.start()
    print(f"host listening on {config.link_host}:{port} (database {config.database_url})")
    try:
        await host.server.serve_forever()
    except asyncio.CancelledError:
        pass
    finally:
        await host.close()
    return 0
