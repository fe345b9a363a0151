"""Experiments: a coordinator owns a run over many tasks and one actor per task searches for a program.

Everything is driven by short, idempotent Celery tasks that take ids and read their state from the
database, so a killed worker loses nothing that finished and its redelivered task carries on:

  coordinate_run_task(run)   creates the actors, starts them, and when all have ended hands their
                             proposed skills to the library's admission and closes the run;
  actor_step_task(actor)     one decision: propose the next round (the agent writes K candidates),
                             or, when a stop rule fires, send the best program to held-out evaluation,
                             or, once that is done, record the actor's numbers;
  evaluate_candidate_task(c) runs a candidate on its seeds; the last candidate of a round to finish
                             (a database barrier) queues the actor's next step.

Candidates of a round are separate tasks, so they run in parallel on the worker pool (and on workers
on other machines consuming the same queues through the same Redis).
"""

from __future__ import annotations

import logging
import os

from django.conf import settings as django_settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from worker.engine import EngineSettings, program_hash, run_episodes
from worker.search.core import (
    Brief,
    SearchSettings,
    eliminated_hypotheses,
    leaderboard,
    stop_reason,
)
from worker.sim import catalog

from . import live, services
from .models import Actor, AgentCall, Candidate, Episode, Run, Task
from .sink import DjangoSink
from .workbench import USAGE_FIELDS, DjangoWorkbench, add_usage, candidate_record

log = logging.getLogger(__name__)

ENGINE_KEYS = ("wall_seconds", "memory_mb", "trace", "keyframes")
KIND_DEFAULTS = {
    Run.Kind.FIX_LOOP: {"mode": "fix_loop", "max_rounds": 6},
    Run.Kind.SEARCH: {"mode": "search"},
    Run.Kind.ZERO_SHOT: {"mode": "search", "max_rounds": 1, "candidates_per_round": 1},
    Run.Kind.SCALING: {"mode": "search"},
}
FROZEN_LIBRARY = (Run.Kind.ZERO_SHOT, Run.Kind.SCALING)


def queue(name: str) -> str:
    return django_settings.ASPIRE["QUEUES"].get(name) or django_settings.CELERY_TASK_DEFAULT_QUEUE


# -- creating and starting ----------------------------------------------------------------------------
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
        raise services.LaunchError("kind", f"unknown experiment kind {kind!r}; choose one of {', '.join(KIND_DEFAULTS)}")
    if not tasks:
        raise services.LaunchError("tasks", "choose at least one task")
    if len(tasks) > django_settings.ASPIRE["MAX_TASKS_PER_EXPERIMENT"]:
        raise services.LaunchError("tasks", f"an experiment takes at most {django_settings.ASPIRE['MAX_TASKS_PER_EXPERIMENT']} tasks")
    agent = {"backend": "offline", **(agent or {})}
    if agent["backend"] not in ("offline", "claude", "openai"):
        raise services.LaunchError("agent", f"unknown agent backend {agent['backend']!r}")
    if agent["backend"] == "openai" and not (agent.get("base_url") or django_settings.ASPIRE["OPENAI_BASE_URL"]):
        raise services.LaunchError("base_url", "an OpenAI-compatible agent needs a base URL")
    if agent["backend"] == "openai" and not agent.get("model"):
        raise services.LaunchError("model", "an OpenAI-compatible agent needs a model name")
    search = dict(search or {})
    allowed = set(SearchSettings.__dataclass_fields__) - {"mode", "debug_seeds", "heldout_seeds"}
    unknown = set(search) - allowed
    if unknown:
        raise services.LaunchError("search", f"unknown search settings {sorted(unknown)}")
    probe = SearchSettings(**{**KIND_DEFAULTS[kind], **search})
    # Every setting is stored, defaults included, so the run says exactly how it searched.
    base = {k: v for k, v in probe.as_dict().items() if k not in ("debug_seeds", "heldout_seeds")}
    if not 1 <= probe.candidates_per_round <= 32 or not 1 <= probe.max_rounds <= 20 or not 1 <= probe.survivors <= 16:
        raise services.LaunchError("search", "K must be 1-32, rounds 1-20 and survivors 1-16")
    if not 0 < probe.target_success <= 1:
        raise services.LaunchError("target_success", "the target success rate is a fraction in (0, 1]")
    if debug_seeds is not None and heldout_seeds is not None and set(debug_seeds) & set(heldout_seeds):
        raise services.LaunchError("heldout_seeds", f"seeds {sorted(set(debug_seeds) & set(heldout_seeds))} are in both splits")
    for task in tasks:
        overlap = set(debug_seeds or task.debug_seeds) & set(heldout_seeds or task.heldout_seeds)
        if overlap:
            raise services.LaunchError("debug_seeds", f"{task.key}: seeds {sorted(overlap)} would be both debug and held-out")
    sizes = sorted(set(library_sizes or []))
    if kind == Run.Kind.SCALING and not sizes:
        raise services.LaunchError("library_sizes", "a scaling run needs library sizes (numbers of source tasks)")
    run_settings = services.engine_settings(engine)
    run_settings.update(agent=agent, search=base, rounds=probe.max_rounds, k=probe.candidates_per_round,
                        heldout_seeds=sorted(heldout_seeds or {s for t in tasks for s in t.heldout_seeds}), library_sizes=sizes,
                        frozen_library=kind in FROZEN_LIBRARY)
    with transaction.atomic():
        run = Run.objects.create(task=tasks[0] if len(tasks) == 1 else None, owner=owner, team=team, kind=kind, source=source,
                                 seeds=sorted(debug_seeds or {s for t in tasks for s in t.debug_seeds}), settings=run_settings)
        for task in tasks:
            for size in sizes or [None]:
                Actor.objects.create(run=run, task=task, library_size=size, settings={
                    **base, "debug_seeds": list(debug_seeds or task.debug_seeds),
                    "heldout_seeds": list(heldout_seeds or task.heldout_seeds)})
    return run


