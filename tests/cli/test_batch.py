"""Batch mode through the CLI: apply --batch, plan with pending targets, batch status/collect/cancel.

The Batch API here is tests/support/memory_batches.py's, so each test decides exactly when and how a
batch finishes; tests/engine/test_batch_network.py runs the same flow over HTTP.
"""

from __future__ import annotations

import io
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from syrupy.assertion import SnapshotAssertion

from promptform.commands.batch import status
from promptform.core.config import load_config
from promptform.core.output import Output
from promptform.state.lockfile import read_lockfile
from promptform.state.pending_batches import read_submissions
from tests.support.cli import RunCli
from tests.support.files import write_files
from tests.support.git import commit_all, git, init_repo
from tests.support.memory_batches import BATCH_CONFIG, Info, MemoryBatches

# The fixture, imported under its own name so pytest finds it.
from tests.support.memory_batches import memory_batches as memory_batches

CONFIG = BATCH_CONFIG
PRICE = 0.006  # gpt-image-2, low, 1024x1024
BATCH_PRICE = PRICE / 2


@pytest.fixture
def api(memory_batches: MemoryBatches) -> MemoryBatches:
    return memory_batches


def project(tmp_path: Path, cells: int = 3, extra: str = "", config_extra: str = "") -> Path:
    values = ", ".join(str(i) for i in range(1, cells + 1))
    manifest = f"name: cards\nmatrix:\n  i: [{values}]\nprompt: Card {{{{ i }}}}.{extra}\n"
    return write_files(
        tmp_path / "repo",
        {"promptform.toml": CONFIG + config_extra, "prompts/cards.yaml": manifest},
    )


def plan_json(run_cli: RunCli, root: Path) -> dict[str, object]:
    result = run_cli("-C", root, "plan", "--format", "json")
    assert result.exit_code == 0, result.stderr
    data: dict[str, object] = json.loads(result.stdout)
    return data


def submissions(root: Path) -> list[object]:
    config = load_config(root)
    return list(read_submissions(config.batches_dir))


def test_submit_plan_pending_collect_then_no_changes(
    tmp_path: Path, api: MemoryBatches, run_cli: RunCli
) -> None:
    root = project(tmp_path)
    submitted = run_cli("-C", root, "apply", "--batch", "--yes")
    assert submitted.exit_code == 0, submitted.stderr
    assert "Submitted 3 requests in 1 batch (batch_1), estimated $0.009" in submitted.stderr
    assert api.created == ["batch_1"]
    assert not (root / "generated").exists()  # nothing generated yet
    [line] = api.input_lines("file-1")[:1]
    assert line["url"] == "/v1/images/generations"
    assert line["body"]["prompt"] == "Card 1."

    text = run_cli("-C", root, "plan")
    assert "  … cards[i=1] pending in batch batch_1 (submitted just now)" in text.stdout
    assert "No changes. 0 targets up to date, 3 pending in batches." in text.stdout
    data = plan_json(run_cli, root)
    assert data["summary"]["pending"] == 3  # type: ignore[index]
    assert data["summary"]["create"] == 0  # type: ignore[index]
    pending = data["pending"]
    assert [item["address"] for item in pending] == ["cards[i=1]", "cards[i=2]", "cards[i=3]"]  # type: ignore[union-attr]
    assert {item["batch_id"] for item in pending} == {"batch_1"}  # type: ignore[union-attr]
    assert not any(item["stale"] for item in pending)  # type: ignore[union-attr]

    unfinished = run_cli("-C", root, "batch", "collect")
    assert unfinished.exit_code == 0
    assert "batch_1: in_progress, 0/3 done; not finished yet." in unfinished.stderr

    api.finish("batch_1")
    collected = run_cli("-C", root, "batch", "collect")
    assert collected.exit_code == 0, collected.stderr
    assert "Collected batch_1 (completed): 3 recorded; 3 images, $0.009." in collected.stderr
    lock = read_lockfile(root / "promptform.lock")
    entry = lock.targets["cards[i=2]"]
    assert entry.batch_id == "batch_1"
    assert entry.cost_usd == pytest.approx(BATCH_PRICE)
    assert entry.usage == {"total_tokens": 100}
    assert (root / "generated" / entry.outputs[0].path).is_file()
    assert submissions(root) == []
    assert not (root / "promptform.batches").exists()
    assert "No changes. 3 targets up to date." in run_cli("-C", root, "plan").stdout


def test_two_batch_applies_in_a_row_submit_once(
    tmp_path: Path, api: MemoryBatches, run_cli: RunCli
) -> None:
    root = project(tmp_path)
    assert run_cli("-C", root, "apply", "--batch", "--yes").exit_code == 0
    again = run_cli("-C", root, "apply", "--batch", "--yes")
    assert again.exit_code == 0, again.stderr
    assert "No changes." in again.stdout
    plain = run_cli("-C", root, "apply", "--yes")  # collects nothing (unfinished), submits nothing
    assert plain.exit_code == 0, plain.stderr
    assert api.created == ["batch_1"]
    assert api.uploads == 1


