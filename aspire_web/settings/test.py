"""pytest-django settings: SQLite in a temporary file, a throwaway media root and Redis, fast hashing."""

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

SECRET_KEY = "test-only-not-secret"
DEBUG = False
# A file, not :memory:, so the Celery worker thread and the live server of the end-to-end tests share
# it with ordinary SQLite locking (shared-cache memory databases fail with "table is locked").
_test_db = Path(tempfile.mkdtemp(prefix="aspire-test-db-")) / "test.sqlite3"
DATABASES = {"default": {**sqlite_database(_test_db), "TEST": {"NAME": str(_test_db)}}}
MEDIA_ROOT = Path(os.environ.get("ASPIRE_MEDIA_ROOT", tempfile.mkdtemp(prefix="aspire-test-media-")))
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
# Files come from the finders; an empty root keeps WhiteNoise from warning that collectstatic never ran.
STATIC_ROOT = Path(tempfile.mkdtemp(prefix="aspire-test-static-"))
LOGGING = {"version": 1, "disable_existing_loggers": False}
