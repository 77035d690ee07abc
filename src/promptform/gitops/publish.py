"""`apply --commit/--push`: commit what apply changed (outputs and lockfile only) and push it.

What changed is read from the lockfile against HEAD's, not from one run's report, so a re-run after
a failed push or a partial apply commits everything still uncommitted. A rejected push is fetched,
rebased (with the lockfile merge driver) and retried a bounded number of times; never forced.
"""

from __future__ import annotations

import random
import re
import shlex
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from promptform.core.config import Config
from promptform.core.output import Output
from promptform.gitops.gitrepo import (
    GitError,
    Upstream,
    amend_head,
    commit_paths,
    head_commit,
    head_message,
    path_in_repo,
    push,
    rebase_onto_upstream,
    source_state,
    tracked_files,
    upstream,
)
from promptform.gitops.lock_history import lockfile_at
from promptform.state.lockfile import LockEntry, Lockfile, read_lockfile, write_lockfile

PUSH_ATTEMPTS = 5
BACKOFF_SECONDS = 1.0  # doubled after each rejection, plus jitter so racing runners spread out
SKIP_CI = "[skip ci]"  # the push must not start another workflow run (GitHub, GitLab, others)
_SUBJECT_NAMES = 3
SOURCE_PREFIX = "Source-Commit: "
SOURCE_LINE = re.compile(rf"^{SOURCE_PREFIX}([0-9a-f]{{40}})$", re.MULTILINE)

Sleep = Callable[[float], None]


@dataclass(frozen=True)
class LockChanges:
    created: tuple[str, ...]
    regenerated: tuple[str, ...]
    moved: tuple[str, ...]
    deleted: tuple[str, ...]

    @property
    def addresses(self) -> tuple[str, ...]:
        return tuple(sorted(self.created + self.regenerated + self.moved + self.deleted))


def lock_changes(before: Lockfile, after: Lockfile) -> LockChanges:
    created, regenerated, moved, deleted = [], [], [], []
    for address in sorted(before.targets.keys() | after.targets.keys()):
        old, new = before.targets.get(address), after.targets.get(address)
        if old == new:
            continue
        if old is None:
            created.append(address)
        elif new is None:
            deleted.append(address)
        elif old.fingerprint == new.fingerprint and _hashes(old) == _hashes(new):
            moved.append(address)
        else:
            regenerated.append(address)
    return LockChanges(tuple(created), tuple(regenerated), tuple(moved), tuple(deleted))


def _hashes(entry: LockEntry) -> list[str]:
    return [output.sha256 for output in entry.outputs]


def changed_paths(config: Config, before: Lockfile, after: Lockfile) -> list[Path]:
    """The lockfile and every output path, old and new, of the entries that differ."""
    paths = {config.lockfile}
    for address in lock_changes(before, after).addresses:
        for entry in (before.targets.get(address), after.targets.get(address)):
            if entry is not None:
                paths.update(config.outputs_dir / output.path for output in entry.outputs)
    return sorted(paths)


def batch_paths(config: Config) -> list[Path]:
    """The batch submission files there are now, and those HEAD has (collected since)."""
    folder = config.batches_dir
    present = sorted(folder.glob("*.json")) if folder.is_dir() else []
    return sorted({*present, *tracked_files(folder)})


def commit_message(changes: LockChanges, source_commit: str | None) -> str:
    names = changes.addresses
    shown = ", ".join(names[:_SUBJECT_NAMES])
    if len(names) > _SUBJECT_NAMES:
        shown += f" and {len(names) - _SUBJECT_NAMES} more"
    source = f" for {source_commit[:12]}" if source_commit else ""
    shown = shown or "batch submissions"
    lines = [f"promptform apply{source}: {shown} {SKIP_CI}", ""]
    for label, addresses in (
        ("Generated", changes.created + changes.regenerated),
        ("Moved", changes.moved),
        ("Deleted", changes.deleted),
    ):
        if addresses:
            lines.append(f"{label}:")
            lines.extend(f"- {address}" for address in addresses)
            lines.append("")
    lines.append(f"{SOURCE_PREFIX}{source_commit or 'none (not committed)'}")
    return "\n".join(lines) + "\n"


def commit_results(config: Config, output: Output) -> str | None:
    """Commit the outputs and lockfile entries that differ from HEAD; the sha, or None if none."""
    shown = display(config)
    before = _lock_at_head(config, shown)
    after = read_lockfile(config.lockfile, shown)
    changes = lock_changes(before, after)
    # Batches submitted (new files) and collected (removed ones) are committed with the images.
    batches = batch_paths(config)
    source = source_state(config.root, []).commit
    if not changes.addresses and not batches:
        return _commit_layout(config, output, source)
    message = commit_message(changes, source)
    paths = changed_paths(config, before, after) + batches
    if not changes.addresses:
        paths.append(config.lockfile)  # a converted or re-sharded lock travels with the submissions
    sha = commit_paths(config.root, paths, message)
    if sha is None:
        output.info("Nothing to commit: the outputs and lockfile match HEAD.")
        return None
    subject = message.splitlines()[0]
    output.info(f"Committed {len(changes.addresses)} target(s) as {sha[:12]}: {subject}")
    return sha


