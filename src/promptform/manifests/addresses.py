"""Addresses: how a target is named (`name[axis=value,...]`) and how patterns select them."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence

from promptform.core.errors import PromptformError
from promptform.manifests.matrix import Cell, value_text

# Control characters (a newline, an escape) are quoted too: json.dumps spells them out.
_BARE_VALUE = re.compile(r"^[^,\[\]=\"\s](?:[^,\[\]=\"\x00-\x1f]*[^,\[\]=\"\s])?\Z")
_BAD_NAME = re.compile(r"[\[\],=\x00-\x1f\\]|^\s|\s$|^/|/$|//|(^|/)\.\.?(/|$)")


def format_address(name: str, cell: Cell) -> str:
    if not cell:
        return name
    parts = []
    for axis, value in cell.items():
        text = value_text(value)
        parts.append(f"{axis}={text if _BARE_VALUE.match(text) else json.dumps(text)}")
    return f"{name}[{','.join(parts)}]"


def bad_name(name: str) -> bool:
    """Whether `name` cannot be the name part of an address."""
    return not name or _BAD_NAME.search(name) is not None


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
