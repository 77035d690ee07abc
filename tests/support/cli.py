"""What `run_cli` (tests/conftest.py) returns."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str
