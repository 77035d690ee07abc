"""Benchmark: how long promptform takes to start, for the commands pre-commit hooks run.

Measures the wall time of real subprocesses (interpreter start and imports included), median of N
runs: `promptform --version` through the console script and through `python -m promptform`,
`validate` and a no-op `plan` on 100 targets, and a no-op `plan` on 1,000 and 10,000 targets (the
render and stat caches warm, as after the first plan on a developer's machine). With DVC installed
(`--dvc PATH`, or `dvc` on PATH), it also times `dvc status` on the equivalent 1,000-stage pipeline
(one stage per target, each depending on its own prompt file and producing its own output),
interleaved with runs of the 1,000-target plan so that both are timed under the same conditions.

Run `python benchmarks/startup_bench.py` (`--quick`: fewer runs and no 10,000-target project).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from plan_bench import build_project

VERSION_TARGET_S = 0.050
SMALL_TARGET_S = 0.120  # validate and no-op plan, 100 targets
LARGE_TARGET_S = 0.75  # no-op plan, 10,000 targets
DVC_FACTOR = 30  # no-op plan on 1,000 targets at least this many times faster than `dvc status`
DVC_STAGES = 1_000
DVC_RUNS = 5  # each `dvc status` takes seconds; more runs would only make the benchmark slow


# An installed promptform has its bytecode cached; a shell that sets PYTHONDONTWRITEBYTECODE would
# otherwise have every run compile promptform's sources again, which is not start-up as users see it.
ENVIRONMENT = {
    name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"
}


def wall_time(command: Sequence[str], cwd: Path | None = None) -> float:
    started = time.perf_counter()
    done = subprocess.run(
        command, cwd=cwd, env=ENVIRONMENT, capture_output=True, text=True, check=False
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr}")
    return elapsed


def median_time(command: Sequence[str], runs: int, cwd: Path | None = None) -> float:
    wall_time(command, cwd)  # warms the page cache and the project's .promptform/ caches
    return statistics.median(wall_time(command, cwd) for _ in range(runs))


def console_script() -> str:
    """The `promptform` entry point installed next to this interpreter."""
    script = Path(sys.executable).parent / "promptform"
    if not script.exists():
        raise SystemExit(f"no console script at {script}; run `pip install -e .` first")
    return str(script)


def build_dvc_pipeline(root: Path, dvc: str, stages: int) -> None:
    """`stages` stages, each with one dependency and one output, committed so that all are current."""
    run = [dvc, "--quiet"]
    for command in (["init", "--no-scm"], ["config", "core.analytics", "false"]):
        subprocess.run([*run, *command], cwd=root, env=ENVIRONMENT, check=True, capture_output=True)
    (root / "prompts").mkdir()
    (root / "generated").mkdir()
    lines = ["stages:"]
    for index in range(stages):
        (root / f"prompts/item-{index:05d}.txt").write_text(f"product number {index}\n")
        (root / f"generated/item-{index:05d}.png").write_bytes(f"image {index}".encode() * 40)
        lines += [
            f"  item-{index:05d}:",
            f"    cmd: cp prompts/item-{index:05d}.txt generated/item-{index:05d}.png",
            f"    deps: [prompts/item-{index:05d}.txt]",
            f"    outs: [generated/item-{index:05d}.png]",
        ]
    (root / "dvc.yaml").write_text("\n".join(lines) + "\n")
    # Records every stage in dvc.lock as if it had run, without running 1,000 commands.
    subprocess.run(
        [*run, "commit", "--force"], cwd=root, env=ENVIRONMENT, check=True, capture_output=True
    )


def compare_with_dvc(dvc: str, plan_1000: Sequence[str], rounds: int) -> bool:
    """`dvc status` on the equivalent pipeline against the 1,000-target no-op plan, their runs
    interleaved: the machine's speed drifts over a benchmark's minutes, and timing one after the
    other would credit that drift to one of them."""
    with tempfile.TemporaryDirectory(prefix="promptform-startup-bench-dvc-") as directory:
        root = Path(directory)
        build_dvc_pipeline(root, dvc, DVC_STAGES)
        status = [dvc, "status", "--quiet"]
        wall_time(status, root)  # warms both
        wall_time(plan_1000)
        dvc_times, plan_times = [], []
        for _ in range(rounds):
            dvc_times.append(wall_time(status, root))
            plan_times += [wall_time(plan_1000) for _ in range(3)]
    dvc_status, plan = statistics.median(dvc_times), statistics.median(plan_times)
    report(f"dvc status, {DVC_STAGES:,}-stage pipeline (median of {rounds})", dvc_status)
    report(f"no-op plan, 1,000 targets, between them (median of {len(plan_times)})", plan)
    factor = dvc_status / plan
    met = factor >= DVC_FACTOR
    print(
        f"  no-op plan on 1,000 targets is {factor:.0f}x faster than dvc status  "
        f"target >= {DVC_FACTOR}x: {'met' if met else 'MISSED'}"
    )
    return met


def find_dvc(option: str | None) -> str | None:
    if option:
        return option
    return shutil.which("dvc")


def report(label: str, seconds: float, target: float | None = None) -> bool:
    verdict = ""
    if target is not None:
        verdict = f"  target < {target * 1000:.0f} ms: {'met' if seconds < target else 'MISSED'}"
    print(f"  {label:<52} {seconds * 1000:7.1f} ms{verdict}")
    return target is None or seconds < target


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, help="runs per measurement (default 15, quick 5)")
    parser.add_argument("--quick", action="store_true", help="fewer runs, no 10,000 targets")
    parser.add_argument("--dvc", metavar="PATH", help="the dvc executable (default: dvc on PATH)")
    args = parser.parse_args()
    runs = args.runs or (5 if args.quick else 15)
    python = sys.executable
    script = console_script()
    # DVC's telemetry would add network waits that are not its own work.
    ENVIRONMENT["DVC_NO_ANALYTICS"] = "1"
    print(
        f"promptform start-up benchmark  (python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
        f"median of {runs})"
    )
    ok = True
    report("python -c pass (the interpreter alone)", median_time([python, "-c", "pass"], runs))
    report("python -S -c pass (without site)", median_time([python, "-S", "-c", "pass"], runs))
    ok &= report("promptform --version", median_time([script, "--version"], runs), VERSION_TARGET_S)
    report(
        "python -m promptform --version",
        median_time([python, "-m", "promptform", "--version"], runs),
    )
    report("promptform --help", median_time([script, "--help"], runs))
    sizes = [100, 1_000] if args.quick else [100, 1_000, 10_000]
    with tempfile.TemporaryDirectory(prefix="promptform-startup-bench-") as directory:
        for size in sizes:
            root = Path(directory) / f"targets-{size}"
            root.mkdir()
            build_project(root, size)
            plan = [script, "-C", str(root), "--quiet", "plan"]
            if size == 100:
                validate = [script, "-C", str(root), "--quiet", "validate"]
                ok &= report("validate, 100 targets", median_time(validate, runs), SMALL_TARGET_S)
                ok &= report("no-op plan, 100 targets", median_time(plan, runs), SMALL_TARGET_S)
            elif size == 1_000:
                report("no-op plan, 1,000 targets", median_time(plan, runs))
            else:
                target = LARGE_TARGET_S
                ok &= report(f"no-op plan, {size:,} targets", median_time(plan, runs), target)
        dvc = find_dvc(args.dvc)
        if dvc is None:
            print("  dvc status: skipped (no dvc; pass --dvc PATH or put dvc on PATH)")
        else:
            plan_1000 = [script, "-C", str(Path(directory) / "targets-1000"), "--quiet", "plan"]
            ok &= compare_with_dvc(dvc, plan_1000, min(runs, DVC_RUNS))
    print(f"targets {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
