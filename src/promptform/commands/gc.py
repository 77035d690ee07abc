"""`promptform gc`: list, and with --yes move to the trash, outputs no lock entry refers to.

`gc --empty-trash` instead deletes for good what is in the trash (see review/empty_trash.py).
"""

from __future__ import annotations

from collections.abc import Callable

from promptform.core.config import Config
from promptform.core.error_handler import EXIT_OK
from promptform.core.errors import PromptformError, display_path
from promptform.core.output import Output
from promptform.review.empty_trash import Duration, TrashSelection, delete_trash, select_trash
from promptform.review.gc import Garbage, collect_garbage, find_garbage
from promptform.state.apply_lock import apply_lock

Confirm = Callable[[str], bool]


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


def empty_trash(
    config: Config, output: Output, older_than: Duration | None, yes: bool, confirm: Confirm | None
) -> int:
    """`confirm` asks the user (None: no terminal to ask on)."""
    # The lock is held from listing to deleting, as apply holds it through its confirmation: what
    # the user agrees to is exactly what goes, and no apply writes into the trash meanwhile.
    with apply_lock(config.state_dir):
        selection = select_trash(config.state_dir, config.root, older_than)
        if not selection.folders:
            output.result(_nothing_to_delete(selection, older_than))
            return EXIT_OK
        output.result(_trash_listing(selection, config))
        if selection.kept:
            output.info(f"{_count(selection.kept, 'newer folder')} kept.")
        if not yes:
            if confirm is None:
                raise PromptformError(
                    "gc --empty-trash deletes for good and there is no terminal to ask on: "
                    "pass --yes to delete them"
                )
            if not confirm("Delete them permanently? Only 'yes' is accepted"):
                output.info("Nothing deleted.")
                return EXIT_OK
        delete_trash(selection.folders, config.root)
    output.result(
        f"Deleted {_count(len(selection.folders), 'trash folder')}: "
        f"{_count(selection.files, 'file')}, {human_bytes(selection.bytes)} freed."
    )
    return EXIT_OK


def _nothing_to_delete(selection: TrashSelection, older_than: Duration | None) -> str:
    if older_than is None or not selection.kept:
        return "The trash is empty: nothing to delete."
    return (
        f"Nothing in the trash is older than {older_than.text}: "
        f"{_count(selection.kept, 'newer folder')} kept."
    )


def _trash_listing(selection: TrashSelection, config: Config) -> str:
    lines = [
        f"{display_path(folder.path, config.root)}  {_count(folder.files, 'file')}, "
        f"{human_bytes(folder.bytes)}"
        for folder in selection.folders
    ]
    lines.append(
        f"{_count(len(selection.folders), 'trash folder')}, {_count(selection.files, 'file')}, "
        f"{human_bytes(selection.bytes)} to delete permanently."
    )
    return "\n".join(lines)


def human_bytes(size: int) -> str:
    """`999 bytes`, `1.0 kB`, `18.4 MB`: decimal units, as file managers and `df -H` show them."""
    if size < 1000:
        return _count(size, "byte")
    value = size / 1000
    for unit in ("kB", "MB", "GB"):
        # Move up a unit where one decimal would round to 1000 (999,950 bytes is 1.0 MB).
        if value < 999.95:
            return f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}{'' if number == 1 else 's'}"
