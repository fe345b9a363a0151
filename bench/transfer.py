"""Transfer: zero-shot success on LIBERO-10 (LIBERO-Long) with a skill library distilled from LIBERO-90
searches, against the library's size.

1. Source tasks: the LIBERO-90 tasks in index order whose every instruction step a template covers
   (worker.agents.programs.parse_steps), the first ``--sources`` (8) of them. Each is searched by the
   offline agent under the published protocol (K = 8 candidates per round, at most 5 rounds, 3
   survivors; debug seeds 51-65, held-out 1-50, the benchmark's fixed initial states) with an empty
   library, as bench/search_results.py does; the skills each search proposes are kept in full (failure
   signature, code sketch, placeholders, evidence, provenance with the before/after programs and the
   seeds they claim).
2. The library of size n holds the skills proposed by the first n source tasks, n in 0, 1, 2, 4, 8.
3. For each n, each target task (LIBERO-10, and LIBERO-10 Pro suites with ``--suites``) gets the offline
   agent's round-0 program only (no repair rounds, no reference program: zero-shot), written with the
   library (OfflineSearchAgent.first_program: the instruction's steps composed from templates, skills
   retrieved for each step applied), evaluated on the task's held-out seeds. A program identical to one
   already evaluated on the same task and seeds is not run again (its result is reused and marked so:
   episodes are deterministic per seed).

    python bench/transfer.py [--sources 8] [--sizes 0,1,2,4,8] [--suites libero_10,libero_10_lan]
                             [--targets N | KEY,...] [--k 8] [--rounds 5] [--debug-seeds N]
                             [--heldout-seeds N] [--workers 2] [--resume] [--out bench/results/transfer.json]

``--debug-seeds N`` / ``--heldout-seeds N`` keep only the first N of each task's seeds (quick checks of the
pipeline; not the protocol). ``--targets N`` keeps the first N tasks (by index) of each suite.

Writes the results file after every source search and every zero-shot evaluation (``--resume`` continues a
stopped run with the same settings): the source searches with their proposed skills, per library size and
target task the program's origin, the skills applied and the success on each held-out seed, and per suite
and library size the mean success over the targets. The ASPIRE paper's published zero-shot figures on
LIBERO-Long-Pro (bench/summary.PAPER) are recorded beside them, labelled as the paper's.
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing as mp
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import provenance  # noqa: E402
from bench.protocol import add_protocol_args, load_for_resume, machine, protocol, write_results  # noqa: E402
from bench.search_results import search_task  # noqa: E402
from bench.summary import PAPER  # noqa: E402
from worker.agents import programs as prog  # noqa: E402
from worker.agents.offline import RULE_SOURCES, OfflineSearchAgent, candidate_problems  # noqa: E402
from worker.engine import EngineSettings, run_episode  # noqa: E402
from worker.events import MemorySink  # noqa: E402
from worker.search.core import Brief  # noqa: E402
from worker.search.local import LocalWorkbench  # noqa: E402
from worker.sim.catalog import all_tasks, format_seeds, get_task, scene_facts, success_condition  # noqa: E402

SIZES = (0, 1, 2, 4, 8)
SOURCE_SUITE = "libero_90"
#: The ASPIRE paper's zero-shot success on LIBERO-Long-Pro (published, not measured here).
PAPER_POINTS = [
    {"library_tasks": 0, "success": PAPER["zero_shot_long_pro_none"], "label": "no library"},
    {"library_tasks": 90, "success": PAPER["zero_shot_long_pro_library"], "label": "library of the 90 LIBERO-90 tasks"},
]


def covered(instruction: str) -> bool:
    """Whether a template covers every step of the instruction."""
    steps = prog.parse_steps(instruction)
    return bool(steps) and all(s.kind is not None for s in steps)


def scene_of(task_name: str) -> str:
    """The scene a LIBERO task is set in, from its name: "KITCHEN_SCENE10_close_the_top_drawer..." ->
    "KITCHEN_SCENE10" (the upper-case words before the instruction)."""
    words = task_name.split("_")
    head = []
    for word in words:
        if not word.isupper() and not word.isdigit():
            break
        head.append(word)
    return "_".join(head) or task_name


def source_tasks(n: int) -> list:
    """``n`` LIBERO-90 tasks every step of whose instruction a template covers, spread over scenes: the
    first covered task (by the suite's index) of every scene in order of the scene's first index, then
    every scene's second, and so on. Fixed by the suite's order, never by results; without the spread the
    first eight covered tasks are six drawer tasks of one kitchen."""
    tasks = sorted((t for t in all_tasks() if t.suite == SOURCE_SUITE), key=lambda t: t.extra.get("index", 0))
    by_scene: dict[str, list] = {}
    for t in tasks:
        if covered(t.instruction):
            by_scene.setdefault(scene_of(t.name), []).append(t)
    out, depth = [], 0
    while len(out) < n and any(len(v) > depth for v in by_scene.values()):
        out += [v[depth] for v in by_scene.values() if len(v) > depth]
        depth += 1
    return out[:n]


def target_tasks(suites: list[str], targets: str | None) -> list:
    """The target tasks: explicit keys, or the first N (or every) task of each suite by index."""
    if targets and not targets.isdigit():
        try:
            return [get_task(k.strip()) for k in targets.split(",") if k.strip()]
        except KeyError as exc:
            raise SystemExit(f"--targets: {exc.args[0]}") from None
    out = []
    for suite in suites:
        tasks = sorted((t for t in all_tasks() if t.suite == suite), key=lambda t: t.extra.get("index", 0))
        if not tasks:
            raise SystemExit(f"no installed tasks in suite {suite!r}")
        out += tasks[: int(targets)] if targets else tasks
    return out


def library_of(sources: list[dict], n: int) -> list[dict]:
    """The skills proposed by the first ``n`` source searches, each with an id ("<task key>#<i>") and the
    task it came from."""
    skills = []
    for row in sources[:n]:
        for i, skill in enumerate(row["proposed_skills"]):
            skills.append(dict(skill, id=f"{row['task']}#{i}", source_task=row["task"]))
    return skills


def _digest(code: str) -> str:
    return hashlib.sha1(code.encode()).hexdigest()[:16]


def _episodes(task_key: str, code: str, seeds: list[int]) -> list[dict]:
    """Run one program on seeds in this process, untraced: [{"seed", "success", "status", "error"}]."""
    spec = get_task(task_key)
    out = []
    for seed in seeds:
        result = run_episode(spec, code, seed, MemorySink(), EngineSettings(trace=False))
        error = (result.error or "")[:200]
        out.append({"seed": seed, "success": bool(result.success), "status": result.status, "error": error})
    return out


def evaluate(spec, code: str, seeds: list[int], pool, workers: int) -> list[dict]:
    """The program on every seed, the seeds spread over ``workers`` processes of ``pool`` (in this one
    when it is None)."""
    if pool is None:
        return _episodes(spec.key, code, seeds)
    chunks = [seeds[i::workers] for i in range(workers)]
    chunks = [c for c in chunks if c]
    results = [r for part in pool.map(_episodes, [spec.key] * len(chunks), [code] * len(chunks), chunks) for r in part]
    return sorted(results, key=lambda r: r["seed"])


def zero_shot_program(spec, library: list[dict]) -> tuple[str, str, list[str]]:
    """The offline agent's round-0 program for ``spec`` with ``library`` and no reference program:
    (program, origin in words, ids of the skills retrieved for the instruction or its steps)."""
    workbench = LocalWorkbench(spec, keyframes=False, skill_library=library)
    asked: list[str] = []

    class Retrieval:  # the workbench's retrieval, recording which skills each query returned
        @staticmethod
        def skills(query, k=5):
            found = workbench.skills(query, k)
            asked.extend(s.get("id", "") for s in found)
            return found

    try:
        brief = Brief(
            task_key=spec.key,
            instruction=spec.instruction,
            arms=spec.arms,
            cameras=spec.cameras,
            round=0,
            k=1,
            debug_seeds=(),
            survivors=[],
            eliminated=[],
            skills=workbench.skills(spec.instruction, 5),
            starter="",  # zero-shot: no reference program
            success_condition=success_condition(spec),
            scene=scene_facts(spec),
        )
        code, origin = OfflineSearchAgent().first_program(brief, Retrieval())
    finally:
        workbench.close()
    return code, origin, list(dict.fromkeys(asked))


def summarise(doc: dict) -> list[dict]:
    """Per suite and library size: mean success over the targets evaluated."""
    groups: dict[tuple, list[dict]] = {}
    for row in doc.get("evaluations", []):
        groups.setdefault((row["suite"], row["library_size"]), []).append(row)
    out = []
    for (suite, size), rows in sorted(groups.items()):
        out.append(
            {
                "suite": suite,
                "library_size": size,
                "skills": rows[0]["library_skills"],
                "tasks": len(rows),
                "episodes": sum(len(r["episodes"]) for r in rows),
                "mean_success": round(sum(r["success_rate"] for r in rows) / len(rows), 4),
            }
        )
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sources", type=int, default=8, help="LIBERO-90 source tasks searched for skills")
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="library sizes, in source tasks")
    parser.add_argument("--suites", default="libero_10", help="comma-separated target suites (LIBERO-10 and Pro)")
    parser.add_argument("--targets", help="the first N tasks of each suite, or comma-separated task keys")
    add_protocol_args(parser, ROOT / "bench" / "results" / "transfer.json", source_seeds_only=True)
    args = parser.parse_args(argv)

    sizes = sorted({int(s) for s in args.sizes.split(",")})
    sources = source_tasks(args.sources)
    if len(sources) < args.sources:
        print(f"only {len(sources)} LIBERO-90 tasks are covered by the templates", flush=True)
    sizes = [n for n in sizes if n <= len(sources)]
    targets = target_tasks(args.suites.split(","), args.targets)
    settings = protocol(
        args,
        source_rule=f"{args.sources} {SOURCE_SUITE} tasks every step of whose instruction a template covers, "
        "spread over scenes (bench/transfer.source_tasks), searched from the agent's own first program (no "
        "reference program)",
        zero_shot="round 0's first program only (no repair rounds, no reference program), on held-out seeds",
    )
    out = Path(args.out)
    doc = load_for_resume(out, args.resume, settings)
    doc.update(
        {
            "benchmark": "transfer",
            "agent": "offline",
            # the task(s) each repair family was written from, so its evaluation elsewhere can be told apart
            "repair_sources": {k: list(v) for k, v in RULE_SOURCES.items()},
            "protocol": settings,
            "commit": provenance.commit(),
            "machine": machine(args.workers),
            # LocalWorkbench and the zero-shot episodes run under the engine's defaults
            "perception_mode": EngineSettings().perception_mode,
            "library_sizes": sizes,
            "paper": {
                "what": "the ASPIRE paper's published zero-shot success on LIBERO-Long-Pro (not measured here)",
                "suite": "LIBERO-Long-Pro",
                "points": PAPER_POINTS,
            },
        }
    )
    doc.setdefault("sources", [])
    doc.setdefault("evaluations", [])

    def save():
        doc["summary"] = summarise(doc)
        doc["measured_at"] = provenance.measured_at()
        write_results(out, doc, indent=1)

    # 1. source searches
    done = {r["task"] for r in doc["sources"]}
    for spec in sources:
        if spec.key in done:
            continue
        # The search starts from the agent's own program, as on a task it has never seen: a reference
        # program that already succeeds leaves nothing to repair and so nothing to distil. An empty library.
        row = search_task(
            spec,
            args.k,
            args.rounds,
            args.workers,
            args.debug_seeds,
            args.heldout_seeds,
            commit=doc["commit"],
            from_reference=False,
            full_skills=True,
        )
        doc["sources"].append(row)
        save()
        print(
            f"source {spec.key}: first {row['first_candidate_debug']:.2f} -> final {row['final_debug']:.2f}, "
            f"{len(row['proposed_skills'])} skills proposed, {row['wall_s']:.0f} s",
            flush=True,
        )
    by_task = {r["task"]: r for r in doc["sources"]}
    ordered = [by_task[s.key] for s in sources]

    # 2. zero-shot evaluations, per library size
    pool = ProcessPoolExecutor(args.workers, mp_context=mp.get_context("spawn")) if args.workers > 1 else None
    try:
        for size in sizes:
            library = library_of(ordered, size)
            for spec in targets:
                if any(r["library_size"] == size and r["task"] == spec.key for r in doc["evaluations"]):
                    continue
                seeds = list(spec.heldout_seeds)[: args.heldout_seeds or None]
                code, origin, retrieved = zero_shot_program(spec, library)
                digest = _digest(code)
                doc.setdefault("programs", {})[digest] = code
                problems = candidate_problems(code)
                earlier = next(
                    (
                        r
                        for r in doc["evaluations"]
                        if r["task"] == spec.key and r["program"] == digest and r["seeds"] == format_seeds(seeds)
                    ),
                    None,
                )
                started = time.monotonic()
                if earlier is not None:
                    episodes = earlier["episodes"]
                elif problems:  # it would not run: every seed fails before an episode is spent
                    episodes = [
                        {"seed": s, "success": False, "status": "REJECTED", "error": problems[0]} for s in seeds
                    ]
                else:
                    episodes = evaluate(spec, code, seeds, pool, args.workers)
                steps = prog.parse_steps(spec.instruction)
                row = {
                    "library_size": size,
                    "library_skills": len(library),
                    "library_sources": [r["task"] for r in ordered[:size]],
                    "task": spec.key,
                    "suite": spec.suite,
                    "instruction": spec.instruction,
                    "steps": len(steps),
                    "steps_covered": sum(s.kind is not None for s in steps),
                    "origin": origin,
                    "skills_retrieved": retrieved,
                    "program": digest,
                    "problems": problems,
                    "seeds": format_seeds(seeds),
                    "perception_mode": EngineSettings().perception_mode,
                    "step_budget": EngineSettings().step_budget_for(spec),
                    "episodes": episodes,
                    "success_rate": round(sum(e["success"] for e in episodes) / len(episodes), 4) if episodes else 0.0,
                    "reused_from_library_size": earlier["library_size"] if earlier is not None else None,
                    "wall_s": round(time.monotonic() - started, 1),
                }
                doc["evaluations"].append(row)
                save()
                reused = f" (same program as library size {earlier['library_size']})" if earlier else ""
                print(
                    f"library {size} ({len(library)} skills) {spec.key}: {row['success_rate']:.2f} on "
                    f"{len(episodes)} held-out seeds{reused}, {row['wall_s']:.0f} s",
                    flush=True,
                )
    finally:
        if pool is not None:
            pool.shutdown()
    save()
    for line in doc["summary"]:
        print(
            f"{line['suite']}: library of {line['library_size']} source tasks ({line['skills']} skills): "
            f"mean zero-shot success {line['mean_success']:.3f} over {line['tasks']} tasks",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
