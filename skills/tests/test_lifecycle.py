"""Proposals, the life cycle, versions, the admission rules and the use counters (database, no simulator)."""

import pytest

from runs.models import Candidate, Episode, PrimitiveCall, Run
from runs.tests.factories import TaskFactory
from skills import admission, services
from skills.content import SkillInputError
from skills.lifecycle import approve_skill, propose_skill, reject_skill, request_validation, retire_skill
from skills.models import Skill, SkillStateError, SkillUse, SkillValidation
from skills.retrieval import signals_from_episode
from skills.usage import record_skill_outcome, record_skill_use
from worker.library.signatures import SignalsError, match_signature, normalise_signature

from .factories import (
    STACK_AFTER,
    STACK_BEFORE,
    STARTER,
    AdmissionRunFactory,
    SkillDraftFactory,
    SkillFactory,
    SkillValidationFactory,
)

pytestmark = pytest.mark.django_db


def test_a_proposal_with_programs_passes_the_policy_check_and_queues_re_execution(django_capture_on_commit_callbacks):
    task = TaskFactory(key="robosuite:Stack")
    with django_capture_on_commit_callbacks() as callbacks:
        skill = propose_skill(
            SkillDraftFactory(),
            task=task,
            before_program=STACK_BEFORE,
            after_program=STACK_AFTER,
            claimed_seeds="105,108",
            control_seeds=[101, 105],
            proposed_by="offline agent",
            agent_call_id=7,
        )
    assert len(callbacks) == 1  # validate_skill_task.delay(skill.pk), after commit
    assert skill.name == "yaw-nearest-equivalent" and skill.version == 1 and skill.kind == Skill.Kind.GRASP_CONSTRAINT
    assert skill.status == Skill.Status.PROPOSED
    assert skill.status_reason == "passed the API-policy check; re-execution queued"
    assert skill.claimed_seeds == [105, 108] and skill.control_seeds == [101]
    assert skill.trace_signals == {"statuses": ["IK_FAILED"], "primitives": ["move_to_pose"]}
    assert skill.source_task == task and skill.agent_call_id == 7


@pytest.mark.parametrize(
    "change, field, message",
    [
        ({"description": ""}, "description", "needs a description"),
        ({"name": "!!!"}, "name", "needs a name"),
        ({"kind": "teleportation"}, "kind", "unknown kind"),
        ({"code_sketch": "", "repair_strategy": ""}, "repair_strategy", "must say what to do"),
        ({"trace_signals": {"statuses": ["EXPLODED"]}}, "trace_signals", "unknown status codes"),
        ({"trace_signals": {"gripper_width_m": [0.05, 0.01]}}, "trace_signals", "min <= max"),
        ({"placeholders": {"HALF": {"doc": "x"}}}, "placeholders", "has no default"),
        ({"task_keys": ["Lift"]}, "task_keys", "benchmark:task"),
    ],
)
def test_bad_proposals_name_the_field_and_create_nothing(change, field, message):
    with pytest.raises(SkillInputError, match=message) as info:
        propose_skill(SkillDraftFactory(**change))
    assert info.value.field == field
    assert not Skill.objects.exists()


@pytest.mark.parametrize(
    "kwargs, field, message",
    [
        ({"before_program": STARTER}, "before_program", "needs all of"),
        (
            {"before_program": STARTER, "after_program": STARTER, "claimed_seeds": [105]},
            "before_program",
            "needs all of",
        ),
        ({"task": "robosuite:Nope"}, "task", "unknown task"),
        ({"claimed_seeds": "9-1"}, "claimed_seeds", "runs backwards"),
        ({"claimed_seeds": [-1]}, "claimed_seeds", "non-negative"),
        (
            {"claimed_seeds": "1-40", "task": "robosuite:Lift", "before_program": STARTER, "after_program": STARTER},
            "claimed_seeds",
            "at most 30 seeds",
        ),
    ],
)
def test_bad_evidence_is_refused_before_anything_is_stored(kwargs, field, message):
    with pytest.raises(SkillInputError, match=message) as info:
        propose_skill(SkillDraftFactory(), **kwargs)
    assert info.value.field == field
    assert not Skill.objects.exists()


