"""Batch mode against the loopback images API: real uploads, batches, result files and kill -9.

Every request line the fake receives is checked against the official schema (its violations list
stays empty), and whatever happens to a process, the lockfile must stay true and nothing may be
submitted or recorded twice.
"""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path

from promptform.core.config import load_config
from promptform.state.lockfile import read_lockfile
from promptform.state.pending_batches import read_submissions
from tests.support.apply import (
    cards,
    locked_entries_match_disk,
    make_fake_project,
    png,
    subprocess_env,
)
from tests.support.apply import keyed_fake_images_api as keyed_fake_images_api  # `server`
from tests.support.children import StderrChild
from tests.support.children import children as children
from tests.support.cli import RunCli
from tests.support.fake_batches import complete, expire, partial_failure
from tests.support.fake_images_api import FakeImagesAPI, timeout
from tests.support.waiting import wait_for

PROCESS_SECONDS = 30


def batch_project(root: Path, server: FakeImagesAPI, count: int) -> Path:
    return make_fake_project(root, server, cards(count), batch=True)


def submissions(root: Path) -> list[object]:
    return list(read_submissions(load_config(root).batches_dir))


def test_submit_plan_collect_and_plan_again_over_http(
    tmp_path: Path, server: FakeImagesAPI, run_cli: RunCli
) -> None:
    files = {
        **cards(2),
        "refs/photo.png": png((200, 10, 10)),
        "prompts/edit.yaml": "name: edit\nprompt: Make it blue.\nimages: [refs/photo.png]\n",
    }
    root = make_fake_project(tmp_path / "repo", server, files, batch=True)
    submitted = run_cli("-C", root, "apply", "--batch", "--yes")
    assert submitted.exit_code == 0, submitted.stderr
    assert "Submitted 3 requests in 2 batches" in submitted.stderr  # one per endpoint
    assert server.violations == []  # every line valid for its endpoint's schema
    assert server.image_requests == []  # nothing generated directly
    endpoints = sorted(item.endpoint for item in submissions(root))  # type: ignore[attr-defined]
    assert endpoints == ["images/edits", "images/generations"]

    plan = run_cli("-C", root, "plan", "--format", "json")
    data = json.loads(plan.stdout)
    assert data["summary"]["pending"] == 3
    assert data["changes"] == []

    collected = run_cli("-C", root, "batch", "collect", "--wait", "--timeout", "60s")
    assert collected.exit_code == 0, collected.stderr
    entries = locked_entries_match_disk(root)
    assert sorted(entries) == ["cards[i=1]", "cards[i=2]", "edit"]
    assert entries["edit"].inputs[0].path == "refs/photo.png"
    assert all(entry.batch_id and entry.batch_id.startswith("batch_") for entry in entries.values())
    assert submissions(root) == []
    again = run_cli("-C", root, "plan")
    assert "No changes. 3 targets up to date." in again.stdout
    assert server.stats()["batches_created"] == 2


def test_moderation_blocked_lines_over_http(
    tmp_path: Path, server: FakeImagesAPI, run_cli: RunCli
) -> None:
    server.batches.default = partial_failure(prompt_containing="Card 2.", polls_per_step=0)
    root = batch_project(tmp_path / "repo", server, 3)
    assert run_cli("-C", root, "apply", "--batch", "--yes").exit_code == 0
    collected = run_cli("-C", root, "batch", "collect")
    assert collected.exit_code == 1
    assert "failed cards[i=2]: " in collected.stderr
    assert "moderation_blocked" in collected.stderr
    assert sorted(locked_entries_match_disk(root)) == ["cards[i=1]", "cards[i=3]"]
    assert "+ create  cards[i=2]" in run_cli("-C", root, "plan").stdout


def test_an_expired_batch_over_http_returns_what_did_not_run(
    tmp_path: Path, server: FakeImagesAPI, run_cli: RunCli
) -> None:
    server.batches.default = expire(done_lines=1, polls_per_step=0)
    root = batch_project(tmp_path / "repo", server, 3)
    assert run_cli("-C", root, "apply", "--batch", "--yes").exit_code == 0
    collected = run_cli("-C", root, "batch", "collect")
    assert collected.exit_code == 0, collected.stderr
    assert "(expired): 1 recorded, 2 not run" in collected.stderr
    assert len(locked_entries_match_disk(root)) == 1
    resubmitted = run_cli("-C", root, "apply", "--batch", "--yes")
    assert "Submitted 2 requests in 1 batch" in resubmitted.stderr


