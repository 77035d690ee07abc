"""`[budget] max_*_per_pull_request` with `--base-config REF`: everything the branch generated since
it forked from REF counts, regenerations too, read from real git histories whose commits each
changed the lockfile (apply --commit, as the pull-request workflow would)."""

from __future__ import annotations

from pathlib import Path

from tests.support.apply import fake_config
from tests.support.apply import keyed_fake_images_api as keyed_fake_images_api  # `server`
from tests.support.cli import CliResult, RunCli
from tests.support.fake_images_api import FakeImagesAPI
from tests.support.files import write_files
from tests.support.git import commit_all, git, init_repo

# Every image costs $0.25, so costs are easy to read in messages.
PRICED = '\n[pricing."gpt-image-2"]\ndefault = 0.25\n'


def apply(run_cli: RunCli, root: Path, *args: str) -> CliResult:
    result = run_cli("-C", root, "apply", "--yes", "--commit", "--base-config", "main", *args)
    assert "Traceback" not in result.stderr
    return result


def project_on_main(root: Path, server: FakeImagesAPI, budget: str, run_cli: RunCli) -> Path:
    """`main` with `hero` generated and committed, then the `pr` branch checked out."""
    init_repo(root)
    config = fake_config(server) + PRICED + "\n[budget]\n" + budget
    write_files(root, {"promptform.toml": config, "prompts/hero.yaml": "prompt: A hero.\n"})
    commit_all(root, "project")
    assert run_cli("-C", root, "apply", "--yes", "--commit").exit_code == 0
    git(root, "checkout", "-q", "-b", "pr")
    return root


def edit(root: Path, files: dict[str, str | bytes], message: str) -> None:
    write_files(root, files)
    commit_all(root, message)


def test_regenerations_on_the_branch_count_though_the_lockfile_keeps_one_entry(
    tmp_path: Path, server: FakeImagesAPI, run_cli: RunCli
) -> None:
    root = project_on_main(tmp_path / "repo", server, "max_images_per_pull_request = 3\n", run_cli)
    # Generated on main before the fork: not this pull request's.
    first = apply(run_cli, root)
    assert first.exit_code == 0, first.stderr
    edit(root, {"prompts/hero.yaml": "prompt: A braver hero.\n"}, "braver")
    done = apply(run_cli, root)
    assert done.exit_code == 0, done.stderr
    assert "Pull request budget: 0 images ($0.00) already generated" in done.stderr
    assert apply(run_cli, root, "--replace", "hero").exit_code == 0
    assert git(root, "log", "--format=%s", "-1").startswith("promptform")
    requests_so_far = len(server.image_requests)

    edit(root, {"prompts/owl.yaml": "prompt: An owl.\nn: 2\n"}, "owls")
    refused = apply(run_cli, root)
    assert refused.exit_code == 1
    assert (
        "error: this pull request already generated 2 images since it forked from main and this "
        "apply would generate 2 more, 4 in all, over the limit of 3 ([budget] "
        "max_images_per_pull_request); narrow this run with --target, or raise the limit on the "
        "base branch in its own reviewed pull request"
    ) in refused.stderr
    assert len(server.image_requests) == requests_so_far

    plan = run_cli("-C", root, "plan", "--base-config", "main")
    assert plan.exit_code == 1
    assert "and this plan would generate 2 more, 4 in all" in plan.stderr

    edit(root, {"prompts/owl.yaml": "prompt: An owl.\n"}, "one owl")
    allowed = apply(run_cli, root)
    assert allowed.exit_code == 0, allowed.stderr
    assert "2 images ($0.50) already generated since the branch forked from main" in allowed.stderr
    assert len(server.image_requests) == requests_so_far + 1


