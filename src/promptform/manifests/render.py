"""Sandboxed Jinja rendering of prompts, names and output paths.

Templates arrive in pull requests, so they run in Jinja's immutable sandbox with StrictUndefined, a
loader that cannot leave templates_dir, and no source of non-determinism (environment, clock, random):
a render is a pure function of the repository.
"""

from __future__ import annotations

import difflib
import operator
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

import jinja2
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from promptform.core.errors import Location, TemplateError
from promptform.manifests.output_paths import slug as slug  # also imported from here
from promptform.manifests.template_sources import TemplateSources

MAX_RENDERED_CHARS = 1_000_000


class _ContainedLoader(jinja2.BaseLoader):
    """Loads templates from TemplateSources, which refuses names and symlinks leading out of the
    templates directory and remembers the digest of every source it hands out."""

    def __init__(self, sources: TemplateSources) -> None:
        self.sources = sources

    def get_source(
        self, environment: jinja2.Environment, template: str
    ) -> tuple[str, str, Callable[[], bool]]:
        found = self.sources.load(template)
        if found is None:
            raise jinja2.TemplateNotFound(template)
        # Templates are read once per run (auto_reload is off): a loaded one is always current.
        return found.text, found.filename, lambda: True


class _Environment(ImmutableSandboxedEnvironment):
    """Also bounds `*` and `**`, the two operators that can build huge values from small input."""

    intercepted_binops = frozenset({"*", "**"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.requested_templates: set[str] | None = None

    # include, import, extends and their list forms all load through these two methods; every
    # call is seen, including those the template cache answers.
    def get_template(
        self,
        name: str | jinja2.Template,
        parent: str | None = None,
        globals: MutableMapping[str, Any] | None = None,
    ) -> jinja2.Template:
        if self.requested_templates is not None and isinstance(name, str):
            self.requested_templates.add(self.join_path(name, parent) if parent else name)
        return super().get_template(name, parent, globals)

    def select_template(
        self,
        names: Iterable[str | jinja2.Template],
        parent: str | None = None,
        globals: MutableMapping[str, Any] | None = None,
    ) -> jinja2.Template:
        if self.requested_templates is not None and not isinstance(names, jinja2.Undefined):
            names = list(names)
            self.requested_templates.update(
                self.join_path(name, parent) if parent else name
                for name in names
                if isinstance(name, str)
            )
        return super().select_template(names, parent, globals)

    def call_binop(
        self, context: jinja2.runtime.Context, operator_: str, left: Any, right: Any
    ) -> Any:
        if operator_ == "**" and isinstance(right, int) and abs(right) > 64:
            raise SecurityError("exponent too large")
        if operator_ == "*":
            for count, other in ((left, right), (right, left)):
                if (
                    isinstance(count, int)
                    and isinstance(other, str | list | tuple)
                    and count * len(other) > MAX_RENDERED_CHARS
                ):
                    raise SecurityError("repetition too large")
            return operator.mul(left, right)
        return super().call_binop(context, operator_, left, right)

    def make_globals(self, d: MutableMapping[str, Any] | None) -> MutableMapping[str, Any]:
        # A plain dict instead of Jinja's ChainMap: every render and every include copies the
        # globals into a new context, and iterating a ChainMap costs several times a dict. The
        # globals are final before the first template is made, so nothing needs the live view.
        return {**self.globals, **(d or {})}


class Renderer:
    """Renders template strings with one shared, sandboxed environment per project."""

    def __init__(
        self, templates_dir: Path, shown_templates_dir: str, sources: TemplateSources | None = None
    ) -> None:
        self.templates_dir = templates_dir
        self.shown_templates_dir = shown_templates_dir
        # Shared with the render cache's digest checks when given: one reading of each template.
        self.sources = sources or TemplateSources(templates_dir)
        self._loader = _ContainedLoader(self.sources)
        self.env = _Environment(
            loader=self._loader,
            undefined=jinja2.StrictUndefined,
            autoescape=False,
            auto_reload=False,
            cache_size=-1,
        )
        # Sources of randomness or process state a render must not see.
        for name in ("lipsum", "cycler", "joiner"):
            self.env.globals.pop(name, None)
        self.env.filters.pop("random", None)
        self.env.filters["slug"] = slug
        self._compiled: dict[str, jinja2.Template] = {}

    @contextmanager
    def recording_templates(self) -> Iterator[set[str]]:
        """The names of the templates that renders inside the block load (include, import, extends)."""
        names: set[str] = set()
        self.env.requested_templates = names
        try:
            yield names
        finally:
            self.env.requested_templates = None

    def template_digest(self, name: str) -> str | None:
        """sha256 of template `name` as renders of this run see it; None when it cannot be found.

        Read at most once per run: later calls give the digest of the source that was used.
        Raises OSError or ValueError when the file exists but cannot be read as UTF-8 text.
        """
        return self.sources.digest(name)

    @property
    def templates_changed_while_loading(self) -> bool:
        """Whether a template read twice this run gave different text (edited mid-run)."""
        return self.sources.changed_while_loading

    def render(self, source: str, variables: Mapping[str, Any], origin: Location) -> str:
        """Render `source`; errors point at the manifest line (`origin` is its first line)."""
        try:
            template = self._compiled.get(source)
            if template is None:
                template = self._compiled[source] = self.env.from_string(source)
            rendered = self._bounded(template, variables, origin)
        except jinja2.TemplateSyntaxError as exc:
            raise self._error(
                f"template syntax error: {exc.message}",
                self._where(exc.filename, exc.lineno, origin),
                origin,
                exc.__traceback__,
            ) from None
        except jinja2.TemplateNotFound as exc:
            raise self._error(
                f"template '{exc.name}' not found in {self.shown_templates_dir}/ "
                "(templates can only be loaded from there)",
                self._traceback_location(exc.__traceback__, origin),
                origin,
                exc.__traceback__,
            ) from None
        except jinja2.UndefinedError as exc:
            raise self._error(
                f"undefined variable: {exc.message}; "
                + _did_you_mean(exc.message, variables)
                + "define it under vars: or as a matrix axis",
                self._traceback_location(exc.__traceback__, origin),
                origin,
                exc.__traceback__,
            ) from None
        except SecurityError as exc:
            raise self._error(
                f"refused by the template sandbox: {exc}",
                self._traceback_location(exc.__traceback__, origin),
                origin,
                exc.__traceback__,
            ) from None
        except (
            jinja2.TemplateError,  # e.g. TemplateRuntimeError: extended multiple times
            RecursionError,  # a macro that calls itself
            TypeError,
            ValueError,
            ArithmeticError,
            LookupError,
        ) as exc:
            raise self._error(
                f"template failed: {exc}",
                self._traceback_location(exc.__traceback__, origin),
                origin,
                exc.__traceback__,
            ) from None
        return rendered

    @staticmethod
    def _bounded(template: jinja2.Template, variables: Mapping[str, Any], origin: Location) -> str:
        """The render, stopped as soon as it passes the limit (a loop must not fill the memory)."""
        pieces, total = [], 0
        for piece in template.generate(variables):
            total += len(piece)
            if total > MAX_RENDERED_CHARS:
                raise TemplateError(
                    f"template renders over {MAX_RENDERED_CHARS:,} characters", origin
                )
            pieces.append(piece)
        return "".join(pieces)

    def _error(
        self, message: str, where: Location, origin: Location, tb: TracebackType | None
    ) -> TemplateError:
        """An error inside a shared template also names the manifest line that pulled it in."""
        if where.file != origin.file:
            line = None
            while tb is not None:
                if tb.tb_frame.f_code.co_filename == "<template>":
                    line = tb.tb_lineno
                tb = tb.tb_next
            manifest_line = self._where("<template>" if line else None, line, origin)
            message = f"{message} (included from {manifest_line})"
        return TemplateError(message, where)

    def _where(self, filename: str | None, line: int | None, origin: Location) -> Location:
        if filename and filename != "<template>":
            shown = Path(filename)
            try:
                name = (
                    f"{self.shown_templates_dir}/{shown.relative_to(self.templates_dir).as_posix()}"
                )
            except ValueError:
                name = shown.name
            return Location(name, line)
        if line is not None and origin.line is not None:
            return Location(origin.file, origin.line + line - 1)
        return origin

    def _traceback_location(self, tb: TracebackType | None, origin: Location) -> Location:
        """The innermost template frame of a render error (Jinja maps frames to template lines)."""
        found: tuple[str, int] | None = None
        while tb is not None:
            filename = tb.tb_frame.f_code.co_filename
            if filename == "<template>" or filename.startswith(str(self.templates_dir) + os.sep):
                found = (filename, tb.tb_lineno)
            tb = tb.tb_next
        return self._where(*found, origin) if found else origin


_UNDEFINED_NAME = re.compile(r"^'([^']+)' is undefined\Z")


def _did_you_mean(message: str | None, variables: Mapping[str, Any]) -> str:
    """`did you mean 'time'? Otherwise ` when an undefined name is a near miss of a variable the
    template could use (vars, matrix axes, name, index...), else nothing."""
    match = _UNDEFINED_NAME.match(message or "")
    if match is None:
        return ""
    close = difflib.get_close_matches(match[1], [str(key) for key in variables], n=1)
    return f"did you mean '{close[0]}'? Otherwise " if close else ""
