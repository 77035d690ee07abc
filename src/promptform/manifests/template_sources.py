"""Template files by name, read the way renders load them, without importing Jinja.

The render cache checks the digest of every template a cached manifest used, on every plan. Renders
load templates through this same class (render.py's loader wraps it), so a no-op plan answered by the
cache compares digests of exactly the files a render would read, and never needs Jinja at all.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
from pathlib import Path
from typing import NamedTuple


class TemplateSource(NamedTuple):
    text: str
    filename: str  # as Jinja reports it in tracebacks: under templates_dir, normalised


class TemplateSources:
    """Reads templates under one directory, refusing names and symlinks that lead out of it.

    It remembers a digest of every source it hands out (None for a template it could not find), so
    a render cache can tell later whether the templates a render used are still the same.
    """

    def __init__(self, root: Path) -> None:
        self.searchpath = os.fspath(root)
        self.root = root.resolve()
        self.digests: dict[str, str | None] = {}
        self.changed_while_loading = False

    def load(self, name: str) -> TemplateSource | None:
        """The template called `name`; None when there is none inside the directory.

        Raises OSError or ValueError when the file exists but cannot be read as UTF-8 text.
        """
        found = self._find(name)
        if found is None:
            self._remember(name, None)
            return None
        with open(found, encoding="utf-8") as file:  # noqa: PTH123 - the name Jinja reports
            text = file.read()
        self._remember(name, hashlib.sha256(text.encode("utf-8")).hexdigest())
        return TemplateSource(text, os.path.normpath(found))

    def digest(self, name: str) -> str | None:
        """sha256 of template `name` as renders of this run see it; None when it cannot be found.

        Read at most once per run: later calls give the digest of the source that was used.
        """
        if name not in self.digests:
            self.load(name)
        return self.digests[name]

    def _find(self, name: str) -> str | None:
        # Jinja's FileSystemLoader rules: '/'-separated pieces, no '..' and no OS separator inside a
        # piece, empty and '.' pieces dropped, joined with posixpath so no drive or UNC sneaks in.
        pieces = []
        for piece in name.split("/"):
            if os.path.sep in piece or (os.path.altsep and os.path.altsep in piece):
                return None
            if piece == os.path.pardir:
                return None
            if piece and piece != ".":
                pieces.append(piece)
        filename = posixpath.join(self.searchpath, *pieces)
        if not os.path.isfile(filename):  # noqa: PTH113 - a str path, as Jinja tests it
            return None
        if not Path(filename).resolve().is_relative_to(self.root):
            return None  # a symlink leading out of templates_dir
        return filename

    def _remember(self, name: str, digest: str | None) -> None:
        # A template edited while this run reads it: renders of this run may disagree on it.
        if self.digests.get(name, digest) != digest:
            self.changed_while_loading = True
        self.digests[name] = digest
