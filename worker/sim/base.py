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


class SimAdapter:
    """What the robot API needs from a simulator. Subclasses: robosuite, LIBERO.

    Contract: ``reset(seed)`` fully determines the initial scene from ``seed``; nothing else reads
    global random state between the reset and the end of the episode.
    """

    spec = None  # TaskSpec

    # -- episode -------------------------------------------------------------------------------
    def reset(self, seed: int) -> None:
        raise NotImplementedError

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
        """Track joint-space waypoints; returns control steps taken."""
        raise NotImplementedError

    def actuate_gripper(self, arm: int, close: bool) -> float:
        raise NotImplementedError
