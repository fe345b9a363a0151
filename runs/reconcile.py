"""The reconciler: make the database's active work match what is actually being worked on.

Run at worker start and periodically (every worker, ``ASPIRE["RECONCILE_SECONDS"]``; ``up`` every 15 s;
``manage.py reconcile``; the ``aspire.reconcile`` task). One pass:

1. relays unsent outbox rows (runs.outbox.relay);
2. for every run: an episode RUNNING without a live owner (runs.heartbeat.owner_alive) is reset — its
   partial calls and keyframes deleted, no owner — so it is re-run (the retaking claim counts the
   attempt); a RUNNING episode of a run that ended is CANCELLED;
3. for every active program run not owned by a live in-process executor: each (candidate, seed)
   without a result and without a live owner is sent again (run_episode) unless that work is in flight
   (runs.outbox.Pending: its message unsent or just sent, waiting in the broker's queue or reserved by
   a worker that has not started it); a run whose every episode has a result is finished;
4. the functions upper layers registered (:func:`register`; experiments and skills do so in their
   AppConfig.ready) run their own part;
5. worker heartbeat rows dead for a day and outbox rows sent a day ago are deleted.

Idempotent: a second pass right after the first sends nothing (what the first sent is in flight). Safe
to run concurrently: resets and finishes are conditional updates under row locks, and a lock in Redis
keeps two passes from overlapping (when Redis is away, passes run unlocked; a message sent twice is
harmless, every task being idempotent).
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from datetime import timedelta
from typing import Callable

from django.db import transaction
from django.utils import timezone

from aspire_web.logfilters import one_line

from . import heartbeat, live, outbox, work
from .models import Episode, Run, WorkerHeartbeat

log = logging.getLogger(__name__)

RECONCILE = "aspire.reconcile"  # runs.tasks.reconcile_task
LOCK_KEY = "aspire:reconcile:lock"
LOCK_SECONDS = 120
#: Dead workers' heartbeat rows are kept this long (the pool page can say who died recently).
KEEP_DEAD_WORKERS = timedelta(days=1)

_registered: list[Callable[[], dict]] = []


def register(fn: Callable[[], dict]) -> None:
    """Add an upper layer's reconciler: ``fn() -> dict[str, int]`` of counts, run by every pass."""
    if fn not in _registered:
        _registered.append(fn)


def reconcile() -> dict[str, int]:
    """One pass (see the module docstring); returns counts of what it did (zeros left out), or
    ``{"skipped": 1}`` when another pass holds the lock."""
    lock = _acquire()
    if lock is False:
        return {"skipped": 1}
    try:
        counts: Counter = Counter()
        counts["relayed"] += outbox.relay()
        counts.update(reset_orphaned_episodes())
        counts.update(reconcile_program_runs())
        for fn in list(_registered):
            try:
                counts.update(fn() or {})
            except Exception as exc:
                log.error("reconciler %s failed: %s", getattr(fn, "__qualname__", fn), one_line(exc), exc_info=True)
                counts["errors"] += 1
        counts["workers_pruned"] += prune_workers()
        counts["outbox_pruned"] += outbox.prune()
        return {k: v for k, v in counts.items() if v}
    finally:
        _release(lock)


def reset_episode(episode: Episode) -> bool:
    """Reset a RUNNING episode whose owner died: its partial trace deleted, no owner (so any worker
    retakes it, counting the attempt). Conditional on the row being unchanged; True when reset."""
    with transaction.atomic():
        Run.objects.select_for_update().filter(pk=episode.run_id).first()  # the run's lock first, as claims
        done = Episode.objects.filter(
            pk=episode.pk, status=Episode.RUNNING, worker=episode.worker, attempt=episode.attempt
        ).update(worker="", heartbeat_at=None, n_calls=0)
        if done:
            episode.calls.all().delete()
            episode.keyframes.all().delete()
            seq = live.bump_run_seq(episode.run_id)
            # Open trace pages drop the dead attempt's calls now, not when the episode is retaken.
            live.publish_on_commit(
                episode.run_id,
                lambda: {
                    "type": "live.episode",
                    "event": "reset",
                    "episode": episode.pk,
                    "candidate": episode.candidate_id,
                    "run_seq": seq,
                    "n_calls": 0,
                },
            )
    return bool(done)


