"""The progress display: a live bar on a terminal (the line format is covered by the apply tests)."""

from __future__ import annotations

import io
import re

from promptform.engine.apply_model import ApplyReport
from promptform.engine.apply_progress import BarProgress
from promptform.engine.plan_model import Change, Plan, PlanOptions


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_bar_shows_targets_done_images_and_spend_on_a_terminal() -> None:
    changes = (
        Change("cards[animal=fox]", "create", ("new target",), None, None, images=1),
        Change("hero", "replace", ("prompt changed",), None, None, images=1),
    )
    plan = Plan(changes, (), PlanOptions(), "absent")
    stream = Terminal()
    progress = BarProgress(stream)
    progress.started(plan)
    report = ApplyReport(generated=["cards[animal=fox]"], images=1, cost_usd=0.053)
    progress.finished_target(changes[0], report)
    progress.progress.refresh()
    progress.failed_target(changes[1], "HTTP 400 moderation_blocked: [flagged]", report)
    progress.close()
    raw = stream.getvalue()
    assert "\x1b[" in raw  # drawn as a live display, not plain lines
    shown = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", raw)
    assert "created cards[animal=fox]" in shown  # markup in the address is printed, not parsed
    assert "FAILED hero: HTTP 400 moderation_blocked: [flagged]" in shown
    assert "1/2" in shown
    assert "1 image, $0.05" in shown
