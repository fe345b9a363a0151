"""The experiment side of the library: agent proposals handed to admission, what an actor's retrieval
sees (scaling runs limit it to the first N source tasks), malformed proposals dropped with a reason."""

import pytest

from experiments.coordinator import hand_over_skills
from experiments.services import create_experiment
from runs.models import Actor
from runs.tests.factories import TaskFactory
from skills.content import SkillInputError
from skills.lifecycle import submit_agent_proposal
from skills.models import Skill
from skills.tests.factories import STACK_AFTER, STACK_BEFORE, SkillFactory
from skills.usage import LibraryAccess, library_sources

pytestmark = pytest.mark.django_db


def llm_proposal(**change):
    fields = {
        "name": "Grip where the fingers clear",
        "kind": "grasp constraint",
        "description": "Pick the finger line that keeps both open fingers off the neighbouring cube.",
        "failure_signature": {
            "symptom": "finger on the green cube, then an empty grasp",
            "statuses": ["GRASP_EMPTY"],
            "gripper_width_m": [0.0, 0.005],
            "blocked_by": "right finger would meet occupied space",
        },
        "when_to_apply": "boxes with a neighbour within 8 cm",
        "when_not_to_apply": "round objects",
        "repair_strategy": "compare the fingertips' distances to the neighbour's points",
        "code_sketch": "def approach(grasp, quat):\n"
        "    return move_to_pose(grasp + np.array([0.0, 0.0, {{APPROACH_HEIGHT}}]), quat)",
        "provenance": {
            "before_program": STACK_BEFORE,
            "after_program": STACK_AFTER,
            "claimed_seeds": [108, 120],
            "passing_seeds": list(range(101, 140)),
            "before_candidate": "1",
            "after_candidate": "2",
        },
    }
    fields.update(change)
    return fields


@pytest.fixture
def search_run(django_user_model):
    task = TaskFactory(key="robosuite:Stack")
    return create_experiment(
        kind="search",
        tasks=[task],
        owner=django_user_model.objects.create_user("ada"),
        agent={"backend": "claude"},
        debug_seeds=[101, 108, 120],
        heldout_seeds=[1],
    )


def test_an_llm_proposal_becomes_a_proposed_skill_with_its_evidence(search_run, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        skill = submit_agent_proposal(llm_proposal(), run=search_run, task=search_run.actors.get().task)
    assert len(callbacks) == 1, Skill.objects.get().status_reason  # re-execution queued after commit
    assert skill.status == Skill.Status.PROPOSED and skill.provenance == Skill.Provenance.AGENT
    assert skill.name == "grip-where-the-fingers-clear" and skill.kind == Skill.Kind.GRASP_CONSTRAINT
    assert skill.symptom.startswith("finger on the green cube")
    assert skill.trace_signals == {"statuses": ["GRASP_EMPTY"], "gripper_width_m": [0.0, 0.005]}
    assert "blocked_by" in skill.notes
    # The undeclared placeholder takes the repaired program's value.
    assert skill.placeholders["APPROACH_HEIGHT"]["default"] == 0.10
    assert skill.claimed_seeds == [108, 120] and len(skill.claimed_seeds) + len(skill.control_seeds) == 30
    assert skill.source_run == search_run and skill.embodiment == "Panda" and "claude" in skill.proposed_by


def test_a_malformed_proposal_is_dropped_with_the_reason_and_the_run_goes_on(search_run):
    actor = search_run.actors.get()
    with pytest.raises(SkillInputError, match="unknown kind"):
        submit_agent_proposal(llm_proposal(kind="teleportation"), run=search_run, task=actor.task)
    actor.proposed_skills = [llm_proposal(kind="teleportation"), llm_proposal(name="Second one")]
    actor.save()
    assert hand_over_skills(search_run, [actor]) == 1
    assert list(Skill.objects.values_list("name", flat=True)) == ["second-one"]
    assert "unknown kind" in Actor.objects.get(pk=actor.pk).error


def test_scaling_libraries_hold_the_first_n_source_tasks_other_than_the_actors_own(search_run):
    from runs.models import Task

    stack = TaskFactory(key="robosuite:Stack")
    lift, can = Task.objects.get(key="robosuite:Lift"), Task.objects.get(key="robosuite:PickPlaceCan")
    first = SkillFactory(name="from-lift", source_task=lift, description="Grasp the cube from above.")
    SkillFactory(name="from-stack", source_task=stack, description="Grasp the cube beside another cube.")
    second = SkillFactory(name="from-can", source_task=can, description="Grasp the can from above.")
    SkillFactory(name="not-approved", source_task=can, status=Skill.Status.PROPOSED)
    assert library_sources() == ["robosuite:Lift", "robosuite:Stack", "robosuite:PickPlaceCan"]
    assert library_sources(exclude_task=stack) == ["robosuite:Lift", "robosuite:PickPlaceCan"]

    def found(size):
        access = LibraryAccess(run=search_run, task=stack, library_size=size)
        return {s["id"] for s in access.search("grasp the cube", 10)}

    assert found(0) == set() and found(1) == {first.pk} and found(2) == {first.pk, second.pk}
    everything = found(None)
    assert {first.pk, second.pk} < everything and len(everything) == 3
    access = LibraryAccess(run=search_run, task=stack, library_size=1)
    assert access.get(first.pk)["name"] == "from-lift"
    with pytest.raises(KeyError):
        access.get(second.pk)  # not among this actor's source tasks
