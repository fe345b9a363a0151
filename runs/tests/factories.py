"""Rows of the runs app for tests that do not need the simulator: catalog tasks, runs made by the launch
service, candidates, and the engine's records (episode start, calls, keyframes, results) to write through
the real DjangoSink, so that they are stored and broadcast exactly as the engine's would be."""

import time
from typing import NamedTuple

import factory
import numpy as np

from accounts.tests.factories import UserFactory
from runs import services
from runs.models import Candidate, Episode, Run, Task
from runs.sink import DjangoSink
from runs.storage import media_storage
from worker.events import CallRecord, EpisodeResult, EpisodeStart, KeyframeRecord
from worker.robot.media import encode_jpeg


class TaskFactory(factory.django.DjangoModelFactory):
    """A task of the engine's catalog, as runs.services.sync_catalog stores it (synced when missing)."""

    class Meta:
        model = Task

    key = "robosuite:Lift"

    @classmethod
    def _create(cls, model_class, *, key):
        return services.get_task(key)


class RunFactory(factory.django.DjangoModelFactory):
    """A queued program run made by runs.services.create_program_run, its candidate 0 holding ``program``;
    ``n_candidates=N`` adds agent candidates 1 to N - 1 (variants of the program, two a round)."""

    class Meta:
        model = Run
        skip_postgeneration_save = True

    task = factory.SubFactory(TaskFactory)
    owner = factory.SubFactory(UserFactory)
    team = None
    seeds = (101, 102)
    program = "obs = get_observation()\n"
    origin = "pasted"

    @classmethod
    def _create(cls, model_class, *, task, owner, team, seeds, program, origin):
        return services.create_program_run(
            task=task, program=program, seeds=list(seeds), origin=origin, owner=owner, team=team
        )

    @factory.post_generation
    def n_candidates(run, create, extracted, **kwargs):
        program = run.candidates.get(index=0).program
        for i in range(1, extracted or 1):
            CandidateFactory(run=run, index=i, program=program + f"# variant {i}\n")


class CandidateFactory(factory.django.DjangoModelFactory):
    """An agent's candidate program of a run: index i, in round i // 2."""

    class Meta:
        model = Candidate

    run = factory.SubFactory(RunFactory)
    index = factory.Sequence(lambda n: n + 1)
    round = factory.LazyAttribute(lambda o: o.index // 2)
    label = factory.LazyAttribute(lambda o: f"candidate {o.index}")
    hypothesis = factory.LazyAttribute(lambda o: f"hypothesis {o.index}")
    program = factory.LazyAttribute(lambda o: f"obs = get_observation()\n# variant {o.index}\n")
    program_hash = factory.LazyAttribute(lambda o: f"h{o.index}")
    origin = "agent"


class StartedEpisode(NamedTuple):
    """An episode the engine has started: the sink that writes it, and its id."""

    sink: DjangoSink
    episode_id: int


class StartedEpisodeFactory(factory.Factory):
    """A debug episode of a run's candidate (by default its first) started through the real DjangoSink,
    as the engine starts one; unpacks to ``(sink, episode_id)`` to record calls and the result on."""

    class Meta:
        model = StartedEpisode

    run = factory.SubFactory(RunFactory)
    candidate = factory.LazyAttribute(lambda o: o.run.candidates.first())
    seed = 101

    @classmethod
    def _create(cls, model_class, *, run, candidate, seed):
        sink = DjangoSink(candidate, Episode.Split.DEBUG)
        return model_class(sink, sink.episode_started(EpisodeStart("robosuite:Lift", seed, "hash")))


class CallRecordFactory(factory.Factory):
    """One primitive call as the engine records it (worker.events.CallRecord), made at program line ``line``."""

    class Meta:
        model = CallRecord

    seq = factory.Sequence(lambda n: n + 1)
    primitive = "get_observation"
    args = factory.LazyFunction(lambda: {"camera_names": ["agentview"]})
    result = factory.LazyAttribute(lambda o: {"n": o.seq})
    status = "OK"
    line = 1
    stack = factory.LazyAttribute(lambda o: [["<module>", o.line]])
    started_at = factory.LazyFunction(time.time)
    duration_ms = 12.5
    keyframes = factory.LazyFunction(list)


class KeyframeRecordFactory(factory.Factory):
    """A keyframe as the engine writes one: a real (tiny) JPEG named ``path`` in the media storage, and its record."""

    class Meta:
        model = KeyframeRecord

    path = factory.Sequence(lambda n: f"test/frame-{n}.jpg")
    kind = "frame"
    camera = "agentview"
    label = "after"
    width = 8
    height = 8

    @classmethod
    def _create(cls, model_class, **kwargs):
        record = model_class(**kwargs)
        jpeg, _, _ = encode_jpeg(np.full((record.height, record.width, 3), 200, dtype=np.uint8))
        record.path = media_storage().save(record.path, jpeg, "image/jpeg")
        return record


class EpisodeResultFactory(factory.Factory):
    """How an episode ended, as the engine reports it (worker.events.EpisodeResult): a success by default."""

    class Meta:
        model = EpisodeResult

    seed = 0
    success = True
    status = "OK"
    n_calls = 0
    keyframes = factory.LazyFunction(list)
