"""The experiment state machine: a coordinator owns a run over many tasks; one actor per task searches.

Everything is driven by short, idempotent Celery tasks (experiments.tasks, and runs' run_episode) that
take ids and read their state from the database; messages only say "look at this now". Every message
goes through the outbox (runs.outbox), written in the transaction that changes the state it carries on.
A message delivered twice does nothing the second time, and one lost (a worker or Redis killed) is
re-sent by the reconciler (:func:`reconcile_experiments`, registered with runs.reconcile):

  coordinate(run)            starts the run and its queued actors, and when all have ended hands their
                             proposed skills to the library's admission and closes the run;
  actor_step(actor)          one decision: propose the next round (the agent writes K candidates,
                             then one run_episode per candidate and debug seed is queued), or, when a
                             stop rule fires, queue the best program's held-out episodes, or, once those
                             are done, record the actor's numbers. While the agent proposes, the actor
                             is owned (``worker``, ``heartbeat_at``) by the process doing it;
  run_episode(c, split, s)   one episode (runs.work): claimed by a conditional write, so no episode runs
                             twice; when it settles, runs.work.episode_settled calls :func:`barrier`:
  barrier(actor)             the round's last episode to settle (a database barrier under the actor's
                             row lock, not a Celery chord) moves the actor on and queues actor_step;
  evaluate_candidate(c)      (old messages) only queues the candidate's episodes.

An actor (Actor.Status) and the steps that move it::

               actor_step                  round stored, its episodes queued
    QUEUED ───────────────▶ PROPOSING ──────────────────────────────────▶ EVALUATING
                             │     ▲                                           │
                             │     └───────────────────────────────────────────┘
                             │       barrier: the round's last episode claims the actor
                             │       (PROPOSING again) and queues actor_step
                             │ actor_step: a stop rule fired (target, plateau, round budget, replays);
                             ▼ the best program's held-out episodes are queued
                          HELDOUT ── barrier: the last held-out episode; actor_step ──▶ FINISHED

    An ``mcp`` actor (its agent is an external MCP client, experiments.external) does not hold a worker
    while its client works: proposing briefs the round and leaves it

                             PROPOSING ──▶ AWAITING ── the client's submit_candidates: the round's
                                                       candidates stored, their episodes queued ──▶ EVALUATING

    An AWAITING actor has no owner and nothing in flight, and that is not stuck: actor_step and the
    reconciler leave it to its client (or to a cancel, which ends it like any other).

    any step raises (the agent, a bad seed, the barrier, the held-out settle, the skill hand-over)
        ──▶ FAILED with "Type: message", and coordinate is queued so the run still ends;
    the run is cancelled ──▶ CANCELLED (from any state not ended; runs.services.cancel_run does it at once)
    An actor that finishes, fails or sees the cancellation queues coordinate.
    A database that is briefly unreachable or locked is not a failure: the step gives up its work, and
    the reconciler runs it again.

The run (Run.Status)::

    QUEUED ──coordinate──▶ RUNNING ──coordinate, every actor ended──▶ FINISHED (an actor has a held-out
                                                                      rate; the run's is their mean)
                                                                    ▶ FAILED (none has, or coordinate
                                                                      itself raised)
    CANCELLED is set from outside (runs.services.cancel_run, which also cancels actors and episodes).

Episodes are separate tasks, so a round's candidates and seeds run in parallel on the worker pool (and
on workers on other machines consuming the same queues through the same Redis).
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import timedelta

from django.db import InterfaceError, OperationalError, transaction
from django.utils import timezone

from runs import heartbeat, live, outbox, work
from runs.models import Actor, Candidate, Episode, Run
from skills.services import SkillInputError, record_skill_outcome, submit_agent_proposal
from worker.search.core import CandidateRecord, SearchSettings, leaderboard, stop_reason

from .agents import make_agent
from .queues import ACTOR_STEP, COORDINATE_RUN, RUN_EPISODE, queue, send_after_commit, send_episode
from .rounds import propose_next_round
from .workbench import candidate_record

log = logging.getLogger(__name__)

ENGINE_KEYS = work.ENGINE_KEYS
#: Errors that say "try again later" (the database locked or unreachable), not "this step is wrong":
#: the step gives up its work and the reconciler sends it again.
TRANSIENT = (OperationalError, InterfaceError)


def _lock_actor(actor_id: int, *related: str) -> Actor | None:
    """The actor's row, locked for the current transaction, after its run's row: every step that
    changes an actor takes the run's lock first (as cancel and the episode sink do), so two steps
    never wait on each other's locks in opposite orders."""
    run_id = Actor.objects.filter(pk=actor_id).values_list("run_id", flat=True).first()
    if run_id is None:
        return None
    Run.objects.select_for_update().filter(pk=run_id).first()
    return Actor.objects.select_for_update(of=("self",)).select_related(*related).filter(pk=actor_id).first()


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:2000]


