"""The `promptform` command and `python -m promptform`.

`promptform --version` is answered here, without the CLI: importing click alone takes longer than
the interpreter's own start, and scripts and hooks ask for the version to check what is installed.
Everything else, including --version among other options, goes through click in promptform.cli.
"""

from __future__ import annotations

import sys

from promptform import __version__


def main() -> int:
    if sys.argv[1:] == ["--version"]:
        # As click's version_option prints it (tests/cli/test_startup_imports.py compares them).
        print(f"promptform, version {__version__}")
        return 0
    from promptform.cli import main as run_cli

    return run_cli()


if __name__ == "__main__":
    raise SystemExit(main())
