"""Whether a commit that touches only outputs and the lockfile is one an apply could have made.

Such a commit needs no approval only when it can lower, never raise, what the next apply spends:
every lock entry it adds or changes holds the fingerprint the manifests at that commit render, with
committed outputs whose hashes match, and every entry it removes belongs to a target that is no
longer declared. That is what apply's own result commits do. A pending batch submission
(promptform.batches/) may be added when it names its batch, since it then only holds
its targets back from being generated again (one naming no batch would have the next run create,
and pay for, that batch), and removed once each of its targets is recorded at the fingerprint it was
submitted with or no longer renders it: that is what `apply --batch` and `batch collect` commit.
Anything else (an entry dropped while
its target is still declared, a fingerprint no manifest renders, an output that is not what its
entry says, an image another target reads replaced without that target being regenerated) is
judged like any other change. Nothing in the commit's message is consulted.
"""

from __future__ import annotations

import hashlib
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from promptform.core.config import Config, load_config
from promptform.core.errors import PromptformError
from promptform.engine.project import load_project
from promptform.gitops.gitrepo import blob_at, export_tree, first_parent, repo_path
from promptform.gitops.lock_history import lockfile_at
from promptform.manifests.targets import Target
from promptform.state.drift import LFS_POINTER_PREFIX
from promptform.state.lockfile import Lockfile
from promptform.state.pending_batches import PendingBatchError, Submission, parse_submission

_LFS_OID = re.compile(rb"^oid sha256:([0-9a-f]{64})$", re.MULTILINE)


def touches_only_results(config: Config, paths: Sequence[str]) -> bool:
    """Whether every one of the repository `paths` is the lockfile (a shard of it, or the single
    file of version 1) or under the outputs directory."""
    lockfile = repo_path(config.root, config.lockfile)
    outputs = repo_path(config.root, config.outputs_dir)
    batches = repo_path(config.root, config.batches_dir)
    return bool(paths) and all(
        path == lockfile
        or _under(path, lockfile)
        or _under(path, outputs)
        or _is_submission(path, batches)
        for path in paths
    )


def unexplained_changes(config: Config, sha: str, paths: Sequence[str]) -> list[str]:
    """Why commit `sha` (changing `paths`, only results) is not a change an apply makes; [] if it is.

    The manifests are rendered from the commit's own tree, exported to a temporary directory, with
    the configuration that tree holds.
    """
    lock_path = repo_path(config.root, config.lockfile)
    outputs = repo_path(config.root, config.outputs_dir)
    parent = first_parent(config.root, sha)
    old = _lock_at(config.root, parent, lock_path) if parent else Lockfile()
    new = _lock_at(config.root, sha, lock_path)
    if old is None or new is None:
        return [f"{lock_path} does not parse before or after it"]
    targets = _targets_at(config, sha)
    if isinstance(targets, str):
        return [targets]
    reasons: list[str] = []
    changed = {
        address: entry
        for address, entry in new.targets.items()
        if old.targets.get(address) != entry
    }
    for address, entry in sorted(changed.items()):
        target = targets.get(address)
        if target is None:
            reasons.append(f"`{address}` is added to the lock but no manifest declares it")
        elif entry.fingerprint != target.fingerprint:
            reasons.append(f"`{address}` is locked at a fingerprint its manifest does not render")
    for address in sorted(old.targets.keys() - new.targets.keys()):
        if address in targets:
            reasons.append(
                f"`{address}` is removed from the lock while its manifest still declares it"
            )
    # Changing an image another target reads as a reference makes that target's entry stale:
    # the next apply would pay to generate it again, unless this commit records it regenerated.
    project = repo_path(config.root, config.root)
    for address, target in sorted(targets.items()):
        recorded = new.targets.get(address)
        read = [
            path for path in (_join(project, item.path) for item in target.inputs) if path in paths
        ]
        if read and recorded is not None and recorded.fingerprint != target.fingerprint:
            reasons.append(f"`{address}` reads {read[0]}, changed without regenerating `{address}`")
    batches = repo_path(config.root, config.batches_dir)
    for path in sorted(p for p in paths if _is_submission(p, batches)):
        now = blob_at(config.root, sha, path)
        before = blob_at(config.root, parent, path) if parent is not None else None
        if now is not None and before is not None:
            # apply --batch commits a submission once, with its batch; collect only removes it.
            reasons.append(f"{path} is changed, which neither apply --batch nor collect does")
        elif now is not None:
            reasons += _unstarted_submission(now, path)
        elif parent is not None:
            reasons += _unrecorded_submission(
                blob_at(config.root, parent, path), path, new, targets
            )
    locked = {
        _join(outputs, output.path): output.sha256
        for entry in new.targets.values()
        for output in entry.outputs
    }
    checked = {
        _join(outputs, output.path) for entry in changed.values() for output in entry.outputs
    }
    checked |= {path for path in paths if _under(path, outputs)}
    for path in sorted(checked):
        data = blob_at(config.root, sha, path)
        if path not in locked:
            if data is not None:
                reasons.append(f"{path} is committed but no lock entry records it")
        elif data is None or _content_sha256(data) != locked[path]:
            reasons.append(f"{path} does not match its lock entry")
    return reasons


