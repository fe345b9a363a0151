"""Fixtures shared by the tests of every app (``<app>/tests/``); an app's own fixtures live in its
``<app>/tests/conftest.py``, its row factories in ``<app>/tests/factories.py``, and support code that is
not a fixture in the ``testing`` package.

The engine's tests (worker/tests) are plain Python: this module imports nothing of Django, the apps or
the web stack at import time, only inside the fixtures that need them, so ``pytest -p no:django
worker/tests`` collects and runs without Django.
"""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent


# The engine (no Django)


@pytest.fixture(autouse=True)
def _no_spare_sandbox_left():
    """A test that warmed the engine up (worker.engine.warm_up) leaves its thread starting spare sandbox
    processes; the next test starts without one."""
    yield
    from worker.sandbox import host

    host.keep_spare(False)


@pytest.fixture(scope="session")
def lift_spec():
    """The robosuite Lift task of the engine's catalog."""
    from worker.sim.catalog import get_task

    return get_task("robosuite:Lift")


@pytest.fixture(scope="session")
def starter_program():
    """The source of the built-in camera-only Lift program (worker/programs/robosuite_lift.py)."""
    return (ROOT / "worker" / "programs" / "robosuite_lift.py").read_text()


# The broker


@pytest.fixture
def broker():
    """The test Redis (CELERY_BROKER_URL) with the project's queues and the unacked set emptied before
    and after, and the outbox's view of the broker fresh; yields a redis client of it."""
    import redis
    from django.conf import settings

    from runs import outbox

    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    client.delete(*outbox.queue_names(), "unacked", "unacked_index")
    outbox.forget_broker()
    yield client
    client.delete(*outbox.queue_names(), "unacked", "unacked_index")
    client.close()
    outbox.forget_broker()


@pytest.fixture
def no_holds_left():
    """Claims a test makes and never finishes would stay held by this process for the next test."""
    yield
    from runs import heartbeat

    heartbeat.drop_all()


# Accounts, the catalog and clients


@pytest.fixture
def user(db):
    """An account ("api-user") that owns what the tests make."""
    from accounts.tests.factories import UserFactory

    return UserFactory(username="api-user")


@pytest.fixture
def api(user):
    """A REST client authenticated as ``user`` with an API token, as scripts call the API."""
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


@pytest.fixture
def owner_client(user):
    """A Django test client signed in as ``user``."""
    from django.test import Client

    c = Client()
    c.force_login(user)
    return c


@pytest.fixture
def tasks(db):
    """Every task of the engine's catalog as a Task row (runs.services.sync_catalog)."""
    from runs import services

    services.sync_catalog()


# Live infrastructure: a Celery worker, an ASGI server, a browser


@pytest.fixture
def celery_worker(transactional_db):
    """A real Celery worker (solo pool, in a thread) consuming from the real Redis broker."""
    from testing.celery_worker import celery_worker_thread

    with celery_worker_thread() as worker:
        yield worker


@pytest.fixture
def asgi_live_server(transactional_db):
    """Daphne serving the site (websockets included) from a forked process; ``.url`` and ``.ws_url``."""
    from testing.asgi import serve_asgi

    with serve_asgi() as server:
        yield server


@pytest.fixture
def browser():
    """Playwright's chromium: Debian's build, never a downloaded browser."""
    import os

    from testing.browser import CHROMIUM, chromium

    if not os.path.exists(CHROMIUM):
        pytest.fail("Debian's chromium is missing: scripts/install.sh --test installs it")
    with chromium() as b:
        yield b


# The database the suite runs on (aspire_web/settings/test.py: SQLite, or PostgreSQL with ASPIRE_TEST_DB)


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "postgres: needs row locks (select_for_update), so PostgreSQL as the test database "
        "(ASPIRE_TEST_DB=postgres); skipped on SQLite",
    )


def pytest_runtest_setup(item):
    if item.get_closest_marker("postgres") is None:
        return
    from django.conf import settings

    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        pytest.skip(
            "SQLite has no row locks (select_for_update is a no-op there and every write transaction "
            "is serialised), so this race cannot happen: run with ASPIRE_TEST_DB=postgres"
        )
