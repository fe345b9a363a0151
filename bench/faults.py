"""Fault injection: runs and experiments on a real ``up`` instance while its processes are killed.

Each trial starts ``manage.py up`` in a fresh directory (SQLite, its private Redis, 2 worker processes),
launches program runs (robosuite:Lift, the catalog's starter program) and one offline-agent search
experiment, then, at random moments drawn from a seeded generator, injects faults (each kind once per
four faults, in a random order):

  worker      SIGKILL the Celery worker's main process (``up`` restarts it)
  redis       SIGKILL the private Redis (``up`` restarts it; its queue may be lost)
  up-kill     SIGKILL ``up`` and every process it started (a power cut), then start ``up`` again
  up-stop     SIGINT ``up`` (graceful stop with a short grace), then start ``up`` again

After the last fault it waits until every run has reached a final state, then counts from the
instance's own database (read-only):

  expected    (candidate, split, seed) triples the run must have: every seed of a program run; every
              debug seed of every search candidate and every held-out seed of each actor's best program
  lost        expected triples with no ended episode (missing, RUNNING or CANCELLED)
  duplicated  episode rows beyond one per triple, plus ended episodes that no triple asked for
  retaken     episodes re-run after their first owner died (``attempt`` > 1): not duplicates, the
              partial first attempt was discarded
  not_ok      episodes whose program did not run to its end (status other than OK), whatever the cause

    python bench/faults.py [--trials 3] [--faults 4] [--seed 7] [--out bench/results/faults.json]

Writes the JSON with the commit, settings, every fault injected (kind, seconds after the launch) and the
counts per run. Target: every run ends FINISHED with 0 lost and 0 duplicated episodes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import signal
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from testing.instance import Instance  # noqa: E402

FAULTS = ("worker", "redis", "up-kill", "up-stop")
TASK = "robosuite:Lift"


def _ended_statuses() -> set[str]:
    """Episode statuses that mean the episode ran to an end (worker.robot.status.EpisodeStatus)."""
    from worker.robot.status import EpisodeStatus

    return {s.value for s in EpisodeStatus if s.name not in ("RUNNING", "CANCELLED")}


def _commit() -> str:
    """The checked-out commit, "+dirty" when tracked files differ from it (bench/provenance.py)."""
    from bench import provenance

    return provenance.commit()


def inject(inst: Instance, kind: str, grace: float) -> str:
    """Inject one fault and bring the instance back; returns what was done, for the record."""
    if kind == "worker":
        pid = inst.kill("worker")
        new = inst.wait_restarted("worker", pid, timeout=120)
        return f"worker {pid} killed, up restarted it as {new}"
    if kind == "redis":
        pid = inst.kill("redis")
        new = inst.wait_restarted("redis", pid, timeout=120)
        return f"redis {pid} killed, up restarted it as {new}"
    if kind == "up-kill":
        pids = inst.pids()
        inst.proc.send_signal(signal.SIGKILL)
        inst.proc.wait(30)
        inst.close()  # the power cut takes every child with it
        inst.start()
        return f"up {pids['up']} and its children killed; up started again"
    if kind == "up-stop":
        code, took = inst.stop(signal.SIGINT, timeout=grace + 60)
        inst.close()
        inst.start()
        return f"up stopped by SIGINT (exit {code} after {took:.1f} s); up started again"
    raise ValueError(kind)


def count(db: Path, run_ids: list[int]) -> list[dict]:
    """Expected, lost, duplicated and retaken episodes of each run, from the instance's database."""
    ended = _ended_statuses()
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    out = []
    try:
        for run_id in run_ids:
            kind, status, seeds = con.execute(
                "SELECT kind, status, seeds FROM runs_run WHERE id = ?", (run_id,)
            ).fetchone()
            expected: set[tuple] = set()
            if kind == "program":
                for (cand,) in con.execute("SELECT id FROM runs_candidate WHERE run_id = ?", (run_id,)):
                    expected |= {(cand, s) for s in json.loads(seeds)}
            else:
                for actor_id, settings, best_id, task_id in con.execute(
                    "SELECT id, settings, best_id, task_id FROM runs_actor WHERE run_id = ?", (run_id,)
                ):
                    cfg = json.loads(settings)
                    debug_seeds, heldout_seeds = cfg.get("debug_seeds"), cfg.get("heldout_seeds")
                    if not debug_seeds or not heldout_seeds:
                        task_debug, task_heldout = con.execute(
                            "SELECT debug_seeds, heldout_seeds FROM runs_task WHERE id = ?", (task_id,)
                        ).fetchone()
                        debug_seeds = debug_seeds or json.loads(task_debug)
                        heldout_seeds = heldout_seeds or json.loads(task_heldout)
                    for (cand,) in con.execute("SELECT id FROM runs_candidate WHERE actor_id = ?", (actor_id,)):
                        expected |= {(cand, "debug", s) for s in debug_seeds}
                    if best_id is not None:
                        expected |= {(best_id, "heldout", s) for s in heldout_seeds}
            rows = con.execute(
                "SELECT candidate_id, split, seed, status, attempt FROM runs_episode WHERE run_id = ?", (run_id,)
            ).fetchall()
            seen: dict[tuple, int] = {}
            done: set[tuple] = set()
            retaken = not_ok = 0
            for cand, split, seed, ep_status, attempt in rows:
                not_ok += ep_status != "OK"
                key = (cand, seed) if kind == "program" else (cand, split, seed)
                seen[key] = seen.get(key, 0) + 1
                retaken += attempt > 1
                if ep_status in ended:
                    done.add(key)
            duplicated = sum(n - 1 for n in seen.values()) + len(done - expected)
            out.append(
                {
                    "run": run_id,
                    "kind": kind,
                    "status": status,
                    "expected": len(expected),
                    "ended": len(done & expected),
                    "lost": len(expected - done),
                    "duplicated": duplicated,
                    "retaken": retaken,
                    "not_ok": not_ok,
                }
            )
    finally:
        con.close()
    return out


