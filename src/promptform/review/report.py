"""The gallery's data: one card per target from the lockfile, compared with a base (a git commit or
another checkout), and the images copied next to index.html so the folder stands on its own.

Collecting reads files and git; rendering (report_html.py, report_markdown.py) is pure.
"""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol
from urllib.parse import quote

from promptform.core.atomic import atomic_write
from promptform.core.config import Config
from promptform.core.errors import PromptformError, display_path
from promptform.core.images import ImageError, sniff
from promptform.engine.project import load_project
from promptform.gitops import gitrepo
from promptform.gitops.lock_history import lockfile_at
from promptform.manifests.targets import Target
from promptform.state.lockfile import LockEntry, Lockfile, read_lockfile
from promptform.state.outputs import check_inside

Status = Literal["new", "changed", "unchanged", "pending", "removed"]
IMAGES_DIR = "images"
GENERATOR = "promptform-report"


@dataclass(frozen=True)
class Picture:
    path: str  # under outputs_dir
    repo_path: str  # relative to the project root, for links to the committed file
    sha256: str
    width: int | None
    height: int | None
    src: str | None = None  # URL relative to index.html; None: not available (see `missing`)
    missing: str | None = None  # why the image cannot be shown


@dataclass(frozen=True)
class Card:
    address: str
    group: str  # the manifest file, e.g. prompts/hero.yaml
    status: Status
    prompt: str
    model: str
    size: str | None
    quality: str | None
    cost_usd: float | None
    generated_at: str | None
    source_commit: str | None
    provider: str  # provider kind: openai, offline, adopted
    pictures: tuple[Picture, ...]
    before: tuple[Picture, ...] = ()
    before_prompt: str | None = None  # the previous prompt, when it differs
    revised_prompt: str | None = None


@dataclass(frozen=True)
class Gallery:
    title: str
    cards: tuple[Card, ...]
    base_label: str | None = None  # what "before" is; None: no comparison
    notes: tuple[str, ...] = ()

    @property
    def changed(self) -> tuple[Card, ...]:
        return tuple(card for card in self.cards if card.status in ("new", "changed"))


class Snapshot(Protocol):
    """A state to compare with: its lockfile and the bytes of its outputs."""

    label: str

    def lockfile(self) -> Lockfile: ...
    def read_output(self, path: str) -> bytes | None: ...


class GitSnapshot:
    """The project as committed at `commit`: lockfile and outputs read from git objects."""

    def __init__(self, config: Config, ref: str, label: str | None = None) -> None:
        self.root = config.root
        self.commit = gitrepo.resolve_commit(config.root, ref)
        name = label or ref
        self.label = name if self.commit.startswith(name) else f"{name} ({self.commit[:7]})"
        self.lockfile_path = gitrepo.repo_path(config.root, config.lockfile)
        self.outputs_path = gitrepo.repo_path(config.root, config.outputs_dir)

    def lockfile(self) -> Lockfile:
        shown = f"{self.lockfile_path}@{self.label}"
        return lockfile_at(self.root, self.commit, self.lockfile_path, shown)

    def read_output(self, path: str) -> bytes | None:
        return gitrepo.blob_at(self.root, self.commit, f"{self.outputs_path}/{path}")


class DirectorySnapshot:
    """Another checkout of the project (a preview compares its copy with the original)."""

    def __init__(self, config: Config, label: str) -> None:
        self.config = config
        self.label = label

    def lockfile(self) -> Lockfile:
        return read_lockfile(self.config.lockfile)

    def read_output(self, path: str) -> bytes | None:
        outputs_dir = self.config.outputs_dir
        try:
            return check_inside(outputs_dir, outputs_dir / path).read_bytes()
        except (OSError, PromptformError):
            return None


def default_base(config: Config) -> GitSnapshot | None:
    """The merge base with the default branch when another branch is checked out, else no base."""
    return default_base_or_hint(config)[0]


