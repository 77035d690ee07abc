"""promptform.lock: what was generated, per address. Reading, writing, and nothing else.

Layout (version 2): `promptform.lock/` is a directory of shards, one per manifest file; the entries
of targets rendered from `prompts/marketing/hero.yaml` are in `promptform.lock/marketing/hero.yaml.json`
(entries no manifest declares any more, until apply deletes them, in `no-manifest.json`). Two
branches that generate images for different manifest files therefore change different files, and
git merges them without a conflict. Version 1 is the single file this replaces: still read, and
converted by the next apply (lock_migration.py).

Each shard: `{"targets": {ADDRESS: ENTRY}, "version": 2}`, sorted keys, 2-space indent, LF, trailing
newline, no absolute paths, base URLs or secrets: identical bytes on every machine, and an entry's
lines change only when that entry is regenerated. Writes are atomic; a corrupt shard or one from a
newer promptform is an error and is never overwritten.
"""

from __future__ import annotations

import hashlib
import json
import math
import operator
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import MISSING, Field, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, TypeVar

from promptform.core.atomic import atomic_write
from promptform.core.constraints import FieldRule, Ge, Le
from promptform.core.errors import Location, LockfileError
from promptform.core.gc_pause import gc_paused
from promptform.core.paths import relative_path_problem
from promptform.core.validation_messages import model_worded

if TYPE_CHECKING:
    from pydantic import TypeAdapter

LOCK_VERSION = 2  # a directory of shards, one per manifest file
LEGACY_LOCK_VERSION = 1  # one file holding every entry
SHARD_SUFFIX = ".json"
# Entries whose manifest file is unknown (their target was removed before the lock was split).
# A manifest's shard always ends in .yaml.json or .yml.json, so this name is never one of theirs.
NO_MANIFEST_SHARD = "no-manifest"
BACKUP_SUFFIX = ".v1-backup"  # the single file, while a migration replaces it by the directory


class _Frozen:
    """The base of the lock's types: frozen standard-library dataclasses, keyword arguments only.

    They are plain dataclasses, not pydantic models, so that reading a lock promptform wrote needs no
    pydantic at all (importing it costs more than a no-op plan's whole work). Pydantic reads the
    same declarations (`__pydantic_config__`, the `Annotated` constraints) when a lock has to be
    validated.
    """

    __pydantic_config__: ClassVar[dict[str, Any]] = {"extra": "forbid"}


def _relative_path(value: str, _earlier: dict[str, Any]) -> str:
    # A lockfile arrives in pull requests too: its paths must not lead out of the project.
    problem = relative_path_problem(value)
    if problem:
        raise ValueError(f"path {value!r} {problem}")
    return value


SafePath = Annotated[str, FieldRule(_relative_path)]


@dataclass(frozen=True, kw_only=True)
class LockedOutput(_Frozen):
    path: SafePath  # relative to outputs_dir, POSIX separators
    sha256: str
    bytes: int
    format: str
    width: int | None = None
    height: int | None = None


@dataclass(frozen=True, kw_only=True)
class LockedInput(_Frozen):
    role: str
    path: SafePath
    sha256: str


@dataclass(frozen=True, kw_only=True)
class ProviderRef(_Frozen):
    kind: str
    name: str


def generated_at(now: datetime | None = None) -> str:
    """The `generated_at` of an entry made now: UTC, to the second, ISO-8601."""
    return (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, kw_only=True)
class LockEntry(_Frozen):
    fingerprint: str
    request: dict[str, Any]  # the request body sent, without secrets
    endpoint: str = "images/generations"
    inputs: list[LockedInput] = field(default_factory=list)
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


@dataclass(frozen=True, kw_only=True)
class Lockfile(_Frozen):
    # The versions this promptform reads (a shard must be LOCK_VERSION): anything older is a damaged
    # file, a newer one is refused with an upgrade hint before validation.
    version: Annotated[int, Ge(LEGACY_LOCK_VERSION), Le(LOCK_VERSION)] = LOCK_VERSION
    targets: dict[str, LockEntry] = field(default_factory=dict)

    def with_entry(self, address: str, entry: LockEntry) -> Lockfile:
        return Lockfile(version=self.version, targets={**self.targets, address: entry})

    def without(self, address: str) -> Lockfile:
        targets = {key: value for key, value in self.targets.items() if key != address}
        return Lockfile(version=self.version, targets=targets)


