"""The image, the compose stack and the ECS task definitions agree with the application: the
same command, the same ports, the same health endpoint and only setting names the host reads.

The application side is read from the code (``host/*config*.py`` parsed with ``ast``, the
``atm`` command's real argument parser), so a setting or option added later is picked up.
"""

from __future__ import annotations

import re
import shlex
from typing import Any

import pytest
import yaml
from sqlalchemy.engine import make_url

from atm.cli import COMMANDS, build_parser
from atm.demo import SCRIPTS
from host.bank.seed import SEED_TERMINALS
from host.config import HostConfig
from host.errors import ConfigError

from .conftest import (
    ROOT,
    TERRAFORM,
    AppSettings,
    Stage,
    tf_locals,
    tf_module,
    tf_variable_defaults,
)

# Settings whose value is a secret: never a plain environment value in the cloud.
SECRET_NAMES = {
    "DATABASE_URL",
    "SECRET_KEY",
    "PIN_PEPPER",
    "TERMINAL_MASTER_KEYS",
    "OPS_API_TOKEN",
    "LINK_TLS_CERT",  # PEM text in the cloud (the certificate is public, but travels with
    "LINK_TLS_KEY",  # its private key, which is not)
    "OPS_TLS_CERT",  # the same certificate and key, for the ops API's HTTPS
    "OPS_TLS_KEY",
}
# Production refuses to start without real values for these (host/config.py,
# host/link/config.py; checked below against the code): the cloud must provide every one of
# them, and the database URL, from Secrets Manager.
PRODUCTION_REFUSES_DEFAULT = {
    "SECRET_KEY",
    "PIN_PEPPER",
    "OPS_API_TOKEN",
    "TERMINAL_MASTER_KEYS",
    "LINK_TLS_CERT",  # a plaintext link, unless LINK_ALLOW_PLAINTEXT=true
    "OPS_TLS_CERT",  # a plain-HTTP ops API, unless OPS_ALLOW_PLAINTEXT=true
}
PRODUCTION_REQUIRED = PRODUCTION_REFUSES_DEFAULT | {"DATABASE_URL", "LINK_TLS_KEY", "OPS_TLS_KEY"}
# Interpreter and pip settings of the image, not the application's.
IMAGE_RUNTIME_NAMES = {
    "PYTHONDONTWRITEBYTECODE",
    "PYTHONUNBUFFERED",
    "PIP_NO_CACHE_DIR",
    "PIP_DISABLE_PIP_VERSION_CHECK",
    "VIRTUAL_ENV",
    "PATH",
}
APP_SERVICES = ("migrate", "host", "atm-1", "atm-2")
ENV_DEFAULT = re.compile(r"^\$\{(?P<name>[A-Z0-9_]+):-(?P<default>[^}]*)\}$")


def parse_atm(argv: list[str]) -> Any:
    assert argv[0] == "atm", argv
    return build_parser().parse_args(argv[1:])


# --- the application side, as read from the code ------------------------------------------


def test_app_settings_are_read_from_the_code(app: AppSettings) -> None:
    assert {
        "DATABASE_URL",
        "SECRET_KEY",
        "PIN_PEPPER",
        "LINK_HOST",
        "LINK_PORT",
        "OPS_HOST",
        "OPS_PORT",
        "OPS_API_TOKEN",
        "STATEMENT_S3_BUCKET",
        "TERMINAL_MASTER_KEYS",  # host/link/config.py
        "TERMINAL_KEY_SCHEMES",
    } <= app.names
    assert isinstance(app.defaults["LINK_PORT"], int)
    assert isinstance(app.defaults["OPS_PORT"], int)


# --- Dockerfile -----------------------------------------------------------------------------


def test_dockerfile_has_the_four_stages(dockerfile: dict[str, Stage]) -> None:
    assert {"base", "dependencies", "production", "development"} <= set(dockerfile)


def test_production_image_runs_the_host_as_non_root(dockerfile: dict[str, Stage]) -> None:
    stage = dockerfile["production"]
    assert stage.cmd is not None
    args = parse_atm(stage.cmd)
    assert args.command == "host"
    assert stage.user not in (None, "root", "0", "0:0")
    assert dockerfile["development"].user == stage.user


