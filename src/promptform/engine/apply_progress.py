"""What apply shows while it works: a progress bar on a terminal, one line per target in CI logs."""

from __future__ import annotations

from typing import TextIO

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from promptform.engine.apply_model import ApplyReport
from promptform.engine.plan_format import count_text, format_usd
from promptform.engine.plan_model import Change, Plan

_VERBS = {"create": "created", "replace": "replaced", "move": "moved", "delete": "deleted"}


def _spend(report: ApplyReport) -> str:
    """What the apply has produced and spent so far."""
    return f"{count_text(report.images, 'image')}, {format_usd(report.cost_usd)}"


def _outcome(change: Change, report: ApplyReport) -> str:
    """What this one target did, then the running totals, kept apart so neither reads as the other:
    `created hero: 1 image, $0.05 (total 3 images, $0.16)`."""
    done = f"{_VERBS.get(change.action, change.action)} {change.address}"
    if change.generates:
        cost = "price unknown" if change.cost_usd is None else format_usd(change.cost_usd)
        done += f": {count_text(change.images, 'image')}, {cost}"
    return f"{done} (total {_spend(report)})"


def _stopping(in_flight: int) -> str:
    if not in_flight:
        return "Interrupted: starting no new requests."
    return (
        f"Interrupted: waiting for {in_flight} request(s) in flight to finish and be recorded "
        "(press Ctrl-C again to abandon them)."
    )


class LineProgress:
    """Plain lines, flushed one by one, for logs."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.total = 0
        self.count = 0

    def started(self, plan: Plan) -> None:
        self.total = len(plan.actionable)

    def finished_target(self, change: Change, report: ApplyReport) -> None:
        self.count += 1
        self._line(_outcome(change, report))

    def failed_target(self, change: Change, message: str, report: ApplyReport) -> None:
        self.count += 1
        self._line(f"FAILED {change.address}: {message}")

    def retrying(self, change: Change, attempt: int, delay: float, message: str) -> None:
        self._line(f"retry {attempt} of {change.address} in {delay:.1f}s: {message}", counted=False)

    def stopping(self, in_flight: int) -> None:
        print(_stopping(in_flight), file=self.stream, flush=True)

    def close(self) -> None:
        pass

    def _line(self, text: str, counted: bool = True) -> None:
        prefix = f"[{self.count}/{self.total}] " if counted else "        "
        print(prefix + text, file=self.stream, flush=True)


class BarProgress:
    """A live bar (targets done/total, images, spend) with finished targets printed above it."""

    def __init__(self, stream: TextIO) -> None:
        self.console = Console(file=stream)
        self.progress = Progress(
            TextColumn("[bold]apply"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[spend]}"),
            TimeElapsedColumn(),
            console=self.console,
            transient=True,
        )
        self.task = self.progress.add_task("apply", total=0, spend="")

    def started(self, plan: Plan) -> None:
        self.progress.update(self.task, total=len(plan.actionable))
        self.progress.start()

    def finished_target(self, change: Change, report: ApplyReport) -> None:
        verb, _, rest = _outcome(change, report).partition(" ")
        self.console.print(f"[green]{verb}[/] {escape(rest)}", highlight=False)
        self.progress.update(self.task, advance=1, spend=_spend(report))

    def failed_target(self, change: Change, message: str, report: ApplyReport) -> None:
        self.console.print(
            f"[red]FAILED[/] {escape(change.address)}: {escape(message)}", highlight=False
        )
        self.progress.update(self.task, advance=1, spend=_spend(report))

    def retrying(self, change: Change, attempt: int, delay: float, message: str) -> None:
        self.console.print(
            f"[yellow]retry {attempt}[/] {escape(change.address)} in {delay:.1f}s: {escape(message)}",
            highlight=False,
        )

    def stopping(self, in_flight: int) -> None:
        self.console.print(f"[yellow]{escape(_stopping(in_flight))}[/]", highlight=False)

    def close(self) -> None:
        self.progress.stop()
