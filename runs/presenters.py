"""What the run and trace pages show, computed once for the view, the live consumer and share links alike.

Apps above runs add to the run page through a :class:`RunPageExtension` they register in their
AppConfig.ready() (experiments: an experiment's actors and search progress); runs never imports them.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Callable
from urllib.parse import quote

from django.conf import settings
from django.db.models import Max, Prefetch
from django.urls import reverse
from django.utils import timezone

from . import plots
from .api.serializers import EpisodeSerializer, PrimitiveCallSerializer
from .models import USAGE_FIELDS, Actor, AgentCall, Candidate, Episode, Keyframe, PrimitiveCall, Run


@dataclass(frozen=True)
class RunPageExtension:
    """What an app above runs adds to the pages of the runs it handles.

    ``handles(run)``: whether the run is one of them; ``progress(run)``: its progress, in the shape
    :func:`progress` documents; ``context(run)``: extra template context; ``sections``: templates the run
    page includes below its summary, with the page's context."""

    handles: Callable[[Run], bool]
    progress: Callable[[Run], dict]
    context: Callable[[Run], dict]
    sections: tuple[str, ...] = ()


_extensions: list[RunPageExtension] = []


def register_run_page_extension(extension: RunPageExtension) -> None:
    if extension not in _extensions:
        _extensions.append(extension)


def _extension_for(run: Run) -> RunPageExtension | None:
    return next((e for e in _extensions if e.handles(run)), None)


def progress(run: Run) -> dict:
    """Progress of a run, each part ``{"done", "total", "percent"}`` or None when it does not apply:
    ``episodes`` (all candidates on their seeds), ``rounds`` (search rounds finished of the planned
    number in settings["rounds"]), ``heldout`` (held-out episodes of the planned held-out seeds). A run
    an extension handles (an experiment) reports its own."""
    extension = _extension_for(run)
    if extension is not None:
        return extension.progress(run)

    def part(done, total):
        return {"done": done, "total": total, "percent": int(100 * done / total) if total else 0} if total else None

    candidates = list(run.candidates.all())
    finished = Episode.objects.filter(run=run).exclude(status__in=Episode.NO_RESULT)
    heldout_done = finished.filter(split=Episode.Split.HELDOUT).count()
    planned_rounds = int(run.settings.get("rounds") or 0)
    rounds_done = len({c.round for c in candidates if c.n_episodes >= len(run.seeds)})
    heldout_seeds = run.settings.get("heldout_seeds") or []
    return {
        "episodes": part(
            finished.exclude(split=Episode.Split.HELDOUT).count() if heldout_seeds else finished.count(),
            len(run.seeds) * max(1, len(candidates)),
        ),
        "rounds": part(min(rounds_done, planned_rounds), planned_rounds) if planned_rounds else None,
        "heldout": part(heldout_done, len(heldout_seeds)) if heldout_seeds else None,
    }


#: How the pages name each split; they list splits in this order and never pool two of them.
SPLIT_LABELS = {"debug": "debug", "heldout": "held-out", "custom": "seeds"}


def _split_row(split: str, n: int, ok: int, planned: int | None = None) -> dict:
    return {
        "split": split,
        "label": SPLIT_LABELS.get(split, split),
        "n": n,
        "ok": ok,
        "rate": ok / n if n else None,
        "planned": planned,
    }


def _planned(run: Run, split: str) -> int | None:
    """Seeds planned per split: held-out seeds of the run's settings; debug or custom, the run's seeds."""
    if split == Episode.Split.HELDOUT:
        return len(run.settings.get("heldout_seeds") or []) or None
    return len(run.seeds) or None


def split_counts(run: Run, counted: dict | None = None) -> list[dict]:
    """Finished episodes of a run per split (running and cancelled ones hold no result), never pooled:
    ``[{"split", "label", "n", "ok", "rate", "planned"}]`` in SPLIT_LABELS order, only splits that have
    episodes. ``counted`` maps run id -> {split: (n, ok)} (:func:`split_counts_of_runs`), else it is read."""
    if counted is None:
        counted = split_counts_of_runs([run.pk])
    found = counted.get(run.pk, {})
    return [_split_row(split, *found[split], planned=_planned(run, split)) for split in SPLIT_LABELS if split in found]


