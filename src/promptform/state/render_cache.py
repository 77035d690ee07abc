"""A local cache of what each manifest file expands to, so a plan skips unchanged manifests.

`.promptform/render-cache.json` (never committed) keeps, per manifest file, the targets and warnings
it expanded to. An entry holds while the file's bytes, the templates its renders loaded, the config
and promptform itself are unchanged; project.py checks reference images and output paths, which
depend on the filesystem rather than the inputs, again on every hit.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, fields, is_dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from promptform import __version__
from promptform.core.atomic import atomic_write
from promptform.core.config import Config
from promptform.core.errors import Location, ManifestError
from promptform.manifests.targets import InputImage, Target
from promptform.state.state_dir import ensure_state_dir

CACHE_FILE = "render-cache.json"
# Bump when the stored form of an entry, or what an entry depends on, changes.
CACHE_FORMAT = 1
_SHARED_LENGTH = 32  # strings up to this long in a request body are shared (one object)


@dataclass(frozen=True)
class CachedExpansion:
    """What one manifest file expanded to, and what that depended on."""

    content_sha256: str
    templates: dict[str, str | None]  # template name -> sha256 of its source; None: not found
    manifests: int  # documents in the file
    targets: list[Target]
    warnings: list[ManifestError]


class RenderCache:
    """Expansions of manifest files by path under prompts_dir, valid for one cache key."""

    def __init__(self, path: Path, key: str, stored: dict[str, Any]) -> None:
        self.path = path
        self.key = key
        self._stored = stored  # decoded only on a hit
        self._kept: dict[str, Any] = {}
        self._changed = False

    @classmethod
    def load(cls, config: Config) -> RenderCache:
        """The cache of this project; an empty one when it is missing, corrupt or from other inputs."""
        path = config.state_dir / CACHE_FILE
        key = cache_key(config)
        try:
            data = json.loads(path.read_bytes())
            stored = data["files"] if data["key"] == key else {}
            if not isinstance(stored, dict):
                stored = {}
        except (OSError, ValueError, KeyError, TypeError, RecursionError):
            stored = {}
        return cls(path, key, stored)

    def lookup(
        self, relative: str, content_sha256: str, template_digest: Callable[[str], str | None]
    ) -> CachedExpansion | None:
        """The stored expansion of the file, when its bytes and its templates are unchanged."""
        raw = self._stored.get(relative)
        try:
            if raw is None or raw["sha256"] != content_sha256:
                return None
            for name, digest in raw["templates"].items():
                if template_digest(name) != digest:
                    return None
            expansion = _decode(raw)
        except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError):
            return None  # an unreadable template, or a damaged entry: expand the file again
        self._kept[relative] = raw
        return expansion

    def store(self, relative: str, expansion: CachedExpansion) -> None:
        self._kept[relative] = _encode(expansion)
        self._changed = True

    def save(self) -> None:
        """Write the entries looked up or stored this run, when they differ from the file's."""
        if not self._changed and self._kept.keys() == self._stored.keys():
            return
        data = json.dumps({"key": self.key, "files": self._kept}, separators=(",", ":"))
        try:
            ensure_state_dir(self.path.parent)
            # Not durable: a cache lost in a crash is simply rebuilt.
            atomic_write(self.path, data.encode("utf-8"), durable=False)
        except OSError:
            return  # a read-only checkout just goes without


# The modules that loading a project imports: what an expansion can depend on. A test keeps this
# in step with the imports of project.py.
EXPANSION_MODULES = (
    "__init__",
    "core/__init__",
    "core/atomic",
    "core/constraints",
    "core/config",
    "core/errors",
    "core/fingerprint",
    "core/gc_pause",
    "core/model_rules",
    "core/paths",
    "core/validation_messages",
    "engine/__init__",
    "engine/project",
    "manifests/__init__",
    "manifests/addresses",
    "manifests/documents",
    "manifests/manifest",
    "manifests/manifest_files",
    "manifests/matrix",
    "manifests/output_paths",
    "manifests/render",
    "manifests/render_deadline",
    "manifests/request_body",
    "manifests/targets",
    "manifests/template_sources",
    "state/__init__",
    "state/render_cache",
    "state/state_dir",
)