def reset_orphaned_episodes() -> dict[str, int]:
    """Step 2: reset RUNNING episodes without a live owner; cancel those of runs that ended."""
    counts: Counter = Counter()
    now = timezone.now()
    ended = Episode.objects.filter(status=Episode.RUNNING).exclude(run__status__in=work.ACTIVE)
    for episode in ended:
        if not work.owned(episode):
            counts["episodes_cancelled"] += Episode.objects.filter(
                pk=episode.pk, status=Episode.RUNNING, worker=episode.worker, attempt=episode.attempt
            ).update(status=Episode.CANCELLED, finished_at=now, error="its run ended")
    for episode in Episode.objects.filter(status=Episode.RUNNING, run__status__in=work.ACTIVE).exclude(worker=""):
        if not work.owned(episode) and reset_episode(episode):
            log.info("episode %s (seed %s) lost its owner %s; reset", episode.pk, episode.seed, episode.worker)
            counts["episodes_reset"] += 1
    return counts


def run_owned(run: Run) -> bool:
    """True when a live process executes the run in-process (runs.work.execute_program_run)."""
    if run.worker and run.worker == heartbeat.worker_name():
        return heartbeat.holds("run", run.pk)
    return heartbeat.owner_alive(run.worker, run.heartbeat_at)


def reconcile_program_runs() -> dict[str, int]:
    """Step 3: re-send the missing episodes of active program runs; finish those that are done."""
    counts: Counter = Counter()
    pending = None
    grace = timedelta(seconds=heartbeat.owner_timeout())
    now = timezone.now()
    for run in Run.objects.filter(kind=Run.Kind.PROGRAM, status__in=work.ACTIVE).order_by("id"):
        if run_owned(run):
            continue
        if run.worker:
            Run.objects.filter(pk=run.pk, worker=run.worker).update(worker="")  # its executor died
        if run.status == Run.Status.QUEUED and run.created_at > now - grace and not run.worker:
            continue  # just made: its launcher queues it (a launch that died is picked up next pass)
        missing, running = work.missing_work(run)
        if not missing and not running:
            counts["runs_finished"] += work.settle_program_run(run.pk)
            continue
        if pending is None:
            pending = outbox.Pending()
        unowned = [(e.candidate_id, e.split, e.seed) for e in running if not work.owned(e)]
        for cid, split, seed in missing + unowned:
            counts["episodes_sent"] += pending.send(work.RUN_EPISODE, [cid, split, seed], work.episodes_queue())
    return counts


def prune_workers() -> int:
    """Delete heartbeat rows of workers silent for a day."""
    deleted, _ = WorkerHeartbeat.objects.filter(beat_at__lt=timezone.now() - KEEP_DEAD_WORKERS).delete()
    return deleted


# -- one pass at a time ----------------------------------------------------------------------------------
def _acquire():
    """A Redis lock token; None when Redis cannot be asked (run unlocked); False when another pass has it."""
    client = outbox._redis()
    if client is None:
        return None
    token = f"{heartbeat.worker_name()}:{threading.get_ident()}:{timezone.now().timestamp()}"
    try:
        if client.set(LOCK_KEY, token, nx=True, ex=LOCK_SECONDS):
            return (client, token)
        client.close()
        return False
    except Exception:
        client.close()
        return None


_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"


def _release(lock) -> None:
    if not lock:
        return
    client, token = lock
    try:
        client.eval(_RELEASE, 1, LOCK_KEY, token)
    except Exception:
        pass
    finally:
        client.close()


# -- periodic passes in a process ------------------------------------------------------------------------
_loop_stop: threading.Event | None = None


def start_reconcile_loop(interval_s: float | None = None) -> None:
    """Reconcile now and then every ``interval_s`` seconds (``ASPIRE["RECONCILE_SECONDS"]``, 30) in a
    daemon thread of this process (a Celery worker's main process); idempotent."""
    global _loop_stop
    from django.conf import settings
    from django.db import connections

    if _loop_stop is not None and not _loop_stop.is_set():
        return
    interval = float(interval_s or settings.ASPIRE.get("RECONCILE_SECONDS", 30))
    stop = _loop_stop = threading.Event()

    def loop():
        while True:
            try:
                counts = reconcile()
                if any(k not in ("skipped", "relayed") for k in counts):
                    log.info("reconciled: %s", ", ".join(f"{k}={v}" for k, v in sorted(counts.items())))
            except Exception as exc:
                log.warning("reconcile pass failed: %s", one_line(exc))
            finally:
                # No connection stays open between passes: a worker child forked meanwhile (a replacement
                # for one that died) inherits none of this thread's sockets.
                connections.close_all()
            if stop.wait(interval):
                return

    threading.Thread(target=loop, name="aspire-reconcile", daemon=True).start()


def stop_reconcile_loop() -> None:
    if _loop_stop is not None:
        _loop_stop.set()