def split_counts_of_runs(run_ids) -> dict[int, dict[str, tuple[int, int]]]:
    """One query for a page of runs: run id -> {split: (finished episodes, successes)}."""
    from django.db.models import Count, Q

    rows = (
        Episode.objects.filter(run_id__in=list(run_ids))
        .exclude(status__in=Episode.NO_RESULT)
        .values("run_id", "split")
        .annotate(n=Count("id"), ok=Count("id", filter=Q(success=True)))
    )
    out: dict[int, dict[str, tuple[int, int]]] = {}
    for r in rows:
        out.setdefault(r["run_id"], {})[r["split"]] = (r["n"], r["ok"])
    return out


def episode_groups(episodes) -> list[dict]:
    """A candidate's episodes (already fetched) per split, for labelled groups of seed squares and rows:
    ``[{"split", "label", "episodes", "n", "ok", "rate", "running"}]``; ``n``/``ok`` count finished ones."""
    by_split: dict[str, list] = {}
    for ep in episodes:
        by_split.setdefault(ep.split, []).append(ep)
    out = []
    for split in [s for s in SPLIT_LABELS if s in by_split] + [s for s in by_split if s not in SPLIT_LABELS]:
        eps = by_split[split]
        done = [e for e in eps if e.status not in Episode.NO_RESULT]
        row = _split_row(split, len(done), sum(1 for e in done if e.success))
        row["episodes"] = eps
        row["running"] = sum(1 for e in eps if e.status == Episode.RUNNING)
        out.append(row)
    return out


def usage(obj) -> dict | None:
    """Token and cost totals of a run, actor or candidate when agents recorded them (the fields named in
    USAGE_FIELDS); None when they did not, so pages leave the section out."""
    found = {name: getattr(obj, name) for name in USAGE_FIELDS if getattr(obj, name, None) is not None}
    return found or None


def leaderboard(run: Run, actor=None) -> list[dict]:
    """Candidates grouped by round, best first: ``[{"round", "candidates": [Candidate...], "best"}]``.
    Unscored candidates sort last; ties keep the order they were made in. ``actor`` narrows an
    experiment to one task's search; agents' quick experiments are left out."""
    rounds: dict[int, list] = {}
    candidates = run.candidates.exclude(origin="experiment")
    if actor is not None:
        candidates = candidates.filter(actor=actor)
    for c in candidates.prefetch_related("episodes").order_by("round", "index"):
        rounds.setdefault(c.round, []).append(c)
    out = []
    for number, cands in sorted(rounds.items()):
        ranked = sorted(cands, key=lambda c: (c.success_rate is None, -(c.success_rate or 0.0), c.index))
        out.append(
            {"round": number, "candidates": ranked, "best": ranked[0] if ranked[0].success_rate is not None else None}
        )
    return out


def candidates_of(queryset) -> list[Candidate]:
    """The candidates a page lists (agents' quick experiments left out), with their episodes in order."""
    episodes = Prefetch("episodes", queryset=Episode.objects.order_by("split", "seed"))
    return list(queryset.exclude(origin="experiment").prefetch_related(episodes))


def run_context(run: Run, share_token: str | None = None) -> dict:
    """Everything the run page and its live fragments render. An experiment over several tasks shows
    its actors (one per task) instead of one long candidate list; each actor has its own page."""
    actors = list(run.actors.select_related("task"))
    single = actors[0] if len(actors) == 1 else None
    if single or not actors:
        candidates = candidates_of(run.candidates.filter(actor=single) if single else run.candidates)
    else:
        candidates = []
    extension = _extension_for(run)
    return {
        "run": run,
        "candidates": candidates,
        "progress": progress(run),
        "leaderboard": leaderboard(run, single) if candidates else [],
        "multi_candidate": len(candidates) > 1,
        "plot": plots.success_by_round(candidates),
        "usage": usage(run),
        "splits": split_counts(run),
        "actors": actors,
        "run_sections": extension.sections if extension else (),
        "share_token": share_token,
        "health": run_health(run),
        "page_config": {
            "ws": ws_path("runs", run.pk, share_token),
            "run_seq": run.event_seq,
            "health_url": health_path(run.pk, share_token),
            "health_poll_s": HEALTH_POLL_S,
        },
        **(extension.context(run) if extension else {}),
    }


_FRAGMENT_ID = re.compile(r'^\s*(?:\{%[^%]*%\}\s*)*<[a-z][a-z0-9]*\b[^>]*\bid="([^"]+)"', re.I)


