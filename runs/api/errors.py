"""The REST API's exception handler (REST_FRAMEWORK["EXCEPTION_HANDLER"]): DRF's own, plus a 413 for a
request body over the size limit."""

from __future__ import annotations

from django.core.exceptions import RequestDataTooBig
from rest_framework.views import exception_handler as drf_exception_handler

from .parsers import too_large


def exception_handler(exc, context):
    """DRF's handler, plus: a body over DATA_UPLOAD_MAX_MEMORY_SIZE (Django raises RequestDataTooBig when
    DRF reads request.body for JSON and form bodies, or a multipart field) answers 413 naming the limit,
    where Django alone would answer a bare 400."""
    if isinstance(exc, RequestDataTooBig):
        request = context.get("request")
        size = None
        if request is not None:
            try:
                size = int(request.META.get("CONTENT_LENGTH") or 0) or None
            except ValueError:
                size = None
        exc = too_large(size)
    return drf_exception_handler(exc, context)
