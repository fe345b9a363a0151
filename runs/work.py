"""Episodes as units of durable work: claim one by a conditional write, run it, settle it.

One Celery task per episode (``aspire.run_episode``, args ``(candidate_id, split, seed)``) runs
:func:`run_episode`. Whatever delivers it (the launch, an experiment's round, the reconciler, a
redelivery after a worker died, a duplicate), the database decides what happens:

- :func:`claim_episode` creates the Episode row RUNNING with ``worker`` = this process, or takes over
  one whose owner is no longer alive (``attempt`` + 1; the dead attempt's calls, keyframes and media are
  deleted). An episode that ended, or that a live owner holds, is left alone: the task returns. The
  unique constraint (candidate, split, seed) is the last guard against a second row.
- While it runs, the heartbeat thread (runs.heartbeat) refreshes the row's ``heartbeat_at``; the sink
  writes only while the row is still this attempt's and RUNNING, so a cancelled episode or one retaken
  from an owner wrongly thought dead is never overwritten, and the program is stopped at its next call.
- :func:`settle` runs after each episode: a program run whose last episode ended becomes FINISHED
  (under the run's row lock, once), and :data:`episode_settled` tells upper layers (the experiments'
  round barrier connects to it) that an episode of a candidate ended.

Nothing here imports the apps above runs.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from django.conf import settings as django_settings
from django.db import IntegrityError, transaction
from django.dispatch import Signal
from django.utils import timezone

from worker.engine import EngineSettings, run_episodes
from worker.sim import catalog

from . import heartbeat, live, outbox, storage
from .models import Candidate, Episode, Run

log = logging.getLogger(__name__)

RUN_EPISODE = "aspire.run_episode"  # runs.tasks.run_episode_task
#: Seeds are 32-bit: the simulators seed numpy's RandomState with them.
MAX_SEED = 2**32 - 1
#: The keys of a run's settings that are EngineSettings.
ENGINE_KEYS = (
    "wall_seconds",
    "memory_mb",
    "trace",
    "keyframes",
    "perception_mode",
    "depth_noise",
    "step_budget",
    "unknown_space",
    "api_profile",
    "recording",
)
ACTIVE = (Run.Status.QUEUED, Run.Status.RUNNING)

#: Sent after every episode this module ran or could not run, once its transaction committed, with
#: ``run_id``, ``candidate_id``, ``split``, ``seed``, ``episode_id`` (None when no row was made) and
#: ``error`` ("" or "Type: message" when the episode could not be run at all: a bad seed, an unknown
#: task). Receivers must not raise (they are called with send_robust; an error is logged).
episode_settled = Signal()


@dataclass(frozen=True)
class Claim:
    """This process's hold on one attempt of an episode."""

    episode_id: int
    attempt: int
    worker: str
    run_id: int
    candidate_id: int
    created: bool


def episodes_queue() -> str:
    """The queue of episode tasks: ``ASPIRE["QUEUES"]["episodes"]`` or the default queue."""
    return django_settings.ASPIRE.get("QUEUES", {}).get("episodes") or django_settings.CELERY_TASK_DEFAULT_QUEUE


def send_episode(candidate_id: int, split: str, seed: int) -> None:
    """Queue one episode through the outbox (in the caller's transaction)."""
    outbox.send(RUN_EPISODE, [int(candidate_id), str(split), int(seed)], queue=episodes_queue())


def check_seed(seed) -> int:
    """``seed`` as an int in 0 .. 2**32 - 1; raises ValueError otherwise."""
    if isinstance(seed, bool) or not isinstance(seed, int | str):
        raise ValueError(f"seed {seed!r} is not an integer")
    value = int(seed)
    if not 0 <= value <= MAX_SEED:
        raise ValueError(f"seed {value} is outside 0..{MAX_SEED}")
    return value


def engine_settings_of(run: Run) -> EngineSettings:
    """The EngineSettings a run's episodes use (its stored settings)."""
    return EngineSettings(**{k: v for k, v in run.settings.items() if k in ENGINE_KEYS})


def media_dir(run_id: int, episode_id: int) -> str:
    """The media storage's folder of an episode's files, all attempts (runs.sink.DjangoSink.media_prefix)."""
    return f"runs/{run_id}/episodes/{episode_id}"


def delete_media(prefix: str) -> None:
    """Delete the files under ``prefix`` from the media storage; an error is logged, not raised (the
    files of a dead attempt are garbage, and the new attempt must run anyway)."""
    try:
        storage.media_storage().delete_tree(prefix)
    except Exception:
        log.exception("could not delete the media under %s", prefix)


