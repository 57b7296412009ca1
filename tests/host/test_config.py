"""Configuration: defaults, one clear line per problem, production refuses the defaults."""

from __future__ import annotations

import pytest

from atm.cli import main
from host.config import Environment, HostConfig
from host.errors import ConfigError

# Stand-ins for secrets from a secret store: 48 random-looking characters each.
SECRET = "q7VfR2mXk9LpT4wZc8NbH3sJd6GyE1uAo5KiW0tMnBvCxQrP"
PEPPER = "Zt4Hq8LmW2xVc7RnK1pBs5JdG9fYe3TaU6oNiM0wQbXyCvSr"


def test_defaults_follow_the_design():
    config = HostConfig.from_env({"HOME": "/home/ann"})
    assert config.database_url == "sqlite:////home/ann/.local/share/atm-simulator/atm-host.db"
    assert (config.session_timeout_seconds, config.max_failed_pin_attempts) == (120, 3)
    assert config.lockout_duration_seconds == 1800
    assert (config.daily_withdrawal_limit, config.daily_transfer_limit) == (50_000, 250_000)
    assert config.bcrypt_rounds == 12 and config.ops_port == 8080
    assert config.environment is Environment.DEVELOPMENT


def test_the_default_database_does_not_depend_on_the_working_directory(tmp_path, monkeypatch):
    """Started from another folder, the host finds the same database, never a new empty one."""
    env = {"HOME": "/home/ann"}
    monkeypatch.chdir(tmp_path)
    here = HostConfig.from_env(env).database_url
    monkeypatch.chdir("/")
    assert HostConfig.from_env(env).database_url == here
    xdg = HostConfig.from_env({**env, "XDG_DATA_HOME": "/data"}).database_url
    assert xdg == "sqlite:////data/atm-simulator/atm-host.db"
    chosen = HostConfig.from_env({**env, "ATM_DATA_DIR": str(tmp_path)}).database_url
    assert chosen == f"sqlite:///{tmp_path}/atm-host.db"


def test_each_problem_is_one_line():
    with pytest.raises(ConfigError) as info:
        HostConfig.from_env(
            {
                "SESSION_TIMEOUT_SECONDS": "soon",
                "MAX_FAILED_PIN_ATTEMPTS": "0",
                "ENVIRONMENT": "staging",
                "OPS_PORT": "70000",
                "DATABASE_URL": "mysql://x/y",
                "OPS_API_TOKEN": "short",
                "STATEMENT_S3_BUCKET": "Not_A_Bucket",
                "DATABASE_PREPARED_STATEMENTS": "sometimes",
            }
        )
    assert sorted(info.value.problems) == sorted(
        [
            "SESSION_TIMEOUT_SECONDS: not an integer: 'soon'",
            "ENVIRONMENT: unknown value 'staging' (development, testing, production)",
            "DATABASE_URL: unsupported database 'mysql' (sqlite:///FILE or postgresql+psycopg://...)",
            "OPS_API_TOKEN: must be at least 16 characters",
            "STATEMENT_S3_BUCKET: not a valid S3 bucket name: 'Not_A_Bucket'",
            "MAX_FAILED_PIN_ATTEMPTS: 0 is out of range 1..99",
            "OPS_PORT: 70000 is out of range 0..65535",
            "DATABASE_PREPARED_STATEMENTS: true or false, not 'sometimes'",
        ]
    )


@pytest.mark.parametrize(("raw", "prepared"), [(None, True), ("true", True), (" False ", False)])
def test_prepared_statements_can_be_turned_off_for_a_pooler(raw, prepared):
    env = {} if raw is None else {"DATABASE_PREPARED_STATEMENTS": raw}
    assert HostConfig.from_env(env).database_prepared_statements is prepared


def test_production_refuses_the_default_secrets():
    with pytest.raises(ConfigError) as info:
        HostConfig.from_env({"ENVIRONMENT": "production"})
    assert info.value.problems == [
        "TERMINAL_MASTER_KEYS: required in production",
        "LINK_TLS_CERT: production refuses a plaintext link "
        "(set LINK_TLS_CERT and LINK_TLS_KEY, or LINK_ALLOW_PLAINTEXT=true)",
        "OPS_TLS_CERT: production refuses a plain-HTTP ops API "
        "(set OPS_TLS_CERT and OPS_TLS_KEY, or OPS_ALLOW_PLAINTEXT=true)",
        "SECRET_KEY: the default value is refused in production",
        "PIN_PEPPER: the default value is refused in production",
        "OPS_API_TOKEN: required in production",
    ]


