"""Error answers for the whole site (handler400/403/404/500 in aspire_web/urls.py) and the 503 of a
database that is away (aspire_web/middleware.py).

Under /api/ the answer is JSON, ``{"detail": <text>, "code": <word>}`` like DRF's own errors; elsewhere a
small page. None ever shows a traceback, a setting or the URL patterns (those are DEBUG pages, and DEBUG
is off unless ASPIRE_DEBUG=1). The 500 and 503 pages are rendered without the request context: the
database (sessions, the signed-in user) may be the very thing that failed.
"""

from __future__ import annotations

import logging
import sys

from django.db import InterfaceError, OperationalError
from django.http import HttpResponse, JsonResponse
from django.template import loader

log = logging.getLogger(__name__)

#: Seconds a client should wait before retrying after a 503 (the SQLite busy timeout is 30 s; most locks
#: are gone in well under that).
RETRY_AFTER_S = 5


def wants_json(request) -> bool:
    """Whether ``request`` gets JSON errors: API paths, or a client that asks for JSON and not HTML."""
    if request.path.startswith("/api/"):
        return True
    accept = request.headers.get("Accept", "")
    return "application/json" in accept and "text/html" not in accept


def _answer(request, status: int, code: str, detail: str, template: str, with_context: bool = True) -> HttpResponse:
    if wants_json(request):
        return JsonResponse({"detail": detail, "code": code}, status=status)
    try:
        html = loader.render_to_string(template, {"detail": detail}, request=request if with_context else None)
    except (OperationalError, InterfaceError):  # base.html loads the signed-in user: the database is away
        if status == 503:
            raise  # pragma: no cover - the 503 page is rendered without the request
        return unavailable(request, "The database is busy or unreachable; try again in a few seconds.")
    except Exception:  # the page itself failed: plain text, never a 500 from the error handler
        log.error("error page %s could not be rendered; answering plain text", template, exc_info=True)
        return HttpResponse(detail, status=status, content_type="text/plain; charset=utf-8")
    return HttpResponse(html, status=status)


def bad_request(request, exception=None):
    return _answer(request, 400, "bad_request", "The request could not be understood.", "400.html")


def permission_denied(request, exception=None):
    return _answer(request, 403, "permission_denied", "You may not do this.", "403.html")


def page_not_found(request, exception=None):
    return _answer(request, 404, "not_found", "Not found.", "404.html")


def unavailable(request, detail: str = "The service is busy; try again in a few seconds.") -> HttpResponse:
    """503 with ``Retry-After`` (RETRY_AFTER_S seconds)."""
    response = _answer(request, 503, "service_unavailable", detail, "503.html", with_context=False)
    response["Retry-After"] = str(RETRY_AFTER_S)
    return response


def server_error(request):
    """500, or 503 when the exception being handled is the database being away (raised outside a view,
    e.g. in a middleware, where DatabaseUnavailableMiddleware does not see it)."""
    exc = sys.exc_info()[1]
    if isinstance(exc, (OperationalError, InterfaceError)):
        return unavailable(request, "The database is busy or unreachable; try again in a few seconds.")
    return _answer(
        request, 500, "server_error", "Something went wrong on our side; it was logged.", "500.html", with_context=False
    )
