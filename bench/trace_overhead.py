"""Tracing overhead: the Lift starter program on the same seeds, traced vs untraced, interleaved.

Traced = every primitive call summarised into a record, written to disk as a JSON line (standing in for
the database row), keyframes rendered and encoded as JPEG files. Untraced = tracer off, no keyframes.
Both go through the same sandbox and simulator. Each seed runs both ways back to back, alternating
which goes first, so drift (thermal, caches) hits both sides alike.

    python bench/trace_overhead.py [--seeds 101-110] [--repeats 2]

Writes bench/results/trace_overhead.json. Target: total traced time / total untraced time <= 1.10.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from worker.engine import EngineSettings, run_episode, simulators  # noqa: E402
from worker.sim.catalog import get_task, parse_seeds  # noqa: E402

TARGET = 1.10


class JsonlSink:
    """Writes each call record as one JSON line: the persistence cost a real sink pays."""

    def __init__(self, path: Path):
        self.file = path.open("a")

    def episode_started(self, start):
        return start.seed

    def call_recorded(self, handle, record):
        self.file.write(json.dumps(asdict(record)) + "\n")

    def episode_finished(self, handle, result):
        self.file.write(json.dumps({"episode": asdict(result)}) + "\n")
        self.file.flush()


class NullSink:
    def episode_started(self, start):
        return None

    def call_recorded(self, handle, record):
        pass

    def episode_finished(self, handle, result):
        pass


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="101-110")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "trace_overhead.json"))
    args = parser.parse_args(argv)

    spec = get_task("robosuite:Lift")
    program = (ROOT / "worker" / "programs" / spec.starter_program).read_text()
    seeds = parse_seeds(args.seeds)
    media = Path(tempfile.mkdtemp(prefix="aspire-bench-media-"))
    sink = JsonlSink(media / "records.jsonl")
    traced_cfg = EngineSettings(trace=True, keyframes=True)
    untraced_cfg = EngineSettings(trace=False, keyframes=False)

    simulators().get(spec)  # build the simulator outside the timed region
    run_episode(spec, program, seeds[0], NullSink(), untraced_cfg, None)  # warm caches (JIT, GL)

    rows = []
    for rep in range(args.repeats):
        for i, seed in enumerate(seeds):
            order = ["traced", "untraced"] if (i + rep) % 2 == 0 else ["untraced", "traced"]
            row = {"seed": seed, "repeat": rep}
            for mode in order:
                cfg = traced_cfg if mode == "traced" else untraced_cfg
                t0 = time.perf_counter()
                result = run_episode(spec, program, seed, sink if mode == "traced" else NullSink(), cfg, str(media))
                row[f"{mode}_s"] = time.perf_counter() - t0
                row[f"{mode}_success"] = result.success
            rows.append(row)
            print(
                f"seed {seed} rep {rep}: traced {row['traced_s']:.3f} s, untraced {row['untraced_s']:.3f} s", flush=True
            )

    traced = sum(r["traced_s"] for r in rows)
    untraced = sum(r["untraced_s"] for r in rows)
    per_pair = [r["traced_s"] / r["untraced_s"] for r in rows]
    keyframe_bytes = sum(f.stat().st_size for f in media.rglob("*.jpg"))
    doc = {
        "benchmark": "trace_overhead",
        "task": spec.key,
        "program": spec.starter_program,
        "seeds": seeds,
        "repeats": args.repeats,
        "episodes_per_mode": len(rows),
        "traced_total_s": round(traced, 3),
        "untraced_total_s": round(untraced, 3),
        "ratio": round(traced / untraced, 4),
        "median_pair_ratio": round(statistics.median(per_pair), 4),
        "target": TARGET,
        "meets_target": traced / untraced <= TARGET,
        "traced_success_rate": sum(r["traced_success"] for r in rows) / len(rows),
        "untraced_success_rate": sum(r["untraced_success"] for r in rows) / len(rows),
        "keyframe_bytes_per_episode": keyframe_bytes // len(rows),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "rows": [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()} for r in rows],
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(doc, indent=2) + "\n")
    print(f"ratio traced/untraced = {doc['ratio']} (median per pair {doc['median_pair_ratio']}, target <= {TARGET})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
