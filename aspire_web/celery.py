"""Celery application. Each app's tasks live in its own tasks.py (thin: ids in, one service call), found
by autodiscovery: runs.tasks, experiments.tasks, skills.tasks.

aspire_web.brokerfix is installed first: it keeps kombu's Redis transport from killing the worker when the
broker goes away (kombu issue 970; the module says how), in every process that loads this app."""

import os

from celery import Celery

# logfilters: one-line logs for broker outages in the worker's own handlers (it connects Celery signals).
from . import brokerfix, logfilters  # noqa: F401

brokerfix.install()

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aspire_web.settings.local")

app = Celery("aspire_web")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
