"""Held-out evaluation throughput: the Lift reference program on 100 seeds.

Three measurements, side by side in one run:
  one worker   - one process runs every seed in turn, traced as in production (records serialised,
                 keyframes written as JPEG), program in the sandbox;
  two workers  - two processes take alternate seeds at the same time (the default `manage.py up`
                 pool on this 2-core machine); one worker runs again afterwards, so the file shows
                 how far the machine drifted between the modes;
  raw floor    - a bare env of the task stepped for exactly the control steps each episode used,
                 with zero actions: no robot API, no sandbox, no rendering, no tracing; measured in a
                 fourth pass of one worker, each engine episode followed by the raw floor of its seed,
                 so the engine-vs-raw ratio is a ratio of interleaved sums.
Simulators are built and warmed (worker.engine.warm_up, as a production worker
does) before the clock starts. Writes bench/results/eval_throughput.json.

    python bench/eval_throughput.py [--seeds 1-100]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TASK = "robosuite:Lift"


def _worker(seeds, media, start_event, ready, results, raw=False):
    """Run ``seeds`` once ``start_event`` fires; put (seed, success, seconds, control_steps) rows. With
    ``raw``, each episode is followed in this process by the raw floor of the same seed (_raw_episode on
    a bare env of the task) and the rows get its seconds as a fifth field: engine and raw stepping
    interleaved episode by episode, so drift of the machine hits both alike."""
    from worker.engine import EngineSettings, run_episode, simulators, warm_up
    from worker.sim.catalog import get_task
    from worker.sim.robosuite_env import SETTLE_STEPS

    sys.path.insert(0, str(ROOT / "bench"))
    from trace_overhead import JsonlSink

    spec = get_task(TASK)
    program = (ROOT / "worker" / "programs" / spec.starter_program).read_text()
    # Warmed as a production worker is before its first task (runs/tasks.py): one traced episode with
    # keyframes and a recording, so the keyframe renderer and the encoders exist before the clock starts.
    warm_up([TASK])
    adapter, *_ = simulators().get(spec)
    sink = JsonlSink(Path(media) / f"records-{os.getpid()}.jsonl")
    bare = None
    if raw:
        from worker.sim.robosuite_env import RobosuiteAdapter

        bare = RobosuiteAdapter(spec).env  # its own env: the engine's stays as the engine left it
        _raw_episode(bare, seeds[0], 10)  # built and stepped once before the clock starts, as the engine's
    ready.put(os.getpid())
    start_event.wait()
    rows = []
    for seed in seeds:
        t0 = time.perf_counter()
        result = run_episode(spec, program, seed, sink, EngineSettings(), media)
        # Every env.step the episode took: the program's (adapter.steps) and the reset's settling steps,
        # which the step budget does not count but the raw floor below must take too.
        row = (seed, result.success, time.perf_counter() - t0, adapter.steps + SETTLE_STEPS)
        if bare is not None:
            row += (_raw_episode(bare, seed, row[3]),)
        rows.append(row)
    results.put(rows)


def _raw_episode(env, seed: int, steps: int) -> float:
    """Seconds to reset ``env`` (a bare robosuite env) for ``seed`` and step it ``steps`` control steps
    with zero actions: no robot API, sandbox, perception, rendering or tracing."""
    import numpy as np

    zero = np.zeros(env.action_dim)
    t0 = time.perf_counter()
    np.random.seed(seed)
    env.reset()
    for _ in range(steps):
        env.step(zero)
    return time.perf_counter() - t0


def _run_workers(seed_groups, media, raw=False):
    ctx = mp.get_context("spawn")  # a fresh interpreter per worker, like Celery's pool processes
    start, ready, results = ctx.Event(), ctx.Queue(), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(group, media, start, ready, results, raw)) for group in seed_groups]
    for p in procs:
        p.start()
    for _ in procs:
        ready.get(timeout=600)
    t0 = time.perf_counter()
    start.set()
    rows = [row for _ in procs for row in results.get(timeout=3600)]
    wall = time.perf_counter() - t0
    for p in procs:
        p.join()
    return wall, sorted(rows)


def _mode(wall, rows):
    seconds = [r[2] for r in rows]
    return {
        "wall_s": round(wall, 2),
        "episodes_per_s": round(len(rows) / wall, 3),
        "success_rate": sum(r[1] for r in rows) / len(rows),
        "episode_s": {
            "median": round(statistics.median(seconds), 3),
            "mean": round(statistics.mean(seconds), 3),
            "max": round(max(seconds), 3),
        },
    }


def _settings() -> dict:
    """The engine settings the workers run under (run_episode's defaults, as in production)."""
    from worker.engine import BLAS_THREADS, EngineSettings
    from worker.sim.catalog import get_task

    cfg = EngineSettings()
    return {
        "blas_threads_per_worker": BLAS_THREADS,
        "trace": cfg.trace,
        "keyframes": cfg.keyframes,
        "perception_mode": cfg.perception_mode,
        "step_budget": cfg.step_budget_for(get_task(TASK)),
    }


def main(argv=None):
    from bench import provenance
    from worker.sim.catalog import parse_seeds

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="1-100")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "eval_throughput.json"))
    args = parser.parse_args(argv)
    seeds = parse_seeds(args.seeds)
    media = tempfile.mkdtemp(prefix="aspire-throughput-")

    # one, two, one again: the repeat shows how much the machine drifted between the modes.
    one_wall, one_rows = _run_workers([seeds], media)
    two_wall, two_rows = _run_workers([seeds[0::2], seeds[1::2]], media)
    again_wall, again_rows = _run_workers([seeds], media)
    # Engine vs raw stepping: one worker, each episode followed by the raw floor of the same seed and
    # control steps (settling steps after each reset included: the adapter counts them too).
    _, paired = _run_workers([seeds], media, raw=True)
    engine_s = sum(r[2] for r in paired)
    floor = sum(r[4] for r in paired)

    doc = {
        "benchmark": "eval_throughput",
        "task": TASK,
        "seeds": f"{seeds[0]}-{seeds[-1]}",
        "episodes": len(seeds),
        "one_worker": _mode(one_wall, one_rows),
        "two_workers": _mode(two_wall, two_rows),
        "one_worker_repeat": _mode(again_wall, again_rows),
        "raw_floor": {
            "wall_s": round(floor, 2),
            "control_steps": sum(r[3] for r in paired),
            "interleaved": "each engine episode of one worker followed by the raw floor of its seed",
            "engine_s": round(engine_s, 2),
            "engine_success_rate": sum(r[1] for r in paired) / len(paired),
        },
        "speedup_two_vs_one": round(statistics.mean([one_wall, again_wall]) / two_wall, 3),
        "one_worker_vs_raw_floor": round(engine_s / floor, 3),
        "settings": _settings(),
        "commit": provenance.commit(),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(doc, indent=2) + "\n")
    print(
        json.dumps(
            {
                k: doc[k]
                for k in (
                    "one_worker",
                    "two_workers",
                    "one_worker_repeat",
                    "raw_floor",
                    "speedup_two_vs_one",
                    "one_worker_vs_raw_floor",
                )
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
