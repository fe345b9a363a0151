"""bench/run_all.py (jobs, state, resume) and bench/summary.py (SUMMARY.md from the results files).

The fast tests run fake jobs (tiny Python scripts writing a results file) and the summary on the committed
results; the slow one runs ``bench/run_all.py --quick`` and compares each file's structure with the
committed full file's.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench import run_all, summary  # noqa: E402

FAKE = textwrap.dedent(
    """
    import json, os, signal, sys, time
    from pathlib import Path
    name, out = sys.argv[1], Path(sys.argv[sys.argv.index("--out") + 1])
    runs = out.parent / f"{name}.runs"
    runs.write_text(runs.read_text() + "x" if runs.exists() else "x")
    if name == "stopper" and not (out.parent / "no-stop").exists():
        os.kill(os.getppid(), signal.SIGINT)  # as if Ctrl-C reached run_all while this job runs
        time.sleep(60)
    if name == "broken":
        print("something went wrong", file=sys.stderr)
        sys.exit(3)
    doc = {"benchmark": name, "commit": os.environ.get("FAKE_COMMIT", "abc"), "machine": {"cpus": 2},
           "perception_mode": "realistic", "step_budget": 500, "seeds": "1-2"}
    if name != "sloppy":
        doc["measured_at"] = "2026-01-01T00:00:00Z"
    out.write_text(json.dumps(doc, indent=2) + "\\n")
    """
)


@pytest.fixture
def fake_jobs(tmp_path):
    script = tmp_path / "fake.py"
    script.write_text(FAKE)
    return tuple(run_all.Job(name, str(script), full=(name,), quick=(name,)) for name in ("first", "stopper", "broken"))


def _state(out):
    return json.loads((out / run_all.STATE).read_text())


def test_the_committed_summary_is_what_the_results_give():
    """README links SUMMARY.md: its numbers are the generated summary's, never typed by hand."""
    committed = (run_all.RESULTS / "SUMMARY.md").read_text()
    assert committed == summary.render(run_all.RESULTS), "run: python bench/summary.py"


def test_every_job_writes_its_own_file_and_has_quick_settings():
    names = [job.name for job in run_all.JOBS]
    assert len(names) == len(set(names))
    for job in run_all.JOBS:
        assert (ROOT / "bench" / job.script).exists(), job.script
        assert job.quick != job.full, job.name
        assert "--out" not in job.full + job.quick  # run_all passes --out itself


def test_the_provenance_table_flags_other_commits_and_runs(tmp_path):
    base = {"machine": {"cpus": 2}, "measured_at": "2026-01-01T00:00:00Z", "seeds": "1"}
    docs = {
        "trace_overhead": {"commit": "a" * 40, "run_all": {"run_id": "r1", "job": "trace_overhead", "quick": True}},
        "cold_start": {"commit": "b" * 40 + "+dirty", "run_all": {"run_id": "r1", "job": "cold_start", "quick": True}},
        "sandbox_startup": {"commit": "a" * 40, "run_all": {"run_id": "r0", "job": "sandbox_startup", "quick": True}},
        "faults": {},
        "reference_programs": {
            "commit": "a" * 40,
            "run_all": {"run_id": "r1", "job": "reference_programs", "quick": True},
            "tasks": [{"task": "t1", "commit": "a" * 40}, {"task": "t2", "commit": "c" * 40}],
            "not_yet_run": ["t3"],
        },
    }
    for name, extra in docs.items():
        (tmp_path / f"{name}.json").write_text(json.dumps({**base, **extra}))
    (tmp_path / run_all.STATE).write_text(json.dumps({"run_id": "r1", "commit": "a" * 40, "quick": True, "jobs": {}}))
    text = summary.render(tmp_path)
    rows = {line.split(" | ")[0].strip("| "): line for line in text.splitlines() if line.startswith("| ")}
    assert "other commit" not in rows["trace_overhead.json"] and "other run" not in rows["trace_overhead.json"]
    assert "**other commit**" in rows["cold_start.json"] and "dirty work tree" in rows["cold_start.json"]
    assert "**other run**" in rows["sandbox_startup.json"]
    assert "commit not recorded" in rows["faults.json"] and "not from run_all" in rows["faults.json"]
    assert "**rows from 1 other commit(s)**" in rows["reference_programs.json"]
    assert "**partial: 1 selected task(s) not run yet**" in rows["reference_programs.json"]
    assert "rows from" not in rows["trace_overhead.json"] and "partial" not in rows["trace_overhead.json"]
    # headline numbers it cannot read are said to be unreadable, missing files are "not measured yet"
    assert "`eval_throughput.json` (`bench/eval_throughput.py`): not measured yet" in text
    assert "headline numbers unreadable" in text
    assert "**the ASPIRE paper's published numbers**" in text


