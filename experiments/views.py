"""Experiment pages: the launch form, an actor's page, and the plots over the runs the viewer can read.
Thin: parse, check access (runs.access), delegate to experiments.services and the presenters."""

from django.conf import settings as django_settings
from django.contrib.auth.decorators import login_required
from django.http import HttpResponseBadRequest, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render

from runs.access import visible_runs
from runs.api.filters import ID_RANGE, ParamError, parse_int
from runs.forms import engine_overrides
from runs.models import Actor, Run, Task
from runs.services import LaunchError, sync_catalog

from . import conversations, plots, presenters
from .forms import ExperimentForm
from .services import create_experiment, start_experiment


@login_required
def experiment_create(request):
    if not Task.objects.exists():
        sync_catalog()
    form = ExperimentForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            run = create_experiment(
                kind=data["kind"],
                tasks=data["task_list"],
                owner=request.user,
                team=data.get("team"),
                agent={
                    "backend": data["agent"],
                    **({"model": data["model"]} if data["model"] else {}),
                    **({"base_url": data["base_url"]} if data["base_url"] else {}),
                },
                search=form.search_overrides(),  # only the chosen kind's fields (a zero-shot run is K=1, 1 round)
                engine=engine_overrides(data),
                library_sizes=data["library_sizes"] if data["kind"] == Run.Kind.SCALING else None,
                debug_seeds=data["debug_seeds"],
                heldout_seeds=data["heldout_seeds"],
                record=data["record"],
            )
        except LaunchError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, str(exc))
        else:
            start_experiment(run)
            return redirect(run)
    return render(
        request,
        "experiments/launch.html",
        {
            "form": form,
            "estimate": form.episode_estimate() if form.is_bound else None,
            "episode_cap": django_settings.ASPIRE["MAX_EXPERIMENT_EPISODES"],
        },
    )


def _actor_or_404(request, pk):
    return get_object_or_404(
        Actor.objects.select_related("run", "task", "best").filter(run__in=visible_runs(request.user).values("pk")),
        pk=pk,
    )


@login_required
def actor_detail(request, pk):
    return render(request, "experiments/actor.html", presenters.actor_context(_actor_or_404(request, pk)))


@login_required
def actor_conversation(request, pk):
    """The actor's agent conversation turn by turn (experiments.conversations)."""
    actor = _actor_or_404(request, pk)
    return render(request, "experiments/conversation.html", conversations.conversation_context(actor))


@login_required
def actor_conversation_json(request, pk):
    """The conversation as JSON, to download and replay (format: conversations.conversation_json)."""
    return conversation_download(_actor_or_404(request, pk))


def conversation_download(actor) -> JsonResponse:
    response = JsonResponse(conversations.conversation_json(actor), json_dumps_params={"indent": 1})
    response["Content-Disposition"] = f'attachment; filename="conversation-actor-{actor.pk}.json"'
    return response


@login_required
def experiment_plots(request):
    """Success vs round for chosen runs (default: the latest eight), held-out success per task and
    success vs library size over every run the viewer can read, and the transfer benchmark's results
    file (bench/transfer.py: zero-shot success vs library size, beside the paper's figures). ``?run=``
    values that are not run ids (not integers, or outside 1..2**63-1) answer 400
    (runs.api.filters.parse_int)."""
    runs = visible_runs(request.user, Run.objects.all())
    try:
        ids = [parse_int(x, "run", ID_RANGE) for x in request.GET.getlist("run")[:200] if x != ""]
    except ParamError as exc:
        return HttpResponseBadRequest(str(exc), content_type="text/plain; charset=utf-8")
    if ids:
        chosen_ids = list(runs.filter(pk__in=ids).values_list("pk", flat=True))
    else:
        chosen_ids = list(runs.values_list("pk", flat=True)[:8])
    overall = plots.experiment_plots(runs)
    return render(
        request,
        "experiments/plots.html",
        {
            "success_by_round": plots.experiment_plots(runs.filter(pk__in=chosen_ids))["success_by_round"],
            "heldout_by_task": overall["heldout_by_task"],
            "success_by_library": overall["success_by_library"],
            "transfer": plots.transfer_benchmark(),
            "runs": runs.select_related("task")[:200],
            "chosen_ids": set(chosen_ids),
        },
    )
