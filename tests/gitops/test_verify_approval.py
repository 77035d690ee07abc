"""verify-approval against the fake GitHub API over loopback HTTP: who approved what, and errors."""

from __future__ import annotations

import httpx
import pytest

import promptform.gitops.github_api
from promptform.gitops.github_api import GitHub, GitHubError, GitHubSettings
from tests.support.cli import CliResult, RunCli
from tests.support.fake_github_api import TOKEN, FakeGitHub

MERGE = "a" * 40
HEAD = "b" * 40
OLDER = "c" * 40


@pytest.fixture
def merged(fake_github: FakeGitHub, monkeypatch: pytest.MonkeyPatch) -> FakeGitHub:
    """PR #7 by alice, head HEAD, merged as MERGE; GITHUB_SHA is the merge commit. The reviewers
    the tests use can write to the repository."""
    monkeypatch.setenv("GITHUB_SHA", MERGE)
    fake_github.add_pull(7, "alice", HEAD, MERGE, commits=(HEAD,))
    for reviewer in ("bob", "carol", "dave", "r1", "r2", "r3", "r4"):
        fake_github.grant(reviewer)
    return fake_github


def refused(result: CliResult) -> str:
    assert result.exit_code == 1, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert TOKEN not in result.stdout + result.stderr
    return lines[0]


def test_an_approval_by_another_reviewer_passes(merged: FakeGitHub, run_cli: RunCli) -> None:
    merged.add_review(7, "bob", "APPROVED", HEAD)
    result = run_cli("verify-approval")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == f"ok: {MERGE[:12]}: pull request #7 was approved by bob\n"


def test_the_token_is_sent_as_a_bearer_header_only(merged: FakeGitHub, run_cli: RunCli) -> None:
    merged.add_review(7, "bob", "APPROVED", HEAD)
    run_cli("verify-approval")
    assert {r.authorization for r in merged.requests} == {f"Bearer {TOKEN}"}
    assert all(TOKEN not in r.path and TOKEN not in str(r.query) for r in merged.requests)


def test_changes_requested_after_an_approval_refuses(merged: FakeGitHub, run_cli: RunCli) -> None:
    merged.add_review(7, "bob", "APPROVED", HEAD)
    merged.add_review(7, "carol", "APPROVED", HEAD)
    merged.add_review(7, "bob", "CHANGES_REQUESTED", HEAD)
    line = refused(run_cli("verify-approval"))
    assert line == "error: pull request #7: changes requested by bob and not since approved"


def test_an_approval_after_changes_requested_counts(merged: FakeGitHub, run_cli: RunCli) -> None:
    merged.add_review(7, "bob", "CHANGES_REQUESTED", OLDER)
    merged.add_review(7, "bob", "COMMENTED", OLDER)
    merged.add_review(7, "bob", "APPROVED", HEAD)
    assert run_cli("verify-approval").exit_code == 0


def test_a_comment_does_not_withdraw_an_approval(merged: FakeGitHub, run_cli: RunCli) -> None:
    merged.add_review(7, "bob", "APPROVED", HEAD)
    merged.add_review(7, "bob", "COMMENTED", HEAD)
    assert run_cli("verify-approval").exit_code == 0


def test_a_dismissed_approval_does_not_count(merged: FakeGitHub, run_cli: RunCli) -> None:
    merged.add_review(7, "bob", "APPROVED", OLDER)
    merged.add_review(7, "bob", "DISMISSED", OLDER)
    line = refused(run_cli("verify-approval"))
    assert "no approving review" in line


def test_only_the_author_approving_refuses(merged: FakeGitHub, run_cli: RunCli) -> None:
    merged.add_review(7, "alice", "APPROVED", HEAD)
    merged.add_review(7, "dave", "COMMENTED", HEAD)
    line = refused(run_cli("verify-approval"))
    assert line == (
        "error: pull request #7: only its author approved it; it needs an approval from "
        "someone other than its author (alice)"
    )


