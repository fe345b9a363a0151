"""Polling for what another thread or process does: the Celery worker, the live server, a browser."""

import time


def wait_for(predicate, timeout=120.0, interval=0.25):
    """The first truthy value of ``predicate()``, polled every ``interval`` seconds; AssertionError after
    ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")
