"""Regenerates every results file under bench/results, then bench/results/SUMMARY.md (bench/summary.py) and
the README tables (bench/readme_tables.py), so no benchmark number is typed by hand.

Each job below is one bench script writing one results file. Jobs run one after another, each in its own
process (a crash of one does not stop the rest: its exit code and the tail of its stderr are recorded).
Ratios a script reports (trace and recording overhead, two workers vs one, engine vs raw stepping, sandbox
start-up contained vs plain) are measured interleaved inside that script's one invocation.

    python bench/run_all.py                  # every job, full settings, into bench/results
    python bench/run_all.py --resume         # continue a stopped run (Ctrl-C, kill): the jobs not done
    python bench/run_all.py --quick          # tiny settings into bench/results/quick (structure check)
    python bench/run_all.py --only cold_start,faults   # some jobs only
    python bench/run_all.py --only libero_pro --keep-rows   # a new run continuing the long jobs' files
    python bench/run_all.py --list           # the jobs, their arguments and (if any) their state

State: <out-dir>/run_all_state.json (run id, commit, started; per job its status pending / running / done /
failed, start and end, seconds, exit code, stderr tail). ``--resume`` continues the run recorded there
with every job not done, and refuses a state made at another commit unless ``--allow-other-commit`` (the
summary then says so). Logs: <out-dir>/logs/<job>.out and .err.

After each job the results file is checked for its provenance (commit, machine, time measured and, where
the job runs episodes, perception mode, step budget and seeds) and stamped with a ``run_all`` block
{"run_id", "job", "quick"}, so the summary can tell which files came from the same run.

Adding a benchmark (a LIBERO-Pro suite search, a transfer experiment) is one ``Job`` entry in JOBS.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import provenance  # noqa: E402

RESULTS = ROOT / "bench" / "results"
QUICK_RESULTS = RESULTS / "quick"
STATE = "run_all_state.json"
#: What every results file records.
BASE_PROVENANCE = ("commit", "machine", "measured_at")
#: What a results file of a job that runs episodes also records (anywhere in the document).
EPISODE_PROVENANCE = ("perception_mode", "step_budget", "seeds")


@dataclass(frozen=True)
class Job:
    """One bench script and the results file it writes (``<name>.json``, passed as ``--out``)."""

    name: str
    script: str
    full: tuple[str, ...]
    quick: tuple[str, ...]
    episodes: bool = True  # runs robot episodes: perception mode, step budget and seeds are recorded
    #: The keys standing for EPISODE_PROVENANCE when a script names them otherwise.
    episode_keys: tuple[str, ...] = EPISODE_PROVENANCE
    #: Extra arguments when a job is re-run after it was stopped with a partial results file (the script
    #: keeps what it already measured).
    resume_args: tuple[str, ...] = ()
    note: str = ""

    @property
    def results(self) -> str:
        return f"{self.name}.json"

    def provenance_keys(self) -> tuple[str, ...]:
        return BASE_PROVENANCE + (self.episode_keys if self.episodes else ())

    def command(self, out_dir: Path, quick: bool, resuming: bool = False) -> list[str]:
        args = list(self.quick if quick else self.full)
        if resuming and (out_dir / self.results).exists():
            args += list(self.resume_args)
        return [sys.executable, str(ROOT / "bench" / self.script), *args, "--out", str(out_dir / self.results)]


JOBS: tuple[Job, ...] = (
    Job(
        "sandbox_startup",
        "sandbox_startup.py",
        full=("--repeats", "40"),
        quick=("--repeats", "5"),
        episodes=False,
    ),
    Job(
        "trace_overhead",
        "trace_overhead.py",
        full=("--seeds", "101-110", "--repeats", "3"),
        quick=("--seeds", "101-102", "--repeats", "1"),
    ),
    Job("cold_start", "cold_start.py", full=("--repeats", "3"), quick=("--repeats", "1")),
    Job("eval_throughput", "eval_throughput.py", full=("--seeds", "1-100"), quick=("--seeds", "1-2")),
    Job(
        "reference_programs",
        "reference_programs.py",
        full=("--modes", "realistic,oracle", "--jobs", "2"),
        quick=("--tasks", "robosuite:Lift", "--limit", "2", "--modes", "realistic,oracle"),
        resume_args=("--resume",),
    ),
    Job(
        "search_results",
        "search_results.py",
        full=("--suite", "libero_object_lan", "--workers", "2", "--k", "8", "--rounds", "5"),
        quick=(
            "--tasks",
            "robosuite:Lift",
            "--workers",
            "1",
            "--k",
            "2",
            "--rounds",
            "1",
            "--debug-seeds",
            "2",
            "--heldout-seeds",
            "2",
        ),
        resume_args=("--resume",),
        episode_keys=("perception_mode", "step_budget", "debug_seeds", "heldout_seeds"),
    ),
    Job(
        "libero_pro",
        "libero_pro.py",
        full=("--families", "goal,object,spatial,long", "--per-suite", "2", "--workers", "2")
        + ("--k", "8", "--rounds", "5"),
        quick=(
            "--families",
            "goal",
            "--suites",
            "libero_goal,libero_goal_swap",
            "--per-suite",
            "1",
            "--workers",
            "1",
            "--k",
            "1",
            "--rounds",
            "1",
            "--debug-seeds",
            "1",
            "--heldout-seeds",
            "1",
        ),
        resume_args=("--resume",),
        note="40 searches (2 tasks x 20 suites): hours of CPU; stop and --resume at will",
    ),
    Job(
        "transfer",
        "transfer.py",
        full=("--sources", "8", "--sizes", "0,1,2,4,8", "--suites", "libero_10", "--workers", "2")
        + ("--k", "8", "--rounds", "5"),
        quick=("--sources", "1", "--sizes", "0,1", "--targets", "1", "--workers", "1", "--k", "1", "--rounds", "1")
        + ("--debug-seeds", "1", "--heldout-seeds", "1"),
        resume_args=("--resume",),
        episode_keys=("perception_mode", "step_budget", "debug_seeds", "heldout_seeds"),
        note="8 LIBERO-90 source searches, then zero-shot LIBERO-10 at 5 library sizes: many hours; --resume at will",
    ),
    Job(
        "skill_retrieval",
        "skill_retrieval.py",
        full=("--skills", "100000", "--queries", "300", "--busy-workers", "2"),
        quick=("--skills", "200", "--queries", "20", "--busy-workers", "2"),
        episodes=False,
    ),
    Job(
        "live_latency",
        "live_latency.py",
        full=("--seeds", "101-103", "--loops", "40", "--viewers", "50"),
        quick=("--seeds", "101", "--loops", "5", "--viewers", "5"),
        episodes=False,  # delivery of calls, not success: seeds are in its settings
    ),
    Job(
        "faults",
        "faults.py",
        full=("--trials", "3", "--faults", "4"),
        quick=("--trials", "1", "--faults", "1", "--runs", "1", "--seeds", "2", "--window", "8", "--timeout", "300"),
        episodes=False,  # robustness of the run machinery: lost and duplicated episodes
    ),
)


def find_key(doc, key: str):
    """The first value stored under ``key`` anywhere in ``doc`` (dicts and lists searched depth first)."""
    if isinstance(doc, dict):
        if key in doc and doc[key] not in (None, "", {}):
            return doc[key]
        values = doc.values()
    elif isinstance(doc, list):
        values = doc
    else:
        return None
    for value in values:
        found = find_key(value, key)
        if found is not None:
            return found
    return None


def missing_provenance(doc: dict, keys) -> list[str]:
    """The provenance keys ``doc`` does not record (top level for commit/machine/measured_at)."""
    missing = [k for k in keys if k in BASE_PROVENANCE and doc.get(k) in (None, "", {})]
    return missing + [k for k in keys if k not in BASE_PROVENANCE and find_key(doc, k) is None]


def head_commit() -> str:
    return provenance.commit().removesuffix("+dirty")


def _now() -> str:
    return provenance.measured_at()


class Runner:
    """Runs ``jobs`` in order into ``out_dir``, keeping ``out_dir/run_all_state.json`` current."""

    def __init__(self, jobs, out_dir: Path, quick: bool, job_timeout: float | None = None, log=print):
        self.jobs = list(jobs)
        self.out_dir = Path(out_dir)
        self.quick = quick
        self.job_timeout = job_timeout
        self.log = log
        self.state_path = self.out_dir / STATE
        self.state: dict = {}

    # -- state ---------------------------------------------------------------------------------
    def load(self) -> dict | None:
        return json.loads(self.state_path.read_text()) if self.state_path.exists() else None

    def save(self) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.state, indent=2) + "\n")
        os.replace(tmp, self.state_path)

    def start_new(self) -> None:
        self.state = {
            "run_id": time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + uuid.uuid4().hex[:6],
            "commit": provenance.commit(),
            "quick": self.quick,
            "started": _now(),
            "resumed": [],
            "jobs": {job.name: {"status": "pending"} for job in self.jobs},
        }
        self.save()

    def resume(self, allow_other_commit: bool) -> None:
        state = self.load()
        if state is None:
            raise SystemExit(f"nothing to resume: no {self.state_path}")
        if bool(state.get("quick")) != self.quick:
            raise SystemExit(
                f"{self.state_path} is a {'quick' if state.get('quick') else 'full'} run; pass the same mode"
            )
        here = head_commit()
        made_at = state.get("commit", "").removesuffix("+dirty")
        if made_at != here and not allow_other_commit:
            raise SystemExit(
                f"{self.state_path} was made at commit {made_at[:12]}, this checkout is {here[:12]}: its results "
                "would mix commits. Start a new run, or pass --allow-other-commit (the summary will say so)."
            )
        state.setdefault("resumed", []).append({"at": _now(), "commit": provenance.commit()})
        for job in self.jobs:  # jobs added to JOBS since the state was made
            state["jobs"].setdefault(job.name, {"status": "pending"})
        self.state = state
        self.save()

    # -- running -------------------------------------------------------------------------------
    def pending(self, only=None) -> list[Job]:
        names = set(only) if only else None
        return [
            job
            for job in self.jobs
            if job.name in self.state["jobs"]
            and self.state["jobs"][job.name].get("status") != "done"
            and (names is None or job.name in names)
        ]

    def run(self, only=None) -> int:
        """Runs the jobs not done; returns how many failed. Ctrl-C stops the current job (it stays
        not done, for --resume) and re-raises."""
        failed = 0
        for job in self.pending(only):
            if not self.run_job(job):
                failed += 1
        return failed

    def run_job(self, job: Job) -> bool:
        entry = self.state["jobs"][job.name]
        resuming = entry.get("status") in ("running", "failed", "stopped") or bool(self.state.get("keep_rows"))
        cmd = job.command(self.out_dir, self.quick, resuming=resuming)
        logs = self.out_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        entry.clear()
        entry.update(
            {
                "status": "running",
                "started": _now(),
                "command": [Path(c).name if i == 0 else c for i, c in enumerate(cmd)],
            }
        )
        self.save()
        self.log(f"[run_all] {job.name}: {' '.join(cmd[1:])}")
        started = time.monotonic()
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT)}
        with (logs / f"{job.name}.out").open("w") as out, (logs / f"{job.name}.err").open("w") as err:
            proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=err, start_new_session=True)
            try:
                code = proc.wait(timeout=self.job_timeout)
            except subprocess.TimeoutExpired:
                _stop(proc)
                code = "timeout"
            except BaseException:  # Ctrl-C, or run_all itself killed by SIGTERM: stop the job with us
                _stop(proc)
                entry.update({"status": "stopped", "finished": _now(), "seconds": round(time.monotonic() - started, 1)})
                self.save()
                raise
        entry.update({"finished": _now(), "seconds": round(time.monotonic() - started, 1), "exit_code": code})
        ok = code == 0 and self.stamp(job, entry)
        entry["status"] = "done" if ok else "failed"
        if not ok:
            tail = (logs / f"{job.name}.err").read_text(errors="replace")[-2000:]
            entry["stderr_tail"] = tail
        self.save()
        self.log(f"[run_all] {job.name}: {entry['status']} in {entry['seconds']} s (exit {code})")
        return ok

    def stamp(self, job: Job, entry: dict) -> bool:
        """Checks the results file's provenance and stamps it with this run; False if there is no file."""
        path = self.out_dir / job.results
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            entry["error"] = f"no readable results file {path.name}: {exc}"
            return False
        missing = missing_provenance(doc, job.provenance_keys())
        if missing:
            entry["provenance_missing"] = missing
            self.log(f"[run_all] {job.name}: results file does not record {', '.join(missing)}")
        doc["run_all"] = {"run_id": self.state["run_id"], "job": job.name, "quick": self.quick}
        path.write_text(json.dumps(doc, indent=2) + "\n")
        return True