def fail_actor(actor_id: int, error: BaseException | str, step: str = "") -> bool:
    """Mark an actor that has not ended FAILED with ``error`` ("Type: message") and queue coordinate so
    the run still ends; True when this call did."""
    text = error if isinstance(error, str) else _error_text(error)
    if step:
        log.warning("actor %s failed in %s: %s", actor_id, step, text.splitlines()[0] if text else "")
    with transaction.atomic():
        actor = _lock_actor(actor_id)
        if actor is None or actor.is_terminal:
            return False
        Actor.objects.filter(pk=actor_id).update(
            status=Actor.Status.FAILED, finished_at=timezone.now(), error=text[:2000], worker=""
        )
        live.run_changed(actor.run_id, "actor", actor=actor_id)
        send_after_commit(COORDINATE_RUN, actor.run_id)
    return True


# -- the coordinator ------------------------------------------------------------------------------------
def coordinate(run_id: int) -> None:
    """Start the run and its queued actors; once every actor has ended, hand over skills and close the run.
    Any error but a transient database one fails the run (and its actors that had not ended)."""
    try:
        _coordinate(run_id)
    except TRANSIENT:
        raise
    except Exception as exc:
        log.warning("coordinate of run %s failed: %s", run_id, _error_text(exc).splitlines()[0])
        error = f"coordinate: {_error_text(exc)}"
        with transaction.atomic():
            Run.objects.select_for_update().filter(pk=run_id).first()  # the run's lock before its actors'
            now = timezone.now()
            Actor.objects.filter(run_id=run_id).exclude(status__in=Actor.TERMINAL).update(
                status=Actor.Status.FAILED, finished_at=now, error=error, worker=""
            )
            if work.fail_run(run_id, error):
                Episode.objects.filter(run_id=run_id, status=Episode.RUNNING).update(
                    status=Episode.CANCELLED, finished_at=now, error="the run failed"
                )


def _coordinate(run_id: int) -> None:
    with transaction.atomic():
        run = Run.objects.select_for_update().filter(pk=run_id).first()
        if run is None or run.status in (Run.Status.FINISHED, Run.Status.FAILED):
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
        actors = list(run.actors.select_related("task"))  # a failed hand-over failed its actor
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
    now = timezone.now()
    for actor in run.actors.select_for_update().exclude(status__in=Actor.TERMINAL):
        actor.status, actor.finished_at, actor.worker = Actor.Status.CANCELLED, now, ""
        actor.save(update_fields=["status", "finished_at", "worker"])
    Episode.objects.filter(run=run, status=Episode.RUNNING).update(
        status=Episode.CANCELLED, finished_at=now, error=run.error or "cancelled"
    )


def hand_over_skills(run: Run, actors: list[Actor]) -> int:
    """Give every actor's proposed skills to the skill library's admission (they are validated there
    by re-execution before anyone can approve them); returns how many were handed over. A malformed
    proposal is dropped with a note; any other error fails that actor ("skill hand-over: ...")."""
    count = 0
    for actor in actors:
        for fields in actor.proposed_skills:
            try:
                with transaction.atomic():
                    submit_agent_proposal(fields, run=run, task=actor.task)
            except SkillInputError as exc:
                # A malformed proposal is the agent's mistake: keep the run's results, say why it was dropped.
                log.warning("run %s: dropped a skill proposal from %s: %s", run.pk, actor.task.key, exc)
                Actor.objects.filter(pk=actor.pk).update(error=f"skill proposal dropped: {exc}"[:2000])
                continue
            except TRANSIENT:
                raise
            except Exception as exc:
                log.warning("run %s: handing over %s's skills failed: %s", run.pk, actor.task.key, _error_text(exc))
                Actor.objects.filter(pk=actor.pk).update(
                    status=Actor.Status.FAILED, error=f"skill hand-over: {_error_text(exc)}"[:2000]
                )
                break
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
    """True when the candidate has a result (not RUNNING, not CANCELLED) on every seed of ``split``."""
    done = candidate.episodes.filter(split=split).exclude(status__in=Episode.NO_RESULT).values_list("seed", flat=True)
    return set(int(s) for s in seeds) <= set(done)


