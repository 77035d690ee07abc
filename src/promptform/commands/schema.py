"""`promptform schema`: the manifest JSON Schema, for editors and CI."""

from __future__ import annotations

from promptform.core.error_handler import EXIT_OK
from promptform.core.output import Output
from promptform.manifests.manifest import schema_text


def schema(output: Output) -> int:
    output.result(schema_text())
    return EXIT_OK