# -- claiming --------------------------------------------------------------------------------------------
def claim_episode(candidate: Candidate, split: str, seed: int) -> Claim | None:
    """Take the episode (candidate, split, seed) for this process, or None when it is not to be run
    here: its run ended (cancelled work never starts), it ended, or a live owner holds it (another
    thread of this process included). The claimed row is held (runs.heartbeat.acquire) from before the
    claim commits, so the heartbeat keeps it and no other thread of this process takes it; whoever got
    the claim lets go of it with :func:`let_go` (done) or :func:`release` (given up)."""
    me = heartbeat.worker_name()
    now = timezone.now()
    held: list[int] = []  # the row this call acquired, to drop if the claim does not commit
    try:
        claim, retaken = _claim(candidate, split, seed, me, now, held)
    except BaseException:
        for pk in held:
            heartbeat.drop("episode", pk)
        raise
    if claim is None:
        for pk in held:
            heartbeat.drop("episode", pk)
    if retaken is not None:
        delete_media(retaken)
    return claim


def _claim(candidate: Candidate, split: str, seed: int, me: str, now, held: list[int]):
    with transaction.atomic():
        run = Run.objects.select_for_update().filter(pk=candidate.run_id).first()
        if run is None or run.status not in ACTIVE:
            return None, None
        episode = Episode.objects.select_for_update().filter(candidate=candidate, split=split, seed=seed).first()
        retaken = None
        if episode is None:
            try:
                with transaction.atomic():
                    episode = Episode.objects.create(
                        candidate=candidate,
                        run_id=candidate.run_id,
                        split=split,
                        seed=seed,
                        status=Episode.RUNNING,
                        worker=me,
                        heartbeat_at=now,
                        attempt=1,
                        program_hash=candidate.program_hash,
                    )
            except IntegrityError:  # another worker created it a moment ago: it is theirs
                return None, None
            if not heartbeat.acquire("episode", episode.pk, f"episode {episode.pk}"):
                raise RuntimeError(f"episode {episode.pk} was held before it existed")
            held.append(episode.pk)
            claim = Claim(episode.pk, 1, me, run.pk, candidate.pk, True)
        else:
            if episode.status != Episode.RUNNING or owned(episode):
                return None, None
            if not heartbeat.acquire("episode", episode.pk, f"episode {episode.pk}"):
                return None, None  # another thread of this process is taking it right now
            held.append(episode.pk)
            attempt = episode.attempt + 1
            taken = Episode.objects.filter(
                pk=episode.pk, status=Episode.RUNNING, worker=episode.worker, attempt=episode.attempt
            ).update(
                worker=me,
                heartbeat_at=now,
                attempt=attempt,
                success=None,
                reward=0.0,
                error="",
                error_line=0,
                stdout="",
                stderr="",
                n_calls=0,
                duration_s=0.0,
                sim_time=0.0,
                started_at=now,
                finished_at=None,
                program_hash=candidate.program_hash,
            )
            if not taken:
                return None, None
            # The dead attempt's trace goes; its images too, once this commits.
            episode.calls.all().delete()
            episode.keyframes.all().delete()
            retaken = media_dir(run.pk, episode.pk)
            log.info("episode %s (seed %s) retaken from %s, attempt %s", episode.pk, seed, episode.worker, attempt)
            claim = Claim(episode.pk, attempt, me, run.pk, candidate.pk, False)
        heartbeat.touch()
        if run.status == Run.Status.QUEUED:
            Run.objects.filter(pk=run.pk).update(status=Run.Status.RUNNING, started_at=run.started_at or now)
            live.run_changed(run.pk, "status", status=Run.Status.RUNNING)
    return claim, retaken


def owned(episode: Episode) -> bool:
    """True when a RUNNING episode has a live owner (this process counts only while it runs it)."""
    if episode.worker and episode.worker == heartbeat.worker_name():
        return heartbeat.holds("episode", episode.pk)
    return heartbeat.owner_alive(episode.worker, episode.heartbeat_at)


def let_go(claim: Claim) -> None:
    """This process is done with the claimed episode (it ended): the heartbeat stops holding it."""
    heartbeat.drop("episode", claim.episode_id)


def release(claim: Claim) -> None:
    """Give an unfinished claimed episode up (this process could not finish it): no owner, so the
    reconciler re-sends it at once instead of waiting for the owner timeout."""
    heartbeat.drop("episode", claim.episode_id)
    Episode.objects.filter(
        pk=claim.episode_id, status=Episode.RUNNING, worker=claim.worker, attempt=claim.attempt
    ).update(worker="", heartbeat_at=None)


