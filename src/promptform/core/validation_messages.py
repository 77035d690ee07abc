"""Turns one pydantic validation error into a sentence that says what to do."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

KnownFields = Callable[[tuple[str | int, ...]], Sequence[str]]
# What pydantic calls an unknown key of a standard-library dataclass, and of a BaseModel.
_UNKNOWN_FIELD = ("unexpected_keyword_argument", "extra_forbidden")


def describe_validation_error(error: Any, section: str, known: KnownFields) -> str:
    """`error` is one item of `ValidationError.errors()`; `section` names where it happened."""
    loc: tuple[str | int, ...] = tuple(error["loc"])
    kind = error["type"]
    field = str(loc[-1]) if loc else ""
    if kind in _UNKNOWN_FIELD:
        message = f"unknown field '{field}' in {section}"
        candidates = [name for name in known(loc[:-1]) if name != field]
        import difflib  # only for a message: every run imports this module, few have a typo

        close = difflib.get_close_matches(field, candidates, n=1, cutoff=0.6)
        if close:
            return f"{message}; did you mean '{close[0]}'?"
        if candidates:
            return f"{message}; expected one of: {', '.join(sorted(candidates))}"
        return message
    if kind == "missing":
        return f"missing required field '{field}' in {section}"
    where = f"'{_dotted(loc)}'" if loc else section
    text = model_worded(error)
    if kind == "literal_error":
        expected = error.get("ctx", {}).get("expected", "")
        text = f"must be one of {expected}"
    elif text.startswith(("Input should be", "Value error, ")):
        text = text.removeprefix("Value error, ")
        text = text[0].lower() + text[1:]
    got = error.get("input")
    if isinstance(got, str | int | float | bool) and kind != "missing":
        return f"{where} {text} (got {got!r})"
    return f"{where}: {text}"


def _dotted(loc: tuple[str | int, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def model_worded(error: Any) -> str:
    """`error`'s message as pydantic words it for a BaseModel. The config and lock types are
    standard-library dataclasses, for which it words two errors otherwise; users (and their
    scripts) know the messages of the models these types once were."""
    if error["type"] == "unexpected_keyword_argument":
        return "Extra inputs are not permitted"
    if error["type"] == "dataclass_type":
        return f"Input should be a valid dictionary or instance of {error['ctx']['class_name']}"
    return str(error["msg"])
