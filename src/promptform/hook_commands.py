"""`plan` and `validate` given nothing but the global options (-C, --config, -q, -v), as pre-commit
hooks run them, answered without click.

Importing click and building the command tree cost a tenth of a no-op plan. These do what the CLI's
callbacks do; anything else, including every argument the CLI would refuse, is left to click in
promptform.cli, which prints the help and the usage errors (tests/cli/test_hook_commands.py).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from promptform.core.config import Config

HOOK_COMMANDS = ("plan", "validate")
# Set by a shell asking click to complete the command line.
COMPLETION_VARIABLE = "_PROMPTFORM_COMPLETE"


@dataclass(frozen=True)
class HookOptions:
    command: str
    directory: Path
    config_path: Path | None
    verbose: int
    quiet: bool


def hook_options(args: list[str]) -> HookOptions | None:
    """`plan` or `validate` after only global options, each spelled out on its own (values in the
    next argument); None for anything else, which the CLI parses."""
    if not args or args[-1] not in HOOK_COMMANDS or COMPLETION_VARIABLE in os.environ:
        return None
    if os.name == "nt":  # click expands wildcards in arguments there
        return None
    values: dict[str, str] = {}
    verbose, quiet = 0, False
    rest = iter(args[:-1])
    for arg in rest:
        if arg in ("-v", "--verbose"):
            verbose += 1
        elif arg in ("-q", "--quiet"):
            quiet = True
        elif arg in ("-C", "--config") and arg not in values:
            value = next(rest, "")
            if not value or value.startswith("-"):
                return None
            values[arg] = value
        else:
            return None
    directory = Path(values.get("-C", "."))
    config = values.get("--config")
    # What click would refuse (the message is its own): a directory that is not one, a config
    # file that is a directory.
    if not directory.is_dir() or (config is not None and Path(config).is_dir()):
        return None
    config_path = Path(config) if config is not None else None
    return HookOptions(args[-1], directory, config_path, verbose, quiet)


def run_hook_command(options: HookOptions) -> int:
    """What promptform.cli runs for these options: the group's callback, then the command's."""
    from promptform.core.config import load_config
    from promptform.core.error_handler import run_guarded
    from promptform.core.output import Output

    base = options.directory.resolve()
    config_path = options.config_path
    if config_path is not None and not config_path.is_absolute():
        config_path = Path.cwd() / config_path
    output = Output(-1 if options.quiet else options.verbose)

    def config() -> Config:  # loaded inside run_guarded, as the CLI's AppContext loads it
        return load_config(base, config_path, require_project=True)

    if options.command == "validate":
        from promptform.commands.validate import validate

        return run_guarded(lambda: validate(config(), output), output)
    from promptform.commands.plan import plan
    from promptform.engine.plan_model import PlanOptions

    return run_guarded(lambda: plan(config(), output, PlanOptions()), output)
