"""Benchmark: `promptform validate` on 10,000 targets (1,000 manifests x 10 matrix cells).

Every manifest shares the same templates (an include and an imported macro), as a real repository
would. Run with `python benchmarks/validate_bench.py`; it builds the project in a temporary directory
and prints the median wall time and peak memory of several in-process runs and of one subprocess
(which also pays for interpreter start and imports).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import tracemalloc
from pathlib import Path

from promptform.cli import main

MANIFESTS = 1_000
CELLS = 10  # 5 subjects x 2 palettes
TARGET_SECONDS = 1.5
TARGET_MB = 200

MANIFEST = """\
# yaml-language-server: $schema=../../schema/manifest.schema.json
name: catalogue/item-{index:04d}
description: Catalogue tile {index}
model: gpt-image-2
size: 1536x1024
quality: medium
vars:
  product: product number {index}
matrix:
  subject: [kitchen, garden, studio, beach, forest]
  palette: [warm, cool]
prompt: |
  {{% import "macros/palette.j2" as palette %}}
  {{% include "styles/photoreal.j2" %}}
  {{{{ product }}}} in a {{{{ subject }}}} setting, {{{{ palette.describe(palette) }}}}.
output: "catalogue/{{{{ name | slug }}}}/{{{{ subject }}}}-{{{{ palette }}}}.png"
"""

TEMPLATES = {
    "styles/photoreal.j2": "Photorealistic product photograph, 50mm lens, natural colours.\n",
    "macros/palette.j2": textwrap.dedent(
        """\
        {%- macro describe(name) -%}
        {%- if name == "warm" -%}warm terracotta and amber tones
        {%- else -%}cool slate and teal tones{%- endif -%}
        {%- endmacro -%}
        """
    ),
}


def build_project(root: Path, manifests: int) -> None:
    (root / "promptform.toml").write_text('[promptform]\nprompts_dir = "prompts"\n')
    for relative, text in TEMPLATES.items():
        path = root / "templates" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for index in range(manifests):
        path = root / "prompts" / f"group-{index // 100:02d}" / f"item-{index:04d}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(MANIFEST.format(index=index))


def validate_in_process(root: Path) -> tuple[float, int]:
    """(seconds, tracemalloc peak bytes) of one `promptform -C ROOT validate`, caches cold."""
    stderr = io.StringIO()
    tracemalloc.start()
    started = time.perf_counter()
    with contextlib.redirect_stderr(stderr):
        code = main(["-C", str(root), "validate"])
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    if code != 0:
        raise SystemExit(f"validate failed ({code}):\n{stderr.getvalue()}")
    return elapsed, peak


def timed_in_process(root: Path) -> float:
    """Seconds of one in-process validate without tracemalloc, which slows allocation down."""
    started = time.perf_counter()
    with contextlib.redirect_stderr(io.StringIO()):
        code = main(["-C", str(root), "validate"])
    if code != 0:
        raise SystemExit(f"validate failed ({code})")
    return time.perf_counter() - started


def validate_subprocess(root: Path) -> tuple[float, int, str]:
    """(wall seconds, peak RSS bytes, summary line) of `python -m promptform validate`."""
    script = (
        "import resource, sys\n"
        "from promptform.cli import main\n"
        "code = main(['-C', sys.argv[1], 'validate'])\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stdout)\n"
        "sys.exit(code)\n"
    )
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", script, str(root)], capture_output=True, text=True, check=False
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"validate subprocess failed:\n{done.stderr}")
    kilobytes = int(done.stdout.strip().splitlines()[-1])
    return elapsed, kilobytes * 1024, done.stderr.strip()


def main_bench() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifests", type=int, default=MANIFESTS)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="promptform-bench-") as directory:
        root = Path(directory)
        build_project(root, args.manifests)
        timed_in_process(root)  # warm the imports, as the subprocess row covers a cold start
        times = [timed_in_process(root) for _ in range(args.runs)]
        _, traced_peak = validate_in_process(root)
        wall, rss, summary = validate_subprocess(root)
    median = statistics.median(times)
    mb = 1024 * 1024
    rows = [
        ("targets", f"{args.manifests * CELLS:,}", ""),
        ("validate, in process (median)", f"{median:.3f} s", f"of {args.runs} runs"),
        ("validate, in process (min / max)", f"{min(times):.3f} / {max(times):.3f} s", ""),
        ("validate, subprocess wall", f"{wall:.3f} s", "incl. interpreter start"),
        ("peak traced Python memory", f"{traced_peak / mb:.1f} MB", "tracemalloc"),
        ("peak RSS, subprocess", f"{rss / mb:.1f} MB", "ru_maxrss"),
    ]
    width = max(len(row[0]) for row in rows)
    print(
        f"promptform validate benchmark  (python {sys.version.split()[0]}, {os.cpu_count()} CPUs)"
    )
    print(f"  {summary}")
    for label, value, note in rows:
        print(f"  {label:<{width}}  {value:>16}  {note}")
    ok = wall < TARGET_SECONDS and rss < TARGET_MB * mb
    print(f"target: < {TARGET_SECONDS} s and < {TARGET_MB} MB: {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main_bench())
