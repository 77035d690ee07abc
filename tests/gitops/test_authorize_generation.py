"""`github authorize-generation` against the fake GitHub API: who may have a pull request's images
generated before merge, and what the workflow is told ($GITHUB_OUTPUT) and the asker is told."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import CliResult, RunCli
from tests.support.fake_github_api import REPOSITORY, TOKEN, FakeGitHub

HEAD = "a" * 40
NEW_HEAD = "b" * 40
MIXED_HEAD = "0123456789abcdef" * 2 + "01234567"
WRITER = "maria"
OUTSIDER = "drive-by"


@pytest.fixture
def github(fake_github: FakeGitHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeGitHub:
    """Open PR #7 from branch feature-7 of this repository into main; maria can write."""
    fake_github.add_pull(7, author="sam", head=HEAD, merge_commit=None, commits=(HEAD,))
    fake_github.grant(WRITER, "write")
    monkeypatch.setenv("GITHUB_OUTPUT", str(tmp_path / "github_output"))
    monkeypatch.setenv("RUNNER_TEMP", str(tmp_path))
    return fake_github


def push(github: FakeGitHub, sha: str, author: str = "sam") -> None:
    """`author` pushes commit `sha` to PR #7's branch."""
    github.add_pull_commit(7, sha, author)
    github.pulls[7]["head"]["sha"] = sha


def labeled(actor: str, label: str = "promptform:generate", head: str = HEAD) -> dict[str, Any]:
    return {
        "action": "labeled",
        "label": {"name": label},
        "pull_request": {"number": 7, "head": {"sha": head, "ref": "feature-7"}},
        "repository": {"full_name": REPOSITORY, "default_branch": "main"},
        "sender": {"login": actor},
    }


def commented(actor: str, body: str, on_pull: bool = True, number: int = 7) -> dict[str, Any]:
    issue: dict[str, Any] = {"number": number}
    if on_pull:
        issue["pull_request"] = {"url": f"https://api.github.example/pulls/{number}"}
    return {
        "action": "created",
        "issue": issue,
        "comment": {"body": body, "user": {"login": actor}},
        "repository": {"full_name": REPOSITORY, "default_branch": "main"},
        "sender": {"login": actor},
    }


def run(
    run_cli: RunCli,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    event: dict[str, Any],
) -> CliResult:
    path = tmp_path / "event.json"
    path.write_text(json.dumps(event))
    monkeypatch.setenv("GITHUB_EVENT_PATH", str(path))
    monkeypatch.setenv("GITHUB_EVENT_NAME", name)
    return run_cli("github", "authorize-generation")


def outputs(tmp_path: Path) -> dict[str, str]:
    lines = (tmp_path / "github_output").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines)


def replies(github: FakeGitHub) -> list[str]:
    return [comment["body"] for comment in github.comments.get(7, [])]


