"""Project configuration: discovery, validation and the built-in defaults.

Looked for from the working directory upwards: `promptform.toml`, or `[tool.promptform]` in
`pyproject.toml`. Without either, a directory holding `prompts/` is the project with WisGate as
provider; any other directory is no project at all, and commands that read one refuse to run there.
"""

from __future__ import annotations

import re
import tomllib
import types
from dataclasses import MISSING, dataclass, field, fields, is_dataclass, replace
from functools import cache
from pathlib import Path, PurePosixPath
from typing import (
    TYPE_CHECKING,
    Annotated,
    Any,
    Literal,
    TypeVar,
    Union,
    get_args,
    get_origin,
    get_type_hints,
)

from promptform.core.constraints import Bound, FieldRule, Ge, Gt, Le
from promptform.core.errors import ConfigError, Location
from promptform.core.validation_messages import describe_validation_error

if TYPE_CHECKING:
    from _typeshed import DataclassInstance
    from pydantic import TypeAdapter

CONFIG_FILE = "promptform.toml"
PYPROJECT_FILE = "pyproject.toml"
WISGATE_BASE_URL = "https://api.wisgate.ai/v1"
DEFAULT_MODEL = "gpt-image-2"

# The config types are plain dataclasses, so that loading a well-formed config (_well_formed)
# imports no pydantic: importing it costs more than the rest of a no-op plan's start-up. Anything
# else is validated by a pydantic TypeAdapter built on first use; it reads the same annotations.
_FORBID_EXTRA = {"extra": "forbid"}


def _inside_project(value: str, _earlier: dict[str, Any]) -> str:
    # apply writes under outputs_dir and the lockfile: a reviewed config must not aim elsewhere.
    path = Path(value)
    if not value or path.is_absolute() or ".." in path.parts or "\\" in value:
        raise ValueError("must be a relative path inside the project, without '..'")
    # One spelling: outputs are matched against reference images as `outputs_dir/path`.
    return PurePosixPath(value).as_posix()


def _outputs_apart(value: str, earlier: dict[str, Any]) -> str:
    # apply replaces and gc collects files under outputs_dir: it must hold nothing else.
    if value == ".":
        raise ValueError(
            "must be a folder of its own, not the project root (apply and gc manage every file in it)"
        )
    shared = [
        name
        for name in ("prompts_dir", "templates_dir")
        if _overlap(value, str(earlier.get(name, "")))
    ]
    if shared:
        raise ValueError(
            f"must be a folder apart from {' and '.join(shared)} (apply and gc manage every "
            "file in it)"
        )
    return value


def _overlap(one: str, other: str) -> bool:
    first, second = PurePosixPath(one), PurePosixPath(other)
    return bool(other) and (first == second or first in second.parents or second in first.parents)


# A setting apply writes under or reads from.
_ProjectPath = Annotated[str, FieldRule(_inside_project)]


@dataclass(frozen=True)
class ProjectSettings:
    __pydantic_config__ = _FORBID_EXTRA

    prompts_dir: _ProjectPath = "prompts"
    templates_dir: _ProjectPath = "templates"
    outputs_dir: Annotated[_ProjectPath, FieldRule(_outputs_apart)] = "generated"
    lockfile: _ProjectPath = "promptform.lock"
    default_provider: str = "wisgate"


@dataclass(frozen=True)
class Defaults:
    """Values used by every manifest that does not set the field itself."""

    __pydantic_config__ = _FORBID_EXTRA

    provider: str | None = None
    model: str = DEFAULT_MODEL
    size: str | None = "1024x1024"
    n: Annotated[int, Ge(1), Le(10)] = 1
    quality: str | None = None
    background: str | None = None
    output_format: Literal["png", "jpeg", "webp"] | None = None
    output_compression: Annotated[int, Ge(0), Le(100)] | None = None
    moderation: str | None = None
    vars: dict[str, Any] = field(default_factory=dict)