def test_no_review_at_all_refuses(merged: FakeGitHub, run_cli: RunCli) -> None:
    assert "no approving review" in refused(run_cli("verify-approval"))


def test_a_stale_approval_passes_unless_the_head_must_be_approved(
    merged: FakeGitHub, run_cli: RunCli
) -> None:
    merged.add_review(7, "bob", "APPROVED", OLDER)
    assert run_cli("verify-approval").exit_code == 0
    line = refused(run_cli("verify-approval", "--require-approval-of-head"))
    assert line == (
        f"error: pull request #7: approved at {OLDER[:12]}, not at its final head {HEAD[:12]} "
        "(--require-approval-of-head); ask for a review of the last push"
    )


def test_an_approval_of_the_head_satisfies_require_approval_of_head(
    merged: FakeGitHub, run_cli: RunCli
) -> None:
    merged.add_review(7, "bob", "APPROVED", OLDER)
    merged.add_review(7, "carol", "APPROVED", HEAD)
    result = run_cli("verify-approval", "--require-approval-of-head")
    assert result.exit_code == 0
    assert result.stdout.endswith("approved by carol\n")


def test_a_direct_push_is_refused(fake_github: FakeGitHub, run_cli: RunCli) -> None:
    line = refused(run_cli("verify-approval", "--sha", MERGE))
    assert line == (
        f"error: {MERGE[:12]} did not come from a pull request merged into main (a direct push); "
        "refusing to apply it (--allow-direct-push allows that)"
    )


def test_a_commit_of_an_unmerged_pull_request_is_a_direct_push(
    fake_github: FakeGitHub, run_cli: RunCli
) -> None:
    fake_github.add_pull(3, "alice", HEAD, None, commits=(HEAD,))
    fake_github.add_review(3, "bob", "APPROVED", HEAD)
    assert "direct push" in refused(run_cli("verify-approval", "--sha", HEAD))


def test_a_direct_push_is_allowed_with_the_flag(fake_github: FakeGitHub, run_cli: RunCli) -> None:
    result = run_cli("verify-approval", "--sha", MERGE, "--allow-direct-push")
    assert result.exit_code == 0
    assert "allowed by --allow-direct-push" in result.stdout


def test_the_pull_request_merged_as_the_commit_is_chosen(
    fake_github: FakeGitHub, run_cli: RunCli
) -> None:
    # The commit is in two merged PRs (one stacked on the other); only #9 was merged as it.
    fake_github.add_pull(8, "alice", OLDER, "d" * 40, commits=(MERGE,))
    fake_github.add_pull(9, "erin", HEAD, MERGE)
    fake_github.add_review(9, "bob", "APPROVED", HEAD)
    fake_github.grant("bob")
    result = run_cli("verify-approval", "--sha", MERGE)
    assert result.exit_code == 0, result.stderr
    assert "#9" in result.stdout


@pytest.mark.parametrize("role", ["read", "triage"])
def test_an_approval_from_someone_who_cannot_write_does_not_count(
    merged: FakeGitHub, run_cli: RunCli, role: str
) -> None:
    # On a public repository any account can leave an approving review.
    merged.grant("mallory", role)
    merged.add_review(7, "mallory", "APPROVED", HEAD)
    line = refused(run_cli("verify-approval"))
    assert line == (
        "error: pull request #7: approved only by mallory, who cannot write to the repository; "
        "it needs an approval from someone with write, maintain or admin permission"
    )
    assert [r.path for r in merged.calls("GET", "/permission")] == [
        "/repos/acme/images/collaborators/mallory/permission"
    ]


@pytest.mark.parametrize("role", ["write", "maintain", "admin"])
def test_an_approval_from_a_writer_maintainer_or_admin_counts(
    merged: FakeGitHub, run_cli: RunCli, role: str
) -> None:
    merged.grant("erin", role)
    merged.add_review(7, "erin", "APPROVED", HEAD)
    result = run_cli("verify-approval")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.endswith("approved by erin\n")


