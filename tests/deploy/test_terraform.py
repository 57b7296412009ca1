"""Every Terraform file parses (python-hcl2) and keeps `terraform fmt` style: two-space
indentation, no tabs or trailing blanks, and `=` aligned across each run of single-line
attributes, as `terraform fmt` aligns them. scripts/validate_deploy.sh also runs the real
`terraform fmt -check` where a Terraform binary exists and checkov on the same files."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .conftest import TERRAFORM, read_tf

FILES = sorted(TERRAFORM.rglob("*.tf")) + sorted(TERRAFORM.rglob("*.tfvars.example"))
MODULES = ("networking", "security", "ecr", "rds", "secrets", "ecs", "s3", "monitoring")
ATTRIBUTE = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z0-9_\"-]+)(?P<space> *)= ")
STRING = re.compile(r'"(?:[^"\\]|\\.)*"')


def _ids(paths: list[Path]) -> list[str]:
    return [str(path.relative_to(TERRAFORM)) for path in paths]


def _single_line(line: str) -> bool:
    code = STRING.sub('""', line.split(" #", 1)[0])
    opened = sum(code.count(c) for c in "([{")
    closed = sum(code.count(c) for c in ")]}")
    return opened == closed


def fmt_problems(text: str) -> list[str]:
    problems: list[str] = []
    group: list[tuple[int, re.Match[str]]] = []

    def close_group() -> None:
        if len(group) > 1:
            width = max(len(m["key"]) for _, m in group)
            for number, match in group:
                if len(match["key"]) + len(match["space"]) != width + 1:
                    problems.append(f"line {number}: '=' not aligned with its neighbours")
        group.clear()

    for number, line in enumerate(text.splitlines(), 1):
        if "\t" in line:
            problems.append(f"line {number}: tab")
        if line != line.rstrip():
            problems.append(f"line {number}: trailing blank")
        indent = len(line) - len(line.lstrip(" "))
        if line.strip() and indent % 2:
            problems.append(f"line {number}: indentation {indent} is not a multiple of 2")
        match = ATTRIBUTE.match(line)
        if match and _single_line(line):
            if group and len(group[0][1]["indent"]) != len(match["indent"]):
                close_group()
            group.append((number, match))
        else:
            close_group()
    close_group()
    if not text.endswith("\n"):
        problems.append("no newline at the end")
    return problems


def test_every_module_and_the_dev_environment_exist() -> None:
    for module in MODULES:
        for name in ("main.tf", "variables.tf", "outputs.tf"):
            assert (TERRAFORM / "modules" / module / name).is_file(), f"{module}/{name}"
    dev = TERRAFORM / "environments" / "dev"
    for name in ("main.tf", "variables.tf", "outputs.tf", "versions.tf"):
        assert (dev / name).is_file()
    assert (dev / "terraform.tfvars.example").is_file()


@pytest.mark.parametrize("path", FILES, ids=_ids(FILES))
def test_file_parses(path: Path) -> None:
    assert isinstance(read_tf(path), dict)


@pytest.mark.parametrize("path", FILES, ids=_ids(FILES))
def test_file_is_in_terraform_fmt_style(path: Path) -> None:
    assert fmt_problems(path.read_text()) == []


def test_the_style_check_finds_misalignment_and_tabs() -> None:
    text = 'resource "x" "y" {\n  a = 1\n  bbb = 2\n\tc = 3\n}\n'
    problems = fmt_problems(text)
    assert "line 2: '=' not aligned with its neighbours" in problems
    assert "line 4: tab" in problems
    assert fmt_problems('resource "x" "y" {\n  a   = 1\n  bbb = 2\n}\n') == []


def test_every_variable_and_output_is_described() -> None:
    for path in FILES:
        if path.suffix != ".tf":
            continue
        data = read_tf(path)
        for kind in ("variable", "output"):
            for block in data.get(kind, []):
                for name, body in block.items():
                    assert body.get("description"), f"{path.name}: {kind} {name}"


def test_module_calls_pass_only_declared_variables() -> None:
    dev = read_tf(TERRAFORM / "environments" / "dev" / "main.tf")
    for block in dev["module"]:
        for name, body in block.items():
            source = (TERRAFORM / "environments" / "dev" / body["source"]).resolve()
            declared: set[str] = set()
            required: set[str] = set()
            for variable_block in read_tf(source / "variables.tf").get("variable", []):
                for variable, spec in variable_block.items():
                    declared.add(variable)
                    if "default" not in spec:
                        required.add(variable)
            given = {key for key in body if key not in ("source", "__is_block__")}
            assert given - declared == set(), f"module {name}: undeclared {given - declared}"
            assert required - given == set(), f"module {name}: missing {required - given}"


def test_outputs_the_deploy_workflow_needs() -> None:
    outputs: set[str] = set()
    for block in read_tf(TERRAFORM / "environments" / "dev" / "outputs.tf")["output"]:
        outputs |= set(block)
    workflow = (TERRAFORM.parents[1] / ".github" / "workflows" / "deploy.yml").read_text()
    assert {
        "ecr_repository_name",
        "ecs_cluster_name",
        "ecs_service_name",
        "host_task_family",
        "migration_task_family",
        "subnet_ids",
        "fargate_security_group_id",
        "link_endpoint",
        "ops_url",
    } <= outputs
    for variable in (
        "ECR_REPOSITORY",
        "ECS_CLUSTER",
        "ECS_SERVICE",
        "HOST_TASK_FAMILY",
        "MIGRATION_TASK_FAMILY",
        "SUBNET_IDS",
        "SECURITY_GROUP_ID",
    ):
        assert f"vars.{variable}" in workflow
