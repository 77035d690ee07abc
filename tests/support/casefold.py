"""A case-insensitive file system for a test: a small FAT image mounted through FUSE (fusefat).

Needs mkfs.vfat, fusefat, fusermount and /dev/fuse (root in the test container); tests using it are
skipped where those are missing. FAT is what USB sticks and many Windows shares use, and it folds
case as macOS's default APFS does.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

TOOLS = ("mkfs.vfat", "fusefat", "fusermount")


def case_insensitive_available() -> str | None:
    """Why no case-insensitive file system can be mounted here, or None."""
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        return f"{', '.join(missing)} not installed (apt-get install dosfstools fusefat fuse)"
    if not os.access("/dev/fuse", os.R_OK | os.W_OK):
        return "/dev/fuse is not usable"
    return None


@contextmanager
def case_insensitive_dir(scratch: Path) -> Iterator[Path]:
    """A folder on a freshly made FAT file system, unmounted afterwards."""
    problem = case_insensitive_available()
    if problem:
        pytest.skip(problem)
    image, mount = scratch / "fat.img", scratch / "fat"
    mount.mkdir()
    with image.open("wb") as stream:
        stream.truncate(16 * 1024 * 1024)
    subprocess.run(["mkfs.vfat", str(image)], check=True, capture_output=True, timeout=30)
    mounted = subprocess.run(
        # No FUSE caching: a cached lookup of `hero.png` would outlive a rename of `Hero.png`,
        # which no real case-insensitive file system does.
        [
            "fusefat",
            "-o",
            "rw+,entry_timeout=0,negative_timeout=0,attr_timeout=0",
            str(image),
            str(mount),
        ],
        capture_output=True,
        timeout=30,
    )
    if mounted.returncode != 0:
        pytest.skip(f"fusefat could not mount a FAT image: {mounted.stderr.decode().strip()}")
    try:
        probe = mount / "Probe"
        probe.write_bytes(b"")
        if not (mount / "probe").exists():
            pytest.skip("the mounted FAT image is not case-insensitive")
        probe.unlink()
        yield mount
    finally:
        subprocess.run(["fusermount", "-u", str(mount)], capture_output=True, timeout=30)
