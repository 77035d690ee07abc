"""promptform.batches/: one committed file per submission, byte-stable, and refused clearly when bad."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from promptform.state.pending_batches import (
    PendingBatchError,
    Submission,
    SubmittedInput,
    SubmittedTarget,
    new_submission_id,
    read_submissions,
    remove_submission,
    submission_path,
    write_submission,
)

TARGET = SubmittedTarget(
    custom_id="0-abcdef0123456789",
    address="cards[i=1]",
    fingerprint="sha256:v1:abcdef0123456789abcdef",
    request={"prompt": "Card 1.", "model": "gpt-image-2"},
    inputs=(SubmittedInput("image", "refs/photo.png", "0" * 64),),
    outputs=("cards-1-1.png",),
    output_format="png",
    provider_kind="openai",
    model="gpt-image-2",
    cost_usd=0.003,
)
SUBMISSION = Submission(
    id="20260101T100000Z-0a1b2c3d",
    provider="gateway",
    endpoint="images/edits",
    submitted_at="2026-01-01T10:00:00Z",
    source_commit="f" * 40,
    targets=(TARGET,),
    input_file_id="file-1",
)


def test_a_submission_round_trips_and_is_written_sorted(tmp_path: Path) -> None:
    folder = tmp_path / "promptform.batches"
    write_submission(folder, SUBMISSION)
    written = submission_path(folder, SUBMISSION.id)
    text = written.read_text()
    assert list(json.loads(text)) == sorted(json.loads(text))
    target_lines = [line for line in text.splitlines() if line.startswith("    {")]
    assert [json.loads(line) for line in target_lines] == json.loads(text)["targets"]
    assert read_submissions(folder) == [SUBMISSION]
    with_batch = SUBMISSION.with_batch("batch_1")
    write_submission(folder, with_batch)
    assert read_submissions(folder) == [with_batch]


def test_submissions_are_read_oldest_first_and_removed_with_their_folder(tmp_path: Path) -> None:
    folder = tmp_path / "promptform.batches"
    later = Submission(**{**SUBMISSION.__dict__, "id": "20260102T100000Z-00000001"})
    write_submission(folder, later)
    write_submission(folder, SUBMISSION)
    assert [item.id for item in read_submissions(folder)] == [SUBMISSION.id, later.id]
    remove_submission(folder, SUBMISSION.id)
    remove_submission(folder, later.id)
    assert not folder.exists()
    assert read_submissions(folder) == []


def test_submission_ids_are_unique_and_sort_by_time() -> None:
    ids = {new_submission_id() for _ in range(100)}
    assert len(ids) == 100


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "corrupt batch submission: Expecting property name"),
        ("[" * 100_000 + "]" * 100_000, "corrupt batch submission: nested too deeply to read"),
        ('{"kind": "something else"}', "not a promptform batch submission"),
        (
            '{"kind": "promptform-batch-submission", "version": 9}',
            "batch submission version 9 is not one this promptform reads",
        ),
    ],
)
def test_a_bad_submission_file_is_named_with_the_fix(
    tmp_path: Path, content: str, message: str
) -> None:
    folder = tmp_path / "promptform.batches"
    folder.mkdir()
    (folder / "20260101T100000Z-00000001.json").write_text(content)
    with pytest.raises(PendingBatchError, match=message) as raised:
        read_submissions(folder, tmp_path)
    assert raised.value.one_line().startswith("promptform.batches/20260101T100000Z-00000001.json:")


def test_an_id_that_could_name_another_path_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "promptform.batches"
    write_submission(folder, SUBMISSION)
    path = submission_path(folder, SUBMISSION.id)
    data = json.loads(path.read_text())
    data["id"] = "../../promptform"
    path.write_text(json.dumps(data))
    with pytest.raises(PendingBatchError, match=r"corrupt batch submission \(bad or missing id\)"):
        read_submissions(folder)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("inputs", [{"role": "image", "path": "../outside.png", "sha256": "0" * 64}]),
        ("inputs", [{"role": "image", "path": "/etc/passwd", "sha256": "0" * 64}]),
        ("outputs", ["../../outside.png"]),
        ("outputs", ["cards/./1.png"]),
    ],
)
def test_a_path_leading_out_of_the_project_is_refused_when_read(
    tmp_path: Path, field: str, value: object
) -> None:
    # Collect records a submission's input paths in the lock and keeps stale results at its
    # output paths: an edited submission must be refused as the lock would refuse it, when read.
    folder = tmp_path / "promptform.batches"
    write_submission(folder, SUBMISSION)
    path = submission_path(folder, SUBMISSION.id)
    data = json.loads(path.read_text())
    data["targets"][0][field] = value
    path.write_text(json.dumps(data))

    with pytest.raises(
        PendingBatchError, match=rf"corrupt batch submission \(bad or missing {field} path"
    ):
        read_submissions(folder)
