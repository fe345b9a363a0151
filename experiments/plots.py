"""The data of the experiment plots page (/plots/), drawn as server-side SVG by runs.plots."""

from __future__ import annotations

from collections import defaultdict

from runs import plots
from runs.models import Actor, Episode


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
            by_round.append(
                plots.Series(
                    f"run {run.pk} ({run.scope})",
                    [(r, max(v), f"run {run.pk} round {r}: best {max(v):.0%}") for r, v in sorted(rounds.items())],
                )
            )

    heldout = defaultdict(lambda: [0, 0, None])  # task -> [success, total, latest run]
    latest = {}

    def task_key(ep):  # an experiment's episodes belong to an actor's task; a program run has one task
        return ep.candidate.actor.task.key if ep.candidate.actor_id else ep.run.task.key

    held = (
        Episode.objects.filter(split=Episode.Split.HELDOUT)
        .exclude(status__in=Episode.NO_RESULT)
        .select_related("run__task", "candidate__actor__task")
    )
    for ep in held.filter(run__in=runs).order_by("run_id"):
        latest[task_key(ep)] = ep.run_id
    for ep in held.filter(run_id__in=set(latest.values())):
        if latest.get(task_key(ep)) == ep.run_id:
            h = heldout[task_key(ep)]
            h[0] += bool(ep.success)
            h[1] += 1
            h[2] = ep.run_id
    bars = [
        (task, ok / n, f"{task}: {ok}/{n} held-out seeds (run {run_id})")
        for task, (ok, n, run_id) in sorted(heldout.items())
        if n
    ]

    scaling = defaultdict(list)
    scaled = Actor.objects.filter(run__in=runs, library_size__isnull=False, heldout_rate__isnull=False)
    for actor in scaled.select_related("task"):
        scaling[actor.task.key].append(
            (
                actor.library_size,
                actor.heldout_rate,
                f"run {actor.run_id}: skills of {actor.library_size} source tasks, {actor.heldout_rate:.0%} held-out",
            )
        )
    return {
        "success_by_round": plots.line_chart(by_round[:8], x_label="round", y_label="best success on debug seeds"),
        "heldout_by_task": plots.bar_chart(bars, y_label="held-out success"),
        "success_by_library": plots.line_chart(
            [plots.Series(t, p) for t, p in sorted(scaling.items())], x_label="skills in the library", y_label="success"
        ),
    }