def _batch_needs_an_api(value: bool, earlier: dict[str, Any]) -> bool:
    if value and earlier.get("kind") == "offline":
        raise ValueError(
            "cannot be true for kind 'offline', which has no Batch API; remove `batch = true`"
        )
    return value


@dataclass(frozen=True)
class ProviderSettings:
    __pydantic_config__ = _FORBID_EXTRA

    kind: Literal["openai", "offline"]
    base_url: str | None = None
    api_key_env: str | None = None
    auth_header: Literal["authorization", "api-key"] = "authorization"
    concurrency: Annotated[int, Ge(1), Le(256)] = 4
    timeout_s: Annotated[float, Gt(0)] = 300.0
    max_retries: Annotated[int, Ge(0), Le(20)] = 5
    # The provider offers the Batch API.
    batch: Annotated[bool, FieldRule(_batch_needs_an_api)] = False


@dataclass(frozen=True)
class Budget:
    __pydantic_config__ = _FORBID_EXTRA

    max_images: Annotated[int, Ge(0)] | None = None
    max_cost: Annotated[float, Ge(0)] | None = None
    # Enforced with --base-config REF: everything generated on the branch since it forked from REF.
    max_images_per_pull_request: Annotated[int, Ge(0)] | None = None
    max_cost_per_pull_request: Annotated[float, Ge(0)] | None = None


@dataclass(frozen=True)
class Limits:
    """Sizes past which a project is refused before any work, so a manifest from a pull request
    cannot make plan or validate expand billions of cells."""

    __pydantic_config__ = _FORBID_EXTRA

    max_cells_per_manifest: Annotated[int, Ge(1)] = 10_000
    max_targets: Annotated[int, Ge(1)] = 100_000


@dataclass(frozen=True)
class _ConfigFile:
    __pydantic_config__ = _FORBID_EXTRA

    promptform: ProjectSettings = field(default_factory=ProjectSettings)
    defaults: Defaults = field(default_factory=Defaults)
    providers: dict[str, ProviderSettings] = field(default_factory=dict)
    pricing: dict[str, dict[str, float]] = field(default_factory=dict)
    budget: Budget = field(default_factory=Budget)
    limits: Limits = field(default_factory=Limits)


BUILTIN_PROVIDERS: dict[str, ProviderSettings] = {
    "wisgate": ProviderSettings(
        kind="openai", base_url=WISGATE_BASE_URL, api_key_env="WISGATE_API_KEY"
    ),
    "offline": ProviderSettings(kind="offline"),
}


@dataclass(frozen=True)
class Config:
    """The resolved configuration of one project."""

    root: Path
    source: Path | None
    project: ProjectSettings
    defaults: Defaults
    providers: dict[str, ProviderSettings]
    pricing: dict[str, dict[str, float]]
    budget: Budget
    limits: Limits = field(default_factory=Limits)
    forced_provider: str | None = None  # --provider NAME: every target uses it

    def with_provider(self, name: str | None) -> Config:
        """This config with every target sent to provider `name` (as `--provider` asks)."""
        if name is None:
            return self
        forced = replace(self, forced_provider=name)
        forced.provider(name)
        return forced

    @property
    def prompts_dir(self) -> Path:
        return self.root / self.project.prompts_dir

    @property
    def templates_dir(self) -> Path:
        return self.root / self.project.templates_dir

    @property
    def outputs_dir(self) -> Path:
        return self.root / self.project.outputs_dir

    @property
    def lockfile(self) -> Path:
        return self.root / self.project.lockfile

    @property
    def batches_dir(self) -> Path:
        """Committed batch submissions waiting for collection, one file each, beside the lockfile."""
        lockfile = PurePosixPath(self.project.lockfile)
        return self.root / lockfile.parent / f"{lockfile.stem}.batches"

    @property
    def state_dir(self) -> Path:
        """Local, untracked state (stat cache, apply lock)."""
        return self.root / ".promptform"

    def provider(self, name: str | None) -> tuple[str, ProviderSettings]:
        """The provider called `name` (`default` or None: the project's default provider)."""
        if self.forced_provider is not None:
            name = self.forced_provider
        chosen = self.defaults.provider if name in (None, "default") else name
        chosen = chosen if chosen not in (None, "default") else self.project.default_provider
        assert chosen is not None
        try:
            return chosen, self.providers[chosen]
        except KeyError:
            known = ", ".join(sorted(self.providers))
            raise ConfigError(
                f"unknown provider '{chosen}'; known providers: {known} "
                f"(add [providers.{chosen}] to {CONFIG_FILE})"
            ) from None


