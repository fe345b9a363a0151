"""Run a robot program on seeds of a task: reset the simulator, serve the sandbox, trace, judge success.

Plain Python (no Django). One simulator per task is kept per process and reset per episode; the
program runs in a fresh sandbox process per episode (see worker.sandbox).
"""

from __future__ import annotations

import collections
import functools
import hashlib
import logging
import os
import threading
import time
import traceback
import uuid
from dataclasses import dataclass
from typing import Callable, Iterable

from worker.events import EpisodeResult, EpisodeStart, Sink
from worker.robot import status as st
from worker.robot.api import RobotAPI
from worker.robot.ik import IKSolver
from worker.robot.media import MediaStorage, MediaStore, as_storage
from worker.robot.motion import PlannerCache
from worker.robot.occupancy import UNKNOWN_SPACE, UNKNOWN_SPACE_POLICIES
from worker.robot.perception import check_perception_mode
from worker.robot.primitive import PUBLISHED
from worker.robot.profiles import AUTO, check_profile_choice, needs_initial_observation, resolve_profile
from worker.robot.recording import Recorder
from worker.robot.scene3d import Scene3D
from worker.robot.segmenter import default_segmenter
from worker.robot.tracer import Tracer
from worker.sandbox.host import NOT_JUDGED, ApiError, SandboxLimits, keep_spare, run_program
from worker.sim.base import StepBudgetSpent
from worker.sim.catalog import TaskSpec

log = logging.getLogger(__name__)

MAX_CACHED_SIMULATORS = 2
#: EngineSettings.step_budget value meaning "no step budget" (exploration and debugging; not comparable
#: with the benchmark's published success rates).
NO_STEP_BUDGET = 0
#: Largest step budget a run may ask for: 100,000 control steps is 83 simulated minutes at 20 Hz.
MAX_STEP_BUDGET = 100_000


@dataclass
class EngineSettings:
    """Per-run execution settings.

    wall_seconds: per-episode wall-clock limit (program + robot API time); memory_mb: sandbox address
    space cap; trace: record primitive calls; keyframes: write keyframe images (needs trace and a
    media storage); perception_mode: "realistic" (noisy depth, model-like segmentation) or "oracle"
    (the simulator's exact depth, masks and object names), see worker.robot.perception; depth_noise:
    depth sensor noise in realistic mode (oracle depth is always exact); step_budget: control steps
    (20 Hz) an episode may use before it ends STEP_BUDGET: None for the task's published budget
    (TaskSpec.step_budget), NO_STEP_BUDGET (0) for none, or a whole number 1..MAX_STEP_BUDGET;
    unknown_space: how motion planning treats space no camera of the episode has seen, "free"
    (default) or "occupied" (worker.robot.occupancy explains the choice); api_profile: the calling
    conventions the program runs under, "auto" (default: decided from the program), "native" or
    "published" (worker.robot.profiles); final_frame: also keep the final scene frame of a successful
    episode (failed episodes always keep one; agents' runs keep it for every episode so a model can see
    how each ended); recording: also record the episode as a video (the keyframe camera every few
    control steps and before and after every motion and gripper call, an H.264 MP4 with an index of
    frame times and each call's span, worker.robot.recording; needs trace and a media storage);
    scene3d: also keep the episode's 3D view (point clouds and masks' points the calls saw, grasp
    candidates, motion targets and planned paths, the executed gripper path and joint state over time,
    worker.robot.scene3d) when the episode keeps keyframes or a recording (needs trace and a media
    storage; no extra render: it reuses what the calls computed).
    Raises ValueError for any other perception_mode,
    step_budget, unknown_space or api_profile.
    """

    wall_seconds: float = 120.0
    memory_mb: int = 1024
    trace: bool = True
    keyframes: bool = True
    perception_mode: str = "realistic"
    depth_noise: bool = True
    step_budget: int | None = None
    unknown_space: str = UNKNOWN_SPACE
    api_profile: str = AUTO
    final_frame: bool = False
    recording: bool = False
    scene3d: bool = True

    def __post_init__(self):
        check_perception_mode(self.perception_mode)
        check_profile_choice(self.api_profile)
        if self.unknown_space not in UNKNOWN_SPACE_POLICIES:
            raise ValueError(f"unknown_space must be one of {UNKNOWN_SPACE_POLICIES}, not {self.unknown_space!r}")
        budget = self.step_budget
        if budget is not None and (
            isinstance(budget, bool) or not isinstance(budget, int) or not 0 <= budget <= MAX_STEP_BUDGET
        ):
            raise ValueError(
                f"step_budget must be None (the task's budget), {NO_STEP_BUDGET} (none) or a whole number of "
                f"control steps up to {MAX_STEP_BUDGET}, not {budget!r}"
            )

    def step_budget_for(self, spec: TaskSpec) -> int | None:
        """The control-step budget an episode of ``spec`` runs under (None: no budget)."""
        if self.step_budget is None:
            return spec.step_budget
        return None if self.step_budget == NO_STEP_BUDGET else self.step_budget


