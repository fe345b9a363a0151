"""Domain verbs for runs: sync the catalog, create and start runs, execute them, cancel them, sum them up.

Views, management commands and Celery tasks (runs.tasks) stay thin and call these. The durable work
itself (one task per episode, claims, settling) is runs.work; messages go through runs.outbox.
"""

from __future__ import annotations

import functools
import logging

from django.conf import settings as django_settings
from django.db import transaction
from django.utils import timezone

from worker.agents.programs import call_arity_problems
from worker.engine import MAX_STEP_BUDGET, NO_STEP_BUDGET, program_hash
from worker.robot.occupancy import UNKNOWN_SPACE, UNKNOWN_SPACE_POLICIES
from worker.robot.profiles import AUTO, PROFILE_CHOICES
from worker.sandbox import namespace, policy
from worker.sim import catalog

from . import live, work
from .models import Actor, Candidate, Episode, Run, Task

log = logging.getLogger(__name__)

EXECUTE_RUN = "aspire.execute_run"  # runs.tasks.execute_run_task (a whole run in one worker task)
RUN_EPISODE = work.RUN_EPISODE  # runs.tasks.run_episode_task


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


@functools.cache
def _available_names() -> dict[str, frozenset[str]]:
    return namespace.available_names()  # builds the curated namespaces: once per process


def program_problems(program: str) -> list[dict]:
    """The sandbox policy's verdict on ``program`` before it runs (worker.sandbox.policy.check_source,
    the same check and the same importable names the sandbox host applies), as [{"line", "col",
    "message", "severity": "error"}], plus "warning"s for calls of the program's own functions with the
    wrong number of positional arguments (worker.agents.programs.call_arity_problems), which would
    fail with a TypeError when reached. Errors refuse a launch (check_program); warnings do not."""
    out = [
        {"line": v.line, "col": v.col, "message": v.message, "severity": "error"}
        for v in policy.check_source(program, _available_names())
    ]
    if not out:
        out += [{**p, "severity": "warning"} for p in call_arity_problems(program)]
    return out


def check_program(program: str) -> None:
    """Refuse a program the sandbox would refuse (a policy violation or a syntax error) before any run
    exists, so it costs a 400 naming the line and the reason instead of a failed run; raises LaunchError."""
    errors = [p for p in program_problems(program) if p["severity"] == "error"]
    if errors:
        first = errors[0]
        more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
        where = f"line {first['line']}: " if first["line"] else ""
        raise LaunchError("program", f"the program fails the sandbox policy: {where}{first['message']}{more}")


def split_of(task: Task, seeds: list[int]) -> str:
    if set(seeds) <= set(task.debug_seeds):
        return Episode.Split.DEBUG
    if set(seeds) <= set(task.heldout_seeds):
        return Episode.Split.HELDOUT
    return Episode.Split.CUSTOM


def max_wall_seconds() -> float:
    """The longest per-episode time limit a run may ask for (``ASPIRE["MAX_EPISODE_WALL_SECONDS"]``,
    300 s): one episode is one Celery task, and the broker's visibility timeout (8 min, settings) must
    outlast the longest task or a running episode's message would be handed to a second worker."""
    return float(django_settings.ASPIRE.get("MAX_EPISODE_WALL_SECONDS", 300))


#: The perception modes a run may ask for (worker.engine.EngineSettings.perception_mode).
PERCEPTION_MODES = tuple(Run.PerceptionMode.values)


