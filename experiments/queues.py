"""The experiment tasks' names and queues, and sending them through the outbox.

The tasks themselves are in experiments/tasks.py; they are sent by name so the coordinator and the task
module do not import each other. Each kind of step goes to its own queue when ``ASPIRE["QUEUES"]``
names one (``ASPIRE_QUEUE_COORDINATOR``, ``ASPIRE_QUEUE_ACTORS``, ``ASPIRE_QUEUE_EPISODES``), else to the
default queue. Episodes are runs' ``aspire.run_episode`` tasks (runs.work), on the episodes queue.

Every message is an Outbox row written in the caller's transaction (runs.outbox.send) and published
once it commits, so a step's state change and the message that carries the work on commit together; a
broker that is away leaves the row for the relay.
"""

from __future__ import annotations

from django.conf import settings

from runs import outbox, work

COORDINATE_RUN = "aspire.coordinate_run"
ACTOR_STEP = "aspire.actor_step"
#: Kept for messages queued before episodes became tasks of their own: it only fans the episodes out.
EVALUATE_CANDIDATE = "aspire.evaluate_candidate"
RUN_EPISODE = work.RUN_EPISODE

#: task name -> the ASPIRE["QUEUES"] key of its queue
QUEUE_OF = {
    COORDINATE_RUN: "coordinator",
    ACTOR_STEP: "actors",
    EVALUATE_CANDIDATE: "episodes",
    RUN_EPISODE: "episodes",
}


def queue(name: str) -> str:
    """The queue of one kind of step: "coordinator", "actors" or "episodes"."""
    return settings.ASPIRE["QUEUES"].get(name) or settings.CELERY_TASK_DEFAULT_QUEUE


def send_after_commit(task_name: str, *args) -> None:
    """Queue ``task_name(*args)`` on its queue: an outbox row now, published when the current
    transaction commits (at once outside one)."""
    outbox.send(task_name, list(args), queue=queue(QUEUE_OF[task_name]))


def send_episode(candidate_id: int, split: str, seed: int) -> None:
    """Queue one episode of a candidate (runs.work.run_episode)."""
    send_after_commit(RUN_EPISODE, int(candidate_id), str(split), int(seed))
