"""report: collecting cards against a git base, the HTML page's escaping, the markdown comment."""

from __future__ import annotations

import html.parser
import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

from promptform.core.config import load_config
from promptform.review.report import Card, Gallery, GitSnapshot, Picture, collect, default_base
from promptform.review.report_html import CSP, render_html
from promptform.review.report_markdown import Links, render_markdown
from tests.support.cli import RunCli
from tests.support.files import MakeProject

CONFIG = """
[promptform]
default_provider = "offline"

[defaults]
size = "256x256"
quality = "low"
"""

PROJECT: dict[str, str | bytes] = {
    "promptform.toml": CONFIG,
    "prompts/cards.yaml": """
        name: cards
        matrix:
          animal: [fox, owl]
        prompt: A flat illustration of a {{ animal }}.
        """,
    "prompts/hero.yaml": "prompt: A hero image.\nn: 2\n",
}

HOSTILE = '</p><script>alert("x")</script><img src=x onerror=alert(1)>'


def git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "commit.gpgsign=false", *args],
        cwd=root,
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout.strip()


def commit_all(root: Path, message: str) -> str:
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", message)
    return git(root, "rev-parse", "HEAD")


@pytest.fixture
def repo(make_project: MakeProject, run_cli: RunCli) -> Path:
    """An applied offline project on main, then a branch where hero's prompt changed and applied."""
    root = make_project(PROJECT)
    git(root, "init", "-q", "-b", "main")
    assert run_cli("-C", root, "apply", "--yes").exit_code == 0
    commit_all(root, "first apply")
    git(root, "checkout", "-q", "-b", "feature")
    (root / "prompts/hero.yaml").write_text("prompt: A brighter hero image.\nn: 2\n")
    assert run_cli("-C", root, "apply", "--yes").exit_code == 0
    commit_all(root, "brighter hero")
    return root


def card(**changes: object) -> Card:
    values: dict[str, object] = {
        "address": "hero",
        "group": "prompts/hero.yaml",
        "status": "unchanged",
        "prompt": "A hero.",
        "model": "gpt-image-2",
        "size": "1024x1024",
        "quality": "low",
        "cost_usd": 0.006,
        "generated_at": "2026-01-02T03:04:05Z",
        "source_commit": "a" * 40,
        "provider": "openai",
        "pictures": (
            Picture("hero-1.png", "generated/hero-1.png", "0" * 64, 8, 8, "images/a.png"),
        ),
    }
    values.update(changes)
    return Card(**values)  # type: ignore[arg-type]


