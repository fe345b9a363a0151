"""The offline search agent under the published protocol: K = 8 candidates per round, at most 5 rounds,
3 survivors, stop at 100% debug success or a plateau of under 5 points over two rounds; the selected
program is then evaluated once on the held-out seeds. robosuite: debug 101-125, held-out 1-100;
LIBERO-Pro: debug 51-65, held-out 1-50 (the benchmark's fixed initial states).

    python bench/search_results.py [--tasks KEY,...] [--suite libero_object_lan] [--workers 2] [--resume]
                                   [--debug-seeds N] [--heldout-seeds N]
    python bench/search_results.py --tasks KEY --program my_program.py --out my_search.json

``--debug-seeds N`` / ``--heldout-seeds N`` keep only the first N of each task's seeds (quick checks of the
pipeline, bench/run_all.py --quick; not the protocol). ``--program FILE`` starts the search on one task from
a program of your own (e.g. a published CaP-X / ASPIRE program) instead of the built-in reference program.

Writes bench/results/search_results.json before the first task and after every task (so a long run can be
stopped and continued with ``--resume``): per task the first candidate's and the final debug success, the
held-out success, rounds used, why the search stopped, the winning hypothesis, wall time, and the skills the
search proposed; ``not_yet_run`` lists the selected tasks without a row.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import provenance  # noqa: E402
from bench.protocol import (  # noqa: E402
    SURVIVORS,
    add_protocol_args,
    load_for_resume,
    machine,
    protocol,
    write_results,
)
from worker.agents.offline import RULE_SOURCES, OfflineSearchAgent  # noqa: E402
from worker.engine import EngineSettings  # noqa: E402
from worker.search.core import SearchSettings  # noqa: E402
from worker.search.local import LocalWorkbench, run_search  # noqa: E402
from worker.sim.catalog import TASKS, TaskSpec, all_tasks, format_seeds, get_task  # noqa: E402

ROBOSUITE = ("Lift", "Stack", "PickPlaceCan", "NutAssemblySquare", "Wipe", "TwoArmLift", "TwoArmHandover")


def search_task(
    spec: TaskSpec,
    k: int,
    rounds: int,
    workers: int,
    debug_limit: int | None = None,
    heldout_limit: int | None = None,
    commit: str = "",
    from_reference: bool = True,
    full_skills: bool = False,
) -> dict:
    """Run the offline search on one task under the protocol (K = ``k`` candidates a round, at most
    ``rounds`` rounds, 3 survivors), then the selected program once on the held-out seeds.

    ``debug_limit`` / ``heldout_limit`` keep only the first N of the task's seeds (None: all of them; quick
    checks, not the protocol). Episodes run in ``workers`` processes under the engine's defaults (perception
    mode, the task's published step budget). Returns the results row: task, suite, instruction, the seeds
    (as "51-65"), perception_mode, step_budget (control steps), commit, SearchOutcome.summary()'s keys
    (success rates in [0, 1], wall_s in seconds), episodes, per-round best debug success, the skills the
    search proposed (name and evidence; every field with ``full_skills``), and ``repairs_tried``
    (worker.search.local.SearchOutcome.repairs_tried). With ``from_reference=False`` the search starts from
    the agent's own first program, as on a task without a reference program.
    """
    debug_seeds = list(spec.debug_seeds)[: debug_limit or None]
    heldout_seeds = list(spec.heldout_seeds)[: heldout_limit or None]
    settings = SearchSettings(
        candidates_per_round=k,
        max_rounds=rounds,
        survivors=SURVIVORS,
        debug_seeds=tuple(debug_seeds),
        heldout_seeds=tuple(heldout_seeds),
    )
    workbench = LocalWorkbench(spec, workers=workers, keyframes=False)  # the offline agent reads no images
    try:
        searched = spec if from_reference else replace(spec, starter_program="")
        outcome = run_search(searched, OfflineSearchAgent(), workbench, settings)
    finally:
        workbench.close()
    row = {
        "task": spec.key,
        "suite": spec.suite,
        "instruction": spec.instruction,
        "debug_seeds": format_seeds(debug_seeds),
        "heldout_seeds": format_seeds(heldout_seeds),
        # LocalWorkbench runs episodes under the engine's defaults: realistic perception, the task's budget
        "perception_mode": EngineSettings().perception_mode,
        "step_budget": EngineSettings().step_budget_for(spec),
        "commit": commit,
        **outcome.summary(),
        "episodes": workbench.episodes_run,
        "rounds": [{"round": i, "best_debug": max(c.success_rate for c in r)} for i, r in enumerate(outcome.rounds)],
        "proposed_skills": list(outcome.proposed_skills)
        if full_skills
        else [
            {
                "name": s["name"],
                "seeds_flipped": s["evidence"]["seeds_flipped"],
                "before": s["evidence"]["before"],
                "after": s["evidence"]["after"],
            }
            for s in outcome.proposed_skills
        ],
        "repairs_tried": outcome.repairs_tried(),
    }
    return row


def describe(row: dict) -> str:
    """One log line for a results row of :func:`search_task`."""
    return (
        f"{row['task']}: first {row['first_candidate_debug']:.2f} -> final {row['final_debug']:.2f}, "
        f"held-out {row['heldout']}, {row['rounds_used']} rounds ({row['stop']}), {row['wall_s']:.0f} s"
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", help="comma-separated task keys (default: the robosuite tasks and --suite)")
    parser.add_argument("--suite", default="libero_object_lan", help="a LIBERO-Pro suite to include")
    parser.add_argument(
        "--program",
        help="start the search from this program file instead of the task's reference program (one task in "
        "--tasks; --out required, so the committed search results are never overwritten)",
    )
    add_protocol_args(parser, ROOT / "bench" / "results" / "search_results.json")
    args = parser.parse_args(argv)
    if args.program and Path(args.out).resolve() == (ROOT / "bench" / "results" / "search_results.json").resolve():
        parser.error("--program needs --out (the committed search results start from the built-in programs)")

    if args.tasks:
        try:
            specs = [get_task(k.strip()) for k in args.tasks.split(",") if k.strip()]
        except KeyError as exc:
            parser.error(exc.args[0])
    else:
        specs = [TASKS[f"robosuite:{n}"] for n in ROBOSUITE] + sorted(
            (t for t in all_tasks() if t.suite == args.suite), key=lambda t: t.extra.get("index", 0)
        )
    if args.program:
        program = Path(args.program).resolve()
        if len(specs) != 1 or not args.tasks:
            parser.error("--program needs exactly one task in --tasks")
        if not program.is_file():
            parser.error(f"--program: no file {program}")
        specs = [replace(specs[0], starter_program=str(program))]  # an absolute path: read from there
    out = Path(args.out)
    settings = protocol(args, **({"program": str(Path(args.program).resolve())} if args.program else {}))
    doc = load_for_resume(out, args.resume, settings)
    doc.update(
        {
            "benchmark": "search_results",
            "agent": "offline",
            # the task(s) each repair family was written from, so its evaluation elsewhere can be told apart
            "repair_sources": {k: list(v) for k, v in RULE_SOURCES.items()},
            "protocol": settings,
            "commit": provenance.commit(),
            "machine": machine(args.workers),
        }
    )
    rows = {r["task"]: r for r in doc.get("tasks", [])}

    def save(measured: bool) -> None:
        doc["tasks"] = list(rows.values())
        # a stopped run's file says which selected tasks it lacks (--resume runs them)
        doc["not_yet_run"] = [s.key for s in specs if s.key not in rows]
        if measured or "measured_at" not in doc:  # the time of the last row measured
            doc["measured_at"] = provenance.measured_at()
        write_results(out, doc)

    save(measured=False)
    for spec in specs:
        if spec.key in rows:
            continue
        rows[spec.key] = search_task(
            spec, args.k, args.rounds, args.workers, args.debug_seeds, args.heldout_seeds, doc["commit"]
        )
        save(measured=True)
        print(describe(rows[spec.key]), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
