"""pytest-django settings: SQLite in a temporary file (or PostgreSQL), a throwaway media root and Redis,
fast hashing.

The database: SQLite unless ``ASPIRE_TEST_DB=postgres`` or ``DATABASE_URL`` is set (``ASPIRE_TEST_DB=sqlite``
forces SQLite). PostgreSQL is the server of ``ASPIRE_TEST_POSTGRES_URL`` (what scripts/test.sh sets), else
of ``DATABASE_URL``, else the one at 127.0.0.1:5432 as user postgres (CI's and this machine's; trust
auth). pytest-django creates a test database on that server, named per test session
(``test_aspire_<pid>``) so two suites running at once on one server never share one, and drops it at
the end. The Celery worker thread, the forked Daphne live server and the racing worker processes of
testing.hosts.race share that database with the test.
"""

import atexit
import os
import tempfile
from pathlib import Path

if not os.environ.get("REDIS_URL"):
    # A fresh machine has no Redis service: the suite runs its own, private and throwaway, and the
    # URL reaches the base settings below and any process the tests start.
    from aspire_web import localredis

    _redis, os.environ["REDIS_URL"] = localredis.start(Path(tempfile.mkdtemp(prefix="aspire-test-redis-")))
    atexit.register(_redis.kill)

from .base import *  # noqa: F401,F403,E402
from .base import sqlite_database  # noqa: E402

#: The PostgreSQL server ASPIRE_TEST_DB=postgres selects (the database named here is only connected to).
LOCAL_POSTGRES_URL = "postgres://postgres@127.0.0.1:5432/postgres"

SECRET_KEY = "test-only-not-secret"
DEBUG = False
_test_db_kind = os.environ.get("ASPIRE_TEST_DB", "").strip().lower()
if _test_db_kind not in ("", "sqlite", "postgres"):
    raise ValueError(f"ASPIRE_TEST_DB={_test_db_kind!r}: use sqlite or postgres")
if _test_db_kind == "postgres" or (os.environ.get("DATABASE_URL") and _test_db_kind != "sqlite"):
    import dj_database_url  # noqa: E402

    _url = os.environ.get("ASPIRE_TEST_POSTGRES_URL") or os.environ.get("DATABASE_URL") or LOCAL_POSTGRES_URL
    # No persistent connections: the live server's and the Celery worker thread's connections would
    # outlive a test and keep the test database from being flushed or dropped.
    DATABASES = {
        "default": {**dj_database_url.parse(_url, conn_max_age=0), "TEST": {"NAME": f"test_aspire_{os.getpid()}"}}
    }
else:
    # A file, not :memory:, so the Celery worker thread and the live server of the end-to-end tests share
    # it with ordinary SQLite locking (shared-cache memory databases fail with "table is locked").
    _test_db = Path(tempfile.mkdtemp(prefix="aspire-test-db-")) / "test.sqlite3"
    DATABASES = {"default": {**sqlite_database(_test_db), "TEST": {"NAME": str(_test_db)}}}
MEDIA_ROOT = Path(os.environ.get("ASPIRE_MEDIA_ROOT", tempfile.mkdtemp(prefix="aspire-test-media-")))
# Workers the tests start take work at once; the warm-up has its own test (ASPIRE_WARM_UP_TASKS sets it).
ASPIRE["WARM_UP_TASKS"] = [k.strip() for k in os.environ.get("ASPIRE_WARM_UP_TASKS", "").split(",") if k.strip()]  # noqa: F405
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
# Files come from the finders; an empty root keeps WhiteNoise from warning that collectstatic never ran.
STATIC_ROOT = Path(tempfile.mkdtemp(prefix="aspire-test-static-"))
LOGGING = {"version": 1, "disable_existing_loggers": False}
