"""Serving keyframe images: one response for the pages, the REST API and share links.

The callers decide who may see a keyframe (runs.access, runs.shares); this answers for one they
allowed, from the media storage (runs.storage): a 302 to the storage's signed URL when media are served
by redirect (``ASPIRE_MEDIA_SERVE=redirect``, the default with S3), else the file itself, read from the
storage by this process.
"""

from typing import BinaryIO

from django.http import FileResponse, Http404, HttpResponseRedirect

from . import storage


def stored_media(name: str, what: str) -> HttpResponseRedirect | BinaryIO:
    """A stored file, for a caller that decided the viewer may see it: a 302 to the storage's signed URL
    (``ASPIRE_MEDIA_SERVE=redirect``; Cache-Control for part of the URL's life) or the file opened for
    reading (the caller closes it, or hands it to a FileResponse). ``what`` names the file in the 404
    raised when ``name`` is empty, not a relative path inside the storage, or gone. Other storage errors
    propagate (a 500)."""
    if not name:
        raise Http404(f"{what} has no file")
    media = storage.default_storage()
    try:
        url = storage.signed_url(name, media)
    except ValueError:
        raise Http404(f"{what} file is missing") from None
    if url is not None:
        response = HttpResponseRedirect(url)
        # The signed URL expires: a client may reuse the redirect only for part of its life.
        response["Cache-Control"] = f"private, max-age={storage.redirect_cache_seconds(media)}"
        return response
    try:
        return storage.open_media(name, media)
    except FileNotFoundError:
        raise Http404(f"{what} file is missing") from None


def keyframe_response(keyframe) -> FileResponse | HttpResponseRedirect:
    """The keyframe's JPEG (or a redirect to a signed URL of it); 404 as :func:`stored_media`."""
    found = stored_media(keyframe.image.name, "keyframe")
    if isinstance(found, HttpResponseRedirect):
        return found
    response = FileResponse(found, content_type="image/jpeg")
    # Keyframes never change once written; private because they are only for this viewer.
    response["Cache-Control"] = "private, max-age=86400"
    return response
