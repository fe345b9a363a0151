"""The offline search on LIBERO-Pro and on the original LIBERO suites for the same tasks, so the drop a
perturbation causes is visible.

Protocol (the published one, as bench/search_results.py): K = 8 candidates per round, at most 5 rounds,
3 survivors, stop at 100% debug success or a plateau; the selected program then runs once on the held-out
seeds. Debug seeds 51-65, held-out 1-50 (the benchmark's fixed initial states), each suite's published step
budget (worker/sim/libero_catalog.py SUITE_STEP_BUDGETS), the engine's default perception mode.

Families and suites: goal, object, spatial and long (libero_10); per family the base suite
``libero_<family>`` and its four LIBERO-Pro suites ``libero_<family>_<swap|object|lan|task>``. A Pro task
shares its index and name with the base-suite task it perturbs.

Task selection (fixed here, never chosen by results): from every selected suite the tasks at the first
``--per-suite`` positions of INDEX_ORDER (default 2: indices 0 and 5, the first task of the suite's
published order and the one halfway through), the same indices in the base suite and its Pro suites.

    python bench/libero_pro.py [--families goal,object,spatial,long] [--suites libero_goal,libero_goal_swap]
                               [--per-suite 2] [--k 8] [--rounds 5] [--workers 2] [--resume]
                               [--debug-seeds N] [--heldout-seeds N] [--out bench/results/libero_pro.json]

``--debug-seeds N`` / ``--heldout-seeds N`` keep only the first N seeds of each split (quick checks of the
pipeline; the file then says ``"published_protocol": false``), as do a K or round count other than 8 and 5.
``--resume`` keeps the rows already in the results file (it refuses a file written under other protocol
settings) and runs only the selected tasks without a row.

Writes the results file after every task: per task the search's row (bench/search_results.py
search_task: first-candidate, final debug and held-out success, rounds, stop reason, wall time, step budget,
seeds) plus family, perturbation and index; aggregates computed from the rows present (see aggregate());
and, under "paper", the ASPIRE paper's published LIBERO-Pro figures (bench/summary.py PAPER), never mixed
into ours. Tasks not yet run have no row; every aggregate says how many tasks it covers.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import provenance  # noqa: E402
from bench.protocol import (  # noqa: E402
    add_protocol_args,
    load_for_resume,
    machine,
    protocol,
    write_results,
)

#: Family name -> base LIBERO suite. "long" is LIBERO-Long, shipped as libero_10.
FAMILIES = {"goal": "libero_goal", "object": "libero_object", "spatial": "libero_spatial", "long": "libero_10"}
#: LIBERO-Pro perturbations, in the order the suites are run and reported (worker/sim/libero_catalog.py
#: PRO_PERTURBATIONS holds the same four): swapped object positions, changed objects, paraphrased
#: instruction, changed goal.
PERTURBATIONS = ("swap", "object", "lan", "task")
#: The order tasks are taken from every suite: --per-suite N takes the first N indices. Fixed, spread over
#: each suite's published task order (every suite has 10 tasks, indices 0-9); not chosen by any result.
INDEX_ORDER = (0, 5, 2, 7, 4, 9, 1, 6, 3, 8)
DEFAULT_PER_SUITE = 2
SELECTION_RULE = (
    "from every selected suite, the tasks at the first --per-suite positions of index_order (the suite's "
    "published task indices), the same indices in a base suite and its LIBERO-Pro suites; fixed in "
    "bench/libero_pro.py, independent of any result"
)


def suite_of(family: str, perturbation: str | None) -> str:
    """The LIBERO suite name of a family and perturbation (None: the base suite)."""
    base = FAMILIES[family]
    return base if perturbation is None else f"{base}_{perturbation}"


def parse_suite(suite: str) -> tuple[str, str | None]:
    """(family, perturbation or None) of one of the 20 suites here; raises ValueError for any other."""
    for family in FAMILIES:
        for perturbation in (None, *PERTURBATIONS):
            if suite_of(family, perturbation) == suite:
                return family, perturbation
    raise ValueError(f"{suite!r} is not one of the suites of {', '.join(FAMILIES)} and their Pro variants")


def all_suites(families=tuple(FAMILIES)) -> list[str]:
    """Base suite then its Pro suites (PERTURBATIONS order), per family."""
    return [suite_of(f, p) for f in families for p in (None, *PERTURBATIONS)]


def select_tasks(specs, families=tuple(FAMILIES), suites=None, per_suite: int = DEFAULT_PER_SUITE) -> list:
    """The tasks the rule picks from ``specs`` (TaskSpecs of the LIBERO catalog), in run order: per family,
    per index (INDEX_ORDER), the base suite then its Pro suites, so a stopped run leaves base/Pro pairs.

    ``suites`` (None: all of the families') limits the suites. Raises ValueError for an unknown family or
    suite, or a per_suite outside 1..len(INDEX_ORDER). A selected index a suite does not have installed is
    skipped (the catalog skips tasks whose resources are missing).
    """
    unknown = [f for f in families if f not in FAMILIES]
    if unknown:
        raise ValueError(f"unknown families {unknown}; choose from {list(FAMILIES)}")
    if not 1 <= per_suite <= len(INDEX_ORDER):
        raise ValueError(f"per_suite must be 1..{len(INDEX_ORDER)}, not {per_suite}")
    wanted = all_suites(families)
    if suites is not None:
        for suite in suites:
            family, _ = parse_suite(suite)  # ValueError for a suite that is not one of the 20
            if family not in families:
                raise ValueError(f"suite {suite} is not of the selected families {list(families)}")
        wanted = [s for s in wanted if s in set(suites)]
    by_place = {(s.suite, s.extra.get("index")): s for s in specs}
    chosen = []
    for family in families:
        for index in INDEX_ORDER[:per_suite]:
            for suite in wanted:
                if parse_suite(suite)[0] == family and (suite, index) in by_place:
                    chosen.append(by_place[(suite, index)])
    return chosen


def _mean(values):
    values = [float(v) for v in values if isinstance(v, (int, float))]
    return round(sum(values) / len(values), 4) if values else None


def aggregate(rows) -> dict:
    """Aggregates of the results rows present (a row: task, suite, index, heldout, first_candidate_debug,
    final_debug; success rates in [0, 1]).

    - per_suite: per suite (in all_suites() order, only suites with rows) its family, perturbation (None for
      the base suite), tasks (rows), heldout_mean, first_candidate_debug_mean, final_debug_mean.
    - per_family: base_mean and pro_mean (mean of the family's Pro suite means), and per perturbation the
      drop = base held-out success minus the Pro suite's, over the task indices both have ("paired_tasks").
    - overall: pro = mean of the Pro suites' held-out means, base = mean of the base suites', each with the
      suites and tasks it covers.
    A mean over no rows is None. Rows without a held-out rate do not count towards held-out means.
    """
    rows = [r for r in rows if r.get("suite")]
    per_suite = {}
    for suite in all_suites():
        mine = [r for r in rows if r["suite"] == suite]
        if not mine:
            continue
        family, perturbation = parse_suite(suite)
        per_suite[suite] = {
            "family": family,
            "perturbation": perturbation,
            "tasks": len(mine),
            "heldout_mean": _mean(r.get("heldout") for r in mine),
            "first_candidate_debug_mean": _mean(r.get("first_candidate_debug") for r in mine),
            "final_debug_mean": _mean(r.get("final_debug") for r in mine),
        }

    def heldout_by_index(suite):
        return {
            r.get("index"): float(r["heldout"])
            for r in rows
            if r["suite"] == suite and isinstance(r.get("heldout"), (int, float))
        }

    per_family = {}
    for family in FAMILIES:
        base = suite_of(family, None)
        pros = [suite_of(family, p) for p in PERTURBATIONS if suite_of(family, p) in per_suite]
        if base not in per_suite and not pros:
            continue
        base_rates = heldout_by_index(base)
        drop = {}
        for perturbation in PERTURBATIONS:
            pro_rates = heldout_by_index(suite_of(family, perturbation))
            paired = sorted(set(base_rates) & set(pro_rates), key=str)
            drop[perturbation] = {
                "paired_tasks": len(paired),
                "base": _mean(base_rates[i] for i in paired),
                "pro": _mean(pro_rates[i] for i in paired),
                "drop": (round(sum(base_rates[i] - pro_rates[i] for i in paired) / len(paired), 4) if paired else None),
            }
        per_family[family] = {
            "base_suite": base,
            "base_mean": per_suite.get(base, {}).get("heldout_mean"),
            "base_tasks": per_suite.get(base, {}).get("tasks", 0),
            "pro_mean": _mean(per_suite[s]["heldout_mean"] for s in pros),
            "pro_suites": len(pros),
            "pro_tasks": sum(per_suite[s]["tasks"] for s in pros),
            "drop": drop,
        }

    def overall(pro: bool):
        suites = [s for s, a in per_suite.items() if (a["perturbation"] is not None) == pro]
        return {
            "heldout_mean": _mean(per_suite[s]["heldout_mean"] for s in suites),
            "suites": len(suites),
            "tasks": sum(per_suite[s]["tasks"] for s in suites),
        }

    return {
        "per_suite": per_suite,
        "per_family": per_family,
        "overall": {"pro": overall(True), "base": overall(False)},
        "tasks": len(rows),
    }


def paper_figures() -> dict:
    """The ASPIRE paper's published figures this benchmark compares with (not measured here)."""
    from bench.summary import PAPER

    return {
        "note": "the ASPIRE paper's published numbers, not measured here; ours are under aggregates",
        "source": "the ASPIRE paper, as recorded in bench/summary.py PAPER",
        "aspire_libero_pro_overall": PAPER["libero_pro_overall"],
        "cap_agent0_libero_pro_overall": PAPER["cap_agent0"],
    }


def summary_lines(doc: dict) -> list[str]:
    """Human-readable lines of a results document: overall, then per family base vs Pro and drops."""
    agg = doc.get("aggregates") or aggregate(doc.get("tasks", []))
    paper = doc.get("paper") or {}

    def f(value):
        return "–" if value is None else f"{value:.2f}"

    pro, base = agg["overall"]["pro"], agg["overall"]["base"]
    lines = [
        f"LIBERO-Pro overall held-out success {f(pro['heldout_mean'])} ({pro['suites']} suites, {pro['tasks']} "
        f"tasks); original LIBERO {f(base['heldout_mean'])} ({base['suites']} suites, {base['tasks']} tasks); "
        f"paper (published): ASPIRE {f(paper.get('aspire_libero_pro_overall'))}, CaP-Agent0 "
        f"{f(paper.get('cap_agent0_libero_pro_overall'))}"
    ]
    for family, a in agg["per_family"].items():
        drops = ", ".join(
            f"{p} {f(d['drop'])} ({d['paired_tasks']} tasks)" for p, d in a["drop"].items() if d["paired_tasks"]
        )
        lines.append(
            f"{family}: base {f(a['base_mean'])} ({a['base_tasks']} tasks), Pro {f(a['pro_mean'])} "
            f"({a['pro_suites']} suites, {a['pro_tasks']} tasks); drop {drops or '–'}"
        )
    return lines


def _describe(row: dict) -> str:
    def f(value):
        return "–" if value is None else f"{value:.2f}"

    return (
        f"{row['task']}: first {f(row.get('first_candidate_debug'))} -> final {f(row.get('final_debug'))}, "
        f"held-out {f(row.get('heldout'))}, {row.get('rounds_used')} rounds ({row.get('stop')}), "
        f"{row.get('wall_s')} s"
    )


def main(argv=None, search=None, specs=None) -> int:
    """CLI. ``search`` (default bench/search_results.py search_task) and ``specs`` (default the installed
    LIBERO catalog) are for tests."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--families", default=",".join(FAMILIES), help=f"comma-separated, of {list(FAMILIES)}")
    parser.add_argument("--suites", help="comma-separated suites to keep (default: base and Pro of each family)")
    parser.add_argument("--per-suite", type=int, default=DEFAULT_PER_SUITE, help="tasks per suite (INDEX_ORDER)")
    add_protocol_args(parser, ROOT / "bench" / "results" / "libero_pro.json")
    args = parser.parse_args(argv)

    families = tuple(f for f in args.families.split(",") if f)
    suites = [s for s in args.suites.split(",") if s] if args.suites else None
    if specs is None:
        from worker.sim.libero_catalog import libero_tasks

        specs = libero_tasks()
    try:
        chosen = select_tasks(specs, families, suites, args.per_suite)
    except ValueError as exc:
        parser.error(str(exc))
    if search is None:
        from bench.search_results import search_task

        search = search_task
    from worker.agents.offline import RULE_SOURCES
    from worker.engine import EngineSettings
    from worker.sim.catalog import format_seeds

    out = Path(args.out)
    settings = protocol(args)
    doc = load_for_resume(out, args.resume, settings)
    engine = EngineSettings()
    debug = sorted({s for spec in chosen for s in list(spec.debug_seeds)[: args.debug_seeds or None]})
    heldout = sorted({s for spec in chosen for s in list(spec.heldout_seeds)[: args.heldout_seeds or None]})
    doc.update(
        {
            "benchmark": "libero_pro",
            "agent": "offline",
            # the task(s) each repair family was written from, so its evaluation elsewhere can be told apart
            "repair_sources": {k: list(v) for k, v in RULE_SOURCES.items()},
            "protocol": settings,
            "selection": {
                "rule": SELECTION_RULE,
                "index_order": list(INDEX_ORDER),
                "per_suite": args.per_suite,
                "families": list(families),
                "suites": sorted({s.suite for s in chosen}, key=all_suites().index),
                "tasks": [s.key for s in chosen],
            },
            "commit": provenance.commit(),
            "machine": machine(args.workers),
            "perception_mode": engine.perception_mode,
            # control steps per episode, per suite; every row also records its own
            "step_budget": {s.suite: engine.step_budget_for(s) for s in chosen},
            "seeds": {"debug": format_seeds(debug), "heldout": format_seeds(heldout)},
            "paper": paper_figures(),
        }
    )
    rows = {r["task"]: r for r in doc.get("tasks", [])}

    def save(measured: bool):
        doc["tasks"] = list(rows.values())
        doc["not_yet_run"] = [s.key for s in chosen if s.key not in rows]
        doc["aggregates"] = aggregate(doc["tasks"])
        if measured or "measured_at" not in doc:  # the time of the last row measured
            doc["measured_at"] = provenance.measured_at()
        write_results(out, doc)

    save(measured=False)
    for spec in chosen:
        if spec.key in rows:
            continue
        family, perturbation = parse_suite(spec.suite)
        row = search(spec, args.k, args.rounds, args.workers, args.debug_seeds, args.heldout_seeds, doc["commit"])
        row.update({"family": family, "perturbation": perturbation, "index": spec.extra.get("index")})
        rows[spec.key] = row
        save(measured=True)
        print(_describe(row), flush=True)
    for line in summary_lines(doc):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
