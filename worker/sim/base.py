"""The interface between the robot API and a simulator.

Frames: adapters speak the simulator's own world frame; :class:`worker.robot.api.RobotAPI` converts to
the API's world frame (the robot0 base frame, as in the published CaP-X/ASPIRE API). Positions are in
metres, quaternions wxyz, images row 0 at the top.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class CameraFrame:
    """One rendered camera view.

    rgb: (H, W, 3) uint8; depth: (H, W) float32 metres along the optical axis; segmentation: (H, W)
    int32 object index into the adapter's ``object_labels()`` (-1 for background), or None;
    intrinsics: (3, 3); pose: (4, 4) camera-to-sim-world, OpenCV axes (x right, y down, z forward).
    """

    camera: str
    rgb: np.ndarray
    depth: np.ndarray | None
    segmentation: np.ndarray | None
    intrinsics: np.ndarray
    pose: np.ndarray


class StepBudgetSpent(Exception):
    """Raised by an adapter's control step when the episode has used its control-step budget without the
    benchmark's success check passing; the engine ends the episode with status STEP_BUDGET.

    Deliberately not a ValueError/TypeError, which the tracer reports as a bad argument."""

    def __init__(self, budget: int):
        self.budget = int(budget)
        super().__init__(
            f"the episode used its benchmark control-step budget ({self.budget} steps) before the task was done"
        )


class SimAdapter:
    """What the robot API needs from a simulator. Subclasses: robosuite, LIBERO.

    Contract: ``reset(seed)`` fully determines the initial scene from ``seed``; nothing else reads
    global random state between the reset and the end of the episode.

    Step accounting (the benchmark protocol, see worker/sim/catalog.py TaskSpec.step_budget): ``steps``
    counts the control steps the program has driven since the reset (the settling steps of the reset
    itself are not counted, as the LIBERO/OpenVLA evaluation does not count its wait steps); after every
    control step the benchmark's success check runs, and ``success_step`` keeps the first step at which
    it passed (None until then). While it has not passed, the control step that reaches ``step_budget``
    raises :class:`StepBudgetSpent` once that step is taken and checked.

    That is the benchmarks' evaluation protocol: LIBERO's (libero/lifelong/metric.py) and OpenVLA's
    (experiments/robot/libero/run_libero_eval.py) loops end an episode as a success at the first step
    whose ``done`` (LIBERO's success check) is true, within ``max_steps``; robomimic's rollouts of
    robosuite tasks (robomimic/utils/train_utils.py ``run_rollout``) OR ``_check_success()`` over the steps
    of the horizon and stop on it. What the program does after that step cannot undo the success.
    """

    spec = None  # TaskSpec
    steps: int = 0
    step_budget: int | None = None
    success_step: int | None = None
    #: Called with ``steps`` after every counted control step while an episode records
    #: (worker.robot.recording.Recorder.on_step); None otherwise. The engine sets and clears it.
    step_hook = None

    # -- episode -------------------------------------------------------------------------------
    def reset(self, seed: int, step_budget: int | None = None) -> None:
        """Start an episode: the scene of ``seed``, counters at zero, ``step_budget`` control steps
        allowed (None: no budget). Raises ValueError for a budget below 1."""
        raise NotImplementedError

    def control_steps(self) -> int:
        """Steps as the benchmark counts them: up to the first successful step, else all taken."""
        return self.success_step if self.success_step is not None else self.steps

    def succeeded(self) -> bool:
        """Whether the benchmark's success check passed after some control step of this episode
        (latched: what the program does afterwards cannot undo it)."""
        return self.success_step is not None

    def success(self) -> bool:
        raise NotImplementedError

    def reward(self) -> float:
        raise NotImplementedError

    def sim_time(self) -> float:
        raise NotImplementedError

    def close(self) -> None:
        pass

    # -- sensing ---------------------------------------------------------------------------------
    def render(
        self, camera: str, size: int | None = None, depth: bool = True, segmentation: bool = False
    ) -> CameraFrame:
        raise NotImplementedError

    def render_keyframe(self, camera: str, size: int | None = None) -> np.ndarray:
        """(H, W, 3) uint8 picture for the trace; may trade fidelity for speed."""
        return self.render(camera, size, depth=False).rgb

    def object_labels(self) -> list[str]:
        """Labels indexed by the values of ``CameraFrame.segmentation``."""
        raise NotImplementedError

    # -- robot -----------------------------------------------------------------------------------
    def base_pose(self, arm: int = 0) -> np.ndarray:
        """(4, 4) pose of robot ``arm``'s base in the sim world frame."""
        raise NotImplementedError

    def robot_qpos(self) -> np.ndarray:
        """The robots' own joints in the simulator's qpos layout, NaN at every other entry (objects)."""
        raise NotImplementedError

    def joint_positions(self, arm: int = 0) -> np.ndarray:
        """(7,) arm joint angles in radians."""
        raise NotImplementedError

    def ee_pose(self, arm: int = 0) -> np.ndarray:
        """(4, 4) pose of the grasp point between the fingertips, sim world frame."""
        raise NotImplementedError

    def gripper_width(self, arm: int = 0) -> float:
        """Distance between the fingers in metres."""
        raise NotImplementedError

    def drive_joints(self, targets: dict[int, np.ndarray], max_steps: int) -> int:
        """Track joint-space waypoints; returns control steps taken. Raises StepBudgetSpent at the
        step that spends the episode's budget."""
        raise NotImplementedError

    def actuate_gripper(self, arm: int, close: bool) -> float:
        """Close or open ``arm``'s gripper; returns the finger separation in metres. Raises
        StepBudgetSpent at the step that spends the episode's budget."""
        raise NotImplementedError
