"""Pages: runs list, launch form, run page, episode trace page, keyframe images. Thin: parse, delegate."""

from pathlib import Path

from django.conf import settings
from django.core.paginator import Paginator
from django.db.models import Prefetch
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render

from . import services
from .forms import LaunchForm
from .models import Episode, Keyframe, Run, Task


def run_list(request):
    page = Paginator(Run.objects.select_related("task", "owner"), 50).get_page(request.GET.get("page"))
    return render(request, "runs/list.html", {"page": page})


def run_create(request):
    if not Task.objects.exists():
        services.sync_catalog()
    if request.method == "POST":
        form = LaunchForm(request.POST)
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
                    owner=request.user if request.user.is_authenticated else None,
                    settings={"wall_seconds": data["wall_seconds"]},
                )
            except services.LaunchError as exc:
                form.add_error(exc.field if exc.field in form.fields else None, str(exc))
            else:
                services.start_run(run)
                return redirect(run)
    else:
        form = LaunchForm()
    return render(request, "runs/launch.html", {"form": form})


def run_detail(request, pk):
    run = get_object_or_404(Run.objects.select_related("task"), pk=pk)
    candidates = run.candidates.prefetch_related(Prefetch("episodes", queryset=Episode.objects.order_by("seed")))
    return render(request, "runs/detail.html", {"run": run, "candidates": candidates, "progress": _progress(run)})


def _progress(run):
    total = len(run.seeds) * max(1, run.candidates.count())
    done = run.n_episodes
    return {"done": done, "total": total, "percent": int(100 * done / total) if total else 0}


def episode_detail(request, pk):
    episode = get_object_or_404(Episode.objects.select_related("candidate", "run__task"), pk=pk)
    calls = episode.calls.prefetch_related(Prefetch("keyframes", queryset=Keyframe.objects.order_by("id")))
    call_lines = set(episode.calls.values_list("line", flat=True))
    failing_lines = set(episode.calls.exclude(status="OK").values_list("line", flat=True))
    program = [
        {"number": i, "text": text, "error": i == episode.error_line, "called": i in call_lines, "failing": i in failing_lines}
        for i, text in enumerate(episode.candidate.program.splitlines(), start=1)
    ]
    return render(
        request,
        "runs/episode.html",
        {
            "episode": episode,
            "run": episode.run,
            "calls": calls,
            "program": program,
            "final_frames": episode.keyframes.filter(call__isnull=True),
            "statuses": sorted(set(c.status for c in episode.calls.all())),
        },
    )


def keyframe_image(request, pk):
    keyframe = get_object_or_404(Keyframe, pk=pk)
    root = Path(settings.MEDIA_ROOT).resolve()
    path = (root / keyframe.image.name).resolve()
    if root not in path.parents or not path.is_file():
        raise Http404("keyframe file is missing")
    response = FileResponse(path.open("rb"), content_type="image/jpeg")
    response["Cache-Control"] = "private, max-age=86400"
    return response