def start_experiment(run: Run) -> None:
    from worker.tasks import coordinate_run_task

    transaction.on_commit(lambda: coordinate_run_task.apply_async((run.pk,), queue=queue("coordinator")))


# -- the coordinator ------------------------------------------------------------------------------------
def coordinate(run_id: int) -> None:
    from worker.tasks import actor_step_task

    with transaction.atomic():
        run = Run.objects.select_for_update().get(pk=run_id)
        if run.status in (Run.Status.FINISHED, Run.Status.FAILED):
            return
        if run.status == Run.Status.CANCELLED:
            _cancel_actors(run)
            return
        if run.status == Run.Status.QUEUED:
            run.status, run.started_at = Run.Status.RUNNING, timezone.now()
            run.save(update_fields=["status", "started_at"])
            live.run_changed(run.pk, "status", status=run.status)
        for actor in run.actors.filter(status=Actor.Status.QUEUED):
            transaction.on_commit(lambda a=actor.pk: actor_step_task.apply_async((a,), queue=queue("actors")))
        actors = list(run.actors.select_related("task"))
        if not all(a.is_terminal for a in actors):
            return
        handed = 0 if run.settings.get("frozen_library") else _hand_over_skills(run, actors)
        finished = [a for a in actors if a.status == Actor.Status.FINISHED and a.heldout_rate is not None]
        run.success_rate = sum(a.heldout_rate for a in finished) / len(finished) if finished else None
        run.status = Run.Status.FINISHED if finished else Run.Status.FAILED
        run.finished_at = timezone.now()
        if not finished:
            run.error = "; ".join(f"{a.task.key}: {a.error}" for a in actors if a.error)[:2000] or "no actor finished"
        elif handed:
            run.error = f"{handed} proposed skill(s) handed to the library for validation"
        run.save(update_fields=["success_rate", "status", "finished_at", "error"])
        live.run_changed(run.pk, "status", status=run.status)


def _cancel_actors(run: Run) -> None:
    for actor in run.actors.select_for_update().exclude(status__in=Actor.TERMINAL):
        actor.status, actor.finished_at = Actor.Status.CANCELLED, timezone.now()
        actor.save(update_fields=["status", "finished_at"])


def _hand_over_skills(run: Run, actors: list[Actor]) -> int:
    """Give every actor's proposed skills to the skill library's admission (they are validated there
    by re-execution before anyone can approve them); returns how many were handed over."""
    from skills.services import SkillInputError, submit_agent_proposal

    count = 0
    for actor in actors:
        for fields in actor.proposed_skills:
            try:
                submit_agent_proposal(fields, run=run, task=actor.task)
            except SkillInputError as exc:
                # A malformed proposal is the agent's mistake: keep the run's results, say why it was dropped.
                log.warning("run %s: dropped a skill proposal from %s: %s", run.pk, actor.task.key, exc)
                Actor.objects.filter(pk=actor.pk).update(error=f"skill proposal dropped: {exc}"[:2000])
                continue
            count += 1
    return count


# -- actors ---------------------------------------------------------------------------------------------
def settings_of(actor: Actor) -> SearchSettings:
    data = dict(actor.settings)
    data["debug_seeds"] = tuple(data.get("debug_seeds") or actor.task.debug_seeds)
    data["heldout_seeds"] = tuple(data.get("heldout_seeds") or actor.task.heldout_seeds)
    return SearchSettings(**data)