def test_a_manifest_edited_after_submission_is_stale_and_its_result_goes_to_the_trash(
    tmp_path: Path, api: MemoryBatches, run_cli: RunCli
) -> None:
    root = project(tmp_path, cells=2)
    assert run_cli("-C", root, "apply", "--batch", "--yes").exit_code == 0
    manifest = root / "prompts" / "cards.yaml"
    manifest.write_text(
        manifest.read_text().replace(
            "matrix:\n  i: [1, 2]", "matrix:\n  i: [1, 2]\nsize: 1024x1536"
        )
    )

    text = run_cli("-C", root, "plan").stdout
    assert "+ create  cards[i=1]" in text
    assert (
        "manifest changed since it was submitted in batch batch_1 (that result goes to the trash)"
        in text
    )
    data = plan_json(run_cli, root)
    assert [item["stale"] for item in data["pending"]] == [True, True]  # type: ignore[union-attr]
    assert data["summary"]["pending"] == 0  # type: ignore[index]

    api.finish("batch_1")
    collected = run_cli("-C", root, "batch", "collect")
    assert collected.exit_code == 0, collected.stderr
    assert "2 stale (manifest changed; put in the trash)" in collected.stderr
    assert read_lockfile(root / "promptform.lock").targets == {}
    assert not (root / "generated").exists()
    trashed = sorted(path.name for path in (root / ".promptform" / "trash").rglob("*.png"))
    assert trashed == ["cards-1-1.png", "cards-2-1.png"]


def test_moderation_blocked_lines_are_reported_and_return_to_create(
    tmp_path: Path, api: MemoryBatches, run_cli: RunCli
) -> None:
    root = project(tmp_path)
    api.blocked = "Card 2."
    assert run_cli("-C", root, "apply", "--batch", "--yes").exit_code == 0
    api.finish("batch_1")
    collected = run_cli("-C", root, "batch", "collect")
    assert collected.exit_code == 1
    assert "2 recorded, 1 failed" in collected.stderr
    assert (
        "  failed cards[i=2]: HTTP 400 moderation_blocked: Your request was rejected by the "
        "safety system." in collected.stderr
    )
    assert sorted(read_lockfile(root / "promptform.lock").targets) == ["cards[i=1]", "cards[i=3]"]
    data = plan_json(run_cli, root)
    assert [change["address"] for change in data["changes"]] == ["cards[i=2]"]  # type: ignore[union-attr]
    assert data["pending"] == []


def test_an_expired_batch_keeps_what_ran_and_returns_the_rest(
    tmp_path: Path, api: MemoryBatches, run_cli: RunCli
) -> None:
    root = project(tmp_path)
    assert run_cli("-C", root, "apply", "--batch", "--yes").exit_code == 0
    api.finish("batch_1", "expired", done=1)
    collected = run_cli("-C", root, "batch", "collect")
    assert collected.exit_code == 0, collected.stderr
    assert "Collected batch_1 (expired): 1 recorded, 2 not run" in collected.stderr
    assert (
        "  back to create cards[i=3]: the batch expired before this request ran" in collected.stderr
    )
    assert list(read_lockfile(root / "promptform.lock").targets) == ["cards[i=1]"]
    summary = plan_json(run_cli, root)["summary"]
    assert (summary["create"], summary["pending"]) == (2, 0)  # type: ignore[index]


def test_a_batch_that_failed_validation_returns_every_target_with_the_reason(
    tmp_path: Path, api: MemoryBatches, run_cli: RunCli
) -> None:
    root = project(tmp_path, cells=2)
    assert run_cli("-C", root, "apply", "--batch", "--yes").exit_code == 0
    api.fail_validation("batch_1", "invalid_request: size is not supported")
    collected = run_cli("-C", root, "batch", "collect")
    assert collected.exit_code == 0, collected.stderr
    assert (
        "  back to create cards[i=1]: the batch failed validation: line 1: invalid_request: size "
        "is not supported" in collected.stderr
    )
    assert submissions(root) == []
    assert plan_json(run_cli, root)["summary"]["create"] == 2  # type: ignore[index]


def test_cancel_then_collect_returns_the_targets(
    tmp_path: Path, api: MemoryBatches, run_cli: RunCli
) -> None:
    root = project(tmp_path, cells=2)
    assert run_cli("-C", root, "apply", "--batch", "--yes").exit_code == 0
    unknown = run_cli("-C", root, "batch", "cancel", "batch_9")
    assert unknown.exit_code == 1
    assert "no pending batch batch_9; pending batches: batch_1" in unknown.stderr
    cancelled = run_cli("-C", root, "batch", "cancel", "batch_1")
    assert cancelled.exit_code == 0, cancelled.stderr
    assert "batch_1: cancelled" in cancelled.stderr
    collected = run_cli("-C", root, "batch", "collect")
    assert "Collected batch_1 (cancelled): 0 recorded, 2 not run" in collected.stderr
    assert plan_json(run_cli, root)["summary"]["create"] == 2  # type: ignore[index]


def test_cancel_needs_a_batch_id_or_all(
    tmp_path: Path, api: MemoryBatches, run_cli: RunCli
) -> None:
    result = run_cli("-C", project(tmp_path), "batch", "cancel")
    assert result.exit_code == 1
    assert "name a BATCH_ID to cancel, or pass --all" in result.stderr


