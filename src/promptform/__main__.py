"""The `promptform` command and `python -m promptform`.

`promptform --version` is answered here, without the CLI: importing click alone takes longer than
the interpreter's own start, and scripts and hooks ask for the version to check what is installed.
`plan` and `validate` with only global options, as pre-commit hooks run them, are answered by
promptform.hook_commands, also without click. Everything else, including --version among other
options, goes through click in promptform.cli.
"""

from __future__ import annotations

import sys

from promptform import __version__


def main() -> int:
    args = sys.argv[1:]
    if args == ["--version"]:
        # As click's version_option prints it (tests/cli/test_startup_imports.py compares them).
        print(f"promptform, version {__version__}")
        return 0
    if args[-1:] in (["plan"], ["validate"]):  # imported only then: --version must not pay for it
        from promptform.hook_commands import hook_options, run_hook_command

        options = hook_options(args)
        if options is not None:
            return run_hook_command(options)
    from promptform.cli import main as run_cli

    return run_cli()


if __name__ == "__main__":
    raise SystemExit(main())