def test_the_cost_limit_counts_what_the_branch_spent(
    tmp_path: Path, server: FakeImagesAPI, run_cli: RunCli
) -> None:
    root = project_on_main(tmp_path / "repo", server, "max_cost_per_pull_request = 0.6\n", run_cli)
    edit(root, {"prompts/owl.yaml": "prompt: An owl.\nn: 2\n"}, "owls")
    assert apply(run_cli, root).exit_code == 0
    edit(root, {"prompts/fox.yaml": "prompt: A fox.\n"}, "fox")
    refused = apply(run_cli, root)
    assert refused.exit_code == 1
    assert (
        "error: this pull request already spent $0.50 (2 images) since it forked from main and "
        "this apply is estimated at $0.25 more, $0.75 in all, over the limit of $0.60 ([budget] "
        "max_cost_per_pull_request)"
    ) in refused.stderr
    assert len(server.image_requests) == 2  # hero on main, both owls in one request


def test_generations_merged_in_from_the_base_are_not_counted(
    tmp_path: Path, server: FakeImagesAPI, run_cli: RunCli
) -> None:
    root = project_on_main(tmp_path / "repo", server, "max_images_per_pull_request = 1\n", run_cli)
    edit(root, {"prompts/owl.yaml": "prompt: An owl.\n"}, "owl")
    assert apply(run_cli, root).exit_code == 0
    git(root, "checkout", "-q", "main")
    edit(root, {"prompts/fox.yaml": "prompt: A fox.\n"}, "fox")
    assert run_cli("-C", root, "apply", "--yes", "--commit").exit_code == 0
    git(root, "checkout", "-q", "pr")
    git(root, "merge", "-q", "--no-edit", "main")
    # One owl spent: the fox was paid for on main. The limit of 1 is reached, not passed.
    plan = run_cli("-C", root, "plan", "--base-config", "main")
    assert plan.exit_code == 0, plan.stderr
    assert "Pull request budget: 1 image ($0.25) already generated" in plan.stderr
    edit(root, {"prompts/owl.yaml": "prompt: A wiser owl.\n"}, "wiser")
    refused = apply(run_cli, root)
    assert refused.exit_code == 1
    assert "already generated 1 image since it forked from main" in refused.stderr


def test_an_entry_dropped_by_a_later_commit_still_counts(
    tmp_path: Path, server: FakeImagesAPI, run_cli: RunCli
) -> None:
    root = project_on_main(tmp_path / "repo", server, "max_images_per_pull_request = 1\n", run_cli)
    edit(root, {"prompts/owl.yaml": "prompt: An owl.\n"}, "owl")
    assert apply(run_cli, root).exit_code == 0
    # The pull request puts main's lockfile back: the owl it paid for is still in history.
    git(root, "checkout", "main", "--", "promptform.lock")
    git(root, "rm", "-q", "prompts/owl.yaml")
    commit_all(root, "drop the owl")
    edit(root, {"prompts/fox.yaml": "prompt: A fox.\n"}, "fox")
    refused = apply(run_cli, root)
    assert refused.exit_code == 1
    assert "already generated 1 image since it forked from main" in refused.stderr


def test_a_shallow_clone_is_refused_rather_than_undercounted(
    tmp_path: Path, server: FakeImagesAPI, run_cli: RunCli
) -> None:
    origin = project_on_main(
        tmp_path / "origin", server, "max_images_per_pull_request = 5\n", run_cli
    )
    edit(origin, {"prompts/owl.yaml": "prompt: An owl.\n"}, "owl")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", "--depth", "1", "--no-single-branch", f"file://{origin}", "clone")
    git(clone, "checkout", "-q", "pr")
    git(clone, "branch", "-q", "main", "origin/main")
    result = apply(run_cli, clone)
    assert result.exit_code == 1
    assert "this is a shallow clone" in result.stderr
    assert len(server.image_requests) == 1  # hero, on main


def test_without_per_pull_request_limits_history_is_not_read(
    tmp_path: Path, server: FakeImagesAPI, run_cli: RunCli
) -> None:
    root = project_on_main(tmp_path / "repo", server, "max_images = 5\n", run_cli)
    edit(root, {"prompts/owl.yaml": "prompt: An owl.\n"}, "owl")
    result = apply(run_cli, root)
    assert result.exit_code == 0, result.stderr
    assert "Pull request budget" not in result.stderr