def engine_settings(overrides: dict | None = None) -> dict:
    """A run's engine settings: the defaults with ``overrides``; raises LaunchError for an unknown key,
    a time limit outside 1..max_wall_seconds() seconds, a memory cap outside 128..16384 MiB, a
    perception mode other than PERCEPTION_MODES, or a step budget that is not None (the task's
    benchmark budget), NO_STEP_BUDGET (0: none, exploration only, not comparable with published results)
    or an integer in 1..MAX_STEP_BUDGET control steps (worker.engine.EngineSettings), or an
    ``unknown_space`` other than "free" (default) / "occupied", or an ``api_profile`` other than "auto"
    (default: decided from the program), "native" or "published" (worker.robot.profiles), or a ``recording``
    (record each episode as a video; default off, on for runs launched from the browser) that is not a
    bool. The default time limit
    (``ASPIRE["EPISODE_WALL_SECONDS"]``) is held to max_wall_seconds() too; the default perception mode
    is ``ASPIRE["PERCEPTION_MODE"]``."""
    cfg = django_settings.ASPIRE
    out = {
        "wall_seconds": min(float(cfg["EPISODE_WALL_SECONDS"]), max_wall_seconds()),
        "memory_mb": cfg["SANDBOX_MEMORY_MB"],
        "trace": True,
        "keyframes": True,
        "perception_mode": cfg.get("PERCEPTION_MODE", "realistic"),
        "depth_noise": True,
        "step_budget": None,
        "unknown_space": UNKNOWN_SPACE,
        "api_profile": AUTO,
        "recording": False,
    }
    for key, value in (overrides or {}).items():
        if key not in out:
            raise LaunchError(key, f"unknown engine setting {key!r}")
        out[key] = value
    top = max_wall_seconds()
    try:
        wall = float(out["wall_seconds"])
    except (TypeError, ValueError):
        raise LaunchError("wall_seconds", "the episode time limit must be a number of seconds") from None
    if not 1 <= wall <= top:
        raise LaunchError("wall_seconds", f"the episode time limit must be between 1 and {top:g} seconds")
    out["wall_seconds"] = wall
    if not 128 <= int(out["memory_mb"]) <= 16384:
        raise LaunchError("memory_mb", "the sandbox memory cap must be between 128 and 16384 MiB")
    if out["perception_mode"] not in PERCEPTION_MODES:
        raise LaunchError("perception_mode", f"the perception mode must be one of {', '.join(PERCEPTION_MODES)}")
    if not isinstance(out["depth_noise"], bool):
        raise LaunchError("depth_noise", "depth_noise must be true or false")
    if not isinstance(out["recording"], bool):
        raise LaunchError("recording", "recording must be true or false")
    if out["api_profile"] not in PROFILE_CHOICES:
        raise LaunchError("api_profile", f"the API profile must be one of {', '.join(PROFILE_CHOICES)}")
    if out["unknown_space"] not in UNKNOWN_SPACE_POLICIES:
        raise LaunchError("unknown_space", f"unknown_space must be one of {', '.join(UNKNOWN_SPACE_POLICIES)}")
    budget = out["step_budget"]
    if budget is not None and (
        isinstance(budget, bool) or not isinstance(budget, int) or not NO_STEP_BUDGET <= budget <= MAX_STEP_BUDGET
    ):
        raise LaunchError(
            "step_budget",
            f"the step budget must be a whole number of control steps in 1..{MAX_STEP_BUDGET}, "
            f"{NO_STEP_BUDGET} for none, or null for the task's benchmark budget",
        )
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
    check_policy: bool = True,
) -> Run:
    """Create a run that evaluates one program on ``seeds``. Raises LaunchError on bad input.

    ``team`` (optional) shares the run with that team's members; the owner must belong to it. A program
    that fails the sandbox policy is refused (check_program) unless ``check_policy`` is False: the
    ``run_program`` command's way to show the sandbox's own refusal (the boundary, not this check).
    """
    if not program or not program.strip():
        raise LaunchError("program", "the program is empty")
    if len(program) > 200_000:
        raise LaunchError("program", "the program is longer than 200000 characters")
    if check_policy:
        check_program(program)
    if not seeds:
        raise LaunchError("seeds", "no seeds given")
    try:
        seeds = list(dict.fromkeys(work.check_seed(s) for s in seeds))  # a seed listed twice runs once
    except ValueError as exc:
        raise LaunchError("seeds", str(exc)) from None
    limit = django_settings.ASPIRE["MAX_SEEDS_PER_RUN"]
    if len(seeds) > limit:
        raise LaunchError("seeds", f"{len(seeds)} seeds requested; a run takes at most {limit}")
    if team is not None and not (owner is not None and team.memberships.filter(user=owner).exists()):
        raise LaunchError("team", f"you are not a member of the team {team.name!r}")
    engine = engine_settings(settings)
    engine["split"] = split_of(task, seeds)
    with transaction.atomic():
        run = Run.objects.create(
            task=task,
            owner=owner,
            team=team,
            kind=Run.Kind.PROGRAM,
            source=source,
            seeds=list(seeds),
            settings=engine,
            perception_mode=engine["perception_mode"],
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
    """Queue the run on the worker pool: one run_episode message per (candidate, seed), written to the
    outbox in the caller's transaction and published once it commits (runs.work.start_program_run). A
    broker that is away leaves them in the outbox; the reconciler's relay sends them when it is back."""
    work.start_program_run(run)


def execute_run(run_id: int) -> Run:
    """Run every candidate of a run on its seeds, in this process (``manage.py run_program``, the skill
    admission, the ``aspire.execute_run`` task). Idempotent: finished episodes are kept and skipped, an
    episode another live worker holds is waited for, one whose owner died is re-run (runs.work)."""
    return work.execute_program_run(run_id)


class CancelError(ValueError):
    """The run cannot be cancelled (it already ended); the message says why."""


def cancel_run(run: Run, by=None) -> Run:
    """End a queued or running run at once, consistently: the run, every actor not yet ended and every
    RUNNING episode become CANCELLED in one transaction. Queued work never starts (a claim refuses an
    ended run); a worker still running a cancelled episode cannot store its result and stops its program
    at the next robot call (runs.sink). Raises CancelError when the run already ended."""
    with transaction.atomic():
        locked = Run.objects.select_for_update().get(pk=run.pk)
        if not locked.is_active:
            raise CancelError(f"run {run.pk} already ended ({locked.status})")
        now = timezone.now()
        locked.status = Run.Status.CANCELLED
        locked.finished_at = now
        locked.error = f"cancelled by {by}" if by is not None else "cancelled"
        locked.worker = ""
        locked.save(update_fields=["status", "finished_at", "error", "worker"])
        Actor.objects.filter(run=locked).exclude(status__in=Actor.TERMINAL).update(
            status=Actor.Status.CANCELLED, finished_at=now, worker=""
        )
        Episode.objects.filter(run=locked, status=Episode.RUNNING).update(
            status=Episode.CANCELLED, finished_at=now, error=locked.error
        )
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
                "control_steps": ep.control_steps,
                "step_budget": ep.step_budget,
                "api_profile": ep.api_profile,
                "api_profile_reason": ep.api_profile_reason,
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
        "perception_mode": run.perception_mode,
        "contained": all(ep["contained"] for ep in episodes),
        "episodes": episodes,
    }