def program_hash(source: str) -> str:
    return hashlib.sha256(source.encode("utf-8")).hexdigest()


#: BLAS threads per worker process (numpy's and scipy's OpenBLAS), set once when the process builds its
#: first simulator. A worker runs one episode at a time on one thread and the pool runs about one worker
#: per core (`manage.py up`), so OpenBLAS's default of one thread per core only makes the processes'
#: matrix products compete for the same cores, and its idle threads spin while the simulator steps.
#: Measured on the 2-core machine (busy with other processes): a (65536, 3) @ (3, 3) point transform
#: 26.6 ms with two threads, 3.9 ms with one; the perceived-scene update of a Lift observation
#: (worker.robot.occupancy) 181 ms -> 85 ms. OpenBLAS computes each output element the same way
#: whatever the thread count (threads split the output), so results do not change.
BLAS_THREADS = 1
_blas_limited = False


def limit_blas_threads(threads: int = BLAS_THREADS) -> bool:
    """Cap this process's BLAS libraries at ``threads`` threads (once per process; threadpoolctl, which
    scikit-learn brings in). Returns whether a cap is in place; without threadpoolctl it logs and leaves
    the libraries' defaults."""
    global _blas_limited
    if not _blas_limited:
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:
            log.warning("threadpoolctl is not installed; BLAS keeps one thread per core in this worker")
            return False
        threadpool_limits(limits=threads, user_api="blas")
        _blas_limited = True
    return True


@functools.lru_cache(maxsize=64)
def _resolve_profile(choice: str, program: str) -> tuple[str, str]:
    """resolve_profile, remembered per (choice, program): the same program runs on many seeds, and
    reading it (an AST walk and a symbol table) costs about 5 ms of CPU per episode."""
    return resolve_profile(choice, program)


class _Simulators:
    """Simulator cache: building an env costs seconds, resetting it milliseconds. Each entry also
    holds the IK solver, motion planner and segmenter for that simulator, warmed up with the scene's
    object names so no episode pays for loading the embedding model.

    One cache per thread: an OSMesa context is current in the thread that created it and robosuite
    does not re-bind it per render, so a simulator must be rendered by the thread that built it.
    Worker processes run episodes on one thread, so in production this is one cache per process.
    """

    def __init__(self):
        self._cache: collections.OrderedDict[str, tuple] = collections.OrderedDict()

    def get(self, spec: TaskSpec):
        entry = self._cache.get(spec.key)
        if entry is None:
            while len(self._cache) >= MAX_CACHED_SIMULATORS:
                _, (old, *_) = self._cache.popitem(last=False)
                old.close()
            limit_blas_threads()
            entry = (make_adapter(spec), IKSolver(), PlannerCache(), default_segmenter())
            entry[3].warm([p for o in entry[0].scene_objects() for p in o.phrases()])
            self._cache[spec.key] = entry
        self._cache.move_to_end(spec.key)
        return entry

    def drop(self, spec: TaskSpec) -> None:
        entry = self._cache.pop(spec.key, None)
        if entry:
            try:
                entry[0].close()
            except Exception:
                log.exception("closing a broken simulator failed")


