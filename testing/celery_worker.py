"""A real Celery worker (solo pool, in a thread) consuming from the real Redis broker."""

import logging
from contextlib import contextmanager


@contextmanager
def celery_worker_thread():
    """The project's Celery app served by a worker thread until the block ends; then the simulators that
    thread built are finalised (collect_worker_simulators)."""
    from celery.contrib.testing.worker import start_worker
    from django.conf import settings

    from aspire_web.celery import app

    root = logging.getLogger()
    level = root.level  # the embedded worker sets the root logger to its own level (ERROR); put it back
    app.control.purge()
    try:
        with start_worker(
            app,
            pool="solo",
            concurrency=1,
            perform_ping_check=False,
            shutdown_timeout=60,
            queues=[settings.CELERY_TASK_DEFAULT_QUEUE],
        ) as worker:
            yield worker
    finally:
        root.setLevel(level)
    collect_worker_simulators()


def collect_worker_simulators():
    """Finalise the simulators the worker thread built while this thread holds none.

    A simulator's render context frees its GL buffers in whichever thread finalises it, inside that
    thread's current OSMesa context: collected here, the worker thread's simulators would free this
    thread's buffers and its own simulator would render garbage depth from then on. (Production runs
    each simulator in one worker process's thread for its whole life.)
    """
    import gc

    from worker.engine import simulators
    from worker.sim import catalog

    for spec in catalog.TASKS.values():
        simulators().drop(spec)
    gc.collect()