def trial(index: int, rng: random.Random, args) -> dict:
    var_dir = Path(tempfile.mkdtemp(prefix=f"aspire-faults-{index}-"))
    faults = []
    with Instance(var_dir, workers=args.workers, grace=args.grace) as inst:
        inst.start()
        began = time.monotonic()
        run_ids = []
        for _ in range(args.runs):
            seeds = rng.sample(range(0, 1000), args.seeds)
            run_ids.append(inst.launch_run(TASK, seeds=seeds)["id"])
        status, body = inst.request(
            "POST",
            "/api/experiments/",
            {
                "kind": "search",
                "tasks": [TASK],
                "agent": "offline",
                "candidates_per_round": 2,
                "max_rounds": 2,
                "debug_seeds": [11, 12, 13],
                "heldout_seeds": [21, 22, 23],
            },
        )
        if status != 201:
            raise SystemExit(f"experiment launch answered {status}: {body}")
        run_ids.append(body["id"])
        moments = sorted(rng.uniform(3, args.window) for _ in range(args.faults))
        # Every kind of fault in every trial (when --faults allows), in a random order.
        kinds = [FAULTS[i % len(FAULTS)] for i in range(args.faults)]
        rng.shuffle(kinds)
        for at, kind in zip(moments, kinds):
            wait = at - (time.monotonic() - began)
            if wait > 0:
                time.sleep(wait)
            faults.append(
                {"kind": kind, "at_s": round(time.monotonic() - began, 1), "done": inject(inst, kind, args.grace)}
            )
        finals = {rid: inst.wait_run(rid, timeout=args.timeout)["status"] for rid in run_ids}
        counts = count(var_dir / "db.sqlite3", run_ids)
        elapsed = time.monotonic() - began
    for row in counts:
        row["final"] = finals[row["run"]]
    return {"trial": index, "var_dir": str(var_dir), "seconds": round(elapsed, 1), "faults": faults, "runs": counts}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--faults", type=int, default=4, help="faults per trial (the kinds taken in turn)")
    parser.add_argument("--runs", type=int, default=2, help="program runs per trial (plus one experiment)")
    parser.add_argument("--seeds", type=int, default=5, help="seeds per program run")
    parser.add_argument("--window", type=float, default=60, help="faults fall in [3, window] s after launch")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--grace", type=float, default=10, help="up --grace for graceful stops")
    parser.add_argument("--timeout", type=float, default=900, help="seconds to wait for each run to end")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "faults.json"))
    args = parser.parse_args()

    rng = random.Random(args.seed)
    trials = []
    for i in range(args.trials):
        result = trial(i, rng, args)
        trials.append(result)
        print(json.dumps({k: result[k] for k in ("trial", "seconds", "faults", "runs")}), flush=True)
    runs = [r for t in trials for r in t["runs"]]
    summary = {
        "faults_injected": sum(len(t["faults"]) for t in trials),
        "faults_by_kind": {k: sum(f["kind"] == k for t in trials for f in t["faults"]) for k in FAULTS},
        "runs": len(runs),
        "runs_finished": sum(r["final"] == "FINISHED" for r in runs),
        "runs_not_final": sum(r["final"] not in ("FINISHED", "FAILED", "CANCELLED") for r in runs),
        "episodes_expected": sum(r["expected"] for r in runs),
        "episodes_lost": sum(r["lost"] for r in runs),
        "episodes_duplicated": sum(r["duplicated"] for r in runs),
        "episodes_retaken": sum(r["retaken"] for r in runs),
        "episodes_not_ok": sum(r["not_ok"] for r in runs),
        "target": {"episodes_lost": 0, "episodes_duplicated": 0},
    }
    doc = {
        "benchmark": "faults",
        "commit": _commit(),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "settings": {k: v for k, v in vars(args).items() if k != "out"} | {"task": TASK, "faults": list(FAULTS)},
        "summary": summary,
        "trials": trials,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(doc, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
