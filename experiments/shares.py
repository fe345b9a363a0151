"""What a run's share link opens of an experiment beyond the run page (registered in
ExperimentsConfig.ready()): each actor's conversation page and its JSON download. A link to another run,
or to one episode, opens neither (404); the conversation's keyframe thumbnails go through the same
token (runs.shares serves a shared run's keyframes)."""

from __future__ import annotations

from django.http import Http404
from django.shortcuts import get_object_or_404, render

from runs.models import Actor
from runs.shares import covers_run
from sharing.models import ShareLink
from sharing.targets import SharedPage, register_page

from . import conversations
from .views import conversation_download


def _shared_actor(link: ShareLink, pk: int) -> Actor:
    actor = get_object_or_404(Actor.objects.select_related("run", "task"), pk=pk)
    if not covers_run(link, actor.run_id):
        raise Http404("not part of this share")
    return actor


def _shared_conversation(request, link: ShareLink, token: str, pk: int):
    actor = _shared_actor(link, pk)
    return render(request, "experiments/conversation.html", conversations.conversation_context(actor, token))


def _shared_conversation_json(request, link: ShareLink, token: str, pk: int):
    return conversation_download(_shared_actor(link, pk))


def register_shared_pages() -> None:
    register_page(SharedPage("actors/<int:pk>/conversation/", "actor_conversation", _shared_conversation))
    register_page(SharedPage("actors/<int:pk>/conversation.json", "actor_conversation_json", _shared_conversation_json))
