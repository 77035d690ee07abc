"""Print the README's two set-up commands, one per line: the main job, then the test suite.

They are the shell blocks of the README's "Try it" section. `.ci/run` runs exactly what this prints,
so the commands it proves are the ones a newcomer copies; a README that spells more or fewer than two
is an error here.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
SECTION = "## Try it"
BLOCK = re.compile(r"^```sh\n(.*?)\n```$", re.MULTILINE | re.DOTALL)


def readme_commands(text: str) -> tuple[str, str]:
    """(main job, test suite) from the README's text."""
    text = "\n" + text  # a section on the first line starts after a line break too
    start = text.find(f"\n{SECTION}\n")
    if start < 0:
        raise ValueError(f"README.md has no '{SECTION}' section")
    end = text.find("\n## ", start + 1)
    blocks = BLOCK.findall(text[start : end if end > 0 else len(text)])
    if len(blocks) != 2 or any("\n" in block for block in blocks):
        raise ValueError(
            f"README.md's '{SECTION}' section must spell exactly two one-line sh commands, "
            f"found {len(blocks)} blocks"
        )
    return blocks[0], blocks[1]


def main() -> int:
    try:
        main_job, test_suite = readme_commands(README.read_text(encoding="utf-8"))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(main_job)
    print(test_suite)
    return 0


if __name__ == "__main__":
    sys.exit(main())
