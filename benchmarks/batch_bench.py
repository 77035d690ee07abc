"""Benchmark: batch mode on 50,000 targets against the loopback Files and Batch API.

A catalogue of 50 manifest files of 1,000 matrix cells each (as a real one would be split) goes
through batch mode's three steps, each a real `promptform` subprocess (the installed console script)
timed with its own peak RSS (os.wait4, so the fake's memory is not counted):

(a) `apply --batch --yes`: plan, write the 50,000 request lines, upload them, create the batch;
(b) a no-op `plan` with the 50,000 targets pending (median of a few runs);
(c) `batch collect`: stream the batch's output file, check and write 50,000 images, record them.

The fake finishes the batch in between (`batch status` polls it along; not timed), writing its
output file to disk. Collect's peak memory must not depend on that file's size, so (c) runs again
on a smaller catalogue at two image sizes, and once more with every target in one manifest (one
lock shard of 50,000 entries, the shape that used to cost the most memory).

The fake runs in its own process, so its CPU (encoding images) is not counted as promptform's.
Run from the repository root: `python benchmarks/batch_bench.py` (several minutes; `--quick` runs a
tenth of the targets). Exits 1 when a target is missed (`--no-fail`: always 0).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from fake_server import KEY, FakeServer
from startup_bench import console_script

MB = 1024 * 1024

SUBMIT_TARGET_S = 30.0
PLAN_TARGET_S = 3.0
COLLECT_TARGET_S = 90.0
COLLECT_TARGET_MB = 300
# Collect's peak RSS with images this many times bigger may grow by at most this share.
FLAT_MEMORY_SHARE = 0.10
FINISH_TIMEOUT_S = 600.0  # the fake writing its output file; a bound, never reached normally

# The subprocesses run without PYTHONDONTWRITEBYTECODE, as an installed promptform runs.
ENVIRONMENT = {
    **{name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"},
    "BENCH_KEY": KEY,
}


@dataclass
class Run:
    """One promptform subprocess: exit code, wall seconds, peak RSS in bytes, its output."""

    code: int
    wall: float
    maxrss: int
    stdout: str
    stderr: str


@dataclass
class Catalogue:
    """What one submit / plan / collect cycle measured."""

    targets: int
    image_bytes: int | None
    submit: Run
    plans: list[Run]
    collect: Run
    output_file_bytes: int
    images_written: int

    @property
    def plan_wall(self) -> float:
        return statistics.median(run.wall for run in self.plans)


def promptform(root: Path, *args: str) -> Run:
    """Run `promptform -C root ARGS` and measure it alone: os.wait4 gives this child's rusage."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        process = subprocess.Popen(
            [console_script(), "-C", str(root), *args], stdout=out, stderr=err, env=ENVIRONMENT
        )
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Run(
            process.returncode,
            wall,
            usage.ru_maxrss * 1024,
            out.read().decode(errors="replace"),
            err.read().decode(errors="replace"),
        )


def build_project(root: Path, base_url: str, manifests: int, cells: int) -> None:
    """`manifests` manifest files of `cells` matrix cells each, on a provider with batches."""
    (root / "prompts/catalogue").mkdir(parents=True)
    (root / "promptform.toml").write_text(
        '[promptform]\ndefault_provider = "bench"\n\n'
        f'[providers.bench]\nkind = "openai"\nbase_url = "{base_url}"\n'
        'api_key_env = "BENCH_KEY"\nbatch = true\n\n'
        '[defaults]\nmodel = "gpt-image-2"\nsize = "1024x1024"\nquality = "low"\n\n'
        f"[limits]\nmax_cells_per_manifest = {max(cells, 10_000)}\n"
    )
    items = ", ".join(str(item) for item in range(cells))
    for index in range(manifests):
        (root / f"prompts/catalogue/range-{index:03d}.yaml").write_text(
            f"name: catalogue/range-{index:03d}\n"
            f"vars:\n  collection: collection number {index}\n"
            f"matrix:\n  item: [{items}]\n"
            "prompt: Product photo of item {{ item }} from {{ collection }}, white background.\n"
            f'output: "catalogue/range-{index:03d}/{{{{ item }}}}.png"\n'
        )


def checked(run: Run, what: str) -> Run:
    if run.code != 0:
        raise SystemExit(f"{what} exited {run.code}:\n{run.stderr[-3000:]}")
    return run


def wait_until_finished(root: Path) -> None:
    """Poll with `batch status` (the fake moves a batch one step per poll) until all completed."""
    deadline = time.monotonic() + FINISH_TIMEOUT_S
    while time.monotonic() < deadline:
        status = checked(promptform(root, "batch", "status", "--json"), "batch status")
        batches = json.loads(status.stdout)["batches"]
        if all(batch["status"] == "completed" for batch in batches):
            return
        if any(batch["status"] in ("failed", "expired", "cancelled") for batch in batches):
            raise SystemExit(f"a batch did not complete: {batches}")
    raise SystemExit(f"the fake did not finish the batches within {FINISH_TIMEOUT_S:.0f} s")


