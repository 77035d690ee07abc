"""A project on disk: its manifests expanded into targets, checked as a whole.

Owns reading manifest and reference-image files, duplicate addresses and outputs across manifests, and
the dependency graph that reference images pointing at other targets' outputs create.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import stat
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from promptform.core.config import Config
from promptform.core.errors import (
    ConfigError,
    ErrorGroup,
    Location,
    ManifestError,
    PromptformError,
    display_path,
)
from promptform.core.fingerprint import hash_file
from promptform.core.gc_pause import gc_paused
from promptform.core.paths import path_key, relative_path_problem
from promptform.manifests.documents import decode_text, read_bytes
from promptform.manifests.manifest_files import find_manifest_files
from promptform.manifests.targets import Target, TargetBuilder, contained
from promptform.manifests.template_sources import TemplateSources
from promptform.state.render_cache import CachedExpansion, RenderCache

if TYPE_CHECKING:
    from promptform.manifests.manifest import LoadedManifest
    from promptform.manifests.render import Renderer

MAX_REPORTED_PROBLEMS = 50


@dataclass(frozen=True)
class Project:
    config: Config
    targets: list[Target]
    warnings: list[PromptformError]
    manifest_files: int
    manifests: int

    def by_address(self) -> dict[str, Target]:
        return {target.address: target for target in self.targets}


def load_project(config: Config, use_cache: bool = False) -> Project:
    """Load, render and check every manifest; raise every problem found at once.

    With `use_cache`, a manifest file whose bytes and templates are unchanged since the last run is
    neither parsed nor rendered: its targets come from the render cache in .promptform/.
    """
    with gc_paused():
        return _load_project(config, use_cache)


def _load_project(config: Config, use_cache: bool) -> Project:
    _refuse_escaping_directories(config)
    files_view = _Files(config)
    sources = TemplateSources(config.templates_dir)
    expander = _Expander(config, sources, files_view)
    cache = RenderCache.load(config) if use_cache else None
    problems: list[PromptformError] = []
    sources_read: list[_ManifestFile] = []
    files = find_manifest_files(config.prompts_dir)
    names = _ManifestNames(config)
    for path in files:
        try:
            sources_read.append(_read_manifest_file(path, config, cache, sources, names))
        except PromptformError as exc:
            problems.append(exc)
    targets: list[Target] = []
    warnings: list[PromptformError] = []
    manifests = 0
    for source in sources_read:
        expansion: _FileExpansion | None
        if source.cached is not None and _still_valid(source.cached, files_view):
            cached = source.cached
            expansion = _FileExpansion(cached.targets, [*cached.warnings], cached.manifests, set())
        else:
            expansion = _expand_file(source, expander, problems)
            if expansion is not None and cache is not None:
                _store(cache, source, expansion, sources)
        if expansion is not None:
            targets += expansion.targets
            warnings += expansion.warnings
            manifests += expansion.manifests
            _check_target_count(len(targets), source, config)
    if cache is not None and not sources.changed_while_loading:
        cache.save()
    if not problems:
        problems += _duplicates(targets)
    if not problems:
        try:
            targets = _link_upstreams(targets, config)
        except PromptformError as exc:
            problems.append(exc)
    if problems:
        raise ErrorGroup(problems)
    return Project(config, targets, warnings, len(files), manifests)


def _check_target_count(count: int, source: _ManifestFile, config: Config) -> None:
    """Refuse, as soon as it is passed, a project of more targets than [limits] allows."""
    limit = config.limits.max_targets
    if count > limit:
        raise ConfigError(
            f"the project has more than {limit:,} targets (passed at {source.shown}); split "
            "it into several projects or raise [limits] max_targets in promptform.toml",
            Location(config.source.name) if config.source else None,
        )


def _refuse_escaping_directories(config: Config) -> None:
    """Refuse prompts, templates or outputs directories that are symlinks leading out of the project.

    Every path check below is relative to these directories as resolved, so a committed symlink
    `templates -> /etc` would otherwise let a template include any file on the machine.
    """
    root = config.root.resolve()
    where = Location(config.source.name) if config.source else None
    for setting, path in (
        ("prompts_dir", config.prompts_dir),
        ("templates_dir", config.templates_dir),
        ("outputs_dir", config.outputs_dir),
    ):
        if not contained(path, root):
            raise ConfigError(
                f"{setting} '{getattr(config.project, setting)}' leads outside the project "
                "through a symlink; make it a real directory",
                where,
            )


@dataclass
class _ManifestFile:
    """One manifest file as read: its text, and its cached expansion or its parsed documents."""

    relative: str  # under prompts_dir
    stem: str
    shown: str
    text: str
    sha256: str
    cached: CachedExpansion | None
    loaded: list[LoadedManifest] | None


@dataclass
class _FileExpansion:
    targets: list[Target]
    warnings: list[PromptformError]
    manifests: int
    templates_used: set[str]


class _ManifestNames:
    """The names of a manifest file found under prompts_dir: worked out from its path as text, as
    pathlib's relative_to would (three Path objects a file cost more than the rest of a no-op
    plan's reading of it)."""

    def __init__(self, config: Config) -> None:
        self._prefix_length = len(os.path.join(os.fspath(config.prompts_dir), ""))  # noqa: PTH118
        # prompts_dir is never the root itself: outputs_dir would be inside it, which config refuses.
        self._shown_prefix = display_path(config.prompts_dir, config.root) + "/"

    def of(self, path: Path) -> tuple[str, str, str]:
        """(path under prompts_dir, default target name, path as shown), POSIX style."""
        relative = os.fspath(path)[self._prefix_length :].replace(os.sep, "/")
        stem = relative.rpartition(".")[0]  # a manifest file's name always has a suffix
        return relative, stem, self._shown_prefix + relative


