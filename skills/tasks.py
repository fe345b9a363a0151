"""Celery tasks of the skill library: thin, ids in, one service call each."""

from celery import shared_task


@shared_task(name="aspire.validate_skill", acks_late=True, reject_on_worker_lost=True)
def validate_skill_task(skill_id: int) -> None:
    """Admission of a proposed skill (policy check, re-execution, decision); see skills.admission."""
    from .admission import admit_skill

    admit_skill(skill_id)
