"""Safe YAML loading that remembers where every value came from.

Manifests come from pull requests, so loading is bounded: a size cap per file, UTF-8 only, the safe
constructor only, and a cap on the number of nodes an alias may expand to (billion-laughs).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from promptform.core.errors import Location, ManifestError

MAX_FILE_BYTES = 1_000_000
MAX_NODES_PER_DOCUMENT = 100_000
MAX_DEPTH = 64
_MERGE_TAG = "tag:yaml.org,2002:merge"
_PLAIN_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")
# What YAML drops after an unquoted value: whitespace, then `#` and the rest of the line.
_TRAILING_COMMENT = re.compile(r"[ \t]+(#.*?)\s*$")
# Top-level fields whose values are a word or a path, never prose: a comment after one of them
# (`size: 1024x1024  # square`) is meant as a comment and loses no text.
_SETTING_KEYS = frozenset(
    {
        "model",
        "size",
        "quality",
        "n",
        "output_format",
        "output_compression",
        "background",
        "moderation",
        "provider",
        "output",
        "mask",
        "name",
    }
)

if TYPE_CHECKING:
    import yaml

# The loader class; None picks libyaml's, which parses several times faster than the pure-Python
# parser (both give the same nodes and marks). yaml is imported on the first parse, not with this
# module: a plan answered by the render cache parses nothing.
_SafeLoader: type[yaml.SafeLoader] | None = None

Key = tuple[str | int, ...]


@dataclass
class Document:
    """One YAML document: its data and the 1-based (line, column) of every key and item."""

    data: Any
    file: str
    start_line: int
    positions: dict[Key, tuple[int, int]] = field(default_factory=dict)
    block_scalars: set[Key] = field(default_factory=set)
    # Problems that do not stop loading, such as text YAML read as a comment.
    warnings: list[ManifestError] = field(default_factory=list)

    def location(self, key: Key = ()) -> Location:
        """The closest known position of `key`, falling back to its parents, then the document."""
        for end in range(len(key), 0, -1):
            position = self.positions.get(key[:end])
            if position:
                return Location(self.file, *position)
        return Location(self.file, self.start_line, 1)

    def value_line(self, key: Key) -> int:
        """The line where the text of a scalar value starts (the line after `|` for block scalars)."""
        line = self.location(key).line or self.start_line
        return line + 1 if key in self.block_scalars else line


def read_text(path: Path, shown: str) -> str:
    """Read a UTF-8 text file under the size cap, or explain exactly what is wrong with it."""
    return decode_text(read_bytes(path, shown), shown)


def read_bytes(path: Path, shown: str) -> bytes:
    """The bytes of a file under the size cap (a file over it is never read)."""
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise ManifestError(
            f"file is {size:,} bytes, over the {MAX_FILE_BYTES:,}-byte limit; split it into several files",
            Location(shown),
        )
    return path.read_bytes()


def decode_text(raw: bytes, shown: str) -> str:
    """`raw` as UTF-8 text, or where the first byte that is not UTF-8 is."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ManifestError(
            f"not valid UTF-8 (byte 0x{raw[exc.start]:02x}); save the file as UTF-8",
            Location(shown, line, column),
        ) from None


def load_documents(text: str, shown: str) -> list[Document]:
    """Parse every `---` document of a YAML text; empty documents are skipped."""
    import yaml

    documents = []
    loader = None
    lines = text.splitlines()
    try:
        loader = _loader_class()(text)
        while loader.check_node():
            node = loader.get_node()
            if node is None or _is_empty(node):
                continue
            document = Document(None, shown, node.start_mark.line + 1)
            document.data = _Builder(loader, document, lines).build(node, (), 0)
            documents.append(document)
    except yaml.MarkedYAMLError as exc:
        problem, mark = _explain(exc, lines)
        where = Location(shown, mark.line + 1, mark.column + 1) if mark else Location(shown)
        raise ManifestError(f"invalid YAML: {problem}", where) from None
    except yaml.reader.ReaderError as exc:
        # Raised for control characters; it carries an offset, not a line.
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        raise ManifestError(
            f"invalid YAML: character U+{exc.character:04X} is not allowed in YAML; remove it",
            Location(shown, line, column),
        ) from None
    except yaml.YAMLError as exc:
        raise ManifestError(f"invalid YAML: {exc}", Location(shown)) from None
    except RecursionError:  # only the pure-Python parser recurses without a depth limit
        raise ManifestError("invalid YAML: nested too deeply", Location(shown)) from None
    finally:
        if loader is not None:
            loader.dispose()
    return documents