def _stop(proc: subprocess.Popen) -> None:
    """SIGINT the job's process group (its own children included), as Ctrl-C would; SIGTERM, then SIGKILL,
    if it has not ended after a grace long enough for a script to stop what it started (faults.py's
    instances take up to 40 s)."""
    for sig, wait in ((signal.SIGINT, 90), (signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        if proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            pass


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def finish(out_dir: Path, log=print) -> None:
    """SUMMARY.md from the results; the README tables too when the results are the committed ones."""
    from bench import summary

    summary.write(out_dir)
    log(f"[run_all] wrote {out_dir / 'SUMMARY.md'}")
    if out_dir.resolve() == RESULTS.resolve():
        from bench import readme_tables

        readme = readme_tables.README.read_text()
        fresh = readme_tables.render(readme)
        if fresh != readme:
            readme_tables.README.write_text(fresh)
            log("[run_all] re-rendered the README tables")


def main(argv=None, jobs=JOBS) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny settings: the structure of every file, fast")
    parser.add_argument("--out-dir", help="default: bench/results, or bench/results/quick with --quick")
    parser.add_argument("--resume", action="store_true", help="continue the run in <out-dir>: jobs not done")
    parser.add_argument("--allow-other-commit", action="store_true", help="resume a run started at another commit")
    parser.add_argument("--only", help="comma-separated job names")
    parser.add_argument("--list", action="store_true", help="list the jobs (and their state) and exit")
    parser.add_argument("--job-timeout", type=float, help="seconds before a job is stopped and marked failed")
    parser.add_argument("--no-summary", action="store_true", help="do not write SUMMARY.md at the end")
    parser.add_argument(
        "--keep-rows",
        action="store_true",
        help="a new run whose resumable jobs continue their existing results files (rows measured earlier keep "
        "their own commit; the summary flags them) instead of measuring every row again",
    )
    args = parser.parse_args(argv)

    out_dir = Path(args.out_dir) if args.out_dir else (QUICK_RESULTS if args.quick else RESULTS)
    names = [n for n in (args.only or "").split(",") if n]
    known = {job.name for job in jobs}
    unknown = [n for n in names if n not in known]
    if unknown:
        parser.error(f"unknown job(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    runner = Runner(jobs, out_dir, args.quick, args.job_timeout)

    if args.list:
        state = (runner.load() or {}).get("jobs", {})
        for job in jobs:
            status = state.get(job.name, {}).get("status", "-")
            print(f"{job.name:20} {status:8} {job.script}")
            print(f"{'':20} full:  {' '.join(job.full) or '(defaults)'}")
            print(f"{'':20} quick: {' '.join(job.quick) or '(defaults)'}")
        return 0

    if args.resume:
        runner.resume(args.allow_other_commit)
    else:
        runner.jobs = [job for job in jobs if not names or job.name in names]
        runner.start_new()
        if args.keep_rows:
            runner.state["keep_rows"] = True
            runner.save()
    print(f"[run_all] run {runner.state['run_id']} into {out_dir} ({'quick' if args.quick else 'full'})", flush=True)
    try:
        failed = runner.run(names or None)
    except KeyboardInterrupt:
        print(f"[run_all] stopped; continue with: python bench/run_all.py --resume{' --quick' if args.quick else ''}")
        return 130
    if not args.no_summary:
        finish(out_dir)
    return 1 if failed else 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _interrupt)  # `kill` stops like Ctrl-C: the job stopped, the state saved
    sys.exit(main())
