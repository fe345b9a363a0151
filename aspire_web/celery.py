"""Celery application. Each app's tasks live in its own tasks.py (thin: ids in, one service call), found
by autodiscovery: runs.tasks, experiments.tasks, skills.tasks."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aspire_web.settings.local")

app = Celery("aspire_web")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
