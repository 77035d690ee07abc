"""Waits with a deadline: when one passes, the test fails saying what it was waiting for.

A wait without a deadline turns a bug into a run that never ends. pytest-timeout ends such a run
too, but only the wait itself knows what it was waiting for.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import socketserver
import threading
import time
from collections.abc import Callable, Coroutine
from typing import IO, Any, TypeVar

T = TypeVar("T")

DEFAULT_SECONDS = 20.0


def wait_for(
    condition: Callable[[], bool], timeout: float = DEFAULT_SECONDS, what: str = ""
) -> None:
    """Poll `condition` until it holds; AssertionError naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what or condition}")
        time.sleep(0.01)


def run_within(coroutine: Coroutine[Any, Any, T], what: str, timeout: float = DEFAULT_SECONDS) -> T:
    """asyncio.run(coroutine), or AssertionError naming `what` after `timeout` seconds."""

    async def bounded() -> T:
        try:
            return await asyncio.wait_for(coroutine, timeout)
        except TimeoutError:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}") from None

    return asyncio.run(bounded())


def join_thread(thread: threading.Thread, what: str, timeout: float = DEFAULT_SECONDS) -> None:
    """Join `thread`; AssertionError naming `what` if it is still running after `timeout` seconds."""
    thread.join(timeout)
    if thread.is_alive():
        raise AssertionError(f"timed out after {timeout:g} s waiting for {what} to finish")


def stop_serving(
    server: socketserver.BaseServer,
    serving: threading.Thread,
    what: str,
    timeout: float = DEFAULT_SECONDS,
) -> None:
    """Stop `server.serve_forever()` running in `serving`, failing after `timeout` seconds.

    `shutdown()` itself waits without a deadline, so it runs in a helper thread and the wait is on
    the serving thread instead.
    """
    stopper = threading.Thread(target=server.shutdown, name=f"stopping {what}", daemon=True)
    stopper.start()
    join_thread(serving, f"the serve_forever loop of {what}", timeout)
    join_thread(stopper, f"shutdown() of {what}", timeout)


class LineReader:
    """The lines of a child process's pipe, read by a thread so that waiting for one can time out.

    The thread closes the pipe when it ends, so the test need not.
    """

    def __init__(self, stream: IO[str], name: str) -> None:
        self.name = name
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(
            target=self._read, args=(stream,), name=f"reading {name}", daemon=True
        )
        self._thread.start()

    def _read(self, stream: IO[str]) -> None:
        with stream:
            for line in stream:
                self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def next_line(self, what: str, timeout: float = DEFAULT_SECONDS) -> str:
        """The next line; AssertionError naming `what` if none comes within `timeout` seconds."""
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(
                f"timed out after {timeout:g} s waiting for {what} on {self.name}"
            ) from None
        if line is None:
            raise AssertionError(f"{self.name} ended before {what}")
        return line

    def rest(self, timeout: float = DEFAULT_SECONDS) -> list[str]:
        """Every line still to come, once the pipe has closed (within `timeout` seconds)."""
        join_thread(self._thread, f"the end of {self.name}", timeout)
        lines = []
        with contextlib.suppress(queue.Empty):  # empty if next_line already met the end
            while (line := self._lines.get_nowait()) is not None:
                lines.append(line)
            self._lines.put(None)  # so that a later next_line says the pipe ended
        return lines
