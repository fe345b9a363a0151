"""Cold start: the first episode of a fresh worker process, with and without the warm-up
(worker.engine.warm_up, what each Celery worker process runs before it takes work), against the
episodes after it.

Each repeat starts two fresh Python processes back to back (alternating which goes first): "cold" runs
the Lift starter program on three seeds at once; "warm" first runs the warm-up, then the same three
episodes. Episodes are traced with keyframes and a recording into a temporary directory, as a run
launched from the browser is; times are the engine's own (run_episode's wall time: simulator build or
reset, the sandbox, the program). The warm-up's own time is reported apart: it is paid at worker
start, before any run waits.

    python bench/cold_start.py [--repeats 3]

Writes bench/results/cold_start.json (commit, settings, machine, time measured). Target: the first
episode after warm-up / the median of the later episodes <= 1.2.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TASK = "robosuite:Lift"
SEEDS = [101, 102, 103]
TARGET = 1.2

CHILD = """
import json, sys, tempfile, time
from worker.engine import EngineSettings, run_episode, warm_up
from worker.events import NullSink
from worker.sim.catalog import get_task, starter_source
warm = sys.argv[1] == "warm"
out = {"warm_up_s": None}
if warm:
    started = time.monotonic()
    warm_up([%(task)r])
    out["warm_up_s"] = time.monotonic() - started
spec = get_task(%(task)r)
program = starter_source(spec)
media = tempfile.mkdtemp(prefix="aspire-cold-start-")
times = []
for seed in %(seeds)r:
    started = time.monotonic()
    result = run_episode(spec, program, seed, NullSink(), EngineSettings(recording=True), media)
    times.append(time.monotonic() - started)
out["episode_s"] = times
print("RESULT " + json.dumps(out))
"""


def child(mode: str) -> dict:
    env = {**os.environ, "MUJOCO_GL": "osmesa", "PYOPENGL_PLATFORM": "osmesa", "PYTHONPATH": str(ROOT)}
    code = CHILD % {"task": TASK, "seeds": SEEDS}
    done = subprocess.run(
        [sys.executable, "-c", code, mode], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))
    return json.loads(line[len("RESULT ") :])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "cold_start.json"))
    args = parser.parse_args(argv)

    rows = []
    for rep in range(args.repeats):
        order = ("cold", "warm") if rep % 2 == 0 else ("warm", "cold")
        for mode in order:
            got = child(mode)
            rows.append({"repeat": rep, "mode": mode, **got})
            print(f"rep {rep} {mode}: " + ", ".join(f"{t:.2f} s" for t in got["episode_s"]), flush=True)

    def first(mode):
        return statistics.median(r["episode_s"][0] for r in rows if r["mode"] == mode)

    later = statistics.median(t for r in rows for t in r["episode_s"][1:])
    warm_ups = [r["warm_up_s"] for r in rows if r["warm_up_s"] is not None]
    from bench import provenance
    from worker.sim.catalog import get_task

    doc = {
        "benchmark": "cold_start",
        "task": TASK,
        "seeds": SEEDS,
        "repeats": args.repeats,
        "cold_first_episode_s": round(first("cold"), 3),
        "warm_first_episode_s": round(first("warm"), 3),
        "later_episode_median_s": round(later, 3),
        "cold_first_ratio": round(first("cold") / later, 3),
        "warm_first_ratio": round(first("warm") / later, 3),
        "warm_up_median_s": round(statistics.median(warm_ups), 3),
        "target": TARGET,
        "meets_target": first("warm") / later <= TARGET,
        "settings": {
            "trace": True,
            "keyframes": True,
            "recording": True,
            "perception_mode": "realistic",
            "step_budget": get_task(TASK).step_budget,
        },
        "commit": provenance.commit(),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "rows": [{k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()} for r in rows],
    }
    for r in doc["rows"]:
        r["episode_s"] = [round(t, 3) for t in r["episode_s"]]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(doc, indent=2) + "\n")
    print(
        f"first episode / later: cold {doc['cold_first_ratio']}, after warm-up {doc['warm_first_ratio']} "
        f"(target <= {TARGET}); warm-up {doc['warm_up_median_s']} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
