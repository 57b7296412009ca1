"""The dashboard over the admin API after real requests went through the authorization
service: customers, accounts, total balances, requests and declines per hour by response
code, terminals, and the cash each terminal dispensed (net of reversals)."""

from __future__ import annotations

import asyncio

from tests.host.admin.conftest import AdminRig
from tests.host.conftest import ALICE, BOB, STOLEN, Requests


async def test_dashboard_counts_what_happened(admin: AdminRig):
    requests = Requests()
    service = admin.host.service
    hour = admin.clock().strftime("%Y-%m-%dT%H")

    def traffic() -> None:
        assert service.authorize(requests.withdrawal(10_000)).response_code == "00"
        assert service.authorize(requests.withdrawal(4_000, pan=BOB)).response_code == "00"
        assert service.authorize(requests.balance()).response_code == "00"
        assert (
            service.authorize(requests.withdrawal(2_000, pan=BOB, pin="0000")).response_code == "55"
        )
        assert service.authorize(requests.withdrawal(2_000, pan=STOLEN)).response_code == "43"
        other = Requests(terminal_id="ATM00002", stans=iter(range(100, 200)))
        assert service.authorize(other.withdrawal(6_000, pan=ALICE)).response_code == "00"

    await asyncio.to_thread(traffic)
    vera = await admin.client("vera")
    status, figures = await vera.get("/admin/api/dashboard")
    assert status == 200, figures
    assert figures["customers"] == 3
    assert figures["accounts"] == {"total": 5, "by_kind": {"checking": 3, "savings": 2}}
    assert figures["total_balance_cents"] == 1_870_075 - 10_000 - 4_000 - 6_000
    assert figures["hourly"] == [
        {
            "hour": hour,
            "transactions": 6,
            "declines": 2,
            "by_code": {"00": 4, "43": 1, "55": 1},
        }
    ]
    assert (figures["transactions"], figures["declines"]) == (6, 2)
    assert figures["terminals"]["in_service"] + figures["terminals"]["out_of_service"] == 10
    dispensed = {row["terminal"]: row["cents"] for row in figures["cash_dispensed"]}
    assert dispensed["ATM00001"] == 14_000
    assert dispensed["ATM00002"] == 6_000
    assert dispensed["ATM00003"] == 0
    # A window that ends before the traffic shows none of it.
    admin.clock.advance(3 * 3600)
    vera = await admin.client("vera")  # the old session expired meanwhile
    status, later = await vera.get("/admin/api/dashboard?hours=1")
    assert status == 200 and later["hourly"] == [] and later["transactions"] == 0
    assert (await vera.get("/admin/api/dashboard?hours=0"))[0] == 400
