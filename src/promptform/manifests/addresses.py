"""Addresses: how a target is named (`name[axis=value,...]`) and how patterns select them."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence

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


def well_formed_address(text: str) -> bool:
    """Whether `text` is one address as written (`name` or `name[axis=value,...]`): not a glob,
    not an option, no whitespace or control characters."""
    if not text or text.startswith("-") or re.search(r"[\s\x00-\x1f\x7f*?]", text):
        return False
    if "[" not in text and "]" not in text:
        return not bad_name(text)
    parsed = _parse_address(text)
    return parsed is not None and not bad_name(parsed[0]) and all(axis for axis, _ in parsed[1])


def path_aliases(
    manifest_file: str | None, outputs: Iterable[str], prompts_dir: str, outputs_dir: str
) -> tuple[str, ...]:
    """Paths that also select a target: its manifest (from the project or from prompts_dir) and
    its outputs (from outputs_dir, or with the outputs_dir prefix, as `status` prints them).
    """
    aliases: list[str] = []
    if manifest_file:
        aliases.append(manifest_file)
        prompts_prefix = prompts_dir.strip("/") + "/"
        if manifest_file.startswith(prompts_prefix):
            aliases.append(manifest_file[len(prompts_prefix) :])
    outputs_prefix = outputs_dir.strip("/")
    for output in outputs:
        aliases += [output, f"{outputs_prefix}/{output}"]
    return tuple(dict.fromkeys(aliases))


def address_matches(address: str, pattern: str, aliases: Sequence[str] = ()) -> bool:
    """Whether `pattern` selects `address`: equal, the same cell with its axes in any order, a glob
    with * and ?, the name of its manifest, or one of its `path_aliases` (exact or glob).

    Only * and ? are wildcards, because addresses use [ ] themselves.
    """
    if address == pattern:
        return True
    wanted, given = _parse_address(address), _parse_address(pattern)
    if wanted is not None and given is not None and wanted == given:
        return True
    regex = re.compile(
        "".join(
            ".*" if char == "*" else "." if char == "?" else re.escape(char) for char in pattern
        )
    )
    name = address.split("[", 1)[0]
    if regex.fullmatch(address) is not None or regex.fullmatch(name) is not None:
        return True
    path = _normal_path(pattern)
    path_regex = re.compile(
        "".join(".*" if char == "*" else "." if char == "?" else re.escape(char) for char in path)
    )
    return any(path_regex.fullmatch(alias) is not None for alias in aliases)


def matching_addresses(
    addresses: Sequence[str],
    patterns: Sequence[str],
    unmatched: Callable[[str, str | None], str],
    aliases: Mapping[str, Sequence[str]] | None = None,
) -> list[str]:
    """The `addresses` some pattern selects, in their order (all without patterns).

    A pattern that selects nothing is an error worded by `unmatched(pattern, suggestion)`, where
    `suggestion` is the closest address or path, if any is close: a typo must not quietly plan,
    render or list nothing.
    """
    if not patterns:
        return list(addresses)
    paths = aliases or {}

    def selects(address: str, pattern: str) -> bool:
        return address_matches(address, pattern, paths.get(address, ()))

    for pattern in patterns:
        if not any(selects(address, pattern) for address in addresses):
            raise PromptformError(unmatched(pattern, closest_address(pattern, addresses, paths)))
    return [
        address for address in addresses if any(selects(address, pattern) for pattern in patterns)
    ]


def closest_address(
    pattern: str, addresses: Sequence[str], aliases: Mapping[str, Sequence[str]] | None = None
) -> str | None:
    """The address (or path, when `pattern` looks like one) `pattern` was most likely meant as.

    A cell of the same manifest wins over a similar-looking name: with axes, the cell sharing the
    most axis values; then the closest spelling (difflib), or None when nothing is close.
    """
    import difflib  # only for a hint: a pattern that matched nothing

    given = _parse_address(pattern)
    if given is not None:
        same_name = [
            (address, parsed)
            for address in addresses
            if (parsed := _parse_address(address)) is not None and parsed[0] == given[0]
        ]
        if same_name:

            def shared_values(item: tuple[str, tuple[str, frozenset[tuple[str, str]]]]) -> float:
                parsed = item[1]
                spelling = difflib.SequenceMatcher(None, _canonical(given), _canonical(parsed))
                return len(parsed[1] & given[1]) + spelling.ratio()

            return max(same_name, key=shared_values)[0]
    # Manifest names too: a misspelt name is best answered with the name, not one of its cells.
    names = [address.split("[", 1)[0] for address in addresses]
    candidates = list(dict.fromkeys([*names, *addresses]))
    if "/" in pattern and "[" not in pattern and "." in pattern.rsplit("/", 1)[-1]:
        # Something like a file path: suggest the file path it was probably meant as.
        candidates = [alias for address in addresses for alias in (aliases or {}).get(address, ())]
        pattern = _normal_path(pattern)
    close = difflib.get_close_matches(pattern, candidates, n=1)
    return close[0] if close else None


def _normal_path(pattern: str) -> str:
    while pattern.startswith("./"):
        pattern = pattern[2:]
    return pattern


_PAIR = re.compile(r'\s*([^=,\[\]"]+?)\s*=\s*("(?:[^"\\]|\\.)*"|[^,"]*?)\s*(?:,|\Z)')


def _parse_address(text: str) -> tuple[str, frozenset[tuple[str, str]]] | None:
    """`name[axis=value,...]` as its name and its set of (axis, value text), or None if it is not
    one (a glob, a path, a name without axes)."""
    if not text.endswith("]") or "[" not in text or "*" in text or "?" in text:
        return None
    name, _, inner = text[:-1].partition("[")
    pairs: list[tuple[str, str]] = []
    position = 0
    while position < len(inner):
        match = _PAIR.match(inner, position)
        if match is None or match.end() == position:
            return None
        axis, value = match.group(1), match.group(2)
        if value.startswith('"'):
            try:
                value = str(json.loads(value))
            except ValueError:
                return None
        pairs.append((axis, value))
        position = match.end()
    return (name.strip(), frozenset(pairs)) if pairs else None


def _canonical(parsed: tuple[str, frozenset[tuple[str, str]]]) -> str:
    return parsed[0] + "[" + ",".join(f"{axis}={value}" for axis, value in sorted(parsed[1])) + "]"
