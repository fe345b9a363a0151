"""Celery tasks of runs: thin, ids in, one service call. Acked late and idempotent: the database decides
what a delivery does (runs.work claims each episode), so a redelivered or duplicated message does
nothing twice. Messages are sent by name through the outbox (runs.outbox).

Worker signals wired here: every worker process beats a heartbeat (runs.heartbeat; the main process
too when it runs tasks itself, the solo and threads pools), a worker reconciles at start and then
periodically (runs.reconcile), and a task's start marks its outbox rows picked up.
"""

import logging

from celery import shared_task, signals
from celery.contrib.testing.worker import test_worker_stopped
from django.conf import settings

from . import outbox, reconcile, services, work

log = logging.getLogger(__name__)

TASK_OPTIONS = {"acks_late": True, "reject_on_worker_lost": True}
#: Names of the tasks whose start marks their outbox rows picked up (the others have no outbox rows
#: the reconciler looks at).
TRACKED = set()


def _episode_time_limit() -> int:
    """One episode: the longest wall limit a run may ask (MAX_EPISODE_WALL_SECONDS, 300 s) plus
    building the simulator, resetting it and writing keyframes (2 min margin)."""
    return int(settings.ASPIRE.get("MAX_EPISODE_WALL_SECONDS", 300)) + 120


@shared_task(name=work.RUN_EPISODE, time_limit=_episode_time_limit(), **TASK_OPTIONS)
def run_episode_task(candidate_id: int, split: str, seed: int) -> None:
    work.run_episode(candidate_id, split, seed)


@shared_task(name=services.EXECUTE_RUN, **TASK_OPTIONS)
def execute_run_task(run_id: int) -> None:
    services.execute_run(run_id)


@shared_task(name=reconcile.RECONCILE, acks_late=True)
def reconcile_task() -> None:
    reconcile.reconcile()


TRACKED.update({work.RUN_EPISODE, services.EXECUTE_RUN})


def track(task_name: str) -> None:
    """Have the start of ``task_name`` mark its outbox rows picked up (upper layers' tasks)."""
    TRACKED.add(task_name)


# -- worker signals --------------------------------------------------------------------------------------
def _queues(sender=None) -> list[str]:
    try:
        app = getattr(sender, "app", None)
        if app is None:
            from celery import current_app as app
        return sorted(app.amqp.queues.consume_from or app.amqp.queues) or [settings.CELERY_TASK_DEFAULT_QUEUE]
    except Exception:
        return [settings.CELERY_TASK_DEFAULT_QUEUE]


def _warm_up() -> None:
    """Run ASPIRE["WARM_UP_TASKS"]' warm-up episodes (worker.engine.warm_up) on this thread, the one that
    will run this process's episodes, and have it start each program's sandbox process ahead of time
    (worker.sandbox.host.keep_spare), with or without warm-up tasks."""
    from worker.engine import warm_up
    from worker.sandbox.host import keep_spare

    keep_spare(True)  # each program's sandbox process starts while the previous episode finishes
    keys = settings.ASPIRE.get("WARM_UP_TASKS") or []
    if keys:
        took = warm_up(keys, log)
        log.info("worker warm: %s", ", ".join(f"{k} {s:.1f} s" for k, s in took.items()) or "nothing warmed")


@signals.worker_process_init.connect(weak=False)
def _child_started(**kwargs):
    """A prefork child: its own heartbeat (its own name, ``aspire@host:pid``), then the warm-up before
    it takes work (tasks run on this thread)."""
    from . import heartbeat

    heartbeat.start_heartbeat_thread(_queues())
    _warm_up()


@signals.worker_ready.connect(weak=False)
def _worker_ready(sender=None, **kwargs):
    """The worker is consuming: beat here too when tasks run in this process, and reconcile now and
    every ASPIRE["RECONCILE_SECONDS"]."""
    from . import heartbeat

    pool = type(getattr(sender, "pool", None)).__module__
    if not pool.endswith((".prefork", ".solo")):  # those beat and warm up in worker_process_init
        heartbeat.start_heartbeat_thread(_queues(sender))
        _warm_up()  # a thread pool: imports and models are shared; simulators are per thread
    reconcile.start_reconcile_loop()


@signals.worker_shutdown.connect(weak=False)
def _worker_shutdown(**kwargs):
    """A warm shutdown: stop reconciling and beating, and leave the pool at once (the row goes)."""
    from . import heartbeat

    reconcile.stop_reconcile_loop()
    heartbeat.stop_heartbeat_thread(forget=True)


# An embedded worker (celery.contrib.testing, the tests' worker thread) stops without worker_shutdown.
test_worker_stopped.connect(_worker_shutdown, weak=False)


@signals.worker_process_shutdown.connect(weak=False)
def _child_shutdown(**kwargs):
    from . import heartbeat

    heartbeat.stop_heartbeat_thread(forget=True)


@signals.task_prerun.connect(weak=False)
def _task_started(sender=None, args=None, **kwargs):
    name = getattr(sender, "name", "")
    if name in TRACKED:
        try:
            outbox.picked(name, list(args or ()))
        except Exception as exc:  # a bookkeeping miss only makes a later re-send more likely
            log.warning("could not mark %s picked up: %s", name, exc)
