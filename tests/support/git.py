"""Real git in temp dirs for the publishing and merge-driver tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from promptform.state.lockfile import LockedOutput, LockEntry, ProviderRef


def git(cwd: Path, *args: str, check: bool = True) -> str:
    result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    if check and result.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {result.stderr}{result.stdout}")
    return result.stdout.strip()


def init_repo(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    return path


def commit_all(path: Path, message: str) -> str:
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", message)
    return git(path, "rev-parse", "HEAD")


def enable_merge_driver(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What `promptform init` tells users to run, with this venv's promptform on PATH."""
    bin_dir = str(Path(sys.executable).parent)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    git(repo, "config", "merge.promptform.driver", "promptform lock merge %O %A %B")


def entry(fingerprint: str, path: str = "a.png", sha: str = "0" * 64) -> LockEntry:
    return LockEntry(
        fingerprint=fingerprint,
        request={"model": "gpt-image-2", "prompt": fingerprint},
        outputs=[LockedOutput(path=path, sha256=sha, bytes=10, format="png")],
        provider=ProviderRef(kind="offline", name="offline"),
        model="gpt-image-2",
        generated_at="2026-01-01T00:00:00Z",
    )
