"""`promptform schema`: the manifest JSON Schema, for editors and CI."""

from __future__ import annotations

from promptform.error_handler import EXIT_OK
from promptform.manifest import schema_text
from promptform.output import Output


def schema(output: Output) -> int:
    output.result(schema_text())
    return EXIT_OK