class _PerThread(threading.local):
    def __init__(self):
        self.simulators = _Simulators()


_local = _PerThread()


def simulators() -> _Simulators:
    return _local.simulators


def warm_up(task_keys: Iterable[str], log_to: logging.Logger | None = None) -> dict[str, float]:
    """Make this thread's first real episode as fast as the rest: for each task key, run the task's
    starter program once on its first debug seed, traced with keyframes and a recording into a
    temporary directory that is then deleted, results dropped. That builds and caches the simulator,
    IK solver, motion planner and segmenter (its embedding model) of the task here, imports and
    exercises everything an episode uses (robosuite, MuJoCo's GL context, the sandbox, JPEG and H.264
    encoders), and leaves the page cache warm.

    From then on this thread starts each episode's sandbox process while the previous episode finishes
    (worker.sandbox.host.keep_spare), as a production worker does.

    Call it on the thread that will run the episodes: a simulator is cached per thread (OSMesa).
    Returns {task key: seconds it took}; a task that is unknown or has no starter program is skipped
    (logged), and an engine failure is logged, never raised: a worker must start even if warming fails."""
    import shutil
    import tempfile

    from worker.events import NullSink
    from worker.sim.catalog import get_task, starter_source

    logger = log_to or log
    keep_spare(True)
    took: dict[str, float] = {}
    for key in task_keys:
        started = time.monotonic()
        try:
            spec = get_task(key)
            program = starter_source(spec)
            if not program:
                logger.warning("warm-up: %s has no starter program; skipped", key)
                continue
            media = tempfile.mkdtemp(prefix="aspire-warm-up-")
            try:
                result = run_episode(
                    spec, program, spec.debug_seeds[0], NullSink(), EngineSettings(recording=True), media
                )
            finally:
                shutil.rmtree(media, ignore_errors=True)
        except Exception:
            logger.exception("warm-up of %s failed; the first episode of it will be slower", key)
            continue
        if result.status == st.INTERNAL_ERROR:  # the engine itself failed (logged by run_episode)
            logger.error("warm-up of %s failed: %s; the first episode of it will be slower", key, result.error)
            continue
        took[key] = round(time.monotonic() - started, 2)
        logger.info("warm-up: %s ready in %.1f s (its episode ended %s)", key, took[key], result.status)
    return took


def make_adapter(spec: TaskSpec):
    if spec.benchmark == "robosuite":
        from worker.sim.robosuite_env import RobosuiteAdapter

        return RobosuiteAdapter(spec)
    if spec.benchmark == "libero":
        from worker.sim.libero_env import LiberoAdapter

        return LiberoAdapter(spec)
    raise ValueError(f"no simulator adapter for benchmark {spec.benchmark!r}")


