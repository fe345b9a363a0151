"""Durable experiments: every step's error path, cancel, and a killed owner's work retaken by the reconciler.

The fast tests play the worker pool in this process: :func:`drive` takes the real messages off the real
Redis queue (as a worker does, marking them picked up) and runs their tasks; episodes go through the real
claim, sink and settling (runs.work) with the simulator replaced by an instant result. The slow test runs
everything on the real Celery worker and MuJoCo.
"""

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from experiments import coordinator
from experiments.services import create_experiment, start_experiment
from runs import heartbeat, services, work
from runs.models import Actor, Candidate, Episode, Outbox, PrimitiveCall, Run, Task
from runs.reconcile import reconcile
from testing.pool import drive
from testing.waiting import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("no_holds_left")]

DEAD = "aspire@a-machine-that-died:77"


@pytest.fixture
def stack(db):
    services.sync_catalog()
    return Task.objects.get(key="robosuite:Stack")


def launch(stack, user, kind="search", debug=(101, 102), heldout=(1, 2), **search):
    run = create_experiment(
        kind=kind,
        tasks=[stack],
        owner=user,
        agent={"backend": "offline"},
        search={"candidates_per_round": 2, "max_rounds": 1, **search},
        debug_seeds=list(debug),
        heldout_seeds=list(heldout),
    )
    start_experiment(run)
    return run


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user("ada", password="pw")


def test_an_experiment_runs_to_the_end_on_per_episode_tasks(stack, user, broker, instant_episodes):
    run = launch(stack, user)
    drive(broker)
    run.refresh_from_db()
    actor = run.actors.get()
    assert run.status == Run.Status.FINISHED and actor.status == Actor.Status.FINISHED, (run.error, actor.error)
    debug = Episode.objects.filter(run=run, split=Episode.Split.DEBUG)
    assert sorted(debug.values_list("candidate__index", "seed")) == [(0, 101), (0, 102), (1, 101), (1, 102)]
    assert sorted(Episode.objects.filter(run=run, split="heldout").values_list("seed", flat=True)) == [1, 2]
    assert actor.heldout_rate == 1.0 == run.success_rate
    assert reconcile().get("episodes_sent") is None  # nothing is missing


# -- every step's error path ----------------------------------------------------------------------------
def boom(*args, **kwargs):
    raise RuntimeError("boom")


STEPS = {
    # step: (what to break, the error the actor shows)
    "propose": (("propose_next_round", boom), "RuntimeError: boom"),
    "barrier": (("_settle_skill_uses", boom), "RuntimeError: boom"),
    "stop rule": (("leaderboard", boom), "RuntimeError: boom"),
    "held-out settle": (("_settle_heldout", boom), "RuntimeError: boom"),
    "skill hand-over": (("submit_agent_proposal", boom), "skill hand-over: RuntimeError: boom"),
    "coordinate": (("_coordinate", boom), "coordinate: RuntimeError: boom"),  # the run's actors all fail
}


@pytest.mark.parametrize("step", STEPS)
def test_an_exception_in_any_step_fails_the_actor_with_its_message_and_the_run_still_ends(
    step, stack, user, broker, instant_episodes, monkeypatch
):
    (name, replacement), message = STEPS[step]
    run = launch(stack, user)
    if step == "skill hand-over":
        Actor.objects.filter(run=run).update(proposed_skills=[{"name": "a finding"}])
    monkeypatch.setattr(coordinator, name, replacement)
    drive(broker)
    run.refresh_from_db()
    actor = run.actors.get()
    assert actor.status == Actor.Status.FAILED and actor.error == message, (step, actor.status, actor.error)
    assert actor.finished_at is not None and actor.worker == ""
    assert run.status == Run.Status.FAILED and run.finished_at is not None and "boom" in run.error
    assert not Episode.objects.filter(run=run, status=Episode.RUNNING).exists()


@pytest.mark.parametrize("seed", [2**63, 2**32, -1])
def test_a_bad_held_out_seed_fails_the_actor_instead_of_hanging_it(seed, stack, user, broker, instant_episodes):
    run = launch(stack, user)
    actor = run.actors.get()
    Actor.objects.filter(pk=actor.pk).update(settings={**actor.settings, "heldout_seeds": [seed]})
    drive(broker)
    run.refresh_from_db()
    actor.refresh_from_db()
    assert actor.status == Actor.Status.FAILED and actor.error.startswith("ValueError: seed"), actor.error
    assert run.status == Run.Status.FAILED


def test_a_transient_database_error_leaves_the_step_to_the_reconciler(
    stack, user, broker, instant_episodes, monkeypatch
):
    from django.db import OperationalError

    def locked(*args):
        raise OperationalError("database is locked")

    run = launch(stack, user)
    real = coordinator.propose_next_round
    monkeypatch.setattr(coordinator, "propose_next_round", locked)
    with pytest.raises(OperationalError):
        drive(broker)
    actor = run.actors.get()
    assert actor.status == Actor.Status.PROPOSING and actor.worker == ""  # not failed, and nobody owns it
    monkeypatch.setattr(coordinator, "propose_next_round", real)
    assert reconcile().get("actor_steps_sent") == 1
    drive(broker)
    run.refresh_from_db()
    assert run.status == Run.Status.FINISHED


