"""``scripts/audit_deps.py`` (``make audit``): a vulnerability fails everywhere; a package that
could not be looked up fails under CI=true and is a printed skip elsewhere, never a silent
pass. PyPI's advisory data cannot be reached from the test machine, so pip-audit is stood in
for by a script that writes the JSON report pip-audit 2.10 writes (its format, as read by
``judge``); the real tool runs in ``make audit``."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

from scripts.audit_deps import TOOL, judge

ROOT = Path(__file__).resolve().parents[2]
CLEAN = {"name": "aiohttp", "version": "3.14.5", "vulns": []}
VULNERABLE = {
    "name": "aiohttp",
    "version": "3.14.5",
    "vulns": [
        {
            "id": "PYSEC-2099-1",
            "fix_versions": ["3.14.6"],
            "aliases": ["CVE-2099-0001"],
            "description": "...",
        }
    ],
}
NOT_FOUND = {
    "name": "six",
    "skip_reason": "Dependency not found on PyPI and could not be audited: six (1.17.0)",
}


def _run(
    tmp_path: Path, report: Mapping[str, object], *, ci: bool, **extra: str
) -> tuple[int, str]:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / f".{TOOL.replace('==', '-')}").touch()  # "installed"
    tool = venv / "bin" / "pip-audit"
    tool.write_text(
        f"#!{sys.executable}\n"
        "import json, sys\n"
        "out = sys.argv[sys.argv.index('--output') + 1]\n"
        f"open(out, 'w').write({json.dumps(json.dumps(report))})\n"
    )
    tool.chmod(0o755)
    env = {"PATH": "/usr/bin:/bin", "AUDIT_VENV": str(venv), "CI": "true" if ci else "false"}
    env.update(extra)
    done = subprocess.run(
        [sys.executable, "scripts/audit_deps.py", "requirements/runtime.txt"],
        cwd=ROOT, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    return done.returncode, done.stdout


def test_judge_reads_vulnerabilities_and_skips():
    verdict = judge({"dependencies": [VULNERABLE, NOT_FOUND, CLEAN], "fixes": []})
    assert verdict.audited == 2
    assert verdict.vulnerable == ["aiohttp 3.14.5: PYSEC-2099-1 (CVE-2099-0001), fixed in: 3.14.6"]
    assert verdict.unaudited == [f"six: {NOT_FOUND['skip_reason']}"]


@pytest.mark.parametrize("ci", [True, False])
def test_a_vulnerability_fails_everywhere(tmp_path, ci):
    code, out = _run(tmp_path, {"dependencies": [VULNERABLE, CLEAN]}, ci=ci)
    assert code == 1
    assert "audit_deps: VULNERABLE aiohttp 3.14.5: PYSEC-2099-1" in out
    assert "FAIL 1 known vulnerability(ies) in runtime.txt" in out


def test_packages_not_looked_up_fail_under_ci_and_are_a_printed_skip_elsewhere(tmp_path):
    report = {"dependencies": [CLEAN, NOT_FOUND]}
    code, out = _run(tmp_path, report, ci=True)
    assert code == 1
    assert out.startswith("audit_deps: FAIL 1 of 2 pinned packages could not be looked up")
    code, out = _run(tmp_path / "again", report, ci=False)
    assert code == 0
    assert out.startswith("audit_deps: skipped: 1 of 2 pinned packages could not be looked up")
    assert "(with AUDIT_REQUIRED=true, or CI=true without it, this fails)" in out


def test_a_clean_report_passes(tmp_path):
    code, out = _run(tmp_path, {"dependencies": [CLEAN]}, ci=True)
    assert (code, out) == (
        0,
        "audit_deps: ok   1 pinned packages of runtime.txt: no known vulnerabilities\n",
    )


def test_audit_required_overrides_ci(tmp_path):
    report = {"dependencies": [CLEAN, NOT_FOUND]}
    assert _run(tmp_path, report, ci=True, AUDIT_REQUIRED="false")[0] == 0
    assert _run(tmp_path / "again", report, ci=False, AUDIT_REQUIRED="true")[0] == 1
