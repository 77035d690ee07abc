"""The GitHub REST API calls promptform makes: a commit's pull requests, their reviews and
commits, a pull request itself, a collaborator's permission, a workflow's runs, PR comments.

Paginates through Link headers, retries only what may pass on retry (5xx, connection errors),
and turns every failure into one GitHubError line that says what to check. The token goes in one
header, only to the configured API host, and never into a message.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from promptform.core.errors import PromptformError

DEFAULT_API_URL = "https://api.github.com"
MAX_PAGES = 50  # 5,000 items at 100 a page: more reviews or comments than any real PR has
ATTEMPTS = 3
RETRY_DELAY = 0.5  # seconds before the 2nd attempt, doubled before the 3rd
_LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}

Sleep = Callable[[float], None]


class GitHubError(PromptformError):
    pass


@dataclass(frozen=True)
class GitHubSettings:
    api_url: str
    repository: str  # owner/name
    token: str

    def __repr__(self) -> str:  # keeps the token out of tracebacks and debug output
        return f"GitHubSettings(api_url={self.api_url!r}, repository={self.repository!r})"


def settings_from_env(
    env: Mapping[str, str] | None = None,
    repository: str | None = None,
    api_url: str | None = None,
) -> GitHubSettings:
    """Settings from the variables GitHub Actions sets; explicit arguments win."""
    env = os.environ if env is None else env
    repository = repository or env.get("GITHUB_REPOSITORY", "")
    if not repository or repository.count("/") != 1 or repository.startswith("/"):
        raise GitHubError(
            "no repository: set GITHUB_REPOSITORY (owner/name; GitHub Actions sets it) or pass --repo"
        )
    token = env.get("GITHUB_TOKEN", "")
    if not token:
        raise GitHubError(
            "no token: set GITHUB_TOKEN (in a workflow step: `env: GITHUB_TOKEN: ${{ github.token }}`)"
        )
    url = (api_url or env.get("GITHUB_API_URL") or DEFAULT_API_URL).rstrip("/")
    parts = urlsplit(url)
    if parts.scheme != "https" and not (parts.scheme == "http" and parts.hostname in _LOOPBACK):
        raise GitHubError(f"GITHUB_API_URL must be an https:// URL (got '{url}')")
    return GitHubSettings(url, repository, token)


class GitHub:
    """A small synchronous client; pass `transport` to answer requests in tests."""

    def __init__(
        self,
        settings: GitHubSettings,
        transport: httpx.BaseTransport | None = None,
        sleep: Sleep = time.sleep,
    ) -> None:
        self.settings = settings
        self._sleep = sleep
        self._client = httpx.Client(
            base_url=settings.api_url,
            transport=transport,
            timeout=httpx.Timeout(30.0, connect=10.0),
            follow_redirects=False,
            headers={
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": "2022-11-28",
                "User-Agent": "promptform",
            },
        )

    def __enter__(self) -> GitHub:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    @property
    def _repo(self) -> str:
        return f"/repos/{self.settings.repository}"

    def pulls_for_commit(self, sha: str) -> list[dict[str, Any]]:
        return list(self._pages(f"{self._repo}/commits/{sha}/pulls"))

    def reviews(self, number: int) -> list[dict[str, Any]]:
        return list(self._pages(f"{self._repo}/pulls/{number}/reviews"))

    def pull(self, number: int) -> dict[str, Any]:
        """Pull request `number` as GitHub has it now (state, head and base)."""
        path = f"{self._repo}/pulls/{number}"
        return _object(self._request("GET", path), "GET", path)

    def pull_commits(self, number: int) -> list[dict[str, Any]]:
        return list(self._pages(f"{self._repo}/pulls/{number}/commits"))

    def collaborator_permission(self, login: str) -> dict[str, Any]:
        """`{"permission": ..., "role_name": ...}` of `login`; an answer without them is refused."""
        path = f"{self._repo}/collaborators/{quote(login, safe='')}/permission"
        answer = _object(self._request("GET", path), "GET", path)
        fields = [answer.get("permission"), answer.get("role_name")]
        if not any(isinstance(value, str) and value for value in fields):
            raise GitHubError(
                f"GitHub API: GET {path} did not say the permission of {login}; "
                "check GITHUB_API_URL and the token"
            )
        return answer

    def successful_runs(
        self, workflow: str, branch: str, event: str, count: int
    ) -> list[dict[str, Any]]:
        """The newest `count` (at most) successful runs of `workflow` on `branch` started by
        `event`, newest first.

        Fails closed: an answer that is not a list of runs, or a run that does not match the
        filters or name its commit, is an error rather than "no run".
        """
        path = f"{self._repo}/actions/workflows/{quote(workflow, safe='')}/runs"
        params = {"branch": branch, "event": event, "status": "success", "per_page": count}
        answer = _object(self._request("GET", path, params=params), "GET", path)
        runs = answer.get("workflow_runs")
        if not isinstance(runs, list):
            raise GitHubError(f"GitHub API: GET {path} did not list workflow runs")
        for run in runs:
            if not isinstance(run, dict) or not isinstance(run.get("run_number"), int):
                raise GitHubError(f"GitHub API: GET {path} answered with a malformed run")
            number = run["run_number"]
            if not re.fullmatch(r"[0-9a-f]{40}", str(run.get("head_sha") or "")):
                raise GitHubError(f"GitHub API: GET {path} did not name the commit of run {number}")
            expected = {"head_branch": branch, "event": event, "conclusion": "success"}
            if any(run.get(key) != value for key, value in expected.items()):
                raise GitHubError(
                    f"GitHub API: GET {path} answered with run {number}, which is not a "
                    f"successful {event} run on {branch}"
                )
        return runs[:count]

    def issue_comments(self, number: int) -> Iterator[dict[str, Any]]:
        return self._pages(f"{self._repo}/issues/{number}/comments")

    def create_comment(self, number: int, body: str) -> dict[str, Any]:
        path = f"{self._repo}/issues/{number}/comments"
        return _object(self._request("POST", path, json={"body": body}), "POST", path)

    def update_comment(self, comment_id: int, body: str) -> dict[str, Any]:
        path = f"{self._repo}/issues/comments/{comment_id}"
        return _object(self._request("PATCH", path, json={"body": body}), "PATCH", path)

    def _pages(self, path: str) -> Iterator[dict[str, Any]]:
        url: str | None = path
        params: dict[str, Any] | None = {"per_page": 100}
        for _ in range(MAX_PAGES):
            if url is None:
                return
            response = self._request("GET", url, params=params)
            items = _json(response, f"GET {path}")
            if not isinstance(items, list):
                raise GitHubError(f"GitHub API: GET {path} did not return a list")
            yield from (item for item in items if isinstance(item, dict))
            url, params = self._next_page(response), None
        raise GitHubError(f"GitHub API: GET {path} has more than {MAX_PAGES} pages")

    def _next_page(self, response: httpx.Response) -> str | None:
        url = response.links.get("next", {}).get("url")
        if url is None:
            return None
        # The token must only ever go to the configured API.
        if not url.startswith(self.settings.api_url + "/"):
            raise GitHubError("GitHub API: a page link points outside GITHUB_API_URL; refused")
        return url

    def _request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        shown = f"{method} {urlsplit(url).path}"
        headers = {"Authorization": f"Bearer {self.settings.token}"}
        for attempt in range(1, ATTEMPTS + 1):
            try:
                response = self._client.request(method, url, headers=headers, **kwargs)
            except httpx.TransportError as exc:
                if attempt == ATTEMPTS:
                    reason = type(exc).__name__
                    raise GitHubError(
                        f"GitHub API unreachable ({reason}) for {shown} at {self.settings.api_url}"
                    ) from None
            else:
                if response.status_code < 500 or attempt == ATTEMPTS:
                    break
            self._sleep(RETRY_DELAY * 2 ** (attempt - 1))
        if response.is_success:
            return response
        raise GitHubError(_failure(response, shown, self.settings.repository))


def _json(response: httpx.Response, shown: str) -> Any:
    try:
        return response.json()
    except ValueError:  # a proxy's or maintenance page's HTML, a cut-off body
        raise GitHubError(
            f"GitHub API: {shown} answered {response.status_code} without JSON; "
            "check GITHUB_API_URL"
        ) from None


def _object(response: httpx.Response, method: str, path: str) -> dict[str, Any]:
    data = _json(response, f"{method} {path}")
    if not isinstance(data, dict):
        raise GitHubError(f"GitHub API: {method} {path} did not return an object")
    return data


def _failure(response: httpx.Response, shown: str, repository: str) -> str:
    status = response.status_code
    detail = ""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        detail = f" ({body['message'][:200]})"
    head = f"GitHub API: {status} for {shown}{detail}"
    if status == 401:
        return f"{head}: the token was rejected; check GITHUB_TOKEN"
    if status == 429 or (status == 403 and response.headers.get("x-ratelimit-remaining") == "0"):
        return f"{head}: rate limit exceeded; try again later"
    if status == 403:
        return (
            f"{head}: the token lacks a permission; give the workflow job the `permissions:` "
            "it needs (pull-requests: read to verify, write to comment; actions: read to find "
            "the last apply run)"
        )
    if status == 404:
        return (
            f"{head}: not found; check the repository ({repository}), the commit or pull "
            "request, and that the token can read it"
        )
    return head
