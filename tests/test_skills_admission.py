"""Admission by re-execution on the real simulator (robosuite Lift), through the real Celery worker, and
the rest of the story: a reviewer approves in the admin, a later run retrieves the skill and uses it.

The "before" program has a real bug (tests/skills_factories.UNWRAPPED_YAW): the grasp yaw is not
wrapped to the equivalent nearest the wrist, so the pre-grasp pose is out of reach on seeds 105 and
108 while seed 101 succeeds. The starter program is the repair.
"""

import pytest
from django.urls import reverse

from runs.models import Episode, Keyframe, Run
from runs.services import create_program_run
from skills.admission import admit_skill
from skills.drafts import SkillDraft
from skills.models import Skill, SkillRetrieval, SkillValidation
from skills.services import install_seed_skills, propose_skill, record_skill_use, retrieve_skills

from .conftest import wait_for
from .skills_factories import FAILS_UNWRAPPED, PASSES_UNWRAPPED, STARTER, UNWRAPPED_YAW, lift_task

pytestmark = pytest.mark.django_db(transaction=True)

YAW_SKILL = SkillDraft(
    name="wrap-grasp-yaw-to-the-wrist",
    title="Wrap the top-down grasp yaw to the equivalent nearest the wrist",
    description="A cube's grasp yaw repeats every quarter turn; send the wrist to the equivalent yaw nearest its "
                "current yaw, or the pre-grasp pose above the cube is out of reach for some cube rotations.",
    kind="grasp constraint",
    symptom="move_to_pose to the pre-grasp pose fails (IK_FAILED) on some seeds; the program raises "
            "'could not reach the pre-grasp pose'.",
    trace_signals={"statuses": ["IK_FAILED"], "primitives": ["move_to_pose"], "error_contains": ["pre-grasp"]},
    repair_strategy="Add the multiple of the symmetry period that brings the edge yaw nearest the current wrist yaw.",
    code_sketch="def nearest_equivalent(yaw, current):\n"
                "    period = {{PERIOD}}\n"
                "    return current + (yaw - current + period / 2.0) % period - period / 2.0",
    placeholders={"PERIOD": {"default": 1.5707963267948966, "doc": "grasp symmetry period, rad"}},
    embodiment="Panda", benchmark="robosuite", task_keys=["robosuite:Lift"],
)


def test_a_flipping_repair_is_admitted_on_the_worker_approved_in_the_admin_and_retrieved_later(celery_worker, admin_client):
    install_seed_skills()
    task = lift_task()
    skill = propose_skill(YAW_SKILL, task=task, before_program=UNWRAPPED_YAW, after_program=STARTER,
                          claimed_seeds=FAILS_UNWRAPPED, control_seeds=PASSES_UNWRAPPED, proposed_by="offline agent")
    assert skill.status == Skill.Status.PROPOSED
    wait_for(lambda: Skill.objects.get(pk=skill.pk).status != Skill.Status.PROPOSED, timeout=300)
    skill.refresh_from_db()
    assert skill.status == Skill.Status.VALIDATED, skill.status_reason

    validation = skill.validations.get()
    assert validation.outcome == SkillValidation.Outcome.ADMITTED
    assert (validation.flipped, validation.broken) == ([105, 108], [])
    assert (validation.n_seeds, validation.n_before_success, validation.n_after_success) == (3, 1, 3)
    assert skill.seeds_flipped == [105, 108] and skill.pass_rate_before == pytest.approx(1 / 3) and skill.pass_rate_after == 1.0
    assert "flipped 2 of 2 claimed seeds (105, 108)" in skill.status_reason

    # The evidence is ordinary episodes of one admission run: traces, keyframes, trace pages.
    run = validation.run
    assert run.source == "admission" and run.status == Run.Status.FINISHED
    for row in validation.results:
        for role in ("before", "after"):
            episode = Episode.objects.get(pk=row[role]["episode"])
            assert episode.run_id == run.pk and episode.seed == row["seed"] and episode.success == row[role]["success"]
            assert episode.calls.exists()
    failed_before = Episode.objects.get(pk=validation.results[0]["before"]["episode"])
    assert not failed_before.success and "could not reach the pre-grasp pose" in failed_before.error
    assert Keyframe.objects.filter(episode=failed_before, label="final").exists()

    # The review queue shows it with links to the evidence episodes and their keyframes.
    page = admin_client.get(reverse("admin:skills_skillreview_change", args=[skill.pk])).content.decode()
    assert reverse("runs:episode", args=[failed_before.pk]) in page
    assert reverse("runs:keyframe", args=[Keyframe.objects.filter(episode=failed_before).last().pk]) in page
    assert "nearest_equivalent" in page and 'style="color' in page  # the sketch, highlighted inline

    response = admin_client.post(reverse("admin:skills_skillreview_changelist"),
                                 {"action": "approve_selected", "_selected_action": [skill.pk]})
    assert response.status_code == 302
    skill.refresh_from_db()
    assert skill.status == Skill.Status.APPROVED and skill.reviewed_by.username == "admin"

    # A later run on a related task retrieves it (among the approved seed library) and records its use.
    later = create_program_run(task=task, program=STARTER, seeds=[1], origin="agent", source="api")
    result = retrieve_skills(instruction="Pick up the red block and lift it.",
                             signals={"statuses": ["IK_FAILED"], "primitives": ["move_to_pose"],
                                      "error": "RuntimeError: could not reach the pre-grasp pose"},
                             embodiment="Panda", run=later, agent_call_id=41)
    assert skill in result.skills[:2], [h.as_dict() for h in result.hits]
    logged = SkillRetrieval.objects.get(run=later)
    assert logged.agent_call_id == 41 and skill.pk in [r["skill"] for r in logged.results]
    record_skill_use(skill, retrieval=result.retrieval, run=later, agent_call_id=41)
    skill.refresh_from_db()
    assert skill.usage_count == 1 and skill.uses.get().run == later


def test_a_repair_that_flips_nothing_is_refused_with_the_numbers():
    task = lift_task()
    wrong_fix = UNWRAPPED_YAW.replace("APPROACH_HEIGHT = 0.10", "APPROACH_HEIGHT = 0.12")
    assert wrong_fix != UNWRAPPED_YAW
    draft = SkillDraft(name="higher-approach", description="Approach the cube from higher up.", kind="motion primitive",
                       repair_strategy="Raise the pre-grasp height to 12 cm.")
    skill = propose_skill(draft, task=task, before_program=UNWRAPPED_YAW, after_program=wrong_fix,
                          claimed_seeds=FAILS_UNWRAPPED, control_seeds=PASSES_UNWRAPPED, validate=False)
    assert skill.status_reason == "passed the API-policy check; ready to be validated"

    validation = admit_skill(skill.pk)
    skill.refresh_from_db()
    assert validation.outcome == SkillValidation.Outcome.REFUSED
    assert skill.status == Skill.Status.REJECTED and skill.rejection_stage == Skill.Stage.VALIDATION
    assert skill.status_reason == ("refused: flipped 0 of 2 claimed seeds (needs at least 1); broke none of the 1 seed(s) "
                                   "that succeeded before; success 1/3 before, 1/3 after.")
    assert (validation.flipped, validation.broken, validation.n_before_success, validation.n_after_success) == ([], [], 1, 1)
    assert admit_skill(skill.pk) is None  # a redelivered task changes nothing once decided
    assert skill.validations.count() == 1