def test_kill_9_between_upload_and_batch_creation_finds_the_batch_on_restart(
    tmp_path: Path, server: FakeImagesAPI, run_cli: RunCli, children: list[StderrChild]
) -> None:
    root = batch_project(tmp_path / "repo", server, 3)
    # The batch is created, then its answer hangs: the process is killed before it records it.
    server.lose_batch_answers(timeout(sleep=PROCESS_SECONDS))
    command = [sys.executable, "-m", "promptform", "-C", str(root), "apply", "--batch", "--yes"]
    child = StderrChild(command, subprocess_env(), root)
    children.append(child)
    wait_for(lambda: server.stats()["batches_created"] == 1, what="the batch to be created")
    [intent] = read_submissions(load_config(root).batches_dir)
    assert intent.input_file_id is not None
    assert intent.batch_id is None
    assert child.kill() == -signal.SIGKILL

    restarted = run_cli("-C", root, "apply", "--batch", "--yes")
    assert restarted.exit_code == 0, restarted.stderr
    stats = server.stats()
    assert (stats["uploads"], stats["batches_created"]) == (1, 1)  # nothing paid twice
    [found] = read_submissions(load_config(root).batches_dir)
    assert found.id == intent.id
    assert found.batch_id is not None

    collected = run_cli("-C", root, "batch", "collect", "--wait", "--timeout", "60s")
    assert collected.exit_code == 0, collected.stderr
    assert len(locked_entries_match_disk(root)) == 3


# Runs collect with one lockfile rewrite per two targets, and pauses after each rewrite, saying so,
# so the test can kill it between two groups of recorded images.
_PAUSING_COLLECT = """
import sys, time
import promptform.engine.batch_collect as batch_collect
from promptform.cli import main
from promptform.state.lockfile_writer import LockfileWriter

batch_collect.RECORD_EVERY = 2
update = LockfileWriter.update

def update_then_pause(self, put, remove):
    update(self, put, remove)
    print("recorded", len(put), file=sys.stderr, flush=True)
    time.sleep(30)

LockfileWriter.update = update_then_pause
sys.exit(main(sys.argv[1:]))
"""


def test_kill_9_during_collect_loses_nothing_and_records_nothing_twice(
    tmp_path: Path, server: FakeImagesAPI, run_cli: RunCli, children: list[StderrChild]
) -> None:
    server.batches.default = complete(polls_per_step=0)
    root = batch_project(tmp_path / "repo", server, 6)
    assert run_cli("-C", root, "apply", "--batch", "--yes").exit_code == 0
    child = StderrChild(
        [sys.executable, "-c", _PAUSING_COLLECT, "-C", str(root), "batch", "collect"],
        subprocess_env(),
        root,
    )
    children.append(child)
    wait_for(lambda: "recorded 2" in child.lines, what="the first group to be recorded")
    assert child.kill() == -signal.SIGKILL
    recorded = locked_entries_match_disk(root)  # the lockfile parses and tells the truth
    assert len(recorded) == 2
    # Images written for the next group wait aside: no file in outputs the lockfile does not name.
    assert len(list((root / "generated").iterdir())) == 2
    assert len(submissions(root)) == 1  # nothing lost: the rest is still pending
    assert len(json.loads(run_cli("-C", root, "plan", "--format", "json").stdout)["pending"]) == 4

    again = run_cli("-C", root, "batch", "collect")
    assert again.exit_code == 0, again.stderr
    assert "4 recorded, 2 recorded before" in again.stderr
    entries = locked_entries_match_disk(root)
    assert len(entries) == 6
    for address, entry in recorded.items():
        assert entries[address] == entry  # not written again
    assert submissions(root) == []
    assert server.stats()["batches_created"] == 1
    assert len(list((root / "generated").iterdir())) == 6
    assert read_lockfile(root / "promptform.lock").targets.keys() == entries.keys()
