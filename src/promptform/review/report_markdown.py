"""The "images generated" pull-request comment: the changed cards of a Gallery as GitHub markdown.

Pure. Images link to the committed files at the apply commit, so the comment shows them inline and
keeps showing them after later applies. Prompts come from pull requests: they go into code fences
longer than any backtick run in them, and every other string is HTML-escaped.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from urllib.parse import quote

from promptform.core.errors import PromptformError
from promptform.engine.plan_format import count_text, format_usd
from promptform.review.report import Card, Gallery, Picture

GITHUB_COMMENT_LIMIT = 65_536
MARKER = "<!-- promptform:images -->"
_REPO = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
_COMMIT = re.compile(r"^[0-9a-f]{7,64}$")


@dataclass(frozen=True)
class Links:
    """Where committed files are: `https://github.com/{repo}/blob/{commit}/{path}?raw=true`."""

    repo: str
    commit: str
    server: str = "https://github.com"
    base_commit: str | None = None  # where the images a change replaces are; None: not shown

    def image(self, repo_path: str, commit: str | None = None) -> str:
        return f"{self.blob(repo_path, commit)}?raw=true"

    def blob(self, repo_path: str, commit: str | None = None) -> str:
        return f"{self.server}/{self.repo}/blob/{commit or self.commit}/{quote(repo_path)}"


def check_links(repo: str, commit: str) -> None:
    """Refuse a repository or commit that would make broken or surprising URLs."""
    if not _REPO.match(repo) or ".." in repo:
        raise PromptformError(f"--repo '{repo}' is not OWNER/NAME")
    if not _COMMIT.match(commit):
        raise PromptformError(f"--commit '{commit}' is not a commit hash")


def render_markdown(
    gallery: Gallery,
    links: Links | None,
    artifact_url: str | None = None,
    limit: int = GITHUB_COMMENT_LIMIT,
    width: int = 320,
) -> str:
    """The comment body; without `links` it lists the changes without inline images."""
    changed = gallery.changed
    images = sum(len(card.pictures) for card in changed)
    head = [MARKER]
    if not changed:
        head.append("### promptform: no images changed")
    else:
        head.append(
            f"### promptform: {count_text(images, 'image')} generated for {count_text(len(changed), 'target')}"
        )
    if gallery.base_label:
        head.append(f"Compared with `{_code_text(gallery.base_label)}`.")
    if links is not None:
        head.append(
            f"Files at commit [`{links.commit[:12]}`]({links.server}/{links.repo}/commit/{links.commit})."
        )
    if artifact_url:
        head.append(f"Full gallery: [download the report artifact]({_url(artifact_url)}).")
    removed = [card for card in gallery.cards if card.status == "removed"]
    if removed:
        head.append(
            "Removed: " + ", ".join(f"<code>{html.escape(card.address)}</code>" for card in removed)
        )
    sections = [_section(card, links, width) for card in changed]
    return _fit("\n\n".join(head), sections, limit, artifact_url)


def _section(card: Card, links: Links | None, width: int) -> str:
    cost = format_usd(card.cost_usd, precise=True) if card.cost_usd else format_usd(card.cost_usd)
    details = " · ".join(
        html.escape(part)
        for part in (card.status, card.model, card.size or "", card.quality or "", cost)
        if part
    )
    lines = [f"#### <code>{html.escape(card.address)}</code>", details, ""]
    if links is not None and card.before and links.base_commit is not None:
        # What reviewers approve: each new image beside the one it replaces.
        before = _pictures(card.before, links, width, links.base_commit)
        after = _pictures(card.pictures, links, width, None)
        lines += ["| before | after |", "|---|---|", f"| {before} | {after} |"]
    elif links is not None:
        lines.append(_pictures(card.pictures, links, width, None))
    else:
        lines.append(", ".join(f"<code>{html.escape(p.repo_path)}</code>" for p in card.pictures))
    fence = _fence_for(card.prompt)
    lines += [
        "",
        "<details><summary>prompt</summary>",
        "",
        f"{fence}text",
        card.prompt,
        fence,
        "",
        "</details>",
    ]
    return "\n".join(lines)


def _pictures(pictures: tuple[Picture, ...], links: Links, width: int, commit: str | None) -> str:
    return " ".join(
        f'<a href="{html.escape(links.blob(p.repo_path, commit))}">'
        f'<img src="{html.escape(links.image(p.repo_path, commit))}" '
        f'width="{width}" alt="{html.escape(p.path)}"></a>'
        for p in pictures
    )


def _fit(head: str, sections: list[str], limit: int, artifact_url: str | None) -> str:
    """Whole sections until the limit, then a pointer to the gallery for the rest."""
    body = head
    for index, section in enumerate(sections):
        rest = len(sections) - index
        pointer = f"\n\n…and {rest} more; see the full gallery" + (
            f" ([report artifact]({_url(artifact_url)}))." if artifact_url else "."
        )
        if len(body) + 2 + len(section) + len(pointer) + 200 > limit:
            return body + pointer + "\n"
        body += "\n\n" + section
    return body + "\n"


def _fence_for(text: str) -> str:
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def _code_text(text: str) -> str:
    return text.replace("`", "'")


def _url(url: str) -> str:
    # Markdown link targets end at whitespace or ')': percent-encode them so a URL cannot break out.
    return quote(url, safe=":/?&=#%@+,;~")