def _read_manifest_file(
    path: Path,
    config: Config,
    cache: RenderCache | None,
    sources: TemplateSources,
    names: _ManifestNames,
) -> _ManifestFile:
    """Read a manifest file once; parse it only when the render cache has nothing for it."""
    relative, stem, shown = names.of(path)
    if path.is_symlink() and not contained(path, config.root):
        raise ManifestError("manifest is a symlink leading outside the project", Location(shown))
    raw = read_bytes(path, shown)
    # The file's mtime is part of its identity in the cache: a checkout sets it to an instant
    # nobody can predict, so a render cache committed in a pull request never matches, and cannot
    # show reviewers (or send) anything but what the manifest says.
    identity = f"{hashlib.sha256(raw).hexdigest()}@{path.stat().st_mtime_ns}"
    text = decode_text(raw, shown)
    cached = cache.lookup(relative, identity, sources.digest) if cache else None
    loaded = None if cached is not None else _parse(text, stem, shown)
    return _ManifestFile(relative, stem, shown, text, identity, cached, loaded)


def _parse(text: str, stem: str, shown: str) -> list[LoadedManifest]:
    # Imported here: the manifest models (and pydantic) are needed only when the render cache
    # cannot answer for a file.
    from promptform.manifests.manifest import load_manifest_text

    return load_manifest_text(text, stem, shown)


def _still_valid(cached: CachedExpansion, files_view: _Files) -> bool:
    """Whether the reference images and output paths of cached targets are as they were.

    These depend on the filesystem (image contents, symlinks), not on the manifest's inputs, so
    they are checked on every run. A failed check expands the file again, which reports the
    problem with its exact location.
    """
    try:
        for target in cached.targets:
            where = target.location()
            for image in target.inputs:
                if files_view.input_hash(image.path, where) != image.sha256:
                    return False
            for output in target.outputs:
                files_view.refuse_escaping_output(output, where)
    except PromptformError:
        return False
    return True


def _expand_file(
    source: _ManifestFile, expander: _Expander, problems: list[PromptformError]
) -> _FileExpansion | None:
    """Expand every document of a file, adding its problems to `problems`; None when it had any."""
    loaded = source.loaded
    if loaded is None:  # a cache hit that failed its filesystem checks; the same text parsed before
        loaded = _parse(source.text, source.stem, source.shown)
    # Imported here, as the renderer is: signal and threading serve only a render.
    from promptform.manifests.render_deadline import RENDER_SECONDS_PER_MANIFEST, render_deadline

    expanded = _FileExpansion([], [], len(loaded), set())
    failed = False
    with expander.renderer.recording_templates() as used:
        for manifest in loaded:
            try:
                with render_deadline(RENDER_SECONDS_PER_MANIFEST, manifest.location()):
                    expansion = expander.builder.expand(manifest)
            except PromptformError as exc:
                problems.append(exc)
                failed = True
                continue
            expanded.targets += expansion.targets
            expanded.warnings += expansion.warnings
    expanded.templates_used = used
    return None if failed else expanded


