"""Where messages go: results to stdout; warnings, errors and progress to stderr.

Knows about verbosity, NO_COLOR and GitHub Actions annotations, so commands never have to.
"""

from __future__ import annotations

import io
import os
import stat
import sys
from typing import TextIO

from promptform.core.errors import PromptformError


def _escape_annotation(text: str, property_value: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if property_value:
        text = text.replace(":", "%3A").replace(",", "%2C")
    return text


def _is_regular_file(stream: TextIO) -> bool:
    try:
        return stat.S_ISREG(os.fstat(stream.fileno()).st_mode)
    except (OSError, ValueError, io.UnsupportedOperation):  # StringIO, a closed or odd stream
        return False


class Output:
    def __init__(
        self,
        verbosity: int = 0,
        stdout: TextIO | None = None,
        stderr: TextIO | None = None,
    ) -> None:
        self.verbosity = verbosity
        self.stdout = stdout or sys.stdout
        self.stderr = stderr or sys.stderr
        self.github = os.environ.get("GITHUB_ACTIONS") == "true"

    @property
    def color(self) -> bool:
        if "NO_COLOR" in os.environ or os.environ.get("TERM") == "dumb":
            return False
        return bool(getattr(self.stdout, "isatty", lambda: False)())

    def result(self, text: str) -> None:
        """The command's product (a plan, a render, a schema): always printed, even with -q."""
        text = text if text.endswith("\n") else text + "\n"
        self.stdout.write(self._inert(text, self.stdout))
        self.stdout.flush()

    def info(self, text: str) -> None:
        if self.verbosity >= 0:
            self.stderr.write(self._inert(text + "\n", self.stderr))
            self.stderr.flush()

    def _inert(self, text: str, stream: TextIO) -> str:
        """`text` made unable to issue workflow commands when printed into an Actions log.

        Plans and renders quote prompts from pull requests; the runner reads any line starting with
        `::` (leading spaces allowed) as a command, such as `::add-mask::` or `::error::`. Such
        text is wrapped in `::stop-commands::TOKEN` ... `::TOKEN::` with a token the text cannot
        know. A regular file (`plan --format markdown > plan.md`) is no log and is left as it is.
        """
        if not self.github or not any(line.lstrip().startswith("::") for line in text.splitlines()):
            return text
        if _is_regular_file(stream):
            return text
        import secrets  # only here: most runs print nothing that needs it

        token = secrets.token_hex(16)
        return f"::stop-commands::{token}\n{text}::{token}::\n"

    def debug(self, text: str) -> None:
        if self.verbosity > 0:
            print(text, file=self.stderr)

    def warning(self, problem: PromptformError) -> None:
        if self.verbosity >= 0:
            print(f"warning: {problem.one_line()}", file=self.stderr)
        self._annotate("warning", problem)

    def error(self, problem: PromptformError) -> None:
        for leaf in problem.errors():
            print(f"error: {leaf.one_line()}", file=self.stderr)
            self._annotate("error", leaf)

    def _annotate(self, level: str, problem: PromptformError) -> None:
        if not self.github:
            return
        properties = []
        if problem.location is not None:
            properties.append(f"file={_escape_annotation(problem.location.file, True)}")
            if problem.location.line is not None:
                properties.append(f"line={problem.location.line}")
            if problem.location.column is not None:
                properties.append(f"col={problem.location.column}")
        head = f"::{level} {','.join(properties)}" if properties else f"::{level}"
        # stderr: stdout carries results (a plan comment, JSON) that annotations must not corrupt;
        # the Actions runner reads workflow commands from both streams.
        print(f"{head}::{_escape_annotation(problem.message)}", file=self.stderr)
