"""`promptform import-curl`: a curl command or JSON request body becomes a manifest under prompts/."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path, PurePosixPath

from promptform.core.config import Config
from promptform.core.error_handler import EXIT_OK
from promptform.core.errors import PromptformError, display_path
from promptform.core.output import Output
from promptform.review.import_curl import import_request

MAX_INPUT = 1_000_000
CURL_PROGRAMS = ("curl", "curl.exe")
PASTE_PROMPT = (
    "Paste the curl command (or JSON request body), then press Ctrl-D on a new line "
    "(Ctrl-Z, Enter on Windows):"
)


def import_curl(
    config: Config, output: Output, source: tuple[str, ...], name: str | None, out: Path | None
) -> int:
    """Import `source`: the words of a curl command, one FILE, or stdin (`-` or nothing)."""
    if source and PurePosixPath(source[0]).name in CURL_PROGRAMS:
        # Quoted back into one command line, which the importer splits exactly as a shell would.
        text, shown = shlex.join(source), "a curl command"
    elif len(source) > 1:
        raise PromptformError(
            f"import-curl takes one FILE, not {len(source)} arguments; to pass a curl command, "
            "put it after --: `promptform import-curl -- curl https://...`"
        )
    else:
        text, shown = _read(source[0] if source else "-", output)
    imported = import_request(config, text, name, out, shown)
    for note in imported.notes:
        output.info(f"note: {note}")
    output.result(
        f"Wrote {display_path(imported.path, config.root)} (target '{imported.address}'); "
        "`promptform plan` shows what apply would generate."
    )
    return EXIT_OK


def _read(source: str, output: Output) -> tuple[str, str]:
    if source == "-":
        if sys.stdin.isatty():
            # Without this, a bare `import-curl` looks like it hangs.
            output.info(PASTE_PROMPT)
        text, shown = sys.stdin.read(MAX_INPUT + 1), "a request on stdin"
    else:
        try:
            with Path(source).open(encoding="utf-8") as handle:
                text = handle.read(MAX_INPUT + 1)
        except OSError as exc:
            raise PromptformError(f"cannot read {source}: {exc.strerror or exc}") from None
        except UnicodeDecodeError:
            raise PromptformError(f"{source} is not UTF-8 text") from None
        shown = f"a request in {Path(source).name}"
    if len(text) > MAX_INPUT:
        raise PromptformError("the request is over 1 MB; that is not a curl command")
    if not text.strip():
        raise PromptformError("the input is empty; paste a curl command or a JSON request body")
    return text, shown
