"""A time limit on rendering one manifest: templates from a pull request must not loop for hours.

Apart from render.py so that loading a project can name the limit without importing Jinja.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from promptform.core.errors import Location, TemplateError

# A manifest renders in milliseconds; one whose templates loop for longer than this is refused, so
# a pull request cannot keep a CI runner busy (nested loops are each within the sandbox's bounds).
RENDER_SECONDS_PER_MANIFEST = 10.0


@contextmanager
def render_deadline(seconds: float, where: Location) -> Iterator[None]:
    """Raise TemplateError if the block runs longer than `seconds` (main thread, POSIX only)."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(
        signal, "setitimer"
    ):
        yield
        return

    def expired(signum: int, frame: object) -> None:
        raise TemplateError(
            f"templates took more than {seconds:g} s to render; look for loops that multiply", where
        )

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