def _store(
    cache: RenderCache, source: _ManifestFile, expansion: _FileExpansion, sources: TemplateSources
) -> None:
    """Remember a file's expansion with the digest of every template its renders loaded."""
    warnings = [warning for warning in expansion.warnings if type(warning) is ManifestError]
    if len(warnings) != len(expansion.warnings):
        return  # the cache stores warnings as ManifestError; any other kind stays exact uncached
    try:
        templates = {name: sources.digest(name) for name in sorted(expansion.templates_used)}
    except (OSError, ValueError):
        return  # a template that cannot be read now could not be checked on the next run either
    cache.store(
        source.relative,
        CachedExpansion(source.sha256, templates, expansion.manifests, expansion.targets, warnings),
    )


class _Expander:
    """The renderer and the target builder, made for the first manifest file the render cache
    cannot answer: a plan the cache answers whole never imports Jinja."""

    def __init__(self, config: Config, sources: TemplateSources, files: _Files) -> None:
        self.config = config
        self.sources = sources
        self.files = files

    @cached_property
    def renderer(self) -> Renderer:
        from promptform.manifests.render import Renderer

        config = self.config
        return Renderer(config.templates_dir, config.project.templates_dir, self.sources)

    @cached_property
    def builder(self) -> TargetBuilder:
        files = self.files
        return TargetBuilder(self.config, self.renderer, files.input_hash, files.output_path)


