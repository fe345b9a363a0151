"""Durable work: episode claims, the outbox, the reconciler and cancel, on the real database and Redis.

Owners are simulated by name: a WorkerHeartbeat row beaten now is a live worker on another machine; a
heartbeat older than the owner timeout, or a process of this host that no longer exists, is a dead one.
"""

import json
import logging
import os
import subprocess
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.utils import timezone

from aspire_web import localredis
from aspire_web.logfilters import Throttle
from runs import heartbeat, outbox, services, work
from runs.models import Episode, Outbox, PrimitiveCall, Run, WorkerHeartbeat
from runs.reconcile import reconcile
from runs.sink import DjangoSink, EpisodeTakenAway
from worker.events import EpisodeStart

from .factories import CallRecordFactory, EpisodeResultFactory, RunFactory

ELSEWHERE = "aspire@another-machine:4242"


def broker_client():
    return redis.Redis.from_url(settings.CELERY_BROKER_URL)


@pytest.fixture
def private_broker(settings):
    """A private Redis the Celery app and the outbox use for this test, that the test can kill and
    restart (``.kill()``, ``.restart()``, ``.client()``)."""
    from aspire_web.celery import app

    workdir = Path(tempfile.mkdtemp(prefix="aspire-test-broker-"))
    proc, url = localredis.start(workdir, persist=False)
    port = int(url.rsplit(":", 1)[1].split("/")[0])

    class Broker:
        def kill(self):
            self.proc.kill()
            self.proc.wait()

        def restart(self):
            self.proc, _ = localredis.start(workdir, port=port, persist=False)
            outbox.forget_broker()

        def client(self):
            return redis.Redis.from_url(url)

    b = Broker()
    b.proc, b.url = proc, url
    original = app.conf.broker_url
    settings.CELERY_BROKER_URL = url
    app.conf.broker_url, app._pool, app.amqp._producer_pool = url, None, None
    outbox.forget_broker()
    yield b
    app.conf.broker_url, app._pool, app.amqp._producer_pool = original, None, None
    if b.proc.poll() is None:
        b.kill()
    outbox.forget_broker()


def live_elsewhere(name=ELSEWHERE):
    now = timezone.now()
    WorkerHeartbeat.objects.update_or_create(
        name=name, defaults={"host": "another-machine", "pid": 4242, "started_at": now, "beat_at": now}
    )


def stale() -> timezone.datetime:
    return timezone.now() - timedelta(seconds=heartbeat.owner_timeout() * 2)


def give_to(episode_id: int, worker: str, beat_at) -> None:
    Episode.objects.filter(pk=episode_id).update(worker=worker, heartbeat_at=beat_at)


def partial_call(episode_id: int) -> None:
    PrimitiveCall.objects.create(
        episode_id=episode_id,
        seq=1,
        primitive="get_observation",
        status="OK",
        started_at=timezone.now(),
        duration_ms=1.0,
    )


def claimed_elsewhere(candidate, seed, split=Episode.Split.DEBUG) -> work.Claim:
    """A claim as another worker process makes it: the row is taken, this process does not hold it."""
    claim = work.claim_episode(candidate, split, seed)
    work.let_go(claim)
    return claim


@pytest.fixture(autouse=True)
def no_holds_left():
    """Claims a test makes and never finishes would stay held by this process for the next test."""
    yield
    heartbeat.drop_all()


