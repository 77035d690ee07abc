"""config.py: discovery, validation with file and line, built-in WisGate defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from promptform.core import config as config_module
from promptform.core.config import (
    DEFAULT_MODEL,
    WISGATE_BASE_URL,
    find_config,
    load_config,
)
from promptform.core.errors import ConfigError, Location
from tests.support.files import MakeProject


def config_error(root: Path, toml: str) -> ConfigError:
    (root / "promptform.toml").write_text(toml)
    with pytest.raises(ConfigError) as caught:
        load_config(root)
    return caught.value


def test_without_any_config_the_directory_is_the_project_with_wisgate(tmp_path: Path) -> None:
    config = load_config(tmp_path)

    name, provider = config.provider(None)
    assert config.root == tmp_path.resolve()
    assert config.source is None
    assert (name, provider.kind, provider.base_url) == ("wisgate", "openai", WISGATE_BASE_URL)
    assert provider.api_key_env == "WISGATE_API_KEY"
    assert config.defaults.model == DEFAULT_MODEL == "gpt-image-2"


def test_builtin_directories_are_relative_to_the_root(tmp_path: Path) -> None:
    config = load_config(tmp_path)

    assert config.prompts_dir == tmp_path.resolve() / "prompts"
    assert config.templates_dir == tmp_path.resolve() / "templates"
    assert config.outputs_dir == tmp_path.resolve() / "generated"
    assert config.lockfile == tmp_path.resolve() / "promptform.lock"


def test_promptform_toml_is_found_from_a_subdirectory(make_project: MakeProject) -> None:
    root = make_project({"promptform.toml": '[promptform]\nprompts_dir = "p"\n'})
    nested = root / "a" / "b"
    nested.mkdir(parents=True)

    config = load_config(nested)

    assert config.root == root.resolve()
    assert config.prompts_dir == root.resolve() / "p"


def test_tool_promptform_in_pyproject_is_found_from_a_subdirectory(
    make_project: MakeProject,
) -> None:
    root = make_project(
        {
            "pyproject.toml": """
                [project]
                name = "shop"

                [tool.promptform.promptform]
                outputs_dir = "assets/generated"

                [tool.promptform.defaults]
                size = "1536x1024"
                """
        }
    )
    nested = root / "prompts" / "deep"
    nested.mkdir(parents=True)

    config = load_config(nested)

    assert config.source == root.resolve() / "pyproject.toml"
    assert config.project.outputs_dir == "assets/generated"
    assert config.defaults.size == "1536x1024"


def test_pyproject_without_a_promptform_table_is_passed_over(make_project: MakeProject) -> None:
    root = make_project(
        {
            "promptform.toml": "",
            "inner/pyproject.toml": '[project]\nname = "unrelated"\n',
        }
    )

    assert find_config(root / "inner") == root / "promptform.toml"


def test_promptform_toml_wins_over_pyproject_in_the_same_directory(
    make_project: MakeProject,
) -> None:
    root = make_project(
        {
            "promptform.toml": "",
            "pyproject.toml": "[tool.promptform.promptform]\n",
        }
    )

    assert find_config(root) == root / "promptform.toml"


def test_explicit_config_path_is_used_and_its_directory_is_the_root(
    make_project: MakeProject,
) -> None:
    root = make_project({"conf/custom.toml": '[promptform]\nprompts_dir = "x"\n'})

    config = load_config(root, root / "conf" / "custom.toml")

    assert config.root == (root / "conf").resolve()
    assert config.project.prompts_dir == "x"


def test_explicit_config_that_does_not_exist_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path, tmp_path / "missing.toml")


def test_unknown_key_suggests_the_closest_and_names_file_and_line(tmp_path: Path) -> None:
    error = config_error(tmp_path, '[promptform]\nprompts_dir = "p"\noutput_dir = "o"\n')

    assert (
        error.message == "unknown field 'output_dir' in [promptform]; did you mean 'outputs_dir'?"
    )
    assert error.location == Location("promptform.toml", 3)


def test_unknown_table_points_at_its_header(tmp_path: Path) -> None:
    error = config_error(tmp_path, "[defaults]\nn = 1\n\n[budjet]\nmax_images = 3\n")

    assert error.message == "unknown field 'budjet' in the config; did you mean 'budget'?"
    assert error.location == Location("promptform.toml", 4)


def test_unknown_key_without_a_close_match_lists_the_valid_ones(tmp_path: Path) -> None:
    error = config_error(tmp_path, "[budget]\nzzz = 1\n")

    assert error.message == (
        "unknown field 'zzz' in [budget]; expected one of: max_cost, max_cost_per_pull_request, "
        "max_images, max_images_per_pull_request"
    )


def test_bad_type_names_the_key_and_value(tmp_path: Path) -> None:
    error = config_error(tmp_path, '[defaults]\nmodel = "gpt-image-2"\nn = "many"\n')

    assert "'defaults.n'" in error.message
    assert "(got 'many')" in error.message
    assert error.location == Location("promptform.toml", 3)


def test_provider_without_kind_is_an_error_at_its_table(tmp_path: Path) -> None:
    error = config_error(tmp_path, '[providers.gateway]\nbase_url = "https://example.test/v1"\n')

    assert error.message == "missing required field 'kind' in [providers.gateway]"
    assert error.location == Location("promptform.toml", 1)


def test_unknown_provider_kind_is_an_error(tmp_path: Path) -> None:
    error = config_error(tmp_path, '[providers.gateway]\nkind = "magic"\n')

    assert "must be one of 'openai' or 'offline'" in error.message


def test_openai_provider_without_base_url_is_an_error_at_its_table(tmp_path: Path) -> None:
    error = config_error(tmp_path, '[defaults]\nn = 1\n[providers.gateway]\nkind = "openai"\n')

    assert error.message == "[providers.gateway] needs base_url for kind 'openai'"
    assert error.location == Location("promptform.toml", 3)


def test_batch_on_an_offline_provider_is_an_error_naming_the_setting(tmp_path: Path) -> None:
    error = config_error(tmp_path, '[providers.local]\nkind = "offline"\nbatch = true\n')

    assert error.message == (
        "'providers.local.batch' cannot be true for kind 'offline', which has no Batch API; "
        "remove `batch = true` (got True)"
    )
    assert error.location == Location("promptform.toml", 3)


def test_a_provider_may_offer_the_batch_api(tmp_path: Path) -> None:
    (tmp_path / "promptform.toml").write_text(
        '[providers.gateway]\nkind = "openai"\nbase_url = "https://proxy.test/v1"\nbatch = true\n'
    )
    config = load_config(tmp_path)

    assert config.provider("gateway")[1].batch
    assert not config.provider("wisgate")[1].batch


def test_unknown_default_provider_is_an_error_at_its_line(tmp_path: Path) -> None:
    error = config_error(tmp_path, '[promptform]\ndefault_provider = "nowhere"\n')

    assert error.message.startswith("unknown provider 'nowhere'; known providers: offline, wisgate")
    assert error.location == Location("promptform.toml", 2)


def test_unknown_defaults_provider_is_an_error_at_its_line(tmp_path: Path) -> None:
    error = config_error(tmp_path, '[defaults]\nprovider = "nowhere"\n')

    assert error.location == Location("promptform.toml", 2)


@pytest.mark.parametrize("value", ["/srv/images", "../elsewhere", "a/../../b"])
def test_outputs_dir_must_stay_inside_the_project(tmp_path: Path, value: str) -> None:
    error = config_error(tmp_path, f'[promptform]\noutputs_dir = "{value}"\n')

    assert "must be a relative path inside the project" in error.message


def test_configured_provider_overrides_the_builtin_of_the_same_name(tmp_path: Path) -> None:
    (tmp_path / "promptform.toml").write_text(
        '[providers.wisgate]\nkind = "openai"\nbase_url = "https://proxy.test/v1"\nconcurrency = 2\n'
    )

    _, provider = load_config(tmp_path).provider("wisgate")

    assert (provider.base_url, provider.concurrency) == ("https://proxy.test/v1", 2)


def test_default_provider_name_default_means_the_projects_default(tmp_path: Path) -> None:
    (tmp_path / "promptform.toml").write_text('[promptform]\ndefault_provider = "offline"\n')

    assert load_config(tmp_path).provider("default")[0] == "offline"


def test_invalid_toml_reports_line_and_column(tmp_path: Path) -> None:
    error = config_error(tmp_path, "[promptform\n")

    assert error.message.startswith("invalid TOML: ")
    assert error.location == Location("promptform.toml", 1, 12)


def test_pyproject_errors_name_the_tool_table(make_project: MakeProject) -> None:
    root = make_project({"pyproject.toml": '[tool.promptform.promptform]\ntemplates_dr = "t"\n'})

    with pytest.raises(ConfigError) as caught:
        load_config(root)

    assert caught.value.message == (
        "unknown field 'templates_dr' in [tool.promptform.promptform]; "
        "did you mean 'templates_dir'?"
    )
    assert caught.value.location == Location("pyproject.toml", 2)


def test_a_config_nested_too_deeply_to_read_is_an_error(tmp_path: Path) -> None:
    nested = "[" * 5_000 + "]" * 5_000
    (tmp_path / "promptform.toml").write_text(f"[defaults]\nvars = {{ x = {nested} }}\n")

    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path)

    assert caught.value.one_line() == (
        "promptform.toml: invalid TOML: nested too deeply to read; flatten the value"
    )


def test_non_utf8_config_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "promptform.toml").write_bytes(b"# caf\xe9\n")

    with pytest.raises(ConfigError, match="not valid UTF-8"):
        load_config(tmp_path)


@pytest.mark.parametrize("tool", ["tool = 1", 'tool = "promptform"', "tool = [1]"])
def test_pyproject_whose_tool_key_is_not_a_table_is_passed_over(
    make_project: MakeProject, tool: str
) -> None:
    root = make_project({"promptform.toml": "", "inner/pyproject.toml": f"{tool}\n"})

    assert find_config(root / "inner") == root / "promptform.toml"
    assert load_config(root, root / "inner" / "pyproject.toml").project.prompts_dir == "prompts"


@pytest.mark.parametrize(
    ("outputs_dir", "problem"),
    [
        (".", "must be a folder of its own, not the project root"),
        ("prompts", "must be a folder apart from prompts_dir"),
        ("templates/out", "must be a folder apart from templates_dir"),
    ],
)
def test_outputs_dir_must_be_a_folder_of_its_own(
    make_project: MakeProject, outputs_dir: str, problem: str
) -> None:
    root = make_project({"promptform.toml": f'[promptform]\noutputs_dir = "{outputs_dir}"\n'})
    with pytest.raises(ConfigError) as caught:
        load_config(root)
    assert caught.value.one_line() == (
        f"promptform.toml:2: 'promptform.outputs_dir' {problem} (apply and gc manage every file "
        f"in it) (got '{outputs_dir}')"
    )


@pytest.mark.parametrize(
    "table",
    [
        {},
        {"promptform": {"outputs_dir": "out/", "default_provider": "offline"}},
        {"promptform": {"prompts_dir": "a/./b", "lockfile": "state/promptform.lock"}},
        {"defaults": {"n": 3, "vars": {"x": [1, 2]}, "output_format": "png", "size": "auto"}},
        {"providers": {"x": {"kind": "openai", "base_url": "http://l", "timeout_s": 5}}},
        {"providers": {"x": {"kind": "openai", "batch": True}, "y": {"kind": "offline"}}},
        {"pricing": {"m": {"low": 1, "high": 0.5}}},
        {"budget": {"max_cost": 3, "max_images": 0}},
        {"limits": {"max_targets": 5}},
        # Each bound's own limit is inside it.
        {"defaults": {"n": 10, "output_compression": 0}},
        {"defaults": {"n": 1, "output_compression": 100}},
        {"providers": {"x": {"kind": "offline", "concurrency": 256, "max_retries": 20}}},
        {"providers": {"x": {"kind": "offline", "timeout_s": 0.001, "max_retries": 0}}},
        {"budget": {"max_cost": 0.0, "max_images_per_pull_request": 0}},
    ],
)
def test_a_well_formed_table_is_loaded_as_validation_would_load_it(table: dict[str, Any]) -> None:
    constructed = config_module._well_formed(config_module._ConfigFile, table)

    validated = config_module._config_file_validator().validate_python(table)
    assert constructed is not None
    assert constructed == validated
    assert repr(constructed) == repr(validated)  # 5.0 where validation gives 5.0, not 5


@pytest.mark.parametrize(
    "table",
    [
        {"promptform": {"outputs_dir": "prompts"}},  # overlaps the default prompts_dir
        {"promptform": {"outputs_dir": "."}},
        {"promptform": {"lockfile": "../elsewhere.lock"}},
        {"defaults": {"n": 0}},
        {"defaults": {"n": True}},  # a coercion: validation decides
        {"defaults": {"output_format": "gif"}},
        {"providers": {"x": {"kind": "offline", "timeout_s": 0}}},
        {"providers": {"x": {"base_url": "http://l"}}},  # kind is required
        {"providers": {"x": {"kind": "offline", "batch": True}}},  # offline has no Batch API
        {"providers": {"x": {"kind": "openai", "batch": 1}}},  # a coercion
        {"bogus": 1},
        {"defaults": {"n": 11}},
        {"defaults": {"output_compression": 101}},
        {"defaults": {"output_compression": -1}},
        {"providers": {"x": {"kind": "offline", "concurrency": 257}}},
        {"providers": {"x": {"kind": "offline", "timeout_s": float("nan")}}},
        {"budget": {"max_cost": -0.01}},
        {"limits": {"max_targets": 0}},
    ],
)
def test_anything_else_is_left_to_validation(table: dict[str, Any]) -> None:
    assert config_module._well_formed(config_module._ConfigFile, table) is None


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("[defaults]\nn = 11", "'defaults.n' input should be less than or equal to 10 (got 11)"),
        (
            '[providers.x]\nkind = "offline"\ntimeout_s = 0',
            "'providers.x.timeout_s' input should be greater than 0 (got 0)",
        ),
        (
            "[limits]\nmax_targets = 0",
            "'limits.max_targets' input should be greater than or equal to 1 (got 0)",
        ),
    ],
)
def test_validation_enforces_the_same_bounds_with_its_own_messages(
    make_project: MakeProject, setting: str, message: str
) -> None:
    root = make_project({"promptform.toml": setting + "\n"})
    with pytest.raises(ConfigError) as caught:
        load_config(root)
    assert message in caught.value.one_line()
