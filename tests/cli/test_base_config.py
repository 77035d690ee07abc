"""`plan/apply --base-config REF`: where the API key goes, prices and budgets come from REF's config.

Real git repositories: `main` holds the reviewed config, the checked-out `pr` branch the pull
request's. Requests go to the loopback images API, so "sends nothing" is what a server received.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.apply import KEY, fake_config
from tests.support.apply import keyed_fake_images_api as keyed_fake_images_api  # `server`
from tests.support.cli import CliResult, RunCli
from tests.support.fake_images_api import FakeImagesAPI
from tests.support.files import write_files
from tests.support.git import commit_all, git, init_repo

BUDGET = "\n[budget]\nmax_images = 5\nmax_cost = 1.0\n"
ROUTING = "settings that decide where the API key goes must come from the base branch"
CEILINGS = "budgets and limits may be lowered here but not raised or removed"


def pull_request(root: Path, base_config: str, *, config: str | None = None) -> Path:
    """`main` with `base_config` and one manifest; the `pr` branch, checked out, adds another
    manifest and (uncommitted, as a checkout of a pull request would have it) `config`."""
    init_repo(root)
    write_files(root, {"promptform.toml": base_config, "prompts/hero.yaml": "prompt: A hero.\n"})
    commit_all(root, "project")
    git(root, "checkout", "-q", "-b", "pr")
    write_files(root, {"prompts/owl.yaml": "prompt: An owl.\n"})
    commit_all(root, "add owl")
    if config is not None:
        (root / "promptform.toml").write_text(config, encoding="utf-8")
    return root


def run(run_cli: RunCli, root: Path, command: str, *args: str) -> CliResult:
    extra = ("--yes",) if command == "apply" else ()
    result = run_cli("-C", root, command, *extra, "--base-config", "main", *args)
    assert "Traceback" not in result.stderr
    assert KEY not in result.stdout + result.stderr
    return result


def error_line(result: CliResult) -> str:
    lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_an_unchanged_config_applies_normally(
    tmp_path: Path, server: FakeImagesAPI, run_cli: RunCli
) -> None:
    root = pull_request(tmp_path / "repo", fake_config(server) + BUDGET)
    result = run(run_cli, root, "apply")
    assert result.exit_code == 0, result.stderr
    assert len(server.image_requests) == 2


def test_a_base_url_changed_by_the_pull_request_gets_no_request_and_no_key(
    tmp_path: Path, server: FakeImagesAPI, run_cli: RunCli
) -> None:
    with FakeImagesAPI() as elsewhere:
        changed = fake_config(server).replace(server.base_url, elsewhere.base_url)
        root = pull_request(tmp_path / "repo", fake_config(server), config=changed)
        for command in ("plan", "apply"):
            result = run(run_cli, root, command)
            assert result.exit_code == 1, result.stderr
            assert error_line(result) == (
                f"error: promptform.toml:6: [providers.fake] base_url is {elsewhere.base_url} "
                f"here but {server.base_url} at main: with --base-config, {ROUTING}; change them "
                "in their own reviewed pull request"
            )
        assert elsewhere.requests == []
    assert server.requests == []
    assert not (root / "promptform.lock").exists()


def test_a_committed_change_is_refused_too(
    tmp_path: Path, server: FakeImagesAPI, run_cli: RunCli
) -> None:
    root = pull_request(tmp_path / "repo", fake_config(server))
    config = root / "promptform.toml"
    config.write_text(
        config.read_text(encoding="utf-8").replace("FAKE_KEY", "FAKE_KEY_2"), encoding="utf-8"
    )
    commit_all(root, "use another key")
    result = run(run_cli, root, "apply")
    assert result.exit_code == 1
    assert "[providers.fake] api_key_env is FAKE_KEY_2 here but FAKE_KEY at main" in result.stderr
    assert server.requests == []


@pytest.mark.parametrize(
    ("edit", "message", "why"),
    [
        (
            lambda text: text.replace(
                'kind = "openai"', 'kind = "openai"\nauth_header = "api-key"'
            ),
            "[providers.fake] auth_header is api-key here but authorization at main",
            ROUTING,
        ),
        (
            lambda text: (
                text + '\n[providers.extra]\nkind = "openai"\nbase_url = "http://127.0.0.1:9/v1"\n'
            ),
            "[providers.extra] is configured here but not at main",
            ROUTING,
        ),
        (
            lambda text: (
                text
                + '\n[providers.wisgate]\nkind = "openai"\nbase_url = "http://127.0.0.1:9/v1"\n'
            ),
            "[providers.wisgate] base_url is http://127.0.0.1:9/v1 here but "
            "https://api.wisgate.ai/v1 at main",
            ROUTING,
        ),
        (
            lambda text: text.replace("max_retries = 3", "max_retries = 20"),
            "[providers.fake] max_retries is 20 here but 3 at main",
            "provider settings, which decide how often and how fast paid requests are sent",
        ),
        (
            lambda text: text + '\n[pricing."gpt-image-2"]\nlow = 0.0001\n',
            '[pricing."gpt-image-2"] low is 0.0001 here but not set at main',
            "prices must come from the base branch",
        ),
        (
            lambda text: text.replace("max_images = 5", "max_images = 50"),
            "[budget] max_images is 50 here but 5 at main",
            CEILINGS,
        ),
        (
            lambda text: text.replace("max_cost = 1.0\n", ""),
            "[budget] max_cost is not set here but 1.0 at main",
            CEILINGS,
        ),
        (
            lambda text: text + "\n[limits]\nmax_targets = 1000000\n",
            "[limits] max_targets is 1000000 here but 100000 at main",
            CEILINGS,
        ),
    ],
    ids=[
        "auth-header",
        "provider-added",
        "builtin-redefined",
        "retries",
        "price-lowered",
        "budget-raised",
        "budget-removed",
        "limit-raised",
    ],
)
def test_a_guarded_setting_changed_here_is_refused_before_any_request(
    tmp_path: Path,
    server: FakeImagesAPI,
    run_cli: RunCli,
    edit: object,
    message: str,
    why: str,
) -> None:
    base = fake_config(server) + BUDGET
    assert callable(edit)
    root = pull_request(tmp_path / "repo", base, config=edit(base))
    result = run(run_cli, root, "apply")
    assert result.exit_code == 1, result.stderr
    line = error_line(result)
    assert f"{message}: with --base-config, {why}" in line, line
    assert server.requests == []


def test_a_lowered_budget_applies_and_is_the_one_enforced(
    tmp_path: Path, server: FakeImagesAPI, run_cli: RunCli
) -> None:
    base = fake_config(server) + BUDGET
    root = pull_request(
        tmp_path / "repo", base, config=base.replace("max_images = 5", "max_images = 1")
    )
    refused = run(run_cli, root, "apply")
    assert refused.exit_code == 1
    assert "over the budget of 1 ([budget] max_images)" in error_line(refused)
    assert server.requests == []
    result = run(run_cli, root, "apply", "--target", "owl")
    assert result.exit_code == 0, result.stderr
    assert [request.prompt for request in server.image_requests] == ["An owl."]


def test_a_budget_set_only_here_is_allowed(
    tmp_path: Path, server: FakeImagesAPI, run_cli: RunCli
) -> None:
    root = pull_request(tmp_path / "repo", fake_config(server), config=fake_config(server) + BUDGET)
    result = run(run_cli, root, "apply")
    assert result.exit_code == 0, result.stderr
    assert len(server.image_requests) == 2


def test_a_ref_that_names_no_commit_is_one_clear_error(
    tmp_path: Path, server: FakeImagesAPI, run_cli: RunCli
) -> None:
    root = pull_request(tmp_path / "repo", fake_config(server))
    result = run_cli("-C", root, "apply", "--yes", "--base-config", "origin/nope")
    assert result.exit_code == 1
    assert error_line(result) == (
        "error: --base-config origin/nope: 'origin/nope' is not a commit in this repository "
        "(a branch, tag or hash)"
    )
    assert server.requests == []


def test_a_ref_without_a_config_is_refused_when_this_checkout_has_one(
    tmp_path: Path, server: FakeImagesAPI, run_cli: RunCli
) -> None:
    root = init_repo(tmp_path / "repo")
    write_files(root, {"prompts/hero.yaml": "prompt: A hero.\n"})
    commit_all(root, "prompts only")
    git(root, "tag", "bare")
    write_files(root, {"promptform.toml": fake_config(server)})
    commit_all(root, "config")
    result = run_cli("-C", root, "plan", "--base-config", "bare")
    assert result.exit_code == 1
    assert error_line(result).startswith(
        "error: --base-config bare: there is no promptform configuration at bare (looked for "
        "promptform.toml and pyproject.toml) while this checkout has promptform.toml"
    )


def test_a_broken_config_at_the_ref_is_reported_there(
    tmp_path: Path, server: FakeImagesAPI, run_cli: RunCli
) -> None:
    root = pull_request(tmp_path / "repo", "[budget\n", config=fake_config(server))
    result = run(run_cli, root, "plan")
    assert result.exit_code == 1
    assert error_line(result).startswith("error: promptform.toml at main:1:")


def test_pyproject_config_is_read_at_the_ref_too(
    tmp_path: Path, server: FakeImagesAPI, run_cli: RunCli
) -> None:
    def pyproject(base_url: str) -> str:
        return (
            '[project]\nname = "art"\n\n[tool.promptform.promptform]\ndefault_provider = "fake"\n\n'
            f'[tool.promptform.providers.fake]\nkind = "openai"\nbase_url = "{base_url}"\n'
            'api_key_env = "FAKE_KEY"\n'
        )

    root = init_repo(tmp_path / "repo")
    write_files(
        root, {"pyproject.toml": pyproject(server.base_url), "prompts/a.yaml": "prompt: A.\n"}
    )
    commit_all(root, "project")
    (root / "pyproject.toml").write_text(pyproject("http://127.0.0.1:9/v1"), encoding="utf-8")
    result = run(run_cli, root, "apply")
    assert result.exit_code == 1
    assert error_line(result).startswith(
        "error: pyproject.toml:9: [providers.fake] base_url is http://127.0.0.1:9/v1 here but "
    )
    assert server.requests == []


def test_outside_a_repository_it_says_so(
    make_project: object, tmp_path: Path, server: FakeImagesAPI, run_cli: RunCli
) -> None:
    root = write_files(tmp_path / "plain", {"promptform.toml": fake_config(server)})
    (root / "prompts").mkdir()
    result = run(run_cli, root, "plan")
    assert result.exit_code == 1
    assert "is not inside a git repository" in error_line(result)


def shadowed_base(tmp_path: Path, good: FakeImagesAPI, evil: FakeImagesAPI) -> tuple[Path, str]:
    """What the generate workflow checks out: the pull request's commit, origin's branches as
    refs/remotes/origin/*, and every tag (fetch-depth: 0), among them a tag `origin/main` the
    pull request's author pushed at their own commit, whose config sends the key elsewhere."""
    origin = init_repo(tmp_path / "origin")
    write_files(origin, {"promptform.toml": fake_config(good) + "\n[budget]\nmax_images = 1\n"})
    write_files(origin, {"prompts/hero.yaml": "prompt: A hero.\n"})
    commit_all(origin, "project")
    git(origin, "checkout", "-q", "-b", "feature")
    write_files(origin, {"promptform.toml": fake_config(evil) + "\n[budget]\nmax_images = 100\n"})
    write_files(origin, {"prompts/owl.yaml": "prompt: An owl.\n"})
    head = commit_all(origin, "add owl")
    git(origin, "tag", "origin/main", head)
    git(origin, "checkout", "-q", "main")
    checkout = init_repo(tmp_path / "pull-request")
    git(checkout, "remote", "add", "origin", str(origin))
    git(
        checkout,
        "fetch",
        "-q",
        "origin",
        "+refs/heads/*:refs/remotes/origin/*",
        "+refs/tags/*:refs/tags/*",
    )
    git(checkout, "checkout", "-q", "--detach", head)
    return checkout, head


@pytest.fixture
def evil_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeImagesAPI]:
    with FakeImagesAPI() as evil:
        evil.api_key = KEY
        yield evil


def test_a_tag_named_like_the_base_branch_is_refused_not_read(
    tmp_path: Path, server: FakeImagesAPI, evil_server: FakeImagesAPI, run_cli: RunCli
) -> None:
    root, _ = shadowed_base(tmp_path, server, evil_server)
    result = run_cli("-C", root, "apply", "--yes", "--base-config", "origin/main")
    assert result.exit_code == 1
    assert error_line(result) == (
        "error: --base-config origin/main: 'origin/main' is ambiguous: it names refs/tags/"
        "origin/main and refs/remotes/origin/main; pass the full name (such as "
        "refs/remotes/origin/main) or a commit hash"
    )
    assert "Traceback" not in result.stderr
    assert evil_server.requests == []
    assert server.requests == []


def test_the_full_name_of_the_base_branch_is_read_whatever_tags_exist(
    tmp_path: Path, server: FakeImagesAPI, evil_server: FakeImagesAPI, run_cli: RunCli
) -> None:
    root, _ = shadowed_base(tmp_path, server, evil_server)
    result = run_cli("-C", root, "plan", "--base-config", "refs/remotes/origin/main")
    assert result.exit_code == 1  # the pull request's config changes where the key goes
    assert ROUTING in error_line(result)
    main = git(root, "rev-parse", "refs/remotes/origin/main")
    result = run_cli("-C", root, "plan", "--base-config", main)
    assert ROUTING in error_line(result)
    assert evil_server.requests == []
