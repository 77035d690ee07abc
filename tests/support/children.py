"""Child processes for tests that stop, signal or kill a real promptform run.

A thread reads the child's stderr as it comes, so a test can wait for a line without the pipe
filling up, and every wait is bounded.
"""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO

import pytest

from tests.support.waiting import join_thread

PROCESS_SECONDS = 30  # how long a killed child may take to go, and its reader to finish


class StderrChild:
    """A child process whose stderr lines are collected in `lines` as they come."""

    def __init__(
        self,
        command: Sequence[str],
        env: Mapping[str, str],
        cwd: Path | None = None,
        stdout: IO[str] | int = subprocess.DEVNULL,
    ) -> None:
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            list(command), cwd=cwd, stdout=stdout, stderr=subprocess.PIPE, text=True, env=env
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line.rstrip("\n"))

    def output(self) -> str:
        return "\n".join(self.lines)

    def finish(self, timeout: float = PROCESS_SECONDS) -> int:
        """Wait for the child to end on its own; its exit code."""
        code = self.process.wait(timeout)
        join_thread(self._reader, "the child's stderr reader", timeout)
        return code

    def kill(self) -> int:
        self.process.kill()
        code = self.finish()
        assert self.process.stderr is not None
        self.process.stderr.close()
        return code


@pytest.fixture
def children() -> Iterator[list[StderrChild]]:
    """Children a test started (it appends them); any still running at the end is killed."""
    started: list[StderrChild] = []
    yield started
    for child in started:
        if child.process.poll() is None:
            child.kill()
