"""The scenario package's exceptions: one root, a file error that names file and line."""

from __future__ import annotations

from pathlib import Path

__all__ = ["ScenarioError", "ScenarioFileError"]


class ScenarioError(Exception):
    """Anything that stops a scenario from being loaded or run."""


class ScenarioFileError(ScenarioError):
    """A scenario file that cannot be used: ``path:line: what is wrong``."""

    def __init__(self, path: Path | str, line: int | None, problem: str) -> None:
        self.path = Path(path)
        self.line = line
        self.problem = problem
        where = f"{path}:{line}" if line is not None else f"{path}"
        super().__init__(f"{where}: {problem}")
