"""Events the execution engine emits, and the sink protocol that persists them.

The engine never imports Django: it hands these plain records to a :class:`Sink`. ``runs.sink.DjangoSink``
writes rows and broadcasts after commit; tests and benchmarks use :class:`MemorySink` (or
:class:`NullSink` to keep nothing).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from worker.robot.status import CallStatus


@dataclass
class KeyframeRecord:
    """An image file the engine wrote into its media storage (worker.robot.media.MediaStorage). ``path`` is
    the name the storage gave it: a relative "/"-separated path such as ``runs/7/episodes/31/0001-x.jpg``."""

    path: str
    kind: str  # "frame" (a camera image) | "overlay" (annotations drawn on a frame)
    camera: str
    label: str
    width: int
    height: int


@dataclass
class CallRecord:
    """One primitive call, as DESIGN section 4 describes; logged even when the call fails."""

    seq: int
    primitive: str
    args: dict
    result: Any = None
    status: str = CallStatus.OK
    message: str = ""
    error: str = ""
    line: int = 0
    stack: list = field(default_factory=list)
    started_at: float = 0.0  # unix time, seconds
    duration_ms: float = 0.0
    sim_time: float = 0.0  # simulator seconds at the end of the call
    keyframes: list[KeyframeRecord] = field(default_factory=list)
    artifacts: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class EpisodeStart:
    task_key: str
    seed: int
    program_hash: str


@dataclass
class EpisodeResult:
    seed: int
    success: bool
    status: str
    error: str = ""
    error_line: int = 0
    reward: float = 0.0
    stdout: str = ""
    stderr: str = ""
    duration_s: float = 0.0
    sim_time: float = 0.0
    n_calls: int = 0
    program_hash: str = ""
    keyframes: list[KeyframeRecord] = field(default_factory=list)
    #: How the program was isolated: "bwrap+seccomp", "process (not contained)", or "" (never started).
    sandbox: str = ""
    #: Control steps (20 Hz) the program drove, as the benchmark counts them: up to the step at which the
    #: benchmark's success check first passed, else all it took (the reset's settling steps excluded).
    control_steps: int = 0
    #: The control-step budget the episode ran under (None: none, only the wall clock).
    step_budget: int | None = None
    #: The episode's video (EngineSettings.recording): the media storage's name of its MP4, "" for none.
    recording: str = ""
    #: worker.robot.recording.Recorder.index(): frame times and each call's [seq, t_start, t_end] on the
    #: video's clock; {} when the episode was not recorded.
    recording_index: dict = field(default_factory=dict)
    #: The episode's 3D view (EngineSettings.scene3d, worker.robot.scene3d): the media storage's name of its
    #: gzip'd JSON, "" for none.
    scene3d: str = ""
    #: The perception mode the episode ran with: "realistic" or "oracle" (EngineSettings.perception_mode).
    perception_mode: str = ""
    #: The API profile the program ran under ("native" or "published") and why (worker.robot.profiles).
    api_profile: str = ""
    api_profile_reason: str = ""


class Sink(Protocol):
    """Where the engine (worker.engine.run_episode) sends one episode's record as it happens.

    For each episode, in order: ``episode_started`` once, before the simulator is reset; ``call_recorded``
    for every robot API call as it finishes, in ``seq`` order, its keyframe images already written to
    the media storage (only when tracing is on); ``episode_finished`` once, whatever the ending (success,
    exception, timeout, sandbox failure, engine error). A sink may also define ``media_prefix(handle) ->
    str``: the name prefix in the media storage for the episode's keyframes (default ``keyframes/<random>``).
    An exception from ``episode_started`` or ``episode_finished`` reaches the engine's caller."""

    def episode_started(self, start: EpisodeStart) -> Any:
        """An episode begins; returns a handle the engine passes back with its calls and its result."""
        ...

    def call_recorded(self, handle: Any, record: CallRecord) -> None:
        """One call of the episode ``handle`` finished (it is logged even when the call failed)."""
        ...

    def episode_finished(self, handle: Any, result: EpisodeResult) -> None:
        """The episode ``handle`` ended; ``result`` says how, and whether the task was achieved."""
        ...


class MemorySink:
    """A Sink that keeps everything in lists; ``episodes[i]`` is ``{"start", "calls", "result"}``."""

    def __init__(self):
        self.episodes: list[dict] = []

    def episode_started(self, start):
        self.episodes.append({"start": start, "calls": [], "result": None})
        return len(self.episodes) - 1

    def call_recorded(self, handle, record):
        self.episodes[handle]["calls"].append(record)

    def episode_finished(self, handle, result):
        self.episodes[handle]["result"] = result


class NullSink:
    """A Sink that keeps nothing (benchmarks that time the engine alone)."""

    def episode_started(self, start):
        return None

    def call_recorded(self, handle, record):
        pass

    def episode_finished(self, handle, result):
        pass
