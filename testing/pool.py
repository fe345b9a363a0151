"""The worker pool played in the test's own process: the real messages taken off the real Redis queue
in order (as a worker does, marking each picked up in the outbox) and their Celery tasks' bodies run
here, so a test steps through a run's messages deterministically."""

from __future__ import annotations

import base64
import json
from typing import Callable


def drive(broker, limit: int = 200, on_episode: Callable[[list], bool] | None = None) -> list[tuple[str, list]]:
    """Run queued tasks until the ``aspire`` queue is empty; returns each handled (task name, args).
    ``on_episode(args)`` may take an episode over (return True: it is not run). AssertionError when
    the queue has not emptied after ``limit`` messages."""
    from experiments import coordinator
    from experiments.queues import ACTOR_STEP, COORDINATE_RUN, EVALUATE_CANDIDATE
    from runs import outbox, work

    handlers = {
        COORDINATE_RUN: coordinator.coordinate,
        ACTOR_STEP: coordinator.actor_step,
        EVALUATE_CANDIDATE: coordinator.evaluate_candidate,
    }
    handled = []
    for _ in range(limit):
        raw = broker.rpop("aspire")
        if raw is None:
            return handled
        envelope = json.loads(raw)
        task = envelope["headers"]["task"]
        args = json.loads(base64.b64decode(envelope["body"]))[0]
        outbox.picked(task, args)
        handled.append((task, args))
        if task in handlers:
            handlers[task](*args)
        elif task == work.RUN_EPISODE:
            if on_episode is None or not on_episode(args):
                work.run_episode(*args)
    raise AssertionError(f"the queue did not empty in {limit} messages")