def section_fragments(ctx: dict) -> list[dict]:
    """The run page's extension sections (``ctx["run_sections"]``) as live fragments ``{"id", "html"}``:
    each section's root element carries its id (templates/experiments/_actors.html: ``actors``); one
    that renders nothing, or no element with an id, is left out."""
    from django.template.loader import render_to_string

    out = []
    for template in ctx.get("run_sections") or ():
        html = render_to_string(template, ctx).strip()
        found = _FRAGMENT_ID.match(html)
        if found:
            out.append({"id": found.group(1), "html": html})
    return out


def ws_path(kind: str, pk: int, share_token: str | None) -> str:
    """The websocket path of a run or episode page; a shared page authenticates with its token."""
    return f"/ws/{kind}/{pk}/" + (f"?share={quote(share_token, safe='')}" if share_token else "")


def health_path(pk: int, share_token: str | None) -> str:
    """The run-health JSON of a run page (runs.views.run_health); a shared page passes its token."""
    return reverse("runs:health", args=[pk]) + (f"?share={quote(share_token, safe='')}" if share_token else "")


def keyframe_page_url(keyframe_id: int, share_token: str | None) -> str:
    if share_token:
        return reverse("sharing:keyframe", args=[share_token, keyframe_id])
    return reverse("runs:keyframe", args=[keyframe_id])


def with_page_urls(items: list[dict], share_token: str | None, key: str = "keyframes") -> list[dict]:
    """Copies of serialized calls (or episodes) whose keyframes carry ``url``: the image as this page
    may load it (through the share token on a shared page)."""
    return [{**item, key: [{**k, "url": keyframe_page_url(k["id"], share_token)} for k in item[key]]} for item in items]


def call_data(episode: Episode, share_token: str | None = None) -> list[dict]:
    calls = episode.calls.prefetch_related(Prefetch("keyframes", queryset=Keyframe.objects.order_by("id")))
    return with_page_urls(PrimitiveCallSerializer(calls, many=True).data, share_token)


def episode_data(episode: Episode, share_token: str | None = None) -> dict:
    return with_page_urls([EpisodeSerializer(episode).data], share_token, "final_keyframes")[0]


def program_lines(source: str) -> list[dict]:
    """The program, one entry per line, with Pygments token HTML (``html`` is already escaped)."""
    from django.utils.safestring import mark_safe
    from pygments import highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import PythonLexer

    # nowrap: bare token spans; Pygments closes spans at line ends, so splitting on newlines is safe.
    html = highlight(source, PythonLexer(stripnl=False, ensurenl=True), HtmlFormatter(nowrap=True))
    lines = html.split("\n")
    n = len(source.splitlines())
    return [{"number": i + 1, "html": mark_safe(lines[i] if i < len(lines) else "")} for i in range(n)]


def trace_context(episode: Episode, share_token: str | None = None) -> dict:
    return {
        "episode": episode,
        "run": episode.run,
        "program": program_lines(episode.candidate.program),
        "share_token": share_token,
        "page_config": {
            "ws": ws_path("episodes", episode.pk, share_token),
            "episode": episode_data(episode, share_token),
            "calls": call_data(episode, share_token),
        },
    }


# -- Run health: stall notice and the worker pool ------------------------------------------------------

#: Seconds between two polls of the run-health JSON by an open run page (static/js/run.js).
HEALTH_POLL_S = 10
#: Seconds one process reuses the worker pool's health: every open page polls it, the pool changes on
#: the scale of worker heartbeats (runs.heartbeat), so a page is at most this much older than a fresh read.
POOL_CACHE_S = 3.0
_pool_cache: dict = {}
_pool_lock = threading.Lock()


def stall_seconds() -> float:
    """Seconds without progress after which an active run is called stalled: ASPIRE["STALL_SECONDS"],
    default 60 (an episode's primitive calls come seconds apart; a minute of nothing means no worker is
    on it, or one is stuck)."""
    return float(settings.ASPIRE.get("STALL_SECONDS", 60))


