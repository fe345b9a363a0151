"""Held-out success of the built-in camera-only reference programs, per perception mode.

Each task's starter program runs once per held-out seed (robosuite 1-100, LIBERO 1-50 = the
benchmark's fixed initial states) through the normal sandbox and robot API, untraced, under the task's
benchmark step budget, in every perception mode asked for (default: realistic and oracle), the modes
interleaved seed by seed so both see the same machine load. Writes bench/results/reference_programs.json:
one row per (task, perception mode) with the seeds, success rate, mean episode seconds, control steps
used against the budget and a tally of how the failures ended (status and first line of the error),
which is the "why"; the commit and settings of the measurement are in the document.

    python bench/reference_programs.py [--tasks robosuite:Lift,...] [--limit N] [--seeds 41-70]
                                       [--modes realistic,oracle]

``--seeds`` keeps only those of each task's held-out seeds (e.g. the ones no program was tuned on).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from worker.engine import EngineSettings, run_episode, simulators  # noqa: E402
from worker.events import NullSink  # noqa: E402
from worker.sim.catalog import all_tasks, get_task, parse_seeds  # noqa: E402


def reference_tasks():
    return [spec for spec in all_tasks() if spec.starter_program]


MODES = ("realistic", "oracle")


def _commit() -> str:
    """The checked-out commit, "+dirty" when tracked files differ from it (bench/provenance.py)."""
    from bench import provenance

    return provenance.commit()


def evaluate(spec, limit=None, modes=MODES, only=None):
    """Rows (one per mode) for ``spec``'s reference program on its held-out seeds (those in ``only``
    when given, the first ``limit`` when given)."""
    program = (ROOT / "worker" / "programs" / spec.starter_program).read_text()
    seeds = [s for s in spec.heldout_seeds if only is None or s in only][: limit or None]
    simulators().get(spec)  # build outside the timed episodes
    results = {mode: [] for mode in modes}
    for seed in seeds:
        for mode in modes:
            settings = EngineSettings(trace=False, keyframes=False, perception_mode=mode)
            t0 = time.perf_counter()
            result = run_episode(spec, program, seed, NullSink(), settings, None)
            results[mode].append((seed, result, time.perf_counter() - t0))
            print(
                f"{spec.key} [{mode}] seed {seed}: {'ok ' if result.success else 'FAIL'} {result.status} "
                f"{result.error[:80]}",
                flush=True,
            )
    return [_row(spec, mode, seeds, results[mode]) for mode in modes]


def _evaluate_key(key, limit, modes, only):
    return evaluate(get_task(key), limit, modes, only)


def _ranges(seeds) -> str:
    """[1, 2, 3, 7, 8] -> "1-3, 7-8"."""
    out, start = [], None
    for i, s in enumerate(seeds):
        if start is None:
            start = s
        if i + 1 == len(seeds) or seeds[i + 1] != s + 1:
            out.append(f"{start}-{s}" if s != start else str(s))
            start = None
    return ", ".join(out)


def _row(spec, mode, seeds, results):
    failures = collections.Counter(
        f"{r.status}: {(r.error.splitlines() or ['task not achieved'])[0][:120]}"
        if r.error
        else f"{r.status}: task not achieved"
        for _, r, _ in results
        if not r.success
    )
    steps = [r.control_steps for _, r, _ in results]
    return {
        "task": spec.key,
        "perception_mode": mode,
        "program": spec.starter_program,
        "seeds": _ranges(seeds),
        "step_budget": results[0][1].step_budget if results else None,
        "mean_control_steps": round(statistics.mean(steps), 1) if steps else 0,
        "max_control_steps": max(steps, default=0),
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
    parser.add_argument("--modes", default=",".join(MODES), help="perception modes, interleaved per seed")
    parser.add_argument("--seeds", help='only these held-out seeds, e.g. "41-70" or "1-10,41-50"')
    parser.add_argument("--jobs", type=int, default=1, help="tasks measured at once, one process each")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "reference_programs.json"))
    args = parser.parse_args(argv)
    modes = tuple(m.strip() for m in args.modes.split(",") if m.strip())
    unknown = set(modes) - set(MODES)
    if unknown or not modes:
        parser.error(f"--modes: use {', '.join(MODES)}")
    specs = [get_task(k) for k in args.tasks.split(",")] if args.tasks else reference_tasks()
    only = set(parse_seeds(args.seeds)) if args.seeds else None
    if args.jobs > 1:
        import multiprocessing

        # Fresh interpreters (spawn): each builds its own simulators and GL contexts.
        with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
            per_task = pool.starmap(_evaluate_key, [(s.key, args.limit, modes, only) for s in specs])
    else:
        per_task = [evaluate(spec, args.limit, modes, only) for spec in specs]
    rows = [row for task_rows in per_task for row in task_rows]
    out = Path(args.out)
    if args.tasks and out.exists():  # re-measure some tasks, keep the others' rows
        fresh = {(r["task"], r["perception_mode"]) for r in rows}
        kept = json.loads(out.read_text())["tasks"]
        rows = [r for r in kept if (r["task"], r.get("perception_mode")) not in fresh and "perception_mode" in r] + rows
        order = [s.key for s in reference_tasks()]
        rows.sort(
            key=lambda r: (
                order.index(r["task"]) if r["task"] in order else len(order),
                MODES.index(r["perception_mode"]),
            )
        )
    doc = {
        "benchmark": "reference_programs",
        "mode": "untraced, one episode per held-out seed, perception modes interleaved seed by seed",
        "commit": _commit(),
        "settings": {
            "jobs": args.jobs,
            "modes": list(modes),
            "limit": args.limit,
            "seeds": args.seeds,
            "step_budget": "each task's benchmark budget",
        },
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
        },
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "tasks": rows,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n")
    for row in rows:
        print(
            f"{row['task']:<70} {row['perception_mode']:<10} {row['success_rate']:.2f}  "
            f"{row['mean_episode_seconds']:.2f} s  {row['mean_control_steps']} steps"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