def search_candidates(actor: Actor):
    return actor.candidates.exclude(origin="experiment")


def rounds_of(actor: Actor) -> list[list]:
    by_round: dict[int, list] = {}
    for candidate in search_candidates(actor).order_by("round", "index"):
        by_round.setdefault(candidate.round, []).append(candidate_record(candidate))
    return [by_round[r] for r in sorted(by_round)]


def _complete(candidate: Candidate, seeds, split: str) -> bool:
    done = candidate.episodes.filter(split=split).exclude(status=Episode.RUNNING).values_list("seed", flat=True)
    return set(seeds) <= set(done)


def actor_step(actor_id: int) -> None:
    """One idempotent decision for an actor (see module docstring)."""
    from worker.tasks import coordinate_run_task, evaluate_candidate_task

    with transaction.atomic():
        actor = Actor.objects.select_for_update().select_related("run", "task").get(pk=actor_id)
        if actor.is_terminal:
            return
        if actor.run.status == Run.Status.CANCELLED:
            actor.status, actor.finished_at = Actor.Status.CANCELLED, timezone.now()
            actor.save(update_fields=["status", "finished_at"])
            transaction.on_commit(lambda: coordinate_run_task.apply_async((actor.run_id,), queue=queue("coordinator")))
            return
        settings = settings_of(actor)
        if actor.status == Actor.Status.HELDOUT:
            if actor.best and _complete(actor.best, settings.heldout_seeds, Episode.Split.HELDOUT):
                actor.best.refresh_from_db()
                actor.heldout_rate = actor.best.heldout_rate
                actor.status, actor.finished_at = Actor.Status.FINISHED, timezone.now()
                actor.save(update_fields=["heldout_rate", "status", "finished_at"])
                live.run_changed(actor.run_id, "actor", actor=actor.pk)
                transaction.on_commit(lambda: coordinate_run_task.apply_async((actor.run_id,), queue=queue("coordinator")))
            return
        unfinished = [c for c in search_candidates(actor) if not _complete(c, settings.debug_seeds, Episode.Split.DEBUG)]
        if unfinished:
            # Their evaluation tasks are queued (a killed worker's task is redelivered by the broker).
            return
        rounds = rounds_of(actor)
        reason = stop_reason(settings, rounds) if rounds else None
        if reason:
            everything = [c for r in rounds for c in r]
            best_record = leaderboard(everything)[0]
            best = Candidate.objects.get(pk=best_record.ref)
            actor.best, actor.stop_reason = best, reason
            actor.first_debug_rate = rounds[0][0].success_rate
            actor.final_debug_rate = best.success_rate
            actor.status = Actor.Status.HELDOUT
            # Agents that distil findings after the search (the offline agent; the LLM agents propose
            # skills with a tool during their rounds) add them here, once: this branch runs at one status.
            agent = make_agent(actor.run.settings.get("agent", {}))
            if hasattr(agent, "findings"):
                actor.proposed_skills = list(actor.proposed_skills) + agent.findings(rounds[0][0], best_record, everything)
            actor.save(update_fields=["best", "stop_reason", "first_debug_rate", "final_debug_rate", "status", "proposed_skills"])
            live.run_changed(actor.run_id, "actor", actor=actor.pk)
            transaction.on_commit(lambda: evaluate_candidate_task.apply_async((best.pk, Episode.Split.HELDOUT), queue=queue("episodes")))
            return
        if actor.status == Actor.Status.QUEUED:
            actor.started_at = timezone.now()
        actor.status = Actor.Status.PROPOSING
        actor.save(update_fields=["status", "started_at"])
    try:
        candidates = _propose_round(actor, settings, rounds)
    except Exception as exc:  # a failed agent ends this actor, not the run
        log.exception("actor %s could not propose round %s", actor_id, len(rounds))
        Actor.objects.filter(pk=actor_id).update(status=Actor.Status.FAILED, error=f"{type(exc).__name__}: {exc}"[:2000],
                                                 finished_at=timezone.now())
        transaction.on_commit(lambda: coordinate_run_task.apply_async((actor.run_id,), queue=queue("coordinator")))
        return
    for candidate in candidates:
        transaction.on_commit(lambda c=candidate.pk: evaluate_candidate_task.apply_async((c, Episode.Split.DEBUG), queue=queue("episodes")))


