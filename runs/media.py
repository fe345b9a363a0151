"""Serving keyframe images: one response for the pages, the REST API and share links."""

from pathlib import Path

from django.conf import settings
from django.http import FileResponse, Http404


def keyframe_response(keyframe) -> FileResponse:
    """The keyframe's JPEG from MEDIA_ROOT; 404 when the file is gone or its path leaves MEDIA_ROOT."""
    root = Path(settings.MEDIA_ROOT).resolve()
    path = (root / keyframe.image.name).resolve()
    if root not in path.parents or not path.is_file():
        raise Http404("keyframe file is missing")
    response = FileResponse(path.open("rb"), content_type="image/jpeg")
    # Keyframes never change once written; private because they are only for this viewer.
    response["Cache-Control"] = "private, max-age=86400"
    return response