class _Collector(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def parsed_tags(page: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Collector()
    parser.feed(page)
    return parser.tags


def test_hostile_strings_are_escaped_everywhere_in_the_page() -> None:
    picture = Picture(HOSTILE, HOSTILE, "0" * 64, 8, 8, 'images/"x.png', missing=HOSTILE)
    gallery = Gallery(
        HOSTILE,
        (
            card(
                address=HOSTILE,
                group=HOSTILE,
                prompt=HOSTILE,
                model=HOSTILE,
                size=HOSTILE,
                revised_prompt=HOSTILE,
                pictures=(picture,),
                status="changed",
                before=(picture,),
                before_prompt=HOSTILE,
            ),
        ),
        base_label=HOSTILE,
        notes=(HOSTILE,),
    )
    page = render_html(gallery)
    assert "<script>alert" not in page
    tags = parsed_tags(page)
    assert [tag for tag, _ in tags].count("script") == 1  # only the page's own
    assert not any(name.startswith("on") for _, attrs in tags for name in attrs)
    assert {attrs.get("src") for tag, attrs in tags if tag == "img"} <= {'images/"x.png', None}


def test_the_page_allows_only_its_own_script_and_style() -> None:
    page = render_html(Gallery("t", (card(),)))
    assert f'content="{CSP}"' in page.replace("&#x27;", "'")
    assert "script-src 'sha256-" in CSP
    assert "unsafe-inline" not in CSP


def test_render_is_deterministic_and_references_no_remote_resource() -> None:
    gallery = Gallery("t", (card(), card(address="other", group="prompts/other.yaml")))
    page = render_html(gallery)
    assert page == render_html(gallery)
    assert "http://" not in page and "https://" not in page


def test_changed_cards_show_before_and_after_side_by_side() -> None:
    old = Picture("hero-1.png", "generated/hero-1.png", "1" * 64, 8, 8, "images/old.png")
    page = render_html(Gallery("t", (card(status="changed", before=(old,)),), base_label="main"))
    assert 'class="card compare"' in page
    assert page.index("images/old.png") < page.index("images/a.png")
    assert "changed since main" in page


def test_collect_compares_with_the_merge_base_on_a_branch(repo: Path) -> None:
    config = load_config(repo)
    base = default_base(config)
    assert base is not None and base.label.startswith("merge base with main")
    gallery = collect(config, base)
    status = {item.address: item.status for item in gallery.cards}
    assert status == {
        "cards[animal=fox]": "unchanged",
        "cards[animal=owl]": "unchanged",
        "hero": "changed",
    }
    hero = next(item for item in gallery.cards if item.address == "hero")
    assert hero.before_prompt == "A hero image." and hero.prompt == "A brighter hero image."
    assert [p.path for p in hero.before] == ["hero-1.png", "hero-2.png"]


def test_no_default_base_on_main(repo: Path) -> None:
    git(repo, "checkout", "-q", "main")
    assert default_base(load_config(repo)) is None


def test_unknown_base_ref_is_one_clear_error(repo: Path, run_cli: RunCli) -> None:
    result = run_cli("-C", repo, "report", "--base", "no-such-branch")
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "error: 'no-such-branch' is not a commit in this repository (a branch, tag or hash)"
    )


def test_report_writes_a_self_contained_folder(repo: Path, run_cli: RunCli, tmp_path: Path) -> None:
    out = tmp_path / "gallery"
    result = run_cli("-C", repo, "report", "--out", out)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == str(out / "index.html")
    page = (out / "index.html").read_text()
    sources = [
        attrs["src"] for tag, attrs in parsed_tags(page) if tag == "img" and attrs.get("src")
    ]
    assert len(sources) == 4 + 2  # four current images, hero's two previous ones
    for source in sources:
        assert source is not None and (out / source).is_file()
    assert "1 changed since merge base with main" in page


def test_report_copies_no_file_from_outside_outputs_dir(
    repo: Path, run_cli: RunCli, tmp_path: Path
) -> None:
    lockfile = repo / "promptform.lock/hero.yaml.json"
    data = json.loads(lockfile.read_text())
    outside = repo.parent / "private.png"
    outside.write_bytes((repo / "generated/hero-1.png").read_bytes())
    # `..` is refused when the lockfile is read; a symlinked folder is caught here.
    (repo / "generated/leak").symlink_to(repo.parent, target_is_directory=True)
    data["targets"]["hero"]["outputs"][0]["path"] = f"leak/{outside.name}"
    lockfile.write_text(json.dumps(data))
    out = tmp_path / "gallery"
    assert run_cli("-C", repo, "report", "--out", out, "--no-base").exit_code == 0
    assert len(list((out / "images").iterdir())) == 3


def test_report_refuses_a_folder_that_is_not_a_report(
    repo: Path, run_cli: RunCli, tmp_path: Path
) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    result = run_cli("-C", repo, "report", "--out", tmp_path)
    assert result.exit_code == 1
    assert "is not empty and holds no promptform report" in result.stderr
    assert (tmp_path / "keep.txt").read_text() == "mine"


def test_report_replaces_its_own_previous_output(
    repo: Path, run_cli: RunCli, tmp_path: Path
) -> None:
    out = tmp_path / "gallery"
    run_cli("-C", repo, "report", "--out", out)
    assert run_cli("-C", repo, "report", "--out", out, "--no-base").exit_code == 0
    assert len(list((out / "images").iterdir())) == 4


def test_markdown_comment_links_changed_images_at_the_commit(repo: Path, run_cli: RunCli) -> None:
    head = git(repo, "rev-parse", "HEAD")
    result = run_cli("-C", repo, "report", "--format", "markdown", "--repo", "acme/art")
    assert result.exit_code == 0, result.stderr
    body = result.stdout
    assert body.startswith("<!-- promptform:images -->\n")
    assert "### promptform: 2 images generated for 1 target" in body
    assert f"https://github.com/acme/art/blob/{head}/generated/hero-1.png?raw=true" in body
    assert "cards[animal=fox]" not in body


def test_markdown_comment_shows_each_new_image_beside_the_one_it_replaces(
    repo: Path, run_cli: RunCli
) -> None:
    base = git(repo, "rev-parse", "main")
    head = git(repo, "rev-parse", "HEAD")
    result = run_cli(
        "-C", repo, "report", "--format", "markdown", "--repo", "acme/art", "--base", "main"
    )
    assert result.exit_code == 0, result.stderr
    [row] = [line for line in result.stdout.splitlines() if line.startswith("| <a")]
    before, after = row.strip("| ").split(" | ")
    assert f"/blob/{base}/generated/hero-1.png?raw=true" in before
    assert f"/blob/{base}/generated/hero-2.png?raw=true" in before
    assert f"/blob/{head}/generated/hero-1.png?raw=true" in after
    assert "| before | after |" in result.stdout


def test_markdown_fences_hostile_prompts() -> None:
    prompt = "```\n</details><img src=x onerror=alert(1)>\n````"
    body = render_markdown(
        Gallery("t", (card(status="new", prompt=prompt, address="<b>x</b>"),), "main"),
        Links("acme/art", "b" * 40),
    )
    assert "`````text\n" + prompt + "\n`````" in body
    assert "<code>&lt;b&gt;x&lt;/b&gt;</code>" in body


def test_markdown_stays_under_the_comment_limit() -> None:
    cards = tuple(
        card(address=f"t{index}", status="new", prompt="p" * 2000) for index in range(100)
    )
    body = render_markdown(Gallery("t", cards, "main"), None, "https://example.com/a", limit=20_000)
    assert len(body) <= 20_000
    assert "more; see the full gallery ([report artifact](https://example.com/a))." in body


def test_markdown_refuses_a_malformed_repository(repo: Path, run_cli: RunCli) -> None:
    result = run_cli("-C", repo, "report", "--format", "markdown", "--repo", "acme/art/../x")
    assert result.exit_code == 1
    assert "is not OWNER/NAME" in result.stderr


def test_git_snapshot_reads_old_bytes_from_history(repo: Path) -> None:
    config = load_config(repo)
    snapshot = GitSnapshot(config, "main")
    old = snapshot.lockfile().targets["hero"].outputs[0]
    data = snapshot.read_output(old.path)
    assert data is not None and data != (repo / "generated" / old.path).read_bytes()


def test_a_repository_whose_default_branch_is_master_gets_before_and_after(
    repo: Path, run_cli: RunCli, tmp_path: Path
) -> None:
    git(repo, "branch", "-m", "main", "master")
    base = default_base(load_config(repo))
    assert base is not None and base.label.startswith("merge base with master")
    result = run_cli("-C", repo, "report", "--out", tmp_path / "gallery")
    assert result.exit_code == 0, result.stderr
    assert "1 changed since merge base with master" in result.stderr


def test_the_default_branch_comes_from_the_remote_head(repo: Path) -> None:
    main = git(repo, "rev-parse", "main").strip()
    git(repo, "update-ref", "refs/remotes/origin/trunk", main)
    git(repo, "symbolic-ref", "refs/remotes/origin/HEAD", "refs/remotes/origin/trunk")
    git(repo, "branch", "-m", "main", "old-work")
    base = default_base(load_config(repo))
    assert base is not None and base.label.startswith("merge base with origin/trunk")


def test_no_default_branch_is_said_with_what_to_do(
    repo: Path, run_cli: RunCli, tmp_path: Path
) -> None:
    git(repo, "branch", "-m", "main", "trunk")
    result = run_cli("-C", repo, "report", "--out", tmp_path / "gallery")
    assert result.exit_code == 0, result.stderr
    assert result.stderr.splitlines()[0] == (
        "note: no before/after: found no default branch to compare with (origin/HEAD, main or "
        "master); pass --base BRANCH, e.g. `promptform report --base trunk`"
    )


def test_the_gallery_gets_the_permissions_the_umask_allows(
    repo: Path, run_cli: RunCli, tmp_path: Path
) -> None:
    out = tmp_path / "gallery"
    previous = os.umask(0o022)
    try:
        assert run_cli("-C", repo, "report", "--out", out).exit_code == 0
    finally:
        os.umask(previous)

    files = [path for path in out.rglob("*") if path.is_file()]
    assert {stat.S_IMODE(path.stat().st_mode) for path in files} == {0o644}
