"""Helpers shared by subcommands: loading configuration with one clear line per problem."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

from host.config import HostConfig
from host.errors import ConfigError

__all__ = ["load_host_config"]


def load_host_config(overrides: Mapping[str, str | None] | None = None) -> HostConfig | None:
    """Read ``HostConfig`` from the environment plus CLI overrides; on problems print each on
    its own line to stderr and return None (the caller exits 2)."""
    env = dict(os.environ)
    for key, value in (overrides or {}).items():
        if value is not None:
            env[key] = value
    try:
        return HostConfig.from_env(env)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"atm: config: {problem}", file=sys.stderr)
        return None
