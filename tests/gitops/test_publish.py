"""`apply --commit --push` with real git: a bare `origin`, a merged feature branch, racing pushes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import promptform.gitops.publish
from promptform.core.config import Config, load_config
from promptform.core.errors import PromptformError
from promptform.core.output import Output
from promptform.gitops.publish import commit_message, lock_changes, push_results
from promptform.state.apply_lock import apply_lock
from promptform.state.lockfile import Lockfile
from tests.support.cli import RunCli
from tests.support.files import write_files
from tests.support.git import commit_all, entry, git

PROJECT: dict[str, str | bytes] = {
    "promptform.toml": """
        [promptform]
        default_provider = "offline"

        [defaults]
        model = "gpt-image-2"
        size = "256x256"
        quality = "low"
        """,
    "templates/style.j2": "Flat colours.\n",
    "templates/plain.j2": "Plain.\n",
    "prompts/cards.yaml": """
        name: cards
        matrix:
          animal: [fox, owl]
        prompt: |
          {% include "style.j2" %}
          A {{ animal }}.
        """,
    "prompts/hero.yaml": "prompt: A hero image.\n",
    "prompts/logo.yaml": 'prompt: |\n  {% include "plain.j2" %}\n  A logo.\n',
    "notes.txt": "not promptform's\n",
}


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(promptform.gitops.publish, "BACKOFF_SECONDS", 0.0)


@pytest.fixture
def origin(tmp_path: Path, run_cli: RunCli) -> Path:
    """A bare `origin` whose main has the project with every target applied and committed."""
    bare = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    seed = tmp_path / "seed"
    git(tmp_path, "clone", "-q", str(bare), str(seed))
    write_files(seed, PROJECT)
    commit_all(seed, "Project")
    result = run_cli("-C", seed, "apply", "--yes", "--push")
    assert result.exit_code == 0, result.stderr
    return bare


def clone(origin: Path, name: str) -> Path:
    path = origin.parent / name
    git(origin.parent, "clone", "-q", str(origin), str(path))
    return path


def merge_feature(origin: Path) -> str:
    """A feature branch changes one manifest and one template, and is merged into main."""
    dev = clone(origin, "dev")
    git(dev, "switch", "-q", "-c", "feature")
    (dev / "prompts" / "hero.yaml").write_text("prompt: A brighter hero image.\n")
    (dev / "templates" / "style.j2").write_text("Flat pastel colours.\n")
    commit_all(dev, "Brighter hero, pastel cards")
    git(dev, "switch", "-q", "main")
    git(dev, "merge", "-q", "--no-ff", "-m", "Merge feature", "feature")
    git(dev, "push", "-q", "origin", "main")
    return git(dev, "rev-parse", "HEAD")


def lock_at(repo: Path, ref: str) -> dict[str, dict[str, object]]:
    """Every entry committed in the shards of promptform.lock at `ref`."""
    targets: dict[str, dict[str, object]] = {}
    for shard in git(repo, "ls-tree", "-r", "--name-only", ref, "--", "promptform.lock/").split():
        targets.update(json.loads(git(repo, "show", f"{ref}:{shard}"))["targets"])
    return targets


def changed_files(repo: Path, ref: str) -> list[str]:
    return git(repo, "diff", "--name-only", f"{ref}~1", ref).splitlines()


def test_apply_pushes_exactly_the_changed_outputs_and_lock_entries(
    origin: Path, run_cli: RunCli
) -> None:
    merged = merge_feature(origin)
    ci = clone(origin, "ci")
    (ci / "scratch.txt").write_text("an untracked file of the runner\n")
    result = run_cli("-C", ci, "apply", "--yes", "--commit", "--push")
    assert result.exit_code == 0, result.stderr

    assert git(origin, "rev-parse", "main^") == merged
    before, after = lock_at(origin, "main^"), lock_at(origin, "main")
    changed = sorted(address for address in after if after[address] != before[address])
    assert changed == ["cards[animal=fox]", "cards[animal=owl]", "hero"]
    outputs = sorted(
        f"generated/{output['path']}"
        for address in changed
        for output in after[address]["outputs"]  # type: ignore[attr-defined]
    )
    shards = ["promptform.lock/cards.yaml.json", "promptform.lock/hero.yaml.json"]
    assert sorted(changed_files(origin, "main")) == sorted([*outputs, *shards])
    assert all(entry["source_commit"] == merged for entry in (after[a] for a in changed))

    message = git(origin, "log", "-1", "--format=%B", "main")
    assert message.splitlines()[0] == (
        f"promptform apply for {merged[:12]}: cards[animal=fox], cards[animal=owl], hero [skip ci]"
    )
    assert f"Source-Commit: {merged}" in message
    assert "- hero" in message
    assert git(ci, "status", "--porcelain") == "?? scratch.txt"
    assert f"Pushed {git(origin, 'rev-parse', 'main')[:12]} to origin/main." in result.stderr


def test_commit_and_push_happen_under_the_apply_lock(
    origin: Path, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    merge_feature(origin)
    ci = clone(origin, "ci")
    seen: list[str] = []
    publish = promptform.gitops.publish.publish

    def publish_while_another_apply_starts(config: Config, *args: Any, **kwargs: Any) -> None:
        # A rebase rewrites the lockfile: a second apply must not be writing it meanwhile.
        try:
            with apply_lock(config.state_dir):
                seen.append("a second apply could start")
        except PromptformError as exc:
            seen.append(str(exc).split(" (")[0])
        publish(config, *args, **kwargs)

    monkeypatch.setattr(promptform.gitops.publish, "publish", publish_while_another_apply_starts)
    result = run_cli("-C", ci, "apply", "--yes", "--push")
    assert result.exit_code == 0, result.stderr
    assert seen == ["another apply is running on this repository"]


def test_a_concurrent_push_is_rebased_onto_and_retried(origin: Path, run_cli: RunCli) -> None:
    merge_feature(origin)
    ci = clone(origin, "ci")
    other = clone(origin, "other")
    (other / "notes.txt").write_text("pushed while apply ran\n")
    concurrent = commit_all(other, "Notes")
    git(other, "push", "-q", "origin", "main")

    result = run_cli("-C", ci, "apply", "--yes", "--push")
    assert result.exit_code == 0, result.stderr
    assert "push to origin/main rejected (someone pushed first); rebasing and retrying" in (
        result.stderr
    )
    assert git(origin, "rev-parse", "main^") == concurrent
    assert git(origin, "show", "main:notes.txt") == "pushed while apply ran"
    assert "promptform.lock/hero.yaml.json" in changed_files(origin, "main")


def test_lockfile_changes_on_both_sides_merge_during_the_rebase(
    origin: Path, run_cli: RunCli
) -> None:
    # Nobody configured the merge driver or .gitattributes: apply brings its own for the rebase.
    merge_feature(origin)
    ci = clone(origin, "ci")
    other = clone(origin, "other")
    (other / "prompts" / "logo.yaml").write_text("prompt: A round logo.\n")
    commit_all(other, "Round logo")
    assert run_cli("-C", other, "apply", "--yes", "--push", "--target", "logo").exit_code == 0
    logo = lock_at(origin, "main")["logo"]

    result = run_cli("-C", ci, "apply", "--yes", "--push", "--target", "hero", "--target", "cards*")
    assert result.exit_code == 0, result.stderr
    assert "rebasing and retrying" in result.stderr
    final = lock_at(origin, "main")
    assert final["logo"] == logo
    assert final["hero"]["request"]["prompt"] == "A brighter hero image."  # type: ignore[index]
    committed = git(origin, "show", "main", "--format=", "--name-only").splitlines()
    assert "promptform.lock/hero.yaml.json" in committed
    assert "promptform.lock/logo.yaml.json" not in committed


def test_a_conflicting_concurrent_apply_fails_clearly_and_keeps_the_commit(
    origin: Path, run_cli: RunCli
) -> None:
    merge_feature(origin)
    ci = clone(origin, "ci")
    other = clone(origin, "other")
    assert run_cli("-C", other, "apply", "--yes", "--push", "--target", "hero").exit_code == 0
    pushed = git(origin, "rev-parse", "main")
    (ci / "prompts" / "hero.yaml").write_text("prompt: Yet another hero.\n")
    commit_all(ci, "Local hero")

    result = run_cli("-C", ci, "apply", "--yes", "--push", "--target", "hero")
    assert result.exit_code == 1
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("error: cannot rebase onto origin/main: both sides changed ")
    assert "promptform.lock" in error
    assert error.endswith("the commit is kept locally: merge by hand, then push")
    assert git(origin, "rev-parse", "main") == pushed
    assert git(ci, "log", "-1", "--format=%s").startswith("promptform apply")
    assert git(ci, "status", "--porcelain") == ""  # the rebase was aborted


def test_a_push_refused_by_the_remote_is_not_retried(
    origin: Path, run_cli: RunCli, tmp_path: Path
) -> None:
    hook = origin / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'protected branch' >&2\nexit 1\n")
    hook.chmod(0o755)
    merge_feature_without_push = clone(origin, "ci")
    (merge_feature_without_push / "prompts" / "hero.yaml").write_text("prompt: Local.\n")
    commit_all(merge_feature_without_push, "Local")
    result = run_cli("-C", merge_feature_without_push, "apply", "--yes", "--push")
    assert result.exit_code == 1
    assert "rejected" not in result.stderr.replace("pre-receive hook declined", "")
    assert result.stderr.strip().splitlines()[-1] == (
        "error: push to origin/main failed: pre-receive hook declined"
    )


def test_retries_are_bounded(origin: Path, run_cli: RunCli) -> None:
    ci = clone(origin, "ci")
    other = clone(origin, "other")
    (ci / "prompts" / "hero.yaml").write_text("prompt: Local.\n")
    commit_all(ci, "Local")
    assert run_cli("-C", ci, "apply", "--yes", "--commit").exit_code == 0
    # Someone else pushes right before each of our pushes, every time.
    hook = ci / ".git" / "hooks" / "pre-push"
    hook.write_text(
        "#!/bin/sh\n"
        "unset $(git rev-parse --local-env-vars)\n"
        f"cd '{other}' && date +%s%N >> notes.txt && git commit -qam Push && git push -q origin main\n"
    )
    hook.chmod(0o755)
    delays: list[float] = []
    with pytest.raises(promptform.gitops.publish.GitError) as caught:
        push_results(load_config(ci), Output(), sleep=delays.append)
    assert str(caught.value) == (
        "push to origin/main was rejected 5 times because others kept pushing; the commit is "
        "kept locally: run `git pull --rebase && git push` (never --force)"
    )
    assert len(delays) == 4
    assert git(other, "rev-list", "--count", "HEAD") == git(origin, "rev-list", "--count", "main")


def test_nothing_to_commit_leaves_history_alone(origin: Path, run_cli: RunCli) -> None:
    ci = clone(origin, "ci")
    head = git(ci, "rev-parse", "HEAD")
    result = run_cli("-C", ci, "apply", "--yes", "--commit")
    assert result.exit_code == 0
    assert git(ci, "rev-parse", "HEAD") == head


def test_other_staged_changes_stay_out_of_the_commit(origin: Path, run_cli: RunCli) -> None:
    ci = clone(origin, "ci")
    (ci / "prompts" / "hero.yaml").write_text("prompt: Local.\n")
    commit_all(ci, "Local")
    (ci / "notes.txt").write_text("staged, not promptform's\n")
    git(ci, "add", "notes.txt")
    assert run_cli("-C", ci, "apply", "--yes", "--commit").exit_code == 0
    assert "notes.txt" not in changed_files(ci, "HEAD")
    assert git(ci, "diff", "--cached", "--name-only") == "notes.txt"


def test_a_deleted_target_commits_the_removal(origin: Path, run_cli: RunCli) -> None:
    ci = clone(origin, "ci")
    logo = lock_at(ci, "HEAD")["logo"]["outputs"][0]["path"]  # type: ignore[index]
    git(ci, "rm", "-q", "prompts/logo.yaml")
    git(ci, "commit", "-q", "-m", "No logo")
    assert run_cli("-C", ci, "apply", "--yes", "--commit").exit_code == 0
    assert sorted(changed_files(ci, "HEAD")) == [
        f"generated/{logo}",
        "promptform.lock/logo.yaml.json",  # the shard is deleted with its last entry
    ]
    assert not (ci / "promptform.lock/logo.yaml.json").exists()
    assert "Deleted:\n- logo" in git(ci, "log", "-1", "--format=%B")


def test_lock_changes_tell_created_regenerated_moved_and_deleted_apart() -> None:
    before = Lockfile(
        targets={"keep": entry("k"), "mv": entry("m"), "re": entry("r"), "rm": entry("x")}
    )
    after = Lockfile(
        targets={
            "keep": entry("k"),
            "mv": entry("m", path="renamed.png"),
            "re": entry("r2"),
            "new": entry("n"),
        }
    )
    changes = lock_changes(before, after)
    assert (changes.created, changes.regenerated, changes.moved, changes.deleted) == (
        ("new",),
        ("re",),
        ("mv",),
        ("rm",),
    )


def test_a_long_list_of_targets_is_shortened_in_the_subject_only() -> None:
    changes = lock_changes(Lockfile(), Lockfile(targets={f"t{i}": entry(str(i)) for i in range(5)}))
    message = commit_message(changes, None)
    assert message.splitlines()[0] == "promptform apply: t0, t1, t2 and 2 more [skip ci]"
    assert "- t4" in message
    assert message.endswith("Source-Commit: none (not committed)\n")


def test_commit_outside_a_repository_is_one_clear_line(tmp_path: Path, run_cli: RunCli) -> None:
    root = write_files(tmp_path / "plain", {k: v for k, v in PROJECT.items() if k != "notes.txt"})
    result = run_cli("-C", root, "apply", "--yes", "--commit")
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: {root} is not in a git repository; --commit needs one"
    )


def test_a_rebase_renames_the_source_commit_it_rewrote(origin: Path, run_cli: RunCli) -> None:
    # The results sit on a commit that was never pushed; the rebase rewrites it, so the lockfile
    # and the Source-Commit line must name the rewritten commit, which exists on the remote.
    local = clone(origin, "local")
    (local / "prompts" / "hero.yaml").write_text("prompt: A brighter hero image.\n")
    unpushed = commit_all(local, "Brighter hero")
    other = clone(origin, "other")
    (other / "notes.txt").write_text("pushed while apply ran\n")
    commit_all(other, "Notes")
    git(other, "push", "-q", "origin", "main")

    result = run_cli("-C", local, "apply", "--yes", "--push")

    assert result.exit_code == 0, result.stderr
    rewritten = git(origin, "rev-parse", "main^")
    assert rewritten != unpushed
    assert git(origin, "log", "-1", "--format=%s", "main^") == "Brighter hero"
    assert f"Source-Commit: {rewritten}" in git(origin, "log", "-1", "--format=%B", "main")
    assert lock_at(origin, "main")["hero"]["source_commit"] == rewritten
    assert git(local, "status", "--porcelain") == ""