def still_mine(claim: Claim) -> bool:
    """True while the claimed attempt is RUNNING and this process's (not cancelled, not retaken)."""
    return Episode.objects.filter(
        pk=claim.episode_id, status=Episode.RUNNING, worker=claim.worker, attempt=claim.attempt
    ).exists()


# -- running ---------------------------------------------------------------------------------------------
def run_episode(candidate_id: int, split: str, seed) -> str | None:
    """Run one episode of a candidate, if it is this process's to run (see the module docstring).

    Returns the episode's final status, or None when nothing was run here. An input that can never run
    (a seed outside 0..2**32 - 1, an unknown split or task, bad engine settings) fails the program run,
    or is reported through :data:`episode_settled` with ``error`` for an experiment, instead of raising.
    Database errors propagate (the episode is released for the reconciler)."""
    from .sink import DjangoSink

    candidate = Candidate.objects.select_related("run__task", "actor__task").filter(pk=candidate_id).first()
    if candidate is None:
        log.info("run_episode: candidate %s no longer exists", candidate_id)
        return None
    run = candidate.run
    if run.status not in ACTIVE:
        return None
    try:
        seed = check_seed(seed)
        if split not in Episode.Split.values:
            raise ValueError(f"unknown split {split!r}")
        task = candidate.actor.task if candidate.actor_id else run.task
        if task is None:
            raise ValueError(f"run {run.pk} has no task")
        spec = catalog.get_task(task.key)
        engine = engine_settings_of(run)
    except Exception as exc:
        work_failed(candidate, split, seed, exc)
        return None
    heartbeat.ensure_beating()
    claim = claim_episode(candidate, split, seed)
    if claim is None:
        return None
    try:
        sink = DjangoSink(candidate, split, claim=claim)
        results = run_episodes(
            spec,
            candidate.program,
            [seed],
            sink,
            engine,
            storage.media_storage(),
            should_stop=lambda: not still_mine(claim),
        )
    except BaseException:
        release(claim)
        raise
    let_go(claim)
    settle(candidate, split, seed, claim.episode_id)
    return results[0].status if results else None


def work_failed(candidate: Candidate, split: str, seed, exc: BaseException) -> None:
    """An episode that can never run: a program run FAILS with the reason; an experiment's layer hears
    of it through :data:`episode_settled` (with ``error``)."""
    error = f"{type(exc).__name__}: {exc}"[:2000]
    log.warning("episode of candidate %s (%s, seed %r) cannot run: %s", candidate.pk, split, seed, error)
    if candidate.run.kind == Run.Kind.PROGRAM:
        fail_run(candidate.run_id, error)
    _notify(candidate, split, seed, None, error)


def fail_run(run_id: int, error: str) -> bool:
    """Mark an active run FAILED with ``error``; True when this call did."""
    with transaction.atomic():
        done = Run.objects.filter(pk=run_id, status__in=ACTIVE).update(
            status=Run.Status.FAILED, error=error[:2000], finished_at=timezone.now(), worker=""
        )
        if done:
            live.run_changed(run_id, "status", status=Run.Status.FAILED)
    return bool(done)


def settle(candidate: Candidate, split: str, seed: int, episode_id: int | None) -> None:
    """After an episode ended: finish its program run when it was the last, tell the layers above."""
    if candidate.run.kind == Run.Kind.PROGRAM:
        settle_program_run(candidate.run_id)
    _notify(candidate, split, seed, episode_id, "")


def _notify(candidate: Candidate, split: str, seed, episode_id, error: str) -> None:
    for receiver, response in episode_settled.send_robust(
        sender=Episode,
        run_id=candidate.run_id,
        candidate_id=candidate.pk,
        split=split,
        seed=seed,
        episode_id=episode_id,
        error=error,
    ):
        if isinstance(response, Exception):
            log.error("episode_settled receiver %s failed", receiver, exc_info=response)


# -- program runs ----------------------------------------------------------------------------------------
def expected_work(run: Run) -> tuple[str, list[int], list[int]]:
    """A program run's work: (split, candidate ids, distinct seeds in order)."""
    split = run.settings.get("split", Episode.Split.CUSTOM)
    seeds = list(dict.fromkeys(int(s) for s in run.seeds))
    return split, list(run.candidates.order_by("round", "index").values_list("pk", flat=True)), seeds


