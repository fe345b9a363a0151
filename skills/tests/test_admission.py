"""Admission by re-execution on the real simulator (robosuite Stack), through the real Celery worker, and
the rest of the story: a reviewer approves in the admin, a later run retrieves the skill and uses it.

The "before" program is the Stack reference program with its real weakness (skills/tests/factories.py):
on seeds 108 and 120 an open finger lands on the green cube and the grasp misses the red one, while
seed 103 succeeds. The finger-clearance repair is the "after" program.
"""

import pytest
from django.urls import reverse

from runs.models import Episode, Keyframe, Run
from runs.services import create_program_run
from runs.tests.factories import TaskFactory
from skills.admission import admit_skill
from skills.content import SkillDraft
from skills.exchange import install_seed_skills
from skills.lifecycle import propose_skill
from skills.models import Skill, SkillRetrieval, SkillValidation
from skills.retrieval import retrieve_skills
from skills.usage import record_skill_use
from testing.waiting import wait_for

from .factories import FAILS_BEFORE, PASSES_BEFORE, STACK_AFTER, STACK_BEFORE

pytestmark = pytest.mark.django_db(transaction=True)

CLEARANCE_SKILL = SkillDraft(
    name="fingers-clear-the-neighbours",
    title="Grip across the faces whose open fingers clear the neighbours",
    description="A box can be gripped across either pair of faces; when another object stands close, take the "
    "finger line whose open fingers stay farther from it, or a finger lands on the neighbour and "
    "the grasp misses.",
    kind="grasp constraint",
    symptom="the approach is refused (PLANNING_ERROR naming a finger and a neighbouring object) or the gripper "
    "closes on nothing; the program raises 'missed the ...'.",
    trace_signals={"statuses": ["GRASP_EMPTY"], "primitives": ["close_gripper"], "error_contains": ["missed"]},
    repair_strategy="Of the two finger lines of a square face, choose the one whose fingertips are farther from the "
    "nearby objects' points; fall back to the one needing less wrist turn.",
    code_sketch="def finger_clearance(centre, yaw, neighbours_xy):\n"
    "    reach = {{FINGER_REACH}}\n"
    "    line = np.array([-math.sin(yaw), math.cos(yaw)])\n"
    "    tips = [centre + reach * line, centre - reach * line]\n"
    "    return min(np.min(np.linalg.norm(neighbours_xy - t, axis=1)) for t in tips)",
    placeholders={
        "FINGER_REACH": {"default": 0.045, "doc": "how far each open fingertip reaches from the grasp centre, m"}
    },
    embodiment="Panda",
    benchmark="robosuite",
    task_keys=["robosuite:Stack"],
)


@pytest.fixture(autouse=True)
def oracle_perception(settings):
    """The failure these tests reproduce (an open finger on the neighbouring cube) is geometry, and their
    assertions are the seeds' measured outcomes; they run in the oracle perception mode so those outcomes
    do not also carry the realistic mode's segmentation noise (covered by worker/tests/
    test_perception_realistic.py and, end to end, by runs/tests/test_two_hosts.py's realistic search)."""
    settings.ASPIRE = {**settings.ASPIRE, "PERCEPTION_MODE": "oracle"}


