"""Numeric bounds for `Annotated` fields, readable without importing pydantic or annotated_types.

pydantic applies `annotated_types.Ge(1)` natively, but importing annotated_types builds some
thirty dataclasses: a fifth of a no-op plan's start-up. These stand in for them; the loaders'
fast paths check them with `allows`, and pydantic, when it validates, gets the annotated_types
bound they stand for, so its checks, messages and JSON schema stay its own.
"""

from __future__ import annotations

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
