"""tests/support/waiting.py: each wait fails after its deadline, saying what it was waiting for."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.support.waiting import LineReader, join_thread, run_within, stop_serving, wait_for


def test_wait_for_returns_once_the_condition_holds() -> None:
    ready_at = time.monotonic() + 0.05
    wait_for(lambda: time.monotonic() >= ready_at, timeout=5, what="the clock")


def test_wait_for_names_what_never_happened() -> None:
    with pytest.raises(
        AssertionError, match=r"timed out after 0.05 s waiting for the first request"
    ):
        wait_for(lambda: False, timeout=0.05, what="the first request")


def test_join_thread_names_a_thread_that_does_not_finish() -> None:
    release = threading.Event()
    stuck = threading.Thread(target=release.wait, args=(5,))
    stuck.start()
    try:
        with pytest.raises(AssertionError, match=r"waiting for the uploader to finish"):
            join_thread(stuck, "the uploader", timeout=0.05)
    finally:
        release.set()
        join_thread(stuck, "the released thread")


def test_run_within_names_a_coroutine_that_does_not_finish() -> None:
    with pytest.raises(AssertionError, match=r"waiting for the limiter"):
        run_within(asyncio.sleep(5), "the limiter", timeout=0.05)
    assert run_within(asyncio.sleep(0, result=7), "an immediate result") == 7


def test_line_reader_gives_lines_names_a_missing_one_and_the_end() -> None:
    read_end, write_end = os.pipe()
    with os.fdopen(write_end, "w") as writer:
        lines = LineReader(os.fdopen(read_end), "the child's stdout")
        writer.write("ready\n")
        writer.flush()
        assert lines.next_line("the ready line") == "ready"
        with pytest.raises(AssertionError, match=r"waiting for the port on the child's stdout"):
            lines.next_line("the port", timeout=0.05)
        writer.write("last\n")
    assert lines.rest() == ["last"]
    with pytest.raises(AssertionError, match=r"the child's stdout ended before the port"):
        lines.next_line("the port")


def test_stop_serving_stops_a_server_and_its_loop() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    serving = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    serving.start()
    try:
        stop_serving(server, serving, "the test server", timeout=5)
        assert not serving.is_alive()
    finally:
        server.server_close()
