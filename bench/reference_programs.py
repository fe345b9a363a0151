"""Held-out success of the built-in camera-only reference programs.

Each task's starter program runs once per held-out seed (robosuite 1-100, LIBERO 1-50 = the
benchmark's fixed initial states) through the normal sandbox and robot API, untraced. Writes
bench/results/reference_programs.json: per task the seeds, success rate, mean episode seconds and a
tally of how the failures ended (status and first line of the error), which is the "why".

    python bench/reference_programs.py [--tasks robosuite:Lift,...] [--limit N]
"""

from __future__ import annotations

import argparse
import collections
import json
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from worker.engine import EngineSettings, run_episode, simulators  # noqa: E402
from worker.events import NullSink  # noqa: E402
from worker.sim.catalog import all_tasks, get_task  # noqa: E402


def reference_tasks():
    return [spec for spec in all_tasks() if spec.starter_program]


def evaluate(spec, limit=None):
    program = (ROOT / "worker" / "programs" / spec.starter_program).read_text()
    seeds = list(spec.heldout_seeds)[: limit or None]
    simulators().get(spec)  # build outside the timed episodes
    results = []
    for seed in seeds:
        t0 = time.perf_counter()
        result = run_episode(spec, program, seed, NullSink(), EngineSettings(trace=False, keyframes=False), None)
        results.append((seed, result, time.perf_counter() - t0))
        print(
            f"{spec.key} seed {seed}: {'ok ' if result.success else 'FAIL'} {result.status} {result.error[:80]}",
            flush=True,
        )
    failures = collections.Counter(
        f"{r.status}: {(r.error.splitlines() or ['task not achieved'])[0][:120]}"
        if r.error
        else f"{r.status}: task not achieved"
        for _, r, _ in results
        if not r.success
    )
    return {
        "task": spec.key,
        "program": spec.starter_program,
        "seeds": f"{seeds[0]}-{seeds[-1]}",
        "episodes": len(results),
        "success_rate": round(sum(r.success for _, r, _ in results) / len(results), 4),
        "mean_episode_seconds": round(statistics.mean(dt for _, _, dt in results), 3),
        "failed_seeds": [seed for seed, r, _ in results if not r.success],
        "failure_modes": dict(failures.most_common()),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", help="comma-separated task keys (default: every task with a reference program)")
    parser.add_argument("--limit", type=int, help="only the first N held-out seeds (quick checks)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "reference_programs.json"))
    args = parser.parse_args(argv)
    specs = [get_task(k) for k in args.tasks.split(",")] if args.tasks else reference_tasks()
    rows = [evaluate(spec, args.limit) for spec in specs]
    out = Path(args.out)
    if args.tasks and out.exists():  # re-measure some tasks, keep the others' rows
        fresh = {r["task"] for r in rows}
        rows = [r for r in json.loads(out.read_text())["tasks"] if r["task"] not in fresh] + rows
        order = [s.key for s in reference_tasks()]
        rows.sort(key=lambda r: order.index(r["task"]) if r["task"] in order else len(order))
    doc = {
        "benchmark": "reference_programs",
        "mode": "untraced, one episode per held-out seed",
        "machine": {"platform": platform.platform(), "python": platform.python_version()},
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "tasks": rows,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n")
    for row in rows:
        print(f"{row['task']:<95} {row['success_rate']:.2f}  {row['mean_episode_seconds']:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
