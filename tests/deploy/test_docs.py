"""docs/deployment.md and the README against what is merged: every variable the host reads is
documented with its default, every ``atm`` command shown parses with the real parser, the
ports are the config's, every script and CI job named exists."""

from __future__ import annotations

import re
import shlex
from typing import Any

import pytest
import yaml

from atm.cli import COMMANDS, build_parser

from .conftest import ROOT, AppSettings

GUIDE = ROOT / "docs" / "deployment.md"
README = ROOT / "README.md"
ATM_COMMAND = re.compile(rf"(?:^|\s)(atm (?:{'|'.join(COMMANDS)})\b.*)")


def section(text: str, title: str) -> str:
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def table_rows(text: str) -> list[list[str]]:
    rows = []
    for line in text.splitlines():
        if line.startswith("|") and not re.fullmatch(r"\|[-| ]+\|", line):
            rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def shell_commands(text: str) -> list[str]:
    """``atm ...`` commands of the ```sh blocks, one per ``&&``/``;`` step, comments dropped."""
    found = []
    for block in re.findall(r"```(?:sh|bash)\n(.*?)```", text, re.S):
        for line in block.splitlines():
            line = re.split(r"\s#\s", line)[0]
            for part in re.split(r"&&|;", line):
                match = ATM_COMMAND.search(part)
                if match:
                    found.append(match[1].strip())
    return found


@pytest.fixture(scope="module")
def guide() -> str:
    return GUIDE.read_text()


def test_every_setting_is_documented_with_its_default(app: AppSettings, guide: str) -> None:
    rows = table_rows(section(guide, "Environment variables"))
    documented = {row[0].strip("`"): row[1] for row in rows[1:]}
    assert set(documented) == app.names
    for name, default in app.defaults.items():
        if name in documented and default not in ("", None):
            assert f"`{default}`" in documented[name], name


def test_ports_are_the_config_defaults(app: AppSettings, guide: str) -> None:
    ports = section(guide, "Ports")
    assert f"{app.defaults['LINK_PORT']} (`LINK_PORT`)" in ports
    assert f"{app.defaults['OPS_PORT']} (`OPS_PORT`)" in ports


def test_every_atm_command_shown_parses(guide: str) -> None:
    checked = 0
    for command in shell_commands(guide):
        if "$" in command:  # shell variables: the values exist only at run time
            continue
        try:
            build_parser().parse_args(shlex.split(command)[1:])
        except SystemExit:
            pytest.fail(f"`{command}` is not a valid atm command")
        checked += 1
    assert checked >= 8


@pytest.mark.parametrize("document", [GUIDE, README], ids=lambda p: p.name)
def test_inline_atm_commands_name_real_subcommands(document: Any) -> None:
    """`atm NAME [ACTION]` in running text: the subcommand and action exist."""
    parser = build_parser()
    spans = re.findall(r"`atm ([a-z-]+)((?: [a-z][a-z-]*)?)", document.read_text())
    assert spans
    for name, action in spans:
        assert name in COMMANDS, name
        if name in ("db",) and action:
            parser.parse_args([name, action.strip()])  # exits on an unknown action


def test_scripts_named_exist(guide: str) -> None:
    named = set(re.findall(r"scripts/[\w.]+\.(?:sh|py)", guide))
    assert named
    for path in named:
        assert (ROOT / path).exists(), path


def test_ci_jobs_table_is_the_workflow(guide: str) -> None:
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text())
    ci = guide[guide.index("### CI (`.github/workflows/ci.yml`)") :]
    ci = ci[: ci.index("\n### ")]
    jobs = {row[0] for row in table_rows(ci)[1:]}
    assert jobs == set(workflow["jobs"])
