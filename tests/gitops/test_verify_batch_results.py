"""verify-approval --since-last-apply after batch mode: the commits `apply --batch --commit` and
`batch collect --commit` make (a submission added, then removed with its images recorded) pass
without an approval, as apply's own result commits do; a submission removed while its targets would
be paid for again needs one. Real git history and real CLI runs, the in-memory Batch API and the
fake GitHub API over loopback."""

from __future__ import annotations

from pathlib import Path

from tests.support.cli import RunCli
from tests.support.fake_github_api import FakeGitHub
from tests.support.files import write_files
from tests.support.git import commit_all, git, init_repo
from tests.support.memory_batches import BATCH_CONFIG, MemoryBatches

# The fixture, imported under its own name so pytest finds it.
from tests.support.memory_batches import memory_batches as memory_batches

CONFIG = BATCH_CONFIG
MANIFEST = "name: cards\nmatrix:\n  i: [1, 2]\nprompt: Card {{ i }}.\n"


def submitted_project(tmp_path: Path, fake_github: FakeGitHub, run_cli: RunCli) -> Path:
    """A project whose last apply run was at its first commit, then `apply --batch --commit`."""
    root = init_repo(write_files(tmp_path / "repo", {"promptform.toml": CONFIG}))
    write_files(root, {"prompts/cards.yaml": MANIFEST})
    fake_github.add_run(commit_all(root, "cards"))
    submitted = run_cli("-C", root, "apply", "--batch", "--yes", "--commit")
    assert submitted.exit_code == 0, submitted.stderr
    return root


def verify(run_cli: RunCli, root: Path) -> tuple[int, str, str]:
    result = run_cli("-C", root, "verify-approval", "--since-last-apply")
    return result.exit_code, result.stdout, result.stderr


def test_the_submission_and_the_collection_pass_as_results(
    tmp_path: Path, fake_github: FakeGitHub, memory_batches: MemoryBatches, run_cli: RunCli
) -> None:
    root = submitted_project(tmp_path, fake_github, run_cli)
    submission = git(root, "rev-parse", "HEAD")
    memory_batches.finish("batch_1")
    assert run_cli("-C", root, "batch", "collect", "--commit").exit_code == 0
    collection = git(root, "rev-parse", "HEAD")
    assert "promptform.batches/" in git(root, "show", "--name-status", "--format=", "HEAD")

    code, stdout, stderr = verify(run_cli, root)

    assert code == 0, stderr
    for sha in (submission, collection):
        assert f"ok: {sha[:12]}: changes only lock entries and outputs" in stdout
    assert not fake_github.calls("GET", submission)
    assert not fake_github.calls("GET", collection)


def test_a_collection_with_a_failed_line_needs_an_approval(
    tmp_path: Path, fake_github: FakeGitHub, memory_batches: MemoryBatches, run_cli: RunCli
) -> None:
    # The failed target goes back to create: the next apply pays for it again.
    root = submitted_project(tmp_path, fake_github, run_cli)
    memory_batches.blocked = "Card 2."
    memory_batches.finish("batch_1")
    assert run_cli("-C", root, "batch", "collect", "--commit").exit_code == 1
    collection = git(root, "rev-parse", "HEAD")

    code, _, stderr = verify(run_cli, root)

    assert code == 1
    assert stderr.startswith(
        f"error: {collection[:12]}: `cards[i=2]` is dropped from the batch submission "
        "promptform.batches/"
    )
    assert "without its image recorded, which no apply does" in stderr


def test_a_submission_deleted_by_hand_needs_an_approval(
    tmp_path: Path, fake_github: FakeGitHub, memory_batches: MemoryBatches, run_cli: RunCli
) -> None:
    root = submitted_project(tmp_path, fake_github, run_cli)
    git(root, "rm", "-q", "-r", "promptform.batches")
    deleted = commit_all(root, "give up on the batch")

    code, _, stderr = verify(run_cli, root)

    assert code == 1
    assert stderr.startswith(f"error: {deleted[:12]}: `cards[i=1]` is dropped from the batch")


def test_a_submission_of_a_manifest_changed_since_may_be_removed(
    tmp_path: Path, fake_github: FakeGitHub, memory_batches: MemoryBatches, run_cli: RunCli
) -> None:
    # Stale: the next apply generates the new prompt anyway, approved with the manifest change.
    root = submitted_project(tmp_path, fake_github, run_cli)
    write_files(root, {"prompts/cards.yaml": MANIFEST.replace("Card", "A card")})
    changed = commit_all(root, "new prompt")
    fake_github.add_pull(3, "alice", changed, changed, commits=(changed,))
    fake_github.add_review(3, "bob", "APPROVED", changed)
    fake_github.grant("bob")
    git(root, "rm", "-q", "-r", "promptform.batches")
    removed = commit_all(root, "drop the stale batch")

    code, stdout, stderr = verify(run_cli, root)

    assert code == 0, stderr
    assert f"ok: {removed[:12]}: changes only lock entries and outputs" in stdout


def test_a_file_beside_the_submissions_is_not_a_result(
    tmp_path: Path, fake_github: FakeGitHub, memory_batches: MemoryBatches, run_cli: RunCli
) -> None:
    root = submitted_project(tmp_path, fake_github, run_cli)
    write_files(root, {"promptform.batches/notes/run.sh": "echo hi\n"})
    added = commit_all(root, "notes")

    code, _, stderr = verify(run_cli, root)

    assert code == 1
    assert stderr.startswith(f"error: {added[:12]} did not come from a pull request")


def test_a_submission_without_its_batch_needs_an_approval(
    tmp_path: Path, fake_github: FakeGitHub, memory_batches: MemoryBatches, run_cli: RunCli
) -> None:
    # A submission naming no batch makes the next run create one from its uploaded file: that
    # spends, so only an approved change may commit one (apply --batch commits after creating).
    root = submitted_project(tmp_path, fake_github, run_cli)
    [submitted] = (root / "promptform.batches").iterdir()
    path = submitted.with_name("20260101T000000Z-abcd.json")
    text = submitted.read_text().replace('"batch_id": "batch_1"', '"batch_id": null')
    path.write_text(text.replace(submitted.stem, path.stem))
    forged = commit_all(root, "resubmit the batch")

    code, _, stderr = verify(run_cli, root)

    assert code == 1
    assert stderr.startswith(
        f"error: {forged[:12]}: promptform.batches/{path.name} names no batch, so the next run "
        "would create one"
    )


def test_a_committed_submission_changed_needs_an_approval(
    tmp_path: Path, fake_github: FakeGitHub, memory_batches: MemoryBatches, run_cli: RunCli
) -> None:
    # Pointing a pending submission at another batch could record that batch's images.
    root = submitted_project(tmp_path, fake_github, run_cli)
    [path] = (root / "promptform.batches").iterdir()
    path.write_text(path.read_text().replace('"batch_id": "batch_1"', '"batch_id": "batch_0"'))
    changed = commit_all(root, "point the submission elsewhere")

    code, _, stderr = verify(run_cli, root)

    assert code == 1
    assert stderr.startswith(
        f"error: {changed[:12]}: promptform.batches/{path.name} is changed, which neither "
        "apply --batch nor collect does"
    )
