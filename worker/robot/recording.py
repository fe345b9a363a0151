"""Episode recording: the keyframe camera at a low rate during motions, encoded as an H.264 MP4.

While an episode records, the simulator adapter calls :meth:`Recorder.on_step` after every control step
(worker.sim.base.SimAdapter.step_hook); once ``every_steps`` control steps have passed since the last
frame (10 steps at 20 Hz: 2 frames per simulated second) it renders the task's keyframe camera. The
tracer adds a frame at the start and the end of every motion and gripper call (:meth:`call_started` /
:meth:`call_ended`), so a call that moves the robot for a single step still shows; a frame is never
rendered twice for the same control step.

Frames go straight into an H.264 encoder in this process (PyAV's bundled FFmpeg, libx264 on one thread,
yuv420p, ``+faststart``: playable by browsers from the first bytes) writing a temporary file, so memory
stays bounded whatever the episode's length (an ffmpeg subprocess cost 0.1-0.25 s per episode just to
start on a busy 2-core machine, a quarter of a Lift episode); at most ``max_frames`` frames are kept
(later ones are dropped and the index says so); frames larger than MAX_SIDE are downscaled.
:meth:`finish` returns the MP4's bytes and a small JSON-safe index:

``{"fps", "every_steps", "width", "height", "duration", "frames": [sim time of each frame],
"calls": [[seq, t_start, t_end], ...], "truncated", "error"}``

Video time is frame number / fps (frames are shown evenly at ``fps``, so it follows simulated time
between motions and stops while the robot does not move). A call's ``t_start`` is the time of its
first frame (its before-frame), ``t_end`` that of its last frame; a call during which nothing
was rendered (perception, IK) spans no time at the point where it ran.

Plain Python (no Django).
"""

from __future__ import annotations

import logging
import os
import tempfile
from fractions import Fraction
from typing import Callable

import numpy as np

log = logging.getLogger(__name__)

#: Control steps between two periodic frames (20 Hz control: 10 steps = 2 frames per simulated second).
#: Each frame costs a render (15 ms on an idle 2-core CPU, 40-70 ms on a busy one); on a busy 2-core
#: machine (bench/trace_overhead.py, Lift, seeds 101-103) 4 steps cost 1.41x the untraced episode's
#: time and 8 steps 1.33x, over the 1.3x budget.
EVERY_STEPS = 10
#: Frames per second of the video: one frame per EVERY_STEPS control steps (20 Hz) played in real time.
FPS = 2.0
#: Most frames one recording keeps (10 minutes of video at 5 fps); later frames are dropped.
MAX_FRAMES = 3000
#: Longest side of a recorded frame in pixels; larger renders are downscaled (every 2nd, 3rd... pixel).
MAX_SIDE = 320
#: x264 constant rate factor: 28 keeps a 256 px robot scene legible at a few KiB per second.
CRF = 28