def find_config(start: Path) -> Path | None:
    """The nearest promptform.toml, or pyproject.toml with [tool.promptform], at or above `start`."""
    for directory in (start, *start.parents):
        candidate = directory / CONFIG_FILE
        if candidate.is_file():
            return candidate
        pyproject = directory / PYPROJECT_FILE
        if pyproject.is_file() and _has_tool_table(pyproject):
            return pyproject
    return None


def load_config(start: Path, explicit: Path | None = None, require_project: bool = False) -> Config:
    """Resolve the configuration for a run started in `start` (or from the file given by --config).

    With `require_project`, a directory that is no project (no config found, no prompts/) is an
    error: commands run there by mistake would otherwise report an empty project as success.
    """
    start = start.resolve()
    if explicit is not None:
        path: Path | None = explicit.resolve()
        if not path.is_file():  # type: ignore[union-attr]
            raise ConfigError(f"config file not found: {explicit}")
    else:
        path = find_config(start)
    if path is None:
        if require_project and not (start / ProjectSettings().prompts_dir).is_dir():
            raise ConfigError(
                f"no promptform project in {start}: no {CONFIG_FILE} (or [tool.promptform] in "
                f"{PYPROJECT_FILE}) here or in a folder above, and no prompts/ folder; run "
                "`promptform init` to start one here, or `promptform -C DIR ...` to work in the "
                "project in DIR"
            )
        return _resolve(start, None, _well_formed(_ConfigFile, {}) or _ConfigFile())
    text, table = _read_table(path)
    parsed = _validated(table, text, path.name, path.name)
    return _resolve(path.parent, path, parsed, text)


def config_from_text(text: str, file_name: str, shown: str, root: Path) -> Config | None:
    """The configuration in `text`, the content of a config file called `file_name` read from
    somewhere other than the working tree (a commit); problems are reported in `shown`.

    None for a pyproject.toml without [tool.promptform]: that file configures no project.
    """
    table = _parse_table(text, file_name, shown)
    if table is None:
        return None
    return _resolve(root, None, _validated(table, text, file_name, shown), text, shown)


def config_line(config: Config, *keys: str) -> Location | None:
    """Where the key `keys` (e.g. "providers", "wisgate", "base_url") is in the config file."""
    if config.source is None:
        return None
    try:
        text = config.source.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return Location(config.source.name)
    return Location(config.source.name, _line_of(text, keys))


def _validated(table: dict[str, Any], text: str, file_name: str, shown: str) -> _ConfigFile:
    well_formed = _well_formed(_ConfigFile, table)
    if well_formed is not None:
        return well_formed
    from pydantic import ValidationError

    try:
        return _config_file_validator().validate_python(table)
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = tuple(str(part) for part in error["loc"])
        prefix = ("tool", "promptform") if file_name == PYPROJECT_FILE else ()
        section = ".".join(prefix + loc[:-1])
        raise ConfigError(
            describe_validation_error(error, f"[{section}]" if section else "the config", _known),
            Location(shown, _line_of(text, loc)),
        ) from None


@cache
def _config_file_validator() -> TypeAdapter[_ConfigFile]:
    """Built on first use: a well-formed config file never needs it."""
    from pydantic import TypeAdapter

    return TypeAdapter(_ConfigFile)


_Dataclass = TypeVar("_Dataclass", bound="DataclassInstance")