def test_a_sketch_that_reads_the_simulator_or_hard_codes_a_scene_is_rejected_at_once(
    django_capture_on_commit_callbacks,
):
    sketch = (
        "def grasp_point():\n    return env.sim.data.body_xpos[3]\n\nmove_to_pose([0.12, -0.05, 0.83], [0, 1, 0, 0])"
    )
    with django_capture_on_commit_callbacks() as callbacks:
        skill = propose_skill(
            SkillDraftFactory(code_sketch=sketch, placeholders={}),
            task=TaskFactory(key="robosuite:Lift"),
            before_program=STARTER,
            after_program=STARTER,
            claimed_seeds=[105],
        )
    assert not callbacks and not Run.objects.exists()  # nothing is re-executed
    assert skill.status == Skill.Status.REJECTED and skill.rejection_stage == Skill.Stage.POLICY
    assert "refused by the API-policy check" in skill.status_reason
    assert "'env' refers to the simulator" in skill.status_reason
    assert "absolute position [0.12, -0.05, 0.83]" in skill.status_reason
    assert {i["code"] for i in skill.policy_issues} == {"SIMULATOR_STATE", "SCENE_CONSTANT"}


def test_a_new_version_links_its_approved_parent_and_approval_retires_the_parent():
    v1 = SkillFactory(name="yaw-nearest-equivalent", version=1, status=Skill.Status.APPROVED)
    v2 = propose_skill(SkillDraftFactory(change_note="wrap by half a period"))
    assert v2.version == 2 and v2.parent == v1 and v2.change_note == "wrap by half a period"
    with pytest.raises(SkillStateError, match="only a validated skill can be approved"):
        approve_skill(v2)
    v2.change_status(Skill.Status.VALIDATED, reason="admitted")
    approve_skill(v2, note="looks right")
    v1.refresh_from_db()
    assert v2.status == Skill.Status.APPROVED and v2.status_reason == "looks right"
    assert v1.status == Skill.Status.RETIRED and v1.status_reason == "superseded by version 2"


def test_the_life_cycle_allows_only_its_transitions():
    skill = SkillFactory(status=Skill.Status.PROPOSED)
    with pytest.raises(SkillStateError, match="proposed; it can move to rejected, validated, not to approved"):
        skill.change_status(Skill.Status.APPROVED)
    reject_skill(skill, note="duplicate of another skill")
    assert skill.status == Skill.Status.REJECTED and skill.rejection_stage == Skill.Stage.REVIEW
    with pytest.raises(SkillStateError):
        retire_skill(skill)
    approved = SkillFactory(status=Skill.Status.APPROVED)
    retire_skill(approved)
    assert approved.status == Skill.Status.RETIRED and approved.rejection_stage == ""
    with pytest.raises(SkillStateError, match="only a proposed skill is validated"):
        request_validation(approved)
    with pytest.raises(SkillStateError, match="cannot be re-executed without a task"):
        request_validation(SkillFactory(status=Skill.Status.PROPOSED))


def _decide(outcomes, claimed, control, parent=None):
    task = TaskFactory(key="robosuite:Lift")
    skill = SkillFactory(
        name="rule-under-test", version=2, status=Skill.Status.PROPOSED, source_task=task, parent=parent
    )
    run = AdmissionRunFactory(task=task, outcomes=outcomes)
    validation = SkillValidationFactory(skill=skill, run=run, claimed_seeds=claimed, control_seeds=control)
    return admission._decide(skill, validation), skill


def test_admission_admits_a_repair_that_flips_claimed_seeds_and_breaks_nothing():
    outcomes = {"before": {105: False, 108: False, 101: True}, "after": {105: True, 108: True, 101: True}}
    validation, skill = _decide(outcomes, [105, 108], [101])
    skill.refresh_from_db()
    assert validation.outcome == SkillValidation.Outcome.ADMITTED and skill.status == Skill.Status.VALIDATED
    assert validation.flipped == [105, 108] and validation.broken == []
    assert skill.seeds_flipped == [105, 108]
    assert skill.pass_rate_before == pytest.approx(1 / 3) and skill.pass_rate_after == 1.0
    assert skill.status_reason == (
        "admitted: flipped 2 of 2 claimed seeds (105, 108) (needs at least 1); broke none "
        "of the 1 seed(s) that succeeded before; success 1/3 before, 3/3 after."
    )
    assert [r["after"]["success"] for r in validation.results] == [True, True, True]


def test_admission_refuses_a_repair_that_breaks_a_seed_that_passed_with_the_numbers():
    validation, skill = _decide({"before": {105: False, 101: True}, "after": {105: True, 101: False}}, [105], [101])
    skill.refresh_from_db()
    assert validation.outcome == SkillValidation.Outcome.REFUSED and skill.status == Skill.Status.REJECTED
    assert skill.rejection_stage == Skill.Stage.VALIDATION and validation.broken == [101]
    assert "broke 1 seed(s) that succeeded before (101)" in skill.status_reason
    assert "success 1/2 before, 1/2 after" in skill.status_reason


