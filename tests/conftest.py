from __future__ import annotations

from pathlib import Path

import pytest

from host.config import HostConfig


@pytest.fixture
def host_config(tmp_path: Path) -> HostConfig:
    """A host configuration on a fresh SQLite file, with a cheap bcrypt cost for speed."""
    return HostConfig.from_env(
        {
            "DATABASE_URL": f"sqlite:///{tmp_path / 'host.db'}",
            "BCRYPT_ROUNDS": "4",
            "ENVIRONMENT": "testing",
        }
    )
