"""The gallery as one self-contained HTML page: a pure function of a Gallery, no I/O.

Prompts, addresses and paths come from pull requests, so every one is HTML-escaped, no data is ever
placed inside the script, and a Content-Security-Policy allows only this page's own script and style
(by hash): even a string that slipped through could not run.
"""

from __future__ import annotations

import base64
import hashlib
import html
from collections.abc import Iterable

from promptform import __version__
from promptform.engine.plan_format import count_text, format_usd
from promptform.review.report import GENERATOR, Card, Gallery, Picture

_STATUS_LABEL = {
    "new": "new",
    "changed": "changed",
    "unchanged": "",
    "pending": "not generated yet",
    "removed": "removed",
}
_PROVIDER_NOTE = {"offline": "offline preview", "adopted": "adopted"}

STYLE = """
:root {
  color-scheme: light dark;
  --bg: #f5f6f8; --card: #ffffff; --text: #1c2128; --muted: #5f6b78; --border: #dde2e8;
  --accent: #2459d6; --shade: #eef1f4; --new: #1a7f37; --changed: #b35900; --removed: #c62828;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #0e1116; --card: #171b22; --text: #e6e9ee; --muted: #98a2ae; --border: #2a313b;
    --accent: #7aa7ff; --shade: #1f252e; --new: #4ac26b; --changed: #f0a04b; --removed: #ff7b72;
  }
}
* { box-sizing: border-box; }
[hidden] { display: none !important; }
body {
  margin: 0; background: var(--bg); color: var(--text);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", sans-serif;
}
header {
  position: sticky; top: 0; z-index: 2; display: flex; flex-wrap: wrap; gap: 8px 20px;
  align-items: center; padding: 14px 24px; background: var(--bg);
  border-bottom: 1px solid var(--border);
}
h1 { margin: 0; font-size: 17px; font-weight: 650; }
.summary { color: var(--muted); }
.controls { margin-left: auto; display: flex; flex-wrap: wrap; gap: 12px; align-items: center; }
input[type=search] {
  width: min(360px, 80vw); padding: 7px 10px; border-radius: 8px; font: inherit;
  border: 1px solid var(--border); background: var(--card); color: var(--text);
}
input[type=search]:focus { outline: 2px solid var(--accent); outline-offset: 1px; }
label.toggle { color: var(--muted); user-select: none; }
main { max-width: 1640px; margin: 0 auto; padding: 20px 24px 48px; }
.notes { color: var(--changed); }
/* Groups flow side by side when small, so a gallery of many one-target manifests stays dense. */
.groups { display: flex; flex-wrap: wrap; align-items: flex-start; gap: 28px 32px; }
.group { max-width: 100%; }
.group h2 {
  margin: 0 0 10px; font: 600 13px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
  color: var(--muted); overflow-wrap: anywhere;
}
.grid { display: flex; flex-wrap: wrap; align-items: flex-start; gap: 16px; }
.card {
  display: flex; flex-direction: column; overflow: hidden; border-radius: 10px; width: 264px;
  background: var(--card); border: 1px solid var(--border);
}
.card.compare { width: 544px; }
@media (max-width: 640px) {
  main { padding: 16px 12px 40px; }
  .group, .card, .card.compare { width: 100%; }
}
.sides { display: grid; grid-template-columns: 1fr 1fr; gap: 1px; background: var(--border); }
.side { background: var(--card); display: flex; flex-direction: column; }
.side h3 {
  margin: 0; padding: 5px 10px; font-size: 11px; font-weight: 600; letter-spacing: .04em;
  text-transform: uppercase; color: var(--muted); background: var(--shade);
}
.pictures {
  display: grid; grid-template-columns: repeat(auto-fit, minmax(120px, 1fr)); gap: 1px;
  background: var(--border);
}
.pictures a { display: block; background: var(--shade); }
.pictures img {
  display: block; width: 100%; height: auto; max-height: 420px; object-fit: contain; cursor: zoom-in;
}
.placeholder {
  display: grid; place-items: center; min-height: 140px; padding: 12px; text-align: center;
  color: var(--muted); background: var(--shade); font-size: 12px;
}
.body { padding: 10px 14px 14px; display: flex; flex-direction: column; gap: 8px; }
.address {
  margin: 0; font: 600 13px/1.35 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
  word-break: break-all;
}
.badge {
  display: inline-block; margin-left: 6px; padding: 0 7px; border-radius: 999px; font: 600 11px/18px
  system-ui, sans-serif; vertical-align: 1px; border: 1px solid currentColor;
}
.badge.new { color: var(--new); } .badge.changed { color: var(--changed); }
.badge.removed { color: var(--removed); } .badge.pending, .badge.note { color: var(--muted); }
.prompt {
  margin: 0; max-height: 9.5em; overflow: auto; white-space: pre-wrap; overflow-wrap: anywhere;
  font-size: 13px;
}
details { font-size: 12px; color: var(--muted); }
details pre { white-space: pre-wrap; overflow-wrap: anywhere; margin: 4px 0 0; }
dl.meta {
  display: grid; grid-template-columns: max-content 1fr; gap: 1px 10px; margin: 0; font-size: 12px;
  color: var(--muted);
}
dl.meta dd { margin: 0; color: var(--text); overflow-wrap: anywhere; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
#no-match { color: var(--muted); text-align: center; padding: 48px 0; }
footer { color: var(--muted); font-size: 12px; text-align: center; padding: 0 0 24px; }
dialog#lightbox {
  max-width: 96vw; max-height: 96vh; padding: 0; border: 0; border-radius: 10px;
  background: var(--card); color: var(--text);
}
dialog#lightbox::backdrop { background: rgb(0 0 0 / .82); }
dialog#lightbox img { display: block; max-width: 96vw; max-height: calc(96vh - 40px); margin: auto; }
dialog#lightbox figure { margin: 0; cursor: zoom-out; }
dialog#lightbox figcaption { padding: 8px 12px; font-size: 12px; color: var(--muted); }
"""

