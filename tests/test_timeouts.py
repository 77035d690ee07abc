"""The per-test timeout in pyproject.toml: a test that never finishes fails the run and names itself."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

STUCK_TEST = """
import threading


def test_that_waits_for_an_event_nobody_sets() -> None:
    threading.Event().wait()
"""


def test_a_stuck_test_fails_the_run_and_names_itself(tmp_path: Path) -> None:
    (tmp_path / "test_stuck.py").write_text(STUCK_TEST)
    # This repository's settings (the timeout method above all), with a 2 s limit instead of 120 s.
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-c",
        str(REPO / "pyproject.toml"),
        "-p",
        "no:cacheprovider",
        "--timeout",
        "2",
        str(tmp_path / "test_stuck.py"),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "timeout method: thread" in output, output
    assert "Timeout" in output, output
    assert "test_that_waits_for_an_event_nobody_sets" in output, output
