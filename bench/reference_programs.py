"""Held-out success of the built-in camera-only reference programs, per perception mode.

Each task's starter program runs once per held-out seed (robosuite 1-100, LIBERO 1-50 = the
benchmark's fixed initial states) through the normal sandbox and robot API, untraced, under the task's
benchmark step budget, in every perception mode asked for (default: realistic and oracle), the modes
interleaved seed by seed so both see the same machine load. Writes bench/results/reference_programs.json:
one row per (task, perception mode) with the seeds, success rate, mean episode seconds, control steps
used against the budget and a tally of how the failures ended (status and first line of the error),
which is the "why"; the commit and settings of the measurement are in the document.

    python bench/reference_programs.py [--tasks robosuite:Lift,...] [--limit N] [--seeds 41-70]
                                       [--modes realistic,oracle] [--jobs 2] [--resume]
    python bench/reference_programs.py --tasks KEY --program my_program.py --out my_results.json

``--seeds`` keeps only those of each task's held-out seeds (e.g. the ones no program was tuned on).
``--program FILE`` evaluates a program of your own (e.g. a published CaP-X / ASPIRE program) on one task
under the same protocol, into the file given by ``--out``.

The file is written before the first task and after each task (``not_yet_run`` lists the tasks still to
measure); ``--resume`` continues a stopped run, keeping the finished tasks' rows when the settings match.
``--tasks`` with an existing file re-measures those tasks and keeps the other rows. Every row records the
commit and time it was measured at; ``row_commits`` lists them.
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
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import provenance  # noqa: E402
from bench.protocol import write_results  # noqa: E402
from worker.engine import EngineSettings, run_episode, simulators  # noqa: E402
from worker.events import NullSink  # noqa: E402
from worker.sim.catalog import all_tasks, get_task, parse_seeds  # noqa: E402


def reference_tasks():
    return [spec for spec in all_tasks() if spec.starter_program]


MODES = ("realistic", "oracle")


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


def _evaluate_args(args):
    key, limit, modes, only = args
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


def _order(rows: list[dict]) -> list[dict]:
    """Rows in the catalog's order of reference programs, then perception modes."""
    order = [s.key for s in reference_tasks()]
    return sorted(
        rows,
        key=lambda r: (
            order.index(r["task"]) if r["task"] in order else len(order),
            MODES.index(r["perception_mode"]) if r.get("perception_mode") in MODES else len(MODES),
        ),
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", help="comma-separated task keys (default: every task with a reference program)")
    parser.add_argument("--limit", type=int, help="only the first N held-out seeds (quick checks)")
    parser.add_argument("--modes", default=",".join(MODES), help="perception modes, interleaved per seed")
    parser.add_argument("--seeds", help='only these held-out seeds, e.g. "41-70" or "1-10,41-50"')
    parser.add_argument("--jobs", type=int, default=1, help="tasks measured at once, one process each")
    parser.add_argument(
        "--program",
        help="evaluate this program file instead of the task's reference program (one task in --tasks; --out "
        "required, so the committed reference results are never overwritten)",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="keep the rows of tasks the results file already holds under the same settings; run the others",
    )
    parser.add_argument("--out", help="default: bench/results/reference_programs.json")
    args = parser.parse_args(argv)
    modes = tuple(m.strip() for m in args.modes.split(",") if m.strip())
    unknown = set(modes) - set(MODES)
    if unknown or not modes:
        parser.error(f"--modes: use {', '.join(MODES)}")
    try:
        specs = [get_task(k.strip()) for k in args.tasks.split(",") if k.strip()] if args.tasks else reference_tasks()
    except KeyError as exc:
        parser.error(exc.args[0])
    if args.program:
        if len(specs) != 1 or not args.tasks:
            parser.error("--program needs exactly one task in --tasks")
        if args.out is None:
            parser.error("--program needs --out (the committed reference results are the built-in programs')")
        program = Path(args.program).resolve()
        if not program.is_file():
            parser.error(f"--program: no file {program}")
        specs = [replace(specs[0], starter_program=str(program))]  # an absolute path: read from there
    missing = [s.key for s in specs if not s.starter_program]
    if missing:
        parser.error(f"no reference program for {', '.join(missing)}")
    only = set(parse_seeds(args.seeds)) if args.seeds else None
    settings = {
        "program": str(Path(args.program).resolve()) if args.program else None,
        "modes": list(modes),
        "limit": args.limit,
        "seeds": args.seeds,
        "step_budget": "each task's benchmark budget",
    }
    out = Path(args.out or ROOT / "bench" / "results" / "reference_programs.json")
    try:
        old = json.loads(out.read_text()) if out.exists() else {}
    except ValueError as exc:
        raise SystemExit(f"{out} is not a results file ({exc}); use another --out or remove it")
    old = old if isinstance(old, dict) else {}
    comparable = all((old.get("settings") or {}).get(k) == v for k, v in settings.items())
    if args.resume and old and not comparable:
        raise SystemExit(
            f"--resume: {out} was measured with settings {old.get('settings')}, not {settings}; "
            "use another --out or leave out --resume"
        )
    kept: list[dict] = []
    if old and comparable and (args.resume or args.tasks):
        # --resume keeps every finished task; --tasks re-measures those tasks and keeps the others' rows
        # (rows measured under other settings are never mixed in). Each row keeps the commit and time it
        # was measured at: a file may span commits, and row_commits lists them.
        chosen = {s.key for s in specs}
        kept = [r for r in old.get("tasks", []) if "perception_mode" in r and (args.resume or r["task"] not in chosen)]
    done = {r["task"] for r in kept} if args.resume else set()
    todo = [s for s in specs if s.key not in done]
    commit = provenance.commit()
    doc = {
        "benchmark": "reference_programs",
        "mode": "untraced, one episode per held-out seed, perception modes interleaved seed by seed",
        "commit": commit,
        "settings": {"jobs": args.jobs, **settings},
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
        },
    }
    rows = list(kept)

    def save(measured: bool) -> None:
        doc["tasks"] = _order(rows)
        doc["row_commits"] = sorted({r.get("commit") or "not recorded" for r in rows})
        finished = {r["task"] for r in rows}
        doc["not_yet_run"] = [s.key for s in specs if s.key not in finished]
        if measured or "measured_at" not in doc:
            doc["measured_at"] = provenance.measured_at()
        write_results(out, doc)

    def add(task_rows: list[dict]) -> None:
        stamp = provenance.measured_at()
        rows.extend(dict(row, commit=commit, measured_at=stamp) for row in task_rows)
        save(measured=True)

    save(measured=False)
    if args.jobs > 1 and len(todo) > 1:
        import multiprocessing

        # Fresh interpreters (spawn): each builds its own simulators and GL contexts. Each task's rows are
        # written as soon as it finishes, so a stopped run keeps them (--resume).
        with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
            for task_rows in pool.imap_unordered(_evaluate_args, [(s.key, args.limit, modes, only) for s in todo]):
                add(task_rows)
    else:
        for spec in todo:
            add(evaluate(spec, args.limit, modes, only))
    for row in doc["tasks"]:
        print(
            f"{row['task']:<70} {row['perception_mode']:<10} {row['success_rate']:.2f}  "
            f"{row['mean_episode_seconds']:.2f} s  {row['mean_control_steps']} steps"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
