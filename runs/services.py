"""Domain verbs for runs: sync the catalog, create and start runs, execute them, cancel them, sum them up.

Views, management commands and Celery tasks (runs.tasks) stay thin and call these.
"""

from __future__ import annotations

import logging

from celery import current_app
from django.conf import settings as django_settings
from django.db import transaction
from django.utils import timezone

from worker.engine import EngineSettings, program_hash, run_episodes
from worker.sim import catalog

from . import live
from .models import Candidate, Episode, Run, Task
from .sink import DjangoSink

log = logging.getLogger(__name__)

EXECUTE_RUN = "aspire.execute_run"  # runs.tasks.execute_run_task


class LaunchError(ValueError):
    """A run cannot be created from the given input; the message says which field and why."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


def sync_catalog() -> int:
    """Upsert a Task row for every task in the engine's catalog; returns how many there are."""
    for spec in catalog.all_tasks():
        Task.objects.update_or_create(
            key=spec.key,
            defaults=dict(
                benchmark=spec.benchmark,
                suite=spec.suite,
                name=spec.name,
                instruction=spec.instruction,
                cameras=list(spec.cameras),
                arms=spec.arms,
                debug_seeds=list(spec.debug_seeds),
                heldout_seeds=list(spec.heldout_seeds),
                starter_program=catalog.starter_source(spec),
            ),
        )
    return len(catalog.TASKS)


def get_task(key: str) -> Task:
    """The Task row for ``key``, syncing the catalog first if it is missing; raises LaunchError."""
    task = Task.objects.filter(key=key).first()
    if task is None:
        if key not in catalog.TASKS:
            raise LaunchError("task", f"unknown task {key!r}; known tasks: {', '.join(sorted(catalog.TASKS))}")
        sync_catalog()
        task = Task.objects.get(key=key)
    return task


def split_of(task: Task, seeds: list[int]) -> str:
    if set(seeds) <= set(task.debug_seeds):
        return Episode.Split.DEBUG
    if set(seeds) <= set(task.heldout_seeds):
        return Episode.Split.HELDOUT
    return Episode.Split.CUSTOM


def engine_settings(overrides: dict | None = None) -> dict:
    cfg = django_settings.ASPIRE
    out = {
        "wall_seconds": cfg["EPISODE_WALL_SECONDS"],
        "memory_mb": cfg["SANDBOX_MEMORY_MB"],
        "trace": True,
        "keyframes": True,
    }
    for key, value in (overrides or {}).items():
        if key not in out:
            raise LaunchError(key, f"unknown engine setting {key!r}")
        out[key] = value
    if not 1 <= float(out["wall_seconds"]) <= 3600:
        raise LaunchError("wall_seconds", "the episode time limit must be between 1 and 3600 seconds")
    if not 128 <= int(out["memory_mb"]) <= 16384:
        raise LaunchError("memory_mb", "the sandbox memory cap must be between 128 and 16384 MiB")
    return out


def create_program_run(
    *,
    task: Task,
    program: str,
    seeds: list[int],
    origin: str,
    owner=None,
    team=None,
    source: str = "web",
    settings: dict | None = None,
    label: str = "",
) -> Run:
    """Create a run that evaluates one program on ``seeds``. Raises LaunchError on bad input.

    ``team`` (optional) shares the run with that team's members; the owner must belong to it.
    """
    if not program or not program.strip():
        raise LaunchError("program", "the program is empty")
    if len(program) > 200_000:
        raise LaunchError("program", "the program is longer than 200000 characters")
    if not seeds:
        raise LaunchError("seeds", "no seeds given")
    limit = django_settings.ASPIRE["MAX_SEEDS_PER_RUN"]
    if len(seeds) > limit:
        raise LaunchError("seeds", f"{len(seeds)} seeds requested; a run takes at most {limit}")
    if team is not None and not (owner is not None and team.memberships.filter(user=owner).exists()):
        raise LaunchError("team", f"you are not a member of the team {team.name!r}")
    engine = engine_settings(settings)
    engine["split"] = split_of(task, seeds)
    with transaction.atomic():
        run = Run.objects.create(
            task=task, owner=owner, team=team, kind=Run.Kind.PROGRAM, source=source, seeds=list(seeds), settings=engine
        )
        Candidate.objects.create(
            run=run,
            index=0,
            round=0,
            label=label or f"{origin} program",
            program=program,
            program_hash=program_hash(program),
            origin=origin,
        )
    return run