def test_an_approval_by_someone_who_pushed_to_the_pull_request_does_not_count(
    merged: FakeGitHub, run_cli: RunCli
) -> None:
    # bob pushed a commit to alice's pull request, then approved the result.
    merged.add_pull_commit(7, OLDER, author="alice", committer="bob")
    merged.add_review(7, "bob", "APPROVED", HEAD)
    line = refused(run_cli("verify-approval"))
    assert line == (
        "error: pull request #7: approved only by bob, who pushed commits to it; it needs an "
        "approval from someone other than its author (alice) and the authors of its commits"
    )


def test_a_commit_author_approving_does_not_count_but_another_writer_does(
    merged: FakeGitHub, run_cli: RunCli
) -> None:
    merged.add_pull_commit(7, OLDER, author="bob")
    merged.add_review(7, "bob", "APPROVED", HEAD)
    merged.add_review(7, "carol", "APPROVED", HEAD)
    result = run_cli("verify-approval")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.endswith("approved by carol\n")


def test_an_odd_permission_answer_refuses(merged: FakeGitHub, run_cli: RunCli) -> None:
    merged.add_review(7, "bob", "APPROVED", HEAD)
    merged.permissions["bob"] = ""
    line = refused(run_cli("verify-approval"))
    assert "permission of bob" in line


def test_a_pull_request_merged_into_another_branch_does_not_count(
    fake_github: FakeGitHub, run_cli: RunCli
) -> None:
    # Approved and merged into `scratch`, then the same commit pushed to main.
    fake_github.add_pull(4, "alice", HEAD, MERGE, commits=(HEAD,), base="scratch")
    fake_github.grant("bob")
    fake_github.add_review(4, "bob", "APPROVED", HEAD)
    line = refused(run_cli("verify-approval", "--sha", HEAD))
    assert line == (
        f"error: {HEAD[:12]} did not come from a pull request merged into main (a direct push); "
        "refusing to apply it (--allow-direct-push allows that)"
    )


def test_the_branch_comes_from_the_option_before_github_ref(
    fake_github: FakeGitHub, run_cli: RunCli
) -> None:
    fake_github.add_pull(4, "alice", HEAD, MERGE, commits=(HEAD,), base="release")
    fake_github.grant("bob")
    fake_github.add_review(4, "bob", "APPROVED", HEAD)
    result = run_cli("verify-approval", "--sha", HEAD, "--branch", "release")
    assert result.exit_code == 0, result.stderr


def test_a_pull_request_that_does_not_contain_the_commit_does_not_count(
    fake_github: FakeGitHub, run_cli: RunCli
) -> None:
    # The commit-to-pulls listing names #6, but the commit is neither #6's merge commit nor one of
    # its own commits.
    fake_github.add_pull(6, "alice", HEAD, MERGE, commits=(HEAD,))
    fake_github.commit_pulls[OLDER] = [6]
    fake_github.grant("bob")
    fake_github.add_review(6, "bob", "APPROVED", HEAD)
    assert "direct push" in refused(run_cli("verify-approval", "--sha", OLDER))


def test_a_pull_request_without_a_number_does_not_count(
    merged: FakeGitHub, run_cli: RunCli
) -> None:
    merged.add_review(7, "bob", "APPROVED", HEAD)
    del merged.pulls[7]["number"]
    assert "direct push" in refused(run_cli("verify-approval"))


def test_reviews_are_read_across_pages(merged: FakeGitHub, run_cli: RunCli) -> None:
    merged.page_size = 2
    for reviewer in ["r1", "r2", "r3", "r4"]:
        merged.add_review(7, reviewer, "COMMENTED", HEAD)
    merged.add_review(7, "bob", "APPROVED", HEAD)
    merged.add_review(7, "r1", "CHANGES_REQUESTED", HEAD)  # on page 3
    line = refused(run_cli("verify-approval"))
    assert "changes requested by r1" in line
    pages = [r.query.get("page", ["1"])[0] for r in merged.calls("GET", "/reviews")]
    assert pages == ["1", "2", "3"]


