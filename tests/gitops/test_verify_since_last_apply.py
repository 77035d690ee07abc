"""verify-approval --since-last-apply: an apply of the branch's tip checks every commit it acts on.

The walk starts at GitHub's own record of the last successful apply run (never at anything a
commit message says) and judges each commit by what it can make the next apply spend. Real git
history and real `promptform apply --commit` runs (offline provider) on disk, the fake GitHub API
over loopback.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest

import promptform.gitops.gitrepo
from tests.support.cli import CliResult, RunCli
from tests.support.fake_github_api import FakeGitHub
from tests.support.lock import locked_targets

CONFIG = '[promptform]\ndefault_provider = "offline"\n\n[defaults]\nsize = "1024x1024"\n'


class History:
    """A promptform project in a git repository on `main`: targets `a` and `b`, never applied."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True)
        self.git("init", "-q", "-b", "main")
        self.write("promptform.toml", CONFIG)
        self.write("prompts/a.yaml", "name: a\nprompt: A fox.\n")
        self.initial = self.commit("prompts/b.yaml", "name: b\nprompt: An owl.\n", "initial")

    def git(self, *args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=self.root, check=True, capture_output=True, text=True, timeout=60
        ).stdout.strip()

    def write(self, path: str, content: str | bytes) -> None:
        file = self.root / path
        file.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            file.write_bytes(content)
        else:
            file.write_text(content)

    def commit(self, path: str, content: str | bytes, message: str) -> str:
        self.write(path, content)
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message)
        return self.git("rev-parse", "HEAD")

    def apply(self, run_cli: RunCli) -> str:
        """A real result commit: `promptform apply --yes --commit`."""
        result = run_cli("-C", self.root, "apply", "--yes", "--commit")
        assert result.exit_code == 0, result.stderr
        return self.git("rev-parse", "HEAD")

    def lock(self) -> dict[str, object]:
        return {"targets": locked_targets(self.root / "promptform.lock"), "version": 2}

    def commit_lock(self, lock: dict[str, object], message: str) -> str:
        """Commit `lock` as apply lays it out: each entry in the shard of its manifest file."""
        shutil.rmtree(self.root / "promptform.lock", ignore_errors=True)
        targets = lock["targets"]
        assert isinstance(targets, dict)
        shards = {f"{address}.yaml": {address: entry} for address, entry in targets.items()}
        for name, entries in (shards or {"no-manifest": {}}).items():  # empty: still a change
            shard = {"targets": entries, "version": 2}
            self.write(f"promptform.lock/{name}.json", json.dumps(shard, indent=2) + "\n")
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message)
        return self.git("rev-parse", "HEAD")


@pytest.fixture
def history(tmp_path: Path) -> History:
    return History(tmp_path / "repo")


def approved(github: FakeGitHub, number: int, sha: str) -> None:
    github.add_pull(number, "alice", sha, sha, commits=(sha,))
    github.add_review(number, "bob", "APPROVED", sha)
    github.grant("bob")


def verified(result: CliResult) -> list[str]:
    return [line.split(":")[1].strip() for line in result.stdout.splitlines()]


def test_every_commit_since_the_last_apply_run_is_verified(
    history: History, fake_github: FakeGitHub, run_cli: RunCli
) -> None:
    first = history.commit("prompts/a.yaml", "name: a\nprompt: A red fox.\n", "red fox")
    fake_github.add_run(first)
    applied = history.apply(run_cli)
    second = history.commit("prompts/c.yaml", "name: c\nprompt: A wren.\n", "wren")
    third = history.commit("templates/style.j2", "Watercolour.\n", "style")
    for number, sha in ((1, first), (2, second), (3, third)):
        approved(fake_github, number, sha)

    result = run_cli("-C", history.root, "verify-approval", "--since-last-apply")

    assert result.exit_code == 0, result.stderr
    assert verified(result) == [third[:12], second[:12], applied[:12]]
    assert f"ok: {applied[:12]}: changes only lock entries and outputs" in result.stdout
    # apply's own result commit is judged from the repository alone.
    assert not fake_github.calls("GET", applied)
    runs = fake_github.calls("GET", "/actions/workflows/promptform-apply.yml/runs")
    assert [{key: value[0] for key, value in run.query.items()} for run in runs] == [
        {"branch": "main", "event": event, "status": "success", "per_page": "10"}
        for event in ("push", "workflow_dispatch")
    ]