def test_image_ports_are_the_config_defaults(
    app: AppSettings, dockerfile: dict[str, Stage]
) -> None:
    stage = dockerfile["production"]
    link, ops = app.defaults["LINK_PORT"], app.defaults["OPS_PORT"]
    assert stage.expose == {link, ops}
    assert stage.env["LINK_PORT"] == str(link)
    assert stage.env["OPS_PORT"] == str(ops)
    assert stage.env["LINK_HOST"] == "0.0.0.0"  # reachable from outside the container


def loopback_listeners(app: AppSettings) -> set[str]:
    """Settings for an address to listen on whose default is loopback: unreachable from
    outside a container, so every deployment must set them to 0.0.0.0."""
    names = {n for n, d in app.defaults.items() if d in ("127.0.0.1", "localhost", "::1")}
    assert {"LINK_HOST", "OPS_HOST"} <= names
    return names


def test_image_listens_on_every_interface(app: AppSettings, dockerfile: dict[str, Stage]) -> None:
    env = dockerfile["production"].env
    assert {name: env.get(name) for name in loopback_listeners(app)} == dict.fromkeys(
        loopback_listeners(app), "0.0.0.0"
    )


def test_image_health_check_asks_the_ops_api(
    app: AppSettings, dockerfile: dict[str, Stage]
) -> None:
    check = dockerfile["production"].healthcheck
    assert check is not None and check[:2] == ["python", "-c"]
    code = check[2]
    compile(code, "<healthcheck>", "exec")
    assert "/health" in code
    assert f"os.environ.get('OPS_PORT', '{app.defaults['OPS_PORT']}')" in code


def test_image_sets_only_known_names(app: AppSettings, dockerfile: dict[str, Stage]) -> None:
    for stage in dockerfile.values():
        unknown = set(stage.env) - app.names - IMAGE_RUNTIME_NAMES
        assert unknown == set(), f"stage {stage.name}"


# --- docker-compose.yml ---------------------------------------------------------------------


# Read by `atm device` itself (atm/commands/device.py), not by the host's configuration.
DEVICE_NAMES = {"FRONTEND_ENABLED"}


def test_compose_app_services_set_only_known_names(
    app: AppSettings, compose: dict[str, Any]
) -> None:
    device_source = (ROOT / "atm" / "commands" / "device.py").read_text()
    assert all(f'"{name}"' in device_source for name in DEVICE_NAMES)
    for name in APP_SERVICES:
        environment = compose["services"][name].get("environment", {})
        known = app.names | (DEVICE_NAMES if name.startswith("atm-") else set())
        assert set(environment) - known == set(), name


def test_compose_host_passes_every_setting(app: AppSettings, compose: dict[str, Any]) -> None:
    """Every setting of .env.example reaches the host container: a value set in .env works."""
    for name in ("migrate", "host"):
        assert set(compose["services"][name]["environment"]) == app.names, name


def test_compose_defaults_match_the_config_defaults(
    app: AppSettings, compose: dict[str, Any]
) -> None:
    environment = compose["services"]["host"]["environment"]
    # The compose stack gives the development host a working ops token; the app's own default
    # is empty (authenticated ops routes closed), so this one differs on purpose.
    dev_overrides = {"OPS_API_TOKEN"}
    checked = 0
    for name, value in environment.items():
        match = ENV_DEFAULT.match(str(value))
        if match and name not in dev_overrides and isinstance(app.defaults.get(name), int | str):
            assert match["default"] == str(app.defaults[name]), name
            checked += 1
    assert checked >= 5


def test_compose_host_runs_the_host_on_the_config_ports(
    app: AppSettings, compose: dict[str, Any]
) -> None:
    host = compose["services"]["host"]
    assert parse_atm(host["command"]).command == "host"
    env = host["environment"]
    for name in loopback_listeners(app):
        assert env.get(name) == "0.0.0.0", name
    assert int(env["LINK_PORT"]) == app.defaults["LINK_PORT"]
    assert int(env["OPS_PORT"]) == app.defaults["OPS_PORT"]
    published = {int(str(port).rsplit(":", 1)[1]) for port in host["ports"]}
    assert published == {app.defaults["LINK_PORT"], app.defaults["OPS_PORT"]}
    assert env["DATABASE_URL"].startswith("postgresql+psycopg://")
    assert "@db:5432/" in env["DATABASE_URL"]