def run_episode(
    spec: TaskSpec,
    program: str,
    seed: int,
    sink: Sink,
    settings: EngineSettings | None = None,
    media: MediaStorage | str | os.PathLike | None = None,
) -> EpisodeResult:
    """Run ``program`` on one seed; every outcome (including engine failures) becomes a result.

    ``media``: where keyframe images go (worker.robot.media.MediaStorage; a directory path means the
    local filesystem there); None writes none. A storage that fails while writing ends the episode
    as INTERNAL_ERROR with the storage's error."""
    settings = settings or EngineSettings()
    media = as_storage(media)
    digest = program_hash(program)
    handle = sink.episode_started(EpisodeStart(spec.key, int(seed), digest))
    started = time.monotonic()
    try:
        result = _run(spec, program, int(seed), sink, handle, settings, media, digest)
    except Exception as exc:
        log.exception("episode of %s seed %s failed inside the engine", spec.key, seed)
        simulators().drop(spec)  # a simulator that raised may be in any state; rebuild it next time
        result = EpisodeResult(
            seed=int(seed),
            success=False,
            status=st.INTERNAL_ERROR,
            error=f"{type(exc).__name__}: {exc}",
            stderr=traceback.format_exc()[-4000:],
            program_hash=digest,
        )
    result.duration_s = round(time.monotonic() - started, 3)
    result.perception_mode = settings.perception_mode
    if not result.api_profile:
        result.api_profile, result.api_profile_reason = _resolve_profile(settings.api_profile, program)
    sink.episode_finished(handle, result)
    return result


def _run(spec, program, seed, sink, handle, settings, storage, digest) -> EpisodeResult:
    profile, profile_reason = _resolve_profile(settings.api_profile, program)
    adapter, ik, planners, segmenter = simulators().get(spec)
    budget = settings.step_budget_for(spec)
    adapter.reset(seed, step_budget=budget)
    media = None
    prefix = ""
    if settings.trace and (settings.keyframes or settings.recording) and storage is not None:
        prefix_fn: Callable | None = getattr(sink, "media_prefix", None)
        prefix = prefix_fn(handle) if prefix_fn else f"keyframes/{uuid.uuid4().hex}"
        if settings.keyframes:
            media = MediaStore(storage, prefix)
    frames = _FrameCache(adapter)
    recorder = None
    if settings.trace and settings.recording and storage is not None:
        recorder = Recorder(lambda: frames()[0], adapter.sim_time, lambda: adapter.steps)
        adapter.step_hook = recorder.on_step
    try:
        tracer = Tracer(
            enabled=settings.trace,
            media=media,
            emit=lambda record: sink.call_recorded(handle, record),
            capture_frame=lambda: (None, ""),
            sim_time=adapter.sim_time,
            recorder=recorder,
        )
        api = RobotAPI(
            adapter,
            tracer,
            ik=ik,
            planners=planners,
            segmenter=segmenter,
            perception_mode=settings.perception_mode,
            depth_noise=settings.depth_noise,
            episode_seed=seed,
            api_profile=profile,
        )
        api.unknown_space = settings.unknown_space
        scene = None
        if prefix and settings.scene3d:
            scene = Scene3D(lambda: tracer.seq, adapter.sim_time, api.scene3d_state, spec.arms)
            scene.sample()  # where the robot starts
            api.scene3d = scene
            adapter.step_hook = _fan_out([recorder.on_step if recorder else None, scene.on_step])
        frames.capture = api.capture_frame
        tracer.capture_frame = frames

        def dispatch(name, args, kwargs, line, stack):
            if tracer.over_budget():
                raise ApiError(
                    f"the episode recorded more than {tracer.max_bytes // (1024 * 1024)} MiB of trace; "
                    "the program was stopped",
                    status=st.TRACE_LIMIT,
                    terminal=True,
                )
            try:
                return api.dispatch(name, args, kwargs, line, stack)
            except StepBudgetSpent as exc:  # the call ends at the step that spent the budget; so does the program
                raise ApiError(f"{exc}; the program was stopped", status=st.STEP_BUDGET, terminal=True) from None

        program_globals, task_facts = None, None
        if profile == PUBLISHED:
            program_globals, task_facts = _published_globals(spec, program, api), {"task_language": spec.instruction}
        outcome = run_program(
            program,
            api.sandbox_specs(),
            dispatch,
            SandboxLimits(wall_seconds=settings.wall_seconds, memory_mb=settings.memory_mb),
            program_globals=program_globals,
            task_facts=task_facts,
        )
        judged = outcome.status not in NOT_JUDGED
        # The benchmark's protocol: success is the first control step at which its check passed, within the
        # budget (worker/sim/base.py SimAdapter); what the program did afterwards cannot undo it.
        success = judged and adapter.succeeded()
        keyframes = []
        if media is not None and (not success or settings.final_frame):
            # The scene as the failed episode left it; successful episodes keep their per-call frames only.
            frame, camera = frames()
            keyframes.append(media.save(frame, kind="frame", camera=camera, label="final", stem="final"))
        recording, recording_index = "", {}
        if recorder is not None:
            recorder.capture()  # the scene as the episode left it
            data, recording_index = recorder.finish()
            if data:
                recording = storage.save(f"{prefix}/recording.mp4", data, "video/mp4")
        scene3d = ""
        if scene is not None:
            scene3d = storage.save(f"{prefix}/scene3d.json.gz", scene.finish(), "application/gzip")
        return EpisodeResult(
            seed=seed,
            success=bool(success),
            status=outcome.status,
            error=outcome.error,
            error_line=outcome.line,
            reward=adapter.reward() if judged else 0.0,
            stdout=outcome.stdout,
            stderr=outcome.stderr,
            sim_time=round(adapter.sim_time(), 4),
            n_calls=outcome.api_calls,
            program_hash=digest,
            keyframes=keyframes,
            sandbox=outcome.sandbox,
            control_steps=adapter.control_steps(),
            step_budget=budget,
            api_profile=profile,
            api_profile_reason=profile_reason,
            recording=recording,
            recording_index=recording_index,
            scene3d=scene3d,
        )

    finally:
        adapter.step_hook = None  # the adapter is reused by the next episode
        if recorder is not None:
            recorder.close()


