"""Regenerate docs/cli.md from every command's --help (a test fails when it is out of date)."""

from pathlib import Path

from promptform.cli import help_markdown

if __name__ == "__main__":
    target = Path(__file__).resolve().parents[1] / "docs" / "cli.md"
    target.write_text(help_markdown(), encoding="utf-8")
    print(f"wrote {target}")