def test_compose_migrate_upgrades_then_seeds(compose: dict[str, Any]) -> None:
    command = compose["services"]["migrate"]["command"]
    assert command[:2] == ["sh", "-c"]
    steps = [shlex.split(part) for part in command[2].split("&&")]
    parsed = [parse_atm(step) for step in steps]
    assert [(a.command, a.db_command) for a in parsed] == [("db", "upgrade"), ("db", "seed")]
    host_needs = compose["services"]["host"]["depends_on"]
    assert host_needs["migrate"]["condition"] == "service_completed_successfully"


def test_compose_atms_connect_to_the_host_service(
    app: AppSettings, compose: dict[str, Any]
) -> None:
    assert "device" in COMMANDS
    terminals = []
    for name in ("atm-1", "atm-2"):
        command = compose["services"][name]["command"]
        assert command[:2] == ["atm", "device"]
        args = parse_atm(command)  # every option is one `atm device` has
        assert args.command == "device"
        assert args.host == "host" and "host" in compose["services"]
        assert int(args.port) == app.defaults["LINK_PORT"]
        assert args.terminal_id in SEED_TERMINALS
        terminals.append(args.terminal_id)
        assert args.script in SCRIPTS, name
        assert int(args.repeat) >= 0, name
        # One web front panel per ATM: on every interface inside the container, published
        # on the machine's loopback only, switched by FRONTEND_ENABLED (default true).
        service = compose["services"][name]
        assert args.web_listen == "0.0.0.0"
        assert [str(p).rsplit(":", 1)[1] for p in service["ports"]] == [str(args.web)]
        assert all(str(p).startswith("127.0.0.1:") for p in service["ports"])
        assert service["environment"]["FRONTEND_ENABLED"] == "${FRONTEND_ENABLED:-true}"
    assert len(set(terminals)) == len(terminals)


# --- Terraform (the ECS task definitions) ---------------------------------------------------

ECS = TERRAFORM / "modules" / "ecs" / "main.tf"
DEV = TERRAFORM / "environments" / "dev"


@pytest.fixture(scope="module")
def ecs_locals() -> dict[str, Any]:
    return tf_locals(ECS)


def test_task_commands_are_the_app_commands(ecs_locals: dict[str, Any]) -> None:
    assert parse_atm(ecs_locals["host_command"]).command == "host"
    migration = parse_atm(ecs_locals["migration_command"])
    assert (migration.command, migration.db_command) == ("db", "upgrade")
    text = ECS.read_text()
    assert "command                = local.host_command" in text
    assert "command                = local.migration_command" in text


def test_task_ports_are_the_config_defaults(app: AppSettings) -> None:
    defaults = tf_variable_defaults(DEV / "variables.tf")
    assert defaults["link_port"] == app.defaults["LINK_PORT"]
    assert defaults["ops_port"] == app.defaults["OPS_PORT"]


def test_task_environment_names_are_known_and_not_secret(
    app: AppSettings, ecs_locals: dict[str, Any]
) -> None:
    plain = set(ecs_locals["base_environment"])
    assert plain - app.names == set()
    assert plain & SECRET_NAMES == set()
    for name in loopback_listeners(app):
        assert ecs_locals["base_environment"].get(name) == "0.0.0.0", name
    assert ecs_locals["base_environment"]["ENVIRONMENT"] == "production"


def test_production_refuses_exactly_these_defaults() -> None:
    with pytest.raises(ConfigError) as refused:
        HostConfig.from_env({"ENVIRONMENT": "production"})
    named = {problem.split(":", 1)[0] for problem in refused.value.problems}
    assert named == PRODUCTION_REFUSES_DEFAULT


def test_task_secrets_cover_what_production_requires(app: AppSettings) -> None:
    secrets = set(tf_module(DEV / "main.tf", "secrets")["values"])
    assert secrets - app.names == set()
    assert secrets <= SECRET_NAMES
    assert PRODUCTION_REQUIRED <= secrets