class _Files:
    """Reference-image hashes and output-path checks, each done once per path or directory."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.root = config.root.resolve()
        self.outputs = config.outputs_dir.resolve()
        self._outputs_text = os.fspath(self.outputs)
        self._outputs_prefix = os.path.join(self._outputs_text, "")  # noqa: PTH118 - ends in a separator
        self.outputs_prefix = config.project.outputs_dir.strip("/")
        self._hashes: dict[str, str | None] = {}
        self._safe_dirs: dict[str, bool] = {}
        self._links: dict[str, frozenset[str]] = {}  # output folder -> names of symlinks in it

    def input_hash(self, path: str, where: Location) -> str | None:
        problem = relative_path_problem(path)
        if problem:
            raise ManifestError(f"reference image '{path}' {problem}", where)
        if path not in self._hashes:
            full = self.config.root / path
            if not full.resolve().is_relative_to(self.root):
                raise ManifestError(
                    f"reference image '{path}' resolves outside the repository", where
                )
            self._hashes[path] = hash_file(full) if full.is_file() else None
        return self._hashes[path]

    def output_path(self, path: str, where: Location) -> str:
        problem = relative_path_problem(path)
        if problem:
            raise ManifestError(f"output path '{path}' {problem}", where)
        self.refuse_escaping_output(path, where)
        return path

    def refuse_escaping_output(self, path: str, where: Location) -> None:
        """Refuse an output whose directory or file is a symlink leading outside outputs_dir."""
        parent = path.rpartition("/")[0]
        if not self._folder_safe(parent) or (
            self._is_link(parent, path) and not self._contained(path)
        ):
            raise ManifestError(
                f"output path '{path}' leads outside {self.config.project.outputs_dir}/ "
                "through a symlink",
                where,
            )

    def _folder_safe(self, folder: str) -> bool:
        """Whether the output folder `folder` (relative, "" for outputs_dir) stays inside
        outputs_dir: what realpath would say, with one lstat per folder (its parents are
        checked, once, the same way) rather than one per component of the absolute path."""
        safe = self._safe_dirs.get(folder)
        if safe is not None:
            return safe
        parent = folder.rpartition("/")[0]
        safe = True
        if folder and self._folder_safe(parent):
            full = os.path.join(self._outputs_text, folder)  # noqa: PTH118
            try:
                is_link = stat.S_ISLNK(os.lstat(full).st_mode)
            except OSError:  # not there yet, or under a file: nothing to follow
                is_link = False
            if is_link:
                real = os.path.realpath(full)
                safe = real == self._outputs_text or real.startswith(self._outputs_prefix)
        elif folder:
            safe = False
        self._safe_dirs[folder] = safe
        return safe

    def _is_link(self, parent: str, path: str) -> bool:
        """Whether the output at `path` may be a symlink, from one listing of its folder: the
        listing says which entries are symlinks without a system call per file (10,000 outputs
        took 10,000 lstat calls on every plan). Names are compared as a case-insensitive file
        system compares them, so a symlink spelled otherwise is never missed there; elsewhere
        that only sends a file to the exact check."""
        links = self._links.get(parent)
        if links is None:
            folder = os.path.join(self._outputs_text, parent)  # noqa: PTH118
            try:
                with os.scandir(folder) as entries:
                    links = frozenset(
                        path_key(entry.name) for entry in entries if entry.is_symlink()
                    )
            except OSError:  # not there yet (nothing generated), or not a folder
                links = frozenset()
            self._links[parent] = links
        return bool(links) and path_key(path.rpartition("/")[2]) in links

    def _contained(self, path: str) -> bool:
        full = os.path.join(self._outputs_text, path)  # noqa: PTH118
        return contained(Path(full), self.outputs)


def _duplicates(targets: list[Target]) -> list[PromptformError]:
    problems: list[PromptformError] = []
    addresses: dict[str, Target] = {}
    outputs: dict[str, Target] = {}
    for target in targets:
        first = addresses.setdefault(target.address, target)
        if first is not target:
            problems.append(
                ManifestError(
                    f"address '{target.address}' is also defined at {first.location()}; "
                    "give one of them another name",
                    target.location(),
                )
            )
            continue
        for output in target.outputs:
            # Compared as a case-insensitive file system would: there, both would be one file.
            owner = outputs.setdefault(path_key(output), target)
            if owner is not target:
                problems.append(
                    ManifestError(
                        f"output '{output}' of '{target.address}' is also written by "
                        f"'{owner.address}' ({owner.location()}); change one of the outputs",
                        target.location(),
                    )
                )
    problems += _outputs_inside_outputs(targets)
    return problems[:MAX_REPORTED_PROBLEMS]


def _outputs_inside_outputs(targets: list[Target]) -> list[PromptformError]:
    """Refuse an output whose path is another output's folder (`a.png` and `a.png/b.png`): one of
    the two could never be written, and a paid image would have nowhere to go."""
    files = {path_key(output): (output, target) for target in targets for output in target.outputs}
    problems: list[PromptformError] = []
    clear: set[str] = set()  # folders that neither are, nor lie inside, an output
    for target in targets:
        for output in target.outputs:
            folder = output.rpartition("/")[0]
            walked = []
            while folder and folder not in clear:
                walked.append(folder)
                found = files.get(path_key(folder))
                if found is not None:
                    owned, owner = found
                    problems.append(
                        ManifestError(
                            f"output '{output}' of '{target.address}' is inside output "
                            f"'{owned}' of '{owner.address}' ({owner.location()}); "
                            "change one of the outputs",
                            target.location(),
                        )
                    )
                    walked.clear()
                    break
                folder = folder.rpartition("/")[0]
            # Thousands of outputs share a few folders: each is looked up once.
            clear.update(walked)
    return problems


def _link_upstreams(targets: list[Target], config: Config) -> list[Target]:
    """Record which targets produce other targets' reference images; refuse missing files and cycles."""
    prefix = config.project.outputs_dir.strip("/") + "/"
    producer = {prefix + output: target.address for target in targets for output in target.outputs}
    linked: list[Target] = []
    problems: list[PromptformError] = []
    for target in targets:
        upstream = []
        for image in target.inputs:
            owner = producer.get(image.path)
            if owner is not None:
                if owner not in upstream:
                    upstream.append(owner)
            elif image.sha256 is None:
                problems.append(
                    ManifestError(
                        f"{target.address}: reference image '{image.path}' does not exist and no "
                        "target outputs it",
                        target.location(),
                    )
                )
        linked.append(dataclasses.replace(target, upstream=tuple(upstream)) if upstream else target)
    if problems:
        raise ErrorGroup(problems)
    _refuse_cycles(linked)
    return linked


def _refuse_cycles(targets: list[Target]) -> None:
    if not any(target.upstream for target in targets):
        return  # no target reads another's output: nothing can form a cycle
    edges = {target.address: target.upstream for target in targets}
    by_address = {target.address: target for target in targets}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for start in edges:
        if state.get(start):
            continue
        stack: list[tuple[str, int]] = [(start, 0)]
        path: list[str] = []
        while stack:
            node, index = stack.pop()
            if index == 0:
                state[node] = 1
                path.append(node)
            if index < len(edges[node]):
                stack.append((node, index + 1))
                child = edges[node][index]
                if state.get(child) == 1:
                    cycle = [*path[path.index(child) :], child]
                    raise ManifestError(
                        "reference images form a cycle: " + " -> ".join(cycle),
                        by_address[child].location(),
                    )
                if not state.get(child):
                    stack.append((child, 0))
            else:
                state[node] = 2
                path.pop()