SCRIPT = """
(() => {
  const filter = document.getElementById("filter");
  const changedOnly = document.getElementById("changed-only");
  const cards = Array.from(document.querySelectorAll(".card"));
  const groups = Array.from(document.querySelectorAll(".group"));
  const noMatch = document.getElementById("no-match");
  const shown = document.getElementById("shown");
  function update() {
    const terms = filter.value.toLowerCase().split(/\\s+/).filter(Boolean);
    const onlyChanged = changedOnly !== null && changedOnly.checked;
    let count = 0;
    for (const card of cards) {
      const text = card.dataset.search || "";
      const visible = terms.every((term) => text.includes(term)) &&
        (!onlyChanged || card.dataset.status !== "unchanged");
      card.hidden = !visible;
      if (visible) count += 1;
    }
    for (const group of groups) {
      group.hidden = group.querySelector(".card:not([hidden])") === null;
    }
    noMatch.hidden = count > 0;
    shown.textContent = String(count);
  }
  filter.addEventListener("input", update);
  if (changedOnly !== null) changedOnly.addEventListener("change", update);
  const box = document.getElementById("lightbox");
  const big = box.querySelector("img");
  const caption = box.querySelector("figcaption");
  document.addEventListener("click", (event) => {
    const link = event.target.closest("a.zoom");
    if (link === null || typeof box.showModal !== "function") return;
    event.preventDefault();
    const image = link.querySelector("img");
    big.src = link.getAttribute("href");
    big.alt = image.alt;
    caption.textContent = link.dataset.caption || "";
    box.showModal();
  });
  box.addEventListener("click", () => box.close());
  update();
})();
"""