def actor_owned(actor: Actor) -> bool:
    """True while a live process works on the actor's step (proposing a round)."""
    if actor.worker and actor.worker == heartbeat.worker_name():
        return heartbeat.holds("actor", actor.pk)
    return heartbeat.owner_alive(actor.worker, actor.heartbeat_at)


def actor_step(actor_id: int) -> None:
    """One idempotent decision for an actor (see the module docstring). Any error but a transient
    database one fails the actor with its message and queues coordinate."""
    try:
        _actor_step(actor_id)
    except TRANSIENT:
        Actor.objects.filter(pk=actor_id, worker=heartbeat.worker_name()).update(worker="")
        raise
    except Exception as exc:
        fail_actor(actor_id, exc, "actor_step")


def _actor_step(actor_id: int) -> None:
    me = heartbeat.worker_name()
    held = False
    try:
        held = _decide(actor_id, me)
        if held:
            _propose(actor_id, me, *held)
    finally:
        if held:
            heartbeat.drop("actor", actor_id)


def _decide(actor_id: int, me: str):
    """The decision of actor_step, in one transaction under the actor's lock. Returns (actor, settings,
    rounds) when a round is to be proposed: the actor is then PROPOSING, owned by this process and held
    (acquired before the commit, so another thread of this process sees it taken); else False."""
    acquired = False
    try:
        with transaction.atomic():
            actor = _lock_actor(actor_id, "run", "task")
            if actor is None or actor.is_terminal:
                return False
            if actor.run.status == Run.Status.CANCELLED:
                actor.status, actor.finished_at, actor.worker = Actor.Status.CANCELLED, timezone.now(), ""
                actor.save(update_fields=["status", "finished_at", "worker"])
                send_after_commit(COORDINATE_RUN, actor.run_id)
                return False
            if actor_owned(actor):
                return False  # a duplicate message: another live step is proposing this actor's round
            if actor.status == Actor.Status.AWAITING:
                return False  # the round is its MCP client's until it submits (experiments.external)
            settings = settings_of(actor)
            if actor.status == Actor.Status.HELDOUT:
                _settle_heldout(actor, settings)
                return False
            debug = Episode.Split.DEBUG
            if any(not _complete(c, settings.debug_seeds, debug) for c in actor.search_candidates()):
                # Their episodes are queued (the reconciler re-sends those whose worker or message was lost).
                return False
            rounds = rounds_of(actor)
            reason = stop_reason(settings, rounds) if rounds else None
            if reason:
                _stop_search(actor, rounds, reason, settings)
                return False
            acquired = heartbeat.acquire("actor", actor_id, f"actor {actor_id} round {len(rounds)}")
            if not acquired:
                return False  # another thread of this process is at it
            if actor.status == Actor.Status.QUEUED:
                actor.started_at = timezone.now()
            actor.status = Actor.Status.PROPOSING
            actor.worker, actor.heartbeat_at = me, timezone.now()
            heartbeat.touch()
            actor.save(update_fields=["status", "started_at", "worker", "heartbeat_at"])
    except BaseException:
        if acquired:
            heartbeat.drop("actor", actor_id)
        raise
    return actor, settings, rounds


def _propose(actor_id: int, me: str, actor: Actor, settings: SearchSettings, rounds) -> None:
    """The agent writes the round (minutes with a language model) while this process owns the actor;
    then one run_episode per candidate and debug seed is queued."""
    heartbeat.ensure_beating()
    try:
        candidates = propose_next_round(actor, settings, rounds)
    finally:
        Actor.objects.filter(pk=actor_id, worker=me).update(worker="")
    with transaction.atomic():
        for candidate in candidates:
            for seed in settings.debug_seeds:
                send_episode(candidate.pk, Episode.Split.DEBUG, seed)


