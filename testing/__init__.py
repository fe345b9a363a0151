"""Test support shared by every app's tests (not tests themselves): an ASGI live server, Playwright with
Debian's chromium, a Celery worker in a thread, polling, share links through the form.

The fixtures that wrap these live in the root ``conftest.py``; each app's row factories live in its own
``<app>/tests/factories.py``. Nothing here imports an app, and Django, Channels, Celery and Playwright are
imported inside the functions that need them, so importing this package costs nothing.
"""