def _csp_hash(source: str) -> str:
    digest = hashlib.sha256(source.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


# Images may only come from the page's own folder (file:// or the host serving the artifact).
CSP = (
    "default-src 'none'; img-src 'self' file: data:; "
    f"style-src {_csp_hash(STYLE)}; script-src {_csp_hash(SCRIPT)}; "
    "base-uri 'none'; form-action 'none'"
)


def e(value: object) -> str:
    """Escape for HTML text and attribute values alike."""
    return html.escape(str(value), quote=True)


def render_html(gallery: Gallery) -> str:
    """The whole page. Deterministic: the same gallery gives the same bytes."""
    compared = gallery.base_label is not None
    images = sum(len(card.pictures) for card in gallery.cards)
    known = [card.cost_usd for card in gallery.cards if card.cost_usd is not None]
    summary = [
        count_text(len(gallery.cards), "target"),
        count_text(images, "image"),
        f"recorded cost {format_usd(sum(known))}",
    ]
    if compared:
        summary.append(f"{len(gallery.changed)} changed since {gallery.base_label}")
    toggle = (
        '<label class="toggle"><input type="checkbox" id="changed-only"> changed only</label>'
        if compared
        else ""
    )
    notes = "".join(f'<p class="notes">{e(note)}</p>' for note in gallery.notes)
    return "".join(
        [
            '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n',
            f'<meta http-equiv="Content-Security-Policy" content="{e(CSP)}">\n',
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n',
            f'<meta name="generator" content="{GENERATOR} {e(__version__)}">\n',
            '<meta name="referrer" content="no-referrer">\n',
            f"<title>{e(gallery.title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
            f"<header><h1>{e(gallery.title)}</h1>",
            f'<span class="summary">{e(" · ".join(summary))} · <span id="shown">'
            f"{len(gallery.cards)}</span> shown</span>",
            '<div class="controls"><input type="search" id="filter" '
            'placeholder="Filter by address, prompt, model, manifest…" '
            'aria-label="Filter cards" autocomplete="off">',
            f"{toggle}</div></header>\n<main>\n{notes}",
            '<div class="groups">',
            "".join(_groups(gallery.cards, compared)),
            "</div>\n",
            '<p id="no-match" hidden>No card matches the filter.</p>\n</main>\n',
            f"<footer>Made by promptform {e(__version__)}.</footer>\n",
            '<dialog id="lightbox"><figure><img alt=""><figcaption></figcaption></figure></dialog>\n',
            f"<script>{SCRIPT}</script>\n</body>\n</html>\n",
        ]
    )


def _groups(cards: tuple[Card, ...], compared: bool) -> Iterable[str]:
    by_group: dict[str, list[Card]] = {}
    for card in cards:
        by_group.setdefault(card.group, []).append(card)
    # Groups with changes first: they are what a reviewer opened the gallery for.
    changed = {card.group for card in cards if card.status != "unchanged"}
    for group in sorted(by_group, key=lambda name: (name not in changed, name)):
        yield f'<section class="group"><h2>{e(group)}</h2><div class="grid">\n'
        for card in by_group[group]:
            yield _card(card, compared)
        yield "</div></section>\n"


def _card(card: Card, compared: bool) -> str:
    search = " ".join(
        part for part in (card.address, card.group, card.prompt, card.model, card.status) if part
    ).lower()
    if card.before or card.status == "removed":
        images = (
            '<div class="sides">'
            f'<div class="side"><h3>before</h3>{_pictures(card.before, card, "before")}</div>'
            f'<div class="side"><h3>after</h3>{_pictures(card.pictures, card, "after")}</div>'
            "</div>"
        )
    else:
        images = _pictures(card.pictures, card, "")
    classes = "card compare" if card.before or card.status == "removed" else "card"
    badge = _STATUS_LABEL[card.status] if compared or card.status == "pending" else ""
    badges = f'<span class="badge {e(card.status)}">{e(badge)}</span>' if badge else ""
    note = _PROVIDER_NOTE.get(card.provider)
    if note:
        badges += f'<span class="badge note">{e(note)}</span>'
    extra = ""
    if card.before_prompt is not None:
        extra += f"<details><summary>previous prompt</summary><pre>{e(card.before_prompt)}</pre></details>"
    if card.revised_prompt:
        extra += f"<details><summary>revised prompt</summary><pre>{e(card.revised_prompt)}</pre></details>"
    return (
        f'<article class="{classes}" data-status="{e(card.status)}" data-search="{e(search)}">'
        f'{images}<div class="body">'
        f'<h3 class="address">{e(card.address)}{badges}</h3>'
        f'<p class="prompt">{e(card.prompt)}</p>{extra}'
        f"{_meta(card)}</div></article>\n"
    )


def _pictures(pictures: Iterable[Picture], card: Card, side: str) -> str:
    items = []
    for picture in pictures:
        if picture.src is None:
            items.append(
                f'<div class="placeholder">{e(picture.path)}<br>{e(picture.missing or "missing")}</div>'
            )
            continue
        size = (
            f' width="{picture.width}" height="{picture.height}"'
            if picture.width and picture.height
            else ""
        )
        caption = f"{card.address} · {picture.path}" + (f" · {side}" if side else "")
        if picture.missing:
            caption += f" ({picture.missing})"
        items.append(
            f'<a class="zoom" href="{e(picture.src)}" data-caption="{e(caption)}">'
            f'<img src="{e(picture.src)}" alt="{e(picture.path)}"{size} loading="lazy" '
            f'decoding="async"></a>'
        )
    if not items:
        text = "not generated yet" if card.status == "pending" else "no image"
        items.append(f'<div class="placeholder">{e(text)}</div>')
    return f'<div class="pictures">{"".join(items)}</div>'


def _meta(card: Card) -> str:
    rows = [
        ("model", card.model),
        ("size", card.size or "default"),
        ("quality", card.quality or "default"),
        (
            "cost",
            format_usd(card.cost_usd, precise=True) if card.cost_usd else format_usd(card.cost_usd),
        ),
        ("generated", card.generated_at or "-"),
        ("commit", (card.source_commit or "-")[:12]),
    ]
    if card.provider not in ("openai",):
        rows.append(("provider", card.provider))
    cells = "".join(f"<dt>{e(key)}</dt><dd>{e(value)}</dd>" for key, value in rows)
    return f'<dl class="meta">{cells}</dl>'