def make_agent(config: dict):
    backend = config.get("backend", "offline")
    if backend == "offline":
        from worker.agents.offline import OfflineSearchAgent

        return OfflineSearchAgent(seed=int(config.get("seed", 0)))
    if backend == "claude":
        from worker.agents.llm import ClaudeAgent
        from worker.agents.pricing import DEFAULT_CLAUDE_MODEL

        return ClaudeAgent(model=config.get("model") or DEFAULT_CLAUDE_MODEL)
    from worker.agents.llm import OpenAICompatibleAgent

    return OpenAICompatibleAgent(model=config.get("model", ""), base_url=config.get("base_url") or django_settings.ASPIRE["OPENAI_BASE_URL"],
                                 api_key=os.environ.get("OPENAI_API_KEY"))


def _propose_round(actor: Actor, settings: SearchSettings, rounds: list[list]) -> list[Candidate]:
    from worker.search.core import Proposal

    number = len(rounds)
    everything = [c for r in rounds for c in r]
    ranked = leaderboard(everything)
    spec = catalog.get_task(actor.task.key)
    k = settings.candidates_per_round if settings.mode == "search" else 1
    workbench = DjangoWorkbench(actor, number, skill_source(actor))
    brief = Brief(
        task_key=spec.key, instruction=spec.instruction, arms=spec.arms, cameras=spec.cameras, round=number, k=k,
        debug_seeds=settings.debug_seeds, survivors=ranked[: settings.survivors], eliminated=eliminated_hypotheses(everything),
        skills=workbench.skills(spec.instruction, 5), starter=services.starter_program(spec), mode=settings.mode,
    )
    agent_config = actor.run.settings.get("agent", {})
    agent = make_agent(agent_config)
    proposals = agent.propose(brief, workbench)
    if agent_config.get("backend", "offline") == "offline":
        from worker.agents.pricing import AgentUsage

        workbench.record_usage(AgentUsage("offline", "", "propose", number))
    if not proposals:
        raise RuntimeError(f"the agent proposed no candidates for round {number}")
    if ranked and settings.mode == "search":
        best = ranked[0]
        proposals = [Proposal("keep the current best (floor)", best.code, best.ref, best.params)] + list(proposals)[: k - 1]
    created = []
    try:
        with transaction.atomic():
            created = _create_round(actor, number, proposals[:k], workbench)
    except IntegrityError:
        # Another step of this actor (a redelivered task) created this round first; keep its version.
        log.info("round %s of actor %s was already proposed", number, actor.pk)
        return []
    return created


def _create_round(actor: Actor, number: int, proposals, workbench) -> list[Candidate]:
    created = []
    for index, proposal in enumerate(proposals):
        parent = Candidate.objects.filter(pk=proposal.parent, actor=actor).first() if proposal.parent is not None else None
        created.append(Candidate.objects.create(
            run=actor.run, actor=actor, round=number, index=index, label=f"round {number} · {chr(65 + index)}",
            hypothesis=proposal.hypothesis[:2000], program=proposal.code, program_hash=program_hash(proposal.code),
            origin="agent", parent=parent, params=proposal.params, agent_call=workbench.agent_call,
        ))
    _spread_usage(workbench.agent_call, [c for c in created if not (c.parent and c.program == c.parent.program)])
    _record_skill_uses(created, workbench)
    Actor.objects.filter(pk=actor.pk).update(status=Actor.Status.EVALUATING, current_round=number)
    for candidate in created:
        live.run_changed(actor.run_id, "candidate", candidate=candidate.pk)
    return created


def _record_skill_uses(candidates: list[Candidate], workbench) -> None:
    """Candidates that apply a library skill (the offline agent's skill repairs name it in their
    params) count as uses of it; their outcome is settled once their debug evaluation is complete."""
    from skills.services import record_candidate_skill_use

    call_id = workbench.agent_call.pk if workbench.agent_call is not None else None
    for candidate in candidates:
        if isinstance(candidate.params, dict) and candidate.params.get("skill") is not None:
            record_candidate_skill_use(candidate, candidate.params["skill"], retrieval_id=candidate.params.get("retrieval"),
                                       agent_call_id=call_id)


def _settle_skill_uses(candidate: Candidate) -> None:
    from skills.services import record_skill_outcome

    candidate.refresh_from_db(fields=["success_rate"])
    baseline = candidate.parent.success_rate if candidate.parent_id else None
    record_skill_outcome(candidate, baseline_success_rate=baseline)


def _spread_usage(call: AgentCall | None, candidates: list[Candidate]) -> None:
    """Attribute an agent call's tokens and cost evenly to the candidates it wrote."""
    if call is None or not candidates:
        return
    share = {name: getattr(call, name) / len(candidates) for name in USAGE_FIELDS}
    for candidate in candidates:
        add_usage(Candidate.objects.filter(pk=candidate.pk), {k: (round(v, 6) if k == "cost_usd" else int(round(v))) for k, v in share.items()})


