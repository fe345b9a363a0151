"""The agents' tools against the Celery actors' workbench (DjangoWorkbench: rows in the database, media
through the storage) and the real simulator: what a model gets back from run_candidate, list_calls,
get_call, get_keyframe and propose_skill, and the notes carried into the next round."""

import re

import pytest

from experiments.services import create_experiment
from experiments.workbench import DjangoWorkbench
from runs.models import Candidate
from runs.tests.factories import TaskFactory
from worker.agents.tools import ToolRunner

pytestmark = pytest.mark.django_db

PROGRAM = """
obs = get_observation()
rgb = obs["agentview"]["images"]["rgb"]
found = segment_text_prompt(rgb, "red cube")
print("detections", len(found), "best score", round(found[0]["score"], 2) if found else None)
move_to_pose([0.45, 0.0, 1.2], [0.0, 1.0, 0.0, 0.0])
print("moved; done")
"""


@pytest.fixture
def actor(user, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    run = create_experiment(
        kind="search",
        tasks=[TaskFactory(key="robosuite:Lift")],
        owner=user,
        team=None,
        agent={"backend": "openai", "model": "m", "base_url": "http://127.0.0.1:9/v1"},
        debug_seeds=[101, 102],
        heldout_seeds=[1],
    )
    return run.actors.get()


def test_run_candidate_on_the_celery_workbench_returns_output_frames_and_outcomes(actor):
    workbench = DjangoWorkbench(actor, 0)
    runner = ToolRunner(workbench, 0, (101, 102), 4, max_turns=10)
    reply = runner.run("run_candidate", {"code": PROGRAM, "seeds": [101], "hypothesis": "look, then move high"})
    text = reply.text
    assert not reply.is_error, text
    assert "seed 101 (episode" in text and "FAILED: the program ended without an error" in text
    assert "detections" in text and "moved; done" in text  # the program's own output
    final = re.search(r"final scene: keyframe (\d+)", text).group(1)
    assert reply.keyframes == [final]
    assert "[budget: 3 of 4 experiment episodes left this round; 10 of 10 model turns left" in text

    image = runner.run("get_keyframe", {"keyframe": final})
    assert image.image_jpeg[:3] == b"\xff\xd8\xff" and image.keyframes == [final]

    episode = re.search(r"\(episode (\d+)\)", text).group(1)
    listed = runner.run("list_calls", {"episode": episode}).text
    move = next(line for line in listed.splitlines() if " move_to_pose " in line)
    assert re.search(r"move_to_pose -> (REACHED|NOT_REACHED|IK_FAILED|PLANNING_ERROR|COLLISION) ", move), move
    assert "segment_text_prompt -> OK" in listed and "keyframes=['" in listed
    # Listing by what a motion answered works too.
    outcome = re.search(r"move_to_pose -> (\S+)", move).group(1)
    assert "move_to_pose" in runner.run("list_calls", {"episode": episode, "status": outcome}).text

    call = re.search(r"\[call (\d+)\]", move).group(1)
    record = runner.run("get_call", {"call": call}).text
    assert '"artifacts"' in record and len(record) < 6000
    assert runner.run("get_call", {"call": call, "path": "artifacts.motion.control_steps"}).text.split("\n")[
        1
    ].isdigit() or (outcome in ("IK_FAILED", "PLANNING_ERROR"))

    # A skill proposal is told what admission will do and what the runs so far show.
    candidate = re.search(r"^candidate (\d+):", text, re.M).group(1)
    proposal = runner.run(
        "propose_skill",
        {
            "name": "look first",
            "description": "d",
            "kind": "debugging workflow",
            "failure_signature": {"symptom": "s"},
            "repair_strategy": "r",
            "code_sketch": "x = 1",
            "before_candidate": candidate,
            "after_candidate": candidate,
            "claimed_seeds": [101],
        },
    ).text
    assert "re-executed on the claimed seeds" in proposal and "approves it in the admin" in proposal
    assert "0 of 1 claimed seeds went from failure to success" in proposal
    assert runner.proposed_skills and runner.proposed_skills[0]["provenance"]["claimed_seeds"] == [101]

    # The experiment is kept out of the leaderboard, and becomes a note for the next round.
    assert Candidate.objects.get(pk=candidate).origin == "experiment"
    (note,) = workbench.notes(1)
    assert "look, then move high" in note and "moved; done" in note
    assert workbench.notes(0) == []


def test_tool_errors_say_what_is_wrong_and_still_give_the_budget(actor):
    runner = ToolRunner(DjangoWorkbench(actor, 0), 0, (101, 102), 1, max_turns=5)
    for name, arguments, expected in [
        ("run_candidate", {"code": "x = 1", "seeds": [7]}, "choose seeds among the debug seeds 101-102"),
        ("run_candidate", {"code": "x = 1", "seeds": [101, 102]}, "allows 1 more"),
        ("list_calls", {"episode": "999999"}, "no episode 999999"),
        ("get_keyframe", {"keyframe": "999999"}, "no keyframe 999999"),
        ("no_such_tool", {}, "unknown tool"),
        ("get_call", ["not", "an", "object"], "arguments must be a JSON object"),
    ]:
        reply = runner.run(name, arguments)
        assert reply.is_error and expected in reply.text and "[budget: 1 of 1 experiment episodes" in reply.text