class _NeedsValidation(Exception):
    """A value _well_formed cannot vouch for: pydantic decides, with its own messages."""


def _well_formed(model: type[_Dataclass], data: Any) -> _Dataclass | None:
    """`data` as `model`, without pydantic, when validation could only accept it as it is: every
    key a field, every value of exactly its field's type, within its bounds and passing its rules.

    None for anything else (a coercion, an unknown key, a value out of bounds...): validation then
    accepts or refuses it, so error messages and coercions stay pydantic's own.
    """
    try:
        return _construct(model, data)
    except (_NeedsValidation, ValueError):
        return None


@cache
def _field_types(model: type[DataclassInstance]) -> dict[str, Any]:
    """Each field's annotation, `Annotated` metadata included, resolved once per model."""
    return get_type_hints(model, include_extras=True)


def _construct(model: type[_Dataclass], data: Any) -> _Dataclass:
    annotations = _field_types(model)
    if not isinstance(data, dict) or data.keys() - annotations:
        raise _NeedsValidation
    values: dict[str, Any] = {}
    for spec in fields(model):
        name = spec.name
        if name in data:
            values[name] = _checked_value(annotations[name], data[name], values)
        elif spec.default is not MISSING:
            values[name] = spec.default
        elif spec.default_factory is not MISSING:
            # Later rules see the defaults, as pydantic's see them in `info.data`.
            values[name] = spec.default_factory()
        else:
            raise _NeedsValidation  # a required field is missing
    return model(**values)


def _checked_value(annotation: Any, value: Any, earlier: dict[str, Any]) -> Any:
    """`value` as validation would return it for `annotation`, when that leaves it unchanged.

    `earlier` holds the fields before it in its dataclass, for a FieldRule to look at.
    """
    origin, args = get_origin(annotation), get_args(annotation)
    if annotation is Any:
        return value
    if annotation in (str, int, bool) and type(value) is annotation:
        return value
    if annotation is float and type(value) in (int, float):
        return float(value)  # what validation makes of an int
    if is_dataclass(annotation) and isinstance(annotation, type):
        return _construct(annotation, value)
    if origin is Annotated:
        checked = _checked_value(args[0], value, earlier)
        for constraint in annotation.__metadata__:
            checked = _constrained(constraint, checked, earlier)
        return checked
    if origin is Literal and any(type(value) is type(arg) and value == arg for arg in args):
        return value
    if origin in (Union, types.UnionType) and len(args) == 2 and type(None) in args:
        arm = args[1] if args[0] is type(None) else args[0]
        return None if value is None else _checked_value(arm, value, earlier)
    if origin is dict and isinstance(value, dict):
        key_type, item_type = args
        return {
            _checked_value(key_type, key, {}): _checked_value(item_type, item, {})
            for key, item in value.items()
        }
    raise _NeedsValidation


def _constrained(constraint: Any, value: Any, earlier: dict[str, Any]) -> Any:
    """`value` after one item of a field's `Annotated` metadata, as pydantic would apply it."""
    if isinstance(constraint, FieldRule):
        return constraint.check(value, earlier)  # a ValueError: pydantic words the message
    if isinstance(constraint, Bound) and constraint.allows(value):
        return value
    raise _NeedsValidation


def _known(section: tuple[str | int, ...]) -> list[str]:
    """Valid keys of a config table, for did-you-mean suggestions."""
    tables: dict[str, type[DataclassInstance]] = {
        "promptform": ProjectSettings,
        "defaults": Defaults,
        "budget": Budget,
        "limits": Limits,
    }
    if not section:
        return _field_names(_ConfigFile)
    if section[0] == "providers" and len(section) == 2:
        return _field_names(ProviderSettings)
    model = tables.get(str(section[0])) if len(section) == 1 else None
    return _field_names(model) if model else []


def _field_names(model: type[DataclassInstance]) -> list[str]:
    return [spec.name for spec in fields(model)]