def dead_local_worker() -> str:
    """The name a worker process of this host had, that has exited."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    return f"aspire@{heartbeat.worker_name().split('@', 1)[1].rsplit(':', 1)[0]}:{proc.pid}"


@pytest.fixture
def instant_engine(monkeypatch):
    """The engine replaced by one that records one get_observation call and succeeds at once; the claim,
    sink and settling around it are the real ones (runs.work)."""

    def run_episodes(spec, program, seeds, sink, settings=None, media_root=None, should_stop=None):
        results = []
        for seed in seeds:
            if should_stop is not None and should_stop():
                break
            handle = sink.episode_started(EpisodeStart(spec.key, seed, "hash"))
            sink.call_recorded(handle, CallRecordFactory(seq=1))
            result = EpisodeResultFactory(seed=seed, n_calls=1)
            sink.episode_finished(handle, result)
            results.append(result)
        return results

    monkeypatch.setattr(work, "run_episodes", run_episodes)


# -- claims ---------------------------------------------------------------------------------------------
@pytest.mark.django_db
@pytest.mark.parametrize(
    "engine", ["instant", pytest.param("mujoco", marks=pytest.mark.slow)], ids=["instant", "mujoco"]
)
def test_a_second_delivery_does_nothing_while_the_owner_lives_and_retakes_after_it_dies(engine, user, tasks, request):
    if engine == "instant":
        request.getfixturevalue("instant_engine")
    run = RunFactory(owner=user, seeds=[101])
    candidate = run.candidates.get()
    claim = claimed_elsewhere(candidate, 101)
    assert claim.attempt == 1 and claim.created and claim.worker == heartbeat.worker_name()
    assert Run.objects.get(pk=run.pk).status == Run.Status.RUNNING
    # That attempt belongs to a live worker on another machine, which has recorded a call.
    live_elsewhere()
    give_to(claim.episode_id, ELSEWHERE, timezone.now())
    partial_call(claim.episode_id)

    assert work.run_episode(candidate.pk, Episode.Split.DEBUG, 101) is None  # a duplicate message
    episode = Episode.objects.get()
    assert (episode.worker, episode.attempt, episode.calls.count()) == (ELSEWHERE, 1, 1)

    # The owner dies: its heartbeat goes stale, and the next delivery retakes and runs the episode.
    WorkerHeartbeat.objects.filter(name=ELSEWHERE).update(beat_at=stale())
    give_to(claim.episode_id, ELSEWHERE, stale())
    assert work.run_episode(candidate.pk, Episode.Split.DEBUG, 101) == "OK"
    episode = Episode.objects.get()
    assert episode.pk == claim.episode_id and episode.attempt == 2 and episode.status == "OK"
    assert episode.worker == heartbeat.worker_name()
    assert [c.seq for c in episode.calls.all()] == [1] and episode.calls.get().primitive == "get_observation"
    run.refresh_from_db()
    assert run.status == Run.Status.FINISHED and run.n_episodes == 1 and run.finished_at is not None
    # A delivery after the end does nothing either.
    assert work.run_episode(candidate.pk, Episode.Split.DEBUG, 101) is None
    assert Episode.objects.count() == 1


@pytest.mark.django_db
def test_an_episode_of_a_worker_process_that_exited_on_this_host_is_retaken_at_once(user, tasks):
    run = RunFactory(owner=user, seeds=[101])
    candidate = run.candidates.get()
    claim = claimed_elsewhere(candidate, 101)
    gone = dead_local_worker()
    give_to(claim.episode_id, gone, timezone.now())  # its heartbeat is fresh, but the process is gone
    assert not heartbeat.is_live(gone)
    again = work.claim_episode(candidate, Episode.Split.DEBUG, 101)
    assert again is not None and again.attempt == 2 and again.episode_id == claim.episode_id
    # While this process works on it, nobody retakes it, not even another thread of this process.
    assert work.claim_episode(candidate, Episode.Split.DEBUG, 101) is None
    assert Episode.objects.count() == 1


@pytest.mark.django_db
def test_bad_seeds_fail_the_program_run_instead_of_raising(user, tasks):
    run = RunFactory(owner=user, seeds=[101])
    candidate = run.candidates.get()
    assert work.run_episode(candidate.pk, Episode.Split.DEBUG, 2**63) is None
    run.refresh_from_db()
    assert run.status == Run.Status.FAILED and "outside 0..4294967295" in run.error
    assert not Episode.objects.exists()
    with pytest.raises(services.LaunchError, match="outside"):
        RunFactory(owner=user, seeds=[-1])
    assert RunFactory(owner=user, seeds=[1, 1, 2]).seeds == [1, 2]


# -- the reconciler -------------------------------------------------------------------------------------
@pytest.mark.django_db(transaction=True)
def test_the_reconciler_resends_stranded_work_resets_dead_episodes_and_is_idempotent(user, tasks, broker):
    run = RunFactory(owner=user, seeds=[101, 102, 103])
    Run.objects.filter(pk=run.pk).update(created_at=timezone.now() - timedelta(minutes=5))  # its launch was lost
    candidate = run.candidates.get()
    # Seed 101 finished; 102 was running on a worker that died mid-episode; 103 never started.
    done = work.claim_episode(candidate, Episode.Split.DEBUG, 101)
    sink = DjangoSink(candidate, Episode.Split.DEBUG, claim=done)
    sink.episode_finished(done.episode_id, EpisodeResultFactory(seed=101))
    dead = claimed_elsewhere(candidate, 102)
    give_to(dead.episode_id, ELSEWHERE, stale())
    partial_call(dead.episode_id)

    counts = reconcile()
    assert counts.get("episodes_reset") == 1 and counts.get("episodes_sent") == 2, counts
    reset = Episode.objects.get(pk=dead.episode_id)
    assert reset.status == Episode.RUNNING and reset.worker == "" and not reset.calls.exists()
    sent = sorted(Outbox.objects.filter(task_name=work.RUN_EPISODE).values_list("args", flat=True))
    assert sent == [[candidate.pk, "debug", 102], [candidate.pk, "debug", 103]]
    assert all(Outbox.objects.values_list("sent_at", flat=True)) and broker.llen("aspire") == 2

    again = reconcile()
    assert not again.get("episodes_sent") and not again.get("episodes_reset"), again
    assert Outbox.objects.count() == 2 and broker.llen("aspire") == 2

    # The broker loses its queue (a Redis restarted without its data): the work is sent again.
    broker.delete("aspire")
    Outbox.objects.update(sent_at=timezone.now() - timedelta(seconds=outbox.SEND_GRACE_S + 1))
    assert reconcile().get("episodes_sent") == 2 and broker.llen("aspire") == 2

    # A worker runs them (the first finds the reset row and retakes it as attempt 2); the run finishes.
    for seed in (102, 103):
        claim = work.claim_episode(candidate, Episode.Split.DEBUG, seed)
        DjangoSink(candidate, Episode.Split.DEBUG, claim=claim).episode_finished(
            claim.episode_id, EpisodeResultFactory(seed=seed, success=seed == 102)
        )
    assert Episode.objects.get(pk=dead.episode_id).attempt == 2
    # Its last episode settled without the worker's settle step (it died): the reconciler finishes it.
    assert reconcile().get("runs_finished") == 1
    run.refresh_from_db()
    assert run.status == Run.Status.FINISHED and run.n_episodes == 3 and run.n_success == 2
    assert not reconcile().get("runs_finished")


@pytest.mark.django_db(transaction=True)
def test_work_reserved_by_a_worker_that_died_before_starting_it_is_sent_again(user, tasks, broker, settings):
    """A worker killed while warming up holds a reserved message the broker gives back only after its
    visibility timeout (minutes): past RESERVED_GRACE_SECONDS unstarted, the reconciler sends it again."""
    run = RunFactory(owner=user, seeds=[101])
    Run.objects.filter(pk=run.pk).update(created_at=timezone.now() - timedelta(minutes=5))
    assert reconcile().get("episodes_sent") == 1
    # A worker reserves it (kombu's unacked hash: [message, exchange, routing key]) and dies.
    raw = broker.rpop("aspire")
    broker.hset("unacked", "dead-worker-tag", json.dumps([json.loads(raw), "", "aspire"]))
    Outbox.objects.update(sent_at=timezone.now() - timedelta(seconds=outbox.SEND_GRACE_S + 1))
    assert not reconcile().get("episodes_sent")  # reserved a moment ago: a worker may be warming up
    Outbox.objects.update(sent_at=timezone.now() - timedelta(seconds=settings.ASPIRE["RESERVED_GRACE_SECONDS"] + 1))
    assert reconcile().get("episodes_sent") == 1 and broker.llen("aspire") == 1
    assert not reconcile().get("episodes_sent")  # the new message is in flight
    # Work a worker started is the database's to judge, whatever the broker holds.
    Outbox.objects.update(
        sent_at=timezone.now() - timedelta(seconds=settings.ASPIRE["RESERVED_GRACE_SECONDS"] + 1),
        picked_at=timezone.now(),
    )
    broker.delete("aspire")
    claim = work.claim_episode(run.candidates.get(), Episode.Split.DEBUG, 101)
    assert claim is not None
    assert not reconcile().get("episodes_sent")


@pytest.mark.django_db(transaction=True)
def test_a_launch_with_the_broker_down_is_queued_durably_and_relayed_when_it_is_back(
    api, user, tasks, private_broker, caplog, monkeypatch
):
    monkeypatch.setattr(outbox, "_throttle", Throttle(30.0))  # earlier tests' warnings do not hide this one
    private_broker.kill()
    with caplog.at_level(logging.WARNING, logger="runs.outbox"):
        started = time.monotonic()
        response = api.post("/api/runs/", {"task": "robosuite:Lift", "seeds": "101-102"}, format="json")
        took = time.monotonic() - started
    assert response.status_code == 201, response.content
    assert took < 10
    run = Run.objects.get(pk=response.json()["id"])
    assert run.status == Run.Status.QUEUED
    rows = list(Outbox.objects.order_by("id"))
    assert [r.args[2] for r in rows] == [101, 102] and not any(r.sent_at for r in rows)
    warnings = [r for r in caplog.records if r.name == "runs.outbox"]
    assert len(warnings) == 1 and warnings[0].exc_info is None and "broker unreachable" in warnings[0].getMessage()

    # Nothing is lost while it is away: the reconciler keeps the rows and does not duplicate them.
    reconcile()
    assert Outbox.objects.count() == 2 and Outbox.objects.filter(sent_at__isnull=True).count() == 2

    private_broker.restart()
    assert outbox.relay() == 2
    client = private_broker.client()
    run_id = client.info("server")["run_id"]
    assert client.llen("aspire") == 2
    assert set(Outbox.objects.values_list("broker_id", flat=True)) == {run_id}
    assert outbox.relay() == 0 and not reconcile().get("episodes_sent")


# -- cancel ---------------------------------------------------------------------------------------------
@pytest.mark.django_db
def test_cancel_ends_running_episodes_at_once_and_a_finishing_worker_cannot_flip_them(user, tasks):
    run = RunFactory(owner=user, seeds=[101, 102])
    candidate = run.candidates.get()
    claim = work.claim_episode(candidate, Episode.Split.DEBUG, 101)
    sink = DjangoSink(candidate, Episode.Split.DEBUG, claim=claim)
    assert sink.episode_started(EpisodeStart("robosuite:Lift", 101, "h")) == claim.episode_id
    sink.call_recorded(claim.episode_id, CallRecordFactory(seq=1))

    services.cancel_run(run, by=user)
    run.refresh_from_db()
    episode = Episode.objects.get()
    assert run.status == Run.Status.CANCELLED and episode.status == Episode.CANCELLED
    # The worker still running it is stopped at its next call and cannot store a result.
    with pytest.raises(EpisodeTakenAway):
        sink.call_recorded(claim.episode_id, CallRecordFactory(seq=2))
    sink.episode_finished(claim.episode_id, EpisodeResultFactory(seed=101))
    episode.refresh_from_db()
    assert episode.status == Episode.CANCELLED and episode.success is None and episode.calls.count() == 1
    run.refresh_from_db()
    assert run.n_episodes == 0 and run.status == Run.Status.CANCELLED
    # Queued work never starts.
    assert work.run_episode(candidate.pk, Episode.Split.DEBUG, 102) is None
    assert Episode.objects.count() == 1


@pytest.mark.django_db
def test_pool_health_lists_live_workers(user):
    live_elsewhere()
    WorkerHeartbeat.objects.filter(name=ELSEWHERE).update(queues=["aspire"], busy_with="episode 7")
    WorkerHeartbeat.objects.create(
        name="aspire@gone:1", host="gone", pid=1, started_at=stale(), beat_at=stale(), queues=["aspire"]
    )
    health = heartbeat.pool_health()
    assert health["live"] == 1 and [w["name"] for w in health["workers"]] == [ELSEWHERE]
    assert health["workers"][0]["busy_with"] == "episode 7" and health["workers"][0]["beat_age_s"] < 5
    assert isinstance(health["queued_messages"], int)
    assert heartbeat.is_live(ELSEWHERE) and not heartbeat.is_live("aspire@gone:1")


@pytest.mark.django_db
def test_the_heartbeat_refreshes_only_the_rows_this_process_works_on(user, tasks):
    run = RunFactory(owner=user, seeds=[101, 102])
    candidate = run.candidates.get()
    held = work.claim_episode(candidate, Episode.Split.DEBUG, 101)
    dropped = claimed_elsewhere(candidate, 102)  # a step of this process raised and let it go
    Episode.objects.update(heartbeat_at=stale())
    heartbeat.beat()
    fresh = dict(Episode.objects.values_list("pk", "heartbeat_at"))
    assert fresh[held.episode_id] > stale() + timedelta(seconds=heartbeat.owner_timeout())
    assert fresh[dropped.episode_id] < timezone.now() - timedelta(seconds=heartbeat.owner_timeout())
    assert not work.owned(Episode.objects.get(pk=dropped.episode_id))  # dropped by a live process: retaken


@pytest.mark.django_db(transaction=True)
def test_a_worker_beats_while_it_runs_and_leaves_the_pool_when_it_stops(broker, monkeypatch):
    from testing.celery_worker import celery_worker_thread
    from testing.waiting import wait_for

    me = heartbeat.worker_name()  # the test worker runs in a thread of this process
    # The embedded worker sets the root logger to ERROR; later tests read warnings.
    monkeypatch.setattr(logging.root, "level", logging.root.level)
    with celery_worker_thread():
        wait_for(lambda: WorkerHeartbeat.objects.filter(name=me).exists(), timeout=30)
        row = WorkerHeartbeat.objects.get(name=me)
        assert row.queues == ["aspire"] and row.pid == os.getpid()
        assert heartbeat.pool_health()["live"] == 1 and heartbeat.is_live(me)
    assert not WorkerHeartbeat.objects.filter(name=me).exists()  # a clean stop leaves the pool at once


def at_once(fn, n=4) -> list:
    """Call ``fn`` from ``n`` threads released together (each on its own database connection)."""
    from django.db import connections

    start, results = threading.Barrier(n), []

    def one():
        start.wait()
        try:
            results.append(fn())
        finally:
            connections.close_all()

    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(results) == n
    return results


@pytest.mark.django_db(transaction=True)
def test_concurrent_claims_and_reconcilers_do_each_thing_once(user, tasks, broker):
    run = RunFactory(owner=user, seeds=[101, 102, 103])
    candidate = run.candidates.get()
    claims = at_once(lambda: work.claim_episode(candidate, Episode.Split.DEBUG, 101))
    assert len([c for c in claims if c is not None]) == 1 and Episode.objects.count() == 1
    Episode.objects.update(worker=ELSEWHERE, heartbeat_at=stale())  # its worker died
    Run.objects.filter(pk=run.pk).update(created_at=timezone.now() - timedelta(minutes=5))
    passes = at_once(reconcile)
    assert sum(p.get("episodes_reset", 0) for p in passes) == 1
    assert sum(p.get("episodes_sent", 0) for p in passes) == 3
    assert sorted(a[2] for a in Outbox.objects.values_list("args", flat=True)) == [101, 102, 103]


@pytest.mark.django_db(transaction=True)
def test_manage_reconcile_prints_what_it_did(user, tasks, broker):
    from io import StringIO

    from django.core.management import call_command

    run = RunFactory(owner=user, seeds=[101])
    Run.objects.filter(pk=run.pk).update(created_at=timezone.now() - timedelta(minutes=5))
    out = StringIO()
    call_command("reconcile", "--json", stdout=out)
    assert json.loads(out.getvalue()) == {"episodes_sent": 1}
    out = StringIO()
    call_command("reconcile", stdout=out)
    assert out.getvalue().strip() == "nothing to do"


def test_a_worker_process_warms_up_the_configured_tasks_before_it_takes_work(monkeypatch, settings):
    """The worker signals (runs.tasks) run worker.engine.warm_up on the thread that runs the episodes:
    a prefork child (and the solo pool) in worker_process_init; none when no task is configured."""
    import worker.engine
    from runs import tasks

    calls = []
    monkeypatch.setattr(worker.engine, "warm_up", lambda keys, logger=None: calls.append(list(keys)) or {})
    from runs import heartbeat

    monkeypatch.setattr(heartbeat, "start_heartbeat_thread", lambda queues: None)
    settings.ASPIRE = {**settings.ASPIRE, "WARM_UP_TASKS": ["robosuite:Lift", "robosuite:Stack"]}
    tasks._child_started()
    assert calls == [["robosuite:Lift", "robosuite:Stack"]]
    settings.ASPIRE = {**settings.ASPIRE, "WARM_UP_TASKS": []}
    tasks._child_started()
    assert len(calls) == 1
