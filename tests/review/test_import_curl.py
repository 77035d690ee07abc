"""import-curl: a curl command or JSON body becomes a manifest; prompts exact, credentials never kept."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from syrupy.assertion import SnapshotAssertion

from promptform.core.config import load_config
from promptform.engine.project import load_project
from promptform.review.import_curl import CurlImportError, parse_input, prompt_template
from tests.support.cli import CliResult, RunCli
from tests.support.files import MakeProject

CONFIG = '[promptform]\ndefault_provider = "offline"\n'
KEY = "sk-proj-abcdefghijklmnopqrstuvwxyz012345"

CURL = f"""curl https://api.wisgate.ai/v1/images/generations \\
  -H "Content-Type: application/json" \\
  -H "Authorization: Bearer {KEY}" \\
  -d '{{
    "model": "gpt-image-2",
    "prompt": "A red bicycle leaning on a wall.\\nGolden hour, 35mm film.",
    "n": 2,
    "size": "1536x1024",
    "quality": "high",
    "output_format": "webp",
    "response_format": "b64_json"
  }}'
"""


@pytest.fixture
def root(make_project: MakeProject) -> Path:
    return make_project({"promptform.toml": CONFIG, "refs/logo.png": b"not read"})


def run_import(run_cli: RunCli, root: Path, text: str, *args: str) -> CliResult:
    source = root.parent / "request.txt"
    source.write_text(text)
    return run_cli("-C", root, "import-curl", source, *args)


def loaded_prompt(root: Path) -> str:
    (target,) = load_project(load_config(root)).targets
    return str(target.body["prompt"])


def test_curl_command_becomes_a_manifest(
    root: Path, run_cli: RunCli, snapshot: SnapshotAssertion
) -> None:
    result = run_import(run_cli, root, CURL, "--name", "bike")
    assert result.exit_code == 0, result.stderr
    written = (root / "prompts/bike.yaml").read_text()
    assert {"manifest": written, "stdout": result.stdout, "stderr": result.stderr} == snapshot
    assert KEY not in written and "Bearer" not in written


def test_bare_json_body_from_stdin(
    root: Path, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch, snapshot: SnapshotAssertion
) -> None:
    body = {"model": "gpt-image-1", "prompt": "A blue kayak.", "size": "1024x1024"}
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(body)))
    result = run_cli("-C", root, "import-curl", "-", "--out", "prompts/boats/kayak.yaml")
    assert result.exit_code == 0, result.stderr
    assert (root / "prompts/boats/kayak.yaml").read_text() == snapshot


@pytest.mark.parametrize(
    "prompt",
    [
        "Line one.\n  indented line two\n\ttab, trailing spaces   \nend: with # and 'quotes' \"too\"",
        "Jinja-looking {{ subject }} and {% if %} and {# note #} kept literally",
        "literal {% endraw %} inside, and {% raw %} too",
        "unicode: café, 東京, emoji 🚲, line\u2028separator",
        "- starts like a list: and has: colons",
        "@ starts with a YAML indicator",
    ],
)
def test_prompt_is_kept_byte_for_byte(root: Path, run_cli: RunCli, prompt: str) -> None:
    body = json.dumps({"model": "gpt-image-2", "prompt": prompt})
    result = run_import(run_cli, root, body, "--name", "exact")
    assert result.exit_code == 0, result.stderr
    assert loaded_prompt(root) == prompt


def test_edit_form_fields_become_reference_images(
    root: Path, run_cli: RunCli, snapshot: SnapshotAssertion
) -> None:
    command = (
        "curl -s -X POST https://api.wisgate.ai/v1/images/edits "
        f"-H 'Authorization: Bearer {KEY}' "
        "-F model=gpt-image-2 -F 'image[]=@refs/logo.png;type=image/png' "
        "-F 'prompt=Put the logo on a mug' -F n=1"
    )
    result = run_import(run_cli, root, command, "--name", "mug")
    assert result.exit_code == 0, result.stderr
    assert (root / "prompts/mug.yaml").read_text() == snapshot


def test_key_like_string_in_the_prompt_is_refused(root: Path, run_cli: RunCli) -> None:
    body = json.dumps({"model": "gpt-image-2", "prompt": f"draw {KEY}"})
    result = run_import(run_cli, root, body)
    assert result.exit_code == 1
    assert "looks like an API key" in result.stderr
    assert not (root / "prompts").exists() or not list((root / "prompts").rglob("*.yaml"))


def test_key_field_in_the_body_is_left_out_and_said(root: Path, run_cli: RunCli) -> None:
    body = json.dumps({"model": "gpt-image-2", "prompt": "A cat.", "api_key": KEY})
    result = run_import(run_cli, root, body, "--name", "cat")
    assert result.exit_code == 0
    assert "note: left out the body field 'api_key' (credentials)" in result.stderr
    assert KEY not in (root / "prompts/cat.yaml").read_text()


def test_existing_manifest_is_never_overwritten(root: Path, run_cli: RunCli) -> None:
    (root / "prompts").mkdir()
    (root / "prompts/bike.yaml").write_text("prompt: mine\n")
    result = run_import(run_cli, root, CURL, "--name", "bike")
    assert result.exit_code == 1
    assert (
        result.stderr == "error: prompts/bike.yaml already exists; choose another --name or --out\n"
    )
    assert (root / "prompts/bike.yaml").read_text() == "prompt: mine\n"


def test_invalid_result_is_not_kept(root: Path, run_cli: RunCli) -> None:
    body = json.dumps({"model": "gpt-image-2", "prompt": "A cat.", "size": "13x7"})
    result = run_import(run_cli, root, body, "--name", "cat")
    assert result.exit_code == 1
    assert "the imported manifest is not valid, so it was not kept" in result.stderr
    assert not (root / "prompts/cat.yaml").exists()


def test_out_must_be_under_prompts(root: Path, run_cli: RunCli) -> None:
    result = run_import(run_cli, root, CURL, "--out", "../elsewhere/bike.yaml")
    assert result.exit_code == 1
    assert "--out must be a .yaml file under prompts/" in result.stderr


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("wget https://example.com", "expected a curl command"),
        ("curl https://x/v1/images/generations", "has no request body"),
        ("curl https://x -d @body.json", "import that file instead"),
        ("curl https://x -d '{not json'", "not valid JSON"),
        ('{"prompt": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested too deeply"),
        ('{"model": "gpt-image-2", "prompt": "x", "style": "vivid"}', "'style' has no manifest"),
        ('{"model": "gpt-image-2"}', "the request has no prompt"),
        ("curl 'unterminated", "cannot parse the curl command"),
    ],
)
def test_unusable_input_is_one_clear_error(text: str, message: str) -> None:
    with pytest.raises(CurlImportError, match=message):
        parse_input(text)


def test_raw_blocks_render_back_to_the_literal_text() -> None:
    assert prompt_template("plain") == "plain"
    assert prompt_template("a {{ b }}") == "{% raw %}a {{ b }}{% endraw %}"


CURL_WORDS = [
    "curl",
    "https://api.wisgate.ai/v1/images/generations",
    "-H",
    "Content-Type: application/json",
    "-H",
    f"Authorization: Bearer {KEY}",
    "-d",
    '{"model": "gpt-image-2", "prompt": "A red bicycle.", "size": "1536x1024"}',
]


def test_curl_command_after_a_double_dash_is_imported(root: Path, run_cli: RunCli) -> None:
    result = run_cli("-C", root, "import-curl", "--name", "bike", "--", *CURL_WORDS)
    assert result.exit_code == 0, result.stderr
    written = (root / "prompts/bike.yaml").read_text()
    assert "A red bicycle." in written and KEY not in written


def test_curl_command_as_arguments_keeps_its_own_options(root: Path, run_cli: RunCli) -> None:
    result = run_cli("-C", root, "import-curl", *CURL_WORDS, "--name", "bike")
    assert result.exit_code == 0, result.stderr
    assert "A red bicycle." in (root / "prompts/bike.yaml").read_text()


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_bare_import_curl_on_a_terminal_asks_for_the_command(
    root: Path, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch, snapshot: SnapshotAssertion
) -> None:
    monkeypatch.setattr("sys.stdin", _Terminal(CURL))
    result = run_cli("-C", root, "import-curl", "--name", "bike")
    assert result.exit_code == 0, result.stderr
    assert result.stderr == snapshot


def test_bare_import_curl_from_a_pipe_asks_nothing(
    root: Path, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(CURL))
    result = run_cli("-C", root, "import-curl", "--name", "bike")
    assert result.exit_code == 0, result.stderr
    assert "Paste" not in result.stderr


@pytest.mark.parametrize(
    ("out", "written"),
    [
        ("otter.yaml", "prompts/otter.yaml"),
        ("animals/otter.yaml", "prompts/animals/otter.yaml"),
        ("prompts/animals/otter.yaml", "prompts/animals/otter.yaml"),
    ],
)
def test_out_is_relative_to_prompts(root: Path, run_cli: RunCli, out: str, written: str) -> None:
    result = run_import(run_cli, root, CURL, "--out", out)
    assert result.exit_code == 0, result.stderr
    assert (root / written).is_file()