def _loader_class() -> type[yaml.SafeLoader]:
    import yaml

    if _SafeLoader is not None:
        return _SafeLoader
    fastest: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return fastest


def _explain(exc: yaml.MarkedYAMLError, lines: list[str]) -> tuple[str, yaml.Mark | None]:
    """The parser's complaint in words a manifest's author knows, and the mark to show it at.

    Parsers report where they gave up, which for an unclosed bracket or quote is the end of the
    file (a line past the last one); the opening mark, where the fix goes, is shown instead. The
    wording differs between libyaml and the pure-Python parser, so both are matched.
    """
    problem = exc.problem or exc.context or "invalid YAML"
    context = exc.context or ""
    mark, opened = exc.problem_mark, exc.context_mark
    if "mapping values are not allowed" in problem:
        return (
            "`: ` (a colon and a space) starts a new field here, where YAML does not allow one; "
            'if it is part of the text, quote the whole value ("...") or write it as a block '
            "after `|`; if it is a field, line it up with the fields above",
            mark,
        )
    if "expected ':'" in problem and "simple key" in context and opened is not None:
        text = lines[opened.line].strip() if opened.line < len(lines) else ""
        return (
            f"`{text}` is not `field: value`; add `:` after the field name, or indent it under "
            "the value it continues",
            opened,
        )
    for bracket, closing, kind in (("sequence", "]", "list"), ("mapping", "}", "mapping")):
        if f"flow {bracket}" in context and opened is not None:
            opening = "[" if closing == "]" else "{"
            return (
                f"the {kind} opened with `{opening}` here is never closed; add `{closing}` at its "
                f'end, and quote ("...") values that contain `,` `:` `[` `]` `{{` or `}}`',
                opened,
            )
    if "quoted scalar" in context and opened is not None:
        return (
            "the quote that opens this value is never closed; add the same quote at the end of "
            "the value",
            opened,
        )
    if "tab" in problem or "'\\t'" in problem or _character_at(mark, lines) == "\t":
        return "a tab is used for indentation; indent with spaces only", mark
    if ("expected key" in problem or "expected <block end>" in problem) and mark is not None:
        line = lines[mark.line] if mark.line < len(lines) else ""
        before = line[: mark.column]
        if before.strip() and before.rstrip()[-1:] in ("'", '"'):
            return (
                "text follows the closing quote of a value; put all of the text inside the "
                "quotes, or drop the quotes",
                mark,
            )
        return (
            "this line does not line up with the fields around it (YAML reads structure from "
            "indentation); line it up with the fields it belongs with, using spaces",
            mark,
        )
    return problem, _within(mark, lines) or _within(opened, lines)


def _character_at(mark: yaml.Mark | None, lines: list[str]) -> str:
    if mark is None or mark.line >= len(lines):
        return ""
    return lines[mark.line][mark.column : mark.column + 1]


def _within(mark: yaml.Mark | None, lines: list[str]) -> yaml.Mark | None:
    """`mark`, or the end of the last line when it points past the end of the file."""
    if mark is None or mark.line < len(lines):
        return mark
    if not lines:
        return None
    import yaml

    last = len(lines) - 1
    return yaml.Mark(mark.name, mark.index, last, len(lines[last]), None, 0)


def _is_empty(node: yaml.Node) -> bool:
    """A document with nothing but comments, such as after a trailing `---`."""
    import yaml

    return isinstance(node, yaml.ScalarNode) and node.value == "" and not node.style


