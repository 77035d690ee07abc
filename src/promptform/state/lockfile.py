"""promptform.lock: what was generated, per address. Reading, writing, and nothing else.

Format: `{"version": 1, "targets": {ADDRESS: ENTRY}}`, sorted keys, 2-space indent, LF, trailing
newline, no absolute paths, base URLs or secrets: identical bytes on every machine, and an entry's
lines change only when that entry is regenerated. Writes are atomic; a corrupt lockfile or one from a
newer promptform is an error and is never overwritten.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    model_serializer,
)

from promptform.core.atomic import atomic_write
from promptform.core.errors import Location, LockfileError
from promptform.core.gc_pause import gc_paused
from promptform.core.paths import relative_path_problem

LOCK_VERSION = 1


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _relative_path(value: str) -> str:
    # A lockfile arrives in pull requests too: its paths must not lead out of the project.
    problem = relative_path_problem(value)
    if problem:
        raise ValueError(f"path {value!r} {problem}")
    return value


SafePath = Annotated[str, AfterValidator(_relative_path)]


class LockedOutput(_Frozen):
    path: SafePath = Field(description="Relative to outputs_dir, POSIX separators.")
    sha256: str
    bytes: int
    format: str
    width: int | None = None
    height: int | None = None


class LockedInput(_Frozen):
    role: str
    path: SafePath
    sha256: str


class ProviderRef(_Frozen):
    kind: str
    name: str


def generated_at(now: datetime | None = None) -> str:
    """The `generated_at` of an entry made now: UTC, to the second, ISO-8601."""
    return (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")


class LockEntry(_Frozen):
    fingerprint: str
    request: dict[str, Any] = Field(description="The request body sent, without secrets.")
    endpoint: str = "images/generations"
    inputs: list[LockedInput] = Field(default_factory=list)
    outputs: list[LockedOutput]
    provider: ProviderRef
    model: str
    generated_at: str
    source_commit: str | None = None
    revised_prompt: str | None = None
    usage: dict[str, Any] | None = None
    cost_usd: float | None = None
    # The Batch API batch the images came from (`batch collect`); absent for direct requests, so
    # entries generated before batches existed keep their bytes.
    batch_id: str | None = None

    @model_serializer(mode="wrap")
    def _without_absent_batch(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if data.get("batch_id") is None:
            data.pop("batch_id", None)
        return data


class Lockfile(_Frozen):
    # Only the version this promptform writes: an older number is a damaged file, a newer one is
    # refused with an upgrade hint before validation.
    version: int = Field(default=LOCK_VERSION, ge=LOCK_VERSION, le=LOCK_VERSION)
    targets: dict[str, LockEntry] = Field(default_factory=dict)

    def with_entry(self, address: str, entry: LockEntry) -> Lockfile:
        return Lockfile(version=self.version, targets={**self.targets, address: entry})

    def without(self, address: str) -> Lockfile:
        targets = {key: value for key, value in self.targets.items() if key != address}
        return Lockfile(version=self.version, targets=targets)


def dumps(lockfile: Lockfile) -> str:
    data = lockfile.model_dump(mode="json", exclude_none=False)
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def loads(text: str, shown: str) -> Lockfile:
    # Fast path: pydantic parses and validates the JSON in one pass (a 10,000-entry lockfile is read
    # on every plan). Anything it rejects is parsed again slowly for a precise message.
    try:
        lockfile = Lockfile.model_validate_json(text)
    except ValidationError:
        return _loads_explaining(text, shown)
    if lockfile.version > LOCK_VERSION:
        return _loads_explaining(text, shown)
    return lockfile


def _loads_explaining(text: str, shown: str) -> Lockfile:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LockfileError(
            f"corrupt lockfile: {exc.msg}; restore it from git (`git checkout -- {shown}`) "
            "or resolve the merge conflict",
            Location(shown, exc.lineno, exc.colno),
        ) from None
    if not isinstance(data, dict):
        raise LockfileError("corrupt lockfile: expected a JSON object", Location(shown, 1))
    version = data.get("version")
    if isinstance(version, int) and version > LOCK_VERSION:
        raise LockfileError(
            f"lockfile version {version} was written by a newer promptform; upgrade promptform "
            f"(this one reads version {LOCK_VERSION})",
            Location(shown, 1),
        )
    try:
        return Lockfile.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        raise LockfileError(
            f"corrupt lockfile: {where}: {str(error['msg']).removeprefix('Value error, ')}; restore it from git",
            Location(shown),
        ) from None


def read_lockfile(path: Path, shown: str | None = None) -> Lockfile:
    """The lockfile at `path`; an empty one when the file does not exist yet."""
    shown = shown or path.name
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return Lockfile()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise LockfileError("corrupt lockfile: not UTF-8", Location(shown)) from None
    with gc_paused():
        return loads(text, shown)


def lockfile_hash(path: Path) -> str:
    """sha256 of the lockfile's bytes ('absent' when there is none): saved plans pin this."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        return "absent"


def write_lockfile(path: Path, lockfile: Lockfile) -> None:
    atomic_write(path, dumps(lockfile).encode("utf-8"))
