"""Constraints for `Annotated` fields of the config and lock types, declared without importing
pydantic or annotated_types.

The config and the lock are standard-library dataclasses so that loading files promptform wrote
imports no pydantic (importing it costs more than a no-op plan's whole work); their fast loaders
check these constraints themselves, and pydantic, when a file has to be validated, reads the same
declarations through `__get_pydantic_core_schema__`.

pydantic applies `annotated_types.Ge(1)` natively, but importing annotated_types builds some
thirty dataclasses: a fifth of a no-op plan's start-up. Ge, Le and Gt stand in for them and hand
pydantic the annotated_types bound they stand for, so its checks, messages and JSON schema stay
its own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

if TYPE_CHECKING:
    from pydantic import GetCoreSchemaHandler
    from pydantic_core import CoreSchema


class Bound:
    __slots__ = ("limit",)

    def __init__(self, limit: int | float) -> None:
        self.limit = limit

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.limit!r})"

    def allows(self, value: Any) -> bool:
        raise NotImplementedError

    def as_annotated_type(self) -> Any:
        raise NotImplementedError

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        return handler(Annotated[source, self.as_annotated_type()])


class Ge(Bound):
    """At least `limit`."""

    def allows(self, value: Any) -> bool:
        return bool(value >= self.limit)

    def as_annotated_type(self) -> Any:
        import annotated_types

        return annotated_types.Ge(self.limit)


class Le(Bound):
    """At most `limit`."""

    def allows(self, value: Any) -> bool:
        return bool(value <= self.limit)

    def as_annotated_type(self) -> Any:
        import annotated_types

        return annotated_types.Le(self.limit)


class Gt(Bound):
    """More than `limit`."""

    def allows(self, value: Any) -> bool:
        return bool(value > self.limit)

    def as_annotated_type(self) -> Any:
        import annotated_types

        return annotated_types.Gt(self.limit)


class FieldRule:
    """A check of one field that may look at the fields before it (`earlier`, by name): pydantic
    runs it after validating the field, and the fast loaders run it the same way. A ValueError it
    raises is the validation error."""

    __slots__ = ("check",)

    def __init__(self, check: Callable[[Any, dict[str, Any]], Any]) -> None:
        self.check = check

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        from pydantic_core import core_schema

        check = self.check
        return core_schema.with_info_after_validator_function(
            lambda value, info: check(value, info.data), handler(source)
        )