def test_a_new_version_must_beat_its_approved_parent_by_the_margin():
    parent = SkillFactory(name="rule-under-test", version=1, status=Skill.Status.APPROVED)
    outcomes = {
        "before": {105: False, 108: False, 101: True},
        "after": {105: True, 108: False, 101: True},
        "parent": {105: True, 108: False, 101: True},
    }
    validation, skill = _decide(outcomes, [105, 108], [101], parent=parent)
    assert validation.outcome == SkillValidation.Outcome.REFUSED and validation.n_parent_success == 2
    assert (
        "does not beat the approved parent rule-under-test v1: 2/3 vs 2/3 (needs at least 1 more success(es)"
        in validation.reason
    )
    SkillValidation.objects.all().delete()
    Skill.objects.filter(name="rule-under-test", version=2).delete()
    outcomes["after"][108] = True
    validation, skill = _decide(outcomes, [105, 108], [101], parent=parent)
    assert validation.outcome == SkillValidation.Outcome.ADMITTED and "beats the approved parent" in validation.reason


def test_admission_decides_nothing_when_the_engine_failed():
    task = TaskFactory(key="robosuite:Lift")
    skill = SkillFactory(name="engine-error", status=Skill.Status.PROPOSED, source_task=task)
    run = AdmissionRunFactory(task=task, outcomes={"before": {105: False}, "after": {105: True}})
    Episode.objects.filter(candidate__index=1).update(status="INTERNAL_ERROR", error="renderer crashed")
    validation = admission._decide(
        skill, SkillValidationFactory(skill=skill, run=run, claimed_seeds=[105], control_seeds=[])
    )
    skill.refresh_from_db()
    assert validation.outcome == SkillValidation.Outcome.ERROR and skill.status == Skill.Status.PROPOSED
    assert "ended INTERNAL_ERROR: renderer crashed" in skill.status_reason
    assert "validate it again" in skill.status_reason


def test_uses_count_and_wins_are_settled_once_when_the_candidate_improved():
    skill, other = SkillFactory(), SkillFactory()
    run = Run.objects.create(task=TaskFactory(key="robosuite:Lift"), seeds=[1, 2])
    better = Candidate.objects.create(run=run, index=0, program="x", program_hash="x", success_rate=0.75)
    worse = Candidate.objects.create(run=run, index=1, program="y", program_hash="y", success_rate=0.25)
    record_skill_use(skill, candidate=better, agent_call_id=3)
    record_skill_use(other, candidate=better)
    record_skill_use(skill, candidate=worse)
    assert record_skill_outcome(better, baseline_success_rate=0.5) == 2
    assert record_skill_outcome(better, baseline_success_rate=0.5) == 0  # already settled
    assert record_skill_outcome(worse, baseline_success_rate=0.5) == 0
    skill.refresh_from_db()
    other.refresh_from_db()
    assert (skill.usage_count, skill.win_count, other.usage_count, other.win_count) == (2, 1, 1, 1)
    assert SkillUse.objects.get(candidate=worse).outcome == SkillUse.Outcome.NO_WIN
    assert SkillUse.objects.filter(agent_call_id=3, run=run).count() == 1


def test_failure_signals_are_read_from_a_stored_trace_and_matched_to_signatures():
    run = Run.objects.create(task=TaskFactory(key="robosuite:Lift"), seeds=[1])
    candidate = Candidate.objects.create(run=run, program="x", program_hash="x")
    episode = Episode.objects.create(
        candidate=candidate,
        run=run,
        seed=1,
        status="EXCEPTION",
        success=False,
        error="RuntimeError: grasp missed the cube",
    )
    calls = [
        ("segment_text_prompt", "OK", {"detections": [{"label": "cube"}]}),
        ("close_gripper", "GRASP_EMPTY", {"gripper": {"width_m": 0.0012, "closed": True}}),
    ]
    for seq, (primitive, status, artifacts) in enumerate(calls, start=1):
        PrimitiveCall.objects.create(
            episode=episode,
            seq=seq,
            primitive=primitive,
            status=status,
            artifacts=artifacts,
            started_at="2026-01-01T00:00:00Z",
            duration_ms=1,
        )
    signals = signals_from_episode(episode)
    assert signals == {
        "statuses": ["GRASP_EMPTY", "EXCEPTION"],
        "primitives": ["close_gripper"],
        "gripper_width_m": 0.0012,
        "detections": 1,
        "error": "RuntimeError: grasp missed the cube",
    }
    signature = normalise_signature(
        {"statuses": ["GRASP_EMPTY"], "gripper_width_m": [0, 0.005], "detections": [0, 0], "error_contains": ["MISSED"]}
    )
    assert match_signature(signature, signals) == pytest.approx(3 / 4)  # all but the detection count
    assert match_signature({}, signals) == 0.0
    with pytest.raises(SignalsError, match="unknown failure-signature keys"):
        normalise_signature({"colour": "red"})