def _settle_heldout(actor: Actor, settings: SearchSettings) -> None:
    """A HELDOUT actor whose best program has every held-out result: record them, FINISHED."""
    if actor.best and _complete(actor.best, settings.heldout_seeds, Episode.Split.HELDOUT):
        actor.best.refresh_from_db()
        actor.heldout_rate = actor.best.heldout_rate
        actor.status, actor.finished_at = Actor.Status.FINISHED, timezone.now()
        actor.save(update_fields=["heldout_rate", "status", "finished_at"])
        live.run_changed(actor.run_id, "actor", actor=actor.pk)
        send_after_commit(COORDINATE_RUN, actor.run_id)


def _stop_search(actor: Actor, rounds: list[list[CandidateRecord]], reason: str, settings: SearchSettings) -> None:
    """A stop rule fired: keep the best program, collect the agent's findings, queue its held-out episodes."""
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
    for seed in settings.heldout_seeds:
        send_episode(best.pk, Episode.Split.HELDOUT, seed)


# -- episodes settling: the round barrier --------------------------------------------------------------
def evaluate_candidate(candidate_id: int, split: str) -> None:
    """Queue a candidate's episodes on its actor's debug (or held-out) seeds (one run_episode each); an
    error fails the actor."""
    candidate = Candidate.objects.select_related("actor__task").filter(pk=candidate_id).first()
    if candidate is None or candidate.actor is None:
        return
    try:
        settings = settings_of(candidate.actor)
        seeds = settings.heldout_seeds if split == Episode.Split.HELDOUT else settings.debug_seeds
        with transaction.atomic():
            for seed in seeds:
                send_episode(candidate.pk, split, seed)
    except TRANSIENT:
        raise
    except Exception as exc:
        fail_actor(candidate.actor_id, exc, "evaluate_candidate")


def on_episode_settled(sender=None, *, candidate_id: int, split: str, error: str = "", **kwargs) -> None:
    """runs.work.episode_settled: an episode of an experiment's candidate ended (or could not run,
    ``error``: its actor fails). Runs the actor's barrier; never raises (a transient error leaves the
    barrier to the reconciler)."""
    actor_id = Candidate.objects.filter(pk=candidate_id).values_list("actor_id", flat=True).first()
    if actor_id is None:
        return
    if error:
        fail_actor(actor_id, error, "an episode")
        return
    try:
        barrier(actor_id)
    except TRANSIENT as exc:
        log.warning("barrier of actor %s deferred to the reconciler: %s", actor_id, _error_text(exc))
    except Exception as exc:
        fail_actor(actor_id, exc, "the round barrier")


def barrier(actor_id: int) -> bool:
    """Move an actor on once the episodes it waits for all have results: an EVALUATING actor whose round
    is complete settles its candidates' skill uses, goes back to PROPOSING and queues actor_step; a
    HELDOUT actor whose held-out episodes are complete queues actor_step (which records them); an actor
    of a cancelled run queues actor_step (which cancels it). Under the actor's row lock, so of the
    round's last episodes to settle at once exactly one moves it. True when it queued a step."""
    with transaction.atomic():
        actor = _lock_actor(actor_id, "run", "task")
        if actor is None or actor.is_terminal:
            return False
        if actor.run.status == Run.Status.CANCELLED:
            send_after_commit(ACTOR_STEP, actor.pk)
            return True
        settings = settings_of(actor)
        if actor.status == Actor.Status.EVALUATING:
            round_candidates = list(actor.search_candidates().filter(round=actor.current_round))
            if not all(_complete(c, settings.debug_seeds, Episode.Split.DEBUG) for c in round_candidates):
                return False
            for candidate in round_candidates:
                _settle_skill_uses(candidate)
            actor.status = Actor.Status.PROPOSING  # claimed: later finishers of this round see it and stop here
            actor.save(update_fields=["status"])
            live.run_changed(actor.run_id, "actor", actor=actor.pk)
            send_after_commit(ACTOR_STEP, actor.pk)
            return True
        if actor.status == Actor.Status.HELDOUT:
            if actor.best and _complete(actor.best, settings.heldout_seeds, Episode.Split.HELDOUT):
                send_after_commit(ACTOR_STEP, actor.pk)
                return True
        return False


def _settle_skill_uses(candidate: Candidate) -> None:
    """The candidate's debug evaluation is complete: settle the outcome of the library skills it applied
    (idempotent: only pending uses are settled)."""
    candidate.refresh_from_db(fields=["success_rate"])
    baseline = candidate.parent.success_rate if candidate.parent_id else None
    record_skill_outcome(candidate, baseline_success_rate=baseline)


