"""Fixtures of the runs app's tests (the shared ones, ``user``, ``api``, ``tasks``, are in the root conftest)."""

import pytest

from runs import services

from .factories import (
    CallRecordFactory,
    EpisodeResultFactory,
    KeyframeRecordFactory,
    RunFactory,
    StartedEpisodeFactory,
)


@pytest.fixture
def traced_run(user):
    """A finished run of ``user``: one episode with two calls, the second failing with a keyframe."""
    services.sync_catalog()
    run = RunFactory(owner=user, seeds=[101])
    sink, ep = StartedEpisodeFactory(run=run)
    sink.call_recorded(ep, CallRecordFactory(seq=1))
    sink.call_recorded(
        ep,
        CallRecordFactory(
            seq=2,
            primitive="move_to_pose",
            status="NOT_REACHED",
            line=3,
            keyframes=[KeyframeRecordFactory(path="test/after.jpg")],
        ),
    )
    sink.episode_finished(ep, EpisodeResultFactory(n_calls=2, success=False, status="EXCEPTION"))
    run.refresh_from_db()
    return run
