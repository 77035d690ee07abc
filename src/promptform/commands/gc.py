"""`promptform gc`: list, and with --yes move to the trash, outputs no lock entry refers to."""

from __future__ import annotations

from promptform.core.config import Config
from promptform.core.error_handler import EXIT_OK
from promptform.core.errors import display_path
from promptform.core.output import Output
from promptform.review.gc import Garbage, collect_garbage, find_garbage


def gc(config: Config, output: Output, yes: bool) -> int:
    prefix = config.project.outputs_dir.strip("/")
    if not yes:
        garbage = find_garbage(config)
        if not garbage:
            output.result(f"Nothing to collect: every file under {prefix}/ is in the lockfile.")
            return EXIT_OK
        output.result(_listing(garbage, prefix, "unreferenced"))
        output.info("Run `promptform gc --yes` to move them to .promptform/trash/.")
        return EXIT_OK
    garbage, trash = collect_garbage(config)
    if not garbage:
        output.result(f"Nothing to collect: every file under {prefix}/ is in the lockfile.")
        return EXIT_OK
    output.result(_listing(garbage, prefix, "moved to the trash"))
    output.info(f"They are in {display_path(trash, config.root)}/ until you delete it.")
    return EXIT_OK


def _listing(garbage: list[Garbage], prefix: str, what: str) -> str:
    total = sum(item.bytes for item in garbage)
    lines = [f"{prefix}/{item.path}  {item.bytes:,} bytes" for item in garbage]
    noun = "file" if len(garbage) == 1 else "files"
    lines.append(f"{len(garbage)} {noun}, {total:,} bytes, {what}.")
    return "\n".join(lines)
