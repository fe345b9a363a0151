"""The data of the experiment plots page (/plots/), drawn as server-side SVG by runs.plots."""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from pathlib import Path

from django.conf import settings

from runs import plots
from runs.models import Actor, Episode

log = logging.getLogger(__name__)

#: Where bench/transfer.py writes its results, relative to the project (settings.TRANSFER_RESULTS_PATH
#: overrides it with an absolute path).
TRANSFER_RESULTS = Path("bench") / "results" / "transfer.json"


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


def transfer_results_path() -> Path:
    """The transfer benchmark's results file: settings.TRANSFER_RESULTS_PATH, else
    ``<BASE_DIR>/bench/results/transfer.json``."""
    override = getattr(settings, "TRANSFER_RESULTS_PATH", None)
    return Path(override) if override else Path(settings.BASE_DIR) / TRANSFER_RESULTS


def transfer_benchmark(path: Path | None = None) -> dict:
    """Zero-shot success against library size from bench/transfer.py's results file, for /plots/.

    Returns {"status": "missing" | "malformed" | "empty" | "ok", "message", "chart" (SVG, "" unless
    ok), "rows" (the file's summary: suite, library_size in source tasks, skills, tasks, mean_success),
    "paper" (the paper's published points the file records, drawn as dots and labelled as the
    paper's), "measured_at", "commit", "path"}. A missing file reads "not measured yet"; a file that is
    not the expected JSON is logged and said to be malformed, never raised."""
    path = Path(path) if path is not None else transfer_results_path()
    out = {"status": "missing", "message": "", "chart": "", "rows": [], "paper": [], "path": str(path)}
    out.update(measured_at="", commit="")
    if not path.exists():
        out["message"] = f"Not measured yet: {path.name} is not there (run bench/transfer.py)."
        return out
    try:
        doc = json.loads(path.read_text())
        rows = [
            {
                "suite": str(r["suite"]),
                "library_size": int(r["library_size"]),
                "skills": int(r.get("skills") or 0),
                "tasks": int(r["tasks"]),
                "mean_success": float(r["mean_success"]),
            }
            for r in doc.get("summary") or []
        ]
        paper_doc = doc.get("paper") or {}
        paper = [
            {"library_tasks": int(p["library_tasks"]), "success": float(p["success"]), "label": str(p.get("label", ""))}
            for p in paper_doc.get("points") or []
        ]
        paper_suite = str(paper_doc.get("suite", ""))
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
        log.warning("the transfer results file %s is malformed: %s", path, exc)
        out.update(status="malformed", message=f"{path.name} could not be read ({type(exc).__name__}); see the log.")
        return out
    out.update(rows=rows, paper=paper, measured_at=str(doc.get("measured_at", "")), commit=str(doc.get("commit", "")))
    protocol = doc.get("protocol") if isinstance(doc.get("protocol"), dict) else {}
    limits = [protocol.get("debug_seeds_limit"), protocol.get("heldout_seeds_limit")]
    out["not_protocol"] = (
        f"Measured with seeds limited to {limits[0] or 'all'} debug / {limits[1] or 'all'} held-out, K = "
        f"{protocol.get('k')}, {protocol.get('max_rounds')} round(s): a check of the pipeline, not the protocol."
        if any(limits) or protocol.get("k") not in (None, 8) or protocol.get("max_rounds") not in (None, 5)
        else ""
    )
    if not rows:
        out.update(status="empty", message=f"{path.name} holds no zero-shot evaluations yet.")
        return out
    by_suite = defaultdict(list)
    for r in rows:
        by_suite[r["suite"]].append(
            (
                r["library_size"],
                r["mean_success"],
                f"{r['suite']}: library of {r['library_size']} source tasks ({r['skills']} skills), "
                f"mean zero-shot success {r['mean_success']:.1%} over {r['tasks']} tasks",
            )
        )
    series = [plots.Series(f"{suite} (measured)", points) for suite, points in sorted(by_suite.items())]
    if paper:
        series.append(
            plots.Series(
                f"the ASPIRE paper's published figures ({paper_suite}), not measured here",
                [
                    (p["library_tasks"], p["success"], f"paper, {p['label']}: {p['success']:.3f} ({paper_suite})")
                    for p in paper
                ],
                line=False,
            )
        )
    out.update(
        status="ok",
        chart=plots.line_chart(
            series,
            x_label="source tasks in the library (evenly spaced)",
            y_label="zero-shot success",
            categorical_x=True,
        ),
    )
    return out
