"""manage.py run_program: same sandbox and tracer, stores the run, prints one JSON object."""

import io
import json

import pytest
from django.core.management import CommandError, call_command

from runs.models import Episode, Keyframe, PrimitiveCall, Run

pytestmark = pytest.mark.django_db(transaction=True)


def run_program(tmp_path, source, seeds="1", *extra):
    path = tmp_path / "program.py"
    path.write_text(source)
    out = io.StringIO()
    call_command(
        "run_program",
        "--task",
        "robosuite:Lift",
        "--seeds",
        seeds,
        "--program",
        str(path),
        "--json",
        *extra,
        stdout=out,
    )
    return json.loads(out.getvalue())


def test_it_runs_a_camera_only_program_and_prints_the_documented_json(tmp_path, starter_program):
    doc = run_program(tmp_path, starter_program, "101-102")
    assert set(doc) >= {"run_id", "success_rate", "episodes"}
    assert doc["success_rate"] == 1.0
    assert [e["seed"] for e in doc["episodes"]] == [101, 102]
    ep = doc["episodes"][0]
    assert ep["success"] is True and ep["status"] == "OK" and ep["error"] == ""
    assert ep["calls"][0]["primitive"] == "get_observation" and ep["calls"][0]["keyframes"] >= 1
    assert all(set(c) == {"primitive", "status", "duration_ms", "keyframes"} for c in ep["calls"])
    run = Run.objects.get(pk=doc["run_id"])
    assert run.source == "cli" and run.status == Run.Status.FINISHED and run.n_success == 2
    assert PrimitiveCall.objects.filter(episode__run=run).count() == sum(len(e["calls"]) for e in doc["episodes"])
    assert not Keyframe.objects.filter(episode__run=run, call__isnull=True).exists()  # only failures get one


@pytest.mark.parametrize(
    "source, status, fragment",
    [
        ("data = open('/etc/passwd').read()\nprint(data)", "POLICY_VIOLATION", "file access"),
        ("import os\nprint(os.environ)", "POLICY_VIOLATION", "import of os"),
        (
            "obs = get_observation()\nenv = obs['agentview'].__class__.__init__.__globals__",
            "POLICY_VIOLATION",
            "dunder",
        ),
        ("s = get_observation.__closure__[0].cell_contents", "POLICY_VIOLATION", "dunder"),
        ("while True:\n    pass", "TIMEOUT", "wall-clock limit"),
        ("x = [1, 2]\nprint(x[5])", "EXCEPTION", "IndexError"),
    ],
)
def test_hostile_and_broken_programs_end_with_the_right_status(tmp_path, source, status, fragment):
    doc = run_program(tmp_path, source, "1", "--wall-seconds", "3")
    ep = doc["episodes"][0]
    assert ep["status"] == status and fragment in ep["error"] and ep["success"] is False
    assert Keyframe.objects.filter(episode_id=ep["episode_id"], call__isnull=True, label="final").count() == 1
    assert "passwd" not in json.dumps(doc).replace("/etc/passwd').read()", "")
    # The process that runs the engine is still healthy: the next run works.
    assert (
        run_program(tmp_path, "print(get_observation(['agentview'])['robot0_joint_pos'].shape)")["episodes"][0][
            "status"
        ]
        == "OK"
    )


def test_bad_input_is_refused_with_a_clear_error(tmp_path):
    (tmp_path / "p.py").write_text("print(1)")
    with pytest.raises(CommandError, match="unknown task"):
        call_command("run_program", "--task", "robosuite:Nope", "--seeds", "1", "--program", str(tmp_path / "p.py"))
    with pytest.raises(CommandError, match="cannot read seed"):
        call_command("run_program", "--task", "robosuite:Lift", "--seeds", "1-x", "--program", str(tmp_path / "p.py"))
    with pytest.raises(CommandError, match="not found"):
        call_command(
            "run_program", "--task", "robosuite:Lift", "--seeds", "1", "--program", str(tmp_path / "missing.py")
        )
    assert not Run.objects.exists()


def test_the_starter_flag_uses_the_built_in_program():
    out = io.StringIO()
    call_command("run_program", "--task", "robosuite:Lift", "--seeds", "3", "--starter", "--json", stdout=out)
    doc = json.loads(out.getvalue())
    assert doc["episodes"][0]["success"] is True
    assert Episode.objects.get(pk=doc["episodes"][0]["episode_id"]).candidate.origin == "starter"


def test_the_published_exploit_finds_no_module_to_walk(tmp_path):
    doc = run_program(
        tmp_path, "import numpy as np\nB = np.random.bit_generator.re.enum.bltns\nprint(B.open('/etc/hostname').read())"
    )
    ep = doc["episodes"][0]
    # The curated np.random has no module attributes: the chain stops at its first step.
    assert ep["status"] == "EXCEPTION" and ep["success"] is False
    assert "bit_generator" in ep["error"] and "line 2" in ep["error"]


def test_every_episode_records_that_it_was_contained(tmp_path):
    doc = run_program(tmp_path, "import numpy as np\nfrom math import pi\nprint(np.zeros(3).sum() + pi)")
    ep = doc["episodes"][0]
    assert ep["status"] == "OK" and ep["sandbox"] == "bwrap+seccomp" and ep["contained"] is True
    assert doc["contained"] is True
    assert Run.objects.get(pk=doc["run_id"]).uncontained_episodes == 0


def test_a_run_without_containment_says_so_everywhere(tmp_path, monkeypatch, admin_client):
    from worker.sandbox import containment

    monkeypatch.setenv(containment.MODE_ENV, "process")
    containment.reset_cache()
    try:
        doc = run_program(tmp_path, "print(get_observation(['agentview'])['robot0_joint_pos'].shape)")
    finally:
        monkeypatch.delenv(containment.MODE_ENV)
        containment.reset_cache()
    ep = doc["episodes"][0]
    assert ep["status"] == "OK" and ep["contained"] is False and doc["contained"] is False
    episode = Episode.objects.get(pk=ep["episode_id"])
    assert episode.sandbox == containment.PROCESS_LABEL and episode.run.uncontained_episodes == 1
    assert "Not contained" in admin_client.get(episode.get_absolute_url()).content.decode()
    assert "Not contained" in admin_client.get(episode.run.get_absolute_url()).content.decode()
    api = admin_client.get(f"/api/episodes/{episode.pk}/").json()
    assert api["contained"] is False and api["sandbox"] == containment.PROCESS_LABEL
    assert admin_client.get(f"/api/runs/{episode.run_id}/").json()["uncontained_episodes"] == 1
