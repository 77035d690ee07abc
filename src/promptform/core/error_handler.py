"""The one place that turns exceptions into messages and exit codes.

User errors: one line each, exit 1. Ctrl-C: exit 130. Anything else is a bug: exit 3 with a hint.
"""

from __future__ import annotations

from collections.abc import Callable

from promptform import __version__
from promptform.core.errors import PromptformError
from promptform.core.output import Output

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2
EXIT_BUG = 3
EXIT_INTERRUPTED = 130

ISSUES_URL = "https://github.com/promptform/promptform/issues"


def run_guarded(action: Callable[[], int], output: Output) -> int:
    try:
        return action()
    except PromptformError as exc:
        output.error(exc)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=output.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_ERROR
    except Exception as exc:  # the last line of defence
        if output.verbosity > 0:
            import traceback  # only here: every run imports this module, few ever fail

            traceback.print_exc(file=output.stderr)
        print(
            f"error: internal error: {type(exc).__name__}: {exc}\n"
            f"This is a bug in promptform {__version__}. Please report it at {ISSUES_URL} "
            "with the output of the same command run with -v.",
            file=output.stderr,
        )
        return EXIT_BUG
