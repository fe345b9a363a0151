"""Rows for tests that do not need the simulator: users, runs, candidates, episodes, and calls written
through the real DjangoSink (so they are broadcast exactly as the engine's would be)."""

import time

import factory
from django.contrib.auth import get_user_model

from runs import services
from runs.models import Candidate, Episode, Run
from runs.sink import DjangoSink
from worker.events import CallRecord, EpisodeResult, EpisodeStart, KeyframeRecord


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.PostGenerationMethodCall("set_password", "pw-for-tests")


def make_run(owner, *, team=None, seeds=(101, 102), program="obs = get_observation()\n", n_candidates=1) -> Run:
    task = services.get_task("robosuite:Lift")
    run = services.create_program_run(task=task, program=program, seeds=list(seeds), origin="pasted", owner=owner, team=team)
    for i in range(1, n_candidates):
        Candidate.objects.create(run=run, index=i, round=i // 2, label=f"candidate {i}", hypothesis=f"hypothesis {i}",
                                 program=program + f"# variant {i}\n", program_hash=f"h{i}", origin="agent")
    return run


def call_record(seq: int, primitive="get_observation", status="OK", line=1, stack=None, keyframes=()) -> CallRecord:
    return CallRecord(seq=seq, primitive=primitive, args={"camera_names": ["agentview"]}, result={"n": seq}, status=status,
                      line=line, stack=stack or [["<module>", line]], started_at=time.time(), duration_ms=12.5,
                      keyframes=list(keyframes))


def start_episode(run: Run, seed: int = 101, candidate: Candidate | None = None) -> tuple[DjangoSink, int]:
    sink = DjangoSink(candidate or run.candidates.first(), Episode.Split.DEBUG)
    return sink, sink.episode_started(EpisodeStart("robosuite:Lift", seed, "hash"))


def finish_episode(sink: DjangoSink, episode_id: int, n_calls: int, success=True, status="OK", keyframes=()) -> None:
    sink.episode_finished(episode_id, EpisodeResult(seed=0, success=success, status=status, n_calls=n_calls, keyframes=list(keyframes)))


def keyframe_file(media_root, rel: str) -> KeyframeRecord:
    """A real (tiny) JPEG under the media root, as the engine writes them."""
    from pathlib import Path

    import numpy as np
    from PIL import Image

    path = Path(media_root) / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8, 3), 200, dtype=np.uint8)).save(path, format="JPEG")
    return KeyframeRecord(rel, "frame", "agentview", "after", 8, 8)
