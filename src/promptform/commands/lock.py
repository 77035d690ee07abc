"""`promptform lock merge BASE OURS THEIRS`: the git merge driver for a shard of promptform.lock
(or the single file of a lock not converted yet)."""

from __future__ import annotations

from pathlib import Path

from promptform.core.atomic import atomic_write
from promptform.core.error_handler import EXIT_ERROR, EXIT_OK
from promptform.core.errors import LockfileError
from promptform.core.output import Output
from promptform.state.lock_merge import merge_lockfiles, parse_side
from promptform.state.lockfile import Lockfile


def merge(output: Output, base: Path, ours: Path, theirs: Path) -> int:
    """Git calls this as `%O %A %B`; like every merge driver, the result goes into OURS."""
    result = merge_lockfiles(_read(base, "base"), _read(ours, "ours"), _read(theirs, "theirs"))
    atomic_write(ours, result.text.encode("utf-8"))
    if result.conflicts:
        changed = [address for address in result.conflicts if address not in result.sharing]
        what = []
        if changed:
            what.append(
                f"{len(changed)} target(s) changed differently on both sides: {', '.join(changed)}"
            )
        if result.sharing:
            what.append(
                f"{len(result.sharing)} target(s) record the same output path: "
                f"{', '.join(result.sharing)} (rename one target's output, then apply it)"
            )
        output.error(
            LockfileError(
                f"lockfile merge conflict: {'; '.join(what)}; keep one side between the markers "
                "(or drop both and run `promptform apply` again), then `git add` the lockfile"
            )
        )
        return EXIT_ERROR
    return EXIT_OK


def _read(path: Path, label: str) -> Lockfile:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = ""
    except (OSError, UnicodeDecodeError):
        raise LockfileError(f"cannot read the {label} version of the lockfile ({path})") from None
    return parse_side(text, f"{label} lockfile")