def _resolve(
    root: Path, source: Path | None, parsed: _ConfigFile, text: str = "", shown: str | None = None
) -> Config:
    # Shown relative to the project root (the config's directory), as manifests are.
    shown = shown or (source.name if source else None)

    def where(*loc: str) -> Location | None:
        return Location(shown, _line_of(text, loc)) if shown else None

    providers = {**BUILTIN_PROVIDERS, **parsed.providers}
    config = Config(
        root=root,
        source=source,
        project=parsed.promptform,
        defaults=parsed.defaults,
        providers=providers,
        pricing=parsed.pricing,
        budget=parsed.budget,
        limits=parsed.limits,
    )
    for name, provider in providers.items():
        if provider.kind == "openai" and not provider.base_url:
            raise ConfigError(
                f"[providers.{name}] needs base_url for kind 'openai'",
                where("providers", name, "base_url"),
            )
    for table, key, value in (
        ("promptform", "default_provider", config.project.default_provider),
        ("defaults", "provider", config.defaults.provider),
    ):
        try:
            config.provider(value)
        except ConfigError as exc:
            raise ConfigError(exc.message, where(table, key)) from None
    for model, prices in config.pricing.items():
        discount = prices.get("batch_discount")
        if discount is not None and not 0 <= discount <= 1:
            raise ConfigError(
                f'[pricing."{model}"] batch_discount must be a share between 0 and 1 (0.5: half '
                f"price), not {discount:g}",
                where("pricing", model, "batch_discount"),
            )
    return config


def _read_table(path: Path) -> tuple[str, dict[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError("not valid UTF-8; save the file as UTF-8", Location(path.name)) from None
    table = _parse_table(text, path.name, path.name)
    return text, {} if table is None else table


def _parse_table(text: str, file_name: str, shown: str) -> dict[str, Any] | None:
    """The promptform tables of a config file's text; None for a pyproject.toml without them."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
        message = re.sub(r"\s*\(at line.*\)", "", str(exc))
        line, column = (int(match[1]), int(match[2])) if match else (None, None)
        raise ConfigError(f"invalid TOML: {message}", Location(shown, line, column)) from None
    except RecursionError:  # tomllib recurses into nested arrays and tables without a limit
        raise ConfigError(
            "invalid TOML: nested too deeply to read; flatten the value", Location(shown)
        ) from None
    if file_name == PYPROJECT_FILE:
        # Not a table at all is reported by validation, as for any other bad value.
        return _tool_table(data)  # type: ignore[no-any-return]
    return data


def _has_tool_table(pyproject: Path) -> bool:
    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, RecursionError):
        return False
    return _tool_table(data) is not None


def _tool_table(data: dict[str, Any]) -> Any:
    """`[tool.promptform]` of a parsed pyproject.toml; None when absent (or `tool` is no table)."""
    tool = data.get("tool")
    return tool.get("promptform") if isinstance(tool, dict) else None


def _line_of(text: str, loc: tuple[str, ...]) -> int | None:
    """Best-effort line of a config key (TOML parsers keep no positions): `key =` in its table."""
    lines = text.splitlines()
    for split in range(len(loc) - 1, -1, -1):
        table, key = loc[:split], loc[split]
        start = _table_start(lines, table)
        if start is None:
            continue
        pattern = re.compile(r"^\s*" + re.escape(key) + r"\s*=")
        header = _table_start(lines, (*table, key))
        if header is not None:
            return header + 1
        for number in range(start, len(lines)):
            if number > start and lines[number].lstrip().startswith("["):
                break
            if pattern.match(lines[number]):
                return number + 1
        if split:
            return start + 1
    return None


def _table_start(lines: list[str], table: tuple[str, ...]) -> int | None:
    """0-based index of the `[table]` header (the file's start for the root table)."""
    if not table:
        return 0
    header = re.compile(
        r"^\s*\[\s*(tool\.promptform\.)?" + re.escape(".".join(table)) + r"\s*[\].]"
    )
    return next((number for number, line in enumerate(lines) if header.match(line)), None)