# -- cancel ---------------------------------------------------------------------------------------------
def test_cancel_ends_actors_and_episodes_at_once(stack, user, broker, instant_episodes):
    run = launch(stack, user)
    taken = []

    def first_runs_then_cancel(args):
        """The round's first episode is running on a worker when the run is cancelled; the other
        messages are delivered as usual afterwards."""
        if taken:
            return False
        taken.append(work.claim_episode(Candidate.objects.get(pk=args[0]), args[1], args[2]))
        services.cancel_run(Run.objects.get(pk=run.pk))
        return True

    drive(broker, on_episode=first_runs_then_cancel)
    run.refresh_from_db()
    actor = run.actors.get()
    assert run.status == Run.Status.CANCELLED and actor.status == Actor.Status.CANCELLED
    assert actor.finished_at is not None
    assert Episode.objects.get(pk=taken[0].episode_id).status == Episode.CANCELLED
    # The other queued episodes were delivered and did not start; the reconciler leaves the run alone.
    assert Episode.objects.filter(run=run).count() == 1 and instant_episodes.runs == []
    assert not reconcile().get("episodes_sent")
    assert drive(broker) == [] and Episode.objects.filter(run=run).count() == 1


# -- a killed owner -------------------------------------------------------------------------------------
def test_an_experiment_whose_worker_died_mid_episode_finishes_after_reconcile_with_exact_counts(
    stack, user, broker, instant_episodes
):
    run = launch(stack, user)
    killed = []

    def die_on_second_candidate(args):
        candidate = Candidate.objects.get(pk=args[0])
        if candidate.index == 1 and args[2] == 102 and not killed:
            # The worker took the message, started the episode, recorded a call and was SIGKILLed.
            claim = work.claim_episode(candidate, args[1], args[2])
            work.let_go(claim)  # the process holding it is gone
            Episode.objects.filter(pk=claim.episode_id).update(
                worker=DEAD, heartbeat_at=timezone.now() - timedelta(seconds=heartbeat.owner_timeout() + 1)
            )
            PrimitiveCall.objects.create(
                episode_id=claim.episode_id, seq=1, primitive="get_observation", status="OK",
                started_at=timezone.now(), duration_ms=1.0,
            )  # fmt: skip
            killed.append(claim.episode_id)
            return True
        return False

    drive(broker, on_episode=die_on_second_candidate)
    run.refresh_from_db()
    actor = run.actors.get()
    assert run.status == Run.Status.RUNNING and actor.status == Actor.Status.EVALUATING  # stranded
    counts = reconcile()
    assert counts.get("episodes_reset") == 1 and counts.get("episodes_sent") == 1, counts
    assert reconcile().get("episodes_sent") is None  # idempotent
    drive(broker)
    run.refresh_from_db()
    actor.refresh_from_db()
    assert run.status == Run.Status.FINISHED and actor.status == Actor.Status.FINISHED, (run.error, actor.error)
    rows = Episode.objects.filter(run=run)
    assert sorted(rows.filter(split="debug").values_list("candidate__index", "seed")) == [
        (0, 101),
        (0, 102),
        (1, 101),
        (1, 102),
    ]
    assert sorted(rows.filter(split="heldout").values_list("seed", flat=True)) == [1, 2]
    retaken = rows.get(pk=killed[0])
    assert retaken.attempt == 2 and retaken.status == "OK" and not retaken.calls.exists()
    assert not rows.filter(status=Episode.RUNNING).exists()
    assert {k for k in reconcile() if k.endswith("_sent")} == set()


@pytest.mark.slow
def test_on_the_real_worker_an_experiment_with_a_dead_owner_and_a_lost_queue_finishes(stack, user, broker):
    """Real MuJoCo on the real Celery worker: the actor's round was proposed and one episode was running
    on a worker that died; the broker lost its queue (the worker fixture purges it). The reconciler
    resets and re-sends what is missing and the worker finishes the run: every seed exactly once."""
    from testing.celery_worker import celery_worker_thread

    run = launch(stack, user, kind="zero_shot", debug=(101, 108), heldout=(1,))
    coordinator.coordinate(run.pk)
    actor = run.actors.get()
    coordinator.actor_step(actor.pk)
    first = Candidate.objects.get(actor=actor, round=0, index=0)
    assert work.run_episode(first.pk, Episode.Split.DEBUG, 101) is not None  # one finished before the crash
    claim = work.claim_episode(first, Episode.Split.DEBUG, 108)
    work.let_go(claim)  # the process holding it is gone
    Episode.objects.filter(pk=claim.episode_id).update(worker=DEAD, heartbeat_at=timezone.now() - timedelta(hours=1))
    Outbox.objects.update(sent_at=timezone.now() - timedelta(minutes=1))
    with celery_worker_thread():
        counts = reconcile()
        assert counts.get("episodes_reset") == 1 and counts.get("episodes_sent"), counts
        wait_for(lambda: Run.objects.get(pk=run.pk).status not in (Run.Status.QUEUED, Run.Status.RUNNING), timeout=600)
        time.sleep(0.5)
    run.refresh_from_db()
    actor.refresh_from_db()
    assert run.status == Run.Status.FINISHED, (run.error, actor.error)
    debug = Episode.objects.filter(run=run, split="debug")
    n = Candidate.objects.filter(actor=actor).exclude(origin="experiment").count()
    assert debug.count() == 2 * n and len(set(debug.values_list("candidate_id", "seed"))) == 2 * n
    assert Episode.objects.get(pk=claim.episode_id).attempt == 2
    assert list(Episode.objects.filter(run=run, split="heldout").values_list("seed", flat=True)) == [1]
