"""The experiment state machine: a coordinator owns a run over many tasks; one actor per task searches.

Everything is driven by short, idempotent Celery tasks (experiments.tasks) that take ids and read their
state from the database, so a killed worker loses nothing that finished and its redelivered task
carries on:

  coordinate(run)            starts the run and its queued actors, and when all have ended hands their
                             proposed skills to the library's admission and closes the run;
  actor_step(actor)          one decision: propose the next round (the agent writes K candidates),
                             or, when a stop rule fires, send the best program to held-out evaluation,
                             or, once that is done, record the actor's numbers;
  evaluate_candidate(c)      runs a candidate on its seeds; the last candidate of a round to finish
                             (a database barrier, not a Celery chord) queues the actor's next step.

An actor (Actor.Status) and the steps that move it::

               actor_step                  round stored
    QUEUED ───────────────▶ PROPOSING ──────────────────▶ EVALUATING
                             │     ▲                            │
                             │     └────────────────────────────┘
                             │       the round's last evaluate_candidate claims the actor
                             │       (PROPOSING again) and queues actor_step
                             │ actor_step: a stop rule fired (target, plateau, round budget, replays)
                             ▼
                          HELDOUT ── evaluate_candidate(best, held-out), actor_step ──▶ FINISHED

    the agent fails ──▶ FAILED;   the run is cancelled ──▶ CANCELLED (from any state not ended)
    An actor that finishes, fails or sees the cancellation in actor_step queues coordinate.

The run (Run.Status)::

    QUEUED ──coordinate──▶ RUNNING ──coordinate, every actor ended──▶ FINISHED (an actor has a held-out
                                                                      rate; the run's is their mean)
                                                                    ▶ FAILED (none has)
    CANCELLED is set from outside (runs.services.cancel_run); coordinate then cancels the actors.

Candidates of a round are separate tasks, so they run in parallel on the worker pool (and on workers
on other machines consuming the same queues through the same Redis).
"""

from __future__ import annotations

import logging

from django.conf import settings as django_settings
from django.db import transaction
from django.utils import timezone

from runs import live
from runs.models import Actor, Candidate, Episode, Run
from runs.sink import DjangoSink
from skills.services import SkillInputError, record_skill_outcome, submit_agent_proposal
from worker.engine import EngineSettings, run_episodes
from worker.search.core import CandidateRecord, SearchSettings, leaderboard, stop_reason
from worker.sim import catalog

from .agents import make_agent
from .queues import ACTOR_STEP, COORDINATE_RUN, EVALUATE_CANDIDATE, send_after_commit
from .rounds import propose_next_round
from .workbench import candidate_record

log = logging.getLogger(__name__)

ENGINE_KEYS = ("wall_seconds", "memory_mb", "trace", "keyframes")


# -- the coordinator ------------------------------------------------------------------------------------
def coordinate(run_id: int) -> None:
    """Start the run and its queued actors; once every actor has ended, hand over skills and close the run."""
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
            send_after_commit(ACTOR_STEP, actor.pk)
        actors = list(run.actors.select_related("task"))
        if not all(a.is_terminal for a in actors):
            return
        handed = 0 if run.settings.get("frozen_library") else hand_over_skills(run, actors)
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


def hand_over_skills(run: Run, actors: list[Actor]) -> int:
    """Give every actor's proposed skills to the skill library's admission (they are validated there
    by re-execution before anyone can approve them); returns how many were handed over."""
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
    """The actor's search settings, with its task's own seed splits where the experiment gave none."""
    data = dict(actor.settings)
    data["debug_seeds"] = tuple(data.get("debug_seeds") or actor.task.debug_seeds)
    data["heldout_seeds"] = tuple(data.get("heldout_seeds") or actor.task.heldout_seeds)
    return SearchSettings(**data)


def rounds_of(actor: Actor) -> list[list[CandidateRecord]]:
    """The actor's rounds so far, as the search functions see them."""
    by_round: dict[int, list] = {}
    for candidate in actor.search_candidates().order_by("round", "index"):
        by_round.setdefault(candidate.round, []).append(candidate_record(candidate))
    return [by_round[r] for r in sorted(by_round)]


def _complete(candidate: Candidate, seeds, split: str) -> bool:
    done = candidate.episodes.filter(split=split).exclude(status=Episode.RUNNING).values_list("seed", flat=True)
    return set(seeds) <= set(done)