def _targets_at(config: Config, sha: str) -> dict[str, Target] | str:
    """The targets the manifests at `sha` declare, or why they cannot be told."""
    project = repo_path(config.root, config.root)
    with tempfile.TemporaryDirectory(prefix="promptform-verify-") as scratch:
        tree = Path(scratch).resolve()  # load_config resolves paths; compare like with like
        export_tree(config.root, sha, tree)
        directory = tree / project
        explicit = None
        if config.source is not None:
            explicit = tree / repo_path(config.root, config.source)
            if not explicit.is_file():
                return f"its tree has no {explicit.relative_to(tree).as_posix()}"
        try:
            at_commit = load_config(directory, explicit)
            if at_commit.source is not None and not at_commit.source.is_relative_to(tree):
                return "its tree has no configuration"
            return load_project(at_commit).by_address()
        except PromptformError as exc:
            return f"its manifests do not load ({str(exc).splitlines()[0]})"


def _unrecorded_submission(
    data: bytes | None, path: str, new: Lockfile, targets: dict[str, Target]
) -> list[str]:
    """Why removing the submission in `data` would make the next apply pay for a target again:
    a target still rendering its submitted fingerprint that the lock does not record at it (a
    failed line, a batch given up); [] when every target is recorded or has changed since."""
    submission = _submission(data or b"", path)
    if submission is None:
        return [f"{path} is removed and does not parse"]
    reasons = []
    for address, fingerprint in ((item.address, item.fingerprint) for item in submission.targets):
        target, entry = targets.get(address), new.targets.get(address)
        declared = target is not None and target.fingerprint == fingerprint
        if declared and (entry is None or entry.fingerprint != fingerprint):
            reasons.append(
                f"`{address}` is dropped from the batch submission {path} without its image recorded"
            )
    return reasons


def _unstarted_submission(data: bytes, path: str) -> list[str]:
    """Why committing the submission in `data` could spend: one that names no batch yet makes the
    next run create that batch from its uploaded file. `apply --batch` commits only after creating
    it, so a submission without a batch id comes from elsewhere; [] for one with its batch."""
    submission = _submission(data, path)
    if submission is None:
        return [f"{path} does not parse"]
    if submission.batch_id:
        return []
    return [f"{path} names no batch, so the next run would create one (and pay for it)"]


def _submission(data: bytes, path: str) -> Submission | None:
    """The submission a commit holds at `path`, read as collect reads it; None if it does not."""
    try:
        return parse_submission(data, PurePosixPath(path).name, path)
    except PendingBatchError:
        return None


def _is_submission(path: str, batches: str) -> bool:
    """A file directly in the batches directory, as `apply --batch` writes them."""
    name = path[len(batches) + 1 :] if _under(path, batches) else ""
    return name.endswith(".json") and "/" not in name


def _lock_at(root: Path, sha: str, path: str) -> Lockfile | None:
    try:
        return lockfile_at(root, sha, path)
    except PromptformError:
        return None


def _content_sha256(data: bytes) -> str:
    """sha256 of a committed file's content; a Git LFS pointer names it as its oid."""
    if data.startswith(LFS_POINTER_PREFIX):
        oid = _LFS_OID.search(data)
        if oid is not None:
            return oid[1].decode()
    return hashlib.sha256(data).hexdigest()


def _join(directory: str, path: str) -> str:
    return path if directory in ("", ".") else f"{directory}/{path}"


def _under(path: str, directory: str) -> bool:
    return directory in ("", ".") or path.startswith(directory.rstrip("/") + "/")