def start_run(run: Run) -> None:
    """Queue the run on the worker pool (runs.tasks, sent by name) once the creating transaction commits."""
    transaction.on_commit(lambda: current_app.send_task(EXECUTE_RUN, (run.pk,)))


def execute_run(run_id: int) -> Run:
    """Run every candidate of a run on its seeds, in this process. Idempotent: finished episodes are
    kept and skipped, so a redelivered task (its worker died) resumes where the last one stopped."""
    with transaction.atomic():
        run = Run.objects.select_for_update().select_related("task").get(pk=run_id)
        if run.status in (Run.Status.FINISHED, Run.Status.FAILED, Run.Status.CANCELLED):
            return run
        run.status = Run.Status.RUNNING
        run.started_at = run.started_at or timezone.now()
        run.save(update_fields=["status", "started_at"])
        live.run_changed(run.pk, "status", status=run.status)
    try:
        spec = catalog.get_task(run.task.key)
        cfg = dict(run.settings)
        split = cfg.pop("split", Episode.Split.CUSTOM)
        engine = EngineSettings(**cfg)
        for candidate in run.candidates.all():
            done = set(
                candidate.episodes.filter(split=split).exclude(status=Episode.RUNNING).values_list("seed", flat=True)
            )
            todo = [s for s in run.seeds if s not in done]
            sink = DjangoSink(candidate, split)
            run_episodes(
                spec,
                candidate.program,
                todo,
                sink,
                engine,
                str(django_settings.MEDIA_ROOT),
                should_stop=lambda: _cancelled(run.pk),
            )
    except Exception as exc:
        log.exception("run %s failed", run_id)
        with transaction.atomic():
            Run.objects.filter(pk=run_id).update(
                status=Run.Status.FAILED, error=f"{type(exc).__name__}: {exc}", finished_at=timezone.now()
            )
            live.run_changed(run_id, "status", status=Run.Status.FAILED)
    else:
        with transaction.atomic():
            if (
                Run.objects.filter(pk=run_id)
                .exclude(status=Run.Status.CANCELLED)
                .update(status=Run.Status.FINISHED, finished_at=timezone.now())
            ):
                live.run_changed(run_id, "status", status=Run.Status.FINISHED)
    run.refresh_from_db()
    return run


def _cancelled(run_id: int) -> bool:
    return Run.objects.filter(pk=run_id, status=Run.Status.CANCELLED).exists()


class CancelError(ValueError):
    """The run cannot be cancelled (it already ended); the message says why."""


def cancel_run(run: Run, by=None) -> Run:
    """Mark a queued or running run CANCELLED. The engine checks between episodes, so the episode in
    progress finishes and is kept; a queued run never starts. Raises CancelError when it already ended."""
    with transaction.atomic():
        locked = Run.objects.select_for_update().get(pk=run.pk)
        if not locked.is_active:
            raise CancelError(f"run {run.pk} already ended ({locked.status})")
        locked.status = Run.Status.CANCELLED
        locked.finished_at = timezone.now()
        locked.error = f"cancelled by {by}" if by is not None else "cancelled"
        locked.save(update_fields=["status", "finished_at", "error"])
        live.run_changed(run.pk, "status", status=locked.status)
    log.info("run %s cancelled by %s", run.pk, by)
    return locked


def run_summary(run: Run) -> dict:
    """The JSON document of ``manage.py run_program --json`` (also used by tests)."""
    episodes = []
    for ep in (
        Episode.objects.filter(run=run)
        .order_by("candidate__round", "candidate__index", "seed")
        .prefetch_related("calls__keyframes")
    ):
        episodes.append(
            {
                "seed": ep.seed,
                "success": bool(ep.success),
                "status": ep.status,
                "error": ep.error,
                "episode_id": ep.pk,
                "duration_s": ep.duration_s,
                "sandbox": ep.sandbox,
                "contained": ep.contained,
                "calls": [
                    {
                        "primitive": c.primitive,
                        "status": c.status,
                        "duration_ms": c.duration_ms,
                        "keyframes": len(c.keyframes.all()),
                    }
                    for c in ep.calls.all()
                ],
            }
        )
    return {
        "run_id": run.pk,
        "task": run.scope,
        "status": run.status,
        "success_rate": run.success_rate,
        "contained": all(ep["contained"] for ep in episodes),
        "episodes": episodes,
    }
