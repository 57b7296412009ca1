"""Run many scenarios: in parallel worker processes (``-j N``), a pass/fail table with times,
and JUnit XML for CI systems. Each scenario gets its own work directory, host database (unless
``database_url`` is given: then scenarios share it and run one at a time) and ports."""

from __future__ import annotations

import asyncio
import concurrent.futures
import multiprocessing
import os
import time
import xml.etree.ElementTree as ET  # nosec B405 - writes JUnit XML, never parses any
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from atm.scenario.format import Scenario
from atm.scenario.loader import load_file
from atm.scenario.runner import run_scenario, scenario_host_config, sqlite_template

__all__ = ["Outcome", "print_table", "run_suite", "write_junit"]


@dataclass(frozen=True)
class Outcome:
    """One scenario's result, small enough to travel back from a worker process."""

    name: str
    path: str
    ok: bool
    seconds: float
    problems: tuple[str, ...] = ()
    output: tuple[str, ...] = field(default=(), repr=False)


def _run_one(path: str, database_url: str | None, timeout: float) -> Outcome:
    scenario = load_file(Path(path))
    return _run_loaded(scenario, database_url, timeout)


def _run_loaded(scenario: Scenario, database_url: str | None, timeout: float) -> Outcome:
    config = scenario_host_config(dict(os.environ))
    result = asyncio.run(
        run_scenario(scenario, host_config=config, database_url=database_url, timeout=timeout)
    )
    return Outcome(
        scenario.name,
        str(scenario.path),
        result.ok,
        result.seconds,
        tuple(result.problems),
        tuple(result.observed.output),
    )


def run_suite(
    scenarios: Sequence[Scenario],
    *,
    jobs: int = 1,
    database_url: str | None = None,
    timeout: float = 30.0,
    progress: Callable[[Outcome], None] | None = None,
) -> list[Outcome]:
    """Run every scenario; the outcomes come back in the order given."""
    if database_url:
        jobs = 1  # one shared database: scenarios must not see each other's money move
    outcomes: dict[int, Outcome] = {}
    if jobs <= 1 or len(scenarios) <= 1:
        for index, scenario in enumerate(scenarios):
            outcomes[index] = _run_loaded(scenario, database_url, timeout)
            if progress:
                progress(outcomes[index])
    else:
        if not database_url:
            # Migrate and seed the template database once, before the workers start.
            sqlite_template(scenario_host_config(dict(os.environ)))
        # Workers are forked from this (single-threaded) process: they start with every
        # module imported and the template made, which saves seconds per worker.
        methods = multiprocessing.get_all_start_methods()
        context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
        with concurrent.futures.ProcessPoolExecutor(jobs, mp_context=context) as pool:
            futures = {
                pool.submit(_run_one, str(s.path), database_url, timeout): i
                for i, s in enumerate(scenarios)
            }
            for future in concurrent.futures.as_completed(futures):
                index = futures[future]
                try:
                    outcome = future.result()
                except Exception as exc:  # a worker that died still gets a row in the table
                    scenario = scenarios[index]
                    outcome = Outcome(
                        scenario.name, str(scenario.path), False, 0.0, (f"runner crashed: {exc}",)
                    )
                outcomes[index] = outcome
                if progress:
                    progress(outcome)
    return [outcomes[i] for i in range(len(scenarios))]


def print_table(outcomes: Sequence[Outcome], seconds: float, jobs: int, out: TextIO) -> None:
    width = max([len(o.name) for o in outcomes] + [8])
    print(f"{'scenario':<{width}}  result  seconds", file=out)
    for o in outcomes:
        print(f"{o.name:<{width}}  {'pass' if o.ok else 'FAIL':<6}  {o.seconds:7.2f}", file=out)
    failed = [o for o in outcomes if not o.ok]
    for o in failed:
        print(f"\n-- {o.name} ({o.path}) failed:", file=out)
        for problem in o.problems:
            print(f"   {problem}", file=out)
        tail = [line for line in o.output if line.startswith(("!!", "=="))][-12:]
        if tail:
            print("   last lines of its narration:", file=out)
            for line in tail:
                print(f"     {line}", file=out)
    passed = len(outcomes) - len(failed)
    print(
        f"\n{len(outcomes)} scenario(s): {passed} passed, {len(failed)} failed "
        f"in {seconds:.1f} s (-j {jobs})",
        file=out,
    )


def write_junit(outcomes: Sequence[Outcome], seconds: float, path: Path) -> None:
    """JUnit XML as Jenkins, GitLab and GitHub test reporters read it."""
    failures = sum(1 for o in outcomes if not o.ok)
    suites = ET.Element("testsuites", tests=str(len(outcomes)), failures=str(failures))
    suite = ET.SubElement(
        suites,
        "testsuite",
        name="atm-scenarios",
        tests=str(len(outcomes)),
        failures=str(failures),
        errors="0",
        skipped="0",
        time=f"{seconds:.3f}",
        timestamp=time.strftime("%Y-%m-%dT%H:%M:%S"),
    )
    for o in outcomes:
        case = ET.SubElement(
            suite,
            "testcase",
            classname="scenario",
            name=o.name,
            file=o.path,
            time=f"{o.seconds:.3f}",
        )
        if not o.ok:
            failure = ET.SubElement(
                case, "failure", message=o.problems[0] if o.problems else "failed"
            )
            failure.text = "\n".join(o.problems)
        system_out = ET.SubElement(case, "system-out")
        system_out.text = "\n".join(o.output)
    ET.indent(suites)
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(suites).write(path, encoding="utf-8", xml_declaration=True)
