"""Known vulnerabilities in the dependencies the image ships (``requirements/runtime.txt``,
pinned with hashes), with pip-audit against PyPI's advisory data: the check GitHub's CI runs,
in ``make test`` too.

    python3 scripts/audit_deps.py [REQUIREMENTS]

pip-audit lives in its own virtualenv (``.venv-audit``, ``AUDIT_VENV``), pinned below and
installed once from PyPI. It reads the pinned versions from the file (``--disable-pip``: no
resolver, nothing installed) and asks PyPI about each one.

It needs PyPI. Under ``CI=true`` (``.ci/run``, GitHub) every part must work: a package that
could not be looked up fails the check like a vulnerability does. Elsewhere, when PyPI cannot
be reached (an offline laptop, a mirror without PyPI's JSON API), it prints one line saying
what it could not do and passes, so ``make test`` works offline; a vulnerability found is a
failure everywhere. ``AUDIT_REQUIRED=true|false`` overrides what ``CI`` decides.

Exit status: 0 clean (or skipped outside CI, with the reason printed), 1 otherwise.
"""

from __future__ import annotations

import json
import os
import subprocess  # nosec B404
import sys
import tempfile
import venv as venv_module
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TOOL = "pip-audit==2.10.1"
ROOT = Path(__file__).resolve().parents[1]
DEFAULT_REQUIREMENTS = ROOT / "requirements" / "runtime.txt"


@dataclass
class Verdict:
    """What one pip-audit JSON report says."""

    audited: int = 0
    vulnerable: list[str] = field(default_factory=list)  # "name version: ID (fix: ...)"
    unaudited: list[str] = field(default_factory=list)  # "name: reason"


def judge(report: Mapping[str, Any]) -> Verdict:
    verdict = Verdict()
    for dependency in report.get("dependencies", []):
        name = dependency.get("name", "?")
        if "skip_reason" in dependency:
            verdict.unaudited.append(f"{name}: {dependency['skip_reason']}")
            continue
        verdict.audited += 1
        for vuln in dependency.get("vulns", []):
            fixes = ", ".join(vuln.get("fix_versions", [])) or "none yet"
            aliases = ", ".join(vuln.get("aliases", []))
            also = f" ({aliases})" if aliases else ""
            verdict.vulnerable.append(
                f"{name} {dependency.get('version', '?')}: {vuln.get('id', '?')}{also}, "
                f"fixed in: {fixes}"
            )
    return verdict


def _say(line: str) -> None:
    print(f"audit_deps: {line}", flush=True)


def _cannot(reason: str, required: bool) -> int:
    if required:
        _say(f"FAIL {reason}")
        return 1
    _say(f"skipped: {reason} (with AUDIT_REQUIRED=true, or CI=true without it, this fails)")
    return 0


def _install(venv: Path) -> str | None:
    """The pinned pip-audit in ``venv``; the reason when it cannot be installed."""
    stamp = venv / f".{TOOL.replace('==', '-')}"
    if stamp.exists():
        return None
    # Every command here is fixed: this interpreter, the pinned tool, files of the repository
    # (ruff's S603 and bandit's B603 cannot see that; hence the markers).
    python = str(venv / "bin" / "python")
    venv_module.create(venv, clear=True, with_pip=True)
    install = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", TOOL]
    installed = subprocess.run(install, capture_output=True, text=True, check=False)  # noqa: S603  # nosec B603
    if installed.returncode != 0:
        last = (installed.stderr.strip().splitlines() or ["no output"])[-1]
        return f"installing {TOOL} from PyPI failed: {last}"
    stamp.touch()
    return None


def main(argv: list[str]) -> int:
    requirements = Path(argv[0]) if argv else DEFAULT_REQUIREMENTS
    # AUDIT_REQUIRED overrides CI (true/false): for a CI network whose PyPI proxy serves the
    # package index but not PyPI's JSON API, which pip-audit reads.
    required = os.environ.get("AUDIT_REQUIRED", os.environ.get("CI", "")).lower() == "true"
    venv = Path(os.environ.get("AUDIT_VENV", str(ROOT / ".venv-audit")))
    problem = _install(venv)
    if problem is not None:
        return _cannot(problem, required)
    with tempfile.TemporaryDirectory(prefix="audit-") as work:
        out = Path(work) / "report.json"
        tool = str(venv / "bin" / "pip-audit")
        audit = [tool, "--disable-pip", "-r", str(requirements), "--progress-spinner", "off"]
        audit += ["--timeout", "30", "--format", "json", "--output", str(out)]
        run = subprocess.run(audit, capture_output=True, text=True, check=False)  # noqa: S603  # nosec B603
        if not out.exists():
            last = (run.stderr.strip().splitlines() or ["no output"])[-1]
            return _cannot(f"pip-audit could not run: {last}", required)
        verdict = judge(json.loads(out.read_text()))
    for line in verdict.vulnerable:
        _say(f"VULNERABLE {line}")
    if verdict.vulnerable:
        _say(f"FAIL {len(verdict.vulnerable)} known vulnerability(ies) in {requirements.name}")
        return 1
    if verdict.audited == 0 and not verdict.unaudited:
        return _cannot(f"pip-audit found no pinned packages in {requirements}", required)
    if verdict.unaudited:
        total = verdict.audited + len(verdict.unaudited)
        return _cannot(
            f"{len(verdict.unaudited)} of {total} pinned packages could not be looked up on "
            f"PyPI (first: {verdict.unaudited[0]})",
            required,
        )
    _say(f"ok   {verdict.audited} pinned packages of {requirements.name}: no known vulnerabilities")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
