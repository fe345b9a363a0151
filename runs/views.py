"""Pages: runs list, launch form, run page, cancel, episode trace, keyframe images, candidate comparison.
Thin: parse, check access (runs.access), delegate to services, presenters and compare."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from sharing import services as sharing
from sharing.services import links_for

from . import compare as comparison
from . import presenters, services
from .access import visible_runs
from .forms import LaunchForm, engine_overrides
from .media import keyframe_response
from .models import Candidate, Episode, Keyframe, Run, Task
from .shares import covers_run

RUN_STATUSES = [s for s, _ in Run.Status.choices]


def _run_or_404(request, pk):
    return get_object_or_404(visible_runs(request.user, Run.objects.select_related("task", "owner", "team")), pk=pk)


@login_required
def run_list(request):
    runs = visible_runs(request.user, Run.objects.select_related("task", "owner", "team"))
    status = request.GET.get("status", "")
    if status in RUN_STATUSES:
        runs = runs.filter(status=status)
    if request.GET.get("mine"):
        runs = runs.filter(owner=request.user)
    page = Paginator(runs, 50).get_page(request.GET.get("page"))
    counted = presenters.split_counts_of_runs(r.pk for r in page.object_list)
    for r in page.object_list:
        r.splits = presenters.split_counts(r, counted)
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "runs/list.html",
        {
            "page": page,
            "statuses": RUN_STATUSES,
            "status": status,
            "mine": bool(request.GET.get("mine")),
            "query": query.urlencode(),
        },
    )


@login_required
def run_create(request):
    if not Task.objects.exists():
        services.sync_catalog()
    if request.method == "POST":
        form = LaunchForm(request.POST, user=request.user)
        if form.is_valid():
            data = form.cleaned_data
            task = data["task"]
            starter = data["program_source"] == "starter"
            try:
                run = services.create_program_run(
                    task=task,
                    program=task.starter_program if starter else data["program"],
                    seeds=data["seeds"],
                    origin="starter" if starter else "pasted",
                    owner=request.user,
                    team=data.get("team"),
                    settings=engine_overrides(data),
                )
            except services.LaunchError as exc:
                form.add_error(exc.field if exc.field in form.fields else None, str(exc))
            else:
                services.start_run(run)
                return redirect(run)
    else:
        form = LaunchForm(user=request.user, initial={"task": request.GET.get("task", "")})
    return render(request, "runs/launch.html", {"form": form})


@login_required
def run_detail(request, pk):
    run = _run_or_404(request, pk)
    ctx = presenters.run_context(run)
    ctx["share_links"] = links_for("run", run.pk)
    return render(request, "runs/detail.html", ctx)


@require_GET
@never_cache
def run_health(request, pk):
    """JSON of runs.presenters.run_health plus ``html`` (templates/runs/_run_health.html), which the run
    page polls. Open to whoever may read the run: a signed-in user, or a share link (``?share=``) that
    covers it; anyone else gets 404 (existence is not leaked)."""
    token = request.GET.get("share")
    run = None
    if token:
        try:
            link = sharing.resolve(token)
        except sharing.ShareError:
            link = None
        if link is not None and covers_run(link, pk):
            run = Run.objects.filter(pk=pk).first()
    elif request.user.is_authenticated:
        run = visible_runs(request.user).filter(pk=pk).first()
    if run is None:
        return JsonResponse({"detail": "Not found.", "code": "not_found"}, status=404)
    health = presenters.run_health(run)
    html = render_to_string("runs/_run_health.html", {"health": health, "run": run, "share_token": token})
    return JsonResponse({**health, "html": html})


@login_required
@require_POST
def run_cancel(request, pk):
    run = _run_or_404(request, pk)
    try:
        services.cancel_run(run, by=request.user)
        messages.success(request, f"Run {run.pk} cancelled; the episode in progress finishes and is kept.")
    except services.CancelError as exc:
        messages.error(request, str(exc))
    return redirect(run)


@login_required
def episode_detail(request, pk):
    episode = get_object_or_404(
        Episode.objects.select_related("candidate", "run__task").filter(
            run__in=visible_runs(request.user).values("pk")
        ),
        pk=pk,
    )
    ctx = presenters.trace_context(episode)
    ctx["share_links"] = links_for("episode", episode.pk)
    return render(request, "runs/episode.html", ctx)


@login_required
def keyframe_image(request, pk):
    keyframe = get_object_or_404(
        Keyframe.objects.filter(episode__run__in=visible_runs(request.user).values("pk")), pk=pk
    )
    return keyframe_response(keyframe)


#: Runs whose candidates the compare page's picker offers (the newest first).
PICKER_RUNS = 40


def _picker(request) -> list[dict]:
    """The compare page's choices: the newest visible runs, each with its candidates (plain runs' single
    candidate included; agents' quick experiments left out)."""
    runs = list(visible_runs(request.user, Run.objects.select_related("task"))[:PICKER_RUNS])
    by_run: dict[int, list] = {r.pk: [] for r in runs}
    candidates = (
        Candidate.objects.filter(run__in=[r.pk for r in runs])
        .exclude(origin="experiment")
        .select_related("actor__task")
        .order_by("run", "actor", "round", "index")
    )
    for c in candidates:
        by_run[c.run_id].append(c)
    return [{"run": r, "candidates": by_run[r.pk]} for r in runs if by_run[r.pk]]


