"""Provenance every results file records: the commit measured (with "+dirty" when tracked files differ from
it) and the time of measurement. Light on purpose (no simulator imports): any bench script may use it.

bench/run_all.py checks after each job that its results file records these, and stamps the file with the
run it came from.
"""

import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def commit() -> str:
    """The checked-out commit, with "+dirty" when tracked files other than bench/results and README.md
    differ from it; "" outside git."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True)
        # bench/results and the README's tables are what a run writes (one job's file, or the tables a
        # previous run re-rendered, would make the next job's commit "dirty"); neither is measured code
        dirty = subprocess.run(
            [
                "git",
                "status",
                "--porcelain",
                "--untracked-files=no",
                "--",
                ".",
                ":(exclude)bench/results",
                ":(exclude)README.md",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.CalledProcessError):
        return ""


def measured_at() -> str:
    """Now, UTC, as the results files write it."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
