"""The README's first command on a fresh virtualenv: a plain install (no extras) runs the demo.

The test suite's own environment has every extra installed, so only a separate virtualenv can show
that the package's declared dependencies are enough for what a new user runs first.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from promptform.core.images import check_format
from tests.support.files import write_files

REPO = Path(__file__).resolve().parents[1]
# What `pip install -e .` and scripts/demo.py read; copied so neither writes into this checkout.
INSTALLED = ("pyproject.toml", "README.md", "src", "scripts")
DEMO_INPUTS = ("promptform.toml", "prompts", "templates", "schema")

# Captured at import, before the per-test fixtures give each test a throwaway HOME: pip must read the
# user's own index configuration (~/.config/pip, proxies, PIP_* variables) and reuse pip's wheel
# cache, or every run would download and build every dependency again. pip's cache is the only place
# outside the test's temp directory this test writes to.
_SECRET_PREFIXES = ("GITHUB_", "WISGATE_", "OPENAI_", "AZURE_OPENAI_", "PROMPTFORM_")
PIP_ENVIRONMENT = {
    name: value for name, value in os.environ.items() if not name.startswith(_SECRET_PREFIXES)
}

VENV_SECONDS = 120
INSTALL_SECONDS = 420
DEMO_SECONDS = 120


def run(command: list[str], *, seconds: float, env: dict[str, str] | None = None) -> str:
    """Run `command`; fail the test naming it, with its output, if it exits non-zero or overruns."""
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=seconds, env=env, check=False
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{' '.join(command)} did not finish within {seconds:g} s")
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{' '.join(command)} exited {result.returncode}:\n{output}"
    return result.stdout


def copy_of_the_repository(destination: Path) -> Path:
    destination.mkdir()
    for name in (*INSTALLED, *DEMO_INPUTS):
        source = REPO / name
        if source.is_dir():
            shutil.copytree(
                source,
                destination / name,
                ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"),
            )
        else:
            shutil.copy2(source, destination / name)
    return destination


# Creating the virtualenv and installing into it takes 10-60 s, depending on pip's cache.
@pytest.mark.timeout(VENV_SECONDS + INSTALL_SECONDS + 2 * DEMO_SECONDS + 60)
def test_the_readme_demo_and_every_output_format_work_on_a_plain_install(tmp_path: Path) -> None:
    checkout = copy_of_the_repository(tmp_path / "checkout")
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)], seconds=VENV_SECONDS)
    python = venv / "bin" / "python"
    run(
        [str(python), "-m", "pip", "install", "-q", "-e", str(checkout)],
        seconds=INSTALL_SECONDS,
        env=PIP_ENVIRONMENT,
    )

    # The demo's scratch copy goes under this test's temp directory.
    scratch_parent = tmp_path / "tmp"
    scratch_parent.mkdir()
    demo_environment = {**os.environ, "TMPDIR": str(scratch_parent)}
    output = run(
        [str(python), str(checkout / "scripts" / "demo.py")],
        seconds=DEMO_SECONDS,
        env=demo_environment,
    )

    images = re.search(r"^Images:\s+(.+)$", output, re.MULTILINE)
    assert images, output
    generated = Path(images[1])
    assert generated.is_relative_to(scratch_parent)
    by_format = {
        path.suffix: check_format(path.read_bytes(), path.suffix[1:])
        for path in sorted(generated.rglob("*"))
        if path.is_file()
    }
    # The example prompts ask for PNG and, in marketing/product-hero-sunset-v2, WEBP.
    assert {".png", ".webp"} <= set(by_format), sorted(by_format)

    # Every output format of the images API, applied by the installed command.
    project = write_files(
        tmp_path / "formats",
        {
            "promptform.toml": "[defaults]\nmodel = 'gpt-image-2'\nsize = '256x128'\n",
            "prompts/png.yaml": "prompt: A png tile.\noutput_format: png\n",
            "prompts/jpeg.yaml": "prompt: A jpeg tile.\noutput_format: jpeg\n",
            "prompts/webp.yaml": "prompt: A webp tile.\noutput_format: webp\n",
            "prompts/clear.yaml": "prompt: A clear tile.\noutput_format: png\nbackground: transparent\n",
        },
    )
    promptform = str(venv / "bin" / "promptform")
    run(
        [promptform, "-C", str(project), "apply", "--yes", "--provider", "offline"],
        seconds=DEMO_SECONDS,
        env=demo_environment,
    )
    written = {
        path.name: check_format(path.read_bytes(), path.suffix[1:])
        for path in (project / "generated").iterdir()
    }
    assert written == {
        "png-1.png": ("png", 256, 128),
        "jpeg-1.jpg": ("jpeg", 256, 128),
        "webp-1.webp": ("webp", 256, 128),
        "clear-1.png": ("png", 256, 128),
    }