def test_tfvars_example_sets_only_known_host_settings(app: AppSettings) -> None:
    from .conftest import read_tf

    example = read_tf(DEV / "terraform.tfvars.example")
    assert set(example["host_settings"]) - app.names == set()
    assert set(example["host_settings"]) & SECRET_NAMES == set()


def test_task_health_check_asks_the_ops_api(app: AppSettings, ecs_locals: dict[str, Any]) -> None:
    code = ecs_locals["health_command"]
    compile(code, "<healthcheck>", "exec")
    assert "/health" in code
    assert f"os.environ.get('OPS_PORT', '{app.defaults['OPS_PORT']}')" in code


# --- build context --------------------------------------------------------------------------


def test_dockerignore_keeps_everything_the_image_copies() -> None:
    from fnmatch import fnmatch

    from .conftest import ROOT, _instructions

    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]

    def ignored(path: str) -> bool:
        verdict = False
        for pattern in patterns:
            negate = pattern.startswith("!")
            pattern = pattern.lstrip("!").rstrip("/")
            if fnmatch(path, pattern) or fnmatch(path.split("/")[0], pattern):
                verdict = not negate
        return verdict

    sources = []
    for keyword, rest in _instructions((ROOT / "Dockerfile").read_text()):
        words = rest.split()
        if keyword == "COPY" and not any(w.startswith("--from") for w in words):
            sources += words[:-1]
    assert {"pyproject.toml", "alembic.ini", "host", "protocol", "atm"} <= set(sources)
    for source in sources:
        assert (ROOT / source).exists(), source
        assert not ignored(source), f"{source} is excluded by .dockerignore"
    assert ignored(".venv") and ignored(".git") and ignored(".env") and not ignored(".env.example")


# --- CI: the PostgreSQL service-container job -----------------------------------------------


@pytest.fixture(scope="module")
def postgres_job() -> dict[str, Any]:
    from .conftest import ROOT

    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text())
    job: dict[str, Any] = workflow["jobs"]["test-postgres"]
    return job


def _step(job: dict[str, Any], needle: str) -> dict[str, Any]:
    steps: list[dict[str, Any]] = [s for s in job["steps"] if needle in s.get("run", "")]
    assert len(steps) == 1, needle
    return steps[0]


def test_ci_runs_the_host_suite_on_the_service_container(
    app: AppSettings, postgres_job: dict[str, Any]
) -> None:
    service = postgres_job["services"]["postgres"]
    step = _step(postgres_job, "pytest")
    assert step["run"].split()[-1] == "tests/host"
    env = {**postgres_job.get("env", {}), **step.get("env", {})}
    # The suite gets no application settings: its fixtures build every configuration.
    assert set(env) & app.names == set()
    url = make_url(env["ATM_TEST_POSTGRES_URL"])
    assert url.drivername == "postgresql+psycopg"
    assert (url.username, url.password) == (
        service["env"]["POSTGRES_USER"],
        service["env"]["POSTGRES_PASSWORD"],
    )
    assert f"{url.port}:5432" in service["ports"]
    assert url.database == "postgres"  # admin database, not the one the app uses
    assert postgres_job["env"]["CI"] == "true"  # a missing PostgreSQL fails, never skips


def test_ci_deployed_shape_uses_a_valid_host_configuration(
    app: AppSettings, postgres_job: dict[str, Any]
) -> None:
    step = _step(postgres_job, "scripts/smoke_test.sh")
    env = {name: str(value) for name, value in step["env"].items()}
    assert set(env) <= app.names
    config = HostConfig.from_env(env)  # raises on any value the host would refuse
    commands = [line.strip() for line in step["run"].splitlines() if line.strip()]
    assert commands.index("atm db upgrade") < commands.index("atm db seed")
    assert any(line.startswith("atm host ") for line in commands)
    assert "http://127.0.0.1:${OPS_PORT}" in step["run"]
    assert config.link_port == app.defaults["LINK_PORT"]  # the smoke test's default link port
    assert make_url(config.database_url).database == "atm"