def test_a_message_claiming_a_source_commit_does_not_end_the_walk(
    history: History, fake_github: FakeGitHub, run_cli: RunCli
) -> None:
    fake_github.add_run(history.initial)
    sneaked = history.commit("prompts/a.yaml", "name: a\nprompt: Unreviewed.\n", "direct push")
    history.commit_lock(
        {"targets": {}, "version": 1},
        f"promptform apply for {sneaked[:12]}: a [skip ci]\n\nSource-Commit: {sneaked}\n",
    )

    result = run_cli("-C", history.root, "verify-approval", "--since-last-apply")

    assert result.exit_code == 1
    assert f"{sneaked[:12]} did not come from a pull request merged into main" in result.stderr


def test_a_source_commit_outside_the_history_does_not_end_the_walk(
    history: History, fake_github: FakeGitHub, run_cli: RunCli
) -> None:
    fake_github.add_run(history.initial)
    sneaked = history.commit("prompts/a.yaml", "name: a\nprompt: Unreviewed.\n", "direct push")
    outside = "f" * 40
    history.commit_lock(
        {"targets": {}, "version": 1},
        f"promptform apply for {outside[:12]}: a [skip ci]\n\nSource-Commit: {outside}\n",
    )
    tip = history.commit("prompts/c.yaml", "name: c\nprompt: A wren.\n", "wren")
    approved(fake_github, 2, tip)

    result = run_cli("-C", history.root, "verify-approval", "--since-last-apply")

    assert result.exit_code == 1
    assert f"{sneaked[:12]} did not come from a pull request merged into main" in result.stderr


def test_a_lock_change_dropping_a_declared_target_needs_an_approval(
    history: History, fake_github: FakeGitHub, run_cli: RunCli
) -> None:
    fake_github.add_run(history.initial)
    history.apply(run_cli)
    emptied = history.commit_lock({"targets": {}, "version": 1}, "promptform apply: refresh lock")

    result = run_cli("-C", history.root, "verify-approval", "--since-last-apply")

    assert result.exit_code == 1
    assert result.stderr == (
        f"error: {emptied[:12]}: `a` is removed from the lock while its manifest still declares "
        "it, which no apply does, and the commit did not come from a pull request merged into "
        "main (a direct push); refusing to apply it (--allow-direct-push allows that)\n"
    )


def test_a_fingerprint_no_manifest_renders_needs_an_approval(
    history: History, fake_github: FakeGitHub, run_cli: RunCli
) -> None:
    fake_github.add_run(history.initial)
    history.apply(run_cli)
    lock = history.lock()
    lock["targets"]["b"]["fingerprint"] = "sha256:v1:" + "0" * 64  # type: ignore[index]
    history.commit_lock(lock, "promptform apply: refresh lock")

    result = run_cli("-C", history.root, "verify-approval", "--since-last-apply")

    assert result.exit_code == 1
    assert "`b` is locked at a fingerprint its manifest does not render" in result.stderr


def test_an_output_that_does_not_match_its_lock_entry_needs_an_approval(
    history: History, fake_github: FakeGitHub, run_cli: RunCli
) -> None:
    fake_github.add_run(history.initial)
    history.apply(run_cli)
    history.commit("generated/a-1.png", b"other bytes", "promptform apply: touch up a")

    result = run_cli("-C", history.root, "verify-approval", "--since-last-apply")

    assert result.exit_code == 1
    assert "generated/a-1.png does not match its lock entry" in result.stderr


