"""What `run_cli` (tests/conftest.py) returns."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str


# The `run_cli` fixture: `promptform ARGS...` in-process.
RunCli = Callable[..., CliResult]