def default_base_or_hint(config: Config) -> tuple[GitSnapshot | None, str | None]:
    """The default base (see `default_base`), or None and, when a comparison was expected but
    cannot be made, a hint saying how to get one."""
    branch = gitrepo.current_branch(config.root)
    if branch is None:
        return None, None
    main = gitrepo.default_branch(config.root)
    if main is None:
        others = [name for name in gitrepo.local_branches(config.root) if name != branch]
        example = others[0] if others else "COMMIT"
        return None, (
            "no before/after: found no default branch to compare with (origin/HEAD, main or "
            f"master); pass --base BRANCH, e.g. `promptform report --base {example}`"
        )
    if main.removeprefix("origin/") == branch:
        return None, None
    base = gitrepo.merge_base(config.root, "HEAD", main)
    if base is None:
        return None, (
            f"no before/after: {branch} shares no history with {main}; pass --base COMMIT"
        )
    return GitSnapshot(config, base, f"merge base with {main}"), None


def collect(config: Config, base: Snapshot | None, repo_prefix: str | None = None) -> Gallery:
    """Cards for every lock entry (and every target not generated yet), compared with `base`.

    `repo_prefix` is outputs_dir as a path from the top of the git repository (for links to
    committed files); default: relative to the project root.
    """
    lockfile = read_lockfile(config.lockfile, display_path(config.lockfile, config.root))
    notes: list[str] = []
    try:
        targets = load_project(config).by_address()
    except PromptformError as exc:
        # The gallery shows what was generated; broken manifests only cost it the grouping.
        targets = {}
        notes.append(f"manifests could not be loaded ({exc}); cards are grouped by name")
    old = base.lockfile() if base is not None else Lockfile()
    prefix = repo_prefix or config.project.outputs_dir.strip("/")
    cards: list[Card] = []
    for address in _ordered(targets, lockfile):
        entry = lockfile.targets.get(address)
        target = targets.get(address)
        previous = old.targets.get(address) if base is not None else None
        if entry is None:
            assert target is not None
            cards.append(_pending_card(target))
            continue
        status = _status(entry, previous, compared=base is not None)
        card = _card(address, entry, target, status, prefix)
        if status == "changed" and previous is not None:
            card = _with_before(card, previous, prefix)
        cards.append(card)
    if base is not None:
        for address in sorted(set(old.targets) - set(lockfile.targets)):
            removed = _card(address, old.targets[address], None, "removed", prefix)
            cards.append(
                _with_before(
                    dataclasses.replace(removed, pictures=()), old.targets[address], prefix
                )
            )
    title = f"promptform gallery: {config.root.name}"
    return Gallery(title, tuple(cards), base.label if base is not None else None, tuple(notes))


def _ordered(targets: dict[str, Target], lockfile: Lockfile) -> list[str]:
    """Manifest order first (how authors arranged them), then entries no manifest has any more."""
    known = list(targets)
    return known + sorted(address for address in lockfile.targets if address not in targets)


def _status(entry: LockEntry, previous: LockEntry | None, compared: bool) -> Status:
    if not compared:
        return "unchanged"
    if previous is None:
        return "new"
    same = [(o.path, o.sha256) for o in entry.outputs] == [
        (o.path, o.sha256) for o in previous.outputs
    ]
    return "unchanged" if same else "changed"


def _group(address: str, target: Target | None) -> str:
    return target.file if target is not None else address.split("[", 1)[0]


def _card(
    address: str, entry: LockEntry, target: Target | None, status: Status, prefix: str
) -> Card:
    request = entry.request
    return Card(
        address=address,
        group=_group(address, target),
        status=status,
        prompt=str(request.get("prompt", "")),
        model=entry.model,
        size=_text(request.get("size")),
        quality=_text(request.get("quality")),
        cost_usd=entry.cost_usd,
        generated_at=entry.generated_at,
        source_commit=entry.source_commit,
        provider=entry.provider.kind,
        pictures=_pictures(entry, prefix),
        revised_prompt=entry.revised_prompt,
    )


def _pending_card(target: Target) -> Card:
    return Card(
        address=target.address,
        group=target.file,
        status="pending",
        prompt=str(target.body.get("prompt", "")),
        model=target.model,
        size=_text(target.body.get("size")),
        quality=_text(target.body.get("quality")),
        cost_usd=None,
        generated_at=None,
        source_commit=None,
        provider=target.provider_kind,
        pictures=(),
    )