def _compare_refused(request, message: str, status: int = 400, **extra):
    ctx = {"picker": _picker(request), "error": message, "selected_a": request.GET.get("a", ""), **extra}
    ctx["selected_b"] = request.GET.get("b", "")
    return render(request, "runs/compare.html", ctx, status=status)


@login_required
def compare(request):
    """Two candidates side by side: code diff, per-seed outcomes, and one seed's traces aligned up to
    their first divergence (with the two keyframes there). Without ids: a page to pick them."""
    visible = Candidate.objects.filter(run__in=visible_runs(request.user).values("pk")).select_related(
        "run__task", "actor__task"
    )
    if not request.GET.get("a") and not request.GET.get("b"):
        return render(request, "runs/compare.html", {"picker": _picker(request)})
    try:
        a_id, b_id = int(request.GET["a"]), int(request.GET["b"])
    except (KeyError, ValueError):
        return _compare_refused(request, "Pick two candidates, A and B, to compare.")
    a = get_object_or_404(visible.prefetch_related("episodes"), pk=a_id)
    b = get_object_or_404(visible.prefetch_related("episodes"), pk=b_id)
    task_a, task_b = comparison.candidate_task(a), comparison.candidate_task(b)
    if task_a.pk != task_b.pk:
        return _compare_refused(
            request,
            f"These candidates solve different tasks: A is for {task_a.key}, B for {task_b.key}. "
            "Seeds and traces only line up within one task; pick two candidates of the same task.",
            a=a,
            b=b,
        )
    outcomes = comparison.seed_outcomes(a, b)
    both = [o for o in outcomes if o["a"] and o["b"]]
    chosen = None
    if request.GET.get("seed"):
        chosen = next(
            (
                o
                for o in both
                if str(o["seed"]) == request.GET["seed"] and o["split"] == request.GET.get("split", o["split"])
            ),
            None,
        )
    chosen = chosen or next((o for o in both if o["change"] != "same"), None) or (both[0] if both else None)
    alignment, first, frames = [], None, None
    if chosen:
        a_calls = list(chosen["a"].calls.prefetch_related("keyframes"))
        b_calls = list(chosen["b"].calls.prefetch_related("keyframes"))
        alignment, first = comparison.align_calls(a_calls, b_calls)
        if first is not None:
            row = alignment[first]
            frames = {"a": comparison.frames_at(row["a"], a_calls), "b": comparison.frames_at(row["b"], b_calls)}
    return render(
        request,
        "runs/compare.html",
        {
            "a": a,
            "b": b,
            "task": task_a,
            "picker": _picker(request),
            "selected_a": a.pk,
            "selected_b": b.pk,
            "diff": comparison.code_diff(a.program, b.program),
            "outcomes": outcomes,
            "chosen": chosen,
            "alignment": alignment,
            "first_divergence": first,
            "divergence": alignment[first] if first is not None else None,
            "divergence_sides": [
                ("A", alignment[first]["a"], frames["a"], chosen["a"]),
                ("B", alignment[first]["b"], frames["b"], chosen["b"]),
            ]
            if frames
            else [],
            "tolerance": f"{comparison.ABS_TOL:g} absolute or {comparison.REL_TOL:.1%} relative",
            "changes": {k: sum(1 for o in outcomes if o["change"] == k) for k in ("fixed", "broken", "same")},
        },
    )