class Recorder:
    """Collects one episode's frames and call spans, encodes them at :meth:`finish`.

    ``render()`` returns an (H, W, 3) uint8 frame of the keyframe camera (the engine passes a cached
    render, shared with the tracer's before/after keyframes); ``sim_time()`` the simulator's clock;
    ``steps()`` the adapter's control-step counter, to render each step at most once."""

    def __init__(
        self,
        render: Callable[[], np.ndarray],
        sim_time: Callable[[], float],
        steps: Callable[[], int],
        *,
        every_steps: int = EVERY_STEPS,
        fps: int = FPS,
        max_frames: int = MAX_FRAMES,
        crf: int = CRF,
    ):
        self.render = render
        self.sim_time = sim_time
        self.steps = steps
        self.every_steps = max(1, int(every_steps))
        self.fps = float(fps)
        self.max_frames = int(max_frames)
        self.crf = int(crf)
        self.times: list[float] = []
        self.calls: list[list] = []
        self.truncated = False
        self.error = ""
        self._open: dict[int, float] = {}
        self._last_step: int | None = None
        self._size: tuple[int, int] | None = None
        self._container = None
        self._stream = None
        self._path = ""

    # -- frames -----------------------------------------------------------------------------------
    def on_step(self, steps: int) -> None:
        """After each control step: a frame once ``every_steps`` steps have passed since the last one."""
        if self._last_step is None or steps - self._last_step >= self.every_steps:
            self.capture()

    def capture(self) -> None:
        """Render and encode a frame now, unless this control step already has one (or the recording
        is full or broken)."""
        if self.error:
            return
        step = self.steps()
        if step == self._last_step:
            return
        if len(self.times) >= self.max_frames:
            self.truncated = True
            return
        try:
            frame = _fit(np.asarray(self.render(), dtype=np.uint8))
            self._write(frame)
        except Exception as exc:  # a recording must never fail the episode
            log.exception("episode recording failed; the rest of the episode is not recorded")
            self.error = f"{type(exc).__name__}: {exc}"[:300]
            self._abort()
            return
        self._last_step = step
        self.times.append(round(float(self.sim_time()), 4))

    def _write(self, frame: np.ndarray) -> None:
        import av

        h, w = frame.shape[:2]
        if self._container is None:
            self._size = (w, h)
            fd, self._path = tempfile.mkstemp(prefix="aspire-recording-", suffix=".mp4")
            os.close(fd)
            self._container = av.open(self._path, mode="w", format="mp4", options={"movflags": "+faststart"})
            stream = self._container.add_stream("libx264", rate=Fraction(self.fps).limit_denominator(1000))
            stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
            stream.options = {"crf": str(self.crf), "preset": "veryfast"}
            stream.codec_context.thread_count = 1  # the simulator and the sandbox need the other cores
            self._stream = stream
        elif (w, h) != self._size:
            frame = _resize(frame, self._size)
        for packet in self._stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
            self._container.mux(packet)

    # -- calls ------------------------------------------------------------------------------------
    def call_started(self, seq: int, frame: bool) -> None:
        """A traced call begins; ``frame``: it may move the robot (motion, gripper), take a frame now."""
        if frame:
            self.capture()
        # The call starts at the latest frame (its before-frame, or the last frame before it).
        self._open[seq] = max(0, len(self.times) - 1) / self.fps

    def call_ended(self, seq: int, frame: bool) -> None:
        if frame:
            self.capture()
        start = self._open.pop(seq, max(0, len(self.times) - 1) / self.fps)
        end = max(start, (len(self.times) - 1) / self.fps) if self.times else start
        self.calls.append([int(seq), round(start, 3), round(end, 3)])

    # -- end ----------------------------------------------------------------------------------------
    def index(self) -> dict:
        w, h = self._size or (0, 0)
        return {
            "fps": self.fps,
            "every_steps": self.every_steps,
            "width": w,
            "height": h,
            "duration": round(len(self.times) / self.fps, 3),
            "frames": self.times,
            "calls": self.calls,
            "truncated": self.truncated,
            "error": self.error,
        }

    def finish(self) -> tuple[bytes | None, dict]:
        """Close the encoder; (MP4 bytes, index), or (None, index) when no frame was recorded or the
        encoder failed (the index's ``error`` says why)."""
        data = None
        if self._container is not None and not self.error:
            try:
                for packet in self._stream.encode():  # flush the encoder
                    self._container.mux(packet)
                container, self._container = self._container, None
                container.close()
                with open(self._path, "rb") as fh:
                    data = fh.read()
            except Exception as exc:
                log.exception("encoding the episode recording failed")
                self.error = f"{type(exc).__name__}: {exc}"[:300]
        self._abort()
        return data, self.index()

    def close(self) -> None:
        """Drop everything (the encoder process and its temporary file); safe to call twice."""
        self._abort()

    def _abort(self) -> None:
        container, self._container = self._container, None
        if container is not None:
            try:
                container.close()
            except Exception:
                pass
        if self._path:
            try:
                os.unlink(self._path)
            except OSError:
                pass
            self._path = ""


def _fit(frame: np.ndarray) -> np.ndarray:
    """At most MAX_SIDE pixels on the longer side (integer subsampling), even width and height (yuv420p)."""
    h, w = frame.shape[:2]
    k = -(-max(h, w) // MAX_SIDE)
    if k > 1:
        frame = frame[::k, ::k]
        h, w = frame.shape[:2]
    return frame[: h - h % 2, : w - w % 2]


def _resize(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize to (width, height): a frame whose size changed mid-episode."""
    w, h = size
    ys = (np.arange(h) * frame.shape[0] // h).clip(0, frame.shape[0] - 1)
    xs = (np.arange(w) * frame.shape[1] // w).clip(0, frame.shape[1] - 1)
    return frame[ys][:, xs]
