"""A database that is locked or unreachable answers 503 Service Unavailable (with Retry-After), not 500.

SQLite under a long write (or PostgreSQL restarting) raises OperationalError/InterfaceError out of any
view; that is a passing condition of the instance, not a bug in the request, so the client is told to
try again: JSON ``{"detail": ..., "code": "database_unavailable"}`` under /api/, a small page otherwise.
One log line per occurrence, no traceback (aspire_web/logfilters.py thins repeats).
"""

from __future__ import annotations

import logging

from django.db import InterfaceError, OperationalError

from .views import unavailable

log = logging.getLogger(__name__)


class DatabaseUnavailableMiddleware:
    """Turns OperationalError/InterfaceError raised by a view into a 503 answer."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not isinstance(exception, (OperationalError, InterfaceError)):
            return None
        log.warning(
            "database unavailable during %s %s: %s: %s",
            request.method,
            request.path,
            type(exception).__name__,
            str(exception).splitlines()[0][:200] if str(exception) else "",
        )
        return unavailable(request, "The database is busy or unreachable; try again in a few seconds.")