def test_a_run_killed_between_upload_and_creation_finds_its_batch(
    tmp_path: Path, api: MemoryBatches, run_cli: RunCli
) -> None:
    root = project(tmp_path, cells=2)
    api.fail_create = True  # the batch is created, but the answer never arrives
    failed = run_cli("-C", root, "apply", "--batch", "--yes")
    assert failed.exit_code == 1
    [submission] = read_submissions(load_config(root).batches_dir)
    assert submission.input_file_id == "file-1"
    assert submission.batch_id is None
    assert "pending in batch being created" in run_cli("-C", root, "plan").stdout

    api.fail_create = False
    again = run_cli("-C", root, "apply", "--batch", "--yes")
    assert again.exit_code == 0, again.stderr
    assert api.created == ["batch_1"]  # found by its input file, not created again
    assert api.uploads == 1
    [submission] = read_submissions(load_config(root).batches_dir)
    assert submission.batch_id == "batch_1"


def test_looking_for_a_lost_batch_stops_at_batches_older_than_the_submission(
    tmp_path: Path, api: MemoryBatches, run_cli: RunCli
) -> None:
    root = project(tmp_path, cells=2)
    long_ago = int(time.time()) - 30 * 24 * 3600
    for number in range(500):  # an account's earlier batches, newest first in the list
        api.batches[f"batch_old_{number}"] = Info(
            f"batch_old_{number}",
            "completed",
            "/v1/images/generations",
            f"file-old-{number}",
            created_at=long_ago - number,
        )
    api.fail_create = True
    assert run_cli("-C", root, "apply", "--batch", "--yes").exit_code == 1
    [made] = api.created
    del api.batches[made]  # the create never reached the API: only the upload did
    api.listed = 0

    collect = run_cli("-C", root, "batch", "collect")  # looks for the batch, never creates one

    assert collect.exit_code == 0, collect.stderr
    [submission] = read_submissions(load_config(root).batches_dir)
    assert submission.batch_id is None
    assert api.listed == 1  # the newest batch is a month older than the submission: no further


