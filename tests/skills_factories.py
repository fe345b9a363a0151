"""Factories and program variants shared by the skill-library tests (tests/test_skills_*.py)."""

from pathlib import Path

import factory

from runs.models import Candidate, Episode, Run, Task
from runs.services import sync_catalog
from skills.models import Skill, SkillValidation
from worker.agents.offline import NEIGHBOUR_AWARE_YAW
from worker.agents.programs import replace_function
from worker.engine import program_hash

PROGRAMS = Path(__file__).resolve().parent.parent / "worker" / "programs"
STARTER = (PROGRAMS / "robosuite_lift.py").read_text()

#: A real bug and its repair, measured on robosuite Stack: the reference program grips the red cube
#: across whichever pair of faces needs less wrist turn, and on debug seeds 108 and 120 the open finger
#: then lands on the green cube beside it ("missed the red cube"); seed 101 succeeds. The repair
#: (the offline agent's finger-clearance rule) chooses the finger line that keeps both fingers clear.
STACK_BEFORE = (PROGRAMS / "robosuite_stack.py").read_text()
STACK_AFTER = replace_function(STACK_BEFORE, NEIGHBOUR_AWARE_YAW)
assert STACK_AFTER != STACK_BEFORE
FAILS_BEFORE = (108, 120)
PASSES_BEFORE = (101,)


def lift_task() -> Task:
    sync_catalog()
    return Task.objects.get(key="robosuite:Lift")


def stack_task() -> Task:
    sync_catalog()
    return Task.objects.get(key="robosuite:Stack")


class SkillFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Skill

    name = factory.Sequence(lambda n: f"skill-{n}")
    title = factory.LazyAttribute(lambda o: o.name.replace("-", " ").capitalize())
    description = "Locate the cube from its top-face points before grasping it."
    kind = Skill.Kind.LOCALISATION
    symptom = "The gripper closes beside the cube."
    trace_signals = factory.LazyFunction(lambda: {"statuses": ["GRASP_EMPTY"], "primitives": ["close_gripper"]})
    repair_strategy = "Take x, y from the top face."
    code_sketch = "def centre(points):\n    return points[:, :2].mean(axis=0)"
    embodiment = "Panda"
    benchmark = "robosuite"
    task_keys = factory.LazyFunction(lambda: ["robosuite:Lift"])
    status = Skill.Status.APPROVED
    provenance = Skill.Provenance.AGENT


def fake_admission_run(task: Task, outcomes: dict[str, dict[int, bool]]) -> Run:
    """A finished run with candidates "before", "after" (and "parent") and episodes of the given
    successes per seed, as admission would have left it, without the simulator."""
    seeds = sorted(next(iter(outcomes.values())))
    run = Run.objects.create(task=task, seeds=seeds, status=Run.Status.FINISHED, source="admission",
                             settings={"split": "debug", "wall_seconds": 60, "memory_mb": 1024, "trace": True,
                                       "keyframes": True})
    for index, role in enumerate(("before", "after", "parent")):
        if role not in outcomes:
            continue
        candidate = Candidate.objects.create(run=run, index=index, label=role, program=f"# {role}",
                                             program_hash=program_hash(f"# {role}"))
        for seed, success in outcomes[role].items():
            Episode.objects.create(candidate=candidate, run=run, seed=seed, split="debug", success=success,
                                   status="OK" if success else "EXCEPTION")
    return run


def running_validation(skill: Skill, run: Run, claimed, control) -> SkillValidation:
    return SkillValidation.objects.create(skill=skill, task=run.task, run=run, claimed_seeds=list(claimed),
                                          control_seeds=list(control), min_flipped=1, replacement_margin=0.1)
