"""Two workers racing on one database: the same redelivered episode, a program run's last two episodes.

Each worker is a forked process (testing.hosts.race) with its own database connection and worker identity;
they run the real ``runs.work.run_episode`` (claim, sink, settle) with the simulator replaced by an instant
result. A ``multiprocessing.Barrier`` makes them collide: they start together, and a rendezvous placed
inside the critical section (after the rows are read, before they are written) holds the first worker
there until the second arrives. With the row locks the second worker is blocked on the lock and never
arrives (the rendezvous times out and the first goes on alone); without them both are inside at once,
which is the race. So these tests fail on a version without ``select_for_update`` and the conditional
updates. They need PostgreSQL (``ASPIRE_TEST_DB=postgres``): SQLite serialises every write transaction, so
there the race cannot happen (the ``postgres`` marker skips them, with that reason).
"""

import multiprocessing
from datetime import timedelta

import pytest
from django.utils import timezone

from runs import heartbeat, work
from runs.models import Candidate, Episode, Run
from testing.hosts import race, rendezvous
from worker.events import EpisodeResult, EpisodeStart

from .factories import RunFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]

DEAD = "aspire@a-machine-that-died:77"
#: Seconds the first worker waits inside the critical section for the second (which, with the locks,
#: is blocked on the first's row lock and never comes).
WINDOW_S = 2.0


@pytest.fixture(autouse=True)
def no_holds_left():
    yield
    heartbeat.drop_all()


class InstantEngine:
    """runs.work.run_episodes replaced by an instant success: the sink writes the episode's start and
    result as the engine's would. ``executions`` counts episodes run, in every process; ``together``
    (a Barrier) makes the racers finish their episodes at the same moment."""

    def __init__(self, together=None):
        self.executions = multiprocessing.Value("i", 0)
        self.together = together

    def __call__(self, spec, program, seeds, sink, settings=None, media_root=None, should_stop=None):
        results = []
        for seed in seeds:
            with self.executions.get_lock():
                self.executions.value += 1
            handle = sink.episode_started(EpisodeStart(spec.key, seed, "hash"))
            result = EpisodeResult(seed=seed, success=True, status="OK")
            sink.episode_finished(handle, result)
            results.append(result)
        if self.together is not None:
            rendezvous(self.together, 10)  # both results committed before either settles
        return results


@pytest.fixture
def program_run(tasks, user):
    return RunFactory(owner=user, seeds=(101, 102))


def test_a_redelivered_episode_is_run_once_by_one_of_two_workers(program_run, monkeypatch):
    """Two deliveries of one run_episode reach two workers at once, for an episode whose owner died:
    exactly one worker retakes it (attempt 2) and runs it; the other does nothing."""
    candidate = program_run.candidates.get()
    split = work.expected_work(program_run)[0]
    stale = timezone.now() - timedelta(minutes=10)
    Episode.objects.create(
        candidate=candidate,
        run=program_run,
        split=split,
        seed=101,
        status=Episode.RUNNING,
        worker=DEAD,
        heartbeat_at=stale,
        attempt=1,
    )
    engine = InstantEngine()
    monkeypatch.setattr(work, "run_episodes", engine)
    start, inside = multiprocessing.Barrier(2), multiprocessing.Barrier(2)
    acquire = heartbeat.acquire

    def acquire_after_the_other(kind, pk, label=""):
        # runs.work._claim: the episode row is read (and locked), the takeover not yet written.
        rendezvous(inside, WINDOW_S)
        return acquire(kind, pk, label)

    monkeypatch.setattr(heartbeat, "acquire", acquire_after_the_other)

    def deliver():
        rendezvous(start, 10)
        return work.run_episode(candidate.pk, split, 101)

    outcomes = race(deliver, deliver)

    assert sorted(outcomes, key=str) == [None, "OK"], outcomes
    assert engine.executions.value == 1
    episode = Episode.objects.get(candidate=candidate, split=split, seed=101)
    assert (episode.attempt, episode.status, episode.success) == (2, "OK", True)
    assert Episode.objects.filter(candidate=candidate).count() == 1


def test_a_new_episode_delivered_twice_at_once_gets_one_row_and_one_execution(program_run, monkeypatch):
    """Two deliveries of an episode nobody has started: one row, run once."""
    candidate = program_run.candidates.get()
    split = work.expected_work(program_run)[0]
    engine = InstantEngine()
    monkeypatch.setattr(work, "run_episodes", engine)
    start, inside = multiprocessing.Barrier(2), multiprocessing.Barrier(2)
    acquire = heartbeat.acquire

    def acquire_after_the_other(kind, pk, label=""):
        rendezvous(inside, WINDOW_S)  # the row is inserted, not yet committed
        return acquire(kind, pk, label)

    monkeypatch.setattr(heartbeat, "acquire", acquire_after_the_other)

    def deliver():
        rendezvous(start, 10)
        return work.run_episode(candidate.pk, split, 102)

    outcomes = race(deliver, deliver)

    assert sorted(outcomes, key=str) == [None, "OK"], outcomes
    assert engine.executions.value == 1
    assert Episode.objects.filter(candidate=candidate, seed=102).count() == 1


def test_the_last_two_episodes_settling_at_once_finish_the_program_run_once(program_run, monkeypatch):
    """A program run's last two episodes end at the same moment on two workers: the run becomes FINISHED
    exactly once (one settle_program_run call does it, the other sees it done)."""
    candidate = program_run.candidates.get()
    split = work.expected_work(program_run)[0]
    finished = multiprocessing.Value("i", 0)
    engine = InstantEngine(together=multiprocessing.Barrier(2))
    monkeypatch.setattr(work, "run_episodes", engine)
    inside = multiprocessing.Barrier(2)
    refresh_stats = Candidate.refresh_stats

    def refresh_after_the_other(self, *args, **kwargs):
        # runs.work.settle_program_run: the run is read (and locked) and complete, not yet FINISHED.
        rendezvous(inside, WINDOW_S)
        return refresh_stats(self, *args, **kwargs)

    monkeypatch.setattr(Candidate, "refresh_stats", refresh_after_the_other)
    settle_program_run = work.settle_program_run

    def counted(run_id):
        done = settle_program_run(run_id)
        if done:
            with finished.get_lock():
                finished.value += 1
        return done

    monkeypatch.setattr(work, "settle_program_run", counted)

    outcomes = race(
        lambda: work.run_episode(candidate.pk, split, 101),
        lambda: work.run_episode(candidate.pk, split, 102),
    )

    assert outcomes == ["OK", "OK"]
    assert engine.executions.value == 2
    assert finished.value == 1
    program_run.refresh_from_db()
    assert program_run.status == Run.Status.FINISHED
    candidate.refresh_from_db()
    assert candidate.n_success == 2
