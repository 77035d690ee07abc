"""Benchmark: `promptform apply` against the loopback images API (tests/support/fake_images_api.py).

(a) 200 targets, 0.25 s server latency, concurrency 8: wall time against the ideal 200 x 0.25 / 8 s.
(b) a server allowing 5 requests/s (429 with retry-after above it): the rate achieved, failures.
(c) 1,000 targets of 1.5 MB images: peak RSS of the apply process.
(d) the apply process's own CPU (user + sys) per image, for (a) and (c).

The fake server runs in its own process, so its CPU (encoding images) is not counted as the tool's.
Each apply runs in a fresh interpreter; "apply phase" is `run_apply` alone (the requests, writes and
lockfile rewrites), "process" adds interpreter start, imports and the plan. Run from the repository
root: `python benchmarks/apply_bench.py` (a few minutes; `--quick` for a smaller run).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from fake_server import KEY, FakeServer

MB = 1024 * 1024

# Runs `promptform apply` in-process so the child can time `run_apply` alone and report its own
# CPU and peak RSS (RUSAGE_SELF: exactly this process, not the server).
APPLY_SCRIPT = """\
import json, resource, sys, time
import promptform.commands.apply as command
from promptform.cli import main

phase = {}
original = command.run_apply

def timed(*args, **kwargs):
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        return original(*args, **kwargs)
    finally:
        phase["wall"] = time.perf_counter() - wall
        phase["cpu"] = time.process_time() - cpu

command.run_apply = timed
code = main(["-C", sys.argv[1], "--quiet", "apply", "--yes", "--concurrency", sys.argv[2]])
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({
    "code": code,
    "phase_wall": phase.get("wall"),
    "phase_cpu": phase.get("cpu"),
    "cpu": usage.ru_utime + usage.ru_stime,
    "maxrss": usage.ru_maxrss * 1024,
}), file=sys.stderr)
"""


@dataclass
class Run:
    code: int
    wall: float
    phase_wall: float
    phase_cpu: float
    cpu: float
    maxrss: int
    server: dict[str, object]
    failures: str


def build_project(root: Path, base_url: str, targets: int, max_retries: int = 5) -> None:
    (root / "prompts").mkdir(parents=True)
    (root / "promptform.toml").write_text(
        '[promptform]\ndefault_provider = "bench"\n\n'
        f'[providers.bench]\nkind = "openai"\nbase_url = "{base_url}"\n'
        f'api_key_env = "BENCH_KEY"\nmax_retries = {max_retries}\n\n'
        '[defaults]\nmodel = "gpt-image-2"\nsize = "1024x1024"\nquality = "low"\n'
    )
    cells = ", ".join(str(i) for i in range(targets))
    (root / "prompts/items.yaml").write_text(
        f"name: items\nmatrix:\n  i: [{cells}]\nprompt: Catalogue item number {{{{ i }}}}.\n"
        'output: "items/{{ i }}.png"\n'
    )


def run_apply(root: Path, concurrency: int, server: FakeServer) -> Run:
    env = {**os.environ, "BENCH_KEY": KEY}
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", APPLY_SCRIPT, str(root), str(concurrency)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    wall = time.perf_counter() - started
    stats = server.stop()
    try:
        figures = json.loads(done.stderr.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise SystemExit(f"apply crashed ({done.returncode}):\n{done.stderr}") from None
    failures = done.stderr.partition("target(s) failed:")[2]
    return Run(
        code=figures["code"],
        wall=wall,
        phase_wall=figures["phase_wall"] or 0.0,
        phase_cpu=figures["phase_cpu"] or 0.0,
        cpu=figures["cpu"],
        maxrss=figures["maxrss"],
        server=stats,
        failures=failures.strip(),
    )


def scenario(targets: int, concurrency: int, *server_options: str) -> Run:
    server = FakeServer(*server_options)
    with tempfile.TemporaryDirectory(prefix="promptform-apply-bench-") as directory:
        root = Path(directory)
        build_project(root, server.base_url, targets)
        run = run_apply(root, concurrency, server)
        generated = sum(1 for path in (root / "generated").rglob("*.png"))
    if run.code != 0 or generated != targets:
        print(
            f"    apply exited {run.code}, {generated}/{targets} images; failures:\n{run.failures}"
        )
    return run


def verdict(met: bool) -> str:
    return "ok" if met else "MISSED"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a quarter of the targets")
    args = parser.parse_args()
    scale = 4 if args.quick else 1
    results: list[tuple[str, str, str, bool]] = []
    print(f"promptform apply benchmark  (python {sys.version.split()[0]}, {os.cpu_count()} CPUs)")

    targets, latency, concurrency = 200 // scale, 0.25, 8
    print(f"(a) {targets} targets, {latency} s latency, concurrency {concurrency} ...", flush=True)
    a = scenario(targets, concurrency, "--latency", str(latency))
    ideal = targets * latency / concurrency
    results.append(
        (
            "(a) apply phase wall time",
            f"{a.phase_wall:.2f} s (process {a.wall:.2f} s)",
            f"<= {ideal * 1.1:.2f} s (ideal {ideal:.2f} s + 10%)",
            a.phase_wall <= ideal * 1.1 and a.code == 0,
        )
    )

    targets, rate = 100 // scale, 5.0
    print(f"(b) {targets} targets, server limited to {rate:g}/s ...", flush=True)
    b = scenario(targets, concurrency, "--latency", str(latency), "--rate-limit", str(rate))
    achieved = targets / b.phase_wall
    results.append(
        (
            "(b) rate achieved under a 5/s limit",
            f"{achieved:.2f}/s ({achieved / rate:.0%}), {b.server.get('rate_limited')} 429s, "
            f"exit {b.code}",
            f">= {rate * 0.85:.2f}/s and exit 0",
            achieved >= rate * 0.85 and b.code == 0,
        )
    )

    targets, image_bytes = 1000 // scale, int(1.5 * MB)
    print(f"(c) {targets} targets of {image_bytes / MB:g} MB images ...", flush=True)
    c = scenario(targets, concurrency, "--image-bytes", str(image_bytes))
    results.append(
        (
            "(c) peak RSS of the apply process",
            f"{c.maxrss / MB:.1f} MB ({c.phase_wall:.1f} s, exit {c.code})",
            "< 250 MB",
            c.maxrss < 250 * MB and c.code == 0,
        )
    )

    for label, run, count in (("(a)", a, 200 // scale), ("(c)", c, 1000 // scale)):
        results.append(
            (
                f"(d) CPU per image {label}",
                f"{run.phase_cpu / count * 1000:.1f} ms apply phase, "
                f"{run.cpu / count * 1000:.1f} ms whole process",
                "reported",
                True,
            )
        )

    width = max(len(row[0]) for row in results)
    print()
    for name, value, target, met in results:
        print(f"  {name:<{width}}  {value:<48}  target {target:<32} {verdict(met)}")
    return 0 if all(row[3] for row in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
