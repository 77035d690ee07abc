"""Benchmark: `promptform plan` on up to 10,000 targets with every output file present.

Measures (1) a no-op plan on 10,000 targets (the stat and render caches in .promptform/ warm, as on
a developer's machine after the first plan; the cold first run is shown too), (2) a plan after
editing one shared template that 1,000 targets include (only the manifests that include it are
rendered again), and (3) no-op plan time at 100 / 1,000 / 3,000 / 10,000 targets to show the
growth is linear. Each figure is the median wall time of `promptform plan` in a fresh interpreter
(interpreter start and imports included), with its peak RSS. Run `python benchmarks/plan_bench.py`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from promptform.core.config import load_config
from promptform.engine.plan import lock_shards
from promptform.engine.project import load_project
from promptform.state.lockfile import LockedOutput, LockEntry, Lockfile, ProviderRef, write_lockfile

CELLS = 10  # targets per manifest: 5 subjects x 2 palettes
MANIFESTS_PER_SERIES = 100  # 1,000 targets include each series template
NOOP_TARGET_S, NOOP_TARGET_MB, TEMPLATE_TARGET_S = 1.0, 250, 1.5

MANIFEST = """\
name: catalogue/item-{index:05d}
model: gpt-image-2
size: 1536x1024
quality: medium
vars:
  product: product number {index}
matrix:
  subject: [kitchen, garden, studio, beach, forest]
  palette: [warm, cool]
prompt: |
  {{% include "styles/photoreal.j2" %}}
  {{% include "series/series-{series:02d}.j2" %}}
  {{{{ product }}}} in a {{{{ subject }}}} setting, {{{{ palette }}}} palette.
output: "catalogue/{{{{ name | slug }}}}/{{{{ subject }}}}-{{{{ palette }}}}.png"
"""

PLAN_SCRIPT = """\
import resource, sys
from promptform.cli import main
code = main(['-C', sys.argv[1], '--quiet', 'plan', '--format', 'json'])
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
sys.exit(code)
"""


def build_project(root: Path, targets: int) -> None:
    """Manifests, templates, one small output file per target and a lockfile that matches them."""
    manifests = targets // CELLS
    (root / "promptform.toml").write_text('[promptform]\ndefault_provider = "offline"\n')
    (root / "templates/styles").mkdir(parents=True)
    (root / "templates/styles/photoreal.j2").write_text("Photorealistic, 50mm lens.\n")
    (root / "templates/series").mkdir()
    for series in range((manifests + MANIFESTS_PER_SERIES - 1) // MANIFESTS_PER_SERIES):
        (root / f"templates/series/series-{series:02d}.j2").write_text(f"Series {series} look.\n")
    for index in range(manifests):
        path = root / "prompts" / f"group-{index // 100:03d}" / f"item-{index:05d}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(MANIFEST.format(index=index, series=index // MANIFESTS_PER_SERIES))
    config = load_config(root)
    project = load_project(config)
    entries = {}
    for target in project.targets:
        outputs = []
        for path in target.outputs:
            data = f"{target.address}:{path}".encode() * 40  # a few KB stand-in image
            full = config.outputs_dir / path
            full.parent.mkdir(parents=True, exist_ok=True)
            full.write_bytes(data)
            digest = hashlib.sha256(data).hexdigest()
            outputs.append(LockedOutput(path=path, sha256=digest, bytes=len(data), format="png"))
        entries[target.address] = LockEntry(
            fingerprint=target.fingerprint,
            request=target.body,
            endpoint=target.endpoint,
            outputs=outputs,
            provider=ProviderRef(kind=target.provider_kind, name=target.provider),
            model=target.model,
            generated_at="2025-01-01T00:00:00Z",
        )
    # One shard per manifest file, as apply writes them.
    write_lockfile(config.lockfile, Lockfile(targets=entries), lock_shards(project))


def plan_once(root: Path) -> tuple[float, int, dict[str, int]]:
    """(wall seconds, peak RSS bytes, summary counts) of one `promptform plan` subprocess."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", PLAN_SCRIPT, str(root)], capture_output=True, text=True, check=False
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"plan failed ({done.returncode}):\n{done.stderr}")
    summary = json.loads(done.stdout)["summary"]
    return elapsed, int(done.stderr.strip().splitlines()[-1]) * 1024, summary


def median_plan(
    root: Path, runs: int, before_each: Callable[[int], None] = lambda run: None
) -> tuple[float, int, dict[str, int]]:
    results = []
    for run in range(runs):
        before_each(run)
        results.append(plan_once(root))
    return (
        statistics.median(result[0] for result in results),
        max(result[1] for result in results),
        results[-1][2],
    )


def template_editor(template: Path) -> Callable[[int], None]:
    """Gives `template` new text before each run: the render cache would answer a repeated plan."""

    def edit(run: int) -> None:
        template.write_text(f"Series 0 look, edit {run}.\n")

    return edit


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--sizes", default="100,1000,3000,10000")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    mb = 1024 * 1024
    print(f"promptform plan benchmark  (python {sys.version.split()[0]}, {os.cpu_count()} CPUs)")
    ok = True
    scaling: list[tuple[int, float, int]] = []
    for size in sizes:
        with tempfile.TemporaryDirectory(prefix="promptform-plan-bench-") as directory:
            root = Path(directory)
            build_project(root, size)
            cold, _, _ = plan_once(root)  # fills the caches: every output hashed, all rendered
            warm, rss, summary = median_plan(root, args.runs)
            if summary["unchanged"] != size or summary["replace"]:
                raise SystemExit(f"expected a no-op plan, got {summary}")
            scaling.append((size, warm, rss))
            if size != max(sizes):
                continue
            print(f"  no-op plan, {size:,} targets, {size:,} outputs")
            print(f"    first run (caches cold: hashes and renders all)   {cold:.3f} s")
            print(f"    later runs (median of {args.runs})                  {warm:.3f} s")
            print(f"    peak RSS                                        {rss / mb:.1f} MB")
            met = warm < NOOP_TARGET_S and rss < NOOP_TARGET_MB * mb
            ok &= met
            print(
                f"    target < {NOOP_TARGET_S} s, < {NOOP_TARGET_MB} MB: {'met' if met else 'MISSED'}"
            )
            edit = template_editor(root / "templates/series/series-00.j2")
            changed, changed_rss, summary = median_plan(root, args.runs, edit)
            print(
                f"  plan after editing one template used by {summary['replace']:,} targets: "
                f"{changed:.3f} s (median), {changed_rss / mb:.1f} MB"
            )
            met = changed < TEMPLATE_TARGET_S
            ok &= met
            print(f"    target < {TEMPLATE_TARGET_S} s: {'met' if met else 'MISSED'}")
    print("  growth (no-op plan, median wall incl. interpreter start):")
    base_size, base_time, _ = scaling[0]
    for size, seconds, rss in scaling:
        per_target = (seconds - base_time) / (size - base_size) * 1e6 if size > base_size else 0
        note = f"{per_target:6.1f} us/target above {base_size:,}" if size > base_size else ""
        print(f"    {size:>6,} targets  {seconds:.3f} s  {rss / mb:6.1f} MB  {note}")
    print(f"targets {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