def test_production_with_real_secrets_starts():
    config = HostConfig.from_env(
        {
            "ENVIRONMENT": "production",
            "SECRET_KEY": SECRET,
            "PIN_PEPPER": PEPPER,
            "OPS_API_TOKEN": "t" * 32,
            "DATABASE_URL": "postgresql+psycopg://atm:pw@db:5432/atm",
            "TERMINAL_MASTER_KEYS": "ATM00001=0F1E2D3C4B5A69788796A5B4C3D2E1F0",
            "LINK_ALLOW_PLAINTEXT": "true",  # TLS itself: tests/host/test_link_tls.py
            "OPS_ALLOW_PLAINTEXT": "true",  # HTTPS itself: tests/host/test_ops_tls.py
        }
    )
    assert config.environment is Environment.PRODUCTION
    assert config.link.master_key("ATM00001") == bytes.fromhex("0F1E2D3C4B5A69788796A5B4C3D2E1F0")
    assert config.link.master_key("ATM00002") is None  # no development TMK in production
    for secret in (SECRET, PEPPER, "t" * 32, "0F1E2D3C4B5A6978"):
        assert secret not in repr(config)


def test_a_pepper_bcrypt_would_cut_is_refused():
    with pytest.raises(ConfigError, match="PIN_PEPPER: at most 60 bytes"):
        HostConfig.from_env({"PIN_PEPPER": "x" * 61})


def test_the_host_command_prints_each_problem_and_exits_2(monkeypatch, capsys):
    monkeypatch.setenv("ENVIRONMENT", "production")
    assert main(["host", "--port", "0"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert "atm: config: SECRET_KEY: the default value is refused in production" in err
    assert "atm: config: TERMINAL_MASTER_KEYS: required in production" in err
    assert "atm: config: LINK_TLS_CERT: production refuses a plaintext link" in err[1]
    assert "atm: config: OPS_TLS_CERT: production refuses a plain-HTTP ops API" in err[2]
    assert len(err) == 6


def test_accepted_card_ranges_default_to_the_test_cards_and_widen_with_a_warning(caplog):
    assert HostConfig.from_env({}).accepted_card_ranges == ("400000",)
    assert HostConfig.from_env({}).widened == []
    wide = HostConfig.from_env({"ACCEPTED_CARD_RANGES": "400000, 453201"})
    assert wide.accepted_card_ranges == ("400000", "453201")
    assert wide.widened == ["card ranges widened beyond the test cards: 453201"]
    with pytest.raises(ConfigError) as info:
        HostConfig.from_env({"ACCEPTED_CARD_RANGES": "4000-00"})
    assert info.value.problems == ["ACCEPTED_CARD_RANGES: comma-separated PAN prefixes (digits)"]


PRODUCTION = {
    "ENVIRONMENT": "production",
    "OPS_API_TOKEN": "t" * 32,
    "TERMINAL_MASTER_KEYS": "ATM00001=0F1E2D3C4B5A69788796A5B4C3D2E1F0",
    "LINK_ALLOW_PLAINTEXT": "true",
    "OPS_ALLOW_PLAINTEXT": "true",
}


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("", "empty; production needs at least 32 random bytes"),
        ("x", "1 bytes is too short for production (at least 32)"),
        ("Zt4Hq8LmW2xVc7RnK1pBs5JdG9fYe3T", "31 bytes is too short for production (at least 32)"),
        (
            "ab" * 20,
            "too little variety for production (2 different characters, at least 10: "
            "use a random value)",
        ),
    ],
    ids=["empty", "one-character", "31-bytes", "low-variety"],
)
@pytest.mark.parametrize("name", ["SECRET_KEY", "PIN_PEPPER"])
def test_production_refuses_weak_secrets_with_one_line_naming_the_variable(
    name: str, value: str, problem: str
) -> None:
    env = {**PRODUCTION, "SECRET_KEY": SECRET, "PIN_PEPPER": PEPPER, name: value}
    with pytest.raises(ConfigError) as info:
        HostConfig.from_env(env)
    assert info.value.problems == [f"{name}: {problem}"]
    # The same value is fine outside production.
    HostConfig.from_env({**env, "ENVIRONMENT": "testing"})


def test_db_seed_refuses_production_without_allow_production(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path
) -> None:
    """``atm db seed`` writes cards with known PINs: never into production by accident."""
    database = tmp_path / "prod.db"
    for key, value in {**PRODUCTION, "SECRET_KEY": SECRET, "PIN_PEPPER": PEPPER}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("BCRYPT_ROUNDS", "4")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{database}")
    assert main(["db", "seed"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "atm: db seed: refused in production: the seed cards have published PINs "
        "(pass --allow-production to seed all the same)"
    ]
    assert not database.exists()
    assert main(["db", "seed", "--allow-production"]) == 0
    assert "seed complete" in capsys.readouterr().out
    # Elsewhere no flag is needed.
    monkeypatch.setenv("ENVIRONMENT", "testing")
    assert main(["db", "seed"]) == 0
