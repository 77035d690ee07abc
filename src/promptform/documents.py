"""Safe YAML loading that remembers where every value came from.

Manifests come from pull requests, so loading is bounded: a size cap per file, UTF-8 only, the safe
constructor only, and a cap on the number of nodes an alias may expand to (billion-laughs).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from promptform.errors import Location, ManifestError

MAX_FILE_BYTES = 1_000_000
MAX_NODES_PER_DOCUMENT = 100_000
MAX_DEPTH = 64

Key = tuple[str | int, ...]


@dataclass
class Document:
    """One YAML document: its data and the 1-based (line, column) of every key and item."""

    data: Any
    file: str
    start_line: int
    positions: dict[Key, tuple[int, int]] = field(default_factory=dict)
    block_scalars: set[Key] = field(default_factory=set)

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
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise ManifestError(
            f"file is {size:,} bytes, over the {MAX_FILE_BYTES:,}-byte limit; split it into several files",
            Location(shown),
        )
    raw = path.read_bytes()
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
    loader = yaml.SafeLoader(text)
    documents = []
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            document = Document(None, shown, node.start_mark.line + 1)
            document.data = _Builder(loader, document).build(node, (), 0)
            documents.append(document)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        where = Location(shown, mark.line + 1, mark.column + 1) if mark else Location(shown)
        raise ManifestError(f"invalid YAML: {problem}", where) from None
    except yaml.YAMLError as exc:
        raise ManifestError(f"invalid YAML: {exc}", Location(shown)) from None
    finally:
        loader.dispose()
    return documents


class _Builder:
    """Builds plain Python values from composed nodes, counting every node an alias expands to."""

    def __init__(self, loader: yaml.SafeLoader, document: Document) -> None:
        self.loader = loader
        self.document = document
        self.visited = 0

    def build(self, node: yaml.Node, key: Key, depth: int) -> Any:
        self.visited += 1
        if self.visited > MAX_NODES_PER_DOCUMENT or depth > MAX_DEPTH:
            raise ManifestError(
                "document expands to too many values (aliases nested too deep?); "
                "write the values out or split the document",
                Location(self.document.file, node.start_mark.line + 1, node.start_mark.column + 1),
            )
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
        return self.loader.construct_object(node, deep=True)

    def _mapping(self, node: yaml.MappingNode, key: Key, depth: int) -> dict[Any, Any]:
        self.loader.flatten_mapping(node)  # resolves `<<` merge keys
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            name = self.loader.construct_object(key_node, deep=True)
            if not isinstance(name, str | int | float | bool) or isinstance(name, float):
                raise ManifestError(
                    "mapping keys must be plain strings or numbers",
                    Location(self.document.file, key_node.start_mark.line + 1),
                )
            if name in result:
                raise ManifestError(
                    f"duplicate key '{name}'; remove one of them",
                    Location(
                        self.document.file,
                        key_node.start_mark.line + 1,
                        key_node.start_mark.column + 1,
                    ),
                )
            child = (*key, str(name))
            self._remember(child, key_node)
            result[name] = self.build(value_node, child, depth + 1)
        return result

    def _remember(self, key: Key, node: yaml.Node) -> None:
        self.document.positions.setdefault(
            key, (node.start_mark.line + 1, node.start_mark.column + 1)
        )