def test_dropping_the_entry_of_a_target_no_longer_declared_needs_no_approval(
    history: History, fake_github: FakeGitHub, run_cli: RunCli
) -> None:
    history.apply(run_cli)
    history.git("rm", "-q", "prompts/b.yaml")
    history.git("commit", "-q", "-m", "remove b")
    removal = history.git("rev-parse", "HEAD")
    history.git("rm", "-q", "generated/b-1.png")
    lock = history.lock()
    del lock["targets"]["b"]  # type: ignore[attr-defined]
    tidied = history.commit_lock(lock, "tidy the lock")
    fake_github.add_run(removal)

    result = run_cli("-C", history.root, "verify-approval", "--since-last-apply")

    assert result.exit_code == 0, result.stderr
    assert verified(result) == [tidied[:12]]
    assert not fake_github.calls("GET", "/pulls")


def test_an_output_stored_in_git_lfs_is_compared_by_its_oid(
    history: History, fake_github: FakeGitHub, run_cli: RunCli
) -> None:
    fake_github.add_run(history.initial)
    history.apply(run_cli)
    image = history.root / "generated/a-1.png"
    pointer = (
        "version https://git-lfs.github.com/spec/v1\n"
        f"oid sha256:{hashlib.sha256(image.read_bytes()).hexdigest()}\n"
        f"size {image.stat().st_size}\n"
    )
    moved = history.commit("generated/a-1.png", pointer, "promptform apply: move images to LFS")

    result = run_cli("-C", history.root, "verify-approval", "--since-last-apply")

    assert result.exit_code == 0, result.stderr
    assert verified(result)[0] == moved[:12]


def test_without_an_earlier_apply_run_the_gate_refuses(
    history: History, fake_github: FakeGitHub, run_cli: RunCli
) -> None:
    history.commit("prompts/a.yaml", "name: a\nprompt: Unreviewed.\n", "direct push")
    tip = history.commit("prompts/c.yaml", "name: c\nprompt: A wren.\n", "wren")
    approved(fake_github, 5, tip)
    # None of these is a successful apply of main.
    fake_github.add_run(history.initial, branch="scratch")
    fake_github.add_run(history.initial, conclusion="failure")
    fake_github.add_run(history.initial, conclusion=None)

    result = run_cli("-C", history.root, "verify-approval", "--since-last-apply")

    assert result.exit_code == 1
    assert result.stderr == (
        "error: no successful run of promptform-apply.yml on main to start from; run the "
        "workflow by hand with the `since` input (verify-approval --since SHA) set to the last "
        "commit known to be approved\n"
    )


def test_a_manual_run_on_main_is_a_starting_point_too(
    history: History, fake_github: FakeGitHub, run_cli: RunCli
) -> None:
    older = history.commit("prompts/a.yaml", "name: a\nprompt: Older.\n", "older")
    newer = history.commit("prompts/a.yaml", "name: a\nprompt: Newer.\n", "newer")
    tip = history.commit("prompts/c.yaml", "name: c\nprompt: A wren.\n", "wren")
    approved(fake_github, 5, tip)
    fake_github.add_run(older)
    fake_github.add_run(newer, event="workflow_dispatch")

    result = run_cli("-C", history.root, "verify-approval", "--since-last-apply")

    assert result.exit_code == 0, result.stderr
    assert verified(result) == [tip[:12]]