def entry_json(entry: LockEntry) -> dict[str, Any]:
    """The entry as the lock holds it: JSON values only, no `batch_id` unless it has one."""
    data: dict[str, Any] = {
        "fingerprint": entry.fingerprint,
        "request": _json_value(entry.request),
        "endpoint": entry.endpoint,
        "inputs": [_input_json(item) for item in entry.inputs],
        "outputs": [_output_json(output) for output in entry.outputs],
        "provider": {"kind": entry.provider.kind, "name": entry.provider.name},
        "model": entry.model,
        "generated_at": entry.generated_at,
        "source_commit": entry.source_commit,
        "revised_prompt": entry.revised_prompt,
        "usage": _json_value(entry.usage),
        # A float field: a price computed as an integer is still written as 2.0.
        "cost_usd": None if entry.cost_usd is None else _json_value(float(entry.cost_usd)),
    }
    if entry.batch_id is not None:  # _WRITTEN_ONLY_WHEN_SET
        data["batch_id"] = entry.batch_id
    return data


def _json_value(value: Any) -> Any:
    """`value` as the lock writes it, as pydantic's JSON mode did when the entries were its models:
    infinities and NaN (which YAML may put in a request) as null, tuples as lists."""
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if kind is float:
        return value if math.isfinite(value) else None
    if kind is dict:
        return {key: _json_value(item) for key, item in value.items()}
    if kind is list or kind is tuple:
        return [_json_value(item) for item in value]
    # Rarer values (a YAML date, bytes): pydantic's own conversion, so the bytes stay the same.
    from pydantic_core import to_jsonable_python

    return _json_value(to_jsonable_python(value))


# What entry_json leaves out when None (the readers expect entries without them).
_WRITTEN_ONLY_WHEN_SET = frozenset({"batch_id"})


def _input_json(item: LockedInput) -> dict[str, Any]:
    return {"role": item.role, "path": item.path, "sha256": item.sha256}


def _output_json(output: LockedOutput) -> dict[str, Any]:
    return {
        "path": output.path,
        "sha256": output.sha256,
        "bytes": output.bytes,
        "format": output.format,
        "width": output.width,
        "height": output.height,
    }


def lockfile_json(lockfile: Lockfile) -> dict[str, Any]:
    targets = {address: entry_json(entry) for address, entry in lockfile.targets.items()}
    return {"version": lockfile.version, "targets": targets}


