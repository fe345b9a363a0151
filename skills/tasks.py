"""Celery tasks of the skill library: thin, ids in, one service call each; and the reconciler's part for
skill admission (registered with runs.reconcile in SkillsConfig.ready).

Admission runs its re-execution in the worker that took the task (runs.services.execute_run, which owns
the run while it works on it). If that worker dies, runs' reconciler finishes the run's episodes on the
pool, and :func:`reconcile_validations` sends the admission again, which resumes the validation and
decides; a validate message lost with its broker is sent again too.
"""

from collections import Counter
from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from runs import heartbeat, outbox
from runs.models import Outbox, Run
from runs.reconcile import run_owned
from runs.tasks import track

VALIDATE_SKILL = "aspire.validate_skill"


@shared_task(name=VALIDATE_SKILL, acks_late=True, reject_on_worker_lost=True)
def validate_skill_task(skill_id: int) -> None:
    """Admission of a proposed skill (policy check, re-execution, decision); see skills.admission."""
    from .admission import admit_skill

    admit_skill(skill_id)


track(VALIDATE_SKILL)


def reconcile_validations() -> dict[str, int]:
    """Send the admission of a proposed skill again when nothing is working on it: its running validation's
    run ended (the decision is missing) or lost its in-process owner, or its queued admission message was
    never picked up and is no longer in flight (runs.outbox.Pending)."""
    from .models import Skill, SkillValidation

    counts: Counter = Counter()
    pending = None
    grace = timedelta(seconds=heartbeat.owner_timeout())
    now = timezone.now()
    wanted: set[int] = set()
    running = SkillValidation.objects.filter(
        outcome=SkillValidation.Outcome.RUNNING, skill__status=Skill.Status.PROPOSED
    ).select_related("run")
    for validation in running:
        run = validation.run
        if run is not None and run.status in (Run.Status.QUEUED, Run.Status.RUNNING):
            if run_owned(run) or validation.created_at > now - grace:
                continue
        wanted.add(validation.skill_id)
    unpicked = Outbox.objects.filter(task_name=VALIDATE_SKILL, picked_at__isnull=True).values_list("args", flat=True)
    for args in unpicked:
        if args and isinstance(args[0], int):
            wanted.add(args[0])
    proposed = set(Skill.objects.filter(pk__in=wanted, status=Skill.Status.PROPOSED).values_list("pk", flat=True))
    for skill_id in sorted(proposed):
        if pending is None:
            pending = outbox.Pending()
        counts["validations_sent"] += pending.send(VALIDATE_SKILL, [skill_id])
    return {k: v for k, v in counts.items() if v}
