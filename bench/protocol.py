"""What the search benchmarks (bench/search_results.py, bench/libero_pro.py, bench/transfer.py) share: the
published search protocol's command-line arguments, the protocol and machine blocks every results file
records, resuming a stopped run, and writing a results file atomically.

The protocol is the ASPIRE paper's: K = 8 candidates per round, at most 5 rounds, 3 survivors carried to the
next round, stop at 100% debug success or when the best debug success rises by under 5 points over two
rounds: worker/search/core.py SearchSettings' defaults, read from there.

Importing this module imports neither the engine nor a simulator.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

from worker.search.core import SearchSettings  # a dataclass module: no engine or simulator

#: The published protocol is the search's defaults (one place to change it).
_DEFAULTS = SearchSettings()
PROTOCOL_K = _DEFAULTS.candidates_per_round
PROTOCOL_ROUNDS = _DEFAULTS.max_rounds
SURVIVORS = _DEFAULTS.survivors
TARGET_SUCCESS = _DEFAULTS.target_success
PLATEAU_POINTS = _DEFAULTS.plateau_points


def add_protocol_args(parser: argparse.ArgumentParser, out_default: Path, source_seeds_only: bool = False) -> None:
    """Add the arguments every search benchmark takes: --workers, --k, --rounds, --resume, --debug-seeds,
    --heldout-seeds and --out (default ``out_default``).

    ``source_seeds_only``: --debug-seeds limits only the tasks that are searched (bench/transfer.py, whose
    zero-shot evaluations use held-out seeds only); the help text says so.
    """
    parser.add_argument("--workers", type=int, default=2, help="processes evaluating candidates in parallel")
    parser.add_argument("--k", type=int, default=PROTOCOL_K, help="candidates per round")
    parser.add_argument("--rounds", type=int, default=PROTOCOL_ROUNDS, help="at most this many rounds")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="keep what the results file already holds (refused when it was written under other settings)",
    )
    searched = "searched task" if source_seeds_only else "task"
    parser.add_argument("--debug-seeds", type=int, help=f"only the first N debug seeds of each {searched}")
    parser.add_argument("--heldout-seeds", type=int, help="only the first N held-out seeds of each task")
    parser.add_argument("--out", default=str(out_default))


def protocol(args: argparse.Namespace, **extra) -> dict:
    """The protocol block of a results file for parsed ``args`` (add_protocol_args), plus ``extra`` keys.

    ``published_protocol`` is true only for K = 8, 5 rounds and every seed of both splits; seed limits are
    recorded as given (None: all of the task's seeds).
    """
    return {
        "k": args.k,
        "max_rounds": args.rounds,
        "survivors": SURVIVORS,
        "target_success": TARGET_SUCCESS,
        "plateau_points": PLATEAU_POINTS,
        "debug_seeds_limit": args.debug_seeds,
        "heldout_seeds_limit": args.heldout_seeds,
        "published_protocol": (
            args.k == PROTOCOL_K and args.rounds == PROTOCOL_ROUNDS and not args.debug_seeds and not args.heldout_seeds
        ),
        **extra,
    }


def machine(workers: int) -> dict:
    """The machine block of a results file: platform, Python version, CPU count and evaluation workers."""
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "evaluation_workers": workers,
    }


def load_for_resume(out: Path, resume: bool, expected_protocol: dict) -> dict:
    """The results document to continue: ``{}`` unless ``resume`` and ``out`` exists.

    Raises SystemExit (with the reason) when the file cannot be read as a JSON object or was written under a
    protocol other than ``expected_protocol``, so that rows measured under different settings never mix.
    """
    if not (resume and out.exists()):
        return {}
    try:
        doc = json.loads(out.read_text())
    except (OSError, ValueError) as exc:
        raise SystemExit(f"--resume: {out} cannot be read ({exc}); use another --out or leave out --resume")
    if not isinstance(doc, dict):
        raise SystemExit(f"--resume: {out} does not hold a results object; use another --out")
    if doc.get("protocol") != expected_protocol:
        raise SystemExit(
            f"--resume: {out} was written under protocol {doc.get('protocol')}, not {expected_protocol}; "
            "use another --out or leave out --resume"
        )
    return doc


def write_results(out: Path, doc: dict, indent: int = 2) -> None:
    """Write ``doc`` to ``out`` atomically (a temporary file renamed over it): a run stopped while writing
    leaves the previous complete file, never half of one."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=indent) + "\n")
    os.replace(tmp, out)
