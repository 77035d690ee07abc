"""Run promptform's main job on this repository's example prompts, without a key or network.

1. `promptform plan` here: what apply would generate, why, and what it would cost.
2. `promptform apply --yes --provider offline` in a scratch copy (this checkout is never modified).
3. `promptform plan` again in the copy: nothing left to do.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = ("promptform.toml", "prompts", "templates", "schema")


def promptform(*args: str) -> None:
    command = [sys.executable, "-m", "promptform", *args]
    print(f"\n$ promptform {' '.join(args)}", flush=True)
    result = subprocess.run(command, check=False)
    if result.returncode not in (0, 2):
        sys.exit(result.returncode)


def main() -> None:
    promptform("-C", str(REPO), "plan")
    scratch = Path(tempfile.mkdtemp(prefix="promptform-demo-"))
    for name in EXAMPLE:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, scratch / name)
        elif source.is_file():
            shutil.copy2(source, scratch / name)
    promptform("-C", str(scratch), "apply", "--yes", "--provider", "offline")
    promptform("-C", str(scratch), "plan", "--provider", "offline")
    print(f"\nImages:   {scratch / 'generated'}")
    print(f"Lockfile: {scratch / 'promptform.lock'}")


if __name__ == "__main__":
    main()
