"""Celery tasks: thin, ids in, one service call each. The only engine-side module that imports Django."""

from celery import shared_task


@shared_task(name="aspire.execute_run", acks_late=True, reject_on_worker_lost=True)
def execute_run_task(run_id: int) -> None:
    from runs.services import execute_run

    execute_run(run_id)
