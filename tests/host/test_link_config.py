"""LinkConfig from the environment: TMKs, schemes, production rules."""

import pytest

from host.errors import ConfigError
from host.link.config import DEVELOPMENT_TMK, LinkConfig
from protocol.security import KeyScheme

KEY = "F0E1D2C3B4A5968778695A4B3C2D1E0F"


def test_defaults_outside_production():
    config = LinkConfig.from_env({})
    assert config.master_key("ATM00001") == DEVELOPMENT_TMK
    assert config.scheme("ATM00001") is KeyScheme.TDES
    assert KEY not in repr(LinkConfig.from_env({"TERMINAL_MASTER_KEYS": f"ATM00001={KEY}"}))


def test_explicit_keys_and_schemes():
    config = LinkConfig.from_env(
        {
            "TERMINAL_MASTER_KEYS": f"ATM00001={KEY}, ATM00002={KEY}",
            "TERMINAL_KEY_SCHEMES": "ATM00002=aes",
        }
    )
    assert config.master_key("ATM00001") == bytes.fromhex(KEY)
    assert config.scheme("ATM00002") is KeyScheme.AES


def test_production_needs_real_master_keys():
    with pytest.raises(ConfigError) as info:
        LinkConfig.from_env({"ENVIRONMENT": "production"})
    assert "required in production" in str(info.value)
    with pytest.raises(ConfigError):
        LinkConfig.from_env(
            {
                "ENVIRONMENT": "production",
                "TERMINAL_MASTER_KEYS": f"ATM00001={DEVELOPMENT_TMK.hex()}",
            }
        )
    config = LinkConfig.from_env(
        {
            "ENVIRONMENT": "production",
            "TERMINAL_MASTER_KEYS": f"ATM00001={KEY}",
            "SECRET_KEY": "s",
            "LINK_ALLOW_PLAINTEXT": "true",
            "OPS_ALLOW_PLAINTEXT": "true",
        }
    )
    assert config.master_key("ATM00002") is None  # no development fallback
    assert config.storage_key != LinkConfig.from_env({}).storage_key


def test_every_problem_is_reported():
    with pytest.raises(ConfigError) as info:
        LinkConfig.from_env(
            {"TERMINAL_MASTER_KEYS": "ATM1=zz,ATM00002=00", "TERMINAL_KEY_SCHEMES": "ATM00003=X"}
        )
    assert len(info.value.problems) == 3
