"""What promptform asks of git: the commit manifests came from, whether they are committed, and
history (files at a commit, merge bases, every version of the lockfile) for report, cost and preview.

The only module that imports gitpython.
"""

from __future__ import annotations

import contextlib
import re
import shlex
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import git

from promptform.core.errors import PromptformError


@dataclass(frozen=True)
class SourceState:
    commit: str | None  # HEAD, or None outside a repository / before the first commit
    dirty_paths: tuple[str, ...]  # of the paths asked about: changed or untracked, repo-relative


def source_state(root: Path, paths: Iterable[str]) -> SourceState:
    """HEAD of the repository containing `root`, and which of `paths` differ from it."""
    try:
        repo = git.Repo(root, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        return SourceState(None, ())
    with repo:
        try:
            commit: str | None = repo.head.commit.hexsha
        except ValueError:  # no commits yet
            commit = None
        top = Path(repo.working_tree_dir or root).resolve()
        wanted = [_relative(root / path, top) for path in paths]
        wanted = [path for path in wanted if path is not None]
        if not wanted:
            return SourceState(commit, ())
        changed = repo.git.status("--porcelain", "--untracked-files=all", "--", *wanted)
        dirty = tuple(line[3:] for line in changed.splitlines() if line.strip())
        return SourceState(commit, dirty)


def _relative(path: Path, top: Path) -> str | None:
    try:
        return path.resolve().relative_to(top).as_posix() or "."
    except ValueError:
        return None


# -- history reads for report, cost and preview: blobs at a commit, merge bases, lockfile versions --


class GitHistoryError(PromptformError):
    """A commit-ish that does not name a commit, or history that cannot be read."""


def _open(root: Path, missing: Callable[[Path], PromptformError] | None = None) -> git.Repo:
    """The repository containing `root`; `missing(root)` is raised outside one."""
    try:
        return git.Repo(root, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        if missing is not None:
            raise missing(root) from None
        raise GitHistoryError(
            f"{root} is not inside a git repository, so there is no history to read"
        ) from None


def repo_path(root: Path, path: Path) -> str:
    """`path` relative to the top of the repository containing `root`, POSIX style."""
    with _open(root) as repo:
        top = Path(repo.working_tree_dir or root).resolve()
        relative = _relative(path, top)
        if relative is None:
            raise GitHistoryError(f"{path} is outside the repository at {top}")
        return relative


def resolve_commit(root: Path, ref: str) -> str:
    """The full hash of commit-ish `ref`; GitHistoryError if it names no commit, or if its name
    is ambiguous (see _refuse_ambiguous)."""
    with _open(root) as repo:
        _refuse_ambiguous(repo, ref)
        try:
            return str(repo.commit(ref).hexsha)
        except (git.BadName, ValueError, git.GitCommandError):
            raise GitHistoryError(
                f"'{ref}' is not a commit in this repository (a branch, tag or hash)"
            ) from None


# Where git looks for a short name, in its order (`git help revisions`): the first that exists
# wins, silently but for a warning. So a tag `origin/main`, which anyone allowed to push a branch
# can push, is read instead of the remote branch origin/main.
_LOOKUP = ("refs/{}", "refs/tags/{}", "refs/heads/{}", "refs/remotes/{}", "refs/remotes/{}/HEAD")
_FULL_HASH = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")  # lower case: what git itself writes
_SHORT_HASH = re.compile(r"[0-9a-fA-F]{4,63}")  # git reads hex in either case


def _refuse_ambiguous(repo: git.Repo, ref: str) -> None:
    """Refuse a name that more than one ref answers to, or that is both a ref and an abbreviated
    hash: which one git picks is up to whoever can create the other one, not to the caller.

    Full ref names (refs/remotes/origin/main) and full hashes always mean one thing.
    """
    name = re.split(r"[~^:]|@\{", ref, maxsplit=1)[0]
    if not name or name == "@" or name.startswith("refs/") or _FULL_HASH.fullmatch(name):
        return
    wanted = [pattern.format(name) for pattern in _LOOKUP]
    listed = repo.git.for_each_ref("--format=%(refname)", *wanted).splitlines()
    found = [full for full in wanted if full in listed]
    if re.fullmatch(r"[A-Z_]*HEAD", name) and (Path(repo.git_dir) / name).is_file():
        found.insert(0, name)
    if found and _SHORT_HASH.fullmatch(name):
        try:
            hashes = repo.git.rev_parse(f"--disambiguate={name}")
        except git.GitCommandError:
            hashes = ""
        if hashes.strip():
            found.append("an abbreviated hash")
    if len(found) > 1:
        raise GitHistoryError(
            f"'{ref}' is ambiguous: it names {', '.join(found[:-1])} and {found[-1]}; pass the "
            "full name (such as refs/remotes/origin/main) or a commit hash"
        )


def current_branch(root: Path) -> str | None:
    """The checked-out branch, or None (detached HEAD, no commits, not a repository)."""
    try:
        repo = git.Repo(root, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        return None
    with repo:
        try:
            return str(repo.active_branch.name)
        except (TypeError, ValueError):
            return None


def default_branch(root: Path) -> str | None:
    """The repository's main line: what origin/HEAD points at, else main or master (local first,
    then origin's); None when there is none of them."""
    try:
        repo = git.Repo(root, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        return None
    with repo:
        names = ["main", "master"]
        try:
            remote_head = repo.git.symbolic_ref("--quiet", "--short", "refs/remotes/origin/HEAD")
        except git.GitCommandError:
            remote_head = ""
        if remote_head.startswith("origin/"):
            names.insert(0, remote_head.removeprefix("origin/"))
        for name in names:
            for ref in (name, f"origin/{name}"):
                try:
                    repo.git.rev_parse("--verify", "--quiet", f"{ref}^{{commit}}")
                except git.GitCommandError:
                    continue
                return ref
    return None


def local_branches(root: Path) -> list[str]:
    """The names of the local branches, or none outside a repository."""
    try:
        repo = git.Repo(root, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        return []
    with repo:
        return [str(head.name) for head in repo.heads]


def merge_base(root: Path, first: str, second: str) -> str | None:
    """The best common ancestor of two commit-ishes, or None when either is unknown or none exists."""
    with _open(root) as repo:
        try:
            bases = repo.merge_base(first, second)
        except (git.GitCommandError, git.BadName, ValueError):
            return None
        return str(bases[0].hexsha) if bases else None


def blob_at(root: Path, commit: str, path: str) -> bytes | None:
    """The bytes of repository path `path` at `commit`; None when the file did not exist there."""
    with _open(root) as repo:
        try:
            blob = repo.commit(commit).tree / path
        except KeyError:
            return None
        except (git.BadName, ValueError):
            raise GitHistoryError(f"'{commit}' is not a commit in this repository") from None
        if blob.type != "blob":
            return None
        return bytes(blob.data_stream.read())


# What a path holds in a commit: a blob's bytes, or the blobs of a tree by their path inside it.
Files = bytes | dict[str, bytes]


@dataclass(frozen=True)
class FilesVersion:
    commit: str
    files: Files


def files_at(root: Path, commit: str, path: str) -> Files | None:
    """What repository path `path` holds at `commit` (a file or a directory); None when nothing."""
    with _open(root) as repo:
        try:
            item = repo.commit(commit).tree / path
        except KeyError:
            return None
        except (git.BadName, ValueError):
            raise GitHistoryError(f"'{commit}' is not a commit in this repository") from None
        return _contents(item, {})


def files_history(
    root: Path, path: str, since: str | None = None, every_branch: bool = False
) -> list[FilesVersion]:
    """Every committed version of `path` (a file or a directory), newest first; with `since`, only
    commits after it.

    `since` excludes the commit itself and its ancestors (`since..HEAD`), so a version that was
    already there at `since` is not included. With `every_branch`, versions on a merged branch are
    listed too when the merge kept the other side's file (git log's --full-history).
    """
    with _open(root) as repo:
        try:
            head = repo.head.commit.hexsha
        except ValueError:  # no commits yet
            return []
        revision = f"{since}..{head}" if since else head
        try:
            history = ["--full-history"] if every_branch else []
            hashes = repo.git.log("--format=%H", *history, revision, "--", path).split()
        except git.GitCommandError as exc:
            raise GitHistoryError(
                f"cannot read the history of {path}: {exc.stderr.strip()}"
            ) from None
        read: dict[str, bytes] = {}  # blob sha -> bytes: most files are the same in most versions
        versions = []
        for commit in hashes:
            try:
                item = repo.commit(commit).tree / path
            except KeyError:  # deleted in that commit
                continue
            files = _contents(item, read)
            if files is not None:
                versions.append(FilesVersion(commit, files))
        return versions


def _contents(item: git.Object, read: dict[str, bytes]) -> Files | None:
    if isinstance(item, git.Blob):
        return _blob_bytes(item, read)
    if isinstance(item, git.Tree):
        prefix = len(str(item.path)) + 1
        return {
            str(blob.path)[prefix:]: _blob_bytes(blob, read)
            for blob in item.traverse()
            if isinstance(blob, git.Blob)
        }
    return None


def _blob_bytes(blob: git.Blob, read: dict[str, bytes]) -> bytes:
    data = read.get(blob.hexsha)
    if data is None:
        data = read[blob.hexsha] = bytes(blob.data_stream.read())
    return data


# --- publishing: `apply --commit/--push` -------------------------------------------------------


class GitError(PromptformError):
    """A git operation for `apply --commit/--push` failed; the message says what to do."""


@dataclass(frozen=True)
class Upstream:
    remote: str
    branch: str  # the branch's name on the remote
    local: str


@dataclass(frozen=True)
class PushResult:
    ok: bool
    rejected: bool  # non-fast-forward: someone pushed first; fetch, rebase and retry
    message: str


def _open_repo(root: Path) -> git.Repo:
    return _open(
        root, lambda root: GitError(f"{root} is not in a git repository; --commit needs one")
    )


def _top(repo: git.Repo, root: Path) -> Path:
    return Path(repo.working_tree_dir or root).resolve()


def _redact(text: str) -> str:
    # A remote URL may carry a token (https://x-access-token:TOKEN@host/...).
    return _CREDENTIALS.sub(r"\1***@", text)


_CREDENTIALS = re.compile(r"(\w+://)[^/@\s]+@")


def _run(repo: git.Repo, *args: str, config: Mapping[str, str] | None = None) -> str:
    """`git [-c k=v]... ARGS`; failures become a GitError with git's own last line, redacted."""
    options = [part for k, v in (config or {}).items() for part in ("-c", f"{k}={v}")]
    try:
        output: str = repo.git.execute(["git", *options, *args])
    except git.GitCommandError as exc:
        detail = _last_line(str(exc.stderr) or str(exc.stdout)) or f"exit status {exc.status}"
        raise GitError(f"git {args[0]} failed: {_redact(detail)}") from None
    return output


def _last_line(text: str) -> str:
    lines = [line.strip().strip("'") for line in text.strip().splitlines() if line.strip()]
    lines = [line.removeprefix("stderr: ").strip().strip("'") for line in lines]
    return lines[-1] if lines else ""


def path_in_repo(path: Path) -> str:
    """`path` relative to the top of its repository, POSIX style."""
    with _open_repo(path.parent) as repo:
        relative = _relative(path, _top(repo, path.parent))
        if relative is None:
            raise GitError(f"{path} is outside its git repository")
        return relative


def file_at_head(path: Path) -> bytes | None:
    """The bytes `path` has in HEAD, or None when HEAD lacks it (or there is no HEAD yet)."""
    with _open_repo(path.parent) as repo:
        relative = _relative(path, _top(repo, path.parent))
        if relative is None:
            return None
        try:
            blob = repo.head.commit.tree / relative
        except (ValueError, KeyError):
            return None
        data: bytes = blob.data_stream.read()
        return data


def tracked_files(directory: Path) -> list[Path]:
    """The files git tracks under `directory` (none outside a repository or for a new folder)."""
    with _open_repo(directory.parent) as repo:
        top = _top(repo, directory.parent)
        relative = _relative(directory, top)
        if relative is None:
            return []
        listed = _run(repo, "ls-files", "-z", "--", relative).split("\0")
        return [top / name for name in listed if name]


def commit_paths(root: Path, paths: Sequence[Path], message: str) -> str | None:
    """Commit exactly `paths` (added, changed or deleted) and nothing else that may be staged.

    Returns the new commit's sha, or None when none of the paths differs from HEAD.
    """
    with _open_repo(root) as repo:
        top = _top(repo, root)
        relative = sorted({rel for rel in (_relative(p, top) for p in paths) if rel is not None})
        if not relative:
            return None
        tracked = set(_run(repo, "ls-files", "-z", "--", *relative).split("\0")) - {""}
        # `git add` refuses a path that is neither on disk nor tracked; such a path has nothing
        # to record anyway (an output deleted before it was ever committed). A directory (the
        # lock's shards) is tracked when files under it are.
        tracked |= {str(folder) for path in tracked for folder in PurePosixPath(path).parents}
        present = [rel for rel in relative if rel in tracked or (top / rel).exists()]
        if not present:
            return None
        _run(repo, "add", "--all", "--", *present)
        names = _run(
            repo, "diff", "--cached", "--no-renames", "--name-only", "-z", "HEAD", "--", *present
        )
        staged = [name for name in names.split("\0") if name]
        if not staged:
            return None
        # Each changed file by name: `git commit -- DIR` fails where DIR was a file in HEAD (the
        # lock of version 1 becoming its directory of shards); that file's removal comes along.
        changed = [path for path in staged if not (top / path).is_dir()]
        # --only: other changes the user staged stay staged and out of this commit.
        _run(repo, "commit", "--quiet", "--no-verify", "--only", "-m", message, "--", *changed)
        return repo.head.commit.hexsha


def upstream(root: Path) -> Upstream:
    """Where the current branch pushes: its upstream, else the same name on `origin`."""
    with _open_repo(root) as repo:
        if repo.head.is_detached:
            raise GitError("HEAD is detached; check out a branch to push (e.g. `git switch main`)")
        branch = repo.active_branch
        tracking = branch.tracking_branch()
        if tracking is not None:
            return Upstream(tracking.remote_name, tracking.remote_head, branch.name)
        if "origin" in [remote.name for remote in repo.remotes]:
            return Upstream("origin", branch.name, branch.name)
        raise GitError(
            f"branch {branch.name} has no upstream and there is no remote 'origin'; "
            f"set one with `git push -u REMOTE {branch.name}`"
        )


_RACES = ("failed to update ref", "cannot lock ref", "incorrect old value")


def push(root: Path, target: Upstream) -> PushResult:
    """Push HEAD to `target` without ever forcing; a non-fast-forward is reported, not raised."""
    with _open_repo(root) as repo:
        refspec = f"HEAD:refs/heads/{target.branch}"
        try:
            repo.git.execute(["git", "push", "--porcelain", target.remote, refspec])
        except git.GitCommandError as exc:
            stdout, stderr = str(exc.stdout), str(exc.stderr)
            detail = _last_line(stderr) or _last_line(stdout) or f"exit status {exc.status}"
            # `!  ... [rejected] (fetch first|non-fast-forward)`: someone pushed first.
            rejected = "[rejected]" in stdout
            if "[remote rejected]" in stdout:  # `... [remote rejected] (reason)`
                reason = stdout.split("[remote rejected]", 1)[1].splitlines()[0]
                detail = reason.strip().strip("()") or detail
                # A push that lost a race on the server side says so; a hook or branch
                # protection refusing it will not change by retrying.
                rejected = any(race in detail for race in _RACES)
            return PushResult(False, rejected, _redact(detail))
        return PushResult(True, False, "")


def rebase_onto_upstream(
    root: Path,
    target: Upstream,
    config: Mapping[str, str] | None = None,
    rewritten: dict[str, str] | None = None,
) -> list[str]:
    """Fetch `target` and rebase the current branch onto it.

    Returns the conflicting paths (after aborting the rebase, so the branch is as it was), or []
    when the rebase succeeded. `config` is passed as `git -c` (e.g. a merge driver). `rewritten`,
    when given, is filled with old sha -> new sha of every commit the rebase rewrote.
    """
    with _open_repo(root) as repo, tempfile.TemporaryDirectory(prefix="promptform-") as scratch:
        _run(repo, "fetch", "--quiet", target.remote, f"refs/heads/{target.branch}")
        settings = dict(config or {})
        listing = Path(scratch) / "rewritten"
        if rewritten is not None:
            # git tells a post-rewrite hook which commits a rebase rewrote; this rebase's own hook
            # (the repository's hooks do not run for it) writes that list down.
            hooks = Path(scratch) / "hooks"
            hooks.mkdir()
            hook = hooks / "post-rewrite"
            hook.write_text(f"#!/bin/sh\ncat >> {shlex.quote(str(listing))}\n")
            hook.chmod(0o755)
            settings["core.hooksPath"] = str(hooks)
        try:
            options = [part for k, v in settings.items() for part in ("-c", f"{k}={v}")]
            repo.git.execute(["git", *options, "rebase", "FETCH_HEAD"])
        except git.GitCommandError as exc:
            conflicted = _run(repo, "diff", "--name-only", "--diff-filter=U").splitlines()
            # A rebase that failed before starting has nothing to abort.
            with contextlib.suppress(GitError):
                _run(repo, "rebase", "--abort")
            if conflicted:
                return conflicted
            detail = _last_line(str(exc.stderr)) or f"exit status {exc.status}"
            raise GitError(f"git rebase failed: {_redact(detail)}") from None
        if rewritten is not None and listing.exists():
            for line in listing.read_text().splitlines():
                old, new, *_ = [*line.split(), "", ""]
                if old and new:
                    rewritten[old] = new
        return []


def head_message(root: Path) -> str:
    """The full message of HEAD."""
    with _open_repo(root) as repo:
        return str(repo.head.commit.message)


def amend_head(root: Path, paths: Sequence[Path], message: str) -> str:
    """Amend HEAD with the current content of `paths` and a new message; the new sha."""
    with _open_repo(root) as repo:
        top = _top(repo, root)
        relative = sorted({rel for rel in (_relative(p, top) for p in paths) if rel is not None})
        _run(repo, "add", "--", *relative)
        _run(
            repo,
            "commit",
            "--quiet",
            "--no-verify",
            "--amend",
            "--only",
            "-m",
            message,
            "--",
            *relative,
        )
        return repo.head.commit.hexsha


def head_commit(root: Path) -> str:
    """The full hash of HEAD."""
    with _open_repo(root) as repo:
        return repo.head.commit.hexsha


# -- which commits an apply would act on ---------------------------------------------------------

MAX_UNAPPLIED = 200


def is_shallow_clone(root: Path) -> bool:
    """Whether the repository's history is cut off (a shallow clone): older commits are missing."""
    with _open(root) as repo:
        return (Path(repo.git_dir) / "shallow").exists()


def refuse_shallow_clone(root: Path) -> None:
    """A shallow clone may cut the history off before the last apply: refuse rather than guess."""
    with _open(root) as repo:
        if (Path(repo.git_dir) / "shallow").exists():
            raise GitHistoryError(
                "this is a shallow clone, so the commits since the last apply cannot be listed; "
                "check out the whole history (actions/checkout with fetch-depth: 0)"
            )


def commits_after(root: Path, anchor: str, described: str) -> list[str]:
    """The commits on HEAD's first-parent line after `anchor`, newest first.

    An apply checks out the branch's tip, so it acts on every one of them. `anchor` must be on
    that line: a commit of a merged branch, though an ancestor, would leave out the line's
    commits between the branch's fork and the merge. `described` names it in the refusal when it
    is not, or when more than MAX_UNAPPLIED commits follow it.
    """
    with _open(root) as repo:
        head = repo.head.commit.hexsha
        try:
            repo.git.merge_base("--is-ancestor", anchor, head)
        except git.GitCommandError as exc:
            where = "in this repository" if exc.status == 128 else "an ancestor of HEAD"
            raise GitHistoryError(
                f"{anchor[:12]}, {described}, is not {where} (was the branch rewritten?); "
                "verify the commits another way and run the workflow by hand with the `since` "
                "input (verify-approval --since SHA)"
            ) from None
        commits = [
            commit.hexsha
            for commit in repo.iter_commits(
                f"{anchor}..{head}", first_parent=True, max_count=MAX_UNAPPLIED + 1
            )
        ]
        if len(commits) > MAX_UNAPPLIED:
            raise GitHistoryError(
                f"more than {MAX_UNAPPLIED} commits since {anchor[:12]}, {described}; verify them "
                "another way and run the workflow by hand with the `since` input "
                "(verify-approval --since SHA)"
            )
        if _merged_in(repo, anchor, head, commits):
            raise GitHistoryError(
                f"{anchor[:12]}, {described}, is not on HEAD's first-parent line (a merged "
                "branch's commit: the walk from it would skip the branch's own commits before the "
                "merge); verify the commits another way and run the workflow by hand with the "
                "`since` input (verify-approval --since SHA)"
            )
        return commits


def off_first_parent_line(root: Path, sha: str) -> bool:
    """Whether `sha` is an ancestor of HEAD that HEAD's first-parent line does not pass through:
    a commit some merged branch brought in, which the branch itself was never at.

    False when `sha` is no ancestor at all (commits_after refuses that), or when the line is too
    long to look along (commits_after refuses that too).
    """
    with _open(root) as repo:
        head = repo.head.commit.hexsha
        try:
            repo.git.merge_base("--is-ancestor", sha, head)
        except git.GitCommandError:
            return False
        commits = repo.git.rev_list(
            "--first-parent", f"--max-count={MAX_UNAPPLIED + 1}", f"{sha}..{head}"
        ).split()
        return len(commits) <= MAX_UNAPPLIED and _merged_in(repo, sha, head, commits)


def _merged_in(repo: git.Repo, anchor: str, head: str, commits: list[str]) -> bool:
    """Given `commits`, all of `anchor..head` along first parents (newest first), whether
    `anchor`, an ancestor of `head`, is off that line.

    The walk stops at the first commit that `anchor` reaches: that commit is `anchor` itself
    exactly when the line passes through it.
    """
    anchor = repo.commit(anchor).hexsha
    if not commits:
        return anchor != head
    parents = repo.commit(commits[-1]).parents
    return not parents or parents[0].hexsha != anchor


def changed_paths(root: Path, sha: str) -> tuple[str, ...]:
    """The repository paths `sha` adds, changes or deletes against its first parent.

    A merge commit is compared with its first parent, so everything it brings in is listed.
    """
    with _open(root) as repo:
        commit = repo.commit(sha)
        diff = commit.parents[0].diff(commit) if commit.parents else commit.diff(git.NULL_TREE)
        return tuple(
            sorted({path for change in diff for path in (change.a_path, change.b_path) if path})
        )


def first_parent(root: Path, sha: str) -> str | None:
    with _open(root) as repo:
        parents = repo.commit(sha).parents
        return parents[0].hexsha if parents else None


def export_tree(root: Path, sha: str, destination: Path) -> None:
    """Write the regular files of commit `sha` under `destination`, as a checkout would.

    Symlinks and submodules are left out: what they point at is not part of the commit.
    """
    with _open(root) as repo:
        for item in repo.commit(sha).tree.traverse():
            if not isinstance(item, git.Blob) or item.mode not in (0o100644, 0o100755):
                continue
            path = destination / item.path
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(item.data_stream.read())
