"""Episode recording (EngineSettings.recording): a playable H.264 MP4 of the episode and a timeline that
places every traced call on the video's clock; before and after frames of motion and gripper calls."""

import av
import numpy as np
import pytest

from worker.engine import EngineSettings, run_episode
from worker.events import MemorySink
from worker.robot import status as st
from worker.robot.recording import Recorder

MOVES = ("move_to_pose", "open_gripper", "close_gripper")


def test_a_recorded_episode_is_a_playable_video_with_every_call_on_its_timeline(lift_spec, starter_program, tmp_path):
    sink = MemorySink()
    result = run_episode(lift_spec, starter_program, 101, sink, EngineSettings(recording=True), str(tmp_path))
    assert result.success and result.status == st.OK, result.error
    assert result.recording.endswith("/recording.mp4")
    index = result.recording_index
    assert not index["error"] and not index["truncated"]

    # The file decodes (PyAV's FFmpeg): H.264, yuv420p, the frames the index lists.
    frames = index["frames"]
    with av.open(str(tmp_path / result.recording)) as video:
        stream = video.streams.video[0]
        assert stream.codec_context.name == "h264" and stream.codec_context.pix_fmt == "yuv420p"
        assert (stream.width, stream.height) == (index["width"], index["height"]) == (256, 256)
        decoded = [f.to_ndarray(format="rgb24") for f in video.decode(stream)]
    assert len(decoded) == len(frames)
    assert decoded[0].std() > 10  # a rendered scene, not a blank frame
    assert len(frames) >= 8 and frames == sorted(frames)
    assert frames[-1] == pytest.approx(result.sim_time, abs=0.05)
    assert index["duration"] == pytest.approx(len(frames) / index["fps"])

    # Every call has a span on the video clock, in order, inside the video.
    calls = sink.episodes[0]["calls"]
    spans = {seq: (t0, t1) for seq, t0, t1 in index["calls"]}
    assert sorted(spans) == [c.seq for c in calls]
    starts = [spans[c.seq][0] for c in calls]
    assert starts == sorted(starts)
    for c in calls:
        t0, t1 = spans[c.seq]
        assert 0 <= t0 <= t1 <= index["duration"]
        if c.primitive in MOVES:
            assert t1 > t0, f"#{c.seq} {c.primitive} moved the robot but spans no video"
            # Before and after frames of every motion and gripper call.
            labels = [k.label for k in c.keyframes if k.kind == "frame"]
            assert labels[:1] == ["before"] and "after" in labels, (c.seq, c.primitive, labels)

    # A before-frame taken where the robot stood still since the previous motion's after-frame is that
    # same picture: it names the same file instead of encoding and storing it again.
    frames_of = [(c.seq, k) for c in calls for k in c.keyframes if k.kind == "frame"]
    after_paths = {k.path for _, k in frames_of if k.label == "after"}
    reused = [k for _, k in frames_of if k.label == "before" and k.path in after_paths]
    assert reused, "no before-frame reused the previous after-frame"
    stored = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.jpg")}
    assert {k.path for _, k in frames_of} <= stored
    assert len(stored) < sum(len(c.keyframes) for c in calls)


def test_untraced_or_storage_less_episodes_are_not_recorded(lift_spec, starter_program):
    result = run_episode(lift_spec, starter_program, 102, MemorySink(), EngineSettings(recording=True), None)
    assert result.recording == "" and result.recording_index == {}


def test_the_recorder_renders_each_step_once_and_stops_at_its_cap():
    step = [0]
    renders = []

    def render():
        renders.append(step[0])
        return np.full((300, 400, 3), step[0] % 255, dtype=np.uint8)

    rec = Recorder(render, lambda: step[0] * 0.05, lambda: step[0], every_steps=2, max_frames=5)
    rec.call_started(1, True)
    for _ in range(6):
        step[0] += 1
        rec.on_step(step[0])
    rec.call_ended(1, True)  # step 6 already has its frame: not rendered again
    rec.call_started(2, False)
    rec.call_ended(2, False)
    for _ in range(6):
        step[0] += 1
        rec.on_step(step[0])
    data, index = rec.finish()
    assert renders == [0, 2, 4, 6, 8]  # step 6: the call's end shares the periodic frame
    assert index["truncated"] and len(index["frames"]) == 5
    assert index["calls"] == [[1, 0.0, 3 / 2], [2, 3 / 2, 3 / 2]]  # frames 0-3 at 2 fps
    assert (index["width"], index["height"]) == (200, 150)  # downscaled to at most MAX_SIDE px
    assert data[4:8] == b"ftyp"
