"""The experiment tasks' names and queues, and sending them once the current transaction commits.

The tasks themselves are in experiments/tasks.py; they are sent by name so the coordinator and the task
module do not import each other. Each kind of step goes to its own queue when ``ASPIRE["QUEUES"]``
names one (``ASPIRE_QUEUE_COORDINATOR``, ``ASPIRE_QUEUE_ACTORS``, ``ASPIRE_QUEUE_EPISODES``), else to the
default queue.
"""

from __future__ import annotations

from celery import current_app
from django.conf import settings
from django.db import transaction

COORDINATE_RUN = "aspire.coordinate_run"
ACTOR_STEP = "aspire.actor_step"
EVALUATE_CANDIDATE = "aspire.evaluate_candidate"

#: task name -> the ASPIRE["QUEUES"] key of its queue
QUEUE_OF = {COORDINATE_RUN: "coordinator", ACTOR_STEP: "actors", EVALUATE_CANDIDATE: "episodes"}


def queue(name: str) -> str:
    """The queue of one kind of step: "coordinator", "actors" or "episodes"."""
    return settings.ASPIRE["QUEUES"].get(name) or settings.CELERY_TASK_DEFAULT_QUEUE


def send_after_commit(task_name: str, *args) -> None:
    """Queue ``task_name(*args)`` on its queue when the current transaction commits (at once outside one)."""
    transaction.on_commit(lambda: current_app.send_task(task_name, args, queue=queue(QUEUE_OF[task_name])))
