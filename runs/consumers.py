"""Websockets of the run page and the trace page. Thin: authorise, join the run's group, replay from the
database, forward live events (runs.live describes them).

Protocol (JSON). The client opens the socket, then sends what it already shows:
  run page:   {"type": "resume", "run_seq": <run_seq the page was rendered at; leave out for everything>}
  trace page: {"type": "resume", "after": <last call seq shown, 0 if none>}
The server answers with what the database holds beyond that, then streams:
  run page:   {"type": "fragments", "run_seq", "fragments": [{"id", "html", "parent"}]} — replace the
              element with that id, or append to ``parent`` when it is not on the page yet;
              {"type": "call", "episode", "seq", "primitive", "status", "duration_ms", "committed_at"}
  trace page: {"type": "calls", "calls": [<call>...], "committed_at": <float or null>},
              {"type": "episode", "episode": <EpisodeSerializer data>}, {"type": "reset"}
Ordering: the consumer joins the group before it reads the database, so nothing committed after the read
is missed; what arrives twice is dropped by sequence number; a jump in sequence numbers (a message lost
on the way) triggers a replay from the database. Channels handles one message per consumer at a time,
so a replay and the live stream never interleave.

Access is checked like the pages: a signed-in user who may read the run, or a share link (``?share=``)
whose scope covers it. Refused connections are closed with code 4403 before the handshake completes.
Access is checked again while the socket is open: on an ``access.recheck`` message (runs.rechecks sends
one to the user's group when a membership or the user changes, to the run's group when its team or
owner changes), on ``share.revoked``, and every ACCESS_RECHECK_SECONDS (settings ASPIRE, default 60 s;
it catches what no signal announces: a link that expired, a message lost in a Redis outage). A socket
whose access is gone is closed with code 4403; the page then says "access ended" and stops.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections import OrderedDict
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.contrib.auth import get_user_model
from django.template.loader import render_to_string

from aspire_web.logfilters import one_line
from sharing import services as sharing

from . import live, presenters, rechecks
from .access import can_view_run
from .api.serializers import PrimitiveCallSerializer
from .models import Episode, PrimitiveCall, Run
from .shares import covers_episode, covers_run

log = logging.getLogger(__name__)
REFUSED = 4403
REPLAY_BATCH = 200
RENDER_CACHE = 64

# Fragments of one run event, rendered once per process and shared by every viewer of the run: Django's
# sync code runs on one thread under Daphne, so 50 viewers each rendering the same leaderboard held up
# every other message for a second at each episode boundary (bench/live_latency.py). Futures belong to
# an event loop, hence one cache per loop.
_renders: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, OrderedDict]" = weakref.WeakKeyDictionary()


async def _shared(key, render):
    cache = _renders.setdefault(asyncio.get_running_loop(), OrderedDict())
    future = cache.get(key)
    if future is None:
        future = cache[key] = asyncio.ensure_future(database_sync_to_async(render)())
        while len(cache) > RENDER_CACHE:
            cache.popitem(last=False)
    return await asyncio.shield(future)


def _number(content: dict, key: str) -> int | None:
    try:
        return int(content[key])
    except (KeyError, TypeError, ValueError):
        return None


def _access(scope, run: Run, episode: Episode | None = None):
    """(allowed, share link or None) for this connection."""
    token = parse_qs(scope.get("query_string", b"").decode()).get("share", [None])[0]
    if token:
        try:
            link = sharing.resolve(token)
        except sharing.ShareError:
            return False, None
        return (covers_episode(link, episode) if episode is not None else covers_run(link, run.pk)), link
    return can_view_run(scope.get("user"), run), None


def recheck_interval_s() -> float:
    """Seconds between two periodic access re-checks of an open socket (ASPIRE["ACCESS_RECHECK_SECONDS"],
    default 60: the longest a lost re-check message or an expired link leaves a page streaming)."""
    return float(settings.ASPIRE.get("ACCESS_RECHECK_SECONDS", 60))


class _LiveConsumer(AsyncJsonWebsocketConsumer):
    share_link = None
    group = None
    run_id = None
    episode_id = None
    _groups: tuple = ()
    _rechecker = None

    def token(self) -> str | None:
        """The share token this connection was admitted with, if any (links on it must use it too)."""
        if self.share_link is None:
            return None
        return parse_qs(self.scope.get("query_string", b"").decode()).get("share", [None])[0]

    async def refuse(self):
        await self.close(code=REFUSED)

    async def join(self, run_id: int):
        self.run_id = run_id
        self.group = live.group_name(run_id)
        groups = [self.group]
        user = self.scope.get("user")
        if self.share_link is None and getattr(user, "is_authenticated", False):
            groups.append(rechecks.user_group(user.pk))
        for group in groups:
            await self.channel_layer.group_add(group, self.channel_name)
        self._groups = tuple(groups)
        await self.accept()
        self._rechecker = asyncio.ensure_future(self._recheck_periodically())

    async def disconnect(self, code):
        if self._rechecker is not None:
            self._rechecker.cancel()
        for group in self._groups:
            await self.channel_layer.group_discard(group, self.channel_name)

    async def share_revoked(self, event):
        if self.share_link is not None and event["link"] == self.share_link.pk:
            await self.cut_off()

    async def access_recheck(self, event):
        """Close the socket (4403) when the viewer may no longer read the run."""
        if self._groups and not await database_sync_to_async(self._still_allowed)():
            log.info("closing a live socket on run %s: access is gone", self.run_id)
            await self.cut_off()

    async def cut_off(self):
        """Leave every group (no further message reaches this socket) and close it with 4403."""
        self._groups, groups = (), self._groups
        for group in groups:
            await self.channel_layer.group_discard(group, self.channel_name)
        await self.close(code=REFUSED)

    async def _recheck_periodically(self):
        interval = recheck_interval_s()
        while self._groups:
            await asyncio.sleep(interval)
            try:
                await self.access_recheck({})
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database or Redis away: try again next time, keep the page
                log.warning("access re-check of a socket on run %s failed: %s", self.run_id, one_line(exc))

    def _still_allowed(self) -> bool:
        """Access as it stands in the database now: the run still exists, the share link is still
        active and covers it, or the (reloaded) user is active and may read it."""
        run = Run.objects.filter(pk=self.run_id).first()
        if run is None:
            return False
        episode = None
        if self.episode_id is not None:
            episode = Episode.objects.filter(pk=self.episode_id).first()
            if episode is None:
                return False
        if self.share_link is not None:
            return _access(self.scope, run, episode)[0]
        user = self.scope.get("user")
        fresh = get_user_model().objects.filter(pk=getattr(user, "pk", None), is_active=True).first()
        return fresh is not None and can_view_run(fresh, run)

    # Events this page does not show; handlers must exist for every type sent to the group.
    async def live_run(self, event):
        pass

    async def live_call(self, event):
        pass

    async def live_episode(self, event):
        pass


class RunConsumer(_LiveConsumer):
    """The run page: status, progress, leaderboard and per-seed rows as HTML fragments, plus call ticks."""

    last_run_seq = None

    async def connect(self):
        self.run_id = int(self.scope["url_route"]["kwargs"]["pk"])
        run = await database_sync_to_async(Run.objects.filter(pk=self.run_id).first)()
        allowed, self.share_link = (await database_sync_to_async(_access)(self.scope, run)) if run else (False, None)
        if not allowed:
            return await self.refuse()
        await self.join(self.run_id)

    async def receive_json(self, content, **kwargs):
        if content.get("type") == "resume":
            # Without a number the page shows nothing it can vouch for: send everything. A page that
            # reconnects ("refresh") may have missed events whose run_seq it cannot tell apart from what
            # it shows (a tab asleep, a proxy that dropped frames): it gets the current state whatever
            # its number says.
            seen = None if content.get("refresh") else _number(content, "run_seq")
            await self.send_snapshot(seen)

    async def send_snapshot(self, seen: int | None = None):
        seq, fragments = await database_sync_to_async(self._render)(None)
        self.last_run_seq = seq
        if seen is None or seq != seen:
            await self.send_json({"type": "fragments", "run_seq": seq, "fragments": fragments})

    async def _advance(self, event, candidate_id):
        if self.last_run_seq is None or event["run_seq"] <= self.last_run_seq:
            return  # not resumed yet (the snapshot will cover it) or already shown
        if event["run_seq"] > self.last_run_seq + 1:
            return await self.send_snapshot()  # a message went missing: start again from the database
        key = (self.run_id, event["run_seq"], candidate_id, self.token())
        _, fragments = await _shared(key, lambda: self._render(candidate_id))
        self.last_run_seq = event["run_seq"]
        await self.send_json({"type": "fragments", "run_seq": event["run_seq"], "fragments": fragments})

    async def live_run(self, event):
        await self._advance(event, event.get("candidate") or "all")

    async def live_episode(self, event):
        await self._advance(event, event.get("candidate"))

    async def live_call(self, event):
        if self.last_run_seq is not None:
            c = event["call"]
            await self.send_json(
                {
                    "type": "call",
                    "episode": event["episode"],
                    "seq": event["seq"],
                    "primitive": c["primitive"],
                    "status": c["status"],
                    "duration_ms": c["duration_ms"],
                    "committed_at": event.get("committed_at"),
                }
            )

    def _render(self, candidate_id):
        """(run event_seq, fragments); candidate_id None renders everything, "all" every candidate.

        Every message carries the run-level state read from the database at render time: the summary,
        the health line, the leaderboard and the sections apps above runs add (an experiment's actor
        rows), so a page is reconciled at each event whatever it missed before. Run-level events
        (status, cancel, finish, actor) render every candidate's rows too."""
        run = Run.objects.select_related("task", "owner", "team").get(pk=self.run_id)
        ctx = presenters.run_context(run, share_token=self.token())
        frag = [
            {"id": "run-summary", "html": render_to_string("runs/_run_summary.html", ctx)},
            {"id": "run-health", "html": render_to_string("runs/_run_health.html", ctx)},
            {"id": "leaderboard", "html": render_to_string("runs/_leaderboard.html", ctx)},
        ]
        frag += presenters.section_fragments(ctx)
        for candidate in ctx["candidates"]:
            if candidate_id in (None, "all") or candidate.pk == candidate_id:
                frag.append(
                    {
                        "id": f"candidate-{candidate.pk}",
                        "parent": "candidates",
                        "html": render_to_string("runs/_candidate.html", {**ctx, "candidate": candidate}),
                    }
                )
        return run.event_seq, frag


