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


TABLES = {"reference_programs": (RESULTS / "reference_programs.json", reference_programs)}


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
