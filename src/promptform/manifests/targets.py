"""Targets: the concrete requests a manifest expands to, one per matrix cell.

Owns building a target from one cell: rendering its name and prompt, its inputs, fingerprint and
per-model checks. The cells come from matrix.py, addresses from addresses.py, request bodies from
request_body.py and output paths from output_paths.py; reading the files is project.py's job.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from promptform.core.config import Config
from promptform.core.errors import ConfigError, ErrorGroup, Location, ManifestError, PromptformError
from promptform.core.fingerprint import fingerprint
from promptform.core.model_rules import check_request
from promptform.manifests.addresses import bad_name, format_address
from promptform.manifests.documents import Key
from promptform.manifests.manifest_files import Scalar
from promptform.manifests.matrix import cells
from promptform.manifests.output_paths import default_paths, templated_paths
from promptform.manifests.request_body import request_body

if TYPE_CHECKING:
    # Only types here: targets from the render cache need no manifest model (nor pydantic).
    from promptform.manifests.manifest import LoadedManifest

    # Only a type here: render.py imports Jinja, which targets from the render cache never need.
    from promptform.manifests.render import Renderer

GENERATIONS = "images/generations"
EDITS = "images/edits"
_TEMPLATE_MARK = ("{{", "{%", "{#")


@dataclass(frozen=True)
class InputImage:
    """A reference image or mask: repo-relative path and content hash (None until it exists)."""

    role: str
    path: str
    sha256: str | None


@dataclass(frozen=True)
class Target:
    address: str
    name: str
    file: str
    line: int
    cell: tuple[tuple[str, Scalar], ...]
    provider: str
    provider_kind: str
    endpoint: str
    body: dict[str, Any]
    inputs: tuple[InputImage, ...]
    outputs: tuple[str, ...]
    description: str | None
    fingerprint: str
    upstream: tuple[str, ...] = field(default=())

    @property
    def model(self) -> str:
        return str(self.body["model"])

    @property
    def images(self) -> int:
        return int(self.body.get("n", 1))

    @property
    def output_format(self) -> str:
        return str(self.body.get("output_format", "png"))

    def location(self) -> Location:
        return Location(self.file, self.line)


@dataclass
class Expansion:
    targets: list[Target]
    warnings: list[PromptformError]


class _ManifestConstants(NamedTuple):
    """What every cell of one manifest shares, worked out once rather than once per cell."""

    variables: dict[str, Any]
    name_origin: Location
    prompt_origin: Location
    output_origin: Location
    output_where: Location


class TargetBuilder:
    """Expands loaded manifests into targets for one project."""

    def __init__(
        self,
        config: Config,
        renderer: Renderer,
        input_hash: Callable[[str, Location], str | None],
        output_checker: Callable[[str, Location], str],
    ) -> None:
        self.config = config
        self.renderer = renderer
        self.input_hash = input_hash
        self.check_output = output_checker

    def expand(self, loaded: LoadedManifest) -> Expansion:
        manifest = loaded.manifest
        warnings: list[PromptformError] = [*loaded.document.warnings]
        targets: list[Target] = []
        # The same mistake fails every cell alike: one error for each, saying how many cells.
        failed_cells: dict[str, list[PromptformError]] = {}
        findings_by_cell: dict[tuple[str, str, bool], list[str]] = {}
        constants = self._constants(loaded)
        visited, stopped_early = 0, False
        for cell, extra_vars in cells(loaded, self.config.limits.max_cells_per_manifest):
            visited += 1
            try:
                target, findings = self._target(loaded, constants, cell, extra_vars)
            except PromptformError as exc:
                for leaf in exc.errors():
                    failed_cells.setdefault(leaf.one_line(), []).append(leaf)
                if len(failed_cells) >= 5:
                    stopped_early = True
                    break
                continue
            targets.append(target)
            for finding in findings:
                key = (finding.message, finding.field, finding.warning)
                findings_by_cell.setdefault(key, []).append(target.address if cell else "")
        problems = [
            _with_cell_count(same[0], len(same), visited, stopped_early)
            for same in failed_cells.values()
        ]
        for (message, field_name, warning), addresses in findings_by_cell.items():
            location = (
                loaded.location(field_name)
                if field_name in manifest.model_fields_set
                else loaded.location()
            )
            single = ManifestError(
                f"{addresses[0]}: {message}" if len(addresses) == 1 and addresses[0] else message,
                location,
            )
            counted = _with_cell_count(single, len(addresses), visited, stopped_early)
            (warnings if warning else problems).append(counted)
        if problems:
            raise ErrorGroup(problems)
        return Expansion(targets, _unique(warnings))

    def _constants(self, loaded: LoadedManifest) -> _ManifestConstants:
        return _ManifestConstants(
            variables={**self.config.defaults.vars, **loaded.manifest.vars},
            name_origin=_value_location(loaded, "name"),
            prompt_origin=_value_location(loaded, "prompt"),
            output_origin=_value_location(loaded, "output"),
            output_where=loaded.location("output") if loaded.manifest.output else loaded.location(),
        )

    def _target(
        self,
        loaded: LoadedManifest,
        constants: _ManifestConstants,
        cell: dict[str, Scalar],
        extra_vars: dict[str, Any],
    ) -> tuple[Target, list[Any]]:
        manifest, defaults = loaded.manifest, self.config.defaults
        variables = {**constants.variables, **extra_vars, **cell}
        name = self._name(loaded, constants, variables)
        variables["name"] = name
        prompt = self.renderer.render(manifest.prompt, variables, constants.prompt_origin).strip()
        if not prompt:
            raise ManifestError("prompt renders to empty text", loaded.location("prompt"))
        try:
            provider_name, provider = self.config.provider(manifest.provider or defaults.provider)
        except ConfigError as exc:
            raise ManifestError(exc.message, loaded.location("provider")) from None
        model = manifest.model or defaults.model
        inputs = tuple(
            InputImage(role, path, self.input_hash(path, loaded.location(*key)))
            for role, key, path in _input_paths(loaded)
        )
        endpoint = EDITS if inputs else GENERATIONS
        body = request_body(manifest, defaults, model, prompt, edit=bool(inputs))
        address = format_address(name, cell)
        count, output_format = int(body.get("n", 1)), str(body.get("output_format", "png"))
        paths = (
            default_paths(name, cell, count, output_format)
            if manifest.output is None
            else templated_paths(
                self.renderer,
                manifest.output,
                variables,
                count,
                output_format,
                constants.output_origin,
                constants.output_where,
            )
        )
        outputs = tuple(self.check_output(path, constants.output_where) for path in paths)
        findings = check_request(
            model,
            body,
            sum(1 for item in inputs if item.role == "image"),
            any(item.role == "mask" for item in inputs),
        )
        target = Target(
            address=address,
            name=name,
            file=loaded.file,
            line=loaded.document.start_line,
            cell=tuple(cell.items()),
            provider=provider_name,
            provider_kind=provider.kind,
            endpoint=endpoint,
            body=body,
            inputs=inputs,
            outputs=outputs,
            description=manifest.description,
            fingerprint=fingerprint(
                provider.kind,
                endpoint,
                body,
                ((item.role, item.sha256 or f"pending:{item.path}") for item in inputs),
            ),
        )
        return target, findings

    def _name(
        self, loaded: LoadedManifest, constants: _ManifestConstants, variables: dict[str, Any]
    ) -> str:
        raw = loaded.manifest.name
        if raw is None:
            name = loaded.default_name
        elif any(mark in raw for mark in _TEMPLATE_MARK):
            name = self.renderer.render(raw, variables, constants.name_origin).strip()
        else:
            name = raw
        if bad_name(name):
            hint = "; set name: or rename the file" if raw is None else ""
            raise ManifestError(
                f"name {name!r} is not a valid address: use letters, digits, '-', '_', '.' and '/' "
                f"(no brackets, commas, '=', '..' or leading/trailing '/'){hint}",
                loaded.location("name"),
            )
        return name


def _input_paths(loaded: LoadedManifest) -> Iterator[tuple[str, Key, str]]:
    """(role, manifest key, path) of every reference image, then the mask."""
    for index, path in enumerate(loaded.manifest.images):
        yield "image", ("images", index), path
    if loaded.manifest.mask is not None:
        yield "mask", ("mask",), loaded.manifest.mask


def _value_location(loaded: LoadedManifest, key: str) -> Location:
    document = loaded.document
    return Location(document.file, document.value_line((key,)), None)


def contained(path: Path, root: Path) -> bool:
    """Whether `path`, following any symlinks that exist, stays inside `root`."""
    return Path(path).resolve().is_relative_to(root.resolve())


def _with_cell_count(
    error: PromptformError, affected: int, visited: int, stopped_early: bool
) -> PromptformError:
    """`error`, saying how many matrix cells it fails when that is more than one."""
    if affected < 2:
        return error
    if stopped_early:
        where = f"{affected} of the first {visited} matrix cells"
    elif affected == visited:
        where = f"all {affected} matrix cells"
    else:
        where = f"{affected} of {visited} matrix cells"
    counted = copy.copy(error)
    counted.message = f"{error.message} (in {where})"
    counted.args = (counted.message,)
    return counted


def _unique(errors: list[PromptformError]) -> list[PromptformError]:
    seen: set[str] = set()
    unique = []
    for error in errors:
        if error.one_line() not in seen:
            seen.add(error.one_line())
            unique.append(error)
    return unique
