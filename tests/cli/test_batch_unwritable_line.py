"""A batch line whose entry the lock cannot hold fails alone, its images kept; the rest of the
batch is recorded, and a later collect is not stopped by it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from promptform.engine import batch_collect
from promptform.state.lockfile import LockEntry, read_lockfile
from tests.cli.test_batch import project
from tests.support.cli import RunCli
from tests.support.memory_batches import MemoryBatches

# The fixture, imported under its own name so pytest finds it.
from tests.support.memory_batches import memory_batches as memory_batches


def test_a_line_the_lock_cannot_hold_fails_alone_with_its_images_kept(
    tmp_path: Path,
    memory_batches: MemoryBatches,
    run_cli: RunCli,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root = project(tmp_path)
    assert run_cli("-C", root, "apply", "--batch", "--yes").exit_code == 0
    memory_batches.finish("batch_1")
    writable_text = batch_collect.writable_text

    def refusing_card_2(entry: LockEntry) -> Any:
        if entry.request.get("prompt") == "Card 2.":
            raise ValueError("the lock cannot hold this entry: an odd value")
        return writable_text(entry)

    monkeypatch.setattr(batch_collect, "writable_text", refusing_card_2)

    collected = run_cli("-C", root, "batch", "collect")

    assert "Traceback" not in collected.stderr
    assert "cards[i=2]" in collected.stderr
    assert "the lock cannot hold this entry" in collected.stderr
    assert sorted(read_lockfile(root / "promptform.lock").targets) == ["cards[i=1]", "cards[i=3]"]
    notes = [
        json.loads(path.read_text())
        for path in (root / ".promptform/rescued").glob("*/rescued.json")
    ]
    assert [note["address"] for note in notes] == ["cards[i=2]"]
    monkeypatch.undo()
    again = run_cli("-C", root, "batch", "collect")
    assert "Traceback" not in again.stderr
