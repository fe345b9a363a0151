"""Grasp-planning primitives (see worker.robot.grasping for the planner itself)."""

from __future__ import annotations

import numpy as np

from . import geometry as geo
from . import grasping
from . import status as st
from .api_motion import SITE_TO_API
from .media import draw_grasps
from .primitive import primitive
from .tracer import CallContext


class GraspPrimitives:
    """Mixed into RobotAPI."""

    @primitive()
    def plan_grasp(self, ctx: CallContext, depth, intrinsics, mask=None, segmentation=None):
        """Plan parallel-jaw grasp candidates for one object seen by one camera.

        Candidates come from the object's back-projected points: approach directions along the
        object's principal axes and the viewing ray, closing directions around each, fingers placed on
        the extreme visible points, scored for antipodal contact normals, opening margin, centring and
        approach from the camera's side; candidates whose fingers or palm would pass through visible
        points are dropped. The far side of the object is unseen, so prefer top grasps where you can.

        Args:
            depth: (H, W) float32 depth in metres from get_observation.
            intrinsics: (3, 3) intrinsics of the same camera.
            mask: (H, W) bool mask of the object (e.g. a segment_text_prompt detection's "mask");
                ``segmentation`` is accepted as the published API's name for the same argument.

        Returns:
            (grasp_poses, grasp_scores): (K, 4, 4) float64 poses IN THE CAMERA FRAME, each the grasp
            point between the fingertips with z the approach direction and y the closing direction
            (the solve_ik convention), and (K,) float64 scores in [0, 1], best first. K can be 0.
            World pose of a grasp: pose_mat @ grasp_poses[i].

        Raises:
            ValueError: shapes do not match, no mask, or fewer than 20 valid object pixels.
        """
        if mask is None:
            mask = segmentation
        if mask is None:
            raise ValueError("give the object's mask (argument 'mask' or 'segmentation')")
        depth_arr = np.asarray(depth, dtype=np.float64)
        mask_arr = np.asarray(mask)
        if mask_arr.ndim == 3 and mask_arr.shape[-1] == 1:
            mask_arr = mask_arr[..., 0]
        if depth_arr.ndim == 3 and depth_arr.shape[-1] == 1:
            depth_arr = depth_arr[..., 0]
        if depth_arr.ndim != 2 or mask_arr.shape != depth_arr.shape:
            raise ValueError(f"mask shape {mask_arr.shape} must match the (H, W) depth shape {depth_arr.shape}")
        K = geo.as_array(intrinsics, (3, 3), "intrinsics")
        points = geo.backproject(depth_arr, K, mask_arr.astype(bool))
        poses, scores = grasping.plan_grasps(points)
        if len(poses) == 0:
            ctx.set_status(
                st.NO_DETECTION, f"no collision-free grasp fits the gripper on this object ({len(points)} points)"
            )
        ctx.artifact(
            "grasps",
            [
                {
                    "score": float(s),
                    "position_camera": np.round(p[:3, 3], 4).tolist(),
                    "approach_camera": np.round(p[:3, 2], 3).tolist(),
                    "closing_camera": np.round(p[:3, 1], 3).tolist(),
                }
                for p, s in zip(poses[:10], scores[:10])
            ],
        )
        frame = self._frame_for_depth(depth)
        if frame is not None and len(poses):
            ctx.keyframe(lambda: draw_grasps(frame.rgb, K, poses, scores), "overlay", frame.camera, "grasps")
            if self.scene3d is not None:  # the 3D view: the candidates placed by the camera that saw them
                T = self._to_api(frame.pose)
                self.scene3d.grasp_candidates(np.einsum("ij,kjl->kil", T, poses[:20]), scores[:20], 0)
        return poses, scores

    @primitive()
    def select_top_down_grasp(self, ctx: CallContext, grasp_poses, grasp_scores, pose_mat, max_tilt_deg: float = 30.0):
        """Pick the best-scoring grasp whose approach is within ``max_tilt_deg`` of straight down.

        A parallel-jaw grasp is the same grasp after a half turn about its approach axis; the version
        returned is the one closer to arm 0's current gripper orientation (less wrist rotation).

        Args:
            grasp_poses: (K, 4, 4) camera-frame grasps from plan_grasp.
            grasp_scores: (K,) their scores.
            pose_mat: (4, 4) camera-to-world pose of the camera they were planned in.
            max_tilt_deg: largest angle between the approach direction and world -z, degrees.

        Returns:
            {"pose": (4, 4) world-frame grasp, "position": (3,), "quaternion_wxyz": (4,),
             "score": float, "index": int into grasp_poses}, or None when no grasp is steep enough
            (status NO_DETECTION).
        """
        poses = np.asarray(grasp_poses, dtype=np.float64)
        scores = np.asarray(grasp_scores, dtype=np.float64).ravel()
        if poses.ndim != 3 or poses.shape[1:] != (4, 4) or len(poses) != len(scores):
            raise ValueError(f"grasp_poses must be (K, 4, 4) with K scores, got {poses.shape} and {scores.shape}")
        T = geo.as_array(pose_mat, (4, 4), "pose_mat")
        world = np.einsum("ij,kjl->kil", T, poses) if len(poses) else poses
        index = grasping.top_down_index(world, scores, np.radians(float(max_tilt_deg)))
        if index is None:
            ctx.set_status(
                st.NO_DETECTION,
                f"none of the {len(poses)} grasps approaches within {max_tilt_deg:g} degrees of vertical",
            )
            return None
        pose = world[index].copy()
        current = (self._to_api(self.adapter.ee_pose(0)) @ SITE_TO_API)[:3, :3]
        flipped = pose[:3, :3] @ np.diag([-1.0, -1.0, 1.0])
        if geo.rotation_angle(current, flipped) < geo.rotation_angle(current, pose[:3, :3]):
            pose[:3, :3] = flipped
        ctx.artifact(
            "selected",
            {"index": int(index), "score": float(scores[index]), "position": np.round(pose[:3, 3], 4).tolist()},
        )
        if self.scene3d is not None:
            shown = world.copy()
            shown[index] = pose
            self.scene3d.grasp_candidates(shown, scores, int(index), selected=True)
        return {
            "pose": pose,
            "position": pose[:3, 3].copy(),
            "quaternion_wxyz": geo.matrix_to_quat(pose[:3, :3]),
            "score": float(scores[index]),
            "index": int(index),
        }
