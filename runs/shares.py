"""Share links on runs and episode traces: the kinds runs registers with sharing (RunsConfig.ready()), and
what such a link lets its holder read. A run link covers the run, its episodes' traces and their
keyframes; an episode link covers that one trace and its keyframes."""

from __future__ import annotations

from django.http import Http404
from django.shortcuts import get_object_or_404, render

from sharing.models import ShareLink
from sharing.signals import link_revoked
from sharing.targets import SharedPage, ShareTarget, register_page, register_target

from . import live
from .access import can_view_run
from .media import keyframe_response
from .media_views import shared_recording, shared_scene3d, shared_scene3d_rrd
from .models import Episode, Keyframe, Run
from .presenters import run_context, trace_context


def covers_run(link: ShareLink, run_id: int) -> bool:
    return link.kind == ShareLink.Kind.RUN and link.target_id == run_id


def covers_episode(link: ShareLink, episode: Episode) -> bool:
    if link.kind == ShareLink.Kind.EPISODE:
        return episode.pk == link.target_id
    return covers_run(link, episode.run_id)


def _shared_episode(request, link: ShareLink, token: str, pk: int):
    episode = get_object_or_404(Episode.objects.select_related("candidate", "run__task"), pk=pk)
    if not covers_episode(link, episode):
        raise Http404("not part of this share")
    ctx = trace_context(episode, share_token=token)
    ctx["shared_run"] = link.kind == ShareLink.Kind.RUN
    return render(request, "runs/episode.html", ctx)


def _shared_keyframe(request, link: ShareLink, token: str, pk: int):
    keyframe = get_object_or_404(Keyframe.objects.select_related("episode"), pk=pk)
    if not covers_episode(link, keyframe.episode):
        raise Http404("not part of this share")
    return keyframe_response(keyframe)


def _close_live_pages(sender, link: ShareLink, **kwargs) -> None:
    """A revoked link's open run and trace pages are disconnected (runs.consumers closes them)."""
    if link.run_id:
        live.publish(link.run_id, {"type": "share.revoked", "link": link.pk})


def register_share_kinds() -> None:
    """Let share links point at runs and episode traces, open a shared run's traces and keyframes, and
    cut off live pages when a link is revoked."""
    register_target(
        ShareTarget(
            kind=ShareLink.Kind.RUN,
            get=lambda pk: Run.objects.filter(pk=pk).first(),
            readable_by=can_view_run,
            render=lambda request, run, token: render(request, "runs/detail.html", run_context(run, share_token=token)),
            run_of=lambda run: run,
        )
    )
    register_target(
        ShareTarget(
            kind=ShareLink.Kind.EPISODE,
            get=lambda pk: Episode.objects.filter(pk=pk).first(),
            readable_by=lambda user, episode: can_view_run(user, episode.run),
            render=lambda request, episode, token: render(
                request, "runs/episode.html", trace_context(episode, share_token=token)
            ),
            run_of=lambda episode: episode.run,
        )
    )
    register_page(SharedPage("episodes/<int:pk>/", "episode", _shared_episode))
    register_page(SharedPage("keyframes/<int:pk>.jpg", "keyframe", _shared_keyframe, private=False))
    register_page(SharedPage("episodes/<int:pk>/recording.mp4", "recording", shared_recording, private=False))
    register_page(SharedPage("episodes/<int:pk>/scene3d.json.gz", "scene3d", shared_scene3d, private=False))
    register_page(SharedPage("episodes/<int:pk>/episode.rrd", "scene3d-rrd", shared_scene3d_rrd, private=False))
    link_revoked.connect(_close_live_pages, dispatch_uid="runs.shares.close_live_pages")
