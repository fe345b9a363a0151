"""Launching experiments: validate the input, create the run and its actors, queue the coordinator.

Views and the API call these; experiments.coordinator takes over from the first coordinate_run task.
"""

from __future__ import annotations

from django.conf import settings as django_settings
from django.db import transaction

from runs.models import Actor, Run, Task
from runs.services import LaunchError, engine_settings
from worker.search.core import SearchSettings
from worker.sim.catalog import SeedError, validate_seeds

from .agents import BACKENDS
from .queues import COORDINATE_RUN, send_after_commit

KIND_DEFAULTS = {
    Run.Kind.FIX_LOOP: {"mode": "fix_loop", "max_rounds": 6},
    Run.Kind.SEARCH: {"mode": "search"},
    Run.Kind.ZERO_SHOT: {"mode": "search", "max_rounds": 1, "candidates_per_round": 1},
    Run.Kind.SCALING: {"mode": "search"},
}
FROZEN_LIBRARY = (Run.Kind.ZERO_SHOT, Run.Kind.SCALING)


def estimate_episodes(
    tasks,
    k: int,
    rounds: int,
    debug_seeds=None,
    heldout_seeds=None,
    *,
    mode: str = "search",
    library_sizes=None,
) -> int:
    """An upper bound on the episodes an experiment can run (a count of episodes).

    ``tasks``: anything with ``debug_seeds`` and ``heldout_seeds`` (Task rows, catalog TaskSpecs);
    ``debug_seeds`` / ``heldout_seeds`` replace every task's own split when given (None or empty keeps
    each task's own, as create_experiment does). One actor per task and library size (scaling runs);
    each actor evaluates at most ``rounds`` rounds of ``k`` candidates (one per round in a fix loop,
    worker.search.rounds.propose_round) on every debug seed, then its best program once on every
    held-out seed (experiments.coordinator). Searches that reach the target or plateau stop earlier,
    and an agent's own quick experiments are not counted.
    """
    per_round = 1 if mode == "fix_loop" else max(int(k), 0)
    actors_per_task = max(len(set(library_sizes or [])), 1)
    total = 0
    for task in tasks:
        n_debug = len(debug_seeds) if debug_seeds else len(task.debug_seeds)
        n_heldout = len(heldout_seeds) if heldout_seeds else len(task.heldout_seeds)
        total += actors_per_task * (max(int(rounds), 0) * per_round * n_debug + n_heldout)
    return total


def check_experiment_size(estimate: int) -> None:
    """Refuse an experiment whose episode bound (:func:`estimate_episodes`) is over
    ASPIRE["MAX_EXPERIMENT_EPISODES"] (env ASPIRE_MAX_EXPERIMENT_EPISODES); raises LaunchError."""
    cap = django_settings.ASPIRE["MAX_EXPERIMENT_EPISODES"]
    if estimate > cap:
        raise LaunchError(
            "non_field_errors",
            f"this experiment could run up to {estimate:,} episodes; the limit is {cap:,} "
            "(fewer tasks, seeds, rounds or candidates per round, or raise ASPIRE_MAX_EXPERIMENT_EPISODES)",
        )


def _checked_seeds(seeds, field: str) -> list[int] | None:
    """A split override checked like every other seed input (worker.sim.catalog.validate_seeds)."""
    if seeds is None:
        return None
    try:
        return validate_seeds(list(seeds), limit=django_settings.ASPIRE["MAX_SEEDS_PER_RUN"])
    except SeedError as exc:
        raise LaunchError(field, str(exc)) from None


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
    record: bool = False,
) -> Run:
    """A run of ``kind`` (fix_loop, search, zero_shot, scaling) over ``tasks``; raises LaunchError.

    agent: {"backend": "offline" | "claude" | "openai" | "mcp", "model", "base_url"} (mcp: the actors' agent is the
    owner's own MCP client, experiments.mcp_server); search: overrides of SearchSettings (candidates_per_round,
    max_rounds, survivors, target_success, plateau_points, max_replays); engine: runs.services.engine_settings
    overrides (wall_seconds, memory_mb, recording, ...); library_sizes: for scaling runs, the numbers of source
    tasks whose skills each actor may use; debug_seeds / heldout_seeds replace every task's own split (they must not
    overlap: the held-out number is only honest on seeds the search never saw; each is checked by
    worker.sim.catalog.validate_seeds: 0..2**32-1, no repeats, at most ASPIRE["MAX_SEEDS_PER_RUN"]). An experiment
    whose episode bound (:func:`estimate_episodes`) is over ASPIRE["MAX_EXPERIMENT_EPISODES"] is refused. record:
    keep the language-model agents' requests and responses in full, secrets stripped (settings["record"];
    experiments.conversations), for the conversation page and its JSON download; off, only a compact log of each
    turn is kept.
    """
    if kind not in KIND_DEFAULTS:
        raise LaunchError("kind", f"unknown experiment kind {kind!r}; choose one of {', '.join(KIND_DEFAULTS)}")
    if not tasks:
        raise LaunchError("tasks", "choose at least one task")
    most = django_settings.ASPIRE["MAX_TASKS_PER_EXPERIMENT"]
    if len(tasks) > most:
        raise LaunchError("tasks", f"an experiment takes at most {most} tasks")
    agent = {"backend": "offline", **(agent or {})}
    if agent["backend"] not in BACKENDS:
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
    debug_seeds = _checked_seeds(debug_seeds, "debug_seeds")
    heldout_seeds = _checked_seeds(heldout_seeds, "heldout_seeds")
    if debug_seeds is not None and heldout_seeds is not None and set(debug_seeds) & set(heldout_seeds):
        raise LaunchError("heldout_seeds", f"seeds {sorted(set(debug_seeds) & set(heldout_seeds))} are in both splits")
    for task in tasks:
        overlap = set(debug_seeds or task.debug_seeds) & set(heldout_seeds or task.heldout_seeds)
        if overlap:
            raise LaunchError("debug_seeds", f"{task.key}: seeds {sorted(overlap)} would be both debug and held-out")
    if any(not isinstance(n, int) or isinstance(n, bool) or not 0 <= n <= most for n in library_sizes or []):
        raise LaunchError("library_sizes", f"library sizes are whole numbers from 0 to {most}")
    sizes = sorted(set(library_sizes or []))
    if kind == Run.Kind.SCALING and not sizes:
        raise LaunchError("library_sizes", "a scaling run needs library sizes (numbers of source tasks)")
    check_experiment_size(
        estimate_episodes(
            tasks,
            probe.candidates_per_round,
            probe.max_rounds,
            debug_seeds,
            heldout_seeds,
            mode=probe.mode,
            library_sizes=sizes,
        )
    )
    run_settings = engine_settings(engine)
    run_settings.update(
        agent=agent,
        search=base,
        rounds=probe.max_rounds,
        k=probe.candidates_per_round,
        heldout_seeds=sorted(heldout_seeds or {s for t in tasks for s in t.heldout_seeds}),
        library_sizes=sizes,
        frozen_library=kind in FROZEN_LIBRARY,
        record=bool(record),
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
            perception_mode=run_settings["perception_mode"],
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