def test_a_recorded_intent_without_a_batch_is_started_only_by_apply_batch(
    tmp_path: Path, api: MemoryBatches, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A submission file may come from someone else's branch (the generate workflow applies a pull
    # request's files): collect and plain apply look its batch up but never start one.
    root = project(tmp_path, cells=2)

    async def killed(*args: object) -> object:
        raise KeyboardInterrupt  # the process dies right after recording the uploaded file

    monkeypatch.setattr("promptform.engine.batch_submit._create_batch", killed)
    assert run_cli("-C", root, "apply", "--batch", "--yes").exit_code == 130
    [submission] = read_submissions(load_config(root).batches_dir)
    assert (submission.input_file_id, submission.batch_id) == ("file-1", None)
    monkeypatch.undo()
    monkeypatch.setattr("promptform.commands.batch.open_clients", lambda config, environ: api)
    assert api.created == []
    collected = run_cli("-C", root, "batch", "collect")
    assert collected.exit_code == 0, collected.stderr
    assert "uploaded but never started (no batch); `promptform apply --batch` starts it" in (
        collected.stderr
    )
    assert run_cli("-C", root, "apply", "--yes").exit_code == 0
    assert api.created == []
    assert run_cli("-C", root, "apply", "--batch", "--yes").exit_code == 0
    assert api.created == ["batch_1"]
    assert run_cli("-C", root, "apply", "--batch", "--yes").exit_code == 0
    assert api.created == ["batch_1"]


def _killed_after_upload(
    root: Path, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch, api: MemoryBatches
) -> None:
    """An `apply --batch` that dies right after recording its uploaded file, before the batch."""

    async def killed(*args: object) -> object:
        raise KeyboardInterrupt

    monkeypatch.setattr("promptform.engine.batch_submit._create_batch", killed)
    assert run_cli("-C", root, "apply", "--batch", "--yes").exit_code == 130
    monkeypatch.undo()
    monkeypatch.setattr("promptform.commands.batch.open_clients", lambda config, environ: api)
    assert api.created == []


def test_an_unstarted_submission_this_machine_did_not_upload_is_never_started(
    tmp_path: Path, api: MemoryBatches, run_cli: RunCli
) -> None:
    # A pull request adds a submission naming no batch and the input file of an old batch (its
    # id is in the history's earlier submission files): 500 high-quality generations.
    line = {
        "method": "POST",
        "url": "/v1/images/generations",
        "body": {"model": "gpt-image-2", "prompt": "old", "size": "1024x1024", "quality": "high"},
    }
    api.files["file-old"] = b"".join(
        json.dumps({"custom_id": f"{i}-x", **line}).encode() + b"\n" for i in range(500)
    )
    name = "promptform.batches/20260101T000000Z-abcd.json"
    root = write_files(
        tmp_path / "repo",
        {
            "promptform.toml": CONFIG + "\n[budget]\nmax_images = 1\nmax_cost = 0.01\n",
            "prompts/hero.yaml": "prompt: A hero.\n",
            name: json.dumps(
                {
                    "kind": "promptform-batch-submission",
                    "version": 1,
                    "id": "20260101T000000Z-abcd",
                    "provider": "gateway",
                    "endpoint": "images/generations",
                    "input_file_id": "file-old",
                    "batch_id": None,
                    "submitted_at": "2026-01-01T00:00:00Z",
                    "source_commit": None,
                    "targets": [],
                }
            ),
        },
    )
    plan = run_cli("-C", root, "plan")
    assert "submission 20260101T000000Z-abcd: no batch yet, 0 requests" in plan.stdout

    result = run_cli("-C", root, "apply", "--batch", "--yes")

    assert result.exit_code == 1
    assert [api.batches[batch].request_counts.total for batch in api.created] == [1]  # hero only
    assert (
        "submission 20260101T000000Z-abcd: batch not created: this machine has no "
        ".promptform/batch-input/20260101T000000Z-abcd.jsonl, so its input was not uploaded "
        f"from here; delete {name} to give it up (its targets are planned again)"
    ) in result.stderr
    assert (root / name).is_file()


def test_an_unstarted_submission_counts_against_the_budget_before_its_batch_is_created(
    tmp_path: Path, api: MemoryBatches, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = project(tmp_path, cells=3)
    _killed_after_upload(root, run_cli, monkeypatch, api)
    plan = run_cli("-C", root, "plan")
    assert "no batch yet, 3 requests (3 images, $0.009 at the batch price)" in plan.stdout
    [unstarted] = plan_json(run_cli, root)["unstarted"]  # type: ignore[misc]
    assert unstarted["requests"] == 3 and unstarted["images"] == 3
    assert unstarted["cost_usd"] == pytest.approx(3 * BATCH_PRICE)

    over = run_cli("-C", root, "apply", "--batch", "--yes", "--max-images", "2")
    assert over.exit_code == 1
    assert "3 images" in over.stderr
    assert api.created == []
    unconfirmed = run_cli("-C", root, "apply", "--batch")  # no terminal to confirm on
    assert unconfirmed.exit_code == 1
    assert api.created == []

    assert run_cli("-C", root, "apply", "--batch", "--yes", "--max-images", "3").exit_code == 0
    assert [api.batches[batch].request_counts.total for batch in api.created] == [3]
    assert not list((root / ".promptform" / "batch-input").iterdir())  # its input cleaned up


def test_an_unstarted_submission_counts_against_the_pull_request_budget_too(
    tmp_path: Path, api: MemoryBatches, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = project(tmp_path, cells=3, config_extra="\n[budget]\nmax_images_per_pull_request = 2\n")
    init_repo(root)
    commit_all(root, "project")
    git(root, "switch", "-q", "-c", "feature")
    _killed_after_upload(root, run_cli, monkeypatch, api)

    result = run_cli("-C", root, "apply", "--batch", "--yes", "--base-config", "refs/heads/main")

    assert result.exit_code == 1
    assert "max_images_per_pull_request" in result.stderr
    assert api.created == []


@pytest.mark.parametrize("how", ["committed", "symlinked"])
def test_an_input_file_that_came_with_the_checkout_is_never_started(
    tmp_path: Path, api: MemoryBatches, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    # `.promptform/` is ignored, not forbidden: a branch can commit an input file (or a symlink
    # to one) beside its submission, and every checkout would then pass for the uploader.
    root = project(tmp_path, cells=2)
    init_repo(root)
    commit_all(root, "project")
    _killed_after_upload(root, run_cli, monkeypatch, api)
    [written] = (root / ".promptform" / "batch-input").iterdir()
    if how == "symlinked":
        kept = tmp_path / "elsewhere.jsonl"
        written.rename(kept)
        written.symlink_to(kept)
    git(root, "add", "--force", str(written.relative_to(root)))
    commit_all(root, "a submission and its input")

    result = run_cli("-C", root, "apply", "--batch", "--yes")

    assert result.exit_code == 1
    assert api.created == []
    assert "batch not created" in result.stderr
    assert "came with the checkout" in result.stderr


@pytest.mark.parametrize("change", ["lines", "targets", "uploaded"])
def test_an_unstarted_submission_whose_input_does_not_match_is_not_started(
    tmp_path: Path,
    api: MemoryBatches,
    run_cli: RunCli,
    monkeypatch: pytest.MonkeyPatch,
    change: str,
) -> None:
    root = project(tmp_path, cells=3)
    _killed_after_upload(root, run_cli, monkeypatch, api)
    [local] = (root / ".promptform" / "batch-input").iterdir()
    [path] = (root / "promptform.batches").iterdir()
    if change == "lines":  # the local file lost a request line
        local.write_bytes(b"".join(local.read_bytes().splitlines(keepends=True)[:2]))
    elif change == "targets":  # the submission's targets were edited
        data = json.loads(path.read_text())
        data["targets"] = data["targets"][:2]
        path.write_text(json.dumps(data))
    else:  # the uploaded file is not the one written here
        api.files["file-1"] += b"\n"

    result = run_cli("-C", root, "apply", "--batch", "--yes")

    assert result.exit_code == 1
    # (With a target dropped from the submission, that target alone is submitted anew.)
    assert [api.batches[batch].input_file_id for batch in api.created] in ([], ["file-2"])
    assert "batch not created: " in result.stderr
    assert "delete promptform.batches/" in result.stderr


def test_a_collect_interrupted_part_way_records_nothing_twice(
    tmp_path: Path, api: MemoryBatches, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = project(tmp_path, cells=3)
    assert run_cli("-C", root, "apply", "--batch", "--yes").exit_code == 0
    api.finish("batch_1")
    monkeypatch.setattr("promptform.engine.batch_collect.RECORD_EVERY", 1)
    from promptform.state.lockfile_writer import LockfileWriter

    real_update = LockfileWriter.update
    calls = []

    def dies_on_the_second(
        self: LockfileWriter, put: dict[str, object], remove: tuple[str, ...]
    ) -> None:
        calls.append(put)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        real_update(self, put, remove)  # type: ignore[arg-type]

    monkeypatch.setattr(LockfileWriter, "update", dies_on_the_second)
    failed = run_cli("-C", root, "batch", "collect")
    assert failed.exit_code == 1
    [recorded] = read_lockfile(root / "promptform.lock").targets  # the first group only
    assert len(submissions(root)) == 1  # still pending: nothing lost
    # The group that could not be recorded was put back: only the recorded image is in outputs.
    assert len(list((root / "generated").iterdir())) == 1
    plan = run_cli("-C", root, "plan").stdout
    assert f"{recorded} pending" not in plan  # recorded, so no longer pending
    assert plan.count(" pending in batch batch_1 ") == 2

    monkeypatch.setattr(LockfileWriter, "update", real_update)
    again = run_cli("-C", root, "batch", "collect")
    assert again.exit_code == 0, again.stderr
    assert "2 recorded, 1 recorded before" in again.stderr
    lock = read_lockfile(root / "promptform.lock")
    assert sorted(lock.targets) == ["cards[i=1]", "cards[i=2]", "cards[i=3]"]
    assert submissions(root) == []


def test_plain_apply_collects_finished_batches_before_it_plans(
    tmp_path: Path, api: MemoryBatches, run_cli: RunCli
) -> None:
    root = project(tmp_path, cells=2)
    assert run_cli("-C", root, "apply", "--batch", "--yes").exit_code == 0
    api.finish("batch_1")
    result = run_cli("-C", root, "apply", "--yes")
    assert result.exit_code == 0, result.stderr
    assert "Collected batch_1 (completed): 2 recorded" in result.stderr
    assert "No changes. 2 targets up to date." in result.stdout


def test_plan_batch_estimates_at_the_batch_discount(tmp_path: Path, run_cli: RunCli) -> None:
    root = project(tmp_path, cells=2)
    assert "2 images, estimated $0.01.\n" in run_cli("-C", root, "plan").stdout
    batch = run_cli("-C", root, "plan", "--batch").stdout
    assert "1 image, estimated $0.003\n" in batch
    assert "2 images, estimated $0.006 at the batch price.\n" in batch
    config = root / "promptform.toml"
    config.write_text(config.read_text() + '\n[pricing."gpt-image-2"]\nbatch_discount = 0.25\n')
    assert (
        "2 images, estimated $0.009 at the batch price.\n"
        in run_cli("-C", root, "plan", "--batch").stdout
    )


def test_a_batch_discount_outside_zero_to_one_is_refused(tmp_path: Path, run_cli: RunCli) -> None:
    root = project(tmp_path)
    config = root / "promptform.toml"
    config.write_text(config.read_text() + '\n[pricing."gpt-image-2"]\nbatch_discount = 50\n')
    result = run_cli("-C", root, "plan")
    assert result.exit_code == 1
    assert "batch_discount must be a share between 0 and 1" in result.stderr
    assert "promptform.toml" in result.stderr
    assert "Traceback" not in result.stderr


def test_apply_batch_on_a_provider_without_the_batch_api_names_the_setting(
    tmp_path: Path, memory_batches: MemoryBatches, run_cli: RunCli
) -> None:
    root = project(tmp_path)
    config = root / "promptform.toml"
    config.write_text(config.read_text().replace("batch = true\n", ""))
    result = run_cli("-C", root, "apply", "--batch", "--yes")
    assert result.exit_code == 1
    assert "add `batch = true` under [providers.gateway]" in result.stderr
    assert "Traceback" not in result.stderr
    assert memory_batches.uploads == 0


def test_status_lists_each_batch_with_its_counts(
    tmp_path: Path, api: MemoryBatches, run_cli: RunCli
) -> None:
    root = project(tmp_path)
    assert run_cli("-C", root, "batch", "status").stdout == "No batches pending.\n"
    assert run_cli("-C", root, "apply", "--batch", "--yes").exit_code == 0
    api.finish("batch_1", "expired", done=2)
    text = run_cli("-C", root, "batch", "status").stdout
    assert text.startswith("batch_1  expired  2/3 completed, 1 failed  (3 targets, gateway ")
    data = json.loads(run_cli("-C", root, "batch", "status", "--json").stdout)
    [row] = data["batches"]
    assert row["batch_id"] == "batch_1"
    assert row["status"] == "expired"
    assert row["request_counts"] == {"total": 3, "completed": 2, "failed": 1}
    assert row["targets"] == 3


def test_collect_timeout_needs_wait_and_a_duration(tmp_path: Path, run_cli: RunCli) -> None:
    root = project(tmp_path)
    assert run_cli("-C", root, "batch", "collect", "--timeout", "5m").exit_code == 1
    bad = run_cli("-C", root, "batch", "collect", "--wait", "--timeout", "soon")
    assert bad.exit_code == 1
    assert "'soon' is not a duration" in bad.stderr


def test_collect_wait_polls_until_the_batch_finishes(
    tmp_path: Path, api: MemoryBatches, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = project(tmp_path, cells=1)
    assert run_cli("-C", root, "apply", "--batch", "--yes").exit_code == 0
    monkeypatch.setattr("promptform.engine.batch_collect.FIRST_POLL_S", 0.01)
    retrieve = api.retrieve

    async def finishes_on_the_third_poll(batch_id: str) -> object:
        if api.retrieves == 2:
            api.finish(batch_id)
        return await retrieve(batch_id)

    monkeypatch.setattr(api, "retrieve", finishes_on_the_third_poll)
    result = run_cli("-C", root, "batch", "collect", "--wait", "--timeout", "60s")
    assert result.exit_code == 0, result.stderr
    assert "Collected batch_1 (completed): 1 recorded" in result.stderr
    assert api.retrieves == 3


def test_collect_wait_gives_up_at_the_timeout(
    tmp_path: Path, api: MemoryBatches, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = project(tmp_path, cells=1)
    assert run_cli("-C", root, "apply", "--batch", "--yes").exit_code == 0
    result = run_cli("-C", root, "batch", "collect", "--wait", "--timeout", "1s")
    assert result.exit_code == 1
    assert "Gave up waiting (--timeout)" in result.stderr
    assert len(submissions(root)) == 1


def test_status_output(
    tmp_path: Path, api: MemoryBatches, run_cli: RunCli, snapshot: SnapshotAssertion
) -> None:
    root = project(tmp_path)
    assert run_cli("-C", root, "apply", "--batch", "--yes").exit_code == 0
    api.finish("batch_1", "expired", done=2)
    config = load_config(root)
    [submission] = read_submissions(config.batches_dir)
    later = datetime.strptime(submission.submitted_at, "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=UTC
    ) + timedelta(hours=2, minutes=5)
    shown = []
    for as_json in (False, True):
        stdout = io.StringIO()
        assert status(config, Output(stdout=stdout), as_json, now=later) == 0
        shown.append(
            stdout.getvalue()
            .replace(submission.id, "SUBMISSION")
            .replace(submission.submitted_at, "SUBMITTED_AT")
        )
    assert shown == snapshot


def test_a_target_reading_a_pending_output_waits_for_its_collection(
    tmp_path: Path, api: MemoryBatches, run_cli: RunCli
) -> None:
    files = {
        "promptform.toml": CONFIG,
        "prompts/base.yaml": "name: base\nprompt: A base.\n",
        "prompts/edit.yaml": "name: edit\nprompt: An edit.\nimages: [generated/base-1.png]\n",
    }
    root = write_files(tmp_path / "repo", files)
    first = run_cli("-C", root, "apply", "--batch", "--yes")
    assert first.exit_code == 0, first.stderr
    assert "Submitted 1 request in 1 batch" in first.stderr
    assert (
        "Not submitted yet (1 target), since a reference image is still being generated"
        in first.stderr
    )
    # A plain apply does not generate it from the image about to be replaced either (the
    # provider here is unreachable: trying would fail).
    plain = run_cli("-C", root, "apply", "--yes")
    assert plain.exit_code == 0, plain.stderr
    assert "1 target left for later: a reference image is pending in a batch" in plain.stderr

    api.finish("batch_1")
    assert run_cli("-C", root, "batch", "collect").exit_code == 0
    second = run_cli("-C", root, "apply", "--batch", "--yes")
    assert second.exit_code == 0, second.stderr
    assert "Submitted 1 request in 1 batch (batch_2)" in second.stderr
    [line] = api.input_lines(api.batches["batch_2"].input_file_id)
    assert line["url"] == "/v1/images/edits"
    assert line["body"]["images"][0]["image_url"].startswith("data:image/png;base64,")


def test_requests_are_split_into_batches_at_the_line_limit(
    tmp_path: Path, api: MemoryBatches, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("promptform.engine.batch_submit.MAX_LINES", 2)
    root = project(tmp_path, cells=5)
    result = run_cli("-C", root, "apply", "--batch", "--yes")
    assert result.exit_code == 0, result.stderr
    assert "Submitted 5 requests in 3 batches (batch_1, batch_2, batch_3)" in result.stderr
    sizes = [len(api.input_lines(info.input_file_id)) for info in api.batches.values()]
    assert sizes == [2, 2, 1]
    custom_ids = [
        line["custom_id"]
        for info in api.batches.values()
        for line in api.input_lines(info.input_file_id)
    ]
    assert len(set(custom_ids)) == 5
    assert not list((root / ".promptform" / "batch-input").iterdir())  # request files cleaned up


def test_a_corrupt_submission_file_is_one_line_naming_it(
    tmp_path: Path, api: MemoryBatches, run_cli: RunCli
) -> None:
    root = project(tmp_path)
    assert run_cli("-C", root, "apply", "--batch", "--yes").exit_code == 0
    [path] = (root / "promptform.batches").iterdir()
    path.write_text("<<<<<<< HEAD\n")
    result = run_cli("-C", root, "plan")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: promptform.batches/{path.name}:1:1: corrupt batch")
    assert "restore it from git" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_submission_copied_under_another_name_is_refused(
    tmp_path: Path, api: MemoryBatches, run_cli: RunCli
) -> None:
    # Collect removes the file its id names: a copy would be collected again on every run.
    root = project(tmp_path)
    assert run_cli("-C", root, "apply", "--batch", "--yes").exit_code == 0
    [path] = (root / "promptform.batches").iterdir()
    path.rename(path.with_name("20260101T000000Z-abcd.json"))
    result = run_cli("-C", root, "batch", "collect")
    assert result.exit_code == 1
    assert result.stderr.startswith(
        "error: promptform.batches/20260101T000000Z-abcd.json:1: batch submission "
        f"{path.stem} is in a file of another name; restore it from git"
    )


def test_a_submission_whose_custom_id_does_not_name_its_fingerprint_is_refused(
    tmp_path: Path, api: MemoryBatches, run_cli: RunCli
) -> None:
    # Results are matched by custom_id: an edited fingerprint must not adopt another line's image.
    root = project(tmp_path)
    assert run_cli("-C", root, "apply", "--batch", "--yes").exit_code == 0
    [path] = (root / "promptform.batches").iterdir()
    data = json.loads(path.read_text())
    data["targets"][0]["fingerprint"] = "0" * 64
    path.write_text(json.dumps(data))
    result = run_cli("-C", root, "plan")
    assert result.exit_code == 1
    assert result.stderr.startswith(
        f"error: promptform.batches/{path.name}: corrupt batch submission (bad or missing "
        "custom_id)"
    )


def test_submit_and_collect_commit_the_pending_state(
    tmp_path: Path, api: MemoryBatches, run_cli: RunCli
) -> None:
    root = init_repo(project(tmp_path, cells=2))
    commit_all(root, "project")
    submitted = run_cli("-C", root, "apply", "--batch", "--yes", "--commit")
    assert submitted.exit_code == 0, submitted.stderr
    [path] = (root / "promptform.batches").iterdir()
    subject, _, *paths = git(root, "show", "--name-only", "--format=%s", "HEAD").splitlines()
    assert subject.endswith(": batch submissions [skip ci]")
    assert paths == [f"promptform.batches/{path.name}"]
    api.finish("batch_1")
    collected = run_cli("-C", root, "batch", "collect", "--commit")
    assert collected.exit_code == 0, collected.stderr
    changed = git(root, "show", "--name-status", "--format=", "HEAD").splitlines()
    assert f"D\tpromptform.batches/{path.name}" in changed
    assert "A\tpromptform.lock/cards.yaml.json" in changed  # the shard of its manifest file
    assert "A\tgenerated/cards-1-1.png" in changed
    assert git(root, "status", "--porcelain") == ""


def test_moves_happen_at_once_and_a_replaced_image_stays_until_collected(
    tmp_path: Path, api: MemoryBatches, run_cli: RunCli
) -> None:
    root = project(tmp_path, cells=2)
    assert run_cli("-C", root, "apply", "--batch", "--yes").exit_code == 0
    api.finish("batch_1")
    assert run_cli("-C", root, "batch", "collect").exit_code == 0
    old = (root / "generated" / "cards-2-1.png").read_bytes()

    manifest = root / "prompts" / "cards.yaml"
    manifest.write_text(
        "name: cards\nmatrix:\n  i: [1, 2]\nprompt: Card {{ i }}.{% if i == 2 %} Blue.{% endif %}\n"
        "output: 'deck-{{ i }}.png'\n"
    )
    result = run_cli("-C", root, "apply", "--batch", "--yes")
    assert result.exit_code == 0, result.stderr
    assert "Submitted 1 request in 1 batch (batch_2)" in result.stderr
    lock = read_lockfile(root / "promptform.lock")
    assert lock.targets["cards[i=1]"].outputs[0].path == "deck-1.png"  # moved at once
    assert (root / "generated" / "deck-1.png").is_file()
    # cards[i=2] is replaced by the batch: its image stays where it is until then.
    assert lock.targets["cards[i=2]"].outputs[0].path == "cards-2-1.png"
    assert (root / "generated" / "cards-2-1.png").read_bytes() == old
    assert "cards[i=2] pending in batch batch_2" in run_cli("-C", root, "plan").stdout

    api.finish("batch_2")
    assert run_cli("-C", root, "batch", "collect").exit_code == 0
    entry = read_lockfile(root / "promptform.lock").targets["cards[i=2]"]
    assert (entry.outputs[0].path, entry.batch_id) == ("deck-2.png", "batch_2")
    assert not (root / "generated" / "cards-2-1.png").exists()
    trashed = [
        path.read_bytes() for path in (root / ".promptform" / "trash").rglob("cards-2-1.png")
    ]
    assert trashed == [old]
    assert "No changes. 2 targets up to date." in run_cli("-C", root, "plan").stdout


def test_collect_json_says_what_happened_to_each_target(
    tmp_path: Path, api: MemoryBatches, run_cli: RunCli
) -> None:
    root = project(tmp_path)
    api.blocked = "Card 3."
    assert run_cli("-C", root, "apply", "--batch", "--yes").exit_code == 0
    api.finish("batch_1", "expired", done=2)
    result = run_cli("-C", root, "batch", "collect", "--json")
    assert result.exit_code == 0, result.stderr
    [batch] = json.loads(result.stdout)["collected"]
    assert batch["batch_id"] == "batch_1"
    assert batch["status"] == "expired"
    assert sorted(batch["recorded"]) == ["cards[i=1]", "cards[i=2]"]  # in the order written
    assert batch["returned"] == [
        {"address": "cards[i=3]", "reason": "the batch expired before this request ran"}
    ]
    assert batch["failed"] == []
    assert batch["images"] == 2


def test_replace_does_not_submit_a_pending_target_again(
    tmp_path: Path, api: MemoryBatches, run_cli: RunCli
) -> None:
    root = project(tmp_path, cells=1)
    assert run_cli("-C", root, "apply", "--batch", "--yes").exit_code == 0
    again = run_cli("-C", root, "apply", "--batch", "--yes", "--replace", "cards[i=1]")
    assert again.exit_code == 0, again.stderr
    assert "cards[i=1] pending in batch batch_1" in again.stdout
    assert api.uploads == 1


def test_paid_images_that_fail_their_check_are_rescued_and_the_target_returns_to_create(
    tmp_path: Path, api: MemoryBatches, run_cli: RunCli
) -> None:
    root = project(tmp_path, cells=1, extra="\noutput_format: jpeg")
    assert run_cli("-C", root, "apply", "--batch", "--yes").exit_code == 0
    api.finish("batch_1")  # answers PNG bytes for a JPEG request
    collected = run_cli("-C", root, "batch", "collect")
    assert collected.exit_code == 1
    assert "failed cards[i=1]: " in collected.stderr
    assert "the images were kept in .promptform/rescued/cards-i-1-" in collected.stderr
    [rescue] = (root / ".promptform" / "rescued").iterdir()
    note = json.loads((rescue / "rescued.json").read_text())
    assert note["address"] == "cards[i=1]"
    assert read_lockfile(root / "promptform.lock").targets == {}
    assert "+ create  cards[i=1]" in run_cli("-C", root, "plan").stdout


def test_a_paid_result_that_could_not_be_read_stays_pending_for_the_next_collect(
    tmp_path: Path, api: MemoryBatches, run_cli: RunCli
) -> None:
    # The line succeeded (and was billed); only reading its image failed this time.
    root = project(tmp_path, cells=2)
    assert run_cli("-C", root, "apply", "--batch", "--yes").exit_code == 0
    api.finish("batch_1")
    api.unreadable_images = 1

    first = run_cli("-C", root, "batch", "collect")

    assert first.exit_code == 1
    assert "1 recorded, 1 not read (kept for the next collect)" in first.stderr
    assert "downloading image 1 failed with HTTP 503" in first.stderr
    assert len(read_submissions(load_config(root).batches_dir)) == 1
    plan = run_cli("-C", root, "plan").stdout
    assert "pending in batch batch_1" in plan and "to create" not in plan

    again = run_cli("-C", root, "batch", "collect")

    assert again.exit_code == 0, again.stderr
    assert "1 recorded, 1 recorded before" in again.stderr
    assert read_submissions(load_config(root).batches_dir) == []
    assert "No changes. 2 targets up to date." in run_cli("-C", root, "plan").stdout


def test_a_manifest_renamed_while_its_batch_runs_waits_for_it_and_records_under_the_new_name(
    tmp_path: Path, api: MemoryBatches, run_cli: RunCli
) -> None:
    # The same request under a new address: generating it again would pay twice.
    root = project(tmp_path, cells=2)
    assert run_cli("-C", root, "apply", "--batch", "--yes").exit_code == 0
    manifest = root / "prompts" / "cards.yaml"
    manifest.write_text(manifest.read_text().replace("name: cards", "name: deck"))

    plan = run_cli("-C", root, "plan")

    assert plan.exit_code == 0, plan.stderr
    assert "deck[i=1] pending in batch batch_1" in plan.stdout
    assert "to create" not in plan.stdout
    api.finish("batch_1")
    collected = run_cli("-C", root, "batch", "collect")
    assert collected.exit_code == 0, collected.stderr
    assert "2 recorded" in collected.stderr and "stale" not in collected.stderr
    assert sorted(read_lockfile(root / "promptform.lock").targets) == ["deck[i=1]", "deck[i=2]"]
    assert "No changes. 2 targets up to date." in run_cli("-C", root, "plan").stdout


def test_an_output_changed_while_its_batch_is_pending_points_to_collect(
    tmp_path: Path, api: MemoryBatches, run_cli: RunCli
) -> None:
    # What a collect killed between writing an image and recording it leaves on disk.
    root = project(tmp_path, cells=1)
    assert run_cli("-C", root, "apply", "--batch", "--yes").exit_code == 0
    api.finish("batch_1")
    assert run_cli("-C", root, "batch", "collect").exit_code == 0
    manifest = root / "prompts" / "cards.yaml"
    manifest.write_text(manifest.read_text().replace("Card", "A card"))
    assert run_cli("-C", root, "apply", "--batch", "--yes").exit_code == 0
    [output] = (root / "generated").iterdir()
    output.write_bytes(output.read_bytes() + b"\0")

    plan = run_cli("-C", root, "plan")

    assert (
        "a collect stopped before recording may have written it; `promptform batch collect` "
        in (plan.stdout)
    )
    assert "restore it from git" not in plan.stdout


def test_a_file_where_the_batches_folder_goes_is_refused_before_any_upload(
    tmp_path: Path, api: MemoryBatches, run_cli: RunCli
) -> None:
    root = project(tmp_path)
    (root / "promptform.batches").write_text("notes\n")
    result = run_cli("-C", root, "apply", "--batch", "--yes")
    assert result.exit_code == 1
    assert result.stderr == (
        "error: promptform.batches is not a folder; move it away, batch submissions go there\n"
    )
    assert api.uploads == 0
