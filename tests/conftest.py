import pytest

from worker.sim.catalog import get_task


@pytest.fixture(scope="session")
def lift_spec():
    return get_task("robosuite:Lift")


@pytest.fixture(scope="session")
def starter_program():
    from pathlib import Path

    return (Path(__file__).resolve().parent.parent / "worker" / "programs" / "robosuite_lift.py").read_text()


@pytest.fixture
def celery_worker(transactional_db):
    """A real Celery worker (solo pool, in a thread) consuming from the real Redis broker."""
    from celery.contrib.testing.worker import start_worker
    from django.conf import settings

    from aspire_web.celery import app

    app.control.purge()
    with start_worker(
        app, pool="solo", concurrency=1, perform_ping_check=False, shutdown_timeout=60,
        queues=[settings.CELERY_TASK_DEFAULT_QUEUE],
    ) as worker:
        yield worker
    _collect_worker_simulators()


def _collect_worker_simulators():
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


def wait_for(predicate, timeout=120.0, interval=0.25):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")
