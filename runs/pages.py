"""What the pages show, computed once for the view, the live consumer and share links alike."""

from __future__ import annotations

import difflib
from collections import defaultdict

from urllib.parse import quote

from django.db.models import Prefetch
from django.urls import reverse

from . import plots, services
from .api.serializers import EpisodeSerializer, PrimitiveCallSerializer
from .models import Actor, Candidate, Episode, Keyframe, Run


def _candidates(queryset) -> list[Candidate]:
    return list(queryset.exclude(origin="experiment").prefetch_related(Prefetch("episodes", queryset=Episode.objects.order_by("split", "seed"))))


def run_context(run: Run, share_token: str | None = None) -> dict:
    """Everything the run page and its live fragments render. An experiment over several tasks shows
    its actors (one per task) instead of one long candidate list; each actor has its own page."""
    from .experiments import actor_rows

    actors = list(run.actors.select_related("task"))
    single = actors[0] if len(actors) == 1 else None
    candidates = _candidates(run.candidates.filter(actor=single) if single else run.candidates) if (single or not actors) else []
    return {
        "run": run,
        "candidates": candidates,
        "progress": services.progress(run),
        "leaderboard": services.leaderboard(run, single) if candidates else [],
        "multi_candidate": len(candidates) > 1,
        "plot": plots.success_by_round(candidates),
        "usage": services.usage(run),
        "actors": actors,
        "actor_rows": actor_rows(run) if actors else [],
        "share_token": share_token,
        "page_config": {"ws": ws_path("runs", run.pk, share_token), "run_seq": run.event_seq},
    }