class EpisodeConsumer(_LiveConsumer):
    """The trace page: every call of one episode, in order, exactly once."""

    last_seq = None

    async def connect(self):
        self.episode_id = int(self.scope["url_route"]["kwargs"]["pk"])
        episode = await database_sync_to_async(Episode.objects.select_related("run").filter(pk=self.episode_id).first)()
        allowed, self.share_link = (
            (await database_sync_to_async(_access)(self.scope, episode.run, episode)) if episode else (False, None)
        )
        if not allowed:
            return await self.refuse()
        await self.join(episode.run_id)

    async def receive_json(self, content, **kwargs):
        if content.get("type") == "resume":
            await self.replay(max(0, _number(content, "after") or 0))
            await self.send_episode()

    async def replay(self, after: int):
        while True:
            calls = await database_sync_to_async(self._calls_after)(after)
            if calls:
                await self.send_json({"type": "calls", "calls": calls, "committed_at": None})
                after = calls[-1]["seq"]
            self.last_seq = after
            if len(calls) < REPLAY_BATCH:
                return

    def _calls_after(self, after: int) -> list[dict]:
        qs = (
            PrimitiveCall.objects.filter(episode_id=self.episode_id, seq__gt=after)
            .prefetch_related("keyframes")
            .order_by("seq")
        )
        return presenters.with_page_urls(PrimitiveCallSerializer(qs[:REPLAY_BATCH], many=True).data, self.token())

    async def send_episode(self):
        data = await database_sync_to_async(self._episode)()
        await self.send_json({"type": "episode", "episode": data})

    def _episode(self) -> dict:
        return presenters.episode_data(
            Episode.objects.prefetch_related("keyframes").get(pk=self.episode_id), self.token()
        )

    async def live_call(self, event):
        if event["episode"] != self.episode_id or self.last_seq is None or event["seq"] <= self.last_seq:
            return
        if event["seq"] > self.last_seq + 1:
            return await self.replay(self.last_seq)
        self.last_seq = event["seq"]
        call = presenters.with_page_urls([event["call"]], self.token())[0]
        await self.send_json({"type": "calls", "calls": [call], "committed_at": event.get("committed_at")})

    async def live_episode(self, event):
        if event["episode"] != self.episode_id or self.last_seq is None:
            return
        if event["event"] == "reset":
            self.last_seq = 0
            await self.send_json({"type": "reset"})
        await self.replay(self.last_seq)  # the tail, should a call message have been lost
        await self.send_episode()
