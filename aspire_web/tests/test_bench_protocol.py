"""bench/protocol.py: the arguments, protocol block and resume rule the three search benchmarks share."""

import argparse
import json

import pytest

from bench import libero_pro, search_results, transfer
from bench.protocol import add_protocol_args, load_for_resume, protocol, write_results


def _parse(argv, tmp_path):
    parser = argparse.ArgumentParser()
    add_protocol_args(parser, tmp_path / "out.json")
    return parser.parse_args(argv)


def test_defaults_are_the_published_protocol_and_any_limit_is_not(tmp_path):
    block = protocol(_parse([], tmp_path))
    assert (block["k"], block["max_rounds"], block["survivors"]) == (8, 5, 3)
    assert block["published_protocol"] is True
    for argv in (["--k", "2"], ["--rounds", "1"], ["--debug-seeds", "1"], ["--heldout-seeds", "3"]):
        assert protocol(_parse(argv, tmp_path))["published_protocol"] is False, argv
    assert protocol(_parse([], tmp_path), zero_shot="x")["zero_shot"] == "x"


@pytest.mark.parametrize("module", [search_results, libero_pro, transfer])
def test_every_search_benchmark_takes_the_shared_arguments(module, capsys):
    with pytest.raises(SystemExit):
        module.main(["--help"])
    text = capsys.readouterr().out
    for flag in ("--workers", "--k", "--rounds", "--resume", "--debug-seeds", "--heldout-seeds", "--out"):
        assert flag in text, (module.__name__, flag)


def test_resume_refuses_other_settings_and_unreadable_files(tmp_path):
    out = tmp_path / "r.json"
    settings = protocol(_parse([], tmp_path))
    assert load_for_resume(out, True, settings) == {}  # nothing to resume
    write_results(out, {"protocol": settings, "tasks": [{"task": "a"}]})
    assert load_for_resume(out, False, settings) == {}  # not asked to resume
    assert load_for_resume(out, True, settings)["tasks"] == [{"task": "a"}]
    with pytest.raises(SystemExit, match="protocol"):
        load_for_resume(out, True, protocol(_parse(["--k", "2"], tmp_path)))
    out.write_text("{half a file")
    with pytest.raises(SystemExit, match="cannot be read"):
        load_for_resume(out, True, settings)
    out.write_text(json.dumps([1, 2]))
    with pytest.raises(SystemExit, match="results object"):
        load_for_resume(out, True, settings)


def test_writing_leaves_no_temporary_file(tmp_path):
    out = tmp_path / "deep" / "r.json"
    write_results(out, {"a": 1})
    write_results(out, {"a": 2}, indent=1)
    assert json.loads(out.read_text()) == {"a": 2}
    assert [p.name for p in out.parent.iterdir()] == ["r.json"]


def test_an_unknown_task_is_a_clear_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as stopped:
        search_results.main(["--tasks", "robosuite:NoSuchTask", "--out", str(tmp_path / "r.json")])
    assert stopped.value.code == 2 and "unknown task 'robosuite:NoSuchTask'" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="--targets: unknown task"):
        transfer.target_tasks(["libero_10"], "libero:libero_10/no_such_task")
    assert not (tmp_path / "r.json").exists()


def test_a_stopped_search_run_says_what_it_lacks_and_resumes_only_that(tmp_path, monkeypatch):
    out = tmp_path / "search.json"
    ran = []

    def fake_search(spec, k, rounds, workers, debug_limit, heldout_limit, commit, **kw):
        if len(ran) == 1 and not kw.get("again"):
            raise KeyboardInterrupt  # the run is stopped during its second task
        ran.append(spec.key)
        return {
            "task": spec.key,
            "first_candidate_debug": 0.5,
            "final_debug": 1.0,
            "heldout": 0.9,
            "rounds_used": 1,
            "stop": "target",
            "wall_s": 1.0,
        }

    monkeypatch.setattr(search_results, "search_task", fake_search)
    argv = ["--tasks", "robosuite:Lift,robosuite:Stack", "--k", "2", "--rounds", "1", "--out", str(out)]
    with pytest.raises(KeyboardInterrupt):
        search_results.main(argv)
    doc = json.loads(out.read_text())
    assert [r["task"] for r in doc["tasks"]] == ["robosuite:Lift"] and doc["not_yet_run"] == ["robosuite:Stack"]
    monkeypatch.setattr(search_results, "search_task", lambda *a, **kw: fake_search(*a, again=True))
    search_results.main(argv + ["--resume"])
    doc = json.loads(out.read_text())
    assert ran == ["robosuite:Lift", "robosuite:Stack"] and doc["not_yet_run"] == []
    assert [r["task"] for r in doc["tasks"]] == ["robosuite:Lift", "robosuite:Stack"]
    with pytest.raises(SystemExit, match="protocol"):  # other settings never mix with these rows
        search_results.main(argv[:-4] + ["--k", "3", "--rounds", "1", "--out", str(out), "--resume"])


