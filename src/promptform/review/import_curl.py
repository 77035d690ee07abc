"""Turning a curl command or a JSON request body (as copied from Studio or the API docs) into a manifest.

Parsing and writing the YAML are pure; `import_request` writes the file, loads the project to prove the
manifest renders to the same prompt, and removes it again if not. Credentials never reach the file:
auth headers are dropped, and a key-like string in the body is either left out or refused.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from promptform.core.config import Config
from promptform.core.errors import PromptformError, display_path
from promptform.engine.project import load_project
from promptform.manifests.render import slug

# Request fields a manifest has, in the order they are written.
MANIFEST_FIELDS = (
    "model",
    "size",
    "quality",
    "n",
    "background",
    "output_format",
    "output_compression",
    "moderation",
)
# Fields the API takes that promptform sets itself or that do not change the pixels.
IGNORED_FIELDS = {
    "response_format": "promptform chooses how images are returned",
    "user": "an end-user id is not part of a manifest",
    "stream": "promptform does not stream",
    "partial_images": "promptform does not stream",
}
_AUTH_HEADERS = {"authorization", "api-key", "x-api-key", "cookie", "proxy-authorization"}
_SECRET_FIELD = re.compile(r"(api[_-]?key|token|secret|password|authorization|bearer)", re.I)
_KEY_LIKE = re.compile(
    r"\b(?:sk-[A-Za-z0-9_-]{16,}|sk_[A-Za-z0-9]{16,}|Bearer\s+\S{12,}|"
    r"gh[pousr]_[A-Za-z0-9]{20,}|AKIA[0-9A-Z]{16}|xox[baprs]-[A-Za-z0-9-]{10,})"
)
_DATA = {"-d", "--data", "--data-raw", "--data-binary", "--data-ascii", "--json"}
_FORM = {"-F", "--form", "--form-string"}
# curl options that take a value, so that value is not mistaken for the URL.
_WITH_VALUE = {
    "-H", "--header", "-X", "--request", "-o", "--output", "-u", "--user", "-A", "--user-agent",
    "-e", "--referer", "-m", "--max-time", "--connect-timeout", "--retry", "-w", "--write-out",
    "--cacert", "--cert", "--key", "-x", "--proxy", "-b", "--cookie", "-c", "--cookie-jar",
    "--url", "-T", "--upload-file", "--resolve", "--limit-rate", "-K", "--config",
    *_DATA, *_FORM,
}  # fmt: skip
_JINJA_MARKS = ("{{", "{%", "{#", "}}", "%}", "#}")


class CurlImportError(PromptformError):
    pass


@dataclass
class ParsedRequest:
    body: dict[str, Any]
    images: list[str] = field(default_factory=list)
    mask: str | None = None
    notes: list[str] = field(default_factory=list)  # what was dropped, and why


def parse_input(text: str) -> ParsedRequest:
    """A curl command line or a bare JSON body."""
    stripped = text.lstrip()
    if stripped.startswith("{"):
        return _from_body(_json_object(stripped), [])
    return parse_curl(text)


def parse_curl(text: str) -> ParsedRequest:
    # Shell line continuations: a backslash (or a PowerShell backtick) at the end of a line.
    joined = re.sub(r"[\\`]\r?\n", " ", text)
    try:
        words = shlex.split(joined, comments=False, posix=True)
    except ValueError as exc:
        raise CurlImportError(f"cannot parse the curl command: {exc}") from None
    if not words or PurePosixPath(words[0]).name not in ("curl", "curl.exe"):
        raise CurlImportError(
            "expected a curl command (starting with `curl`) or a JSON request body"
        )
    notes: list[str] = []
    data: list[str] = []
    form: list[str] = []
    for option, value in _options(words[1:]):
        if option in _DATA:
            data.append(value)
        elif option in _FORM:
            form.append(value)
        elif option in ("-H", "--header"):
            name = value.split(":", 1)[0].strip().lower()
            if name in _AUTH_HEADERS:
                notes.append(f"dropped the {value.split(':', 1)[0].strip()} header (credentials)")
        elif option in ("-u", "--user"):
            notes.append("dropped --user (credentials)")
    if data and form:
        raise CurlImportError(
            "the command has both a JSON body (-d) and form fields (-F); give one"
        )
    if form:
        return _from_form(form, notes)
    if not data:
        raise CurlImportError("the curl command has no request body (-d/--data or -F fields)")
    if len(data) > 1:
        raise CurlImportError("the curl command has several -d bodies; keep the JSON one")
    if data[0].startswith("@"):
        raise CurlImportError(
            f"the body is read from the file {data[0][1:]!r}; import that file instead"
        )
    return _from_body(_json_object(data[0]), notes)


def _options(words: list[str]) -> Iterator[tuple[str, str]]:
    """(option, value) pairs; `-dVALUE` and `-HVALUE` forms are split too. Flags are skipped."""
    index = 0
    while index < len(words):
        word = words[index]
        index += 1
        if word in _WITH_VALUE:
            if index >= len(words):
                raise CurlImportError(f"curl option {word} has no value")
            yield word, words[index]
            index += 1
        elif len(word) > 2 and word[:2] in ("-d", "-H", "-F", "-u") and not word.startswith("--"):
            yield word[:2], word[2:]


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CurlImportError(
            f"the request body is not valid JSON: {exc.msg} at line {exc.lineno}"
        ) from None
    except RecursionError:
        raise CurlImportError("the request body is nested too deeply to read") from None
    if not isinstance(value, dict):
        raise CurlImportError(
            'the request body must be a JSON object ({"model": ..., "prompt": ...})'
        )
    return value


def _from_body(body: dict[str, Any], notes: list[str]) -> ParsedRequest:
    parsed = ParsedRequest({}, notes=list(notes))
    for key, value in body.items():
        if _SECRET_FIELD.search(key):
            parsed.notes.append(f"left out the body field {key!r} (credentials)")
        elif key in IGNORED_FIELDS:
            parsed.notes.append(f"left out {key!r}: {IGNORED_FIELDS[key]}")
        elif key == "prompt" or key in MANIFEST_FIELDS:
            parsed.body[key] = value
        elif key in ("image", "images", "mask"):
            raise CurlImportError(
                f"the body's {key!r} holds image data or URLs; save the images under the "
                "repository and list them in the manifest's `images:`"
            )
        else:
            raise CurlImportError(
                f"the request field {key!r} has no manifest equivalent; remove it from the "
                "request (it would change the image) or write the manifest by hand"
            )
    _refuse_secrets(parsed.body)
    if not isinstance(parsed.body.get("prompt"), str) or not parsed.body["prompt"].strip():
        raise CurlImportError("the request has no prompt")
    return parsed


def _from_form(fields: list[str], notes: list[str]) -> ParsedRequest:
    """multipart fields of an edit: `image[]=@path`, `mask=@path`, `prompt=...`, `model=...`."""
    body: dict[str, Any] = {}
    images: list[str] = []
    mask = None
    for item in fields:
        name, sep, value = item.partition("=")
        if not sep:
            raise CurlImportError(f"form field {item!r} is not NAME=VALUE")
        if value.startswith("@"):
            path = re.sub(r";(type|filename)=[^;]*", "", value[1:]).removeprefix("./")
            if name in ("image", "image[]"):
                images.append(path)
            elif name == "mask":
                mask = path
            else:
                raise CurlImportError(f"form field {name!r} reads a file; only image and mask may")
            continue
        if value.startswith("<"):
            raise CurlImportError(
                f"form field {name!r} reads its value from a file; paste it instead"
            )
        body[name] = (
            int(value) if name in ("n", "output_compression") and value.isdigit() else value
        )
    if not images:
        raise CurlImportError("an edit request needs at least one image (-F 'image[]=@file.png')")
    parsed = _from_body(body, notes)
    parsed.images, parsed.mask = images, mask
    return parsed


def _refuse_secrets(body: dict[str, Any]) -> None:
    for key, value in body.items():
        if isinstance(value, str) and _KEY_LIKE.search(value):
            raise CurlImportError(
                f"the request's {key!r} contains what looks like an API key; remove it and "
                "import again (promptform never writes credentials to a manifest)"
            )


# -- writing ------------------------------------------------------------------------------------


class _Literal(str):
    """A string PyYAML writes as a block scalar when it can (it falls back to quotes when not)."""


def _literal(dumper: yaml.SafeDumper, value: _Literal) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", str(value), style="|")


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(_Literal, _literal)


def prompt_template(prompt: str) -> str:
    """The prompt as a Jinja template that renders to exactly `prompt`."""
    if not any(mark in prompt for mark in _JINJA_MARKS):
        return prompt
    # A raw block cannot contain its own end tag; split the text around every occurrence.
    pieces = re.split(r"(\{%-?\s*endraw\s*-?%\})", prompt)
    out = []
    for piece in pieces:
        if re.fullmatch(r"\{%-?\s*endraw\s*-?%\}", piece):
            out.append("{{ " + json.dumps(piece) + " }}")
        elif piece:
            out.append("{% raw %}" + piece + "{% endraw %}")
    return "".join(out)


def manifest_text(parsed: ParsedRequest, name: str | None, source: str) -> str:
    """The YAML of the manifest: a comment, the fields, then the prompt as a block scalar."""
    fields: dict[str, Any] = {}
    if name is not None:
        fields["name"] = name
    fields["description"] = f"Imported from {source}."
    for key in MANIFEST_FIELDS:
        if key in parsed.body:
            fields[key] = parsed.body[key]
    if parsed.images:
        fields["images"] = parsed.images
    if parsed.mask is not None:
        fields["mask"] = parsed.mask
    template = prompt_template(parsed.body["prompt"])
    fields["prompt"] = _Literal(template) if "\n" in template else template
    text = yaml.dump(fields, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=10_000)
    if yaml.safe_load(text)["prompt"] != template:  # pragma: no cover - PyYAML round-trips
        raise CurlImportError(
            "the prompt does not survive YAML quoting; write the manifest by hand"
        )
    return text


@dataclass(frozen=True)
class Imported:
    path: Path
    address: str
    notes: tuple[str, ...]


def default_name(parsed: ParsedRequest) -> str:
    words = slug(parsed.body["prompt"]).split("-")[:6]
    return "imported/" + ("-".join(words) or "prompt")


def import_request(
    config: Config, text: str, name: str | None, out: Path | None, source: str
) -> Imported:
    parsed = parse_input(text)
    prompts = config.prompts_dir
    if out is None:
        out = prompts / f"{name or default_name(parsed)}.yaml"
    elif not out.is_absolute():
        # `otter.yaml` means prompts/otter.yaml; `prompts/otter.yaml` is taken as it is written.
        from_root = config.root / out
        out = from_root if from_root.resolve().is_relative_to(prompts.resolve()) else prompts / out
    if out.suffix not in (".yaml", ".yml") or not out.resolve().is_relative_to(prompts.resolve()):
        raise CurlImportError(
            f"--out must be a .yaml file under {config.project.prompts_dir}/, where promptform "
            "finds manifests"
        )
    shown = display_path(out, config.root)
    if out.exists():
        raise CurlImportError(f"{shown} already exists; choose another --name or --out")
    stem = out.resolve().relative_to(prompts.resolve()).with_suffix("").as_posix()
    text_out = manifest_text(parsed, name if name not in (None, stem) else None, source)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("x", encoding="utf-8", newline="\n") as handle:  # "x": never overwrite a race
        handle.write(text_out)
    try:
        address, notes = _verify(config, out, parsed)
    except BaseException:
        out.unlink(missing_ok=True)
        raise
    return Imported(out, address, tuple(parsed.notes + notes))


def _verify(config: Config, path: Path, parsed: ParsedRequest) -> tuple[str, list[str]]:
    """Load the project with the new manifest: it must be valid and render the prompt unchanged."""
    shown = display_path(path, config.root)
    try:
        project = load_project(config)
    except PromptformError as exc:
        problems = "; ".join(leaf.one_line() for leaf in exc.errors())
        raise CurlImportError(
            f"the imported manifest is not valid, so it was not kept: {problems}"
        ) from None
    mine = [target for target in project.targets if target.file == shown]
    if len(mine) != 1:  # pragma: no cover - one document, no matrix
        raise CurlImportError(f"{shown} did not load as one target")
    target = mine[0]
    prompt = parsed.body["prompt"]
    if target.body["prompt"] != prompt:
        if target.body["prompt"] == prompt.strip():
            raise CurlImportError(
                "the prompt starts or ends with whitespace, which promptform strips; remove it "
                "from the request if that is fine"
            )
        raise CurlImportError(
            "the prompt does not render back unchanged; write the manifest by hand"
        )
    notes = [
        f"the project's [defaults] add {key}={json.dumps(value)}, which the request did not send"
        for key, value in target.body.items()
        if key not in parsed.body and (key, value) != ("n", 1)
    ]
    return target.address, notes
