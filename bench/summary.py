"""SUMMARY.md from the results files: one section per file with its headline numbers, commit, time measured
and settings; a provenance table that flags files from other commits or runs; the ASPIRE paper's published
figures beside ours, labelled as the paper's. Every number is read from a results file (or, for the paper's,
from PAPER below); a file that is not there is listed as "not measured yet". The output depends only on the
files (no clock, no git), so a test can regenerate it and compare.

    python bench/summary.py [--results-dir bench/results] [--check]

bench/run_all.py calls it at the end of every run.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run_all import JOBS, RESULTS, STATE, missing_provenance  # noqa: E402

#: Benchmarks the project plans but has no script for yet: listed as not measured.
PLANNED: tuple[tuple[str, str], ...] = ()

#: Figures published in the ASPIRE paper (not measured here).
PAPER = {
    "libero_pro_overall": 0.72,
    "robosuite_mean": 0.81,
    "two_arm_handover": 0.92,
    "cap_agent0": 0.18,
    "zero_shot_long_pro_library": 0.31,
    "zero_shot_long_pro_none": 0.047,
}


def _f(value, digits=2) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _commit_of(doc: dict) -> str:
    return str(doc.get("commit") or "")


def _short(commit: str) -> str:
    if not commit:
        return "not recorded"
    base = commit.replace("+dirty", "").replace("-dirty", "")
    return base[:12] + (" (dirty)" if base != commit else "")


def _base(commit: str) -> str:
    return commit.replace("+dirty", "").replace("-dirty", "")


# -- headline numbers, one function per benchmark ----------------------------------------------------------
def _sandbox_startup(d):
    return [
        f"- containment: {d.get('containment', {}).get('label', '–')}",
        f"- start-up median: contained **{_f(d['contained']['median_ms'])} ms**, plain process "
        f"{_f(d['process']['median_ms'])} ms; added **{_f(d['added_median_ms'])} ms** median, "
        f"{_f(d['added_p90_ms'])} ms at p90 (target < {_f(d['target_added_ms'], 0)} ms: {_f(d['meets_target'])})",
    ]


def _trace_overhead(d):
    seeds = d["seeds"]
    return [
        f"- {d['task']}, seeds {seeds[0]}-{seeds[-1]} × {d['repeats']} ({d['episodes_per_mode']} episodes a mode)",
        f"- traced / untraced: **{_f(d['ratio'])}** (median per seed {_f(d['median_pair_ratio'])}; "
        f"target ≤ {_f(d['target'])}: {_f(d['meets_target'])})",
        f"- recording / untraced: **{_f(d['recording_ratio'])}** (median per seed "
        f"{_f(d['recording_median_pair_ratio'])}; target ≤ {_f(d['recording_target'])}: "
        f"{_f(d['recording_meets_target'])})",
        f"- success: untraced {_f(d['untraced_success_rate'])}, traced {_f(d['traced_success_rate'])}, "
        f"recording {_f(d['recording_success_rate'])}",
    ]


def _cold_start(d):
    return [
        f"- {d['task']}, seeds {', '.join(map(str, d['seeds']))}, {d['repeats']} fresh process(es) a mode",
        f"- first episode: no warm-up **{_f(d['cold_first_episode_s'])} s**, after warm-up "
        f"**{_f(d['warm_first_episode_s'])} s**; later episodes (median) {_f(d['later_episode_median_s'])} s",
        f"- after warm-up / later: **{_f(d['warm_first_ratio'])}** (target ≤ {_f(d['target'])}: "
        f"{_f(d['meets_target'])}); warm-up itself {_f(d['warm_up_median_s'], 1)} s",
    ]


def _eval_throughput(d):
    one, two, again = d["one_worker"], d["two_workers"], d["one_worker_repeat"]
    return [
        f"- {d['task']}, seeds {d['seeds']} ({d['episodes']} episodes)",
        f"- one worker **{_f(one['wall_s'], 1)} s** ({_f(one['episodes_per_s'], 3)} episodes/s; "
        f"{_f(again['wall_s'], 1)} s repeated), two workers **{_f(two['wall_s'], 1)} s** "
        f"({_f(two['episodes_per_s'], 3)} episodes/s): two vs one **{_f(d['speedup_two_vs_one'])}×**",
        f"- engine vs raw stepping ({d['raw_floor']['control_steps']} control steps, "
        f"{_f(d['raw_floor']['wall_s'], 1)} s bare): **{_f(d['one_worker_vs_raw_floor'])}×**",
        f"- success: one {_f(one['success_rate'])}, two {_f(two['success_rate'])}, repeat {_f(again['success_rate'])}",
    ]


def _reference_programs(d):
    lines = [
        "| task | perception | seeds | success | mean episode s | step budget |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in d["tasks"]:
        lines.append(
            f"| {r['task']} | {r.get('perception_mode', '–')} | {r['seeds']} | **{_f(r['success_rate'])}** | "
            f"{_f(r['mean_episode_seconds'])} | {_f(r.get('step_budget'))} |"
        )
    return lines


def _search_results(d):
    p = d.get("protocol", {})
    lines = [
        f"- offline agent, K = {p.get('k')}, up to {p.get('max_rounds')} rounds, {p.get('survivors')} survivors"
        + (
            f"; seeds limited to the first {p.get('debug_seeds_limit')} debug / {p.get('heldout_seeds_limit')} held-out"
            if p.get("debug_seeds_limit") or p.get("heldout_seeds_limit")
            else ""
        ),
        "",
        "| task | first (debug) | final (debug) | held-out | rounds | stop | wall s |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in d["tasks"]:
        lines.append(
            f"| {r['task']} | {_f(r.get('first_candidate_debug'))} | {_f(r.get('final_debug'))} | "
            f"**{_f(r.get('heldout'))}** | {_f(r.get('rounds_used'))} | {_f(r.get('stop'))} | "
            f"{_f(r.get('wall_s'), 0)} |"
        )
    for suite, rate, n in _suite_means(d):
        lines.append(f"\nMean held-out success, {suite} ({n} tasks): **{_f(rate)}**")
    if d.get("not_yet_run"):
        lines.append(f"\nSelected tasks not run yet ({len(d['not_yet_run'])}): {', '.join(d['not_yet_run'])}")
    return lines


def _skill_retrieval(d):
    lat = d["latency_ms"]
    return [
        f"- {d['skills']} synthetic skills, {d['queries']} queries "
        f"({d['queries_with_failure_signals']} with failure signals)",
        f"- latency p50 **{_f(lat['p50'], 1)} ms**, p95 **{_f(lat['p95'], 1)} ms**, p99 {_f(lat['p99'], 1)} ms "
        f"(target p95 < {_f(d['target_p95_ms'], 0)} ms: {_f(d['meets_target'])}); needles ranked first "
        f"{d['needles_ranked_first']}; index build {_f(d['index_build_s'], 1)} s",
    ] + (
        [
            f"- with {d['busy']['simulator_workers']} simulator workers busy ({d['busy']['episodes_finished']} "
            f"episodes finished meanwhile): p50 **{_f(d['busy']['latency_ms']['p50'], 1)} ms**, p95 "
            f"**{_f(d['busy']['latency_ms']['p95'], 1)} ms** (target met: {_f(d['busy']['meets_target'])})"
        ]
        if d.get("busy")
        else ["- with simulator workers busy: not measured in this file"]
    )


def _live_latency(d):
    lat = d["browser"]["latency"]
    fan = d["fan_out"]
    return [
        f"- browser: {lat.get('n')} live calls, p50 **{_f(lat.get('p50_ms'), 1)} ms**, p95 "
        f"**{_f(lat.get('p95_ms'), 1)} ms**, max {_f(lat.get('max_ms'), 1)} ms (target p95 < "
        f"{_f(d['target_p95_ms'], 0)} ms)",
        f"- fan-out: {fan['viewers_with_every_call_once']} of {fan['viewers']} viewers got every one of "
        f"{fan['calls_in_db']} calls exactly once; missing {fan['calls_missing_total']}, duplicated "
        f"{fan['duplicates_total']}; target met: {_f(d['meets_target'])}",
    ]


def _faults(d):
    s = d["summary"]
    return [
        f"- {s['faults_injected']} faults injected ({', '.join(f'{k} {n}' for k, n in s['faults_by_kind'].items())})",
        f"- runs finished {s['runs_finished']} of {s['runs']}; episodes expected {s['episodes_expected']}, "
        f"**lost {s['episodes_lost']}**, **duplicated {s['episodes_duplicated']}**, re-run after their owner "
        f"died {s['episodes_retaken']}, not OK {s['episodes_not_ok']}",
    ]


def _libero_pro(d):
    from bench import libero_pro

    p = d.get("protocol", {})
    agg = d.get("aggregates") or libero_pro.aggregate(d.get("tasks", []))
    lines = [
        f"- {d.get('selection', {}).get('rule', 'selection rule not recorded')}",
        f"- offline agent, K = {p.get('k')}, up to {p.get('max_rounds')} rounds"
        + ("" if p.get("published_protocol") else " (**not the published protocol**: fewer candidates, rounds, seeds)"),
        *(f"- {line}" for line in libero_pro.summary_lines(d)),
        f"- selected tasks not run yet: {len(d.get('not_yet_run') or [])}",
        "",
        "| suite | tasks | held-out | first candidate (debug) | final (debug) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for suite, a in agg.get("per_suite", {}).items():
        lines.append(
            f"| {suite} | {a['tasks']} | **{_f(a['heldout_mean'])}** | {_f(a['first_candidate_debug_mean'])} | "
            f"{_f(a['final_debug_mean'])} |"
        )
    return lines


def _transfer(d):
    p = d.get("protocol", {})
    evaluations = d.get("evaluations", [])
    steps = sum(e.get("steps") or 0 for e in evaluations)
    covered = sum(e.get("steps_covered") or 0 for e in evaluations)
    lines = [
        f"- sources: {p.get('source_rule', 'rule not recorded')}; searched with K = {p.get('k')}, up to "
        f"{p.get('max_rounds')} rounds"
        + (
            f" (seeds limited to {p.get('debug_seeds_limit')} debug / {p.get('heldout_seeds_limit')} held-out: "
            "**not the protocol**)"
            if p.get("debug_seeds_limit") or p.get("heldout_seeds_limit")
            else ""
        ),
        f"- {len(d.get('sources', []))} source searches, "
        f"{sum(len(r.get('proposed_skills', [])) for r in d.get('sources', []))} skills proposed; zero-shot: "
        f"{p.get('zero_shot', '–')}",
        f"- instruction steps a template covers: {covered} of {steps} (over every evaluation)",
        "",
        "| suite | library size (source tasks) | skills | tasks | episodes | zero-shot success |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in d.get("summary") or []:
        lines.append(
            f"| {row['suite']} | {row['library_size']} | {row['skills']} | {row['tasks']} | {row['episodes']} | "
            f"**{_f(row['mean_success'])}** |"
        )
    return lines


HEADLINES = {
    "sandbox_startup": _sandbox_startup,
    "trace_overhead": _trace_overhead,
    "cold_start": _cold_start,
    "eval_throughput": _eval_throughput,
    "reference_programs": _reference_programs,
    "search_results": _search_results,
    "libero_pro": _libero_pro,
    "transfer": _transfer,
    "skill_retrieval": _skill_retrieval,
    "live_latency": _live_latency,
    "faults": _faults,
}


def _suite_means(search: dict):
    """(suite, mean held-out success, tasks) per suite of the search results, in file order."""
    by_suite: dict[str, list[float]] = {}
    for r in search.get("tasks", []):
        if isinstance(r.get("heldout"), (int, float)):
            by_suite.setdefault(r.get("suite") or "?", []).append(float(r["heldout"]))
    return [(s, sum(v) / len(v), len(v)) for s, v in by_suite.items()]


def _row_commits(doc: dict) -> set[str]:
    """The commits the rows of a results file were measured at (rows that record one)."""
    found = {c for c in doc.get("row_commits") or [] if isinstance(c, str) and c != "not recorded"}
    for key in ("tasks", "sources", "evaluations"):
        rows = doc.get(key)
        for row in rows if isinstance(rows, list) else []:
            if isinstance(row, dict) and isinstance(row.get("commit"), str) and row["commit"]:
                found.add(row["commit"])
    return found


def _settings(doc: dict) -> str:
    parts = []
    for key in ("settings", "protocol"):
        value = doc.get(key)
        if isinstance(value, dict):
            shown = {k: v for k, v in value.items() if not (isinstance(v, str) and "\n" in v)}
            parts.append(f"{key} `{json.dumps(shown, sort_keys=True)}`")
    for key in ("perception_mode", "step_budget", "seeds"):  # per-row values are in the section's table
        value = doc.get(key)
        if value is not None and not (isinstance(doc.get("settings"), dict) and key in doc["settings"]):
            parts.append(f"{key} `{json.dumps(value)}`")
    machine = doc.get("machine") or {}
    if machine:
        parts.append(f"machine {machine.get('cpus', '?')} CPUs, Python {machine.get('python', '?')}")
    return "; ".join(parts) or "not recorded"


def _paper(docs: dict) -> list[str]:
    search = docs.get("search_results")
    means = dict((s, (rate, n)) for s, rate, n in _suite_means(search)) if search else {}
    handover = None
    for r in (search or {}).get("tasks", []):
        if r.get("task") == "robosuite:TwoArmHandover":
            handover = r.get("heldout")
    libero = [(s, v) for s, v in means.items() if s != "robosuite"]
    pro_doc = docs.get("libero_pro")
    pro = ((pro_doc or {}).get("aggregates") or {}).get("overall", {}).get("pro") or {}
    first = [
        r["first_candidate_debug"]
        for r in (pro_doc or {}).get("tasks", [])
        if r.get("perturbation") and isinstance(r.get("first_candidate_debug"), (int, float))
    ]
    transfer = docs.get("transfer") or {}

    def ours(value, what):
        return f"{_f(value)} ({what})" if value is not None else "not measured yet"

    if pro.get("tasks"):
        covered = f"libero_pro.json: {pro['suites']} suites, {pro['tasks']} tasks"
        libero_pro_ours = ours(pro.get("heldout_mean"), covered)
    elif libero:
        libero_pro_ours = "; ".join(f"{_f(rate)} ({s} only, {n} tasks)" for s, (rate, n) in libero)
    else:
        libero_pro_ours = "not measured yet"
    agent0 = (
        ours(sum(first) / len(first), f"our offline agent's first program, no search, debug seeds, {len(first)} tasks")
        if first
        else "not measured yet"
    )
    zero = {}
    for row in transfer.get("summary") or []:
        if isinstance(row, dict) and isinstance(row.get("mean_success"), (int, float)):
            zero[row.get("library_size")] = (row["mean_success"], f"{row.get('suite')}, {row.get('tasks')} tasks")
    largest = max((k for k in zero if isinstance(k, int) and k > 0), default=None)
    robosuite = means.get("robosuite")
    lines = [
        'Figures in the "paper" column are **the ASPIRE paper\'s published numbers**, not measured here. Ours '
        "come from `search_results.json`, `libero_pro.json` and `transfer.json`: the offline template agent (no "
        "language model), held-out success of the selected program.",
        "",
        "| figure | paper (published) | ours (measured here) |",
        "| --- | --- | --- |",
        f"| ASPIRE, LIBERO-Pro overall | {_f(PAPER['libero_pro_overall'])} | {libero_pro_ours} |",
        f"| ASPIRE, robosuite mean | {_f(PAPER['robosuite_mean'])} | "
        + (ours(robosuite[0], f"{robosuite[1]} tasks") if robosuite else "not measured yet")
        + " |",
        f"| ASPIRE, TwoArmHandover | {_f(PAPER['two_arm_handover'])} | {ours(handover, 'robosuite:TwoArmHandover')} |",
        f"| CaP-Agent0 (the paper's baseline) | {_f(PAPER['cap_agent0'])} | {agent0} |",
        f"| zero-shot LIBERO-Long-Pro, 90-task library | {_f(PAPER['zero_shot_long_pro_library'])} | "
        + (
            ours(zero[largest][0], f"transfer.json: {largest}-task LIBERO-90 library, {zero[largest][1]}")
            if largest is not None
            else "not measured yet"
        )
        + " |",
        f"| zero-shot LIBERO-Long-Pro, no library | {_f(PAPER['zero_shot_long_pro_none'], 3)} | "
        + (ours(zero[0][0], f"transfer.json: empty library, {zero[0][1]}") if 0 in zero else "not measured yet")
        + " |",
    ]
    return lines


def _repair_families(docs: dict) -> list[str]:
    """Each offline repair family on the tasks it was tried on, its source tasks set apart: from the rows'
    ``repairs_tried`` (worker.search.local.SearchOutcome.repairs_tried) of every file with searches and the
    ``repair_sources`` the file records."""
    sources: dict[str, list[str]] = {}
    rows = []
    for name in ("search_results", "libero_pro"):
        doc = docs.get(name) or {}
        sources.update(doc.get("repair_sources") or {})
        rows += [(name, r) for r in doc.get("tasks", []) if isinstance(r, dict)]
    transfer = docs.get("transfer") or {}
    sources.update(transfer.get("repair_sources") or {})
    rows += [("transfer", r) for r in transfer.get("sources", []) if isinstance(r, dict)]
    with_repairs = [(n, r) for n, r in rows if isinstance(r.get("repairs_tried"), list)]
    if not with_repairs:
        return ["Not measured yet: no search row records `repairs_tried` (rows written before it existed)."]
    families: dict[str, dict] = {}
    for _, row in with_repairs:
        for tried in row["repairs_tried"]:
            rule = str(tried.get("rule", "?"))
            family = "library skill" if rule.startswith("skill:") else rule
            f = families.setdefault(family, {"tasks": set(), "own": set(), "candidates": 0, "helped": set()})
            f.setdefault("flipped", 0)
            f.setdefault("broken", 0)
            own = row.get("task") in sources.get(family, [])
            (f["own"] if own else f["tasks"]).add(row.get("task"))
            if own:
                continue
            f["candidates"] += 1
            f["flipped"] += len(tried.get("seeds_flipped") or [])
            f["broken"] += len(tried.get("seeds_broken") or [])
            if (tried.get("debug") or 0) > (tried.get("parent_debug") or 0):
                f["helped"].add(row.get("task"))
    lines = [
        f"From {len(with_repairs)} searches that record the repairs they tried. A family's source tasks (where "
        "it was written from) are left out of its counts.",
    ]
    if not families:
        lines.append("No search tried a repair (every first program succeeded or no failure signature appeared).")
    else:
        lines += [
            "",
            "| repair family | written from | other tasks tried on | candidates | tasks it raised | seeds flipped | "
            "seeds broken |",
            "| --- | --- | --- | --- | --- | --- | --- |",
        ]
    for family, f in sorted(families.items()):
        lines.append(
            f"| {family} | {', '.join(sources.get(family, ['–']))} | {len(f['tasks'])} | {f['candidates']} | "
            f"**{len(f['helped'])}** | {f['flipped']} | {f['broken']} |"
        )
    never = sorted(set(sources) - set(families))
    if never:
        lines += ["", "Not tried on any task yet (their failure signature never appeared): " + ", ".join(never) + "."]
    return lines


def render(results_dir: Path) -> str:
    results_dir = Path(results_dir)
    state_path = results_dir / STATE
    state = json.loads(state_path.read_text()) if state_path.exists() else None
    jobs = {job.name: job for job in JOBS}
    docs: dict[str, dict] = {}
    for path in sorted(results_dir.glob("*.json")):
        if path.name == STATE:
            continue
        try:
            docs[path.stem] = json.loads(path.read_text())
        except ValueError:
            continue
    order = [j.name for j in JOBS if j.name in docs] + sorted(n for n in docs if n not in jobs)

    # The reference the provenance table compares with: the run in the state file when there is one,
    # else the most recently measured file's commit and run.
    if state:
        ref_commit, ref_run = _base(state.get("commit", "")), state.get("run_id")
    else:
        newest = max(order, key=lambda n: str(docs[n].get("measured_at") or ""), default=None)
        ref_commit = _base(_commit_of(docs[newest])) if newest else ""
        ref_run = (docs[newest].get("run_all") or {}).get("run_id") if newest else None

    out = [
        "# Benchmark summary",
        "",
        "<!-- Generated by bench/summary.py from the results files in this directory; do not edit. "
        "Regenerate: python bench/run_all.py (or python bench/summary.py for the files as they are). -->",
        "",
        "Every number below is read from a results file in this directory (`bench/run_all.py` regenerates "
        "them; `bench/summary.py` writes this page). Ratios (trace and recording overhead, two workers vs one, "
        "engine vs raw stepping, sandbox start-up with and without containment) are measured interleaved "
        "within one invocation of their script.",
        "",
    ]
    if state:
        out.append(
            f"Run `{state.get('run_id')}` ({'quick settings' if state.get('quick') else 'full settings'}) started "
            f"{state.get('started')} at commit {_short(state.get('commit', ''))}."
        )
        for r in state.get("resumed", []):
            other = _base(r.get("commit", "")) != ref_commit
            out.append(
                f"Resumed {r.get('at')} at commit {_short(r.get('commit', ''))}"
                + (" — **another commit than the run started at (--allow-other-commit)**." if other else ".")
            )
        failed = {n: j for n, j in state.get("jobs", {}).items() if j.get("status") != "done"}
        for name, j in failed.items():
            out.append(f"Job `{name}`: **{j.get('status')}** (exit code {j.get('exit_code', '–')}).")
        out.append("")

    # provenance table
    commits = {_base(_commit_of(docs[n])) for n in order if _commit_of(docs[n])}
    runs = {(docs[n].get("run_all") or {}).get("run_id") for n in order} - {None}
    out += [
        "## Provenance",
        "",
        f"{len(order)} results files from {len(commits)} recorded commit(s) and {len(runs)} run_all run(s); "
        "compared with "
        + (f"run `{ref_run}`" if ref_run else "no run_all run")
        + f" at commit {_short(ref_commit)}"
        + (" (the run's state file)." if state else " (the most recently measured file)."),
        "",
        "| file | commit | measured at | run | flags |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name in order:
        d = docs[name]
        commit = _commit_of(d)
        stamp = d.get("run_all") or {}
        flags = []
        if not commit:
            flags.append("commit not recorded")
        elif _base(commit) != ref_commit:
            flags.append("**other commit**")
        if commit and _base(commit) != commit:
            flags.append("dirty work tree")
        others = {_base(c) for c in _row_commits(d)} - {_base(commit)} if commit else set()
        if others:
            flags.append(f"**rows from {len(others)} other commit(s)**")
        if d.get("not_yet_run"):
            flags.append(f"**partial: {len(d['not_yet_run'])} selected task(s) not run yet**")
        if not stamp:
            flags.append("not from run_all")
        elif stamp.get("run_id") != ref_run:
            flags.append("**other run**")
        if stamp.get("quick"):
            flags.append("quick settings")
        if name in jobs:
            missing = missing_provenance(d, jobs[name].provenance_keys())
        else:  # a job this module does not know (run_all's caller passed it): what run_all found
            missing = list((state or {}).get("jobs", {}).get(name, {}).get("provenance_missing", []))
        missing = [k for k in missing if k != "commit"]  # flagged above
        if missing:
            flags.append("does not record " + ", ".join(missing))
        out.append(
            f"| {name}.json | {_short(commit)} | {d.get('measured_at') or 'not recorded'} | "
            f"{stamp.get('run_id', '–')} | {'; '.join(flags) or 'ok'} |"
        )
    out.append("")

    # the paper's figures beside ours
    out += ["## Published figures beside ours", "", *_paper(docs), ""]
    out += ["## Repair families beyond their source tasks", "", *_repair_families(docs), ""]

    # one section per file
    for name in order:
        d = docs[name]
        out += [
            f"## {name}",
            "",
            f"`{name}.json` — commit {_short(_commit_of(d))}, measured at {d.get('measured_at') or 'not recorded'}.",
        ]
        out += ["", f"Settings: {_settings(d)}", ""]
        headline = HEADLINES.get(name)
        try:
            out += headline(d) if headline else _generic(d)
        except (KeyError, TypeError, IndexError, ZeroDivisionError) as exc:
            out += [f"- (headline numbers unreadable: missing {exc})"]
        out.append("")

    # not measured
    missing_jobs = [j for j in JOBS if j.name not in docs]
    out += ["## Not measured yet", ""]
    for j in missing_jobs:
        out.append(f"- `{j.results}` (`bench/{j.script}`): not measured yet")
    for what, why in PLANNED:
        out.append(f"- {what}: not measured yet (no script yet; {why})")
    out.append("")
    return "\n".join(out)


def _generic(d: dict) -> list[str]:
    return [f"- {k}: {_f(v)}" for k, v in d.items() if isinstance(v, (int, float, str, bool)) and k != "commit"]


def write(results_dir: Path = RESULTS) -> Path:
    path = Path(results_dir) / "SUMMARY.md"
    path.write_text(render(results_dir))
    return path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results-dir", default=str(RESULTS))
    parser.add_argument("--check", action="store_true", help="exit 1 when SUMMARY.md differs from the results")
    args = parser.parse_args(argv)
    results_dir = Path(args.results_dir)
    if args.check:
        path = results_dir / "SUMMARY.md"
        same = path.exists() and path.read_text() == render(results_dir)
        print("SUMMARY.md is current" if same else "SUMMARY.md differs: run python bench/summary.py")
        return 0 if same else 1
    print(write(results_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