def cache_key(config: Config) -> str:
    """What every entry depends on besides its own file and templates.

    The sizes and mtimes of the modules that expand manifests are part of it because an editable
    install changes the code without changing the version.
    """
    package = Path(__file__).parents[1]
    code = []
    for module in EXPANSION_MODULES:
        stat = (package / f"{module}.py").stat()
        code.append((module, stat.st_size, stat.st_mtime_ns))
    parts = [
        CACHE_FORMAT,
        __version__,
        code,
        _installed("jinja2"),
        _installed("yaml"),
        _installed("pydantic"),  # validates manifests
        _plain(config),
    ]
    # default=str: dates and times that TOML allows in [defaults] vars.
    return hashlib.sha256(json.dumps(parts, default=str).encode("utf-8")).hexdigest()


def _installed(package: str) -> tuple[str, int, int] | None:
    """Where `package` is installed, with its __init__'s size and mtime: installing another release
    rewrites that file (and its version string).

    Found without importing it: importing Jinja or yaml would cost a plan that renders and parses
    nothing, and asking importlib.metadata for the version costs about as much as the rest of a
    no-op plan's imports of the standard library.
    """
    spec = find_spec(package)
    if spec is None or spec.origin is None:
        return None
    stat = Path(spec.origin).stat()
    return spec.origin, stat.st_size, stat.st_mtime_ns


def _plain(value: Any) -> Any:
    """A config as JSON-ready data, field by field (its parts are dataclasses)."""
    if is_dataclass(value) and not isinstance(value, type):
        return {spec.name: _plain(getattr(value, spec.name)) for spec in fields(value)}
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, Path):
        return str(value)
    return value


def _encode(expansion: CachedExpansion) -> dict[str, Any]:
    return {
        "sha256": expansion.content_sha256,
        "templates": expansion.templates,
        "manifests": expansion.manifests,
        "targets": [_encode_target(target) for target in expansion.targets],
        "warnings": [
            [
                warning.message,
                *(
                    (warning.location.file, warning.location.line, warning.location.column)
                    if warning.location
                    else (None, None, None)
                ),
            ]
            for warning in expansion.warnings
        ],
    }


def _decode(raw: dict[str, Any]) -> CachedExpansion:
    return CachedExpansion(
        content_sha256=raw["sha256"],
        templates=raw["templates"],
        manifests=int(raw["manifests"]),
        targets=[_decode_target(item) for item in raw["targets"]],
        warnings=[
            ManifestError(message, Location(file, line, column) if file is not None else None)
            for message, file, line, column in raw["warnings"]
        ],
    )


def _encode_target(target: Target) -> list[Any]:
    # A list rather than an object: a no-op plan decodes one per target, and names cost bytes.
    return [
        target.address,
        target.name,
        target.file,
        target.line,
        target.cell,
        target.provider,
        target.provider_kind,
        target.endpoint,
        target.body,
        [[item.role, item.path, item.sha256] for item in target.inputs],
        target.outputs,
        target.description,
        target.fingerprint,
    ]


_new_target = object.__new__
_set_attribute = object.__setattr__


def _decode_target(item: list[Any]) -> Target:
    (
        address,
        name,
        file,
        line,
        cell,
        provider,
        provider_kind,
        endpoint,
        body,
        inputs,
        outputs,
        description,
        fingerprint,
    ) = item
    if not isinstance(body, dict):
        raise TypeError("request body is not an object")
    # The values a manifest's cells share (its name, file, provider, model, size...) become one
    # object each, not one per target: 50,000 targets take a third less memory (sys.intern raises
    # TypeError, a corrupt cache, for anything but a string).
    share = sys.intern
    fields = {
        "address": address,
        "name": share(name),
        "file": share(file),
        "line": line,
        "cell": tuple([(share(axis), value) for axis, value in cell]),
        "provider": share(provider),
        "provider_kind": share(provider_kind),
        "endpoint": share(endpoint),
        "body": {
            key: share(value) if type(value) is str and len(value) <= _SHARED_LENGTH else value
            for key, value in body.items()
        },
        "inputs": tuple([InputImage(role, path, sha256) for role, path, sha256 in inputs]),
        "outputs": tuple(outputs),
        "description": description,
        "fingerprint": fingerprint,
        "upstream": (),
    }
    # What Target(**fields) makes, without its frozen __init__'s fourteen object.__setattr__
    # calls: a no-op plan decodes one target per cell, and those calls were most of the time.
    target = _new_target(Target)
    _set_attribute(target, "__dict__", fields)
    return target
