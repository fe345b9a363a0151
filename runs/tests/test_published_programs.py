"""The compatibility corpus (compat/programs/: programs written in the published CaP-X / ASPIRE reduced-API
style for Lift, Stack, TwoArmHandover and a LIBERO pick-place) runs unmodified through manage.py
run_program: no policy violation and no NameError / TypeError / AttributeError from a calling convention.
What each achieves is its strategy's and our perception's business; the Lift one must lift."""

import io
import json
from pathlib import Path

import pytest
from django.core.management import call_command

from runs.models import Episode

pytestmark = pytest.mark.django_db(transaction=True)

CORPUS = Path(__file__).resolve().parents[2] / "compat" / "programs"
CASES = [
    ("robosuite:Lift", "robosuite_lift.py"),
    ("robosuite:Stack", "robosuite_stack.py"),
    ("robosuite:TwoArmHandover", "robosuite_twoarmhandover.py"),
    ("libero:libero_90/KITCHEN_SCENE1_put_the_black_bowl_on_the_plate", "libero_pick_place.py"),
]
CONVENTION_ERRORS = ("NameError", "TypeError", "AttributeError", "ImportError", "is not a robot API function")


def run(task: str, program: Path, seeds: str) -> dict:
    out = io.StringIO()
    call_command("run_program", "--task", task, "--seeds", seeds, "--program", str(program), "--json", stdout=out)
    return json.loads(out.getvalue())


@pytest.mark.parametrize("task, name", CASES, ids=[name for _, name in CASES])
def test_a_published_style_program_runs_unmodified(task, name):
    doc = run(task, CORPUS / name, "1")
    for ep in doc["episodes"]:
        assert ep["status"] != "POLICY_VIOLATION", ep["error"]
        assert not any(marker in ep["error"] for marker in CONVENTION_ERRORS), ep["error"]
        assert ep["api_profile"] == "published", ep["api_profile_reason"]
        assert ep["contained"]
        bad = [c for c in ep["calls"] if c["status"] == "BAD_ARGUMENT"]
        assert not bad, bad
    stored = Episode.objects.get(pk=doc["episodes"][0]["episode_id"])
    assert stored.api_profile == "published" and stored.api_profile_reason.startswith("published (auto:")


def test_the_published_style_lift_lifts():
    doc = run("robosuite:Lift", CORPUS / "robosuite_lift.py", "2-3")
    assert sum(ep["success"] for ep in doc["episodes"]) >= 1, [(e["status"], e["error"]) for e in doc["episodes"]]


def test_a_run_can_force_the_native_profile_and_then_the_published_forms_are_missing(tmp_path):
    program = tmp_path / "p.py"
    program.write_text("goto_home_joint_position()\n")
    out = io.StringIO()
    call_command(
        "run_program",
        "--task",
        "robosuite:Lift",
        "--seeds",
        "1",
        "--program",
        str(program),
        "--api-profile",
        "native",
        "--json",
        stdout=out,
    )
    ep = json.loads(out.getvalue())["episodes"][0]
    assert ep["api_profile"] == "native" and ep["status"] == "EXCEPTION" and "NameError" in ep["error"]
