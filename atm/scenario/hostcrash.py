"""``atm host`` with crash points, for scenarios that kill the host at a step of its own:
``python -m atm.scenario.hostcrash ARGS`` runs ``atm host ARGS`` and SIGKILLs itself at the
point named in the file ``ATM_SCENARIO_HOST_CRASH_FILE`` when a financial request (0200)
reaches it:

- ``received``: the request has arrived and is about to be authorized (nothing posted);
- ``posted``: the authorization is committed (money moved) and no answer has gone out;
- ``sent``: the answer (0210) has been written to the terminal's connection.

The file is read at each point and removed when the process kills itself, so the restarted
host runs normally. This is a test harness around the unchanged host: the link server tells
its step hook (``host.link.server.StepHook``, passed in at construction) each step a request
reaches; the product's ``atm host`` has no hook.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from protocol.messages import Message, Mti, mti_class

__all__ = ["POINTS", "CrashPoints", "main"]

POINTS = ("received", "posted", "sent")
ENV = "ATM_SCENARIO_HOST_CRASH_FILE"


class CrashPoints:
    """The link server's step hook: SIGKILL this process at the point armed in ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __call__(self, step: str, message: Message) -> None:
        if step == "sent":
            if message.get("t") == "0210":
                self._crash_if(step)
        elif mti_class(message["t"]) == Mti.FINANCIAL_REQUEST:
            self._crash_if(step)

    def _crash_if(self, point: str) -> None:
        try:
            wanted = self.path.read_text().strip()
        except FileNotFoundError:
            return
        if wanted == point:
            self.path.unlink()
            print(f"host crash point {point}: SIGKILL", flush=True)
            os.kill(os.getpid(), signal.SIGKILL)


def main(argv: list[str] | None = None) -> int:
    from atm.cli import build_parser, run
    from atm.commands.host import serve

    points = CrashPoints(Path(os.environ[ENV]))
    args = build_parser(only="host").parse_args(["host", *(sys.argv[1:] if argv is None else argv)])
    return run(args, lambda parsed: serve(parsed, steps=points))


if __name__ == "__main__":
    sys.exit(main())