def test_validation_is_requested_once_at_a_time_and_a_stalled_one_can_be_resumed(django_capture_on_commit_callbacks):
    task = TaskFactory(key="robosuite:Stack")
    skill = propose_skill(
        SkillDraftFactory(),
        task=task,
        before_program=STACK_BEFORE,
        after_program=STACK_AFTER,
        claimed_seeds=[105],
        validate=False,
    )
    run = AdmissionRunFactory(task=task, outcomes={"before": {105: False}, "after": {105: True}})
    Run.objects.filter(pk=run.pk).update(status=Run.Status.RUNNING)
    SkillValidationFactory(skill=skill, run=run, claimed_seeds=[105], control_seeds=[])
    with pytest.raises(SkillStateError, match="is being validated already"):
        request_validation(skill)
    Run.objects.filter(pk=run.pk).update(status=Run.Status.FAILED)  # its worker and task are gone
    with django_capture_on_commit_callbacks() as callbacks:
        request_validation(skill)
    assert len(callbacks) == 1 and Skill.objects.get(pk=skill.pk).status_reason == "re-execution queued"


def test_admission_runs_before_after_and_parent_programs_on_claimed_and_default_control_seeds():
    task = TaskFactory(key="robosuite:Stack")
    SkillFactory(name="yaw-nearest-equivalent", version=1, after_program="# the parent's program")
    skill = propose_skill(
        SkillDraftFactory(),
        task=task,
        before_program=STACK_BEFORE,
        after_program=STACK_AFTER,
        claimed_seeds=[105],
        validate=False,
    )
    stalled_run = AdmissionRunFactory(task=task, outcomes={"before": {105: False}, "after": {105: True}})
    Run.objects.filter(pk=stalled_run.pk).update(status=Run.Status.CANCELLED)
    stalled = SkillValidationFactory(skill=skill, run=stalled_run, claimed_seeds=[105], control_seeds=[])
    validation = admission._start(skill)
    stalled.refresh_from_db()
    assert stalled.outcome == SkillValidation.Outcome.ERROR and validation.pk != stalled.pk
    assert validation.claimed_seeds == [105]
    assert validation.control_seeds == [101, 102, 103]  # the CONTROL_SEEDS debug seeds
    assert validation.replacement_margin == 0.1 and validation.min_flipped == 1
    run = validation.run
    assert run.source == "admission" and run.seeds == [105, 101, 102, 103] and run.status == Run.Status.QUEUED
    assert [(c.index, c.origin, c.program) for c in run.candidates.order_by("index")] == [
        (0, "skill-before", STACK_BEFORE),
        (1, "skill-after", STACK_AFTER),
        (2, "skill-parent", "# the parent's program"),
    ]
    assert admission._start(skill) == validation  # a redelivered task resumes the same validation and run


def test_admission_that_cannot_start_its_run_says_why_and_keeps_the_proposal(settings):
    skill = propose_skill(
        SkillDraftFactory(),
        task=TaskFactory(key="robosuite:Stack"),
        before_program=STACK_BEFORE,
        after_program=STACK_AFTER,
        claimed_seeds=[105, 108],
        validate=False,
    )
    settings.ASPIRE = {**settings.ASPIRE, "MAX_SEEDS_PER_RUN": 2}
    assert admission.admit_skill(skill.pk) is None
    skill.refresh_from_db()
    assert skill.status == Skill.Status.PROPOSED and not Run.objects.exists()
    assert skill.status_reason == "admission could not start the re-execution: 5 seeds requested; a run takes at most 2"


def test_services_re_exports_each_verb_from_the_module_that_holds_it():
    from skills import exchange, lifecycle, retrieval, usage

    assert services.propose_skill is lifecycle.propose_skill
    assert services.retrieve_skills is retrieval.retrieve_skills
    assert services.LibraryAccess is usage.LibraryAccess
    assert services.install_seed_skills is exchange.install_seed_skills
    assert all(hasattr(services, name) for name in services.__all__)


def test_only_imports_may_leave_the_kind_blank_and_approval_then_waits_for_one():
    with pytest.raises(SkillInputError, match="kind: unknown kind ''"):
        propose_skill(SkillDraftFactory(kind=""))  # agents must name one
    skill = propose_skill(SkillDraftFactory(kind=""), provenance=Skill.Provenance.IMPORT)
    assert skill.kind == "" and skill.status == Skill.Status.PROPOSED
    Skill.objects.filter(pk=skill.pk).update(status=Skill.Status.VALIDATED)
    with pytest.raises(SkillStateError, match="has no kind"):
        approve_skill(skill)
    skill.refresh_from_db()
    assert skill.status == Skill.Status.VALIDATED
    Skill.objects.filter(pk=skill.pk).update(kind=Skill.Kind.GRASP_CONSTRAINT)
    assert approve_skill(skill).status == Skill.Status.APPROVED
