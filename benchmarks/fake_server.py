"""The loopback fake images API in a process of its own, for the benchmarks that send requests."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
KEY = "sk-bench-0123456789"


class FakeServer:
    """`python -m tests.support.fake_images_api` in its own process."""

    def __init__(self, *options: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.support.fake_images_api", "--api-key", KEY, *options],
            cwd=REPO,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        if not line.startswith("FAKE_IMAGES_API="):
            raise SystemExit(f"the fake server did not start: {line!r}")
        self.base_url = line.partition("=")[2]

    def stats(self) -> dict[str, object]:
        """Its counters now (GET /_fake/stats)."""
        origin = self.base_url.removesuffix("/v1")
        with urllib.request.urlopen(f"{origin}/_fake/stats", timeout=30) as answer:
            stats: dict[str, object] = json.load(answer)
        return stats

    def stop(self) -> dict[str, object]:
        """Stop it and return its counters (it prints them as its last line on SIGTERM)."""
        assert self.process.stdout is not None
        self.process.send_signal(signal.SIGTERM)
        lines = self.process.stdout.read().strip().splitlines()
        self.process.wait(timeout=60)
        self.process.stdout.close()
        return json.loads(lines[-1]) if lines else {}
