"""Factories and program variants shared by the skill-library tests (tests/test_skills_*.py)."""

from pathlib import Path

import factory

from runs.models import Candidate, Episode, Run, Task
from runs.services import sync_catalog
from skills.models import Skill, SkillValidation
from worker.engine import program_hash

STARTER = (Path(__file__).resolve().parent.parent / "worker" / "programs" / "robosuite_lift.py").read_text()

#: The Lift starter program with a deliberate bug: the grasp yaw is the cube's edge angle plus a quarter
#: turn, passed on unwrapped instead of the equivalent yaw nearest the wrist. The pre-grasp pose is then
#: out of reach for some cube rotations: on debug seeds 105, 108, 109, 111, 115-117, 124 and 125 the
#: episode fails ("could not reach the pre-grasp pose"), on the other debug seeds it succeeds.
UNWRAPPED_YAW = STARTER.replace("    return current_yaw + turn", "    return best_yaw + math.pi / 2.0")
assert UNWRAPPED_YAW != STARTER
FAILS_UNWRAPPED = (105, 108)
PASSES_UNWRAPPED = (101,)


def lift_task() -> Task:
    sync_catalog()
    return Task.objects.get(key="robosuite:Lift")


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
                             settings={"split": "debug", "wall_seconds": 60, "memory_mb": 1024, "trace": True, "keyframes": True})
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
