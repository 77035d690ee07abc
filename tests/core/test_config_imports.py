"""Loading a well-formed config imports no pydantic: importing it alone takes longer than the rest of
a no-op plan's start-up. Each case runs in a fresh interpreter, where nothing imported it before."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support.files import write_files
from tests.support.plans import CONFIG

# Loads the config of each directory in argv[1:], then prints, as JSON, what each load gave (the
# one-line error, or None) and whether any pydantic module was imported by then.
CHILD = """\
import json, sys
from pathlib import Path
from promptform.core.config import load_config
from promptform.core.errors import ConfigError

def pydantic_imported():
    # annotated_types too: its bounds are pydantic's, and importing it costs as much as the load.
    return any(
        name.split(".")[0] in ("pydantic", "pydantic_core", "annotated_types")
        for name in sys.modules
    )

loads = [("import", None, pydantic_imported())]
for directory in sys.argv[1:]:
    try:
        load_config(Path(directory))
        error = None
    except ConfigError as exc:
        error = exc.one_line()
    loads.append((directory, error, pydantic_imported()))
print(json.dumps(loads))
"""

WELL_FORMED = {
    "promptform.toml": CONFIG
    + """
[providers.local]
kind = "offline"
timeout_s = 5

[budget]
max_cost = 2.5

[limits]
max_targets = 500
""",
}


def loads_in_a_fresh_interpreter(*directories: Path) -> list[tuple[str, str | None, bool]]:
    """(directory, error or None, pydantic imported by then) of each load, after the import."""
    done = subprocess.run(
        [sys.executable, "-c", CHILD, *map(str, directories)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return [tuple(load) for load in json.loads(done.stdout)]


def test_loading_a_well_formed_config_or_none_imports_no_pydantic(tmp_path: Path) -> None:
    configured = write_files(tmp_path / "toml", WELL_FORMED)
    in_pyproject = write_files(
        tmp_path / "pyproject",
        {"pyproject.toml": '[tool.promptform.promptform]\nprompts_dir = "art"\n'},
    )
    unconfigured = write_files(tmp_path / "no-config", {"prompts/a.yaml": "name: a\n"})

    loads = loads_in_a_fresh_interpreter(configured, in_pyproject, unconfigured)

    assert loads == [
        ("import", None, False),
        (str(configured), None, False),
        (str(in_pyproject), None, False),
        (str(unconfigured), None, False),
    ]


def test_a_malformed_config_is_reported_by_pydantic_with_the_usual_message(tmp_path: Path) -> None:
    well_formed = write_files(tmp_path / "well-formed", WELL_FORMED)
    misspelt = write_files(
        tmp_path / "misspelt", {"promptform.toml": '[promptform]\nprompt_dir = "art"\n'}
    )
    not_a_table = write_files(
        tmp_path / "not-a-table", {"promptform.toml": "[providers]\nlocal = 1\n"}
    )

    loads = loads_in_a_fresh_interpreter(well_formed, misspelt, not_a_table)

    assert loads == [
        ("import", None, False),
        (str(well_formed), None, False),
        (
            str(misspelt),
            "promptform.toml:2: unknown field 'prompt_dir' in [promptform]; did you mean "
            "'prompts_dir'?",
            True,  # the check sees pydantic once it is imported
        ),
        (
            str(not_a_table),
            "promptform.toml:2: 'providers.local' input should be a valid dictionary or instance "
            "of ProviderSettings (got 1)",
            True,
        ),
    ]