def test_a_rejected_token_is_one_clear_line(
    merged: FakeGitHub, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "ghs_wrongtoken")
    line = refused(run_cli("verify-approval"))
    assert line == (
        f"error: GitHub API: 401 for GET /repos/acme/images/commits/{MERGE}/pulls "
        "(Bad credentials): the token was rejected; check GITHUB_TOKEN"
    )
    assert "ghs_wrongtoken" not in line


def test_an_unknown_repository_is_a_404_naming_it(merged: FakeGitHub, run_cli: RunCli) -> None:
    line = refused(run_cli("verify-approval", "--repo", "acme/missing"))
    assert line.startswith("error: GitHub API: 404 for GET /repos/acme/missing/commits/")
    assert "check the repository (acme/missing)" in line


def test_server_errors_are_retried(
    merged: FakeGitHub, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(promptform.gitops.github_api, "RETRY_DELAY", 0.0)
    merged.add_review(7, "bob", "APPROVED", HEAD)
    merged.fail("/reviews", 502, times=2)
    assert run_cli("verify-approval").exit_code == 0
    assert len(merged.calls("GET", "/reviews")) == 3


def test_a_persistent_server_error_gives_up(
    merged: FakeGitHub, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(promptform.gitops.github_api, "RETRY_DELAY", 0.0)
    merged.fail("/pulls", 500)
    line = refused(run_cli("verify-approval"))
    assert line == (
        f"error: GitHub API: 500 for GET /repos/acme/images/commits/{MERGE}/pulls (scripted 500)"
    )


def test_a_forbidden_token_names_the_permission(merged: FakeGitHub, run_cli: RunCli) -> None:
    merged.fail("/pulls", 403)
    assert "pull-requests: read" in refused(run_cli("verify-approval"))


def test_an_unreachable_api_is_one_line(
    run_cli: RunCli, monkeypatch: pytest.MonkeyPatch, unused_port: int
) -> None:
    monkeypatch.setattr(promptform.gitops.github_api, "RETRY_DELAY", 0.0)
    monkeypatch.setenv("GITHUB_API_URL", f"http://127.0.0.1:{unused_port}")
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/images")
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    line = refused(run_cli("verify-approval", "--sha", MERGE, "--branch", "main"))
    assert line.startswith("error: GitHub API unreachable (ConnectError)")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"GITHUB_REPOSITORY": "acme/images", "GITHUB_TOKEN": "t"}, "no commit to verify"),
        ({"GITHUB_SHA": MERGE, "GITHUB_TOKEN": "t"}, "no repository: set GITHUB_REPOSITORY"),
        ({"GITHUB_SHA": MERGE, "GITHUB_REPOSITORY": "acme/images"}, "no token: set GITHUB_TOKEN"),
        (
            {"GITHUB_SHA": MERGE, "GITHUB_REPOSITORY": "acme/images", "GITHUB_TOKEN": "t"},
            "no branch to verify against: pass --branch",
        ),
        (
            {
                "GITHUB_SHA": MERGE,
                "GITHUB_REPOSITORY": "acme/images",
                "GITHUB_TOKEN": "t",
                "GITHUB_API_URL": "http://api.example",
            },
            "GITHUB_API_URL must be an https:// URL",
        ),
    ],
)
def test_missing_settings_are_named(
    run_cli: RunCli, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert message in refused(run_cli("verify-approval"))


@pytest.fixture
def unused_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.mark.parametrize("call", ["pulls", "comment"])
def test_an_answer_that_is_not_json_is_one_clear_error(call: str) -> None:
    def html_page(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<html>Sign in to the proxy</html>")

    settings = GitHubSettings("https://api.github.com", "acme/images", TOKEN)
    with (
        GitHub(settings, httpx.MockTransport(html_page)) as github,
        pytest.raises(GitHubError, match="answered 200 without JSON; check GITHUB_API_URL"),
    ):
        if call == "pulls":
            github.pulls_for_commit(MERGE)
        else:
            github.create_comment(7, "body")
