"""A finished episode with a small real recording (synthetic frames through worker.robot.recording), for the
playback tests: no simulator needed."""

import numpy as np

from runs import services
from runs.storage import media_storage
from worker.robot.recording import Recorder

from .factories import CallRecordFactory, EpisodeResultFactory, RunFactory, StartedEpisodeFactory

#: (primitive, control steps it takes) of the recorded episode's calls.
CALLS = [("get_observation", 0), ("move_to_pose", 24), ("close_gripper", 12), ("move_to_pose", 20)]


def recorded_episode(user):
    """(run, episode id) of a finished episode of ``user`` with CALLS traced and recorded."""
    services.sync_catalog()
    run = RunFactory(owner=user, seeds=[101])
    sink, ep = StartedEpisodeFactory(run=run)
    step = [0]

    def render():  # a bar sweeping across: every frame differs
        frame = np.full((128, 128, 3), 40, dtype=np.uint8)
        frame[:, (step[0] * 2) % 128 : (step[0] * 2) % 128 + 4] = 250
        return frame

    rec = Recorder(render, lambda: step[0] / 20, lambda: step[0])
    for seq, (primitive, steps) in enumerate(CALLS, start=1):
        moves = steps > 0
        rec.call_started(seq, moves)
        for _ in range(steps):
            step[0] += 1
            rec.on_step(step[0])
        rec.call_ended(seq, moves)
        sink.call_recorded(ep, CallRecordFactory(seq=seq, primitive=primitive, line=seq, sim_time=step[0] / 20))
    data, index = rec.finish()
    name = media_storage().save(f"{sink.media_prefix(ep)}/recording.mp4", data, "video/mp4")
    sink.episode_finished(
        ep, EpisodeResultFactory(n_calls=len(CALLS), recording=name, recording_index=index, sim_time=step[0] / 20)
    )
    run.refresh_from_db()
    return run, ep
