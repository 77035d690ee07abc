"""Spend and token usage from lockfile provenance: what the current outputs cost, or everything
generated since a commit or a date, found in the lockfile's git history.

An entry counts once however many commits carry it: it is identified by address, fingerprint and
generated_at. Summing is pure; reading the history is gitops.lock_history's job.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from promptform.core.config import Config
from promptform.core.errors import PromptformError, display_path
from promptform.engine.plan_format import format_usd
from promptform.engine.project import load_project
from promptform.gitops import gitrepo
from promptform.gitops.lock_history import lock_history, lockfile_at
from promptform.state.lockfile import LockEntry, Lockfile, read_lockfile

By = Literal["model", "manifest"]
COST_JSON_VERSION = 1
TOKEN_FIELDS = ("input_tokens", "output_tokens", "total_tokens")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True)
class Generated:
    address: str
    entry: LockEntry


@dataclass
class Row:
    key: str
    targets: int = 0
    images: int = 0
    cost_usd: float = 0.0
    unpriced: int = 0  # entries without a recorded cost
    tokens: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TOKEN_FIELDS, 0))

    def add(self, entry: LockEntry) -> None:
        self.targets += 1
        self.images += len(entry.outputs)
        if entry.cost_usd is None:
            self.unpriced += 1
        else:
            self.cost_usd += entry.cost_usd
        for name, value in _tokens(entry.usage).items():
            self.tokens[name] += value

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "targets": self.targets,
            "images": self.images,
            "cost_usd": round(self.cost_usd, 6),
            "unpriced_targets": self.unpriced,
            "usage": dict(self.tokens),
        }


@dataclass(frozen=True)
class Spend:
    by: By
    since: str | None
    rows: tuple[Row, ...]
    total: Row


def _tokens(usage: Mapping[str, Any] | None) -> dict[str, int]:
    if not usage:
        return {}
    found = {name: usage[name] for name in TOKEN_FIELDS if isinstance(usage.get(name), int)}
    if "total_tokens" not in found and ("input_tokens" in found or "output_tokens" in found):
        found["total_tokens"] = found.get("input_tokens", 0) + found.get("output_tokens", 0)
    return found


def summarize(
    generated: Iterable[Generated], by: By, groups: Mapping[str, str] | None, since: str | None
) -> Spend:
    """Rows per model or manifest (`groups`: address -> manifest file), biggest spend first.

    Without `groups` (manifests that do not load) entries are grouped by name.
    """
    rows: dict[str, Row] = {}
    total = Row("total")
    for item in generated:
        key = item.entry.model if by == "model" else _manifest(item.address, groups)
        rows.setdefault(key, Row(key)).add(item.entry)
        total.add(item.entry)
    ordered = sorted(rows.values(), key=lambda row: (-row.cost_usd, row.key))
    return Spend(by, since, tuple(ordered), total)


def _manifest(address: str, groups: Mapping[str, str] | None) -> str:
    name = address.split("[", 1)[0]
    if groups is None:
        return name
    # An address no manifest has any more keeps its name, so its spend is still attributed.
    return groups.get(address) or f"{name} (removed)"


def unique(versions: Iterable[Lockfile]) -> list[Generated]:
    """Every distinct generation in `versions`, in first-seen order."""
    seen: set[tuple[str, str, str]] = set()
    found = []
    for lockfile in versions:
        for address, entry in lockfile.targets.items():
            key = (address, entry.fingerprint, entry.generated_at)
            if key not in seen:
                seen.add(key)
                found.append(Generated(address, entry))
    return found


def generated_since(config: Config, since: str | None) -> list[Generated]:
    """What the current lockfile records, or everything generated after a commit or a date."""
    current = read_lockfile(config.lockfile, display_path(config.lockfile, config.root))
    if since is None:
        return unique([current])
    path = gitrepo.repo_path(config.root, config.lockfile)
    if _DATE.match(since):
        history = lock_history(config.root, path, skip_unreadable=True)
        return [
            item for item in unique([current, *history]) if item.entry.generated_at[:10] >= since
        ]
    commit = gitrepo.resolve_commit(config.root, since)
    known = unique([_lock_at(config.root, commit, path)])
    old = {(item.address, item.entry.fingerprint, item.entry.generated_at) for item in known}
    history = lock_history(config.root, path, commit, skip_unreadable=True)
    return [
        item
        for item in unique([current, *history])
        if (item.address, item.entry.fingerprint, item.entry.generated_at) not in old
    ]


def _lock_at(root: Path, commit: str, path: str) -> Lockfile:
    try:
        return lockfile_at(root, commit, path)
    except PromptformError:
        # A lockfile committed mid-conflict must not hide the rest of the history.
        return Lockfile()


def manifest_groups(config: Config) -> dict[str, str]:
    return {target.address: target.file for target in load_project(config).targets}


def spend_as_dict(spend: Spend) -> dict[str, Any]:
    return {
        "version": COST_JSON_VERSION,
        "by": spend.by,
        "since": spend.since,
        "groups": [row.as_dict() for row in spend.rows],
        "total": {key: value for key, value in spend.total.as_dict().items() if key != "key"},
    }


def format_table(spend: Spend) -> str:
    header = (spend.by, "targets", "images", "cost", "input tok", "output tok", "total tok")
    body = [
        (
            row.key,
            str(row.targets),
            str(row.images),
            format_usd(row.cost_usd) + ("*" if row.unpriced else ""),
            f"{row.tokens['input_tokens']:,}",
            f"{row.tokens['output_tokens']:,}",
            f"{row.tokens['total_tokens']:,}",
        )
        for row in (*spend.rows, spend.total)
    ]
    widths = [max(len(line[i]) for line in (header, *body)) for i in range(len(header))]

    def line(cells: tuple[str, ...]) -> str:
        first = cells[0].ljust(widths[0])
        rest = [cell.rjust(width) for cell, width in zip(cells[1:], widths[1:], strict=True)]
        return "  ".join([first, *rest]).rstrip()

    rule = "  ".join("-" * width for width in widths)
    lines = [line(header), rule, *[line(cells) for cells in body[:-1]], rule, line(body[-1])]
    if spend.total.unpriced:
        lines.append(
            f"* {spend.total.unpriced} target(s) have no recorded cost (adopted, or priced unknown)"
        )
    scope = f"generated since {spend.since}" if spend.since else "recorded in the lockfile"
    lines.append(f"Spend {scope}: {format_usd(spend.total.cost_usd)}.")
    return "\n".join(lines)
