"""The manifest format: pydantic models that are the single source of truth, and loading them.

A manifest is one YAML document under prompts_dir. Loading parses YAML (documents.py), validates the
fields here, and keeps the document so later errors can point at a line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from promptform.core.errors import ErrorGroup, ManifestError, PromptformError
from promptform.core.validation_messages import describe_validation_error
from promptform.manifests.documents import Document, Key, load_documents, read_text
from promptform.manifests.manifest_files import Scalar, manifest_stem


class Matrix(BaseModel):
    """Axes (name: list of values) whose product gives one target per cell, with edits to that product."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={"minProperties": 1},
        # Built on first use: a plan answered by the render cache never validates a manifest.
        defer_build=True,
    )
    __pydantic_extra__: dict[str, list[Scalar]] = Field(init=False)

    include: list[dict[str, Scalar]] = Field(
        default_factory=list,
        description="Extra cells. Each names a value for every axis; other keys become vars of that "
        "cell. A cell that already exists gets the extra vars instead.",
    )
    exclude: list[dict[str, Scalar]] = Field(
        default_factory=list,
        description="Partial cells: every cell matching all of an entry's values is removed.",
    )

    @model_validator(mode="after")
    def _axes_are_names(self) -> Matrix:
        # Axis names appear in addresses (`name[axis=value]`) and as template variables.
        for axis in self.axes():
            if not axis.isidentifier():
                raise ValueError(f"matrix axis name {axis!r} is not a valid identifier")
        return self

    def axes(self) -> dict[str, list[Scalar]]:
        return dict(self.__pydantic_extra__ or {})


