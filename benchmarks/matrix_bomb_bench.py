"""Benchmark: how fast and how small `validate` refuses a matrix bomb (10 axes x 10 values).

A pull request can put such a manifest in front of the plan workflow; it must be refused before it
is expanded. Run with `python benchmarks/matrix_bomb_bench.py`: it prints the median time and peak
memory of refusing the bomb in-process (tracemalloc), and the wall time of one `validate` subprocess
beside that of a one-target project, so the difference is what the bomb costs.
"""

from __future__ import annotations

import contextlib
import io
import statistics
import string
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from promptform.cli import main

RUNS = 7
CONFIG = '[promptform]\ndefault_provider = "offline"\n'


def build(root: Path, axes: int) -> Path:
    (root / "prompts").mkdir(parents=True)
    (root / "promptform.toml").write_text(CONFIG)
    lines = ["prompt: A {{ a }} poster.", "matrix:"] if axes else ["prompt: A poster."]
    for axis in string.ascii_lowercase[:axes]:
        lines.append(f"  {axis}: [{', '.join(str(value) for value in range(10))}]")
    (root / "prompts" / "poster.yaml").write_text("\n".join(lines) + "\n")
    return root


def in_process(root: Path) -> tuple[float, float, int]:
    """(median seconds, peak MB, exit code) of validate in this process."""
    seconds, peaks, code = [], [], 0
    for _ in range(RUNS):
        tracemalloc.start()
        started = time.perf_counter()
        with contextlib.redirect_stderr(io.StringIO()):
            code = main(["-C", str(root), "validate"])
        seconds.append(time.perf_counter() - started)
        peaks.append(tracemalloc.get_traced_memory()[1] / 1e6)
        tracemalloc.stop()
    return statistics.median(seconds), max(peaks), code


def subprocess_seconds(root: Path) -> float:
    runs = []
    for _ in range(RUNS):
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "promptform", "-C", str(root), "validate"],
            capture_output=True,
            check=False,
            timeout=60,
        )
        runs.append(time.perf_counter() - started)
    return statistics.median(runs)


def main_bench() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        bomb = build(Path(scratch) / "bomb", axes=10)
        plain = build(Path(scratch) / "plain", axes=0)
        # Warm the imports: the subprocesses below pay for them anyway.
        with contextlib.redirect_stderr(io.StringIO()):
            main(["-C", str(bomb), "validate"])
        seconds, peak, code = in_process(bomb)
        print(
            f"refusing 10^10 cells in-process: {seconds * 1000:.2f} ms, peak {peak:.2f} MB, exit {code}"
        )
        bomb_wall, plain_wall = subprocess_seconds(bomb), subprocess_seconds(plain)
        print(
            f"validate subprocess: bomb {bomb_wall * 1000:.0f} ms, one target {plain_wall * 1000:.0f} ms"
        )


if __name__ == "__main__":
    main_bench()
