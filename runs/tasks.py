"""Celery tasks of runs: thin, ids in, one service call. Acked late and idempotent: a task whose worker
died is redelivered and resumes from what the database holds. runs.services.start_run sends it by name."""

from celery import shared_task

from . import services


@shared_task(name=services.EXECUTE_RUN, acks_late=True, reject_on_worker_lost=True)
def execute_run_task(run_id: int) -> None:
    services.execute_run(run_id)
