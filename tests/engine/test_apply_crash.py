"""apply as a real process: a second apply, Ctrl-C and kill -9 against the loopback images API.

Whatever happens to the process, the lockfile must parse, every entry must match the bytes on disk,
and the next apply must finish the job paying only for what was lost in flight.
"""

from __future__ import annotations

import signal
import socket
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.apply import (
    cards,
    locked_entries_match_disk,
    make_fake_project,
    subprocess_env,
)
from tests.support.apply import keyed_fake_images_api as keyed_fake_images_api  # `server`
from tests.support.children import StderrChild
from tests.support.cli import RunCli
from tests.support.fake_images_api import FakeImagesAPI, ok
from tests.support.waiting import wait_for


class ApplyProcess(StderrChild):
    """`promptform apply --yes` in a child process."""

    def __init__(self, root: Path, *args: str) -> None:
        self._stdout = (root.parent / "apply-stdout.txt").open("w")
        command = [sys.executable, "-m", "promptform", "-C", str(root), "apply", "--yes", *args]
        super().__init__(command, subprocess_env(), stdout=self._stdout)

    def wait_for_line(self, prefix: str) -> None:
        wait_for(
            lambda: (
                any(line.startswith(prefix) for line in self.lines)
                or self.process.poll() is not None
            ),
            what=f"a line starting with {prefix!r}",
        )
        assert any(line.startswith(prefix) for line in self.lines), self.output()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.finish()
        assert self.process.stderr is not None
        self.process.stderr.close()
        self._stdout.close()


@pytest.fixture
def spawn() -> Iterator[Callable[..., ApplyProcess]]:
    started: list[ApplyProcess] = []

    def start(root: Path, *args: str) -> ApplyProcess:
        started.append(ApplyProcess(root, *args))
        return started[-1]

    yield start
    for process in started:
        process.close()


def test_second_apply_is_refused_naming_the_one_running(
    tmp_path: Path,
    server: FakeImagesAPI,
    run_cli: RunCli,
    spawn: Callable[..., ApplyProcess],
) -> None:
    root = make_fake_project(tmp_path / "repo", server, cards(2))
    server.default = ok(latency=0.6)
    first = spawn(root, "--concurrency", "1")
    wait_for(lambda: len(server.image_requests) > 0, what="the first apply's first request")
    second = run_cli("-C", root, "apply", "--yes")
    assert second.exit_code == 1
    assert (
        f"another apply is running on this repository (pid {first.process.pid} on "
        f"{socket.gethostname()}, started " in second.stderr
    )
    assert first.finish() == 0, first.output()
    assert len(server.image_requests) == 2  # the refused apply sent nothing


def test_ctrl_c_drains_requests_in_flight_records_them_and_exits_130(
    tmp_path: Path,
    server: FakeImagesAPI,
    run_cli: RunCli,
    spawn: Callable[..., ApplyProcess],
) -> None:
    root = make_fake_project(tmp_path / "repo", server, cards(8))
    server.default = ok(latency=0.5)
    apply = spawn(root, "--concurrency", "2")
    apply.wait_for_line("[1/8] created")
    apply.process.send_signal(signal.SIGINT)
    assert apply.finish() == 130, apply.output()
    assert "Interrupted: waiting for" in apply.output()
    assert "Apply interrupted:" in apply.output()
    entries = locked_entries_match_disk(root)
    # Requests in flight were let finish and recorded (nothing paid for is lost), and no new one
    # started: at most two were in flight when the first finished, two more after the signal.
    assert len(entries) == server.generations <= 4

    resumed = run_cli("-C", root, "apply", "--yes")
    assert resumed.exit_code == 0, resumed.stderr
    assert len(locked_entries_match_disk(root)) == 8
    assert server.generations == 8  # the re-run generated only what was left


def test_a_second_ctrl_c_says_which_abandoned_requests_may_have_been_billed(
    tmp_path: Path,
    server: FakeImagesAPI,
    spawn: Callable[..., ApplyProcess],
) -> None:
    root = make_fake_project(tmp_path / "repo", server, cards(4))
    server.default = ok(latency=3.0)
    apply = spawn(root, "--concurrency", "3")
    wait_for(lambda: len(server.image_requests) == 3, what="three requests in flight")
    apply.process.send_signal(signal.SIGINT)
    apply.wait_for_line("Interrupted: waiting for")
    apply.process.send_signal(signal.SIGINT)

    assert apply.finish() == 130, apply.output()

    output = apply.output()
    # The three sent may be billed although nothing came back; the fourth never left.
    assert "3 request(s) were sent and abandoned" in output, output
    assert "cards[i=1], cards[i=2], cards[i=3]" in output
    assert "1 target(s) not started" in output
    locked_entries_match_disk(root)


def test_kill_9_halfway_loses_at_most_the_requests_in_flight(
    tmp_path: Path,
    server: FakeImagesAPI,
    run_cli: RunCli,
    spawn: Callable[..., ApplyProcess],
) -> None:
    targets, concurrency = 30, 4
    root = make_fake_project(tmp_path / "repo", server, cards(targets))
    server.default = ok(latency=0.3)
    apply = spawn(root, "--concurrency", str(concurrency))
    apply.wait_for_line(f"[{targets // 2}/{targets}]")
    apply.process.kill()
    assert apply.finish() == -signal.SIGKILL
    recorded = locked_entries_match_disk(root)  # parses, and every entry is true
    assert targets // 2 <= len(recorded) < targets

    server.default = ok()
    resumed = run_cli("-C", root, "apply", "--yes")
    assert resumed.exit_code == 0, resumed.stderr
    assert f"{targets - len(recorded)} generated" in resumed.stderr
    entries = locked_entries_match_disk(root)
    assert sorted(entries) == sorted(f"cards[i={i}]" for i in range(1, targets + 1))
    assert server.generations <= targets + concurrency