class Manifest(BaseModel):
    """One image set: a prompt and the request parameters, optionally over a matrix of variables."""

    model_config = ConfigDict(
        extra="forbid",
        title="promptform manifest",
        json_schema_extra={"$schema": "https://json-schema.org/draft/2020-12/schema"},
        # Built on first use: a plan answered by the render cache never validates a manifest.
        defer_build=True,
    )

    name: str | None = Field(
        default=None,
        description="Address of the target(s). Default: the file's path under prompts_dir without "
        "extension; give each document of a multi-document file its own. May use Jinja.",
    )
    description: str | None = Field(default=None, description="Free text; not part of the request.")
    provider: str | None = Field(
        default=None, description="A [providers.NAME] of the config; default: default_provider."
    )
    model: str | None = Field(default=None, description="Image model, e.g. gpt-image-2.")
    prompt: str = Field(description="Jinja template of the prompt; rendered, then stripped.")
    n: int | None = Field(default=None, ge=1, le=10, description="Images per target (1-10).")
    size: str | None = Field(
        default=None, description="WIDTHxHEIGHT or auto; checked against the model's limits."
    )
    quality: Literal["low", "medium", "high", "auto", "standard", "hd"] | None = None
    background: Literal["transparent", "opaque", "auto"] | None = None
    output_format: Literal["png", "jpeg", "webp"] | None = None
    output_compression: int | None = Field(default=None, ge=0, le=100)
    moderation: Literal["low", "auto"] | None = None
    vars: dict[str, Any] = Field(
        default_factory=dict, description="Variables available to the prompt and output templates."
    )
    matrix: Matrix | None = Field(default=None, description="One target per cell of these axes.")
    output: str | None = Field(
        default=None,
        description="Jinja template of the output path under outputs_dir; `index` (1-based) and "
        "`ext` are available. Default: the slugged name, matrix values, index and extension.",
    )
    images: list[str] = Field(
        default_factory=list,
        max_length=16,
        description="Reference images (repo-relative paths); their presence makes the request an "
        "edit (/images/edits). Another target's output makes that target an upstream.",
    )
    mask: str | None = Field(default=None, description="Mask image (repo-relative) for an edit.")

    @field_validator("prompt")
    @classmethod
    def _prompt_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("prompt is empty; write what the image should show")
        return value

    @field_validator("vars")
    @classmethod
    def _vars_are_names(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key in value:
            if not str(key).isidentifier():
                raise ValueError(f"variable name {key!r} is not a valid identifier")
        return value


@dataclass(frozen=True)
class LoadedManifest:
    """A validated manifest and where it came from."""

    manifest: Manifest
    document: Document
    default_name: str

    @property
    def file(self) -> str:
        return self.document.file

    def location(self, *key: str | int) -> Any:
        return self.document.location(key)


def manifest_schema() -> dict[str, Any]:
    """The JSON Schema of a manifest, as `promptform schema` prints it."""
    return Manifest.model_json_schema()


def schema_text() -> str:
    return json.dumps(manifest_schema(), indent=2, sort_keys=True) + "\n"


def load_manifest_file(path: Path, prompts_dir: Path, shown: str) -> list[LoadedManifest]:
    """Parse and validate every document of one manifest file."""
    return load_manifest_text(read_text(path, shown), manifest_stem(path, prompts_dir), shown)


def load_manifest_text(text: str, stem: str, shown: str) -> list[LoadedManifest]:
    """Parse and validate every document of the text of one manifest file."""
    documents = load_documents(text, shown)
    loaded, problems = [], []
    for document in documents:
        try:
            loaded.append(LoadedManifest(parse_manifest(document), document, stem))
        except PromptformError as exc:
            problems.append(exc)
    if problems:
        raise ErrorGroup(problems)
    return loaded


def parse_manifest(document: Document) -> Manifest:
    if not isinstance(document.data, dict):
        raise ManifestError(
            "a manifest must be a mapping of fields (prompt:, model:, ...)", document.location()
        )
    try:
        return Manifest.model_validate(document.data)
    except ValidationError as exc:
        raise ErrorGroup(
            ManifestError(
                _unindented_axis(document, error)
                or describe_validation_error(error, "the manifest", _known_fields),
                document.location(_key(error["loc"])),
            )
            for error in _collapse_scalar_unions(exc.errors())
        ) from None


def _unindented_axis(document: Document, error: Any) -> str | None:
    """The message for a matrix axis written at the manifest's top level, or None.

    `time: [day, night]` under `matrix:` but not indented is a field of the manifest to YAML, so
    the field's name alone would suggest an unrelated field instead of the indentation.
    """
    loc = tuple(error["loc"])
    if error["type"] != "extra_forbidden" or len(loc) != 1 or "matrix" not in document.data:
        return None
    field = str(loc[0])
    below_matrix = document.location((field,)).line or 0
    if not isinstance(document.data[field], list) or below_matrix < (
        document.location(("matrix",)).line or 0
    ):
        return None
    return (
        f"unknown field '{field}' in the manifest; it looks like a matrix axis that is not "
        f"indented under `matrix:`: indent the line (e.g. two spaces before `{field}:`)"
    )


_SCALAR_MEMBERS = ("str", "int", "float", "bool")


def _collapse_scalar_unions(errors: list[Any]) -> list[Any]:
    """One error for a value that fits no member of `str | int | float | bool`, not one per member."""
    collapsed: list[Any] = []
    seen: set[tuple[Any, ...]] = set()
    for error in errors:
        loc = tuple(error["loc"])
        if loc and loc[-1] in _SCALAR_MEMBERS and error["type"].endswith(("_type", "_parsing")):
            if loc[:-1] in seen:
                continue
            seen.add(loc[:-1])
            error = {
                **error,
                "loc": loc[:-1],
                "type": "scalar_type",
                "msg": "Input should be a string, a number or true/false",
            }
        collapsed.append(error)
    return collapsed


def _key(loc: tuple[Any, ...]) -> Key:
    return tuple(part for part in loc if isinstance(part, str | int))


def _known_fields(section: tuple[str | int, ...]) -> list[str]:
    if not section:
        return list(Manifest.model_fields)
    if section == ("matrix",):
        return ["include", "exclude"]
    return []
