"""Rows and records of the skill library for tests, and the program variants the skill tests share."""

from pathlib import Path

import factory

from runs.models import Candidate, Episode, Run
from runs.tests.factories import TaskFactory
from skills.content import SkillDraft
from skills.models import Skill, SkillValidation
from worker.agents.offline import with_finger_line_prelude
from worker.engine import program_hash

PROGRAMS = Path(__file__).resolve().parents[2] / "worker" / "programs"
STARTER = (PROGRAMS / "robosuite_lift.py").read_text()

#: A real bug and its repair, measured on robosuite Stack: the reference program grips the red cube
#: across whichever pair of faces needs less wrist turn, and on debug seeds 108 and 120 the open finger
#: then lands on the green cube beside it ("missed the red cube"); seed 103 succeeds. The repair
#: (the offline agent's finger-clearance rule) retries a refused pose move with the fingers turned 90
#: degrees about the approach axis and keeps that finger line.
STACK_BEFORE = (PROGRAMS / "robosuite_stack.py").read_text()
STACK_AFTER = with_finger_line_prelude(STACK_BEFORE)
assert STACK_AFTER != STACK_BEFORE
FAILS_BEFORE = (108, 120)
PASSES_BEFORE = (103,)


class SkillFactory(factory.django.DjangoModelFactory):
    """An approved agent-made localisation skill for the Panda on robosuite Lift."""

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


class SkillDraftFactory(factory.Factory):
    """A proposal's fields (skills.content.SkillDraft): a grasp constraint that wraps the grasp yaw."""

    class Meta:
        model = SkillDraft

    name = "Yaw Nearest Equivalent"
    description = "Wrap the grasp yaw."
    kind = "grasp constraint"
    code_sketch = "def wrap(yaw, current):\n    return current + (yaw - current + {{HALF}}) % (2 * {{HALF}}) - {{HALF}}"
    placeholders = factory.LazyFunction(lambda: {"HALF": {"default": 0.785, "doc": "rad"}})
    trace_signals = factory.LazyFunction(lambda: {"statuses": ["ik_failed"], "primitives": ["move_to_pose"]})


class AdmissionRunFactory(factory.django.DjangoModelFactory):
    """A finished admission run, as admission would have left it, without the simulator: candidates
    "before", "after" (and "parent") with an episode per seed of ``outcomes`` ({role: {seed: success}})."""

    class Meta:
        model = Run

    task = factory.SubFactory(TaskFactory)
    status = Run.Status.FINISHED
    source = "admission"
    settings = factory.LazyFunction(
        lambda: {"split": "debug", "wall_seconds": 60, "memory_mb": 1024, "trace": True, "keyframes": True}
    )
    outcomes = factory.LazyFunction(lambda: {"before": {105: False}, "after": {105: True}})

    @classmethod
    def _create(cls, model_class, *, outcomes, **kwargs):
        run = super()._create(model_class, seeds=sorted(next(iter(outcomes.values()))), **kwargs)
        for index, role in enumerate(("before", "after", "parent")):
            if role not in outcomes:
                continue
            candidate = Candidate.objects.create(
                run=run, index=index, label=role, program=f"# {role}", program_hash=program_hash(f"# {role}")
            )
            for seed, success in outcomes[role].items():
                Episode.objects.create(
                    candidate=candidate,
                    run=run,
                    seed=seed,
                    split="debug",
                    success=success,
                    status="OK" if success else "EXCEPTION",
                )
        return run


class SkillValidationFactory(factory.django.DjangoModelFactory):
    """A validation of ``skill`` in progress on ``run`` (an admission run), as admission starts one."""

    class Meta:
        model = SkillValidation

    skill = factory.SubFactory(SkillFactory)
    run = factory.SubFactory(AdmissionRunFactory)
    task = factory.SelfAttribute("run.task")
    claimed_seeds = factory.LazyFunction(lambda: [105])
    control_seeds = factory.LazyFunction(list)
    min_flipped = 1
    replacement_margin = 0.1