def skill_source(actor: Actor):
    """Retrieval over the approved library, limited to the first N source tasks in scaling runs."""
    from skills.services import LibraryAccess

    return LibraryAccess(run=actor.run, task=actor.task, library_size=actor.library_size)


# -- evaluating candidates ------------------------------------------------------------------------------
def evaluate_candidate(candidate_id: int, split: str) -> None:
    """Run a candidate on its actor's debug (or held-out) seeds, then let the actor move on if this was
    the round's last. Finished episodes are skipped, so a redelivered task resumes."""
    from worker.tasks import actor_step_task

    candidate = Candidate.objects.select_related("actor__task", "run").get(pk=candidate_id)
    actor = candidate.actor
    settings = settings_of(actor)
    seeds = settings.heldout_seeds if split == Episode.Split.HELDOUT else settings.debug_seeds
    done = set(candidate.episodes.filter(split=split).exclude(status=Episode.RUNNING).values_list("seed", flat=True))
    todo = [s for s in seeds if s not in done]
    engine = EngineSettings(**{k: v for k, v in candidate.run.settings.items() if k in ENGINE_KEYS})
    spec = catalog.get_task(actor.task.key)
    run_episodes(spec, candidate.program, todo, DjangoSink(candidate, split), engine, str(django_settings.MEDIA_ROOT),
                 should_stop=lambda: Run.objects.filter(pk=candidate.run_id, status=Run.Status.CANCELLED).exists())
    live.run_changed(candidate.run_id, "candidate", candidate=candidate.pk)
    if split == Episode.Split.DEBUG and _complete(candidate, seeds, split):
        _settle_skill_uses(candidate)
    with transaction.atomic():
        actor = Actor.objects.select_for_update().get(pk=actor.pk)
        if actor.is_terminal:
            return
        round_candidates = search_candidates(actor).filter(round=actor.current_round)
        waiting = (split == Episode.Split.DEBUG and actor.status == Actor.Status.EVALUATING
                   and all(_complete(c, settings.debug_seeds, Episode.Split.DEBUG) for c in round_candidates))
        held = split == Episode.Split.HELDOUT and actor.status == Actor.Status.HELDOUT and _complete(candidate, seeds, split)
        cancelled = Run.objects.filter(pk=actor.run_id, status=Run.Status.CANCELLED).exists()
        if waiting or held or cancelled:
            if waiting:
                actor.status = Actor.Status.PROPOSING  # claimed: later finishers of this round see it and stop here
                actor.save(update_fields=["status"])
            transaction.on_commit(lambda: actor_step_task.apply_async((actor.pk,), queue=queue("actors")))


# -- numbers for pages and the API ----------------------------------------------------------------------
def actor_rows(run: Run) -> list[dict]:
    rows = []
    for actor in run.actors.select_related("task", "best").order_by("task__key", "library_size"):
        rows.append({"actor": actor, "rounds": actor.current_round + 1, "wall_s": actor.wall_s,
                     "improvement": (actor.final_debug_rate - actor.first_debug_rate)
                     if actor.final_debug_rate is not None and actor.first_debug_rate is not None else None})
    return rows


def experiment_progress(run: Run) -> dict:
    def part(done, total):
        return {"done": done, "total": total, "percent": int(100 * done / total) if total else 0} if total else None

    actors = list(run.actors.all())
    planned_rounds = sum(int(a.settings.get("max_rounds", 0)) for a in actors)
    # An actor that stopped (target, plateau, budget) has no rounds left; one still searching has
    # finished the rounds before its current one.
    rounds_done = sum(int(a.settings.get("max_rounds", 0)) if (a.is_terminal or a.status == Actor.Status.HELDOUT)
                      else max(0, a.current_round) for a in actors)
    episodes = Episode.objects.filter(run=run).exclude(status=Episode.RUNNING)
    debug_total = sum(len(a.settings.get("debug_seeds", [])) * max(1, search_candidates(a).count()) for a in actors)
    heldout_total = sum(len(a.settings.get("heldout_seeds", [])) for a in actors)
    return {
        "episodes": part(episodes.filter(split=Episode.Split.DEBUG, candidate__origin="agent").count(), debug_total),
        "rounds": part(min(rounds_done, planned_rounds), planned_rounds),
        "heldout": part(episodes.filter(split=Episode.Split.HELDOUT).count(), heldout_total),
    }
