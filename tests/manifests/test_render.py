"""render.py: sandboxed, deterministic Jinja rendering confined to templates_dir."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from promptform.core.errors import Location, TemplateError
from promptform.manifests.render import Renderer, slug
from tests.support.cli import CliResult

ORIGIN = Location("prompts/p.yaml", 4)


@pytest.fixture
def templates(tmp_path: Path) -> Path:
    directory = tmp_path / "repo" / "templates"
    (directory / "styles").mkdir(parents=True)
    (directory / "styles" / "photo.j2").write_text("Photorealistic, {{ lens }} lens.")
    (directory / "macros.j2").write_text(
        "{% macro tone(name) %}{{ name | upper }} tones{% endmacro %}"
    )
    (directory / "base.j2").write_text("Scene: {% block scene %}empty{% endblock %}.")
    (directory / "broken.j2").write_text("first line\nsecond {{ nope }}\n")
    return directory


@pytest.fixture
def renderer(templates: Path) -> Renderer:
    return Renderer(templates, "templates")


def render_error(renderer: Renderer, source: str, **variables: object) -> TemplateError:
    with pytest.raises(TemplateError) as caught:
        renderer.render(source, variables, ORIGIN)
    return caught.value


def test_variables_are_substituted(renderer: Renderer) -> None:
    assert renderer.render("{{ subject }} at dusk", {"subject": "a kayak"}, ORIGIN) == (
        "a kayak at dusk"
    )


def test_include_loads_a_partial_from_templates_dir(renderer: Renderer) -> None:
    rendered = renderer.render('{% include "styles/photo.j2" %}', {"lens": "50mm"}, ORIGIN)

    assert rendered == "Photorealistic, 50mm lens."


def test_import_makes_macros_available(renderer: Renderer) -> None:
    rendered = renderer.render('{% import "macros.j2" as m %}{{ m.tone("warm") }}', {}, ORIGIN)

    assert rendered == "WARM tones"


def test_extends_fills_blocks_of_a_base_template(renderer: Renderer) -> None:
    source = '{% extends "base.j2" %}{% block scene %}a harbour{% endblock %}'

    assert renderer.render(source, {}, ORIGIN) == "Scene: a harbour."


def test_inner_whitespace_and_newlines_are_kept_exactly(renderer: Renderer) -> None:
    source = "  line one  \n\n\tindented  {{ x }}\n  "

    assert renderer.render(source, {"x": "y"}, ORIGIN) == "  line one  \n\n\tindented  y\n  "


def test_slug_filter_makes_ascii_words_joined_by_dashes(renderer: Renderer) -> None:
    assert renderer.render("{{ 'Café Racer!' | slug }}", {}, ORIGIN) == "cafe-racer"
    assert slug("  ÅNGSTRÖM / 2 ") == "angstrom-2"


def test_undefined_variable_names_the_variable_and_the_manifest_line(renderer: Renderer) -> None:
    error = render_error(renderer, "first\nsecond\n{{ missing_subject }}")

    assert "'missing_subject' is undefined" in error.message
    assert error.location == Location("prompts/p.yaml", 6)


def test_undefined_variable_in_a_partial_points_at_the_partial_and_names_the_manifest(
    renderer: Renderer,
) -> None:
    error = render_error(renderer, 'intro\n{% include "broken.j2" %}')

    assert error.location == Location("templates/broken.j2", 2)
    assert "'nope' is undefined" in error.message
    assert error.message.endswith("(included from prompts/p.yaml:5)")


def test_syntax_error_points_at_the_manifest_line(renderer: Renderer) -> None:
    error = render_error(renderer, "ok\n{% if %}")

    assert error.message.startswith("template syntax error: ")
    assert error.location == Location("prompts/p.yaml", 5)


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ x.__init__.__globals__ }}",
        "{{ x.__dict__ }}",
        "{{ ''.format.__self__ }}",
        "{% set y = x.append(1) %}",
    ],
)
def test_python_internals_are_refused_by_the_sandbox(renderer: Renderer, source: str) -> None:
    error = render_error(renderer, source, x=[])

    assert error.message.startswith(("refused by the template sandbox", "undefined variable"))


def test_string_format_cannot_reach_attributes(renderer: Renderer) -> None:
    error = render_error(renderer, "{{ '{0.__class__}'.format(x) }}", x="s")

    assert error.message.startswith("refused by the template sandbox")


@pytest.mark.parametrize(
    "source",
    ["{{ 'a' * 10**9 }}", "{{ 10 ** 10000 }}", "{{ ['a'] * 2000000 }}", "{{ 'ab' * 600000 }}"],
)
def test_huge_values_are_refused_before_they_are_built(renderer: Renderer, source: str) -> None:
    error = render_error(renderer, source)

    assert error.message.startswith("refused by the template sandbox: ")


def test_output_over_the_rendered_limit_is_refused(renderer: Renderer) -> None:
    source = "{% for i in range(3000) %}" + "x" * 400 + "{% endfor %}"

    error = render_error(renderer, source)

    assert error.message == "template renders over 1,000,000 characters"


def test_loop_output_is_refused_as_it_passes_the_limit_not_after(renderer: Renderer) -> None:
    # Built whole first, this would take 100,000 x 900,000 characters (about 90 GB) of memory.
    source = "{% for i in range(100000) %}{{ 'x' * 900000 }}{% endfor %}"

    error = render_error(renderer, source)

    assert error.message == "template renders over 1,000,000 characters"


@pytest.mark.parametrize("source", ["{{ lipsum() }}", "{{ cycler(1, 2).next() }}"])
def test_sources_of_randomness_and_state_are_not_available(renderer: Renderer, source: str) -> None:
    error = render_error(renderer, source)

    assert error.message.startswith("undefined variable")


def test_random_filter_is_not_available(renderer: Renderer) -> None:
    error = render_error(renderer, "{{ [1, 2] | random }}")

    assert error.message == "template syntax error: No filter named 'random'."


def test_environment_variables_do_not_reach_templates(
    renderer: Renderer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SECRET_TOKEN", "hunter2")

    for source in ("{{ environ }}", "{{ os }}", "{{ config }}"):
        assert render_error(renderer, source).message.startswith("undefined variable")


@pytest.mark.parametrize("name", ["../outside.j2", "/etc/hostname", "styles/../../outside.j2"])
def test_templates_outside_templates_dir_cannot_be_included(
    renderer: Renderer, templates: Path, name: str
) -> None:
    (templates.parent / "outside.j2").write_text("secret")

    error = render_error(renderer, f'{{% include "{name}" %}}')

    assert error.message == (
        f"template '{name}' not found in templates/ (templates can only be loaded from there)"
    )


def test_symlink_pointing_outside_templates_dir_is_refused(
    renderer: Renderer, templates: Path
) -> None:
    (templates.parent / "outside.j2").write_text("secret")
    os.symlink(templates.parent / "outside.j2", templates / "link.j2")

    error = render_error(renderer, '{% include "link.j2" %}')

    assert error.message.startswith("template 'link.j2' not found")


def test_symlinked_directory_pointing_outside_is_refused(
    renderer: Renderer, templates: Path
) -> None:
    outside = templates.parent / "elsewhere"
    outside.mkdir()
    (outside / "x.j2").write_text("secret")
    os.symlink(outside, templates / "linked")

    error = render_error(renderer, '{% include "linked/x.j2" %}')

    assert error.message.startswith("template 'linked/x.j2' not found")


def test_symlink_inside_templates_dir_is_followed(renderer: Renderer, templates: Path) -> None:
    os.symlink(templates / "styles" / "photo.j2", templates / "alias.j2")

    assert renderer.render('{% include "alias.j2" %}', {"lens": "35mm"}, ORIGIN) == (
        "Photorealistic, 35mm lens."
    )


def test_same_source_renders_the_same_every_time(renderer: Renderer) -> None:
    source = "{% for c in colours | sort %}{{ c }} {% endfor %}{{ 7 * 6 }}"
    variables = {"colours": ["teal", "amber", "slate"]}

    first = renderer.render(source, variables, ORIGIN)

    assert first == "amber slate teal 42"
    assert all(renderer.render(source, variables, ORIGIN) == first for _ in range(3))


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ('{% extends "base.j2" %}{% extends "base.j2" %}', "extended multiple times"),
        ("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", "recursion"),
        ("{{ 1 / 0 }}", "division by zero"),
        ("{{ [1] * 'x' }}", "can't multiply"),
        ("{{ {}['k'] }}", "undefined"),
    ],
)
def test_runtime_failures_are_template_errors(
    renderer: Renderer, source: str, problem: str
) -> None:
    error = render_error(renderer, source)

    assert problem in error.message
    assert error.location is not None
    assert error.location.file == "prompts/p.yaml"


def test_recording_names_every_template_a_render_loads_even_from_the_template_cache(
    renderer: Renderer,
) -> None:
    source = (
        "{% extends 'base.j2' %}{% block scene %}{% import 'macros.j2' as m %}"
        "{{ m.tone('warm') }} {% include ['missing.j2', 'styles/photo.j2'] %}{% endblock %}"
    )
    renderer.render(source, {"lens": "50mm"}, ORIGIN)

    with renderer.recording_templates() as used:
        renderer.render(source, {"lens": "35mm"}, ORIGIN)

    assert used == {"base.j2", "macros.j2", "missing.j2", "styles/photo.j2"}


def test_template_digest_is_of_the_source_renders_used_and_none_when_missing(
    renderer: Renderer, templates: Path
) -> None:
    renderer.render("{% include 'styles/photo.j2' %}", {"lens": "50mm"}, ORIGIN)
    used = renderer.template_digest("styles/photo.j2")
    (templates / "styles" / "photo.j2").write_text("edited after the render")

    assert used is not None and used == renderer.template_digest("styles/photo.j2")
    assert renderer.template_digest("missing.j2") is None
    assert not renderer.templates_changed_while_loading


def test_a_template_read_twice_with_different_text_is_noticed(
    renderer: Renderer, templates: Path
) -> None:
    assert renderer.template_digest("later.j2") is None
    (templates / "later.j2").write_text("now it exists")

    renderer.render("{% include 'later.j2' %}", {}, ORIGIN)

    assert renderer.templates_changed_while_loading


def test_templates_that_loop_too_long_are_stopped_with_a_clear_error(
    make_project: Callable[[dict[str, str | bytes]], Path],
    run_cli: Callable[..., CliResult],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Each range is within the sandbox's bound; nested, they would run for hours.
    monkeypatch.setattr("promptform.manifests.render_deadline.RENDER_SECONDS_PER_MANIFEST", 0.3)
    root = make_project(
        {
            "prompts/slow.yaml": (
                "prompt: |\n"
                "  {% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}x\n"
            )
        }
    )
    result = run_cli("-C", root, "validate")
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "error: prompts/slow.yaml:1:1: templates took more than 0.3 s to render; "
        "look for loops that multiply"
    )
