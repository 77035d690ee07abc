"""A fake of the GitHub REST API endpoints promptform calls, served over real HTTP on 127.0.0.1.

Endpoints: a commit's pull requests, a PR (state, head, base), its reviews and commits, a
collaborator's permission, a workflow's runs (filtered by branch, event and status), an issue's
comments (list, create) and comment edits. Lists are paginated with Link headers (`page_size`
forces small pages), every request needs the configured bearer token (else 401), an unknown
repository is a 404, and `fail(path_part, status)` scripts errors. Every request is recorded,
Authorization included, so tests can check where the token went.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.support.waiting import stop_serving

TOKEN = "ghs_faketoken0123456789abcdef"  # a fake server's fake token
REPOSITORY = "acme/images"


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    authorization: str | None
    body: Any


@dataclass
class FakeGitHub:
    repository: str = REPOSITORY
    token: str = TOKEN
    page_size: int | None = None  # overrides per_page, to force pagination
    commit_pulls: dict[str, list[int]] = field(default_factory=dict)
    pulls: dict[int, dict[str, Any]] = field(default_factory=dict)
    reviews: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    pull_commits: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    # login -> "admin" | "maintain" | "write" | "triage" | "read"; anyone else reads, as on a
    # public repository.
    permissions: dict[str, str] = field(default_factory=dict)
    workflow_runs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    comments: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    faults: list[tuple[str, int, int]] = field(default_factory=list)  # (path part, status, times)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _next_id: int = 1000
    _httpd: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    # --- scripting -------------------------------------------------------------------------

    def add_pull(
        self,
        number: int,
        author: str,
        head: str,
        merge_commit: str | None,
        commits: tuple[str, ...] = (),
        base: str = "main",
    ) -> None:
        """PR `number`; `commits` are its own commits, authored and committed by `author`."""
        self.pulls[number] = {
            "number": number,
            "title": f"Pull request {number}",
            "user": {"login": author},
            "state": "closed" if merge_commit else "open",
            "head": {
                "sha": head,
                "ref": f"feature-{number}",
                "repo": {"full_name": self.repository},
            },
            "base": {"ref": base, "repo": {"full_name": self.repository}},
            "merged_at": "2026-01-02T03:04:05Z" if merge_commit else None,
            "merge_commit_sha": merge_commit,
            "html_url": f"https://github.example/{self.repository}/pull/{number}",
        }
        for sha in {*commits, *([merge_commit] if merge_commit else [])}:
            self.commit_pulls.setdefault(sha, []).append(number)
        self.pull_commits[number] = []
        for sha in commits:
            self.add_pull_commit(number, sha, author)

    def add_pull_commit(
        self, number: int, sha: str, author: str | None, committer: str | None = "web-flow"
    ) -> None:
        """A commit of PR `number`; a None login is a git identity GitHub could not match."""
        self.pull_commits.setdefault(number, []).append(
            {
                "sha": sha,
                "author": {"login": author} if author else None,
                "committer": {"login": committer} if committer else None,
                "commit": {"message": f"commit {sha[:7]}"},
            }
        )

    def grant(self, login: str, role: str = "write") -> None:
        self.permissions[login] = role

    def add_run(
        self,
        head_sha: str,
        workflow: str = "promptform-apply.yml",
        branch: str = "main",
        event: str = "push",
        conclusion: str | None = "success",
    ) -> None:
        """A run of `workflow`; runs are listed newest first, as the API does."""
        runs = self.workflow_runs.setdefault(workflow, [])
        runs.insert(
            0,
            {
                "id": 5000 + len(runs),
                "run_number": len(runs) + 1,
                "head_sha": head_sha,
                "head_branch": branch,
                "event": event,
                "status": "completed" if conclusion else "in_progress",
                "conclusion": conclusion,
            },
        )

    def add_review(self, number: int, reviewer: str, state: str, commit: str) -> None:
        reviews = self.reviews.setdefault(number, [])
        reviews.append(
            {
                "id": len(reviews) + 1,
                "user": {"login": reviewer},
                "state": state,
                "commit_id": commit,
                "submitted_at": f"2026-01-01T00:00:{len(reviews):02d}Z",
            }
        )

    def add_comment(self, number: int, body: str, author: str = "someone") -> dict[str, Any]:
        with self._lock:
            self._next_id += 1
            comment = {
                "id": self._next_id,
                "body": body,
                "user": {"login": author, "type": "Bot" if author.endswith("[bot]") else "User"},
                "html_url": f"https://github.example/{self.repository}/pull/{number}"
                f"#issuecomment-{self._next_id}",
            }
            self.comments.setdefault(number, []).append(comment)
            return comment

    def fail(self, path_part: str, status: int, times: int = 1_000_000) -> None:
        self.faults.append((path_part, status, times))

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> FakeGitHub:
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.fake = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None and self._thread is not None:
            stop_serving(self._httpd, self._thread, "the fake GitHub API")
        if self._httpd is not None:
            self._httpd.server_close()

    @property
    def url(self) -> str:
        assert self._httpd is not None
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    # --- answering ---------------------------------------------------------------------------

    def answer(self, request: Recorded) -> tuple[int, Any, dict[str, str]]:
        with self._lock:
            self.requests.append(request)
            for index, (part, status, times) in enumerate(self.faults):
                if part in request.path and times > 0:
                    self.faults[index] = (part, status, times - 1)
                    return status, {"message": f"scripted {status}"}, {}
        if request.authorization != f"Bearer {self.token}":
            return 401, {"message": "Bad credentials"}, {}
        prefix = f"/repos/{self.repository}/"
        if not request.path.startswith(prefix):
            return 404, {"message": "Not Found"}, {}
        return self._route(request, request.path[len(prefix) :])

    def _route(self, request: Recorded, rest: str) -> tuple[int, Any, dict[str, str]]:
        if request.method == "GET":
            if match := re.fullmatch(r"commits/([0-9a-f]+)/pulls", rest):
                numbers = self.commit_pulls.get(match[1], [])
                return self._page(request, [self.pulls[n] for n in numbers])
            if match := re.fullmatch(r"pulls/(\d+)", rest):
                if int(match[1]) not in self.pulls:
                    return 404, {"message": "Not Found"}, {}
                return 200, self.pulls[int(match[1])], {}
            if match := re.fullmatch(r"pulls/(\d+)/reviews", rest):
                if int(match[1]) not in self.pulls:
                    return 404, {"message": "Not Found"}, {}
                return self._page(request, self.reviews.get(int(match[1]), []))
            if match := re.fullmatch(r"pulls/(\d+)/commits", rest):
                if int(match[1]) not in self.pulls:
                    return 404, {"message": "Not Found"}, {}
                return self._page(request, self.pull_commits.get(int(match[1]), []))
            if match := re.fullmatch(r"collaborators/([^/]+)/permission", rest):
                return 200, self._permission(match[1]), {}
            if match := re.fullmatch(r"actions/workflows/([^/]+)/runs", rest):
                if match[1] not in self.workflow_runs:
                    return 404, {"message": "Not Found"}, {}
                return 200, self._runs(request, self.workflow_runs[match[1]]), {}
            if match := re.fullmatch(r"issues/(\d+)/comments", rest):
                return self._page(request, list(self.comments.get(int(match[1]), [])))
        if request.method == "POST" and (match := re.fullmatch(r"issues/(\d+)/comments", rest)):
            author = "github-actions[bot]"
            return 201, self.add_comment(int(match[1]), request.body["body"], author), {}
        if request.method == "PATCH" and (match := re.fullmatch(r"issues/comments/(\d+)", rest)):
            for comments in self.comments.values():
                for comment in comments:
                    if comment["id"] == int(match[1]):
                        comment["body"] = request.body["body"]
                        return 200, comment, {}
        return 404, {"message": "Not Found"}, {}

    def _permission(self, login: str) -> dict[str, Any]:
        role = self.permissions.get(login, "read")
        # The API's `permission` knows only admin, write, read and none; `role_name` is exact.
        legacy = {"maintain": "write", "triage": "read"}.get(role, role)
        return {"permission": legacy, "role_name": role, "user": {"login": login}}

    def _runs(self, request: Recorded, runs: list[dict[str, Any]]) -> dict[str, Any]:
        wanted = {key: request.query[key][0] for key in ("branch", "event") if key in request.query}
        status = request.query.get("status", [None])[0]
        found = [
            run
            for run in runs
            if all(
                run[{"branch": "head_branch"}.get(key, key)] == value
                for key, value in wanted.items()
            )
            and status in (None, run["status"], run["conclusion"])
        ]
        size = int(request.query.get("per_page", ["30"])[0])
        return {"total_count": len(found), "workflow_runs": found[:size]}

    def _page(self, request: Recorded, items: list[Any]) -> tuple[int, Any, dict[str, str]]:
        size = self.page_size or int(request.query.get("per_page", ["30"])[0])
        page = int(request.query.get("page", ["1"])[0])
        chunk = items[(page - 1) * size : page * size]
        headers = {}
        if page * size < len(items):
            headers["Link"] = (
                f'<{self.url}{request.path}?per_page={size}&page={page + 1}>; rel="next", '
                f'<{self.url}{request.path}?per_page={size}&page=1>; rel="first"'
            )
        return 200, chunk, headers

    # --- what tests inspect ------------------------------------------------------------------

    def calls(self, method: str, path_part: str = "") -> list[Recorded]:
        return [r for r in self.requests if r.method == method and path_part in r.path]


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _serve(self) -> None:
        fake: FakeGitHub = self.server.fake  # type: ignore[attr-defined]
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        request = Recorded(
            self.command,
            parts.path,
            parse_qs(parts.query),
            self.headers.get("Authorization"),
            body,
        )
        status, payload, headers = fake.answer(request)
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PATCH = _serve


@pytest.fixture
def fake_github(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGitHub]:
    """A running fake, with GITHUB_API_URL, GITHUB_REPOSITORY and GITHUB_TOKEN pointing at it, and
    GITHUB_REF naming main, the branch a push to main runs on."""
    fake = FakeGitHub().start()
    monkeypatch.setenv("GITHUB_REF", "refs/heads/main")
    monkeypatch.setenv("GITHUB_API_URL", fake.url)
    monkeypatch.setenv("GITHUB_REPOSITORY", fake.repository)
    monkeypatch.setenv("GITHUB_TOKEN", fake.token)
    try:
        yield fake
    finally:
        fake.stop()
