"""Tracing and recording overhead: the Lift starter program on the same seeds, untraced, traced and
traced + recorded, side by side in one run.

Traced = every primitive call summarised into a record, written to disk as a JSON line (standing in for
the database row), keyframes rendered and encoded as JPEG files (before and after every motion and
gripper call). Recording = traced plus the episode video (EngineSettings.recording: the keyframe camera
every 4 control steps and around every motion and gripper call, encoded to an H.264 MP4 by ffmpeg,
worker.robot.recording). Untraced = tracer off, no keyframes. All go through the same sandbox and
simulator. Each seed runs every mode back to back, rotating which goes first, so drift (thermal, caches)
hits all alike.

    python bench/trace_overhead.py [--seeds 101-110] [--repeats 2]

Writes bench/results/trace_overhead.json (with the commit and the settings measured). Targets: total
traced time / total untraced time <= 1.10; total recording time / total untraced time <= 1.30.
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

from bench import provenance  # noqa: E402
from worker.engine import EngineSettings, run_episode, simulators  # noqa: E402
from worker.robot import recording as recording_mod  # noqa: E402
from worker.sim.catalog import get_task, parse_seeds  # noqa: E402

TARGET = 1.10
RECORDING_TARGET = 1.30
MODES = ("untraced", "traced", "recording")


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
    configs = {
        "untraced": EngineSettings(trace=False, keyframes=False),
        "traced": EngineSettings(trace=True, keyframes=True),
        "recording": EngineSettings(trace=True, keyframes=True, recording=True),
    }
    untraced_cfg = configs["untraced"]

    simulators().get(spec)  # build the simulator outside the timed region
    run_episode(spec, program, seeds[0], NullSink(), untraced_cfg, None)  # warm caches (JIT, GL)
    run_episode(spec, program, seeds[0], NullSink(), configs["recording"], str(media / "warm"))  # and ffmpeg

    rows = []
    for rep in range(args.repeats):
        for i, seed in enumerate(seeds):
            shift = (i + rep) % len(MODES)
            order = MODES[shift:] + MODES[:shift]
            row = {"seed": seed, "repeat": rep}
            for mode in order:
                t0 = time.perf_counter()
                result = run_episode(
                    spec, program, seed, NullSink() if mode == "untraced" else sink, configs[mode], str(media / mode)
                )
                row[f"{mode}_s"] = time.perf_counter() - t0
                row[f"{mode}_success"] = result.success
                if mode == "recording":
                    row["recording_frames"] = len(result.recording_index.get("frames", []))
            rows.append(row)
            print(f"seed {seed} rep {rep}: " + ", ".join(f"{m} {row[m + '_s']:.3f} s" for m in MODES), flush=True)

    total = {m: sum(r[f"{m}_s"] for r in rows) for m in MODES}
    traced, untraced, recording = total["traced"], total["untraced"], total["recording"]
    per_pair = [r["traced_s"] / r["untraced_s"] for r in rows]
    per_pair_rec = [r["recording_s"] / r["untraced_s"] for r in rows]
    keyframe_bytes = sum(f.stat().st_size for f in (media / "traced").rglob("*.jpg"))
    video_bytes = sum(f.stat().st_size for f in (media / "recording").rglob("*.mp4"))
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
        "recording_total_s": round(recording, 3),
        "recording_ratio": round(recording / untraced, 4),
        "recording_median_pair_ratio": round(statistics.median(per_pair_rec), 4),
        "recording_target": RECORDING_TARGET,
        "recording_meets_target": recording / untraced <= RECORDING_TARGET,
        "traced_success_rate": sum(r["traced_success"] for r in rows) / len(rows),
        "untraced_success_rate": sum(r["untraced_success"] for r in rows) / len(rows),
        "recording_success_rate": sum(r["recording_success"] for r in rows) / len(rows),
        "keyframe_bytes_per_episode": keyframe_bytes // len(rows),
        "video_bytes_per_episode": video_bytes // len(rows),
        "video_frames_per_episode": round(statistics.mean(r["recording_frames"] for r in rows), 1),
        "commit": provenance.commit(),
        "step_budget": untraced_cfg.step_budget_for(spec),
        "settings": {
            mode: {k: v for k, v in asdict(cfg).items() if k in ("trace", "keyframes", "recording", "perception_mode")}
            for mode, cfg in configs.items()
        },
        "recording_settings": {
            "every_steps": recording_mod.EVERY_STEPS,
            "fps": recording_mod.FPS,
            "max_frames": recording_mod.MAX_FRAMES,
            "crf": recording_mod.CRF,
            "codec": "libx264 yuv420p, one thread (PyAV)",
        },
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "rows": [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()} for r in rows],
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(doc, indent=2) + "\n")
    print(f"ratio traced/untraced = {doc['ratio']} (median per pair {doc['median_pair_ratio']}, target <= {TARGET})")
    print(
        f"ratio recording/untraced = {doc['recording_ratio']} (median per pair "
        f"{doc['recording_median_pair_ratio']}, target <= {RECORDING_TARGET})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
