"""Celery tasks of experiments: thin, ids in, one coordinator call each (experiments.coordinator says what
each step decides). Acked late and idempotent: the database decides what a delivery does, so a redelivered
or duplicated message does nothing twice, and a lost one is re-sent by the reconciler. The coordinator
sends them by name through the outbox (experiments.queues); episodes are runs' run_episode tasks."""

from celery import shared_task

from runs.tasks import track

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
    """Messages queued before episodes were tasks of their own: queue the candidate's episodes."""
    coordinator.evaluate_candidate(candidate_id, split)


for _name in (COORDINATE_RUN, ACTOR_STEP):
    track(_name)