def dumps(lockfile: Lockfile) -> str:
    return json.dumps(lockfile_json(lockfile), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def loads(text: str, shown: str) -> Lockfile:
    # Fast path: a lock promptform wrote holds every field in its declared type and is built as it
    # is (`_as_written`). Anything else (hand edits, damage) goes through pydantic: its coercions
    # and its messages stay exactly those of a validated read. Whatever the lock's size: pydantic
    # validates faster than Python builds, but importing it and building its validators costs more
    # than building 10,000 entries.
    try:
        lockfile = _as_written(json.loads(text))
    except (ValueError, RecursionError):  # not JSON, or too deep for json: the slow path says why
        lockfile = None
    return lockfile if lockfile is not None else loads_validated(text, shown)


def loads_validated(text: str, shown: str) -> Lockfile:
    """`loads` through pydantic's validators only (what `loads` must always agree with)."""
    from pydantic import ValidationError

    # pydantic parses and validates the JSON in one pass; anything it rejects is parsed again
    # slowly for a precise message.
    try:
        lockfile = validator(Lockfile).validate_json(text)
    except ValidationError:
        return _loads_explaining(text, shown)
    if lockfile.version > LOCK_VERSION:
        return _loads_explaining(text, shown)
    return lockfile


_Validated = TypeVar("_Validated", Lockfile, LockEntry)


_VALIDATORS: dict[type[Any], Any] = {}


def validator(lock_type: type[_Validated]) -> TypeAdapter[_Validated]:
    """Pydantic's validator of a lock type, built on first use: most commands never need one."""
    found: TypeAdapter[_Validated] | None = _VALIDATORS.get(lock_type)
    if found is None:
        from pydantic import TypeAdapter

        # Two threads may both build it: the same validator either way, so no lock is needed.
        found = _VALIDATORS[lock_type] = TypeAdapter(lock_type)
    return found


def _loads_explaining(text: str, shown: str) -> Lockfile:
    from pydantic import ValidationError

    fix = f"restore it from git (`git checkout -- {shown}`) or resolve the merge conflict"
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LockfileError(
            f"corrupt lockfile: {exc.msg}; {fix}", Location(shown, exc.lineno, exc.colno)
        ) from None
    except RecursionError:
        raise LockfileError(
            f"corrupt lockfile: nested too deeply to read; {fix}", Location(shown, 1)
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
        return validator(Lockfile).validate_python(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        message = model_worded(error).removeprefix("Value error, ")
        raise LockfileError(
            f"corrupt lockfile: {where}: {message}; restore it from git", Location(shown)
        ) from None


# How `_as_written` takes a JSON value as a field's value: the exact types it may have, or a function
# returning the value the model holds (_REJECTED when pydantic would have to convert or refuse it).
_Check = tuple[type, ...] | Callable[[Any], Any]
_REJECTED = object()
_set_attribute = object.__setattr__
_new = object.__new__


def _as_written(data: Any) -> Lockfile | None:
    """The lock in parsed JSON `data` built without validation, or None unless every value already
    has its field's exact type and passes its validator's checks. Builds in place: `data` is used
    up (the instances hold its objects), and may be left half-converted when the answer is None."""
    lockfile = _lockfile(data)
    return None if lockfile is _REJECTED else lockfile


def _safe_path(value: Any) -> Any:
    # SafePath's check: a lock from a pull request must not lead out of the project.
    if type(value) is str and relative_path_problem(value) is None:
        return value
    return _REJECTED


def _optional_finite_float(value: Any) -> Any:
    ok = value is None or (type(value) is float and math.isfinite(value))
    return value if ok else _REJECTED


def _lock_version(value: Any) -> Any:
    ok = type(value) is int and LEGACY_LOCK_VERSION <= value <= LOCK_VERSION
    return value if ok else _REJECTED


def _list_of(check: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def checked(value: Any) -> Any:
        if type(value) is not list:
            return _REJECTED
        for index, item in enumerate(value):
            value[index] = built = check(item)
            if built is _REJECTED:
                return _REJECTED
        return value

    return checked


def _dict_of(check: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def checked(value: Any) -> Any:
        if type(value) is not dict:
            return _REJECTED
        for key, item in value.items():
            value[key] = built = check(item)  # a new value for a key: iteration goes on
            if built is _REJECTED:
                return _REJECTED
        return value

    return checked


def _model(model: type[_Frozen], checks: Mapping[str, _Check]) -> Callable[[Any], Any]:
    """`model` from a JSON object with no unknown key, absent fields getting their defaults.

    The object itself becomes the instance's `__dict__` (its keys in the file's order, sorted, where
    validation's follow the declaration: nothing reads them in order), its values replaced by what
    their checks built, so the parsed JSON is not copied.
    """
    declared = fields(model)  # type: ignore[arg-type]  # every _Frozen is a dataclass
    names = dict.fromkeys(item.name for item in declared).keys()
    # A field without a check would take any JSON value: every field must be checked here.
    assert names == checks.keys(), f"{model.__name__}: no fast check for {names ^ checks.keys()}"
    assert len(names) > 1, "itemgetter of one name gives the value, not a tuple"
    in_order = operator.itemgetter(*names)
    # The fields dumps() leaves out when None: without them, the object is as written too.
    unwritten = {name: None for name in names if name in _WRITTEN_ONLY_WHEN_SET}
    written = dict.fromkeys(name for name in names if name not in unwritten).keys()
    accepted, accepts = _typed_kinds([checks[name] for name in names])
    # Defaults pass their field's check: a value filled in is checked like one given.
    converted = [(name, check) for name, check in checks.items() if not isinstance(check, tuple)]

    def checked(value: Any) -> Any:
        if type(value) is not dict:
            return _REJECTED
        keys = value.keys()
        if keys != names:
            if keys == written:
                value.update(unwritten)
            elif _fill_defaults(value, declared) is _REJECTED:
                return _REJECTED
        kinds = tuple(map(type, in_order(value)))
        if kinds not in accepted and not accepts(kinds):
            return _REJECTED
        for name, convert in converted:
            value[name] = built = convert(value[name])
            if built is _REJECTED:
                return _REJECTED
        # What validation leaves (it sets __dict__ too), without calling __init__ field by field.
        instance = _new(model)
        _set_attribute(instance, "__dict__", value)
        return instance

    return checked


def _typed_kinds(
    checks: list[_Check],
) -> tuple[set[tuple[type, ...]], Callable[[tuple[type, ...]], bool]]:
    """The combinations of value types (one per field, in the order of `checks`) seen to be those
    the fields with exact types accept, and whether a new one is (then added): objects after the
    first with a combination are checked by one set lookup."""
    accepted: set[tuple[type, ...]] = set()  # a few: a JSON value has one of seven types
    allowed = [(index, check) for index, check in enumerate(checks) if isinstance(check, tuple)]

    def accepts(kinds: tuple[type, ...]) -> bool:
        if all(kinds[index] in types for index, types in allowed):
            accepted.add(kinds)
            return True
        return False

    return accepted, accepts


def _fill_defaults(value: dict[str, Any], declared: tuple[Field[Any], ...]) -> object:
    """Give the JSON object `value` the defaults of the fields it lacks; _REJECTED for an unknown
    key or a missing required field."""
    if not value.keys() <= {item.name for item in declared}:
        return _REJECTED
    for item in declared:
        if item.name in value:
            continue
        if item.default is not MISSING:
            value[item.name] = item.default
        elif item.default_factory is not MISSING:
            value[item.name] = item.default_factory()
        else:
            return _REJECTED
    return value


_STRING, _INTEGER, _OBJECT = (str,), (int,), (dict,)  # dict[str, Any]: JSON keys are strings
_lock_entry = _model(
    LockEntry,
    {
        "fingerprint": _STRING,
        "request": _OBJECT,
        "endpoint": _STRING,
        "inputs": _list_of(
            _model(LockedInput, {"role": _STRING, "path": _safe_path, "sha256": _STRING})
        ),
        "outputs": _list_of(
            _model(
                LockedOutput,
                {
                    "path": _safe_path,
                    "sha256": _STRING,
                    "bytes": _INTEGER,
                    "format": _STRING,
                    "width": (int, type(None)),
                    "height": (int, type(None)),
                },
            )
        ),
        "provider": _model(ProviderRef, {"kind": _STRING, "name": _STRING}),
        "model": _STRING,
        "generated_at": _STRING,
        "source_commit": (str, type(None)),
        "revised_prompt": (str, type(None)),
        "usage": (dict, type(None)),
        "cost_usd": _optional_finite_float,
        "batch_id": (str, type(None)),
    },
)
_lockfile = _model(Lockfile, {"version": _lock_version, "targets": _dict_of(_lock_entry)})


def writable_text(entry: LockEntry) -> str:
    """The entry as the lock writes it (json.dumps, indent 2), once it is sure the lock can hold
    it; ValueError otherwise, before any file changes.

    The lock's types are plain dataclasses, so building one checks nothing: a value from an API
    (text UTF-8 cannot hold, nesting deeper than JSON encoders go) or a bug would otherwise fail
    the write, or make the next read refuse the whole shard."""
    try:
        text = json.dumps(entry_json(entry), indent=2, sort_keys=True, ensure_ascii=False)
        text.encode("utf-8")
    except (TypeError, ValueError, RecursionError) as exc:
        raise ValueError(f"the lock cannot hold this entry: {exc}") from None
    refuse_unreadable(text)
    return text


def refuse_unreadable(entry_text: str) -> None:
    """Raise (pydantic's ValidationError, a ValueError) when `entry_text`, an entry as the lock
    writes it, would make the lock unreadable.

    The lock's types are plain dataclasses: building one checks nothing, so an entry built from a
    wrong value would be written as it is and the next read would refuse the whole shard. The
    writer checks each entry before it touches a file; one the fast reader takes costs one parse.
    """
    if _lock_entry(json.loads(entry_text)) is _REJECTED:
        try:
            validator(LockEntry).validate_json(entry_text)
        except RecursionError:  # validation recurses too; the message is the same either way
            raise ValueError("the lock cannot hold this entry: nested too deeply") from None


Layout = Literal["absent", "shards", "single", "backup"]


@dataclass(frozen=True)
class LockState:
    """Every entry of the lock, and the shard (or shards, all with identical entries) holding each."""

    lockfile: Lockfile
    shards: Mapping[str, tuple[str, ...]]  # address -> shard names, e.g. ("marketing/hero.yaml",)
    layout: Layout  # single and backup: version 1, not migrated yet (backup: migration cut short)
    hash: str = "absent"  # of the bytes parsed (see `lockfile_hash`): saved plans pin it


def backup_path(path: Path) -> Path:
    return path.with_name(path.name + BACKUP_SUFFIX)


def shard_path(path: Path, shard: str) -> Path:
    """The file of `shard` in the lock directory `path`, to write or delete.

    The directory comes from pull requests too: a symlink in it (or the directory being one) must
    not make apply write or delete a file elsewhere.
    """
    file = path / (shard + SHARD_SUFFIX)
    if path.is_symlink() or not file.parent.resolve().is_relative_to(path.resolve()):
        raise LockfileError(
            f"{path.name}/{shard}{SHARD_SUFFIX} leads outside {path.name}/ through a symlink; "
            f"make {path.name} a real directory of files (restore it from git)",
            Location(path.name),
        )
    return file


def shard_name(manifest_file: str, prompts_dir: str) -> str:
    """The shard of a manifest file: its path under prompts_dir (both as shown, POSIX)."""
    if prompts_dir in ("", "."):
        return manifest_file
    return PurePosixPath(manifest_file).relative_to(prompts_dir).as_posix()


def shards_of(targets: Iterable[tuple[str, str]], prompts_dir: str) -> dict[str, str]:
    """address -> shard for (address, manifest file as shown) pairs, e.g. current targets."""
    names: dict[str, str] = {}  # a manifest file declares many targets: compute its name once
    return {
        address: names.get(file) or names.setdefault(file, shard_name(file, prompts_dir))
        for address, file in targets
    }


def read_lockfile(path: Path, shown: str | None = None) -> Lockfile:
    """Every entry of the lock at `path`, in either layout; empty when there is none yet."""
    return read_lock_state(path, shown).lockfile


def read_lock_state(path: Path, shown: str | None = None) -> LockState:
    """The lock at `path` and where each entry is: the shard directory, the single file of version
    1, or that file's backup when a migration stopped after renaming it."""
    shown = shown or path.name
    if path.is_dir():
        return lock_from_shards(_shard_files(path), shown)
    backup = backup_path(path)
    if not path.exists() and backup.is_file():
        return _single(_read_bytes(backup), shown + BACKUP_SUFFIX, "backup")
    raw = _read_bytes(path)
    return _single(raw, shown, "single") if raw is not None else _EMPTY


def lock_from_files(files: Mapping[str, bytes] | bytes | None, shown: str) -> LockState:
    """The lock from what git holds at its path: a blob (version 1), the blobs of a tree by their
    path inside it (version 2), or nothing."""
    if files is None:
        return _EMPTY
    if isinstance(files, bytes):
        return _single(files, shown, "single")
    shards = {
        name.removesuffix(SHARD_SUFFIX): data
        for name, data in files.items()
        if name.endswith(SHARD_SUFFIX)
    }
    return lock_from_shards(shards, shown)


def lock_from_shards(shards: Mapping[str, bytes], shown: str) -> LockState:
    """Every shard's entries in one lock; an address in two shards must have identical entries
    there (what a crash between writing one shard and cleaning the other leaves)."""
    targets: dict[str, LockEntry] = {}
    where: dict[str, tuple[str, ...]] = {}
    with gc_paused():
        for name in sorted(shards):
            shard_shown = f"{shown}/{name}{SHARD_SUFFIX}"
            for address, entry in _parse_shard(shards[name], shard_shown).targets.items():
                found = where.get(address)
                if found is None:
                    targets[address] = entry
                    where[address] = (name,)
                elif targets[address] == entry:
                    where[address] = (*found, name)
                else:
                    raise _recorded_twice(address, f"{shown}/{found[0]}{SHARD_SUFFIX}", shard_shown)
    lockfile = Lockfile(targets=targets)
    return LockState(lockfile, where, "shards", _shards_hash(shards))


def _recorded_twice(address: str, first: str, second: str) -> LockfileError:
    return LockfileError(
        f"`{address}` is recorded differently in {first} and {second}; keep the entry in the "
        "shard of the manifest file that declares it, delete it from the other file "
        "(or restore both from git), then run `promptform plan`",
        Location(second),
    )


def _parse_shard(raw: bytes, shown: str) -> Lockfile:
    shard = _parse(raw, shown)
    if shard.version != LOCK_VERSION:
        raise LockfileError(
            f"corrupt lockfile: a shard must be version {LOCK_VERSION}, this one says "
            f"{shard.version}; restore it from git (`git checkout -- {shown}`)",
            Location(shown, 1),
        )
    return shard


def _single(raw: bytes | None, shown: str, layout: Layout) -> LockState:
    if raw is None:
        return _EMPTY
    with gc_paused():
        lockfile = _parse(raw, shown)
    targets = dict.fromkeys(lockfile.targets, ())
    return LockState(lockfile, targets, layout, hashlib.sha256(raw).hexdigest())


def _parse(raw: bytes, shown: str) -> Lockfile:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise LockfileError("corrupt lockfile: not UTF-8", Location(shown)) from None
    return loads(text, shown)


def _read_bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def _shard_files(directory: Path) -> dict[str, bytes]:
    """Every shard in the lock directory by name; temp files of a write cut short are not shards."""
    found: dict[str, bytes] = {}
    # os.walk, not Path.rglob: a no-op plan on 10,000 targets lists a thousand shards.
    for folder, _, files in os.walk(directory):
        under = Path(folder)
        prefix = under.relative_to(directory).as_posix()
        for file in files:
            path = under / file
            if file.endswith(SHARD_SUFFIX) and path.is_file():
                name = file if prefix == "." else f"{prefix}/{file}"
                found[name.removesuffix(SHARD_SUFFIX)] = path.read_bytes()
    return found


_EMPTY = LockState(Lockfile(), {}, "absent")


def lockfile_hash(path: Path) -> str:
    """A hash of the whole lock ('absent' when there is none): saved plans pin it.

    For the directory it covers every shard's name and bytes; for the single file (or its backup,
    which holds the same bytes) it is the file's sha256.
    """
    if path.is_dir():
        return _shards_hash(_shard_files(path))
    for candidate in (path, backup_path(path)):
        data = _read_bytes(candidate)
        if data is not None:
            return hashlib.sha256(data).hexdigest()
    return "absent"


def _shards_hash(shards: Mapping[str, bytes]) -> str:
    digest = hashlib.sha256()
    for name in sorted(shards):
        digest.update(name.encode("utf-8") + b"\0" + hashlib.sha256(shards[name]).digest())
    return digest.hexdigest()


def shard_texts(lockfile: Lockfile, shards: Mapping[str, str]) -> dict[str, str]:
    """Each shard's bytes for `lockfile`; `shards` maps an address to its shard (NO_MANIFEST_SHARD
    when it has none)."""
    grouped: dict[str, dict[str, LockEntry]] = {}
    for address, entry in lockfile.targets.items():
        grouped.setdefault(shards.get(address, NO_MANIFEST_SHARD), {})[address] = entry
    return {name: dumps(Lockfile(targets=entries)) for name, entries in grouped.items()}


def write_lockfile(path: Path, lockfile: Lockfile, shards: Mapping[str, str] | None = None) -> None:
    """Replace the lock directory at `path` by `lockfile`, each address in its shard of `shards`
    (by default the shard holding it now). Shards left without entries are removed."""
    if shards is None:
        shards = {
            address: names[0] for address, names in read_lock_state(path).shards.items() if names
        }
    texts = shard_texts(lockfile, shards)
    for name, text in texts.items():
        atomic_write(shard_path(path, name), text.encode("utf-8"))
    path.mkdir(parents=True, exist_ok=True)
    remove_shards(path, set(_shard_files(path)) - texts.keys())


def remove_shards(path: Path, names: Iterable[str]) -> None:
    """Delete these shards of the lock directory `path`, and folders they leave empty."""
    for name in names:
        file = shard_path(path, name)
        file.unlink(missing_ok=True)
        folder = file.parent
        while folder != path and folder.is_relative_to(path):
            try:
                folder.rmdir()
            except OSError:  # not empty (another shard, or a file someone put there)
                break
            folder = folder.parent
