"""Celery application. Tasks live in worker/tasks.py (thin: ids in, one service call)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aspire_web.settings.local")

app = Celery("aspire_web")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.imports = ("worker.tasks",)