def actor_context(actor) -> dict:
    """One task's search in an experiment: its rounds, candidates, agent calls and proposed skills."""
    candidates = _candidates(actor.candidates)
    return {
        "actor": actor,
        "run": actor.run,
        "candidates": candidates,
        "leaderboard": services.leaderboard(actor.run, actor),
        "multi_candidate": len(candidates) > 1,
        "plot": plots.success_by_round(candidates),
        "usage": services.usage(actor),
        "agent_calls": list(actor.agent_calls.all()),
        "experiments": list(actor.candidates.filter(origin="experiment").order_by("round", "index")),
        "share_token": None,
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


# --- candidate and trace comparison --------------------------------------------------------------------

def code_diff(a: str, b: str, context: int = 3) -> list[dict]:
    """Side-by-side rows ``{"op", "a_no", "a", "b_no", "b"}``; op is equal | replace | delete | insert |
    skip (a run of unchanged lines folded away, ``a`` says how many)."""
    al, bl = a.splitlines(), b.splitlines()
    rows = []
    for group in difflib.SequenceMatcher(None, al, bl, autojunk=False).get_grouped_opcodes(context):
        if rows:
            rows.append({"op": "skip"})
        for op, i1, i2, j1, j2 in group:
            n = max(i2 - i1, j2 - j1)
            for k in range(n):
                ai, bj = i1 + k, j1 + k
                rows.append({
                    "op": op,
                    "a_no": ai + 1 if ai < i2 else None, "a": al[ai] if ai < i2 else None,
                    "b_no": bj + 1 if bj < j2 else None, "b": bl[bj] if bj < j2 else None,
                })
    return rows


def seed_outcomes(a: Candidate, b: Candidate) -> list[dict]:
    """Per seed (and split): both episodes and how the outcome changed: fixed | broken | same | only-a | only-b."""
    def index(c):
        return {(e.split, e.seed): e for e in c.episodes.all()}

    ea, eb = index(a), index(b)
    rows = []
    for key in sorted(set(ea) | set(eb), key=lambda k: (k[0], k[1])):
        x, y = ea.get(key), eb.get(key)
        if x is None or y is None:
            change = "only-a" if y is None else "only-b"
        elif bool(x.success) == bool(y.success):
            change = "same"
        else:
            change = "fixed" if y.success else "broken"
        rows.append({"split": key[0], "seed": key[1], "a": x, "b": y, "change": change})
    return rows


def _call_key(call) -> str:
    return call.primitive


def align_calls(a_calls: list, b_calls: list) -> tuple[list[dict], int | None]:
    """Align two traces call by call (by primitive, keeping order), returning rows ``{"a", "b", "diff"}``
    and the index of the first row that diverges. ``diff`` is "" (same primitive, status and args),
    "args" (same primitive and status, other arguments), "status", or "missing" (one side has no call)."""
    rows = []
    sm = difflib.SequenceMatcher(None, [_call_key(c) for c in a_calls], [_call_key(c) for c in b_calls], autojunk=False)
    for op, i1, i2, j1, j2 in sm.get_opcodes():
        if op == "equal":
            pairs = zip(a_calls[i1:i2], b_calls[j1:j2])
        else:
            n = max(i2 - i1, j2 - j1)
            pairs = ((a_calls[i1 + k] if i1 + k < i2 else None, b_calls[j1 + k] if j1 + k < j2 else None) for k in range(n))
        for x, y in pairs:
            if x is None or y is None or x.primitive != y.primitive:
                diff = "missing" if (x is None or y is None) else "status"
            elif x.status != y.status:
                diff = "status"
            elif x.args != y.args:
                diff = "args"
            else:
                diff = ""
            changed = sorted(k for k in set(x.args) | set(y.args) if x.args.get(k) != y.args.get(k)) if diff == "args" else []
            rows.append({"a": x, "b": y, "diff": diff, "changed_args": changed})
    first = next((i for i, r in enumerate(rows) if r["diff"] in ("missing", "status")), None)
    if first is None:
        first = next((i for i, r in enumerate(rows) if r["diff"]), None)
    return rows, first


# --- experiment plots -------------------------------------------------------------------------------

def experiment_plots(runs) -> dict:
    """The three experiment charts over ``runs`` (already narrowed to what the viewer may read)."""
    runs = list(runs.select_related("task").prefetch_related("candidates"))
    by_round = []
    for run in runs:
        rounds = defaultdict(list)
        for c in run.candidates.all():
            if c.success_rate is not None:
                rounds[c.round].append(c.success_rate)
        if rounds:
            by_round.append(plots.Series(f"run {run.pk} ({run.scope})", [
                (r, max(v), f"run {run.pk} round {r}: best {max(v):.0%}") for r, v in sorted(rounds.items())]))

    heldout = defaultdict(lambda: [0, 0, None])  # task -> [success, total, latest run]
    latest = {}

    def task_key(ep):  # an experiment's episodes belong to an actor's task; a program run has one task
        return ep.candidate.actor.task.key if ep.candidate.actor_id else ep.run.task.key

    held = Episode.objects.filter(split=Episode.Split.HELDOUT).exclude(status=Episode.RUNNING).select_related(
        "run__task", "candidate__actor__task")
    for ep in held.filter(run__in=runs).order_by("run_id"):
        latest[task_key(ep)] = ep.run_id
    for ep in held.filter(run_id__in=set(latest.values())):
        if latest.get(task_key(ep)) == ep.run_id:
            h = heldout[task_key(ep)]
            h[0] += bool(ep.success)
            h[1] += 1
            h[2] = ep.run_id
    bars = [(task, ok / n, f"{task}: {ok}/{n} held-out seeds (run {run_id})") for task, (ok, n, run_id) in sorted(heldout.items()) if n]

    scaling = defaultdict(list)
    for actor in Actor.objects.filter(run__in=runs, library_size__isnull=False, heldout_rate__isnull=False).select_related("task"):
        scaling[actor.task.key].append((actor.library_size, actor.heldout_rate,
                                        f"run {actor.run_id}: skills of {actor.library_size} source tasks, {actor.heldout_rate:.0%} held-out"))
    return {
        "success_by_round": plots.line_chart(by_round[:8], x_label="round", y_label="best success on debug seeds"),
        "heldout_by_task": plots.bar_chart(bars, y_label="held-out success"),
        "success_by_library": plots.line_chart([plots.Series(t, p) for t, p in sorted(scaling.items())],
                                               x_label="skills in the library", y_label="success"),
    }
