import subprocess
import sys
from pathlib import Path

from sqlalchemy import func, select

from host.app import Host
from host.bank.ledger import check_ledger
from host.bank.models import Account, Card, Entry, Terminal


def test_migrate_and_seed_fresh_sqlite(host_config):
    host = Host(host_config)
    created = host.upgrade_and_seed()
    assert "customer Alice Johnson" in created
    assert host.balance("1000-0001-0001") == 525_000
    assert host.balance("1000-0001-0002") == 1_250_000
    assert host.balance("1000-0002-0001") == 85_075
    assert host.balance("1000-0003-0001") == 0
    assert host.balance("1000-0003-0002") == 10_000
    with host.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Card)) == 5
        assert session.scalar(select(func.count()).select_from(Terminal)) == 10
        assert session.scalar(select(func.sum(Entry.amount_cents))) == 0
        assert check_ledger(session) == []
        stolen = session.scalar(select(Card).where(Card.pan == "4000009999999991"))
        assert stolen is not None and stolen.status == "stolen"
        # PINs are stored only as bcrypt hashes.
        assert all(card.pin_hash.startswith("$2") for card in session.scalars(select(Card)))


def test_seed_is_idempotent(host_config):
    host = Host(host_config)
    host.upgrade_and_seed()
    assert host.upgrade_and_seed() == []
    with host.sessions() as session:
        assert (
            session.scalar(select(func.count()).select_from(Account)) == 16
        )  # 5 customer, 1 equity, 10 terminal cash
    assert host.balance("1000-0001-0001") == 525_000


def test_plain_alembic_upgrade_from_repo_root(tmp_path: Path):
    root = Path(__file__).resolve().parents[2]
    url = f"sqlite:///{tmp_path / 'plain.db'}"
    subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "head"],
        cwd=root,
        env={"DATABASE_URL": url, "PATH": "/usr/bin:/bin"},
        check=True,
        capture_output=True,
    )
    assert (tmp_path / "plain.db").stat().st_size > 0
