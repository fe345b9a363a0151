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


TABLES = {
    "reference_programs": (RESULTS / "reference_programs.json", reference_programs),
    "trace_overhead": (RESULTS / "trace_overhead.json", trace_overhead),
    "cold_start": (RESULTS / "cold_start.json", cold_start),
}


def block(name: str, body: str) -> str:
    return f"<!-- bench:{name} -->\n{body}\n<!-- /bench:{name} -->"


def render(readme: str) -> str:
    """``readme`` with every bench block replaced by what its result file gives."""
    for name, (path, fn) in TABLES.items():
        pattern = re.compile(rf"<!-- bench:{name} -->\n(?:.*?\n)?<!-- /bench:{name} -->", re.S)
        if not pattern.search(readme):
            raise ValueError(f"README.md has no <!-- bench:{name} --> block")
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
