"""README tables rendered from bench/results, so no number in them is typed by hand.

Each table sits in README.md between ``<!-- bench:NAME -->`` and ``<!-- /bench:NAME -->``;
``python bench/readme_tables.py`` rewrites those blocks from the result files, and
aspire_web/tests/test_readme_numbers.py fails when a block differs from what the results give.

    python bench/readme_tables.py [--check]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: the libero_pro block imports bench.summary
    sys.path.insert(0, str(ROOT))
README = ROOT / "README.md"
RESULTS = ROOT / "bench" / "results"


def _failures(row: dict, most: int = 2) -> str:
    modes = list(row.get("failure_modes", {}).items())[:most]
    # "EXCEPTION: RuntimeError: missed the can (line 47: raise ...)" -> without the source line
    text = "; ".join(f"{n} × {re.sub(r' [(]line [0-9]+: .*$', '', what)}" for what, n in modes)
    rest = sum(n for _, n in list(row.get("failure_modes", {}).items())[most:])
    return (text + (f"; {rest} other" if rest else "")).replace("|", "\\|")


def reference_programs(doc: dict) -> str:
    """The reference-program table: one line per task and perception mode."""
    lines = [
        "| task | perception | held-out seeds | success | mean episode s | control steps (mean / max / budget) "
        "| how the failures ended |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in doc["tasks"]:
        steps = f"{row.get('mean_control_steps', '–')} / {row.get('max_control_steps', '–')} / {row.get('step_budget')}"
        lines.append(
            f"| {row['task']} | {row.get('perception_mode', 'oracle')} | {row['seeds']} | "
            f"**{row['success_rate']:.2f}** | {row['mean_episode_seconds']:.2f} | {steps} | {_failures(row)} |"
        )
    return "\n".join(lines)


def trace_overhead(doc: dict) -> str:
    """The trace/recording overhead table: the three modes measured side by side in one run."""
    seeds = doc["seeds"]
    lines = [
        f"Measured {doc.get('measured_at', '?')} at commit {doc.get('commit', '?')[:12]}: {doc['task']}, seeds "
        f"{seeds[0]}-{seeds[-1]} x {doc['repeats']} ({doc['episodes_per_mode']} episodes per mode), "
        f"{doc.get('machine', {}).get('cpus', '?')} CPUs.",
        "",
        "| mode | total s | / untraced | median per-seed ratio | target | met | success |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        f"| untraced | {doc['untraced_total_s']:.1f} | 1.00 | – | – | – | {doc['untraced_success_rate']:.2f} |",
        f"| traced | {doc['traced_total_s']:.1f} | **{doc['ratio']:.2f}** | {doc['median_pair_ratio']:.2f} | "
        f"≤ {doc['target']:.2f} | {'yes' if doc['meets_target'] else 'no'} | {doc['traced_success_rate']:.2f} |",
    ]
    if "recording_ratio" in doc:
        lines.append(
            f"| traced + recording | {doc['recording_total_s']:.1f} | **{doc['recording_ratio']:.2f}** | "
            f"{doc['recording_median_pair_ratio']:.2f} | ≤ {doc['recording_target']:.2f} | "
            f"{'yes' if doc['recording_meets_target'] else 'no'} | {doc['recording_success_rate']:.2f} |"
        )
        lines.append("")
        lines.append(
            f"Video: {doc['video_frames_per_episode']} frames and {doc['video_bytes_per_episode'] / 1000:.0f} KB per "
            f"episode; keyframes {doc['keyframe_bytes_per_episode'] / 1000:.0f} KB per episode."
        )
    return "\n".join(lines)


def cold_start(doc: dict) -> str:
    """The cold-start table: a fresh worker process's first episode with and without the warm-up."""
    return "\n".join(
        [
            f"Measured {doc.get('measured_at', '?')} at commit {doc.get('commit', '?')[:12]}: {doc['task']}, seeds "
            f"{', '.join(map(str, doc['seeds']))} in each of {doc['repeats']} fresh processes per mode, traced with "
            f"keyframes and recording, {doc.get('machine', {}).get('cpus', '?')} CPUs.",
            "",
            "| fresh worker process | first episode s | / later episodes (median) | target | met |",
            "| --- | --- | --- | --- | --- |",
            f"| no warm-up | {doc['cold_first_episode_s']:.2f} | {doc['cold_first_ratio']:.2f} | – | – |",
            f"| after warm-up ({doc['warm_up_median_s']:.1f} s at start) | {doc['warm_first_episode_s']:.2f} | "
            f"**{doc['warm_first_ratio']:.2f}** | ≤ {doc['target']:.2f} | {'yes' if doc['meets_target'] else 'no'} |",
            "",
            f"Later episodes: median {doc['later_episode_median_s']:.2f} s.",
        ]
    )


