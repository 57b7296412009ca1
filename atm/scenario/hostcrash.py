"""``atm host`` with crash points, for scenarios that kill the host at a step of its own:
``python -m atm.scenario.hostcrash ARGS`` runs ``atm host ARGS`` and SIGKILLs itself at the
point named in the file ``ATM_SCENARIO_HOST_CRASH_FILE`` when a financial request (0200)
reaches it:

- ``received``: the request has arrived and is about to be authorized (nothing posted);
- ``posted``: the authorization is committed (money moved) and no answer has gone out;
- ``sent``: the answer (0210) has been written to the terminal's connection.

The file is read at each point and removed when the process kills itself, so the restarted
host runs normally. This is a test harness around the unchanged host (it wraps two methods of
``host.link.server.LinkServer``); the product's ``atm host`` has no crash points.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Any

__all__ = ["POINTS", "main"]

POINTS = ("received", "posted", "sent")
ENV = "ATM_SCENARIO_HOST_CRASH_FILE"


def _crash_if(point: str, path: Path) -> None:
    try:
        wanted = path.read_text().strip()
    except FileNotFoundError:
        return
    if wanted == point:
        path.unlink()
        print(f"host crash point {point}: SIGKILL", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)


def _install(path: Path) -> None:
    from host.link.server import LinkServer
    from protocol.messages import Mti

    authorize = LinkServer._authorize
    send = LinkServer._send

    async def crashing_authorize(self: LinkServer, request: Any) -> Any:
        financial = request.mti_class == Mti.FINANCIAL_REQUEST
        if financial:
            _crash_if("received", path)
        outcome = await authorize(self, request)
        if financial:
            _crash_if("posted", path)
        return outcome

    async def crashing_send(self: LinkServer, conn: Any, response: Any, *args: Any) -> None:
        await send(self, conn, response, *args)
        if response.get("t") == "0210":
            _crash_if("sent", path)

    setattr(LinkServer, "_authorize", crashing_authorize)  # noqa: B010 (a harness patch)
    setattr(LinkServer, "_send", crashing_send)  # noqa: B010


def main(argv: list[str] | None = None) -> int:
    _install(Path(os.environ[ENV]))
    from atm.cli import main as atm_main

    return atm_main(["host", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
