"""Episode recordings (the run setting ``recording``) and 3D views (worker.robot.scene3d): the MP4 and
the gzip'd JSON served after the same access checks as keyframes, to a signed-in viewer of the run
(runs.access) or a share link covering the episode (runs.shares registers the shared routes), and the
trace page's player and 3D view data.

Browsers seek in a <video> with HTTP range requests, so the streamed answer honours a single
``Range: bytes=a-b`` (206 with Content-Range; 416 for a range outside the file); with
``ASPIRE_MEDIA_SERVE=redirect`` the object store's signed URL answers ranges itself.
"""

from __future__ import annotations

import re

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.views.decorators.http import require_GET

from . import storage
from .access import visible_runs
from .media import stored_media
from .models import Episode

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def _media_url(episode: Episode, stored, route: str, share_token: str | None) -> str:
    """The URL of one of ``episode``'s files served by ``route`` (runs: / sharing: names), through the
    share link ``share_token`` when given; "" when ``stored`` (the file field) is empty."""
    if not stored:
        return ""
    if share_token:
        return reverse(f"sharing:{route}", args=[share_token, episode.pk])
    return reverse(f"runs:{route}", args=[episode.pk])


def recording_url(episode: Episode, share_token: str | None = None) -> str:
    """Where the trace page fetches ``episode``'s video ("" when it has none)."""
    return _media_url(episode, episode.recording, "recording", share_token)


def scene3d_url(episode: Episode, share_token: str | None = None) -> str:
    """Where the trace page fetches ``episode``'s 3D view ("" when it has none)."""
    return _media_url(episode, episode.scene3d, "scene3d", share_token)


def scene3d_rrd_url(episode: Episode, share_token: str | None = None) -> str:
    """Where the trace page downloads ``episode``'s 3D view as a Rerun recording ("" when it has none)."""
    return _media_url(episode, episode.scene3d, "scene3d-rrd", share_token)


def player_data(episode: Episode, share_token: str | None = None) -> dict | None:
    """The trace page player's configuration: the video's URL and its index (fps, frame times, each
    call's [seq, t_start, t_end]); None when the episode has no recording."""
    url = recording_url(episode, share_token)
    if not url:
        return None
    index = episode.recording_index or {}
    return {
        "url": url,
        "fps": index.get("fps", 2.0),
        "duration": index.get("duration", 0),
        "frames": index.get("frames", []),
        "calls": index.get("calls", []),
        "truncated": bool(index.get("truncated")),
    }


def recording_response(request, episode: Episode) -> HttpResponse:
    """The episode's MP4 (or a redirect to a signed URL of it), honouring a byte range; 404 when it
    has none or the file is gone."""
    found = stored_media(episode.recording.name, "the recording")
    if isinstance(found, HttpResponseRedirect):
        return found
    with found as fh:
        data = fh.read()  # a recording is small (tens to hundreds of KiB)
    size = len(data)
    status, body, extra = 200, data, {}
    match = _RANGE.match(request.headers.get("Range", "").strip())
    if match and (match[1] or match[2]):
        if match[1]:
            start = int(match[1])
            end = min(int(match[2]), size - 1) if match[2] else size - 1
        else:  # a suffix: the last N bytes
            start, end = max(0, size - int(match[2])), size - 1
        if start >= size or end < start:
            response = HttpResponse(status=416)
            response["Content-Range"] = f"bytes */{size}"
            return response
        status, body = 206, data[start : end + 1]
        extra["Content-Range"] = f"bytes {start}-{end}/{size}"
    response = HttpResponse(body, status=status, content_type="video/mp4")
    response["Accept-Ranges"] = "bytes"
    response["Content-Length"] = str(len(body))
    # A recording never changes once written; private because it is only for this viewer.
    response["Cache-Control"] = "private, max-age=86400"
    for key, value in extra.items():
        response[key] = value
    return response


def scene3d_rrd_response(episode: Episode) -> HttpResponse:
    """The episode's 3D view converted to a Rerun .rrd file (worker.robot.rrd; made on request from the
    stored scene3d.json.gz, about half a second); 404 as :func:`scene3d_response`."""
    from worker.robot import rrd, scene3d

    stored = scene3d_response(episode)
    data = rrd.to_rrd(scene3d.load(stored.content), name=f"episode-{episode.pk}")
    response = HttpResponse(data, content_type="application/octet-stream")
    response["Content-Length"] = str(len(data))
    response["Content-Disposition"] = f'attachment; filename="episode-{episode.pk}.rrd"'
    response["Cache-Control"] = "private, max-age=86400"
    return response


def scene3d_response(episode: Episode) -> HttpResponse:
    """The episode's 3D view as stored (gzip'd JSON, application/gzip; the page inflates it); 404 when it
    has none or the file is gone. Always streamed by this process, never a redirect to the object
    store's signed URL: the page reads it with fetch(), which a bucket on another origin would refuse
    without CORS rules, and the file is small (tens to hundreds of KiB)."""
    name = episode.scene3d.name
    if not name:
        raise Http404("the episode has no 3D view")
    try:
        with storage.open_media(name, storage.default_storage()) as fh:
            data = fh.read()
    except (FileNotFoundError, ValueError):
        raise Http404("the 3D view is missing") from None
    response = HttpResponse(data, content_type="application/gzip")
    response["Content-Length"] = str(len(data))
    response["Content-Disposition"] = f'attachment; filename="episode-{episode.pk}-scene3d.json.gz"'
    # Written once at the episode's end; private because it is only for this viewer.
    response["Cache-Control"] = "private, max-age=86400"
    return response


def _visible_episode(request, pk: int) -> Episode:
    """The episode ``pk`` of a run the signed-in viewer may read (runs.access), else 404."""
    return get_object_or_404(Episode.objects.filter(run__in=visible_runs(request.user).values("pk")), pk=pk)


def _shared_episode(link, pk: int) -> Episode:
    """The episode ``pk`` if the share link covers it, else 404."""
    from .shares import covers_episode

    episode = get_object_or_404(Episode, pk=pk)
    if not covers_episode(link, episode):
        raise Http404("not part of this share")
    return episode


@require_GET
@login_required
def episode_recording(request, pk):
    return recording_response(request, _visible_episode(request, pk))


def shared_recording(request, link, token: str, pk: int):
    """The recording of an episode a share link covers (runs.shares registers the route)."""
    return recording_response(request, _shared_episode(link, pk))


@require_GET
@login_required
def episode_scene3d(request, pk):
    return scene3d_response(_visible_episode(request, pk))


def shared_scene3d(request, link, token: str, pk: int):
    """The 3D view of an episode a share link covers (runs.shares registers the route)."""
    return scene3d_response(_shared_episode(link, pk))


@require_GET
@login_required
def episode_scene3d_rrd(request, pk):
    return scene3d_rrd_response(_visible_episode(request, pk))


def shared_scene3d_rrd(request, link, token: str, pk: int):
    """The Rerun recording of an episode a share link covers (runs.shares registers the route)."""
    return scene3d_rrd_response(_shared_episode(link, pk))