def _fan_out(hooks: list) -> Callable[[int], None]:
    """One adapter step hook calling each of ``hooks`` (None entries skipped) in order."""
    hooks = [h for h in hooks if h is not None]
    if len(hooks) == 1:
        return hooks[0]

    def hook(steps: int) -> None:
        for h in hooks:
            h(steps)

    return hook


class _FrameCache:
    """The keyframe camera rendered at most once per control step: the recording's frames and the
    tracer's before/after keyframes of the same moment share one render."""

    def __init__(self, adapter):
        self.adapter = adapter
        self.capture = None  # set to RobotAPI.capture_frame once the API exists
        self._key = None
        self._value = None

    def __call__(self) -> tuple:
        key = (self.adapter.steps, self.adapter.sim_time())
        if key != self._key or self._value is None:
            self._value = self.capture()
            self._key = key
        return self._value


def _published_globals(spec: TaskSpec, program: str, api: RobotAPI) -> dict:
    """The published runner's globals for a program: RESULT, and obs / INPUTS (an observation of every
    camera taken before the first line, traced as a get_observation call at line 0, with the raw
    runner's (H, W, 1) depth and "full_prompt") when the program reads them without assigning them."""
    out: dict = {"RESULT": None}
    if needs_initial_observation(program):
        observation = api.dispatch("get_observation", [], {}, 0, [])
        for value in observation.values():
            depth = value.get("images", {}).get("depth") if isinstance(value, dict) else None
            if depth is not None and depth.ndim == 2:  # two camera names can share one entry
                value["images"]["depth"] = depth[..., None]
        observation["full_prompt"] = spec.instruction
        out.update(obs=observation, INPUTS=observation)
    return out


def run_episodes(
    spec: TaskSpec,
    program: str,
    seeds: Iterable[int],
    sink: Sink,
    settings: EngineSettings | None = None,
    media: MediaStorage | str | os.PathLike | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> list[EpisodeResult]:
    """Run ``program`` on each seed in order (``media`` as for :func:`run_episode`);
    ``should_stop()`` is checked between episodes."""
    media = as_storage(media)
    results = []
    for seed in seeds:
        if should_stop is not None and should_stop():
            break
        results.append(run_episode(spec, program, seed, sink, settings, media))
    return results
