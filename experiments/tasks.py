"""Celery tasks of experiments: thin, ids in, one coordinator call each (experiments.coordinator says what
each step decides). Acked late and idempotent: a task whose worker died is redelivered and resumes from
what the database holds. The coordinator sends them by name (experiments.queues)."""

from celery import shared_task

from . import coordinator
from .queues import ACTOR_STEP, COORDINATE_RUN, EVALUATE_CANDIDATE

TASK_OPTIONS = {"acks_late": True, "reject_on_worker_lost": True}


@shared_task(name=COORDINATE_RUN, **TASK_OPTIONS)
def coordinate_run_task(run_id: int) -> None:
    coordinator.coordinate(run_id)


@shared_task(name=ACTOR_STEP, **TASK_OPTIONS)
def actor_step_task(actor_id: int) -> None:
    coordinator.actor_step(actor_id)


@shared_task(name=EVALUATE_CANDIDATE, **TASK_OPTIONS)
def evaluate_candidate_task(candidate_id: int, split: str) -> None:
    coordinator.evaluate_candidate(candidate_id, split)
