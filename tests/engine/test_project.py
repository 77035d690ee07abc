"""project.py: a repository's manifests expanded and checked as a whole."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from promptform.core.config import load_config
from promptform.core.errors import Location, PromptformError, display_path
from promptform.engine import project as project_module
from promptform.engine.project import Project, load_project
from promptform.manifests.manifest_files import find_manifest_files, manifest_stem
from promptform.manifests.targets import Target
from tests.support.files import MakeProject

PNG = b"\x89PNG\r\n\x1a\n" + b"pretend pixels"


def load(root: Path) -> Project:
    return load_project(load_config(root))


def problems(root: Path) -> list[tuple[str, Location | None]]:
    with pytest.raises(PromptformError) as caught:
        load(root)
    return [(leaf.message, leaf.location) for leaf in caught.value.errors()]


def only_target(root: Path) -> Target:
    [target] = load(root).targets
    return target


def test_every_manifest_file_and_document_becomes_targets(make_project: MakeProject) -> None:
    root = make_project(
        {
            "prompts/a.yaml": "prompt: one\n---\nname: a2\nprompt: two\n",
            "prompts/sub/b.yml": "prompt: three\nmatrix:\n  x: [1, 2]\n",
        }
    )

    project = load(root)

    assert [target.address for target in project.targets] == ["a", "a2", "sub/b[x=1]", "sub/b[x=2]"]
    assert (project.manifest_files, project.manifests) == (2, 3)


def test_duplicate_address_names_both_manifests(make_project: MakeProject) -> None:
    root = make_project(
        {
            "prompts/one.yaml": "name: hero\nprompt: a\noutput: one.png\n",
            "prompts/two.yaml": "# second\nname: hero\nprompt: b\noutput: two.png\n",
        }
    )

    assert problems(root) == [
        (
            "address 'hero' is also defined at prompts/one.yaml:1; give one of them another name",
            Location("prompts/two.yaml", 2),
        )
    ]


def test_duplicate_output_names_both_manifests(make_project: MakeProject) -> None:
    root = make_project(
        {
            "prompts/one.yaml": "prompt: a\noutput: shared.png\n",
            "prompts/two.yaml": "prompt: b\noutput: shared.png\n",
        }
    )

    assert problems(root) == [
        (
            "output 'shared.png' of 'two' is also written by 'one' (prompts/one.yaml:1); "
            "change one of the outputs",
            Location("prompts/two.yaml", 1),
        )
    ]


def test_problems_of_several_files_are_all_reported(make_project: MakeProject) -> None:
    root = make_project(
        {
            "prompts/a.yaml": "promt: x\n",
            "prompts/b.yaml": "prompt: '{{ nope }}'\n",
            "prompts/c.yaml": "prompt: fine\n",
        }
    )

    assert [location.file for _, location in problems(root) if location] == [
        "prompts/a.yaml",
        "prompts/a.yaml",
        "prompts/b.yaml",
    ]


def test_reference_image_content_is_hashed_into_the_fingerprint(make_project: MakeProject) -> None:
    root = make_project({"prompts/e.yaml": "prompt: x\nimages: [refs/logo.png]\n"})
    (root / "refs").mkdir()
    (root / "refs" / "logo.png").write_bytes(PNG)
    before = only_target(root)

    (root / "refs" / "logo.png").write_bytes(PNG + b"changed")
    after = only_target(root)

    assert before.inputs[0].sha256 is not None
    assert before.fingerprint != after.fingerprint


def test_missing_reference_image_is_an_error(make_project: MakeProject) -> None:
    root = make_project({"prompts/e.yaml": "prompt: x\nimages: [refs/nowhere.png]\n"})

    assert problems(root) == [
        (
            "e: reference image 'refs/nowhere.png' does not exist and no target outputs it",
            Location("prompts/e.yaml", 1),
        )
    ]


@pytest.mark.parametrize(
    ("path", "problem"),
    [("/etc/passwd", "is absolute; write it relative"), ("../secret.png", "contains '..'")],
)
def test_reference_image_paths_must_be_repository_relative(
    make_project: MakeProject, path: str, problem: str
) -> None:
    root = make_project({"prompts/e.yaml": f"prompt: x\nimages: ['{path}']\n"})

    assert problems(root) == [
        (f"reference image '{path}' {problem}", Location("prompts/e.yaml", 2, 10))
    ]


def test_reference_image_symlinked_outside_the_repository_is_refused(
    make_project: MakeProject, tmp_path: Path
) -> None:
    root = make_project({"prompts/e.yaml": "prompt: x\nimages: [refs/link.png]\n"})
    (tmp_path / "outside.png").write_bytes(PNG)
    (root / "refs").mkdir()
    os.symlink(tmp_path / "outside.png", root / "refs" / "link.png")

    [(message, _)] = problems(root)

    assert message == "reference image 'refs/link.png' resolves outside the repository"


def test_reference_to_another_targets_output_makes_it_an_upstream(
    make_project: MakeProject,
) -> None:
    root = make_project(
        {
            "prompts/base.yaml": "prompt: a product\noutput: base.png\n",
            "prompts/edit.yaml": "prompt: add snow\nimages: [generated/base.png]\n",
        }
    )

    targets = load(root).by_address()

    assert targets["edit"].upstream == ("base",)
    assert targets["base"].upstream == ()
    assert targets["edit"].inputs[0].sha256 is None


@pytest.mark.parametrize("outputs_dir", ["./generated", "generated/", "generated//"])
def test_upstream_is_found_however_outputs_dir_is_spelled(
    make_project: MakeProject, outputs_dir: str
) -> None:
    root = make_project(
        {
            "promptform.toml": f'[promptform]\noutputs_dir = "{outputs_dir}"\n',
            "prompts/base.yaml": "prompt: a product\noutput: base.png\n",
            "prompts/edit.yaml": "prompt: add snow\nimages: [generated/base.png]\n",
        }
    )

    assert load(root).by_address()["edit"].upstream == ("base",)


def test_upstream_output_still_pending_gives_a_stable_fingerprint(
    make_project: MakeProject,
) -> None:
    root = make_project(
        {
            "prompts/base.yaml": "prompt: a product\noutput: base.png\n",
            "prompts/edit.yaml": "prompt: add snow\nimages: [generated/base.png]\n",
        }
    )

    first = load(root).by_address()["edit"].fingerprint

    assert load(root).by_address()["edit"].fingerprint == first


def test_reference_images_forming_a_cycle_are_an_error(make_project: MakeProject) -> None:
    root = make_project(
        {
            "prompts/a.yaml": "prompt: a\noutput: a.png\nimages: [generated/b.png]\n",
            "prompts/b.yaml": "prompt: b\noutput: b.png\nimages: [generated/a.png]\n",
        }
    )

    [(message, _)] = problems(root)

    assert message == "reference images form a cycle: a -> b -> a"


def test_target_using_its_own_output_as_reference_is_a_cycle(make_project: MakeProject) -> None:
    root = make_project({"prompts/a.yaml": "prompt: a\noutput: a.png\nimages: [generated/a.png]\n"})

    [(message, _)] = problems(root)

    assert message == "reference images form a cycle: a -> a"


@pytest.mark.parametrize(
    ("output", "problem"),
    [
        ("/tmp/out.png", "is absolute; write it relative"),
        ("../escape.png", "contains '..'"),
        ("a/../../escape.png", "contains '..'"),
        ("{{ '..' }}/escape.png", "contains '..'"),
    ],
)
def test_output_paths_must_stay_relative(
    make_project: MakeProject, output: str, problem: str
) -> None:
    root = make_project({"prompts/o.yaml": f'prompt: x\noutput: "{output}"\n'})

    [(message, location)] = problems(root)

    assert message.endswith(problem)
    assert location == Location("prompts/o.yaml", 2, 1)


def test_output_through_a_symlinked_directory_outside_outputs_dir_is_refused(
    make_project: MakeProject, tmp_path: Path
) -> None:
    root = make_project({"prompts/o.yaml": "prompt: x\noutput: linked/out.png\n"})
    (root / "generated").mkdir()
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", root / "generated" / "linked")

    assert problems(root) == [
        (
            "output path 'linked/out.png' leads outside generated/ through a symlink",
            Location("prompts/o.yaml", 2, 1),
        )
    ]


def test_output_file_that_is_a_symlink_outside_outputs_dir_is_refused(
    make_project: MakeProject, tmp_path: Path
) -> None:
    root = make_project({"prompts/o.yaml": "prompt: x\noutput: out.png\n"})
    (root / "generated").mkdir()
    os.symlink(tmp_path / "victim.png", root / "generated" / "out.png")

    [(message, _)] = problems(root)

    assert message == "output path 'out.png' leads outside generated/ through a symlink"


def test_an_output_symlink_in_a_nested_folder_is_refused_among_plain_files(
    make_project: MakeProject, tmp_path: Path
) -> None:
    root = make_project(
        {"prompts/o.yaml": "prompt: x\nmatrix:\n  i: [1, 2, 3]\noutput: 'd/e/{{ i }}.png'\n"}
    )
    (root / "generated/d/e").mkdir(parents=True)
    for index in (1, 3):
        (root / f"generated/d/e/{index}.png").write_bytes(b"plain")
    os.symlink(tmp_path / "victim.png", root / "generated/d/e/2.png")

    [(message, _)] = problems(root)

    assert message == "output path 'd/e/2.png' leads outside generated/ through a symlink"


def test_a_symlink_spelled_in_another_case_is_checked_as_a_case_insensitive_system_sees_it(
    make_project: MakeProject, tmp_path: Path
) -> None:
    # Folders are listed once for their symlinks; on macOS or Windows `OUT.png` opens `out.png`.
    root = make_project({"prompts/o.yaml": "prompt: x\n"})
    (root / "generated").mkdir()
    os.symlink(tmp_path / "victim.png", root / "generated" / "out.png")
    files = project_module._Files(load_config(root))

    assert files._is_link("", "OUT.png")
    assert files._is_link("", "out.png")
    assert not files._is_link("", "other.png")


@pytest.mark.parametrize(
    ("link", "target", "refused"),
    [
        ("alias/deeper", "outside", True),  # a symlink under a symlinked folder leads out
        ("alias/deeper", "generated/real/sub", False),  # it leads back in
        ("real/deeper", "outside", True),
    ],
)
def test_a_symlinked_folder_anywhere_on_an_output_path_is_followed_once(
    make_project: MakeProject, tmp_path: Path, link: str, target: str, refused: bool
) -> None:
    root = make_project({"prompts/o.yaml": "prompt: x\noutput: alias/deeper/out.png\n"})
    (root / "generated" / "real" / "sub").mkdir(parents=True)
    os.symlink(root / "generated" / "real", root / "generated" / "alias")
    (tmp_path / "outside").mkdir()
    destination = tmp_path / "outside" if target == "outside" else root / target
    os.symlink(destination, root / "generated" / link)

    if refused:
        [(message, _)] = problems(root)
        assert message == (
            "output path 'alias/deeper/out.png' leads outside generated/ through a symlink"
        )
    else:
        assert only_target(root).outputs == ("alias/deeper/out.png",)


def test_symlinked_directory_inside_outputs_dir_is_allowed(make_project: MakeProject) -> None:
    root = make_project({"prompts/o.yaml": "prompt: x\noutput: alias/out.png\n"})
    (root / "generated" / "real").mkdir(parents=True)
    os.symlink(root / "generated" / "real", root / "generated" / "alias")

    assert only_target(root).outputs == ("alias/out.png",)


def test_fingerprint_ignores_output_path_and_description(make_project: MakeProject) -> None:
    root = make_project({"prompts/p.yaml": "prompt: x\n"})
    before = only_target(root).fingerprint

    (root / "prompts/p.yaml").write_text(
        "# a comment\ndescription: new words\nprompt: x\noutput: moved/elsewhere.png\n"
    )

    assert only_target(root).fingerprint == before


def test_fingerprint_ignores_provider_name_and_base_url(make_project: MakeProject) -> None:
    root = make_project({"prompts/p.yaml": "prompt: x\n"})
    before = only_target(root).fingerprint

    (root / "promptform.toml").write_text(
        '[promptform]\ndefault_provider = "gateway"\n'
        '[providers.gateway]\nkind = "openai"\nbase_url = "https://other.test/v1"\n'
    )

    target = only_target(root)
    assert target.provider == "gateway"
    assert target.fingerprint == before


def test_fingerprint_changes_with_provider_kind(make_project: MakeProject) -> None:
    root = make_project({"prompts/p.yaml": "prompt: x\n"})
    before = only_target(root).fingerprint

    (root / "prompts/p.yaml").write_text("prompt: x\nprovider: offline\n")

    assert only_target(root).fingerprint != before


def test_template_change_changes_every_fingerprint_that_includes_it(
    make_project: MakeProject,
) -> None:
    root = make_project(
        {
            "templates/style.j2": "Photoreal.",
            "prompts/a.yaml": "prompt: '{% include \"style.j2\" %} A'\n",
            "prompts/b.yaml": "prompt: '{% include \"style.j2\" %} B'\n",
            "prompts/c.yaml": "prompt: C\n",
        }
    )
    before = {t.address: t.fingerprint for t in load(root).targets}

    (root / "templates/style.j2").write_text("Watercolour.")
    after = {t.address: t.fingerprint for t in load(root).targets}

    assert [address for address in before if before[address] != after[address]] == ["a", "b"]


def test_unknown_model_warnings_are_collected_without_failing(make_project: MakeProject) -> None:
    root = make_project({"prompts/p.yaml": "prompt: x\nmodel: new-model-7\n"})

    project = load(root)

    assert len(project.targets) == 1
    assert [warning.location for warning in project.warnings] == [Location("prompts/p.yaml", 2, 1)]


def test_project_without_prompts_dir_has_no_targets(tmp_path: Path) -> None:
    project = load(tmp_path)

    assert (project.targets, project.manifest_files) == ([], 0)


@pytest.mark.parametrize("setting", ["prompts", "templates", "generated"])
def test_directory_symlinked_outside_the_project_is_refused(
    make_project: MakeProject, tmp_path: Path, setting: str
) -> None:
    root = make_project({"promptform.toml": "", "prompts/a.yaml": "prompt: x\n"})
    outside = tmp_path / "outside"
    outside.mkdir()
    if setting == "prompts":
        (outside / "a.yaml").write_text("prompt: x\n")
        for item in (root / "prompts").iterdir():
            item.unlink()
        (root / "prompts").rmdir()
    os.symlink(outside, root / setting)

    [(message, location)] = problems(root)

    assert "leads outside the project through a symlink" in message
    assert location == Location("promptform.toml")


def test_template_include_cannot_read_through_a_symlinked_templates_dir(
    make_project: MakeProject, tmp_path: Path
) -> None:
    (tmp_path / "secret.txt").write_text("do not show")
    root = make_project(
        {"promptform.toml": "", "prompts/a.yaml": "prompt: '{% include \"secret.txt\" %}'\n"}
    )
    os.symlink(tmp_path, root / "templates")

    with pytest.raises(PromptformError, match="templates_dir 'templates' leads outside"):
        load(root)


def test_manifest_symlinked_outside_the_project_is_refused(
    make_project: MakeProject, tmp_path: Path
) -> None:
    (tmp_path / "outside.yaml").write_text("prompt: read from outside\n")
    root = make_project({"prompts/a.yaml": "prompt: x\n"})
    os.symlink(tmp_path / "outside.yaml", root / "prompts" / "b.yaml")

    assert problems(root) == [
        ("manifest is a symlink leading outside the project", Location("prompts/b.yaml"))
    ]


def test_manifest_symlinked_inside_the_project_is_read(make_project: MakeProject) -> None:
    root = make_project({"prompts/a.yaml": "prompt: x\n", "shared/b.yaml": "prompt: y\n"})
    os.symlink(root / "shared" / "b.yaml", root / "prompts" / "b.yaml")

    assert sorted(load(root).by_address()) == ["a", "b"]


def test_an_output_that_is_another_outputs_folder_is_refused(make_project: MakeProject) -> None:
    root = make_project(
        {
            "prompts/a.yaml": "name: a\nprompt: a\noutput: foo.png\n",
            "prompts/b.yaml": "name: b\nprompt: b\noutput: foo.png/bar.png\n",
        }
    )

    [(message, _)] = problems(root)
    assert "'foo.png/bar.png' of 'b' is inside output 'foo.png' of 'a'" in message


def test_outputs_differing_only_in_case_or_unicode_form_are_refused(
    make_project: MakeProject,
) -> None:
    root = make_project(
        {
            "prompts/a.yaml": "name: a\nprompt: a\noutput: Hero.png\n",
            "prompts/b.yaml": "name: b\nprompt: b\noutput: hero.png\n",
            "prompts/c.yaml": "name: c\nprompt: c\noutput: caf\u00e9.png\n",
            "prompts/d.yaml": "name: d\nprompt: d\noutput: cafe\u0301.png\n",
            "prompts/e.yaml": "name: e\nprompt: e\noutput: Dir.png\n",
            "prompts/f.yaml": "name: f\nprompt: f\noutput: dir.png/inside.png\n",
        }
    )

    messages = [message for message, _ in problems(root)]
    assert "output 'hero.png' of 'b' is also written by 'a'" in messages[0]
    assert "of 'd' is also written by 'c'" in messages[1]
    assert "'dir.png/inside.png' of 'f' is inside output 'Dir.png' of 'e'" in messages[2]


@pytest.mark.parametrize("prompts_dir", ["prompts", "design/prompts", "p"])
def test_manifest_names_are_what_pathlib_makes_of_the_path(
    make_project: MakeProject, prompts_dir: str
) -> None:
    # Worked out as text for speed: must agree with relative_to, manifest_stem and display_path.
    under = f"{prompts_dir}/"
    root = make_project(
        {
            "promptform.toml": f'[promptform]\nprompts_dir = "{prompts_dir}"\noutputs_dir = "out"\n',
            f"{under}a.yaml": "prompt: A.\n",
            f"{under}deep/er/b.c.yml": "prompt: B.\n",
            f"{under}é ü/..yaml": "prompt: C.\n",
        }
    )
    config = load_config(root)
    names = project_module._ManifestNames(config)

    for path in find_manifest_files(config.prompts_dir):
        assert names.of(path) == (
            path.relative_to(config.prompts_dir).as_posix(),
            manifest_stem(path, config.prompts_dir),
            display_path(path, config.root),
        )
