"""What the run and trace pages show, computed once for the view, the live consumer and share links alike.

Apps above runs add to the run page through a :class:`RunPageExtension` they register in their
AppConfig.ready() (experiments: an experiment's actors and search progress); runs never imports them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable
from urllib.parse import quote

from django.db.models import Prefetch
from django.urls import reverse

from . import plots
from .api.serializers import EpisodeSerializer, PrimitiveCallSerializer
from .models import USAGE_FIELDS, Candidate, Episode, Keyframe, Run


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
    finished = Episode.objects.filter(run=run).exclude(status=Episode.RUNNING)
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
        "actors": actors,
        "run_sections": extension.sections if extension else (),
        "share_token": share_token,
        "page_config": {"ws": ws_path("runs", run.pk, share_token), "run_seq": run.event_seq},
        **(extension.context(run) if extension else {}),
    }


def ws_path(kind: str, pk: int, share_token: str | None) -> str:
    """The websocket path of a run or episode page; a shared page authenticates with its token."""
    return f"/ws/{kind}/{pk}/" + (f"?share={quote(share_token, safe='')}" if share_token else "")


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