class _Builder:
    """Builds plain Python values from composed nodes, counting every node an alias expands to."""

    def __init__(self, loader: yaml.SafeLoader, document: Document, lines: list[str]) -> None:
        self.loader = loader
        self.document = document
        self.lines = lines
        self.visited = 0
        self._merged: dict[int, list[tuple[Any, yaml.Node, yaml.Node]]] = {}

    def build(self, node: yaml.Node, key: Key, depth: int) -> Any:
        import yaml

        self.visited += 1
        if self.visited > MAX_NODES_PER_DOCUMENT or depth > MAX_DEPTH:
            raise ManifestError(
                "document expands to too many values (aliases nested too deep?); "
                "write the values out or split the document",
                Location(self.document.file, node.start_mark.line + 1, node.start_mark.column + 1),
            )
        if isinstance(node, yaml.MappingNode | yaml.SequenceNode) and node.tag not in _PLAIN_TAGS:
            # Collections are built here, not by the constructor, so its tag checks never run.
            tag = node.tag.replace("tag:yaml.org,2002:", "!!")
            raise self._error(f"YAML tag '{tag}' is not supported here; remove it", node)
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, key, depth)
        if isinstance(node, yaml.SequenceNode):
            items = []
            for index, item in enumerate(node.value):
                self._remember((*key, index), item)
                items.append(self.build(item, (*key, index), depth + 1))
            return items
        if isinstance(node, yaml.ScalarNode) and node.style in ("|", ">"):
            self.document.block_scalars.add(key)
        value = self.loader.construct_object(node, deep=True)
        # A plain (unquoted) scalar has no style: None from PyYAML, "" from libyaml.
        if (
            isinstance(value, str)
            and isinstance(node, yaml.ScalarNode)
            and not node.style
            and not (len(key) == 1 and key[0] in _SETTING_KEYS)
        ):
            self._warn_of_dropped_comment(node)
        return value

    def _warn_of_dropped_comment(self, node: yaml.ScalarNode) -> None:
        """Warn when a comment follows an unquoted text value on its line.

        A hex colour or a hashtag in an unquoted prompt (`orange #FF6600 on a ledge`) silently
        ends the value there. PyYAML keeps no comments, so the line's text after the scalar's end
        is read instead; quoted and block values cannot lose text this way.
        """
        end = node.end_mark
        if end.line >= len(self.lines):
            return
        match = _TRAILING_COMMENT.match(self.lines[end.line], end.column)
        if match is None:
            return
        kept = node.value if len(node.value) <= 40 else "…" + node.value[-40:]
        self.document.warnings.append(
            ManifestError(
                f'`{match[1]}` is read as a YAML comment, so the value stops at "{kept}"; to '
                'keep that text, quote the whole value ("...") or write it as a block after '
                "`|`; if it is a comment, move it to a line of its own",
                Location(self.document.file, end.line + 1, match.start(1) + 1),
            )
        )

    def _mapping(self, node: yaml.MappingNode, key: Key, depth: int) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        for name, key_node, value_node in self._pairs(node):
            child = (*key, str(name))
            self._remember(child, key_node)
            result[name] = self.build(value_node, child, depth + 1)
        return result

    def _pairs(self, node: yaml.MappingNode) -> list[tuple[Any, yaml.Node, yaml.Node]]:
        """(key, key node, value node) of a mapping with `<<` merge keys resolved.

        As YAML specifies: a key written in the mapping overrides a merged one, and of several merged
        mappings the first that has a key wins. Only a key written twice is a mistake. Done here rather
        than with PyYAML's flatten_mapping, which rewrites shared (aliased) nodes in place.
        """
        import yaml

        cached = self._merged.get(id(node))
        if cached is not None:
            return cached
        own: dict[Any, tuple[Any, yaml.Node, yaml.Node]] = {}
        merged: dict[Any, tuple[Any, yaml.Node, yaml.Node]] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                sources = (
                    value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
                )
                for source in sources:
                    if not isinstance(source, yaml.MappingNode):
                        raise self._error(
                            "`<<` merges mappings only; point it at a mapping or a list of mappings",
                            source,
                        )
                    for pair in self._pairs(source):
                        merged.setdefault(pair[0], pair)
                continue
            name = self.loader.construct_object(key_node, deep=True)
            if not isinstance(name, str | int | bool):
                raise self._error("mapping keys must be plain strings or numbers", key_node)
            if name in own:
                raise self._error(f"duplicate key '{name}'; remove one of them", key_node)
            own[name] = (name, key_node, value_node)
        pairs = [pair for name, pair in merged.items() if name not in own] + list(own.values())
        self._merged[id(node)] = pairs
        return pairs

    def _error(self, message: str, node: yaml.Node) -> ManifestError:
        mark = node.start_mark
        return ManifestError(message, Location(self.document.file, mark.line + 1, mark.column + 1))

    def _remember(self, key: Key, node: yaml.Node) -> None:
        self.document.positions.setdefault(
            key, (node.start_mark.line + 1, node.start_mark.column + 1)
        )
