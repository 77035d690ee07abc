"""The command line: exit codes, one-line errors, annotations, and snapshots of what users see."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path

import jsonschema
import pytest
import yaml
from syrupy.assertion import SnapshotAssertion

from promptform import __version__
from promptform.core.config import load_config
from tests.support.cli import RunCli
from tests.support.files import MakeProject, write_files

REPO = Path(__file__).resolve().parents[2]
PNG = b"\x89PNG\r\n\x1a\n" + b"reference pixels"
ERROR_LINE = re.compile(r"^error: [^:\s]+(:\d+(:\d+)?)?: \S.*$")

FIXTURE = {
    "promptform.toml": """
        [promptform]
        outputs_dir = "generated"

        [defaults]
        model = "gpt-image-2"
        size = "1024x1024"
        """,
    "templates/styles/photoreal.j2": "Photorealistic, 50mm lens, natural colours.",
    "templates/macros.j2": "{% macro mood(p) %}{{ 'warm amber light' if p == 'warm' else 'cool blue light' }}{% endmacro %}",
    "prompts/sunset.yaml": """
        # yaml-language-server: $schema=../schema/manifest.schema.json
        model: gpt-image-2
        prompt: A beautiful sunset
        n: 1
        size: 1024x1024
        """,
    "prompts/social/tiles.yaml": """
        name: social/tile
        quality: medium
        matrix:
          product: [water bottle, travel mug]
          palette: [warm, cool]
          exclude:
            - {product: travel mug, palette: cool}
        prompt: |
          {% import "macros.j2" as m %}
          {% include "styles/photoreal.j2" %}
          A {{ product }} on a plain backdrop, {{ m.mood(palette) }}.
        output: "social/{{ product | slug }}-{{ palette }}.png"
        """,
    "prompts/edits/snow.yaml": """
        name: edits/snowy-logo
        description: The logo, winterised.
        size: 1536x1024
        output_format: webp
        output_compression: 80
        images: [refs/logo.png]
        prompt: Add fresh snow on top of the logo, keep the colours.
        """,
    "refs/logo.png": PNG,
}


@pytest.fixture
def fixture_project(make_project: MakeProject) -> Path:
    return make_project(FIXTURE)


def test_render_json_snapshot(
    run_cli: RunCli, fixture_project: Path, snapshot: SnapshotAssertion
) -> None:
    result = run_cli("-C", fixture_project, "render", "--json")

    assert result.exit_code == 0
    assert json.loads(result.stdout) == snapshot


def test_render_text_snapshot(
    run_cli: RunCli, fixture_project: Path, snapshot: SnapshotAssertion
) -> None:
    result = run_cli("-C", fixture_project, "render")

    assert result.exit_code == 0
    assert result.stdout == snapshot


def test_render_selects_addresses_by_name_and_glob(run_cli: RunCli, fixture_project: Path) -> None:
    result = run_cli("-C", fixture_project, "render", "--json", "social/tile", "sun*")

    assert [request["address"] for request in json.loads(result.stdout)] == [
        "social/tile[product=water bottle,palette=warm]",
        "social/tile[product=water bottle,palette=cool]",
        "social/tile[product=travel mug,palette=warm]",
        "sunset",
    ]


def test_render_of_an_unknown_address_is_an_error(run_cli: RunCli, fixture_project: Path) -> None:
    result = run_cli("-C", fixture_project, "render", "nothing-here")

    assert result.exit_code == 1
    assert result.stderr == (
        "error: no target matches 'nothing-here'; "
        "`promptform render` with no argument lists them all\n"
    )


def test_validate_reports_the_counts(run_cli: RunCli, fixture_project: Path) -> None:
    result = run_cli("-C", fixture_project, "validate")

    assert result.exit_code == 0
    assert result.stderr == "ok: 3 manifests in 3 files, 5 targets\n"


def test_validate_quiet_prints_nothing_when_all_is_well(
    run_cli: RunCli, fixture_project: Path
) -> None:
    result = run_cli("-q", "-C", fixture_project, "validate")

    assert (result.exit_code, result.stdout, result.stderr) == (0, "", "")


def _symlink_outside(name: str, *, directory: bool) -> Callable[[Path], None]:
    def make(root: Path) -> None:
        outside = root.parent / ("outside-dir" if directory else "outside.j2")
        if directory:
            outside.mkdir(exist_ok=True)
        else:
            outside.write_text("secret")
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(outside, root / name)

    return make


ALIAS_BOMB = "\n".join(
    [
        'a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x"]',
        *(
            f"{name}: &{name} [{', '.join([f'*{previous}'] * 9)}]"
            for previous, name in zip("abcdefg", "bcdefgh", strict=True)
        ),
        "prompt: boom",
    ]
)

BAD_INPUTS: dict[str, tuple[dict[str, str | bytes], Callable[[Path], None] | None]] = {
    "malformed_yaml": ({"prompts/p.yaml": "prompt: x\n  size: [1024\n"}, None),
    "unknown_field": ({"prompts/p.yaml": "prompt: x\nsise: 1024x1024\n"}, None),
    "undefined_variable_in_block_prompt": (
        {"prompts/p.yaml": "name: hero\nprompt: |\n  A bicycle\n  in {{ colour }} paint\n"},
        None,
    ),
    "undefined_variable_in_partial": (
        {
            "templates/style.j2": "Photoreal.\nLit by {{ light }}.\n",
            "prompts/p.yaml": 'prompt: |\n  {% include "style.j2" %}\n',
        },
        None,
    ),
    "sandbox_mro": ({"prompts/p.yaml": "prompt: \"{{ ''.__class__.__mro__ }}\"\n"}, None),
    "sandbox_subclasses": (
        {"prompts/p.yaml": 'prompt: "{{ ().__class__.__base__.__subclasses__() }}"\n'},
        None,
    ),
    "huge_repetition": ({"prompts/p.yaml": "prompt: \"{{ 'a' * 10**9 }}\"\n"}, None),
    "lipsum_unavailable": ({"prompts/p.yaml": 'prompt: "{{ lipsum() }}"\n'}, None),
    "include_parent_dir": ({"prompts/p.yaml": "prompt: \"{% include '../x' %}\"\n"}, None),
    "include_absolute": ({"prompts/p.yaml": "prompt: \"{% include '/etc/hostname' %}\"\n"}, None),
    "include_symlink_outside": (
        {"templates/keep.j2": "", "prompts/p.yaml": "prompt: \"{% include 'link.j2' %}\"\n"},
        _symlink_outside("templates/link.j2", directory=False),
    ),
    "output_absolute": ({"prompts/p.yaml": "prompt: x\noutput: /etc/out.png\n"}, None),
    "output_parent_dir": ({"prompts/p.yaml": "prompt: x\noutput: ../out.png\n"}, None),
    "output_through_symlink": (
        {"prompts/p.yaml": "prompt: x\noutput: linked/out.png\n"},
        _symlink_outside("generated/linked", directory=True),
    ),
    "output_extension_mismatch": (
        {"prompts/p.yaml": "prompt: x\noutput_format: jpeg\noutput: out.png\n"},
        None,
    ),
    "alias_bomb": ({"prompts/p.yaml": ALIAS_BOMB}, None),
    "file_over_size_limit": ({"prompts/p.yaml": "prompt: " + "a" * 1_000_001 + "\n"}, None),
    "non_utf8": ({"prompts/p.yaml": "prompt: caf\xe9\n".encode("latin-1")}, None),
    "control_character": ({"prompts/p.yaml": "prompt: bell\x07\n"}, None),
    "duplicate_address": (
        {
            "prompts/a.yaml": "name: hero\nprompt: a\noutput: a.png\n",
            "prompts/b.yaml": "name: hero\nprompt: b\noutput: b.png\n",
        },
        None,
    ),
    "duplicate_output": (
        {
            "prompts/a.yaml": "prompt: a\noutput: same.png\n",
            "prompts/b.yaml": "prompt: b\noutput: same.png\n",
        },
        None,
    ),
    "size_not_divisible_by_16": ({"prompts/p.yaml": "prompt: x\nsize: 1000x1000\n"}, None),
    "size_ratio_and_maximum": ({"prompts/p.yaml": "prompt: x\nsize: 4096x1024\n"}, None),
    "size_full_hd": ({"prompts/p.yaml": "prompt: x\nsize: 1920X1080\n"}, None),
    "size_over_the_maximum": ({"prompts/p.yaml": "prompt: x\nsize: 4096x4096\n"}, None),
    "size_not_offered_by_the_model": (
        {"prompts/p.yaml": "prompt: x\nmodel: gpt-image-1\nsize: 1920x1080\n"},
        None,
    ),
    "quality_unknown": ({"prompts/p.yaml": "prompt: x\nquality: ultra\n"}, None),
    "transparent_jpeg": (
        {"prompts/p.yaml": "prompt: x\nbackground: transparent\noutput_format: jpeg\n"},
        None,
    ),
    "compression_png": ({"prompts/p.yaml": "prompt: x\noutput_compression: 50\n"}, None),
    "n_too_large": ({"prompts/p.yaml": "prompt: x\nn: 11\n"}, None),
    "prompt_too_long": ({"prompts/p.yaml": "prompt: " + "x" * 32_001 + "\n"}, None),
    "missing_reference_image": (
        {"prompts/p.yaml": "prompt: x\nimages: [refs/nowhere.png]\n"},
        None,
    ),
    "reference_cycle": (
        {
            "prompts/a.yaml": "prompt: a\noutput: a.png\nimages: [generated/b.png]\n",
            "prompts/b.yaml": "prompt: b\noutput: b.png\nimages: [generated/a.png]\n",
        },
        None,
    ),
    "yaml_colon_in_unquoted_prompt": (
        {"prompts/p.yaml": "name: poster\nprompt: A poster: bold type on a wall\nn: 1\n"},
        None,
    ),
    "yaml_line_without_colon_at_the_end": (
        {
            "prompts/p.yaml": "name: tiles\nmodel: gpt-image-2\nquality: low\nn: 1\nmatrix:\n"
            "  time: [day, night]\nprompt: A {{ time }} scene\noutput: tiles/{{ time }}.png\n"
            "size 1024x1024\n"
        },
        None,
    ),
    "yaml_unclosed_list": (
        {"prompts/p.yaml": "prompt: x\nmatrix:\n  time: [day, night\n"},
        None,
    ),
    "yaml_unclosed_quote": ({"prompts/p.yaml": 'prompt: "A fox\nn: 1\n'}, None),
    "yaml_tab_indent": ({"prompts/p.yaml": "prompt: x\nvars:\n\tcolour: red\n"}, None),
    "yaml_text_after_closing_quote": (
        {"prompts/p.yaml": 'prompt: "A fox" in a box\n'},
        None,
    ),
    "matrix_axis_not_indented": (
        {"prompts/p.yaml": "matrix:\ntime: [day, night]\nprompt: A {{ time }} scene\n"},
        None,
    ),
    "config_unknown_key": ({"promptform.toml": '[promptform]\nprompt_dir = "p"\n'}, None),
    "config_bad_type": ({"promptform.toml": '[defaults]\nn = "many"\n'}, None),
    "config_provider_without_kind": (
        {"promptform.toml": '[providers.gateway]\nbase_url = "https://gw.test/v1"\n'},
        None,
    ),
    "config_invalid_toml": ({"promptform.toml": "[promptform\n"}, None),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_one_clear_error_line_and_exit_1(
    run_cli: RunCli, make_project: MakeProject, snapshot: SnapshotAssertion, case: str
) -> None:
    files, setup = BAD_INPUTS[case]
    root = make_project(files)
    if setup is not None:
        setup(root)

    result = run_cli("-C", root, "validate")

    assert result.exit_code == 1
    assert result.stdout == ""
    assert all(ERROR_LINE.match(line) for line in result.stderr.splitlines()), result.stderr
    assert result.stderr == snapshot


def test_github_actions_gets_error_annotations(
    run_cli: RunCli,
    make_project: MakeProject,
    monkeypatch: pytest.MonkeyPatch,
    snapshot: SnapshotAssertion,
) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    root = make_project(
        {
            "prompts/a.yaml": "prompt: x\nsise: 1024x1024\n",
            "prompts/b.yaml": "prompt: x\nsize: 1000x1000\n",
        }
    )

    result = run_cli("-C", root, "validate")

    assert result.exit_code == 1
    assert "::error file=prompts/a.yaml,line=2,col=1::unknown field 'sise'" in result.stderr
    assert result.stdout == ""  # results on stdout (a plan comment, JSON) stay clean
    annotations = [line for line in result.stderr.splitlines() if line.startswith("::")]
    assert "\n".join(annotations) == snapshot


def test_github_actions_gets_warning_annotations_for_unknown_models(
    run_cli: RunCli, make_project: MakeProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    root = make_project({"prompts/a.yaml": "prompt: x\nmodel: brand-new-model\n"})

    result = run_cli("-C", root, "validate")

    assert result.exit_code == 0
    assert "::warning file=prompts/a.yaml,line=2,col=1::unknown model" in result.stderr


def test_no_annotations_outside_github_actions(run_cli: RunCli, make_project: MakeProject) -> None:
    root = make_project({"prompts/a.yaml": "prompt: x\nsise: 1024x1024\n"})

    result = run_cli("-C", root, "validate")

    assert result.exit_code == 1
    assert "::error" not in result.stdout + result.stderr


def test_schema_snapshot(run_cli: RunCli, snapshot: SnapshotAssertion) -> None:
    result = run_cli("schema")

    assert result.exit_code == 0
    assert result.stdout == snapshot


def test_checked_in_schema_is_the_schema_command_output(run_cli: RunCli) -> None:
    result = run_cli("schema")

    assert (REPO / "schema" / "manifest.schema.json").read_text(encoding="utf-8") == result.stdout


def example_documents() -> list[tuple[str, object]]:
    return [
        (f"{path.relative_to(REPO).as_posix()}#{index}", document)
        for path in sorted((REPO / "prompts").rglob("*.y*ml"))
        for index, document in enumerate(yaml.safe_load_all(path.read_text(encoding="utf-8")))
    ]


@pytest.mark.parametrize(("where", "document"), example_documents())
def test_example_manifests_validate_against_the_schema(where: str, document: object) -> None:
    schema = json.loads((REPO / "schema" / "manifest.schema.json").read_text(encoding="utf-8"))

    jsonschema.Draft202012Validator(schema).validate(document)


def test_schema_rejects_an_unknown_field() -> None:
    schema = json.loads((REPO / "schema" / "manifest.schema.json").read_text(encoding="utf-8"))

    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(schema).validate({"prompt": "x", "sise": "1024x1024"})


@pytest.mark.parametrize(
    "path", sorted(path.relative_to(REPO).as_posix() for path in (REPO / "prompts").rglob("*.y*ml"))
)
def test_example_manifests_point_editors_at_the_schema(path: str) -> None:
    first = (REPO / path).read_text(encoding="utf-8").splitlines()[0]
    match = re.fullmatch(r"# yaml-language-server: \$schema=(\S+)", first)

    assert match is not None
    assert ((REPO / path).parent / match[1]).resolve() == REPO / "schema" / "manifest.schema.json"


def test_repository_examples_validate(run_cli: RunCli) -> None:
    result = run_cli("-C", REPO, "validate")

    assert result.exit_code == 0, result.stderr


def test_init_into_an_empty_directory_gives_a_valid_project(
    run_cli: RunCli, tmp_path: Path
) -> None:
    target = tmp_path / "fresh"

    created = run_cli("init", target)
    validated = run_cli("-C", target, "validate")

    assert created.exit_code == 0
    assert (target / "promptform.toml").is_file()
    assert (target / ".gitattributes").is_file()
    assert validated.exit_code == 0, validated.stderr
    assert validated.stderr == "ok: 1 manifest in 1 file, 1 target\n"


def test_init_caps_what_one_apply_may_spend(run_cli: RunCli, tmp_path: Path) -> None:
    # A bug or a way around the approval gate must not be able to spend without bound; users
    # raise the caps when they need to.
    run_cli("init", tmp_path)
    budget = load_config(tmp_path).budget
    assert budget.max_images == 20
    assert budget.max_cost == 5.0


def test_init_scaffolds_a_schema_equal_to_the_schema_command(
    run_cli: RunCli, tmp_path: Path
) -> None:
    run_cli("init", tmp_path)

    assert (tmp_path / "schema/manifest.schema.json").read_text() == run_cli("schema").stdout


def test_init_keeps_existing_files(run_cli: RunCli, tmp_path: Path) -> None:
    write_files(
        tmp_path, {"promptform.toml": "# mine\n", "prompts/example/sunset.yaml": "prompt: mine\n"}
    )

    result = run_cli("init", tmp_path)

    assert result.exit_code == 0
    assert (tmp_path / "promptform.toml").read_text() == "# mine\n"
    assert (tmp_path / "prompts/example/sunset.yaml").read_text() == "prompt: mine\n"
    assert "kept     promptform.toml (already exists)" in result.stderr
    assert (tmp_path / "templates/styles/house.j2").is_file()


def test_init_relative_directory_is_relative_to_dash_c(run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli("-C", tmp_path, "init", "sub")

    assert result.exit_code == 0
    assert (tmp_path / "sub" / "promptform.toml").is_file()


def test_version(run_cli: RunCli) -> None:
    result = run_cli("--version")

    assert result.exit_code == 0
    assert result.stdout == f"promptform, version {__version__}\n"


def test_dash_c_runs_as_if_started_in_that_directory(
    run_cli: RunCli, fixture_project: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    result = run_cli("-C", fixture_project / "prompts" / "social", "validate")

    assert result.exit_code == 0
    assert result.stderr == "ok: 3 manifests in 3 files, 5 targets\n"


def test_dash_c_to_a_missing_directory_is_a_usage_error(run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli("-C", tmp_path / "missing", "validate")

    assert result.exit_code == 1
    assert result.stderr.startswith("error: ")


def test_config_option_uses_that_file(
    run_cli: RunCli, make_project: MakeProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_project(
        {
            "promptform.toml": '[promptform]\nprompts_dir = "prompts"\n',
            "prompts/a.yaml": "prompt: x\n",
            "alt/custom.toml": '[promptform]\nprompts_dir = "more"\n',
            "alt/more/b.yaml": "prompt: y\n---\nname: c\nprompt: z\n",
        }
    )
    monkeypatch.chdir(root)

    result = run_cli("--config", "alt/custom.toml", "validate")

    assert result.exit_code == 0
    assert result.stderr == "ok: 2 manifests in 1 file, 2 targets\n"


def test_config_option_naming_a_missing_file_is_an_error(run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli("-C", tmp_path, "--config", tmp_path / "nope.toml", "validate")

    assert result.exit_code == 1
    assert result.stderr.startswith("error: config file not found: ")


@pytest.mark.parametrize(
    "args", [["validate", "--no-such-option"], ["no-such-command"], ["render", "--json=3"]]
)
def test_usage_errors_exit_1_not_2(run_cli: RunCli, tmp_path: Path, args: list[str]) -> None:
    result = run_cli("-C", tmp_path, *args)

    assert result.exit_code == 1
    assert result.stderr.startswith("error: ")
    assert "--help" in result.stderr


def test_ctrl_c_exits_130(
    run_cli: RunCli, fixture_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("promptform.commands.validate.load_project", interrupted)

    result = run_cli("-C", fixture_project, "validate")

    assert result.exit_code == 130
    assert result.stderr == "interrupted\n"


def test_internal_bug_exits_3_with_a_hint_to_report_it(
    run_cli: RunCli, fixture_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("something impossible")

    monkeypatch.setattr("promptform.commands.validate.load_project", broken)

    result = run_cli("-C", fixture_project, "validate")

    assert result.exit_code == 3
    assert result.stderr.startswith("error: internal error: RuntimeError: something impossible\n")
    assert "This is a bug in promptform" in result.stderr
    assert "Traceback" not in result.stderr


def test_internal_bug_with_verbose_prints_the_traceback(
    run_cli: RunCli, fixture_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("something impossible")

    monkeypatch.setattr("promptform.commands.validate.load_project", broken)

    result = run_cli("-v", "-C", fixture_project, "validate")

    assert result.exit_code == 3
    assert "Traceback (most recent call last)" in result.stderr


def test_python_dash_m_entry_point_exists() -> None:
    assert (REPO / "src" / "promptform" / "__main__.py").read_text().strip().endswith("main())")


def test_the_command_reference_in_docs_is_the_current_help() -> None:
    # docs/cli.md is generated from --help (scripts/cli_docs.py), so the docs cannot drift.
    from promptform.cli import help_markdown

    reference = Path(__file__).resolve().parents[2] / "docs" / "cli.md"
    assert reference.read_text(encoding="utf-8") == help_markdown(), (
        "docs/cli.md is out of date: run `python scripts/cli_docs.py`"
    )


OUTSIDE_A_PROJECT = [
    ["validate"],
    ["plan"],
    ["apply", "--yes"],
    ["render"],
    ["status"],
    ["report"],
    ["gc"],
    ["cost"],
    ["import-curl", "request.json"],
]


@pytest.mark.parametrize("args", OUTSIDE_A_PROJECT, ids=lambda args: args[0])
def test_outside_a_project_commands_refuse_and_write_nothing(
    run_cli: RunCli, tmp_path: Path, args: list[str]
) -> None:
    # A folder with neither a config (here or above) nor prompts/ is the wrong folder, not an
    # empty project: "No changes" there would look like success.
    folder = write_files(tmp_path / "downloads", {"request.json": '{"prompt": "A fox"}'})

    result = run_cli("-C", folder, *args)

    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("error: no promptform project in ")
    assert "promptform init" in result.stderr and "-C DIR" in result.stderr
    assert sorted(path.name for path in folder.iterdir()) == ["request.json"]


def test_outside_a_project_the_error_says_how_to_get_in(
    run_cli: RunCli, tmp_path: Path, snapshot: SnapshotAssertion
) -> None:
    folder = tmp_path / "downloads"
    folder.mkdir()

    result = run_cli("-C", folder, "plan")

    assert result.stderr.replace(str(folder), "DIR") == snapshot


def test_a_prompts_folder_without_config_is_a_project(run_cli: RunCli, tmp_path: Path) -> None:
    write_files(tmp_path, {"prompts/a.yaml": "prompt: A fox.\n"})

    assert run_cli("-C", tmp_path, "validate").exit_code == 0


def test_a_config_without_prompts_is_a_project(run_cli: RunCli, tmp_path: Path) -> None:
    write_files(tmp_path, {"promptform.toml": "[defaults]\nn = 1\n"})

    result = run_cli("-C", tmp_path / ".", "validate")

    assert result.exit_code == 0
    assert result.stderr == "ok: 0 manifests in 0 files, 0 targets\n"


@pytest.mark.parametrize(
    "args", [["schema"], ["--version"], ["--help"], ["plan", "--help"], ["init", "new"]]
)
def test_commands_that_need_no_project_run_outside_one(
    run_cli: RunCli, tmp_path: Path, args: list[str]
) -> None:
    assert run_cli("-C", tmp_path, *args).exit_code == 0


def test_lock_merge_runs_outside_a_project(run_cli: RunCli, tmp_path: Path) -> None:
    empty = '{"targets": {}, "version": 1}\n'
    sides = write_files(tmp_path, {"base": empty, "ours": empty, "theirs": empty})

    result = run_cli(
        "-C", tmp_path, "lock", "merge", sides / "base", sides / "ours", sides / "theirs"
    )

    assert result.exit_code == 0, result.stderr


def test_a_hex_colour_after_a_plain_prompt_is_a_warning_naming_the_dropped_text(
    run_cli: RunCli, make_project: MakeProject, snapshot: SnapshotAssertion
) -> None:
    # YAML reads ` #` in an unquoted value as the start of a comment: the request would say
    # only "A water bottle in brand orange".
    root = make_project(
        {"prompts/bottle.yaml": "prompt: A water bottle in brand orange #FF6600 on a ledge\n"}
    )

    result = run_cli("-C", root, "validate")

    assert result.exit_code == 0
    assert result.stderr == snapshot


def test_the_dropped_comment_warning_survives_the_render_cache(
    run_cli: RunCli, make_project: MakeProject
) -> None:
    root = make_project({"prompts/bottle.yaml": "prompt: A bottle in orange #FF6600\n"})

    first, cached = run_cli("-C", root, "plan"), run_cli("-C", root, "plan")

    assert "warning: prompts/bottle.yaml:1:28: `#FF6600` is read as a YAML comment" in first.stderr
    assert cached.stderr == first.stderr


def test_init_says_how_to_start_without_an_api_key(
    run_cli: RunCli, tmp_path: Path, snapshot: SnapshotAssertion
) -> None:
    result = run_cli("init", tmp_path / "fresh")

    next_steps = [line for line in result.stderr.splitlines() if not line.startswith("created")]
    assert "\n".join(next_steps) == snapshot
    config = (tmp_path / "fresh/promptform.toml").read_text()
    assert '# default_provider = "offline"' in config


def test_the_keyless_start_init_describes_works(run_cli: RunCli, tmp_path: Path) -> None:
    # What init's next steps say, done: offline first, then the real provider re-plans.
    project = tmp_path / "fresh"
    run_cli("init", project)
    config = project / "promptform.toml"
    config.write_text(
        config.read_text().replace(
            'default_provider = "wisgate"', 'default_provider = "offline"', 1
        )
    )

    assert run_cli("-C", project, "apply", "--yes").exit_code == 0
    assert run_cli("-C", project, "plan", "--detailed-exitcode").exit_code == 0


KEYED_PROJECT: dict[str, str | bytes] = {
    "promptform.toml": "[defaults]\nsize = '1024x1024'\nquality = 'low'\n",
    "prompts/fox.yaml": "prompt: A fox.\n",
    "prompts/owl.yaml": "prompt: An owl.\n",
}


def test_apply_without_the_api_key_says_so_before_showing_the_plan(
    run_cli: RunCli, make_project: MakeProject, snapshot: SnapshotAssertion
) -> None:
    root = make_project(KEYED_PROJECT)

    result = run_cli("-C", root, "apply", "--yes")

    assert result.exit_code == 1
    assert result.stdout == ""  # no plan to read and approve first
    assert result.stderr == snapshot
    assert not (root / ".promptform" / "trash").exists()
    assert not (root / "promptform.lock").exists()


def test_apply_without_the_api_key_fails_before_asking_for_confirmation(
    run_cli: RunCli, make_project: MakeProject
) -> None:
    # Without --yes and without a terminal, the missing key is still the first thing said.
    root = make_project(KEYED_PROJECT)

    result = run_cli("-C", root, "apply")

    assert result.exit_code == 1
    assert result.stderr.startswith("error: WISGATE_API_KEY is not set")


def test_apply_needs_no_key_for_the_providers_it_does_not_call(
    run_cli: RunCli, make_project: MakeProject
) -> None:
    root = make_project(KEYED_PROJECT)

    assert run_cli("-C", root, "apply", "--yes", "--provider", "offline").exit_code == 0
    assert run_cli("-C", root, "apply", "--yes", "--provider", "offline").exit_code == 0


def test_plan_needs_no_key_and_notes_the_one_apply_would_need(
    run_cli: RunCli, make_project: MakeProject, snapshot: SnapshotAssertion
) -> None:
    root = make_project(KEYED_PROJECT)

    result = run_cli("-C", root, "plan")
    offline = run_cli("-C", root, "plan", "--provider", "offline")

    assert result.exit_code == 0
    assert result.stdout.startswith("promptform will perform the following actions:")
    assert result.stderr == snapshot
    assert offline.stderr == ""


def test_the_init_example_is_named_by_its_path_so_renaming_it_renames_the_target(
    run_cli: RunCli, tmp_path: Path
) -> None:
    # As the README teaches: a manifest's address is its path under prompts/ unless it sets name:.
    run_cli("init", tmp_path)
    example = tmp_path / "prompts/example/sunset.yaml"
    assert "name:" not in example.read_text()
    schema = example.read_text().splitlines()[0].split("$schema=")[1]
    assert (example.parent / schema).resolve() == tmp_path / "schema/manifest.schema.json"
    before = json.loads(run_cli("-C", tmp_path, "render", "--json").stdout)

    (tmp_path / "prompts/social").mkdir()
    example.rename(tmp_path / "prompts/social/hero.yaml")
    after = json.loads(run_cli("-C", tmp_path, "render", "--json").stdout)

    assert [request["address"] for request in before] == ["example/sunset"]
    assert [request["address"] for request in after] == ["social/hero"]