def test_a_flipping_repair_is_admitted_on_the_worker_approved_in_the_admin_and_retrieved_later(
    celery_worker, admin_client
):
    install_seed_skills()
    task = TaskFactory(key="robosuite:Stack")
    skill = propose_skill(
        CLEARANCE_SKILL,
        task=task,
        before_program=STACK_BEFORE,
        after_program=STACK_AFTER,
        claimed_seeds=FAILS_BEFORE,
        control_seeds=PASSES_BEFORE,
        proposed_by="offline agent",
    )
    assert skill.status == Skill.Status.PROPOSED
    wait_for(lambda: Skill.objects.get(pk=skill.pk).status != Skill.Status.PROPOSED, timeout=300)
    skill.refresh_from_db()
    assert skill.status == Skill.Status.VALIDATED, skill.status_reason

    validation = skill.validations.get()
    assert validation.outcome == SkillValidation.Outcome.ADMITTED
    assert (validation.flipped, validation.broken) == ([108, 120], [])
    assert (validation.n_seeds, validation.n_before_success, validation.n_after_success) == (3, 1, 3)
    assert skill.seeds_flipped == [108, 120]
    assert skill.pass_rate_before == pytest.approx(1 / 3) and skill.pass_rate_after == 1.0
    assert "flipped 2 of 2 claimed seeds (108, 120)" in skill.status_reason

    # The evidence is ordinary episodes of one admission run: traces, keyframes, trace pages.
    run = validation.run
    assert run.source == "admission" and run.status == Run.Status.FINISHED
    for row in validation.results:
        for role in ("before", "after"):
            episode = Episode.objects.get(pk=row[role]["episode"])
            assert episode.run_id == run.pk and episode.seed == row["seed"] and episode.success == row[role]["success"]
            assert episode.calls.exists()
    failed_before = Episode.objects.get(pk=validation.results[0]["before"]["episode"])
    assert not failed_before.success and "missed the red cube" in failed_before.error
    assert Keyframe.objects.filter(episode=failed_before, label="final").exists()

    # The review queue shows it with links to the evidence episodes and their keyframes.
    page = admin_client.get(reverse("admin:skills_skillreview_change", args=[skill.pk])).content.decode()
    assert reverse("runs:episode", args=[failed_before.pk]) in page
    assert reverse("runs:keyframe", args=[Keyframe.objects.filter(episode=failed_before).last().pk]) in page
    assert "finger_clearance" in page and 'style="color' in page  # the sketch, highlighted inline

    response = admin_client.post(
        reverse("admin:skills_skillreview_changelist"), {"action": "approve_selected", "_selected_action": [skill.pk]}
    )
    assert response.status_code == 302
    skill.refresh_from_db()
    assert skill.status == Skill.Status.APPROVED and skill.reviewed_by.username == "admin"

    # A later run on a related task retrieves it (among the approved seed library) and records its use.
    later = create_program_run(task=task, program=STACK_BEFORE, seeds=[1], origin="agent", source="api")
    result = retrieve_skills(
        instruction="Put the red block on top of the green one.",
        signals={
            "statuses": ["GRASP_EMPTY"],
            "primitives": ["close_gripper"],
            "error": "RuntimeError: missed the red cube",
        },
        embodiment="Panda",
        run=later,
        agent_call_id=41,
    )
    assert skill in result.skills[:2], [h.as_dict() for h in result.hits]
    logged = SkillRetrieval.objects.get(run=later)
    assert logged.agent_call_id == 41 and skill.pk in [r["skill"] for r in logged.results]
    record_skill_use(skill, retrieval=result.retrieval, run=later, agent_call_id=41)
    skill.refresh_from_db()
    assert skill.usage_count == 1 and skill.uses.get().run == later


def test_a_repair_that_flips_nothing_is_refused_with_the_numbers():
    task = TaskFactory(key="robosuite:Stack")
    wrong_fix = STACK_BEFORE.replace("APPROACH_HEIGHT = 0.10", "APPROACH_HEIGHT = 0.12")
    assert wrong_fix != STACK_BEFORE
    draft = SkillDraft(
        name="higher-approach",
        description="Approach the cube from higher up.",
        kind="motion primitive",
        repair_strategy="Raise the pre-grasp height to 12 cm.",
    )
    skill = propose_skill(
        draft,
        task=task,
        before_program=STACK_BEFORE,
        after_program=wrong_fix,
        claimed_seeds=FAILS_BEFORE,
        control_seeds=PASSES_BEFORE,
        validate=False,
    )
    assert skill.status_reason == "passed the API-policy check; ready to be validated"

    validation = admit_skill(skill.pk)
    skill.refresh_from_db()
    assert validation.outcome == SkillValidation.Outcome.REFUSED
    assert skill.status == Skill.Status.REJECTED and skill.rejection_stage == Skill.Stage.VALIDATION
    assert skill.status_reason == (
        "refused: flipped 0 of 2 claimed seeds (needs at least 1); broke none of the 1 "
        "seed(s) that succeeded before; success 1/3 before, 1/3 after."
    )
    counts = (validation.flipped, validation.broken, validation.n_before_success, validation.n_after_success)
    assert counts == ([], [], 1, 1)
    assert admit_skill(skill.pk) is None  # a redelivered task changes nothing once decided
    assert skill.validations.count() == 1