def test_a_stopped_run_resumes_with_the_jobs_not_done(tmp_path, fake_jobs):
    out = tmp_path / "out"
    (out).mkdir()
    # first: done; stopper: Ctrl-C reaches run_all while it runs; broken: never started
    assert run_all.main(["--out-dir", str(out)], jobs=fake_jobs) == 130
    state = _state(out)
    assert [state["jobs"][n]["status"] for n in ("first", "stopper", "broken")] == ["done", "stopped", "pending"]
    first = json.loads((out / "first.json").read_text())
    assert first["run_all"] == {"run_id": state["run_id"], "job": "first", "quick": False}

    (out / "no-stop").write_text("")
    assert run_all.main(["--out-dir", str(out), "--resume"], jobs=fake_jobs) == 1  # broken fails
    state = _state(out)
    assert (out / "first.runs").read_text() == "x"  # not run again
    assert (out / "stopper.runs").read_text() == "xx"
    assert state["jobs"]["stopper"]["status"] == "done" and state["jobs"]["stopper"]["exit_code"] == 0
    broken = state["jobs"]["broken"]
    assert broken["status"] == "failed" and broken["exit_code"] == 3
    assert "something went wrong" in broken["stderr_tail"]
    assert json.loads((out / "stopper.json").read_text())["run_all"]["run_id"] == state["run_id"]
    assert len(state["resumed"]) == 1
    text = (out / "SUMMARY.md").read_text()
    assert "Job `broken`: **failed** (exit code 3)." in text

    # --resume again runs only the failed job; --only limits a new run
    assert run_all.main(["--out-dir", str(out), "--resume"], jobs=fake_jobs) == 1
    assert (out / "first.runs").read_text() == "x" and (out / "broken.runs").read_text() == "xx"
    assert run_all.main(["--out-dir", str(out), "--only", "first"], jobs=fake_jobs) == 0
    assert list(_state(out)["jobs"]) == ["first"] and (out / "first.runs").read_text() == "xx"


def test_resume_refuses_a_state_from_another_commit(tmp_path, fake_jobs):
    out = tmp_path / "out"
    out.mkdir()
    (out / "no-stop").write_text("")
    jobs = fake_jobs[:2]
    assert run_all.main(["--out-dir", str(out), "--only", "first"], jobs=jobs) == 0
    state = _state(out)
    state["commit"] = "0" * 40
    state["jobs"]["stopper"] = {"status": "pending"}
    (out / run_all.STATE).write_text(json.dumps(state))
    with pytest.raises(SystemExit, match="another commit|--allow-other-commit"):
        run_all.main(["--out-dir", str(out), "--resume"], jobs=jobs)
    assert run_all.main(["--out-dir", str(out), "--resume", "--allow-other-commit"], jobs=jobs) == 0
    text = (out / "SUMMARY.md").read_text()
    assert "another commit than the run started at (--allow-other-commit)" in text


def test_missing_provenance_is_recorded(tmp_path):
    script = tmp_path / "fake.py"
    script.write_text(FAKE)
    out = tmp_path / "out"
    assert run_all.main(["--out-dir", str(out)], jobs=(run_all.Job("sloppy", str(script), ("sloppy",), ()),)) == 0
    assert _state(out)["jobs"]["sloppy"]["provenance_missing"] == ["measured_at"]
    assert "does not record measured_at" in (out / "SUMMARY.md").read_text()


#: Jobs the slow test runs. The whole --quick run takes about 12 minutes on the shared 2-core machine
#: (cold_start 81 s and eval_throughput 130-200 s start fresh worker processes; live_latency starts a
#: stack and a browser; faults starts `up` and waits for its runs), so the test takes the cheap ones
#: (133 s together here); `python bench/run_all.py --quick` runs them all.
QUICK_JOBS = ["sandbox_startup", "trace_overhead", "reference_programs", "search_results", "skill_retrieval"]


