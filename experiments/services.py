"""Launching experiments: validate the input, create the run and its actors, queue the coordinator.

Views and the API call these; experiments.coordinator takes over from the first coordinate_run task.
"""

from __future__ import annotations

from django.conf import settings as django_settings
from django.db import transaction

from runs.models import Actor, Run, Task
from runs.services import LaunchError, engine_settings
from worker.search.core import SearchSettings

from .queues import COORDINATE_RUN, send_after_commit

KIND_DEFAULTS = {
    Run.Kind.FIX_LOOP: {"mode": "fix_loop", "max_rounds": 6},
    Run.Kind.SEARCH: {"mode": "search"},
    Run.Kind.ZERO_SHOT: {"mode": "search", "max_rounds": 1, "candidates_per_round": 1},
    Run.Kind.SCALING: {"mode": "search"},
}
FROZEN_LIBRARY = (Run.Kind.ZERO_SHOT, Run.Kind.SCALING)


def create_experiment(
    *,
    kind: str,
    tasks: list[Task],
    owner=None,
    team=None,
    source: str = "web",
    agent: dict | None = None,
    search: dict | None = None,
    engine: dict | None = None,
    library_sizes: list[int] | None = None,
    debug_seeds: list[int] | None = None,
    heldout_seeds: list[int] | None = None,
) -> Run:
    """A run of ``kind`` (fix_loop, search, zero_shot, scaling) over ``tasks``; raises LaunchError.

    agent: {"backend": "offline" | "claude" | "openai", "model", "base_url"}; search: overrides of
    SearchSettings (candidates_per_round, max_rounds, survivors, target_success, plateau_points,
    max_replays); engine: wall_seconds, memory_mb; library_sizes: for scaling runs, the numbers of
    source tasks whose skills each actor may use; debug_seeds / heldout_seeds replace every task's own
    split (they must not overlap: the held-out number is only honest on seeds the search never saw).
    """
    if kind not in KIND_DEFAULTS:
        raise LaunchError("kind", f"unknown experiment kind {kind!r}; choose one of {', '.join(KIND_DEFAULTS)}")
    if not tasks:
        raise LaunchError("tasks", "choose at least one task")
    most = django_settings.ASPIRE["MAX_TASKS_PER_EXPERIMENT"]
    if len(tasks) > most:
        raise LaunchError("tasks", f"an experiment takes at most {most} tasks")
    agent = {"backend": "offline", **(agent or {})}
    if agent["backend"] not in ("offline", "claude", "openai"):
        raise LaunchError("agent", f"unknown agent backend {agent['backend']!r}")
    if agent["backend"] == "openai" and not (agent.get("base_url") or django_settings.ASPIRE["OPENAI_BASE_URL"]):
        raise LaunchError("base_url", "an OpenAI-compatible agent needs a base URL")
    if agent["backend"] == "openai" and not agent.get("model"):
        raise LaunchError("model", "an OpenAI-compatible agent needs a model name")
    search = dict(search or {})
    allowed = set(SearchSettings.__dataclass_fields__) - {"mode", "debug_seeds", "heldout_seeds"}
    unknown = set(search) - allowed
    if unknown:
        raise LaunchError("search", f"unknown search settings {sorted(unknown)}")
    probe = SearchSettings(**{**KIND_DEFAULTS[kind], **search})
    # Every setting is stored, defaults included, so the run says exactly how it searched.
    base = {k: v for k, v in probe.as_dict().items() if k not in ("debug_seeds", "heldout_seeds")}
    if not 1 <= probe.candidates_per_round <= 32 or not 1 <= probe.max_rounds <= 20 or not 1 <= probe.survivors <= 16:
        raise LaunchError("search", "K must be 1-32, rounds 1-20 and survivors 1-16")
    if not 0 < probe.target_success <= 1:
        raise LaunchError("target_success", "the target success rate is a fraction in (0, 1]")
    if debug_seeds is not None and heldout_seeds is not None and set(debug_seeds) & set(heldout_seeds):
        raise LaunchError("heldout_seeds", f"seeds {sorted(set(debug_seeds) & set(heldout_seeds))} are in both splits")
    for task in tasks:
        overlap = set(debug_seeds or task.debug_seeds) & set(heldout_seeds or task.heldout_seeds)
        if overlap:
            raise LaunchError("debug_seeds", f"{task.key}: seeds {sorted(overlap)} would be both debug and held-out")
    sizes = sorted(set(library_sizes or []))
    if kind == Run.Kind.SCALING and not sizes:
        raise LaunchError("library_sizes", "a scaling run needs library sizes (numbers of source tasks)")
    run_settings = engine_settings(engine)
    run_settings.update(
        agent=agent,
        search=base,
        rounds=probe.max_rounds,
        k=probe.candidates_per_round,
        heldout_seeds=sorted(heldout_seeds or {s for t in tasks for s in t.heldout_seeds}),
        library_sizes=sizes,
        frozen_library=kind in FROZEN_LIBRARY,
    )
    with transaction.atomic():
        run = Run.objects.create(
            task=tasks[0] if len(tasks) == 1 else None,
            owner=owner,
            team=team,
            kind=kind,
            source=source,
            seeds=sorted(debug_seeds or {s for t in tasks for s in t.debug_seeds}),
            settings=run_settings,
        )
        for task in tasks:
            for size in sizes or [None]:
                Actor.objects.create(
                    run=run,
                    task=task,
                    library_size=size,
                    settings={
                        **base,
                        "debug_seeds": list(debug_seeds or task.debug_seeds),
                        "heldout_seeds": list(heldout_seeds or task.heldout_seeds),
                    },
                )
    return run


def start_experiment(run: Run) -> None:
    """Queue the run's coordinator once the creating transaction commits."""
    send_after_commit(COORDINATE_RUN, run.pk)
