"""The errors promptform raises for problems the user can fix.

PromptformError                 anything the user can fix; printed as one line, exit 1
 +-- ConfigError                promptform.toml / [tool.promptform]
 +-- ManifestError              a manifest: YAML, fields, per-model rules, duplicates
 |    +-- TemplateError         Jinja: syntax, undefined variables, sandbox refusals
 +-- LockfileError              promptform.lock unreadable, corrupt or too new
 +-- ErrorGroup                 several of the above, reported together

Anything else that escapes is a bug in promptform (exit 3).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Location:
    """Where a problem is: a file, and when known a 1-based line and column."""

    file: str
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        parts = [self.file]
        if self.line is not None:
            parts.append(str(self.line))
            if self.column is not None:
                parts.append(str(self.column))
        return ":".join(parts)


class PromptformError(Exception):
    """A problem the user can fix. `str()` is the one-line message without the location."""

    def __init__(self, message: str, location: Location | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.location = location

    def __str__(self) -> str:
        return self.message

    def one_line(self) -> str:
        """The message as printed after `error: `: `file:line:col: message`."""
        text = " ".join(self.message.split("\n"))
        return f"{self.location}: {text}" if self.location else text

    def errors(self) -> Iterator[PromptformError]:
        yield self


class ConfigError(PromptformError):
    pass


class ManifestError(PromptformError):
    pass


class TemplateError(ManifestError):
    pass


class LockfileError(PromptformError):
    pass


class ErrorGroup(PromptformError):
    """Several independent problems, so the user can fix them all in one go."""

    def __init__(self, problems: Iterable[PromptformError]) -> None:
        self.problems = [leaf for problem in problems for leaf in problem.errors()]
        count = len(self.problems)
        super().__init__(f"{count} problem{'s' if count != 1 else ''} found")

    def errors(self) -> Iterator[PromptformError]:
        yield from self.problems


def display_path(path: Path, root: Path) -> str:
    """A path as shown in messages: relative to the project root when inside it, POSIX style."""
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()