def _stamp(doc: dict, what: str) -> str:
    commit = doc.get("commit") or "not recorded"
    return f"Measured {doc.get('measured_at', 'at a time not recorded')} at commit {commit[:12]}: {what}."


def search_results(doc: dict) -> str:
    """The offline search table: first candidate, final debug, held-out success per task."""
    p = doc.get("protocol", {})
    lines = [
        _stamp(
            doc,
            f"the {doc.get('agent', '?')} agent, K = {p.get('k')}, up to {p.get('max_rounds')} rounds, "
            f"{p.get('survivors')} survivors",
        ),
        "",
        "| task | first (debug) | final (debug) | held-out | rounds | stopped by | wall s |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in doc["tasks"]:
        lines.append(
            f"| {row['task']} | {row['first_candidate_debug']:.2f} | {row['final_debug']:.2f} | "
            f"**{row['heldout']:.2f}** | {row['rounds_used']} | {row.get('stop', '')} | {row['wall_s']:.0f} |"
        )
    if doc.get("not_yet_run"):
        lines += ["", f"Selected tasks not run yet ({len(doc['not_yet_run'])}): {', '.join(doc['not_yet_run'])}."]
    return "\n".join(lines)


def eval_throughput(doc: dict) -> str:
    """Held-out evaluation throughput: one worker, two workers, the raw simulator floor."""
    one, two, raw = doc["one_worker"], doc["two_workers"], doc["raw_floor"]
    again = doc.get("one_worker_repeat", {})
    return "\n".join(
        [
            _stamp(doc, f"{doc['task']}, held-out seeds {doc['seeds']} ({doc['episodes']} episodes)"),
            "",
            "| mode | wall s | episodes/s | success |",
            "| --- | --- | --- | --- |",
            f"| one worker | {one['wall_s']:.1f} | {one['episodes_per_s']:.3f} | {one['success_rate']:.2f} |",
            f"| two workers | {two['wall_s']:.1f} | {two['episodes_per_s']:.3f} | {two['success_rate']:.2f} |",
            *(
                [
                    f"| one worker again | {again['wall_s']:.1f} | {again['episodes_per_s']:.3f} | "
                    f"{again['success_rate']:.2f} |"
                ]
                if again
                else []
            ),
            f"| raw simulator ({raw['control_steps']} control steps, zero actions) | {raw['wall_s']:.1f} | – | – |",
            "",
            f"Two workers vs one: **{doc['speedup_two_vs_one']:.2f}×**; one worker vs the raw simulator: "
            f"**{doc['one_worker_vs_raw_floor']:.2f}×**.",
        ]
    )


def _busy_row(busy: dict, target: float) -> list[str]:
    lat = busy["latency_ms"]
    return [
        f"| {busy['simulator_workers']} simulator workers busy ({busy['episodes_finished']} episodes finished "
        f"meanwhile) | {lat['p50']:.1f} | **{lat['p95']:.1f}** | {lat['p99']:.1f} | {lat['max']:.1f} | "
        f"< {target:.0f} | {'yes' if busy['meets_target'] else 'no'} |"
    ]


def skill_retrieval(doc: dict) -> str:
    """Skill retrieval latency over a synthetic library."""
    lat, emb = doc["latency_ms"], doc.get("query_embedding_ms", {})
    return "\n".join(
        [
            _stamp(
                doc,
                f"{doc['skills']:,} skills ({doc.get('approved_for_panda_or_any', '?'):,} approved for Panda or any "
                f"robot), {doc['queries']} queries ({doc.get('queries_with_failure_signals', '?')} with failure "
                f"signals), load average {doc.get('machine', {}).get('load_average_1min_before', '?')} before",
            ),
            "",
            "| retrieve_skills, end to end (ms) | p50 | p95 | p99 | max | target p95 | met |",
            "| --- | --- | --- | --- | --- | --- | --- |",
            f"| machine otherwise idle | {lat['p50']:.1f} | **{lat['p95']:.1f}** | {lat['p99']:.1f} | "
            f"{lat['max']:.1f} | < {doc['target_p95_ms']:.0f} | {'yes' if doc['meets_target'] else 'no'} |",
            *(_busy_row(doc["busy"], doc["target_p95_ms"]) if doc.get("busy") else []),
            "",
            f"Query embedding alone: p50 {emb.get('p50', float('nan')):.1f} ms. Planted needle skills ranked first: "
            f"{doc.get('needles_ranked_first', '?')}. Index build (embedding every skill once): "
            f"{doc.get('index_build_s', float('nan')):.0f} s.",
        ]
    )


def live_latency(doc: dict) -> str:
    """Live delivery latency in a browser and fan-out to many websocket viewers."""
    b, f = doc["browser"], doc["fan_out"]
    bl, fl = b["latency"], f["delivery_latency"]
    cfg = doc.get("settings", {})
    return "\n".join(
        [
            _stamp(doc, f"seeds {cfg.get('seeds', '?')}, {cfg.get('calls_per_episode', '?')} calls an episode"),
            "",
            "| | deliveries | p50 ms | p95 ms | max ms | complete |",
            "| --- | --- | --- | --- | --- | --- |",
            f"| browser (trace pages) | {bl['n']} | {bl['p50_ms']:.1f} | **{bl['p95_ms']:.1f}** | {bl['max_ms']:.0f} | "
            f"{b['calls_missing_on_pages']} calls missing |",
            f"| {f['viewers']} websocket viewers | {fl['n']} | {fl['p50_ms']:.1f} | **{fl['p95_ms']:.1f}** | "
            f"{fl['max_ms']:.0f} | {f['viewers_with_every_call_once']} of {f['viewers']} got every call once, "
            f"{f['duplicates_total']} duplicates |",
            "",
            f"Target p95 < {doc['target_p95_ms']:.0f} ms: {'met' if doc['meets_target'] else 'not met'}.",
        ]
    )


def deploy_throughput(doc: dict) -> str:
    """The deployment section's sizing line: episodes an hour of a 2-core worker, from eval_throughput."""
    per_s = doc["two_workers"]["episodes_per_s"]
    return (
        f"`bench/results/eval_throughput.json` ({doc['task']}, {doc['episodes']} episodes, `machine.cpus` = "
        f"{doc.get('machine', {}).get('cpus', '?')}): with two worker processes, `two_workers.episodes_per_s` = "
        f"{per_s}, that is {round(per_s * 3600):,} episodes an hour (x 3600) for this short task; longer tasks "
        "scale with their episode time (`two_workers.episode_s`)."
    )


def libero_pro(doc: dict) -> str:
    """LIBERO-Pro and the original suites: the lines and per-suite table SUMMARY.md shows."""
    from bench import summary

    return _stamp(doc, "the offline agent") + "\n\n" + "\n".join(summary.HEADLINES["libero_pro"](doc))


def transfer(doc: dict) -> str:
    """Zero-shot success against library size: the lines and table SUMMARY.md shows."""
    from bench import summary

    return _stamp(doc, "the offline agent") + "\n\n" + "\n".join(summary.HEADLINES["transfer"](doc))


#: Blocks whose results file may not exist yet: the block says so instead of failing.
NOT_YET = "Not measured yet: no `bench/results/{file}` (`python bench/run_all.py --only {job}` writes it)."

TABLES = {
    "reference_programs": (RESULTS / "reference_programs.json", reference_programs),
    "trace_overhead": (RESULTS / "trace_overhead.json", trace_overhead),
    "cold_start": (RESULTS / "cold_start.json", cold_start),
    "search_results": (RESULTS / "search_results.json", search_results),
    "eval_throughput": (RESULTS / "eval_throughput.json", eval_throughput),
    "deploy_throughput": (RESULTS / "eval_throughput.json", deploy_throughput),
    "skill_retrieval": (RESULTS / "skill_retrieval.json", skill_retrieval),
    "live_latency": (RESULTS / "live_latency.json", live_latency),
    "libero_pro": (RESULTS / "libero_pro.json", libero_pro),
    "transfer": (RESULTS / "transfer.json", transfer),
}
OPTIONAL = {"libero_pro", "transfer"}


def block(name: str, body: str) -> str:
    return f"<!-- bench:{name} -->\n{body}\n<!-- /bench:{name} -->"


def render(readme: str) -> str:
    """``readme`` with every bench block replaced by what its result file gives."""
    for name, (path, fn) in TABLES.items():
        pattern = re.compile(rf"<!-- bench:{name} -->\n(?:.*?\n)?<!-- /bench:{name} -->", re.S)
        if not pattern.search(readme):
            raise ValueError(f"README.md has no <!-- bench:{name} --> block")
        if name in OPTIONAL and not path.exists():
            table = block(name, NOT_YET.format(file=path.name, job=name))
        else:
            table = block(name, fn(json.loads(path.read_text())))
        readme = pattern.sub(lambda _: table, readme)
    return readme


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="exit 1 when README.md differs from the results")
    args = parser.parse_args(argv)
    current = README.read_text()
    fresh = render(current)
    if args.check:
        return 0 if fresh == current else 1
    README.write_text(fresh)
    return 0


if __name__ == "__main__":
    sys.exit(main())