def _with_before(card: Card, previous: LockEntry, prefix: str) -> Card:
    old_prompt = str(previous.request.get("prompt", ""))
    return dataclasses.replace(
        card,
        before=_pictures(previous, prefix),
        before_prompt=old_prompt if old_prompt != card.prompt else None,
    )


def _pictures(entry: LockEntry, prefix: str) -> tuple[Picture, ...]:
    return tuple(
        Picture(o.path, f"{prefix}/{o.path}", o.sha256, o.width, o.height) for o in entry.outputs
    )


def _text(value: object) -> str | None:
    return None if value is None else str(value)


# -- writing the folder --------------------------------------------------------------------------


def export_images(
    gallery: Gallery, out_dir: Path, config: Config, base: Snapshot | None
) -> Gallery:
    """Copy every shown image under `out_dir/images/` and point the cards at the copies.

    Copies, not links: the folder is uploaded as a CI artifact and opened from file:// on another
    machine, where nothing outside it exists. Files are named by content hash, so an image shared by
    before and after is stored once and no output path can escape the folder.
    """
    images = out_dir / IMAGES_DIR

    def current(path: str) -> bytes | None:
        try:
            return check_inside(config.outputs_dir, config.outputs_dir / path).read_bytes()
        except (OSError, PromptformError):
            return None

    previous: Callable[[str], bytes | None] = base.read_output if base is not None else _nothing
    cards = []
    for card in gallery.cards:
        cards.append(
            dataclasses.replace(
                card,
                pictures=tuple(_export(p, current, images) for p in card.pictures),
                before=tuple(_export(p, previous, images) for p in card.before),
            )
        )
    return dataclasses.replace(gallery, cards=tuple(cards))


def _nothing(path: str) -> bytes | None:
    return None


def _export(picture: Picture, read: Callable[[str], bytes | None], images: Path) -> Picture:
    data = read(picture.path)
    if data is None:
        return dataclasses.replace(picture, missing="missing")
    if hashlib.sha256(data).hexdigest() != picture.sha256:
        if data.startswith(b"version https://git-lfs"):
            return dataclasses.replace(picture, missing="Git LFS pointer (run `git lfs pull`)")
        reason = "changed on disk since it was recorded"
    else:
        reason = None
    try:
        info = sniff(data)
    except ImageError:
        return dataclasses.replace(picture, missing=reason or "not an image")
    name = f"{hashlib.sha256(data).hexdigest()[:20]}.{info.format}"
    destination = images / name
    if not destination.exists():
        atomic_write(destination, data, shared=True)
    return dataclasses.replace(
        picture,
        src=f"{IMAGES_DIR}/{quote(name)}",
        width=info.width,
        height=info.height,
        missing=reason,
    )


def prepare_out_dir(out_dir: Path, config: Config) -> None:
    """Make `out_dir` ready for a report: empty, or a previous report (whose images are replaced)."""
    resolved = out_dir.resolve()
    for inside, what in ((config.outputs_dir, "outputs_dir"), (config.prompts_dir, "prompts_dir")):
        if resolved.is_relative_to(inside.resolve()):
            raise PromptformError(
                f"--out {out_dir} is inside {what}; write the report somewhere else "
                "(default: .promptform/report)"
            )
    if resolved == config.root.resolve():
        raise PromptformError("--out is the project itself; give the report its own directory")
    if out_dir.is_dir() and any(out_dir.iterdir()):
        index = out_dir / "index.html"
        if not (
            index.is_file() and GENERATOR in index.read_text(encoding="utf-8", errors="replace")
        ):
            raise PromptformError(
                f"--out {out_dir} is not empty and holds no promptform report; "
                "choose an empty or new directory"
            )
        shutil.rmtree(out_dir / IMAGES_DIR, ignore_errors=True)
    out_dir.mkdir(parents=True, exist_ok=True)


def write_report(
    config: Config, out_dir: Path, base: Snapshot | None, render: Callable[[Gallery], str]
) -> Gallery:
    """Collect, copy the images and write `out_dir/index.html`; returns what was written."""
    prepare_out_dir(out_dir, config)
    gallery = export_images(collect(config, base), out_dir, config, base)
    atomic_write(out_dir / "index.html", render(gallery).encode("utf-8"), shared=True)
    return gallery


def count_images(cards: Sequence[Card]) -> int:
    return sum(len(card.pictures) for card in cards)