@pytest.mark.slow
def test_quick_run_reproduces_the_structure_of_every_results_file(tmp_path):
    out = tmp_path / "quick"
    env = {**os.environ, "MUJOCO_GL": "osmesa", "PYOPENGL_PLATFORM": "osmesa"}
    done = subprocess.run(
        [sys.executable, "bench/run_all.py", "--quick", "--out-dir", str(out), "--only", ",".join(QUICK_JOBS)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    state = _state(out)
    assert done.returncode == 0, (
        done.stdout[-3000:],
        {n: j for n, j in state["jobs"].items() if j["status"] != "done"},
    )
    for name in QUICK_JOBS:
        quick = json.loads((out / f"{name}.json").read_text())
        assert quick["run_all"] == {"run_id": state["run_id"], "job": name, "quick": True}
        assert not state["jobs"][name].get("provenance_missing"), name
        committed = run_all.RESULTS / f"{name}.json"
        if committed.exists():
            missing = set(json.loads(committed.read_text())) - set(quick) - {"run_all"}
            assert not missing, f"{name}: the quick file lacks {sorted(missing)}"
    assert (out / "SUMMARY.md").exists()


def test_repair_families_are_counted_on_tasks_other_than_their_source(tmp_path):
    """A repair tried on its own source task is left out of its counts; elsewhere its candidates, the
    tasks it raised and the seeds it flipped and broke are counted; a family never tried is named."""
    tried = {
        "rule": "finger_clearance",
        "parent_debug": 0.5,
        "debug": 0.75,
        "seeds_flipped": [3, 4],
        "seeds_broken": [9],
    }
    search = {
        "commit": "a" * 40,
        "repair_sources": {"finger_clearance": ["robosuite:Stack"], "reach": ["not from one task"]},
        "tasks": [
            {"task": "robosuite:Stack", "suite": "robosuite", "repairs_tried": [dict(tried, seeds_flipped=[1] * 7)]},
            {
                "task": "libero:libero_object/x",
                "suite": "libero_object",
                "repairs_tried": [tried, dict(tried, debug=0.5)],
            },
            {"task": "libero:libero_object/y", "suite": "libero_object", "repairs_tried": []},
        ],
    }
    (tmp_path / "search_results.json").write_text(json.dumps(search))
    text = summary.render(tmp_path)
    row = next(line for line in text.splitlines() if line.startswith("| finger_clearance |"))
    assert row == "| finger_clearance | robosuite:Stack | 1 | 2 | **1** | 4 | 2 |"
    assert "Not tried on any task yet (their failure signature never appeared): reach." in text


def test_a_runs_own_results_do_not_make_the_commit_dirty(tmp_path, monkeypatch):
    """One job's results file is not a change to the code the next job measures; any other file is."""
    from bench import provenance

    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    (tmp_path / "bench" / "results").mkdir(parents=True)
    (tmp_path / "bench" / "results" / "x.json").write_text("{}")
    (tmp_path / "code.py").write_text("a = 1\n")
    (tmp_path / "README.md").write_text("tables\n")
    git("init", "-q")
    git("-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-q", "--allow-empty", "-m", "empty")
    git("add", "-A")
    git("-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-q", "-m", "files")
    monkeypatch.setattr(provenance, "ROOT", tmp_path)
    assert not provenance.commit().endswith("+dirty")
    (tmp_path / "bench" / "results" / "x.json").write_text('{"measured": 1}')
    (tmp_path / "README.md").write_text("tables re-rendered by run_all\n")
    assert not provenance.commit().endswith("+dirty")
    (tmp_path / "code.py").write_text("a = 2\n")
    assert provenance.commit().endswith("+dirty")


def test_keep_rows_makes_a_new_run_continue_the_resumable_files(tmp_path):
    """--keep-rows: a new run passes a resumable job its resume arguments when its file exists."""
    script = tmp_path / "fake.py"
    script.write_text(
        FAKE.replace("runs.write_text(", '(out.parent / "argv").write_text(" ".join(sys.argv)); runs.write_text(')
    )
    jobs = (run_all.Job("first", str(script), full=("first",), quick=("first",), resume_args=("--resume",)),)
    out = tmp_path / "out"
    out.mkdir()
    assert run_all.main(["--out-dir", str(out), "--no-summary"], jobs=jobs) == 0
    assert "--resume" not in (out / "argv").read_text()  # a new run measures afresh
    assert run_all.main(["--out-dir", str(out), "--keep-rows", "--no-summary"], jobs=jobs) == 0
    assert "first --resume --out" in (out / "argv").read_text() and _state(out)["keep_rows"] is True
    assert run_all.main(["--out-dir", str(out), "--no-summary"], jobs=jobs) == 0
    assert "--resume" not in (out / "argv").read_text()