def last_progress_at(run: Run) -> datetime | None:
    """When the run last moved: the latest of its start (its creation while queued), an episode's start
    or end, a primitive call of a running episode, a candidate made, an actor started or ended, an agent
    call recorded. Calls of finished episodes are older than those episodes' ends, so only running ones
    are read."""
    moments = [run.started_at, run.created_at]
    moments += Episode.objects.filter(run=run).aggregate(a=Max("started_at"), b=Max("finished_at")).values()
    moments += (
        PrimitiveCall.objects.filter(episode__run=run, episode__status=Episode.RUNNING)
        .aggregate(a=Max("started_at"))
        .values()
    )
    moments += Candidate.objects.filter(run=run).aggregate(a=Max("created_at")).values()
    moments += Actor.objects.filter(run=run).aggregate(a=Max("started_at"), b=Max("finished_at")).values()
    moments += AgentCall.objects.filter(run=run).aggregate(a=Max("created_at")).values()
    found = [m for m in moments if m is not None]
    return max(found) if found else None


def pool_health() -> dict | None:
    """runs.heartbeat.pool_health() plus ``busy`` (workers with a task in hand), read at most once per
    POOL_CACHE_S seconds per process; None when it cannot be read (the page then says so)."""
    now = time.monotonic()
    with _pool_lock:
        cached = _pool_cache.get("value")
        if cached is not None and now - cached[0] < POOL_CACHE_S:
            return cached[1]
    from .heartbeat import pool_health as read_pool

    try:
        pool = dict(read_pool())
    except Exception:  # the database or Redis away: say "unknown" rather than fail the page
        pool = None
    if pool is not None:
        pool["busy"] = sum(1 for w in pool.get("workers", []) if w.get("busy_with"))
    with _pool_lock:
        _pool_cache["value"] = (now, pool)
    return pool


def pool_summary(pool: dict | None) -> str:
    """The pool in words: "2 workers live, 1 busy", "1 worker live, idle", "no live worker", or "worker pool
    unknown" when it could not be read."""
    if pool is None:
        return "worker pool unknown"
    live = int(pool.get("live") or 0)
    if not live:
        return "no live worker"
    busy = int(pool.get("busy") or 0)
    return f"{live} worker{'s' if live != 1 else ''} live, " + (f"{busy} busy" if busy else "idle")


def _holder(run: Run) -> tuple[str, datetime | None]:
    """(worker name, its last heartbeat on the row) of whoever holds the run, or else its latest running
    episode; ("", None) when nobody does."""
    if run.worker:
        return run.worker, run.heartbeat_at
    held = (
        Episode.objects.filter(run=run, status=Episode.RUNNING)
        .exclude(worker="")
        .order_by("-started_at")
        .values_list("worker", "heartbeat_at")
        .first()
    )
    return held or ("", None)


def _owner_alive(worker: str, beat_at: datetime | None) -> bool | None:
    from .heartbeat import owner_alive

    try:
        return owner_alive(worker, beat_at)
    except Exception:  # pragma: no cover - reads only the clock and the process table
        return None


def run_health(run: Run, now: datetime | None = None) -> dict:
    """What the run page says about whether the run is moving. For an active (QUEUED/RUNNING) run:
    ``stalled`` (no progress for ``stall_seconds`` or more, and no actor waiting for its MCP client),
    ``awaiting_client`` (ids of actors waiting for their MCP client's submission), ``idle_s`` (whole seconds since
    :func:`last_progress_at`), ``last_progress_at`` (ISO 8601), ``worker`` (the worker that holds the
    run, "" none) and whether it is ``worker_live`` (None when unknown), ``pool`` (runs.heartbeat.pool_health
    with ``busy``, None when unreadable) and ``pool_text`` (:func:`pool_summary`). A finished run is
    ``{"run", "status", "active": False, "stalled": False}`` only: nothing to wait for."""
    if not run.is_active:
        return {"run": run.pk, "status": run.status, "active": False, "stalled": False}
    now = now or timezone.now()
    last = last_progress_at(run)
    idle_s = max(0, int((now - last).total_seconds())) if last else 0
    limit = stall_seconds()
    pool = pool_health()
    worker, beat_at = _holder(run)
    # Actors of the mcp backend wait for a person's MCP client between rounds: slow, not stalled.
    awaiting = list(run.actors.filter(status="AWAITING").values_list("pk", flat=True))
    return {
        "run": run.pk,
        "status": run.status,
        "active": True,
        "stalled": idle_s >= limit and not awaiting,
        "awaiting_client": awaiting,
        "idle_s": idle_s,
        "stall_seconds": int(limit),
        "last_progress_at": last.isoformat() if last else None,
        "worker": worker,
        "worker_live": _owner_alive(worker, beat_at) if worker else None,
        "pool": pool,
        "pool_text": pool_summary(pool),
    }