def _commit_layout(config: Config, output: Output, source: str | None) -> str | None:
    """The same entries as HEAD, maybe in other files: a converted lockfile of version 1, or
    entries moved to the shard of their renamed manifest file. Committed alone if so."""
    message = (
        f"promptform apply: lock entries in the shards of their manifest files {SKIP_CI}\n\n"
        f"{SOURCE_PREFIX}{source or 'none (not committed)'}\n"
    )
    sha = commit_paths(config.root, [config.lockfile], message)
    if sha is None:
        output.info("Nothing to commit: the lockfile matches HEAD.")
        return None
    output.info(f"Committed the lockfile's new layout as {sha[:12]}: {message.splitlines()[0]}")
    return sha


def _lock_at_head(config: Config, shown: str) -> Lockfile:
    """The lock HEAD holds (either layout): a migration shows as the same entries, not a change."""
    head = source_state(config.root, []).commit
    if head is None:
        return Lockfile()
    return lockfile_at(config.root, head, path_in_repo(config.lockfile), f"HEAD:{shown}")


def push_results(
    config: Config,
    output: Output,
    *,
    attempts: int = PUSH_ATTEMPTS,
    sleep: Sleep = time.sleep,
) -> None:
    """Push HEAD to the branch's upstream; on a non-fast-forward, rebase and retry."""
    target = upstream(config.root)
    where = f"{target.remote}/{target.branch}"
    for attempt in range(1, attempts + 1):
        result = push(config.root, target)
        if result.ok:
            output.info(f"Pushed {head_commit(config.root)[:12]} to {where}.")
            return
        if not result.rejected:
            raise GitError(f"push to {where} failed: {result.message}")
        if attempt == attempts:
            break
        delay = BACKOFF_SECONDS * 2 ** (attempt - 1) * (1 + random.random() / 2)  # noqa: S311
        output.info(
            f"push to {where} rejected (someone pushed first); rebasing and retrying in "
            f"{delay:.1f}s ({attempt}/{attempts - 1})"
        )
        sleep(delay)
        rewritten = _rebase(config, target)
        _rename_source_commit(config, rewritten, output)
    raise GitError(
        f"push to {where} was rejected {attempts} times because others kept pushing; the commit "
        f"is kept locally: run `git pull --rebase && git push` (never --force)"
    )


def _rebase(config: Config, target: Upstream) -> dict[str, str]:
    """Rebase onto `target`; which commits it rewrote (old sha -> new sha)."""
    rewritten: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="promptform-") as scratch:
        conflicts = rebase_onto_upstream(
            config.root, target, _merge_driver_config(config, scratch), rewritten
        )
    if conflicts:
        listed = ", ".join(conflicts[:5]) + (" ..." if len(conflicts) > 5 else "")
        raise GitError(
            f"cannot rebase onto {target.remote}/{target.branch}: both sides changed {listed}; "
            "the commit is kept locally: merge by hand, then push"
        )
    return rewritten


def _rename_source_commit(config: Config, rewritten: Mapping[str, str], output: Output) -> None:
    """After a rebase that rewrote the commit the results were generated from (it had not been
    pushed), name the rewritten commit in the lockfile and the commit message: the old one is gone
    once the branch moves on."""
    message = head_message(config.root)
    match = SOURCE_LINE.search(message)
    if match is None or match.group(1) not in rewritten:
        return
    old, new = match.group(1), rewritten[match.group(1)]
    lockfile = read_lockfile(config.lockfile, display(config))
    entries = {
        address: replace(entry, source_commit=new) if entry.source_commit == old else entry
        for address, entry in lockfile.targets.items()
    }
    write_lockfile(config.lockfile, replace(lockfile, targets=entries))
    renamed = message.replace(old, new).replace(old[:12], new[:12])
    sha = amend_head(config.root, [config.lockfile], renamed)
    output.info(f"The rebase rewrote source commit {old[:12]} as {new[:12]}; {sha[:12]} names it.")


def _merge_driver_config(config: Config, scratch: str) -> dict[str, str]:
    """`git -c` settings that make the rebase merge the lockfile with `promptform lock merge`.

    Set for this rebase only, so it works in a fresh CI checkout where nobody ran `git config`,
    and for a lockfile that is not named promptform.lock.
    """
    attributes = Path(scratch) / "attributes"
    # The directory's shards, and the single file of a lock not migrated yet.
    lock = path_in_repo(config.lockfile)
    attributes.write_text(f"/{lock} merge=promptform\n/{lock}/** merge=promptform\n")
    driver = f"{shlex.quote(sys.executable)} -m promptform lock merge %O %A %B"
    return {
        "core.attributesFile": str(attributes),
        "merge.promptform.name": "promptform lockfile",
        "merge.promptform.driver": driver,
    }


def display(config: Config) -> str:
    try:
        return config.lockfile.relative_to(config.root).as_posix()
    except ValueError:
        return config.lockfile.name


def publish(config: Config, output: Output, push_too: bool, sleep: Sleep = time.sleep) -> None:
    """`--commit` (and with `push_too`, `--push`, which also pushes a commit left by a failed run)."""
    commit_results(config, output)
    if push_too:
        push_results(config, output, sleep=sleep)