def test_a_history_too_long_to_walk_refuses(
    history: History, fake_github: FakeGitHub, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(promptform.gitops.gitrepo, "MAX_UNAPPLIED", 3)
    fake_github.add_run(history.initial)
    for number in range(1, 5):
        sha = history.commit("prompts/c.yaml", f"name: c\nprompt: Wren {number}.\n", "wren")
        approved(fake_github, number, sha)

    result = run_cli("-C", history.root, "verify-approval", "--since-last-apply")

    assert result.exit_code == 1
    assert result.stderr == (
        f"error: more than 3 commits since {history.initial[:12]}, the last applied commit; "
        "verify them another way and run the workflow by hand with the `since` input "
        "(verify-approval --since SHA)\n"
    )


def test_a_starting_point_outside_the_history_refuses(
    history: History, fake_github: FakeGitHub, run_cli: RunCli
) -> None:
    fake_github.add_run("d" * 40)
    result = run_cli("-C", history.root, "verify-approval", "--since-last-apply")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: {'d' * 12}, the last applied commit, is not ")


def test_a_starting_point_off_the_branch_refuses(
    history: History, fake_github: FakeGitHub, run_cli: RunCli
) -> None:
    history.git("switch", "-q", "-c", "side")
    side = history.commit("prompts/c.yaml", "name: c\nprompt: A wren.\n", "side")
    history.git("switch", "-q", "main")
    history.commit("prompts/a.yaml", "name: a\nprompt: Main.\n", "main")
    fake_github.add_run(side)

    result = run_cli("-C", history.root, "verify-approval", "--since-last-apply")

    assert result.exit_code == 1
    assert f"{side[:12]}, the last applied commit, is not an ancestor of HEAD" in result.stderr


def side_branch_merged(history: History, github: FakeGitHub) -> tuple[str, str]:
    """A branch off main with one commit, merged with a merge commit in an approved pull request;
    returns (the side commit, the merge)."""
    history.git("checkout", "-q", "-b", "side")
    side = history.commit("prompts/c.yaml", "name: c\nprompt: A wren.\n", "side")
    history.git("checkout", "-q", "main")
    history.git("merge", "-q", "--no-ff", "-m", "Merge pull request #2", "side")
    merge = history.git("rev-parse", "HEAD")
    github.add_pull(2, "alice", side, merge, commits=(side,))
    github.add_review(2, "bob", "APPROVED", side)
    github.grant("bob")
    return side, merge


def test_a_run_on_a_merged_side_commit_is_no_starting_point(
    history: History, fake_github: FakeGitHub, run_cli: RunCli
) -> None:
    """A successful run whose commit only a merged branch leads to (a tag named main can start
    one) would skip the main-line commits before the merge: the older run is the start."""
    fake_github.add_run(history.initial)
    unapproved = history.commit("prompts/a.yaml", "name: a\nprompt: Unreviewed.\n", "direct push")
    side, merge = side_branch_merged(history, fake_github)
    fake_github.add_run(side)

    result = run_cli("-C", history.root, "verify-approval", "--since-last-apply")

    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: {unapproved[:12]} did not come from a pull request")
    assert verified(result) == [merge[:12]]


def test_without_a_run_on_the_first_parent_line_the_gate_refuses(
    history: History, fake_github: FakeGitHub, run_cli: RunCli
) -> None:
    history.commit("prompts/a.yaml", "name: a\nprompt: Unreviewed.\n", "direct push")
    side, _ = side_branch_merged(history, fake_github)
    fake_github.add_run(side, event="workflow_dispatch")

    result = run_cli("-C", history.root, "verify-approval", "--since-last-apply")

    assert result.exit_code == 1
    assert result.stderr == (
        "error: no successful run of promptform-apply.yml on main to start from (skipped "
        f"{side[:12]}: main reached it only through a merged branch, not on its first-parent "
        "line); run the workflow by hand with the `since` input (verify-approval --since SHA) "
        "set to the last commit known to be approved\n"
    )


def test_since_off_the_first_parent_line_refuses(
    history: History, fake_github: FakeGitHub, run_cli: RunCli
) -> None:
    history.commit("prompts/a.yaml", "name: a\nprompt: Unreviewed.\n", "direct push")
    side, _ = side_branch_merged(history, fake_github)

    result = run_cli("-C", history.root, "verify-approval", "--since", side)

    assert result.exit_code == 1
    assert result.stderr == (
        f"error: {side[:12]}, given with --since, is not on HEAD's first-parent line (a "
        "merged branch's commit: the walk from it would skip the branch's own commits before "
        "the merge); verify the commits another way and run the workflow by hand with the "
        "`since` input (verify-approval --since SHA)\n"
    )


def test_an_odd_runs_answer_refuses(
    history: History, fake_github: FakeGitHub, run_cli: RunCli
) -> None:
    fake_github.add_run(history.initial)
    fake_github.workflow_runs["promptform-apply.yml"][0]["head_sha"] = None
    result = run_cli("-C", history.root, "verify-approval", "--since-last-apply")
    assert result.exit_code == 1
    assert "did not name the commit of run" in result.stderr


def test_an_unknown_workflow_refuses(
    history: History, fake_github: FakeGitHub, run_cli: RunCli
) -> None:
    result = run_cli("-C", history.root, "verify-approval", "--since-last-apply")
    assert result.exit_code == 1
    assert "404 for GET /repos/acme/images/actions/workflows/promptform-apply.yml/runs" in (
        result.stderr
    )


def test_the_workflow_is_the_one_running(
    history: History, fake_github: FakeGitHub, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "GITHUB_WORKFLOW_REF", "acme/images/.github/workflows/images.yml@refs/heads/main"
    )
    fake_github.add_run(history.initial, workflow="images.yml")
    result = run_cli("-C", history.root, "verify-approval", "--since-last-apply")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == f"ok: nothing was committed since {history.initial[:12]}\n"


def test_since_starts_the_walk_by_hand_and_says_so_in_the_job_summary(
    history: History,
    fake_github: FakeGitHub,
    run_cli: RunCli,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    tip = history.commit("prompts/c.yaml", "name: c\nprompt: A wren.\n", "wren")
    approved(fake_github, 5, tip)

    result = run_cli("-C", history.root, "verify-approval", "--since", history.initial[:8])

    assert result.exit_code == 0, result.stderr
    assert verified(result) == [tip[:12]]
    assert not fake_github.calls("GET", "/actions/")
    assert summary.read_text() == (
        f"verify-approval checked the commits after {history.initial}, given by hand with "
        "`--since`, not the last successful apply run.\n"
    )


def test_since_must_name_a_commit(
    history: History, fake_github: FakeGitHub, run_cli: RunCli
) -> None:
    result = run_cli("-C", history.root, "verify-approval", "--since", "nope")
    assert result.exit_code == 1
    assert result.stderr == (
        "error: 'nope' is not a commit in this repository (a branch, tag or hash)\n"
    )


def test_a_shallow_clone_is_refused_rather_than_checked_partly(
    history: History, fake_github: FakeGitHub, run_cli: RunCli, tmp_path: Path
) -> None:
    history.commit("prompts/c.yaml", "name: c\nprompt: A wren.\n", "wren")
    shallow = tmp_path / "shallow"
    subprocess.run(
        ["git", "clone", "-q", "--depth", "1", f"file://{history.root}", str(shallow)],
        check=True,
        timeout=60,
    )

    result = run_cli("-C", shallow, "verify-approval", "--since-last-apply")

    assert result.exit_code == 1
    assert "shallow clone" in result.stderr
    assert "fetch-depth: 0" in result.stderr


def test_swapping_an_image_another_target_reads_needs_an_approval(
    history: History, fake_github: FakeGitHub, run_cli: RunCli
) -> None:
    history.commit("prompts/b.yaml", "name: b\nprompt: An owl.\nimages: [generated/a-1.png]\n", "b")
    fake_github.add_run(history.git("rev-parse", "HEAD"))
    history.apply(run_cli)
    # a's entry is rewritten to record other pixels at its own fingerprint: the file and the lock
    # agree, yet `b` reads that file, so the next apply would pay to generate `b` again.
    other = (history.root / "generated/b-1.png").read_bytes()
    history.write("generated/a-1.png", other)
    lock = history.lock()
    lock["targets"]["a"]["outputs"][0]["sha256"] = hashlib.sha256(other).hexdigest()  # type: ignore[index]
    swapped = history.commit_lock(lock, "promptform apply: results")

    result = run_cli("-C", history.root, "verify-approval", "--since-last-apply")

    assert result.exit_code == 1
    assert f"{swapped[:12]}: `b` reads generated/a-1.png" in result.stderr
    plan = run_cli("-C", history.root, "plan")
    assert "b" in plan.stdout and "replace" in plan.stdout
