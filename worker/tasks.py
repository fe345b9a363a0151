"""Celery tasks: thin, ids in, one service call each. The only engine-side module that imports Django.

Every task is acked late and idempotent: if a worker dies mid-task the broker redelivers it and the
service resumes from what the database holds.
"""

from celery import shared_task

TASK_OPTIONS = {"acks_late": True, "reject_on_worker_lost": True}


@shared_task(name="aspire.execute_run", **TASK_OPTIONS)
def execute_run_task(run_id: int) -> None:
    from runs.services import execute_run

    execute_run(run_id)


@shared_task(name="aspire.coordinate_run", **TASK_OPTIONS)
def coordinate_run_task(run_id: int) -> None:
    from runs.experiments import coordinate

    coordinate(run_id)


@shared_task(name="aspire.actor_step", **TASK_OPTIONS)
def actor_step_task(actor_id: int) -> None:
    from runs.experiments import actor_step

    actor_step(actor_id)


@shared_task(name="aspire.evaluate_candidate", **TASK_OPTIONS)
def evaluate_candidate_task(candidate_id: int, split: str) -> None:
    from runs.experiments import evaluate_candidate

    evaluate_candidate(candidate_id, split)