def test_a_writer_labelling_the_pull_request_authorises_generation(
    github: FakeGitHub, run_cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = run(run_cli, tmp_path, monkeypatch, "pull_request_target", labeled(WRITER))

    assert result.exit_code == 0, result.stderr
    assert outputs(tmp_path) == {
        "generate": "true",
        "reason": "authorised",
        "pr": "7",
        "head-ref": "feature-7",
        "head-sha": HEAD,
        "base-ref": "main",
        "command": "generate",
        "targets-file": "",
    }
    assert result.stdout == (
        "generate=true: generate the plan on #7 (feature-7 at aaaaaaaaaaaa), asked by maria\n"
    )
    assert replies(github) == []
    # The permission asked about is the labeller's, with the workflow's token.
    [permission] = github.calls("GET", "/permission")
    assert permission.path.endswith(f"/collaborators/{WRITER}/permission")
    assert {call.authorization for call in github.requests} == {f"Bearer {TOKEN}"}
    assert TOKEN not in result.stdout + result.stderr


@pytest.mark.parametrize("role", ["maintain", "admin"])
def test_maintainers_and_admins_may_ask_too(
    github: FakeGitHub,
    run_cli: RunCli,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    role: str,
) -> None:
    github.grant("lead", role)
    result = run(run_cli, tmp_path, monkeypatch, "pull_request_target", labeled("lead"))
    assert result.exit_code == 0, result.stderr
    assert outputs(tmp_path)["generate"] == "true"


@pytest.mark.parametrize("role", ["triage", "read"])
def test_a_label_by_someone_without_write_access_gets_a_reply_and_no_generation(
    github: FakeGitHub,
    run_cli: RunCli,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    role: str,
) -> None:
    github.grant(OUTSIDER, role)
    result = run(run_cli, tmp_path, monkeypatch, "pull_request_target", labeled(OUTSIDER))

    assert result.exit_code == 0, result.stderr
    assert outputs(tmp_path) == {"generate": "false", "reason": "not-authorised"}
    [reply] = replies(github)
    assert f"@{OUTSIDER}" in reply
    assert "only people with write access" in reply
    assert result.stdout == (
        f"generate=false: {OUTSIDER} may not start a paid generation (needs write access)\n"
    )
    # Refused before the pull request itself was even read.
    assert github.calls("GET", "/pulls/7") == []


def test_another_label_is_ignored_without_a_word(
    github: FakeGitHub, run_cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    event = labeled(WRITER, label="promptform:preview")
    result = run(run_cli, tmp_path, monkeypatch, "pull_request_target", event)
    assert result.exit_code == 0, result.stderr
    assert outputs(tmp_path) == {"generate": "false", "reason": "ignored"}
    assert github.requests == []


def test_a_writer_commenting_generate_authorises_generation(
    github: FakeGitHub, run_cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    event = commented(WRITER, f"/promptform generate {HEAD}\n\nthe new hero looks right to me")
    result = run(run_cli, tmp_path, monkeypatch, "issue_comment", event)

    assert result.exit_code == 0, result.stderr
    found = outputs(tmp_path)
    assert (found["generate"], found["command"], found["head-sha"]) == ("true", "generate", HEAD)
    assert found["targets-file"] == ""
    assert replies(github) == []


def test_a_comment_by_someone_without_write_access_gets_a_reply(
    github: FakeGitHub, run_cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    event = commented(OUTSIDER, f"/promptform regenerate {HEAD} hero")
    result = run(run_cli, tmp_path, monkeypatch, "issue_comment", event)

    assert result.exit_code == 0, result.stderr
    assert outputs(tmp_path) == {"generate": "false", "reason": "not-authorised"}
    [reply] = replies(github)
    assert reply.startswith("<!-- promptform:generate-reply -->\n")
    assert "`promptform:generate` label" in reply
    assert not (tmp_path / "promptform-targets.txt").exists()


def test_a_pull_request_from_a_fork_is_explained_and_not_generated(
    github: FakeGitHub, run_cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    github.pulls[7]["head"]["repo"] = {"full_name": "someone/images"}
    result = run(run_cli, tmp_path, monkeypatch, "pull_request_target", labeled(WRITER))

    assert result.exit_code == 0, result.stderr
    assert outputs(tmp_path) == {"generate": "false", "reason": "fork"}
    [reply] = replies(github)
    assert "only when it comes from a branch of this repository" in reply
    assert result.stdout == "generate=false: #7 comes from a fork (someone/images)\n"


def test_a_pull_request_whose_fork_was_deleted_counts_as_a_fork(
    github: FakeGitHub, run_cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    github.pulls[7]["head"]["repo"] = None
    result = run(
        run_cli,
        tmp_path,
        monkeypatch,
        "issue_comment",
        commented(WRITER, f"/promptform generate {HEAD}"),
    )
    assert result.exit_code == 0, result.stderr
    assert outputs(tmp_path)["reason"] == "fork"


def test_a_comment_on_an_issue_is_ignored(
    github: FakeGitHub, run_cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    event = commented(WRITER, "/promptform generate", on_pull=False, number=9)
    result = run(run_cli, tmp_path, monkeypatch, "issue_comment", event)

    assert result.exit_code == 0, result.stderr
    assert outputs(tmp_path) == {"generate": "false", "reason": "ignored"}
    assert result.stdout == "generate=false: #9 is an issue, not a pull request\n"
    assert github.requests == []


def test_an_ordinary_comment_is_ignored(
    github: FakeGitHub, run_cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    event = commented(WRITER, "Could we /promptform generate this later?")
    result = run(run_cli, tmp_path, monkeypatch, "issue_comment", event)
    assert result.exit_code == 0, result.stderr
    assert outputs(tmp_path) == {"generate": "false", "reason": "ignored"}
    assert github.requests == []


@pytest.mark.parametrize(
    ("merge_commit", "word"), [("c" * 40, "merged"), (None, "closed")], ids=["merged", "closed"]
)
def test_a_closed_or_merged_pull_request_is_refused(
    github: FakeGitHub,
    run_cli: RunCli,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    merge_commit: str | None,
    word: str,
) -> None:
    github.add_pull(7, author="sam", head=HEAD, merge_commit=merge_commit, commits=(HEAD,))
    github.pulls[7]["state"] = "closed"
    event = commented(WRITER, f"/promptform generate {HEAD}")
    result = run(run_cli, tmp_path, monkeypatch, "issue_comment", event)

    assert result.exit_code == 0, result.stderr
    assert outputs(tmp_path) == {"generate": "false", "reason": "closed"}
    [reply] = replies(github)
    assert f"#7 is {word}" in reply
    assert result.stdout == f"generate=false: #7 is {word}\n"


def test_a_pull_request_into_another_branch_is_refused(
    github: FakeGitHub, run_cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    github.pulls[7]["base"]["ref"] = "release"
    result = run(run_cli, tmp_path, monkeypatch, "pull_request_target", labeled(WRITER))
    assert result.exit_code == 0, result.stderr
    assert outputs(tmp_path) == {"generate": "false", "reason": "not-default-base"}
    assert "targets `release`" in replies(github)[0]


@pytest.mark.parametrize("how", ["label", "comment"])
def test_the_author_may_not_have_their_own_pull_request_generated(
    github: FakeGitHub,
    run_cli: RunCli,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    how: str,
) -> None:
    # sam opened #7 from a branch of this repository, so sam can write: only a review by someone
    # else stands between the pull request and the key, as for an approval.
    github.grant("sam", "write")
    if how == "label":
        result = run(run_cli, tmp_path, monkeypatch, "pull_request_target", labeled("sam"))
    else:
        event = commented("sam", f"/promptform generate {HEAD}")
        result = run(run_cli, tmp_path, monkeypatch, "issue_comment", event)

    assert result.exit_code == 0, result.stderr
    assert outputs(tmp_path) == {"generate": "false", "reason": "author"}
    [reply] = replies(github)
    assert "@sam, you opened #7" in reply
    assert "someone else with write access" in reply
    assert result.stdout == "generate=false: sam opened #7, so someone else must ask\n"


@pytest.mark.parametrize(
    ("author", "committer"), [(WRITER, "web-flow"), ("sam", WRITER)], ids=["author", "committer"]
)
def test_whoever_authored_or_committed_one_of_its_commits_may_not_ask_either(
    github: FakeGitHub,
    run_cli: RunCli,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    author: str,
    committer: str,
) -> None:
    github.add_pull_commit(7, NEW_HEAD, author, committer)
    github.pulls[7]["head"]["sha"] = NEW_HEAD
    event = labeled(WRITER, head=NEW_HEAD)
    result = run(run_cli, tmp_path, monkeypatch, "pull_request_target", event)

    assert result.exit_code == 0, result.stderr
    assert outputs(tmp_path) == {"generate": "false", "reason": "author"}
    assert "you authored or committed one of the commits of #7" in replies(github)[0]
    assert result.stdout == (
        "generate=false: maria authored or committed one of the commits of #7, "
        "so someone else must ask\n"
    )


def test_with_more_commits_than_github_lists_nobody_can_tell_who_pushed(
    github: FakeGitHub, run_cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(249):
        github.add_pull_commit(7, f"{i:040x}", "sam")
    result = run(run_cli, tmp_path, monkeypatch, "pull_request_target", labeled(WRITER))

    assert result.exit_code == 0, result.stderr
    assert outputs(tmp_path) == {"generate": "false", "reason": "too-many-commits"}
    assert "250 or more commits" in replies(github)[0]
    assert result.stdout == (
        "generate=false: #7 has 250 or more commits, more than GitHub lists, so who pushed to it "
        "is unknown\n"
    )


def test_a_push_between_reading_the_pull_request_and_its_commits_refuses(
    github: FakeGitHub, run_cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The commits listed are not those of the head that was checked: whose they are is unknown.
    github.pulls[7]["head"]["sha"] = NEW_HEAD
    event = labeled(WRITER, head=NEW_HEAD)
    result = run(run_cli, tmp_path, monkeypatch, "pull_request_target", event)

    assert result.exit_code == 0, result.stderr
    assert outputs(tmp_path) == {"generate": "false", "reason": "changed"}
    assert "changed while it was being checked" in replies(github)[0]


def test_new_commits_after_the_label_refuse_the_label(
    github: FakeGitHub, run_cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The writer reviewed what they labelled; a commit pushed since was not reviewed.
    push(github, NEW_HEAD)
    result = run(run_cli, tmp_path, monkeypatch, "pull_request_target", labeled(WRITER))
    assert result.exit_code == 0, result.stderr
    assert outputs(tmp_path) == {"generate": "false", "reason": "changed"}
    assert "remove and add the label again" in replies(github)[0]


@pytest.mark.parametrize(
    "written",
    ["{sha}", "{upper}", "`{sha}`", "{sha}.", "`{upper}`,"],
    ids=["plain", "upper-case", "backticks", "full-stop", "backticks-comma"],
)
def test_a_comment_names_the_head_it_was_written_about_as_people_paste_it(
    github: FakeGitHub,
    run_cli: RunCli,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    written: str,
) -> None:
    push(github, MIXED_HEAD)
    sha = written.format(sha=MIXED_HEAD, upper=MIXED_HEAD.upper())
    event = commented(WRITER, f"/promptform generate {sha}")
    result = run(run_cli, tmp_path, monkeypatch, "issue_comment", event)
    assert result.exit_code == 0, result.stderr
    assert (outputs(tmp_path)["generate"], outputs(tmp_path)["head-sha"]) == ("true", MIXED_HEAD)


@pytest.mark.parametrize(
    ("body", "command"),
    [
        ("/promptform generate", f"/promptform generate {HEAD}"),
        ("/promptform regenerate hero hero icon", f"/promptform regenerate {HEAD} hero icon"),
    ],
    ids=["generate", "regenerate"],
)
def test_a_comment_that_names_no_head_gets_the_command_for_the_current_one(
    github: FakeGitHub,
    run_cli: RunCli,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    body: str,
    command: str,
) -> None:
    # Without it, the generation would be of whatever head exists when the job gets to ask.
    result = run(run_cli, tmp_path, monkeypatch, "issue_comment", commented(WRITER, body))

    assert result.exit_code == 0, result.stderr
    assert outputs(tmp_path) == {"generate": "false", "reason": "no-head"}
    [reply] = replies(github)
    assert f"comment `{command}`" in reply
    assert result.stdout == (
        "generate=false: the comment does not name the commit it was written about\n"
    )
    assert not (tmp_path / "promptform-targets.txt").exists()


@pytest.mark.parametrize("named", [HEAD[:7], HEAD[:39]], ids=["7", "39"])
def test_a_short_sha_is_not_enough(
    github: FakeGitHub,
    run_cli: RunCli,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    named: str,
) -> None:
    # A commit made to share a short prefix with the reviewed one is cheap to find.
    event = commented(WRITER, f"/promptform generate {named}")
    result = run(run_cli, tmp_path, monkeypatch, "issue_comment", event)

    assert result.exit_code == 0, result.stderr
    assert outputs(tmp_path) == {"generate": "false", "reason": "no-head"}
    [reply] = replies(github)
    assert "all 40 hex digits" in reply
    assert f"comment `/promptform generate {HEAD}`" in reply
    assert result.stdout == (
        f"generate=false: `{named}` is not a full commit SHA (40 hex digits)\n"
    )


@pytest.mark.parametrize(
    ("body", "command"),
    [
        (f"/promptform generate {HEAD}", f"/promptform generate {NEW_HEAD}"),
        (f"/promptform regenerate {HEAD} hero", f"/promptform regenerate {NEW_HEAD} hero"),
    ],
    ids=["generate", "regenerate"],
)
def test_a_push_after_the_comment_refuses_the_comment(
    github: FakeGitHub,
    run_cli: RunCli,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    body: str,
    command: str,
) -> None:
    # maria reviewed HEAD and commented; sam pushed NEW_HEAD before the job asked GitHub.
    push(github, NEW_HEAD)
    result = run(run_cli, tmp_path, monkeypatch, "issue_comment", commented(WRITER, body))

    assert result.exit_code == 0, result.stderr
    assert outputs(tmp_path) == {"generate": "false", "reason": "changed"}
    [reply] = replies(github)
    assert f"comment `{command}`" in reply
    assert result.stdout == (
        f"generate=false: #7 is at {NEW_HEAD[:12]}, not at {HEAD[:12]} that the comment names\n"
    )


def test_regenerate_writes_the_validated_addresses_to_a_file(
    github: FakeGitHub, run_cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = (
        f"/promptform regenerate {HEAD} "
        'hero[size=large] banners/wide  hero[size=large] icon[style="flat"]'
    )
    result = run(run_cli, tmp_path, monkeypatch, "issue_comment", commented(WRITER, body))

    assert result.exit_code == 0, result.stderr
    found = outputs(tmp_path)
    assert (found["generate"], found["command"]) == ("true", "regenerate")
    targets = tmp_path / "promptform-targets.txt"
    assert found["targets-file"] == str(targets.resolve())
    # One a line, duplicates dropped, in the order asked.
    assert targets.read_text() == 'hero[size=large]\nbanners/wide\nicon[style="flat"]\n'
    assert "regenerate 3 target(s) on #7" in result.stdout


def test_the_targets_file_can_be_named(
    github: FakeGitHub, run_cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "event.json"
    path.write_text(json.dumps(commented(WRITER, f"/promptform regenerate {HEAD} hero")))
    monkeypatch.setenv("GITHUB_EVENT_PATH", str(path))
    monkeypatch.setenv("GITHUB_EVENT_NAME", "issue_comment")
    chosen = tmp_path / "chosen.txt"
    result = run_cli("github", "authorize-generation", "--targets-file", chosen)
    assert result.exit_code == 0, result.stderr
    assert chosen.read_text() == "hero\n"
    assert outputs(tmp_path)["targets-file"] == str(chosen.resolve())


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("/promptform", "must be followed by `generate` or `regenerate`, not nothing"),
        ("/promptform apply", "must be followed by `generate` or `regenerate`, not `apply`"),
        ("/promptform regenerate", "`/promptform regenerate` needs at least one address"),
        ("/promptform generate hero", "`/promptform generate` takes no addresses"),
        (f"/promptform generate {HEAD} hero", "`/promptform generate` takes no addresses"),
        ("/promptform regenerate hero*", "`hero*` is not a target address"),
        ("/promptform regenerate --all", "`--all` is not a target address"),
        ("/promptform regenerate hero[size=", "`hero[size=` is not a target address"),
        ("/promptform regenerate ../etc", "`../etc` is not a target address"),
        ("/promptform regenerate hero;curl$IFS", "`hero;curl$IFS` is not a target address"),
        ("/promptform regenerate $(id)", "`$(id)` is not a target address"),
    ],
)
def test_a_malformed_command_gets_the_usage_and_no_generation(
    github: FakeGitHub,
    run_cli: RunCli,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    body: str,
    problem: str,
) -> None:
    result = run(run_cli, tmp_path, monkeypatch, "issue_comment", commented(WRITER, body))

    assert result.exit_code == 0, result.stderr
    assert outputs(tmp_path) == {"generate": "false", "reason": "malformed"}
    [reply] = replies(github)
    assert problem in reply
    assert "`/promptform regenerate SHA ADDRESS...`" in reply
    assert result.stdout.startswith("generate=false: ")
    assert problem in result.stdout
    assert not (tmp_path / "promptform-targets.txt").exists()


def test_too_many_addresses_are_refused(
    github: FakeGitHub, run_cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = f"/promptform regenerate {HEAD} " + " ".join(f"t{i}" for i in range(101))
    result = run(run_cli, tmp_path, monkeypatch, "issue_comment", commented(WRITER, body))
    assert outputs(tmp_path)["reason"] == "malformed"
    assert "at most 100 addresses" in result.stdout


def test_another_event_is_one_clear_line(
    github: FakeGitHub, run_cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = run(run_cli, tmp_path, monkeypatch, "pull_request", labeled(WRITER))
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "error: authorize-generation runs on pull_request_target (labeled) and issue_comment "
        "events, not 'pull_request' (GITHUB_EVENT_NAME)"
    )
    assert not (tmp_path / "github_output").exists()


def test_without_an_event_file_it_says_so(
    github: FakeGitHub, run_cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GITHUB_EVENT_PATH", raising=False)
    monkeypatch.setenv("GITHUB_EVENT_NAME", "issue_comment")
    result = run_cli("github", "authorize-generation")
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "error: no event: set GITHUB_EVENT_PATH (GitHub Actions sets it)"
    )


def test_an_api_failure_is_an_error_not_a_refusal(
    github: FakeGitHub, run_cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A broken check must fail the run red, not look like "not authorised".
    github.fail("/permission", 403)
    result = run(run_cli, tmp_path, monkeypatch, "pull_request_target", labeled(WRITER))
    assert result.exit_code == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: GitHub API: 403 for GET /repos/acme/images/collaborators/")
    assert not (tmp_path / "github_output").exists()
    assert replies(github) == []