def test_reference_programs_keep_each_tasks_rows_as_it_finishes_and_resume(tmp_path, monkeypatch):
    from bench import reference_programs as ref

    out = tmp_path / "ref.json"
    ran = []

    def fake_evaluate(spec, limit, modes, only):
        if len(ran) == 1 and not getattr(fake_evaluate, "resumed", False):
            raise KeyboardInterrupt
        ran.append(spec.key)
        return [
            {
                "task": spec.key,
                "perception_mode": m,
                "success_rate": 1.0,
                "mean_episode_seconds": 1.0,
                "mean_control_steps": 10,
            }
            for m in modes
        ]

    monkeypatch.setattr(ref, "evaluate", fake_evaluate)
    keys = [s.key for s in ref.reference_tasks()][:2]
    argv = ["--tasks", ",".join(keys), "--limit", "1", "--out", str(out)]
    with pytest.raises(KeyboardInterrupt):
        ref.main(argv)
    doc = json.loads(out.read_text())
    assert {r["task"] for r in doc["tasks"]} == {keys[0]} and doc["not_yet_run"] == [keys[1]]
    assert all(r["commit"] == doc["commit"] and r["measured_at"] for r in doc["tasks"])
    fake_evaluate.resumed = True
    ref.main(argv + ["--resume"])
    doc = json.loads(out.read_text())
    assert ran == keys and doc["not_yet_run"] == [] and len(doc["tasks"]) == 4
    with pytest.raises(SystemExit, match="settings"):  # rows of other settings never mix
        ref.main(["--tasks", keys[0], "--limit", "2", "--out", str(out), "--resume"])
    with pytest.raises(SystemExit):
        ref.main(["--tasks", "robosuite:Wipe", "--out", str(tmp_path / "x.json")])  # no reference program


def test_a_program_of_your_own_runs_under_the_same_protocol(tmp_path, monkeypatch, capsys):
    from bench import reference_programs as ref

    program = tmp_path / "mine.py"
    program.write_text("obs = get_observation()\n")
    searched, evaluated = [], []
    monkeypatch.setattr(
        search_results,
        "search_task",
        lambda spec, *a, **kw: (
            searched.append(spec)
            or {
                "task": spec.key,
                "heldout": 0.0,
                "first_candidate_debug": 0.0,
                "final_debug": 0.0,
                "rounds_used": 1,
                "stop": "plateau",
                "wall_s": 1.0,
            }
        ),
    )
    monkeypatch.setattr(
        ref,
        "evaluate",
        lambda spec, *a: (
            evaluated.append(spec)
            or [
                {
                    "task": spec.key,
                    "perception_mode": "realistic",
                    "success_rate": 0.0,
                    "mean_episode_seconds": 1.0,
                    "mean_control_steps": 1,
                }
            ]
        ),
    )
    out = tmp_path / "s.json"
    search_results.main(["--tasks", "robosuite:Wipe", "--program", str(program), "--out", str(out)])
    assert searched[0].starter_program == str(program) and searched[0].key == "robosuite:Wipe"
    assert json.loads(out.read_text())["protocol"]["program"] == str(program)
    ref.main(
        [
            "--tasks",
            "robosuite:Wipe",
            "--program",
            str(program),
            "--modes",
            "realistic",
            "--out",
            str(tmp_path / "r.json"),
        ]
    )
    assert evaluated[0].starter_program == str(program)
    assert json.loads((tmp_path / "r.json").read_text())["settings"]["program"] == str(program)
    for argv in (
        ["--tasks", "robosuite:Wipe", "--program", str(program)],  # would overwrite the committed file
        ["--tasks", "robosuite:Wipe,robosuite:Lift", "--program", str(program), "--out", str(out)],
        ["--tasks", "robosuite:Wipe", "--program", str(tmp_path / "missing.py"), "--out", str(out)],
    ):
        for main in (search_results.main, ref.main):
            with pytest.raises(SystemExit) as stopped:
                main(argv)
            assert stopped.value.code == 2, (main, argv)