def unfinished(candidate_ids, split: str, seeds) -> tuple[list[tuple[int, str, int]], list[Episode]]:
    """The episodes of ``candidate_ids`` on ``seeds`` of ``split`` that hold no result yet:
    ``(missing, running)`` where ``missing`` lists (candidate_id, split, seed) with no row (or a
    CANCELLED one) and ``running`` the RUNNING rows (owned or not: see :func:`owned`)."""
    candidate_ids = list(candidate_ids)
    seeds = list(dict.fromkeys(int(s) for s in seeds))
    storable = [s for s in seeds if 0 <= s <= MAX_SEED]  # others are missing for good: run_episode refuses them
    rows = {
        (e.candidate_id, e.seed): e
        for e in Episode.objects.filter(candidate_id__in=candidate_ids, split=split, seed__in=storable)
    }
    missing, running = [], []
    for cid in candidate_ids:
        for seed in seeds:
            episode = rows.get((cid, seed))
            if episode is None or episode.status == Episode.CANCELLED:
                missing.append((cid, split, seed))
            elif episode.status == Episode.RUNNING:
                running.append(episode)
    return missing, running


def missing_work(run: Run) -> tuple[list[tuple[int, str, int]], list[Episode]]:
    """A program run's episodes that hold no result (:func:`unfinished` over its candidates and seeds)."""
    split, candidates, seeds = expected_work(run)
    return unfinished(candidates, split, seeds)


def settle_program_run(run_id: int) -> bool:
    """Finish a program run whose every (candidate, seed) has a result: FINISHED once (the run's row
    is locked, the update conditional), with its success counts recomputed. True when this call did."""
    with transaction.atomic():
        run = Run.objects.select_for_update().filter(pk=run_id).first()
        if run is None or run.kind != Run.Kind.PROGRAM or run.status not in ACTIVE:
            return False
        missing, running = missing_work(run)
        if missing or running:
            return False
        first = run.candidates.first()
        if first is not None:
            first.refresh_stats()
        done = Run.objects.filter(pk=run_id, status__in=ACTIVE).update(
            status=Run.Status.FINISHED, finished_at=timezone.now(), worker=""
        )
        if done:
            live.run_changed(run_id, "status", status=Run.Status.FINISHED)
    return bool(done)


def start_program_run(run: Run) -> int:
    """Fan a program run out: one run_episode message per (candidate, seed), through the outbox, in
    the caller's transaction. Returns how many were queued."""
    split, candidates, seeds = expected_work(run)
    with transaction.atomic():
        for cid in candidates:
            for seed in seeds:
                send_episode(cid, split, seed)
    return len(candidates) * len(seeds)


def execute_program_run(run_id: int, poll_s: float = 1.0) -> Run:
    """Run every episode of a program run in this process (``manage.py run_program``, the skill
    admission), as the owner of the run. Episodes other workers hold (the run was also fanned out) are
    waited for, and retaken if their owner dies; a cancelled run stops at the next episode."""
    heartbeat.ensure_beating()
    me = heartbeat.worker_name()
    with transaction.atomic():
        run = Run.objects.select_for_update(of=("self",)).select_related("task").get(pk=run_id)
        if run.status not in ACTIVE:
            return run
        heartbeat.touch()
        now = timezone.now()
        Run.objects.filter(pk=run_id).update(
            status=Run.Status.RUNNING, started_at=run.started_at or now, worker=me, heartbeat_at=now
        )
        live.run_changed(run_id, "status", status=Run.Status.RUNNING)
    try:
        with heartbeat.hold("run", run_id, f"run {run_id}"):
            catalog.get_task(run.task.key)  # an unknown task or bad settings fail the run here
            engine_settings_of(run)
            while True:
                run.refresh_from_db(fields=["status"])
                if run.status not in ACTIVE:
                    break
                missing, running = missing_work(run)
                if not missing and not running:
                    break
                todo = missing + [(e.candidate_id, e.split, e.seed) for e in running if not owned(e)]
                ran = 0
                for cid, split, seed in todo:
                    if not Run.objects.filter(pk=run_id, status__in=ACTIVE).exists():
                        break
                    ran += run_episode(cid, split, seed) is not None
                if not ran:
                    time.sleep(poll_s)  # other workers hold the rest: wait for them (or for their death)
    except Exception as exc:
        log.exception("run %s failed", run_id)
        fail_run(run_id, f"{type(exc).__name__}: {exc}")
    finally:
        Run.objects.filter(pk=run_id, worker=me).update(worker="")
    settle_program_run(run_id)
    run.refresh_from_db()
    return run
