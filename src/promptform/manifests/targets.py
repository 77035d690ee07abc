"""Targets: the concrete requests a manifest expands to, one per matrix cell.

Owns matrix expansion, addresses, rendering of name/prompt/output, request bodies, output paths (which
must stay inside outputs_dir) and per-model checks. Reading the files is project.py's job.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from promptform.core.config import Config, Defaults
from promptform.core.errors import ConfigError, ErrorGroup, Location, ManifestError, PromptformError
from promptform.core.fingerprint import fingerprint
from promptform.core.model_rules import KNOWN_MODELS, check_request
from promptform.core.paths import relative_path_problem
from promptform.manifests.documents import Key
from promptform.manifests.manifest import LoadedManifest, Manifest, Scalar
from promptform.manifests.render import Renderer, slug

GENERATIONS = "images/generations"
EDITS = "images/edits"
EXTENSIONS = {"png": ("png",), "jpeg": ("jpg", "jpeg"), "webp": ("webp",)}
# Control characters (a newline, an escape) are quoted too: json.dumps spells them out.
_BARE_VALUE = re.compile(r"^[^,\[\]=\"\s](?:[^,\[\]=\"\x00-\x1f]*[^,\[\]=\"\s])?\Z")
_BAD_NAME = re.compile(r"[\[\],=\x00-\x1f\\]|^\s|\s$|^/|/$|//|(^|/)\.\.?(/|$)")
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
        warnings: list[PromptformError] = []
        targets: list[Target] = []
        problems: list[PromptformError] = []
        constants = self._constants(loaded)
        for cell, extra_vars in _cells(loaded):
            try:
                target, findings = self._target(loaded, constants, cell, extra_vars)
            except PromptformError as exc:
                problems.append(exc)
                if len(problems) >= 5:
                    break
                continue
            targets.append(target)
            for finding in findings:
                error = ManifestError(
                    f"{target.address}: {finding.message}" if cell else finding.message,
                    loaded.location(finding.field)
                    if finding.field in manifest.model_fields_set
                    else loaded.location(),
                )
                (warnings if finding.warning else problems).append(error)
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
        body = _request_body(manifest, defaults, model, prompt, edit=bool(inputs))
        address = _address(name, cell)
        outputs = self._outputs(loaded, constants, variables, body, cell)
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
        if not name or _BAD_NAME.search(name):
            hint = "; set name: or rename the file" if raw is None else ""
            raise ManifestError(
                f"name {name!r} is not a valid address: use letters, digits, '-', '_', '.' and '/' "
                f"(no brackets, commas, '=', '..' or leading/trailing '/'){hint}",
                loaded.location("name"),
            )
        return name

    def _outputs(
        self,
        loaded: LoadedManifest,
        constants: _ManifestConstants,
        variables: dict[str, Any],
        body: dict[str, Any],
        cell: dict[str, Scalar],
    ) -> tuple[str, ...]:
        count = int(body.get("n", 1))
        output_format = str(body.get("output_format", "png"))
        ext = EXTENSIONS[output_format][0]
        template = loaded.manifest.output
        where = constants.output_where
        if template is None:
            stem = "/".join(slug(part) or "_" for part in str(variables["name"]).split("/"))
            cell_part = "-".join(slug(_value_text(value)) for value in cell.values())
            base = f"{stem}-{cell_part}" if cell_part else stem
            paths = [f"{base}-{index}.{ext}" for index in range(1, count + 1)]
        else:
            paths = [
                self.renderer.render(
                    template, {**variables, "index": index, "ext": ext}, constants.output_origin
                ).strip()
                for index in range(1, count + 1)
            ]
            for path in paths:
                # Checked before index and extension are added, which need a file name to work on.
                problem = relative_path_problem(path)
                if problem:
                    raise ManifestError(f"output path '{path}' {problem}", where)
            if count > 1 and len(set(paths)) == 1:
                paths = [_with_index(path, index) for index, path in enumerate(paths, 1)]
            elif len(set(paths)) != count:
                raise ManifestError(
                    f"output gives {len(set(paths))} different paths for {count} images; "
                    "use {{ index }} in it",
                    where,
                )
            paths = [_with_extension(path, output_format, where) for path in paths]
        return tuple(self.check_output(path, where) for path in paths)


def _cells(loaded: LoadedManifest) -> Iterator[tuple[dict[str, Scalar], dict[str, Any]]]:
    """(axis values, extra vars) for every cell, in declared order; ({}, {}) for a plain manifest."""
    matrix = loaded.manifest.matrix
    if matrix is None:
        yield {}, {}
        return
    axes = matrix.axes()
    where = loaded.location("matrix")
    for axis, values in axes.items():
        if not values:
            raise ManifestError(
                f"matrix axis '{axis}' has no values", loaded.location("matrix", axis)
            )
        if len(set(map(_value_text, values))) != len(values):
            raise ManifestError(
                f"matrix axis '{axis}' repeats a value", loaded.location("matrix", axis)
            )
    names = list(axes)
    cells: list[tuple[dict[str, Scalar], dict[str, Any]]] = (
        [
            (dict(zip(names, combination, strict=True)), {})
            for combination in itertools.product(*axes.values())
        ]
        if names
        else []
    )
    for index, rule in enumerate(matrix.exclude):
        _check_axes(rule, names, loaded.location("matrix", "exclude", index), "exclude")
        cells = [cell for cell in cells if not _matches(cell[0], rule)]
    for index, entry in enumerate(matrix.include):
        entry_where = loaded.location("matrix", "include", index)
        keys = {key: value for key, value in entry.items() if key in names}
        extra = {key: value for key, value in entry.items() if key not in names}
        matching = [cell for cell in cells if _matches(cell[0], keys)]
        if matching:
            for _, cell_vars in matching:
                cell_vars.update(extra)
        elif names and len(keys) == len(names):
            cells.append(({name: keys[name] for name in names}, dict(extra)))
        elif not names:
            raise ManifestError("matrix include needs axes to add cells to", entry_where)
        else:
            missing = ", ".join(name for name in names if name not in keys)
            raise ManifestError(
                f"matrix include entry matches no cell; to add a cell set every axis (missing: {missing})",
                entry_where,
            )
    if not cells:
        raise ManifestError("matrix has no cells left after exclude", where)
    yield from cells


def _check_axes(rule: dict[str, Scalar], names: list[str], where: Location, what: str) -> None:
    unknown = [key for key in rule if key not in names]
    if unknown:
        raise ManifestError(
            f"matrix {what} names unknown axis '{unknown[0]}' (axes: {', '.join(names)})", where
        )


def _matches(cell: dict[str, Scalar], rule: dict[str, Scalar]) -> bool:
    return all(
        key in cell and _value_text(cell[key]) == _value_text(value) for key, value in rule.items()
    )


def _value_text(value: Scalar) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _address(name: str, cell: dict[str, Scalar]) -> str:
    if not cell:
        return name
    parts = []
    for axis, value in cell.items():
        text = _value_text(value)
        parts.append(f"{axis}={text if _BARE_VALUE.match(text) else json.dumps(text)}")
    return f"{name}[{','.join(parts)}]"


def _request_body(
    manifest: Manifest, defaults: Defaults, model: str, prompt: str, edit: bool
) -> dict[str, Any]:
    """The JSON parameters of the request, in a fixed order: the manifest's value, else the default.

    Edits take no `moderation`, so a configured default is not sent with them.
    """
    rules = KNOWN_MODELS.get(model)
    gpt_image = rules is None or rules.gpt_image_options
    body: dict[str, Any] = {"model": model, "prompt": prompt, "n": manifest.n or defaults.n}
    for key in ("size", "quality"):
        value = getattr(manifest, key) or getattr(defaults, key)
        if value is not None:
            body[key] = value
    for key in ("background", "output_format", "output_compression", "moderation"):
        explicit = getattr(manifest, key)
        inherit = gpt_image and not (edit and key == "moderation")
        value = explicit if explicit is not None else (getattr(defaults, key) if inherit else None)
        if value is not None:
            body[key] = value
    if rules is not None and not rules.gpt_image_options:
        body["response_format"] = "b64_json"
    return body


def _input_paths(loaded: LoadedManifest) -> Iterator[tuple[str, Key, str]]:
    """(role, manifest key, path) of every reference image, then the mask."""
    for index, path in enumerate(loaded.manifest.images):
        yield "image", ("images", index), path
    if loaded.manifest.mask is not None:
        yield "mask", ("mask",), loaded.manifest.mask


def _value_location(loaded: LoadedManifest, key: str) -> Location:
    document = loaded.document
    return Location(document.file, document.value_line((key,)), None)


def _split_suffix(path: str) -> tuple[str, str]:
    """(path without suffix, suffix with its dot) as PurePosixPath names them, without parsing.

    String work rather than pathlib: this runs once per output on every plan.
    """
    name_start = path.rfind("/") + 1
    dot = path.rfind(".")
    if dot <= name_start or dot == len(path) - 1:  # no dot, a leading dot, or a trailing dot
        return path, ""
    return path[:dot], path[dot:]


def _with_index(path: str, index: int) -> str:
    stem, suffix = _split_suffix(path)
    return f"{stem}-{index}{suffix}"


def _with_extension(path: str, output_format: str, where: Location) -> str:
    suffix = _split_suffix(path)[1].lower().lstrip(".")
    if not suffix:
        return f"{path}.{EXTENSIONS[output_format][0]}"
    if suffix not in EXTENSIONS[output_format]:
        raise ManifestError(
            f"output '{path}' ends in .{suffix} but output_format is {output_format}; "
            f"use .{EXTENSIONS[output_format][0]}",
            where,
        )
    return path


def contained(path: Path, root: Path) -> bool:
    """Whether `path`, following any symlinks that exist, stays inside `root`."""
    return Path(path).resolve().is_relative_to(root.resolve())


def _unique(errors: list[PromptformError]) -> list[PromptformError]:
    seen: set[str] = set()
    unique = []
    for error in errors:
        if error.one_line() not in seen:
            seen.add(error.one_line())
            unique.append(error)
    return unique


def address_matches(address: str, pattern: str) -> bool:
    """Whether `pattern` selects `address`: equal, a glob with * and ?, or the name of its manifest.

    Only * and ? are wildcards, because addresses use [ ] themselves.
    """
    if address == pattern:
        return True
    regex = "".join(
        ".*" if char == "*" else "." if char == "?" else re.escape(char) for char in pattern
    )
    name = address.split("[", 1)[0]
    return re.fullmatch(regex, address) is not None or re.fullmatch(regex, name) is not None


def matching_addresses(
    addresses: Sequence[str], patterns: Sequence[str], unmatched: Callable[[str], str]
) -> list[str]:
    """The `addresses` some pattern selects, in their order (all without patterns).

    A pattern that selects nothing is an error worded by `unmatched(pattern)`: a typo must not
    quietly plan, render or list nothing.
    """
    if not patterns:
        return list(addresses)
    for pattern in patterns:
        if not any(address_matches(address, pattern) for address in addresses):
            raise PromptformError(unmatched(pattern))
    return [
        address
        for address in addresses
        if any(address_matches(address, pattern) for pattern in patterns)
    ]