def actor_step(actor_id: int) -> None:
    """One idempotent decision for an actor (see the module docstring)."""
    with transaction.atomic():
        actor = Actor.objects.select_for_update().select_related("run", "task").get(pk=actor_id)
        if actor.is_terminal:
            return
        if actor.run.status == Run.Status.CANCELLED:
            actor.status, actor.finished_at = Actor.Status.CANCELLED, timezone.now()
            actor.save(update_fields=["status", "finished_at"])
            send_after_commit(COORDINATE_RUN, actor.run_id)
            return
        settings = settings_of(actor)
        if actor.status == Actor.Status.HELDOUT:
            if actor.best and _complete(actor.best, settings.heldout_seeds, Episode.Split.HELDOUT):
                actor.best.refresh_from_db()
                actor.heldout_rate = actor.best.heldout_rate
                actor.status, actor.finished_at = Actor.Status.FINISHED, timezone.now()
                actor.save(update_fields=["heldout_rate", "status", "finished_at"])
                live.run_changed(actor.run_id, "actor", actor=actor.pk)
                send_after_commit(COORDINATE_RUN, actor.run_id)
            return
        debug = Episode.Split.DEBUG
        if any(not _complete(c, settings.debug_seeds, debug) for c in actor.search_candidates()):
            # Their evaluation tasks are queued (a killed worker's task is redelivered by the broker).
            return
        rounds = rounds_of(actor)
        reason = stop_reason(settings, rounds) if rounds else None
        if reason:
            _stop_search(actor, rounds, reason)
            return
        if actor.status == Actor.Status.QUEUED:
            actor.started_at = timezone.now()
        actor.status = Actor.Status.PROPOSING
        actor.save(update_fields=["status", "started_at"])
    try:
        candidates = propose_next_round(actor, settings, rounds)
    except Exception as exc:  # a failed agent ends this actor, not the run
        log.exception("actor %s could not propose round %s", actor_id, len(rounds))
        Actor.objects.filter(pk=actor_id).update(
            status=Actor.Status.FAILED, finished_at=timezone.now(), error=f"{type(exc).__name__}: {exc}"[:2000]
        )
        send_after_commit(COORDINATE_RUN, actor.run_id)
        return
    for candidate in candidates:
        send_after_commit(EVALUATE_CANDIDATE, candidate.pk, Episode.Split.DEBUG)


def _stop_search(actor: Actor, rounds: list[list[CandidateRecord]], reason: str) -> None:
    """A stop rule fired: keep the best program, collect the agent's findings, queue its held-out evaluation."""
    everything = [c for r in rounds for c in r]
    best_record = leaderboard(everything)[0]
    best = Candidate.objects.get(pk=best_record.ref)
    actor.best, actor.stop_reason = best, reason
    actor.first_debug_rate = rounds[0][0].success_rate
    actor.final_debug_rate = best.success_rate
    actor.status = Actor.Status.HELDOUT
    # Agents that distil findings after the search (the offline agent; the LLM agents propose skills with
    # a tool during their rounds) add them here, once: this branch runs at one status.
    agent = make_agent(actor.run.settings.get("agent", {}))
    actor.proposed_skills = list(actor.proposed_skills) + agent.findings(rounds[0][0], best_record, everything)
    actor.save(
        update_fields=["best", "stop_reason", "first_debug_rate", "final_debug_rate", "status", "proposed_skills"]
    )
    live.run_changed(actor.run_id, "actor", actor=actor.pk)
    send_after_commit(EVALUATE_CANDIDATE, best.pk, Episode.Split.HELDOUT)


# -- evaluating candidates ------------------------------------------------------------------------------
def evaluate_candidate(candidate_id: int, split: str) -> None:
    """Run a candidate on its actor's debug (or held-out) seeds, then let the actor move on if this was
    the round's last. Finished episodes are skipped, so a redelivered task resumes."""
    candidate = Candidate.objects.select_related("actor__task", "run").get(pk=candidate_id)
    actor = candidate.actor
    settings = settings_of(actor)
    seeds = settings.heldout_seeds if split == Episode.Split.HELDOUT else settings.debug_seeds
    done = set(candidate.episodes.filter(split=split).exclude(status=Episode.RUNNING).values_list("seed", flat=True))
    todo = [s for s in seeds if s not in done]
    engine = EngineSettings(**{k: v for k, v in candidate.run.settings.items() if k in ENGINE_KEYS})
    spec = catalog.get_task(actor.task.key)
    run_episodes(
        spec,
        candidate.program,
        todo,
        DjangoSink(candidate, split),
        engine,
        str(django_settings.MEDIA_ROOT),
        should_stop=lambda: Run.objects.filter(pk=candidate.run_id, status=Run.Status.CANCELLED).exists(),
    )
    live.run_changed(candidate.run_id, "candidate", candidate=candidate.pk)
    if split == Episode.Split.DEBUG and _complete(candidate, seeds, split):
        _settle_skill_uses(candidate)
    with transaction.atomic():
        actor = Actor.objects.select_for_update().get(pk=actor.pk)
        if actor.is_terminal:
            return
        round_candidates = actor.search_candidates().filter(round=actor.current_round)
        waiting = (
            split == Episode.Split.DEBUG
            and actor.status == Actor.Status.EVALUATING
            and all(_complete(c, settings.debug_seeds, Episode.Split.DEBUG) for c in round_candidates)
        )
        held = (
            split == Episode.Split.HELDOUT
            and actor.status == Actor.Status.HELDOUT
            and _complete(candidate, seeds, split)
        )
        cancelled = Run.objects.filter(pk=actor.run_id, status=Run.Status.CANCELLED).exists()
        if waiting or held or cancelled:
            if waiting:
                actor.status = Actor.Status.PROPOSING  # claimed: later finishers of this round see it and stop here
                actor.save(update_fields=["status"])
            send_after_commit(ACTOR_STEP, actor.pk)


def _settle_skill_uses(candidate: Candidate) -> None:
    """The candidate's debug evaluation is complete: settle the outcome of the library skills it applied."""
    candidate.refresh_from_db(fields=["success_rate"])
    baseline = candidate.parent.success_rate if candidate.parent_id else None
    record_skill_outcome(candidate, baseline_success_rate=baseline)