# -- the reconciler's part ------------------------------------------------------------------------------
def reconcile_experiments() -> dict[str, int]:
    """Re-send the step each active experiment's actors wait for when nothing is in flight and no live
    process owns it (registered with runs.reconcile; see its docstring for "in flight"):

    - a QUEUED run (after a grace of the owner timeout, its launcher's message may be on its way), or a
      RUNNING run whose actors all ended: coordinate;
    - a QUEUED or PROPOSING actor with no live owner: actor_step;
    - an EVALUATING actor: its candidates' debug episodes with no result and no live owner, or, when
      none is left, the barrier (run here);
    - a HELDOUT actor: its best program's missing held-out episodes, or actor_step when all are done;
    - a cancelled run's actors not ended: cancelled;
    - an AWAITING actor (an ``mcp`` actor's round waits for its external client): nothing.

    An actor whose state cannot be read (say, its seeds are malformed) fails with the error."""
    counts: Counter = Counter()
    pending = outbox.Pending()
    now = timezone.now()
    grace = timedelta(seconds=heartbeat.owner_timeout())
    stranded = (
        Actor.objects.filter(run__status=Run.Status.CANCELLED)
        .exclude(status__in=Actor.TERMINAL)
        .values_list("run_id", flat=True)
        .distinct()
    )
    for run_id in list(stranded):
        with transaction.atomic():
            run = Run.objects.select_for_update().get(pk=run_id)
            counts["actors_cancelled"] += run.actors.exclude(status__in=Actor.TERMINAL).count()
            _cancel_actors(run)
    for run in Run.objects.exclude(kind=Run.Kind.PROGRAM).filter(status__in=work.ACTIVE).order_by("id"):
        coordinator_queue = queue("coordinator")
        if run.status == Run.Status.QUEUED:
            if run.created_at < now - grace:
                counts["coordinate_sent"] += pending.send(COORDINATE_RUN, [run.pk], coordinator_queue)
            continue
        actors = list(run.actors.select_related("task", "best"))
        if all(a.is_terminal for a in actors):
            counts["coordinate_sent"] += pending.send(COORDINATE_RUN, [run.pk], coordinator_queue)
            continue
        for actor in actors:
            if actor.is_terminal or actor_owned(actor):
                continue
            try:
                _reconcile_actor(actor, pending, counts)
            except TRANSIENT:
                raise
            except Exception as exc:
                counts["actors_failed"] += fail_actor(actor.pk, exc, "the reconciler")
    return {k: v for k, v in counts.items() if v}


def _reconcile_actor(actor: Actor, pending: outbox.Pending, counts: Counter) -> None:
    if actor.worker:  # its owner died mid-step
        Actor.objects.filter(pk=actor.pk, worker=actor.worker).update(worker="")
    if actor.status == Actor.Status.AWAITING:
        return  # owned by its MCP client, outside the workers: waiting is its normal state
    if actor.status in (Actor.Status.QUEUED, Actor.Status.PROPOSING):
        counts["actor_steps_sent"] += pending.send(ACTOR_STEP, [actor.pk], queue("actors"))
        return
    settings = settings_of(actor)
    if actor.status == Actor.Status.EVALUATING:
        candidates = list(actor.search_candidates().values_list("pk", flat=True))
        missing, running = work.unfinished(candidates, Episode.Split.DEBUG, settings.debug_seeds)
    elif actor.status == Actor.Status.HELDOUT and actor.best_id:
        missing, running = work.unfinished([actor.best_id], Episode.Split.HELDOUT, settings.heldout_seeds)
    else:
        counts["actor_steps_sent"] += pending.send(ACTOR_STEP, [actor.pk], queue("actors"))
        return
    unowned = [(e.candidate_id, e.split, e.seed) for e in running if not work.owned(e)]
    for cid, split, seed in missing + unowned:
        counts["episodes_sent"] += pending.send(RUN_EPISODE, [cid, split, seed], queue("episodes"))
    if missing or running:
        return
    if actor.status == Actor.Status.EVALUATING:
        if not pending.has(ACTOR_STEP, [actor.pk]):
            counts["barriers"] += barrier(actor.pk)
    else:
        counts["actor_steps_sent"] += pending.send(ACTOR_STEP, [actor.pk], queue("actors"))
