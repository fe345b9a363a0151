"""Sandbox start-up cost: a trivial program (one robot API call) contained vs as a plain process, interleaved.

Contained = prlimit + bubblewrap (user/pid/net/ipc/uts namespaces, read-only binds) + the launch seccomp
filter + the child-installed program filter. Plain process = ``ASPIRE_SANDBOX=process`` (prlimit and the
child-installed filter only). Each repeat runs both back to back, alternating which goes first, so drift
hits both alike; the figure is the difference of medians (and of 90th percentiles) of the whole
``run_program`` call: spawn, interpreter and numpy start, the start frame, one call, the done frame, reaping.

    python bench/sandbox_startup.py [--repeats 40]

Writes bench/results/sandbox_startup.json with the commit, machine and settings. Target: containment
adds < 30 ms per episode start.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from worker.sandbox import containment  # noqa: E402
from worker.sandbox.host import SandboxLimits, Status, run_program  # noqa: E402

TARGET_MS = 30.0
PROGRAM = "import numpy as np\nnoop()\nprint(np.zeros(3).sum())"
API = [{"name": "noop", "doc": ""}]


def _once(mode: str) -> float:
    os.environ[containment.MODE_ENV] = mode
    containment.reset_cache()
    containment.current()  # the probe is per worker process, not per episode: keep it out of the timing
    started = time.perf_counter()
    out = run_program(PROGRAM, API, lambda *a: None, SandboxLimits(wall_seconds=30))
    elapsed = (time.perf_counter() - started) * 1000.0
    if out.status != Status.OK:
        raise SystemExit(f"{mode}: {out.status} {out.error} {out.stderr}")
    return elapsed


def _commit() -> str:
    """The checked-out commit, "+dirty" when tracked files differ from it (bench/provenance.py)."""
    from bench import provenance

    return provenance.commit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=40)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "sandbox_startup.json"))
    args = parser.parse_args()
    saved = os.environ.get(containment.MODE_ENV)
    times = {containment.BWRAP: [], containment.PROCESS: []}
    try:
        for mode in times:  # warm both paths (page cache, seccomp compile) before measuring
            _once(mode)
        for i in range(args.repeats):
            order = list(times) if i % 2 == 0 else list(reversed(times))
            for mode in order:
                times[mode].append(_once(mode))
        os.environ[containment.MODE_ENV] = containment.BWRAP
        containment.reset_cache()
        box = containment.current()
    finally:
        if saved is None:
            os.environ.pop(containment.MODE_ENV, None)
        else:
            os.environ[containment.MODE_ENV] = saved

    def stats(xs):
        xs = sorted(xs)
        return {
            "median_ms": round(statistics.median(xs), 2),
            "p90_ms": round(xs[int(0.9 * (len(xs) - 1))], 2),
            "min_ms": round(xs[0], 2),
            "max_ms": round(xs[-1], 2),
        }

    contained, plain = stats(times[containment.BWRAP]), stats(times[containment.PROCESS])
    added = round(contained["median_ms"] - plain["median_ms"], 2)
    doc = {
        "benchmark": "sandbox_startup",
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "commit": _commit(),
        "settings": {"repeats": args.repeats, "program": PROGRAM, "interleaved": True},
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "containment": {"label": box.label, "detail": box.detail},
        "contained": contained,
        "process": plain,
        "added_median_ms": added,
        "added_p90_ms": round(contained["p90_ms"] - plain["p90_ms"], 2),
        "target_added_ms": TARGET_MS,
        "meets_target": added < TARGET_MS,
    }
    Path(args.out).write_text(json.dumps(doc, indent=2) + "\n")
    print(json.dumps(doc, indent=2))


if __name__ == "__main__":
    main()
