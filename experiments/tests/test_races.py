"""Two workers racing for one round barrier: the round's last two episodes settle at the same moment.

As in runs/tests/test_races.py: each worker is a forked process (testing.hosts.race) running the real
``runs.work.run_episode`` (claim, sink, settling, and through runs.work.episode_settled the coordinator's
barrier) with the simulator replaced by an instant result; a ``multiprocessing.Barrier`` makes both
episodes' results commit before either barrier looks, and a rendezvous inside the barrier's critical
section (the round read and complete, the actor not yet moved on) holds the first worker until the second
comes, which it only can without the actor's row lock. Fails on a version without the lock; PostgreSQL
only (the ``postgres`` marker skips it on SQLite, which serialises every write transaction).
"""

import multiprocessing

import pytest

from experiments import coordinator
from experiments.queues import ACTOR_STEP
from experiments.services import create_experiment, start_experiment
from runs import heartbeat, outbox, services, work
from runs.models import Actor, Episode, Outbox, Task
from testing.hosts import race, rendezvous
from worker.events import EpisodeResult, EpisodeStart

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]

WINDOW_S = 2.0


@pytest.fixture(autouse=True)
def no_holds_left():
    yield
    heartbeat.drop_all()


class InstantEngine:
    """runs.work.run_episodes replaced by an instant success (the real sink writes the rows);
    ``executions`` counts episodes in every process; ``together`` (a Barrier), once set, makes the racers'
    results commit before either settles."""

    def __init__(self):
        self.executions = multiprocessing.Value("i", 0)
        self.together = None

    def __call__(self, spec, program, seeds, sink, settings=None, media=None, should_stop=None):
        results = []
        for seed in seeds:
            with self.executions.get_lock():
                self.executions.value += 1
            handle = sink.episode_started(EpisodeStart(spec.key, seed, "hash"))
            result = EpisodeResult(seed=seed, success=False, status="OK")
            sink.episode_finished(handle, result)
            results.append(result)
        if self.together is not None:
            rendezvous(self.together, 10)
        return results


def actor_steps(actor) -> int:
    return Outbox.objects.filter(key=outbox.key_of(ACTOR_STEP, [actor.pk])).count()


def test_the_rounds_last_two_episodes_settling_at_once_move_the_actor_on_once(user, monkeypatch):
    services.sync_catalog()
    stack = Task.objects.get(key="robosuite:Stack")
    engine = InstantEngine()
    monkeypatch.setattr(work, "run_episodes", engine)
    run = create_experiment(
        kind="search",
        tasks=[stack],
        owner=user,
        agent={"backend": "offline"},
        search={"candidates_per_round": 2, "max_rounds": 2},
        debug_seeds=[101, 102],
        heldout_seeds=[1],
    )
    start_experiment(run)
    coordinator.coordinate(run.pk)
    actor = run.actors.get()
    coordinator.actor_step(actor.pk)  # round 0 proposed: 2 candidates x 2 debug seeds queued
    actor.refresh_from_db()
    assert actor.status == Actor.Status.EVALUATING
    episodes = [(c.pk, s) for c in actor.search_candidates().filter(round=0) for s in (101, 102)]
    assert len(episodes) == 4
    for candidate_id, seed in episodes[:2]:
        work.run_episode(candidate_id, Episode.Split.DEBUG, seed)
    actor.refresh_from_db()
    assert actor.status == Actor.Status.EVALUATING
    steps_before = actor_steps(actor)

    engine.together = multiprocessing.Barrier(2)
    inside = multiprocessing.Barrier(2)
    settle_skill_uses = coordinator._settle_skill_uses
    waited = []

    def settle_after_the_other(candidate):
        # coordinator.barrier: the actor is read (and locked) EVALUATING with its round complete.
        if not waited:
            waited.append(rendezvous(inside, WINDOW_S))
        return settle_skill_uses(candidate)

    monkeypatch.setattr(coordinator, "_settle_skill_uses", settle_after_the_other)
    moved = multiprocessing.Value("i", 0)
    barrier = coordinator.barrier

    def counted(actor_id):
        done = barrier(actor_id)
        if done:
            with moved.get_lock():
                moved.value += 1
        return done

    monkeypatch.setattr(coordinator, "barrier", counted)

    (c1, s1), (c2, s2) = episodes[2:]
    outcomes = race(
        lambda: work.run_episode(c1, Episode.Split.DEBUG, s1),
        lambda: work.run_episode(c2, Episode.Split.DEBUG, s2),
    )

    assert outcomes == ["OK", "OK"]
    assert engine.executions.value == 4
    assert moved.value == 1, "the barrier moved the actor on more than once"
    assert actor_steps(actor) - steps_before == 1
    actor.refresh_from_db()
    assert actor.status == Actor.Status.PROPOSING