def catalogue(manifests: int, cells: int, image_bytes: int | None, plan_runs: int) -> Catalogue:
    """Submit, plan with everything pending, let the fake finish, collect."""
    targets = manifests * cells
    options = ["--image-bytes", str(image_bytes)] if image_bytes else []
    server = FakeServer("--batch-polls-per-step", "1", *options)
    try:
        with tempfile.TemporaryDirectory(prefix="promptform-batch-bench-") as directory:
            root = Path(directory)
            build_project(root, server.base_url, manifests, cells)
            submit = checked(promptform(root, "apply", "--batch", "--yes"), "apply --batch")
            plans = [checked(promptform(root, "plan"), "plan") for _ in range(plan_runs)]
            if f"No changes. 0 targets up to date, {targets} pending" not in plans[-1].stdout:
                raise SystemExit(f"expected {targets} pending, plan says:\n{plans[-1].stdout}")
            wait_until_finished(root)
            collect = checked(promptform(root, "batch", "collect"), "batch collect")
            if f"{targets} recorded" not in collect.stderr:
                raise SystemExit(f"collect did not record {targets} targets:\n{collect.stderr}")
            written = sum(1 for _ in (root / "generated").rglob("*.png"))
        output_bytes = int(str(server.stats()["batch_output_bytes"]))
    finally:
        server.stop()
    return Catalogue(targets, image_bytes, submit, plans, collect, output_bytes, written)


def verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def describe(run: Run) -> str:
    return f"{run.wall:.2f} s, {run.maxrss / MB:.0f} MB peak RSS"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the targets")
    parser.add_argument(
        "--no-fail", action="store_true", help="exit 0 even when a target is missed"
    )
    parser.add_argument("--plan-runs", type=int, default=3, help="no-op plans timed (median)")
    parser.add_argument(
        "--big-image-bytes",
        type=int,
        default=64 * 1024,
        help="image size of the second memory run (the first uses the fake's ~200 B images)",
    )
    args = parser.parse_args()
    scale = 10 if args.quick else 1
    manifests, cells = 50 // scale, 1_000
    print(f"promptform batch benchmark  (python {sys.version.split()[0]}, {os.cpu_count()} CPUs)")
    results: list[tuple[str, str, str, bool]] = []

    print(f"catalogue: {manifests} manifests x {cells:,} cells ...", flush=True)
    main_run = catalogue(manifests, cells, None, args.plan_runs)
    total = main_run.targets
    results += [
        (
            f"(a) apply --batch --yes, {total:,} targets",
            describe(main_run.submit),
            f"< {SUBMIT_TARGET_S:g} s",
            main_run.submit.wall < SUBMIT_TARGET_S,
        ),
        (
            f"(b) no-op plan, {total:,} pending (median of {len(main_run.plans)})",
            f"{main_run.plan_wall:.2f} s, {max(r.maxrss for r in main_run.plans) / MB:.0f} MB",
            f"< {PLAN_TARGET_S:g} s",
            main_run.plan_wall < PLAN_TARGET_S,
        ),
        (
            f"(c) batch collect, {total:,} targets",
            f"{describe(main_run.collect)} ({main_run.output_file_bytes / MB:.0f} MB output file)",
            f"< {COLLECT_TARGET_S:g} s, < {COLLECT_TARGET_MB} MB",
            main_run.collect.wall < COLLECT_TARGET_S
            and main_run.collect.maxrss < COLLECT_TARGET_MB * MB,
        ),
    ]

    # Peak memory against the output file's size: the same catalogue at two image sizes.
    small_manifests = max(1, manifests // 5)
    sized: list[Catalogue] = []
    for image_bytes in (None, args.big_image_bytes):
        shown = f"{image_bytes // 1024} KB" if image_bytes else "small"
        print(
            f"collect memory: {small_manifests * cells:,} targets, {shown} images ...", flush=True
        )
        sized.append(catalogue(small_manifests, cells, image_bytes, 1))
    small, big = sized
    growth = big.collect.maxrss / small.collect.maxrss - 1
    results.append(
        (
            f"(d) collect peak RSS vs output file, {small.targets:,} targets",
            f"{small.collect.maxrss / MB:.0f} MB ({small.output_file_bytes / MB:.0f} MB file), "
            f"{big.collect.maxrss / MB:.0f} MB ({big.output_file_bytes / MB:,.0f} MB file): "
            f"{growth:+.0%}",
            f"grows < {FLAT_MEMORY_SHARE:.0%}",
            growth < FLAT_MEMORY_SHARE,
        )
    )

    print(f"one manifest of {total:,} cells ...", flush=True)
    single = catalogue(1, total, None, 1)
    results += [
        (
            f"(e) one manifest of {total:,}: apply --batch",
            describe(single.submit),
            f"< {SUBMIT_TARGET_S:g} s",
            single.submit.wall < SUBMIT_TARGET_S,
        ),
        (
            f"(e) one manifest of {total:,}: no-op plan",
            describe(single.plans[0]),
            f"< {PLAN_TARGET_S:g} s",
            single.plan_wall < PLAN_TARGET_S,
        ),
        (
            f"(e) one manifest of {total:,}: batch collect",
            describe(single.collect),
            f"< {COLLECT_TARGET_S:g} s, < {COLLECT_TARGET_MB} MB",
            single.collect.wall < COLLECT_TARGET_S
            and single.collect.maxrss < COLLECT_TARGET_MB * MB,
        ),
    ]

    width = max(len(row[0]) for row in results)
    value_width = max(len(row[1]) for row in results)
    print()
    for name, value, target, met in results:
        print(f"  {name:<{width}}  {value:<{value_width}}  target {target:<20} {verdict(met)}")
    missed = [row[0] for row in results if not row[3]]
    print(f"targets {'met' if not missed else 'MISSED: ' + '; '.join(missed)}")
    return 0 if args.no_fail or not missed else 1


if __name__ == "__main__":
    raise SystemExit(main())
