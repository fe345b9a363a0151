"""The published CaP-X / ASPIRE reduced API's calling conventions, offered under the "published" API profile.

Programs written for the public reduced API (NVlabs/ASPIRE aspire/sim/cap/integrations/franka/
control_reduced.py, control_reduced_skill_library.py, libero_reduced.py; capgym/cap-x capx/integrations/
franka/) run here unmodified under the published profile (worker.robot.profiles decides it from the
program, or a run sets it). This mixin holds

- the functions only the published API has (goto_pose, goto_home_joint_position, point_prompt_molmo,
  plan_grasp_from_point_clouds, subsample_point_cloud, filter_noise, normalize_vector,
  rotation_matrix_to_quaternion), and
- the published forms of functions whose native form differs (select_top_down_grasp's tuple,
  solve_ik's best effort, pixel_to_world_point's (u, v, z) form, depth_to_point_cloud's organised
  cloud, interpolate_segment's list with ``step``, the published keyword names), which replace the
  native ones under that profile only.

Everything else (perception, motion, grippers) is shared: the same camera-only perception, collision-
checked motion and statuses as the native API. Frames and units as in worker.robot.api: world = robot0
base frame, metres, radians, quaternions [w, x, y, z].
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from . import geometry as geo
from . import grasping
from . import status as st
from .primitive import PUBLISHED, primitive
from .tracer import CallContext

#: The published filter_noise's DBSCAN parameters (libero_reduced.py): neighbourhood radius in metres
#: and the neighbours (the point included) that make a core point.
NOISE_EPS = 0.005
NOISE_MIN_SAMPLES = 10
#: filter_noise's radius is at least this many median nearest-neighbour spacings (see noise_radius):
#: a surface sampled on a grid has ~12 points within 2.5 spacings, above NOISE_MIN_SAMPLES.
NOISE_SPACINGS = 2.5
#: Largest cloud filter_noise / plan_grasp_from_point_clouds accept (points).
MAX_CLOUD_POINTS = 2_000_000


def _as_cloud(points, name: str) -> np.ndarray:
    """(N, 3) float64 from an (N, 3) or organised (H, W, 3) cloud; raises ValueError."""
    arr = np.asarray(points, dtype=np.float64)
    if arr.ndim == 3 and arr.shape[-1] == 3:
        arr = arr.reshape(-1, 3)
    if arr.ndim != 2 or arr.shape[1] != 3:
        raise ValueError(f"{name} must be (N, 3) points, got shape {arr.shape}")
    if len(arr) > MAX_CLOUD_POINTS:
        raise ValueError(f"{name} has {len(arr)} points; at most {MAX_CLOUD_POINTS}")
    return arr


def _depth_image(depth, name: str = "depth") -> np.ndarray:
    """(H, W) float64 metres from an (H, W) or (H, W, 1) depth image; raises ValueError."""
    arr = np.asarray(depth, dtype=np.float64)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim != 2:
        raise ValueError(f"{name} must be (H, W) or (H, W, 1), got shape {arr.shape}")
    return arr


def interior_pixel(mask: np.ndarray) -> tuple[int, int] | None:
    """(x, y) pixel of a mask farthest from its boundary (a point well inside the object), or None."""
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return None
    distance = ndimage.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(distance)), distance.shape)
    return int(x), int(y)


def noise_radius(points: np.ndarray, tree: cKDTree) -> float:
    """DBSCAN's radius for a cloud: NOISE_EPS, or NOISE_SPACINGS times the cloud's median spacing
    between nearest neighbours when that is larger. The published 5 mm was set for 512 x 800 images;
    these cameras render fewer pixels (and programs subsample), so at a fixed 5 mm every point of a
    sparser cloud would count as noise."""
    if len(points) < 2:
        return NOISE_EPS
    distance, _ = tree.query(points, k=2)
    return max(NOISE_EPS, NOISE_SPACINGS * float(np.median(distance[:, 1])))


def non_noise(points: np.ndarray, eps: float | None = None, min_samples: int = NOISE_MIN_SAMPLES) -> np.ndarray:
    """Boolean (N,) mask of the points DBSCAN (Ester et al. 1996) does not call noise: core points (at
    least ``min_samples`` points, itself included, within ``eps``; default :func:`noise_radius`) and
    points within ``eps`` of one."""
    if len(points) == 0:
        return np.zeros(0, dtype=bool)
    tree = cKDTree(points)
    eps = noise_radius(points, tree) if eps is None else eps
    counts = tree.query_ball_point(points, eps, return_length=True)
    core = counts >= min_samples
    if not core.any():
        return core
    distance, _ = cKDTree(points[core]).query(points, k=1, distance_upper_bound=eps)
    return core | np.isfinite(distance)


class PublishedPrimitives:
    """Mixed into RobotAPI: the published reduced API's own functions and forms (module docstring)."""

    # -- motion ------------------------------------------------------------------------------------
    @primitive(profiles=(PUBLISHED,), name="solve_ik")
    def solve_ik_published(self, ctx: CallContext, position, quaternion_wxyz):
        """Inverse kinematics for arm 0's grasp point (the published reduced API's form).

        Args:
            position: (3,) grasp-point target in world frame, metres (the published API's TCP target;
                the hand sits 0.107 m behind it along the approach axis).
            quaternion_wxyz: (4,) orientation [w, x, y, z]; [0, 1, 0, 0] points the gripper down.

        Returns:
            (7,) float64 joint angles in radians. Like the published API this never returns None:
            when no configuration reaches the pose within 1 mm / 0.01 rad the closest one found is
            returned and the trace marks the call IK_FAILED with the residuals.

        Raises:
            ValueError: wrong shapes or non-finite values.
        """
        return self._solve_ik(ctx, 0, position, quaternion_wxyz, best_effort=True)

    @primitive(profiles=(PUBLISHED,), name="solve_ik_arm0")
    def solve_ik_arm0_published(self, ctx: CallContext, position, quaternion_wxyz):
        """solve_ik for arm 0 (published form: best-effort joints, never None)."""
        return self._solve_ik(ctx, 0, position, quaternion_wxyz, best_effort=True)

    @primitive(profiles=(PUBLISHED,), name="solve_ik_arm1", min_arms=2)
    def solve_ik_arm1_published(self, ctx: CallContext, position, quaternion_wxyz):
        """solve_ik for arm 1, target in the world frame (robot0's base), as the published API takes it;
        best-effort joints, never None."""
        return self._solve_ik(ctx, 1, position, quaternion_wxyz, best_effort=True)

    @primitive(after_frame=True, profiles=(PUBLISHED,))
    def goto_pose(self, ctx: CallContext, position, quaternion_wxyz, z_approach: float = 0.0) -> str:
        """Move arm 0's grasp point to a pose (blocking), first to ``z_approach`` metres above it.

        As the published LIBERO reduced API does it: with z_approach > 0 the arm first goes to
        position + [0, 0, z_approach] (world +z, whatever the gripper's orientation) with the same
        orientation, then to the pose. Each leg is solve_ik + a collision-checked move_to_joints.

        Args:
            position: (3,) world-frame grasp-point position, metres. quaternion_wxyz: (4,) [w, x, y, z].
            z_approach: height of the approach point above the target, metres (>= 0).

        Returns:
            The last leg's status: "REACHED", "IK_FAILED", "PLANNING_ERROR", "COLLISION" or
            "NOT_REACHED" (see move_to_joints); the published API returns None, so programs ignore it.

        Raises:
            ValueError: wrong shapes, a negative or non-finite z_approach.
        """
        pos = geo.as_array(position, (3,), "position")
        lift = float(z_approach)
        if not np.isfinite(lift) or lift < 0:
            raise ValueError(f"z_approach must be a non-negative number of metres, got {z_approach!r}")
        if lift > 0:
            status = self._move_to_pose(ctx, 0, pos + [0.0, 0.0, lift], quaternion_wxyz, True)
            if status not in (st.REACHED, st.NOT_REACHED):
                return status
        return self._move_to_pose(ctx, 0, pos, quaternion_wxyz, True)

    @primitive(after_frame=True, profiles=(PUBLISHED,))
    def goto_home_joint_position(self, ctx: CallContext) -> str:
        """Move arm 0 back to its joint configuration at the start of the episode (blocking); the
        gripper keeps its command. Returns the move's status (see move_to_joints)."""
        return self._move(ctx, {0: self._home_joints[0].copy()})

    # -- perception ----------------------------------------------------------------------------------
    @primitive(profiles=(PUBLISHED,))
    def point_prompt_molmo(self, ctx: CallContext, image, text_prompt: str) -> dict:
        """Point at what a text prompt describes, in the published API's form.

        The published API asks a Molmo vision-language model server; there is none here, so the
        point is answered from this API's segmenter: the best segment_text_prompt detection of the
        prompt, and its pixel farthest from the mask's boundary. Limits: it finds only what a text
        prompt finds (object names and colours, not spatial phrases like "the left handle"), and
        with realistic perception it can miss or pick the wrong object as segment_text_prompt can.

        Args:
            image: (H, W, 3) uint8 image exactly as returned by get_observation.
            text_prompt: what to point at.

        Returns:
            {text_prompt: (x, y)}: column and row as ints; {text_prompt: (None, None)} when nothing
            matches (status NO_DETECTION).

        Raises:
            ValueError: an empty prompt, or an image that is not from get_observation.
        """
        if not isinstance(text_prompt, str) or not text_prompt.strip():
            raise ValueError("text_prompt must be a non-empty string")
        frame = self._image_frame(image, "point_prompt_molmo")
        found = self.segmenter.segment_text(frame, self._objects(), text_prompt, **self._segmenter_options(frame))
        point = interior_pixel(found[0].as_dict()["mask"]) if found else None
        if point is None:
            ctx.set_status(st.NO_DETECTION, f"nothing in the {frame.camera} image matched {text_prompt!r}")
            return {text_prompt: (None, None)}
        ctx.artifact("point", {"x": point[0], "y": point[1], "score": float(found[0].as_dict()["score"])})
        return {text_prompt: point}

    @primitive(profiles=(PUBLISHED,))
    def detect_object_owlvit(self, ctx: CallContext, rgb, text) -> list[dict]:
        """Open-vocabulary detection boxes for a text query (the published OWL-ViT form, used by the
        published TwoArmLift API), answered from this API's segmenter (no OWL-ViT model here).

        Args:
            rgb: (H, W, 3) uint8 image exactly as returned by get_observation. text: what to find.

        Returns:
            list of {"box": [x1, y1, x2, y2] pixel floats, "label": text, "score": float in [0, 1]},
            best first; [] when nothing matches (status NO_DETECTION).
        """
        if not isinstance(text, str) or not text.strip():
            raise ValueError("text must be a non-empty string")
        frame = self._image_frame(rgb, "detect_object_owlvit")
        found = [
            d.as_dict()
            for d in self.segmenter.segment_text(frame, self._objects(), text, **self._segmenter_options(frame))
        ]
        self._annotate_detections(ctx, frame, found, text)
        return [{"box": [float(v) for v in d["box"]], "label": text, "score": float(d["score"])} for d in found]

    @primitive(profiles=(PUBLISHED,))
    def segment_sam2(self, ctx: CallContext, rgb, box=None) -> list[dict]:
        """Masks of what lies in a box, or of the whole image (the published SAM2 form), answered from this
        API's segmenter with point prompts: the box's centre, or a 6 x 6 grid over the image.

        Args:
            rgb: (H, W, 3) uint8 image exactly as returned by get_observation.
            box: [x1, y1, x2, y2] pixels, or None for the whole image.

        Returns:
            list of {"mask": (H, W) bool, "score": float}, best first; [] when only background is there.
        """
        frame = self._image_frame(rgb, "segment_sam2")
        h, w = frame.rgb.shape[:2]
        if box is None:
            xs, ys = np.meshgrid(np.linspace(0, w - 1, 8)[1:-1], np.linspace(0, h - 1, 8)[1:-1])
            points = np.stack([xs.ravel(), ys.ravel()], axis=1)
        else:
            x1, y1, x2, y2 = geo.as_array(box, (4,), "box")
            points = np.array([[np.clip((x1 + x2) / 2.0, 0, w - 1), np.clip((y1 + y2) / 2.0, 0, h - 1)]])
        found = [
            d.as_dict()
            for d in self.segmenter.segment_points(frame, self._objects(), points, **self._segmenter_options(frame))
        ]
        found.sort(key=lambda d: -d["score"])
        self._annotate_detections(ctx, frame, found, "sam2" if box is None else "sam2 box")
        return [{"mask": d["mask"], "score": float(d["score"])} for d in found]

    # -- geometry ------------------------------------------------------------------------------------
    @primitive(profiles=(PUBLISHED,), name="pixel_to_world_point")
    def pixel_to_world_point_published(self, ctx: CallContext, u, v, z, intrinsics, extrinsics) -> np.ndarray:
        """The 3-D point at pixel (u, v) with depth z (the published form).

        Args:
            u: column (x) in pixels. v: row (y) in pixels. z: depth in metres at that pixel
                (e.g. depth[v, u]). intrinsics: (3, 3). extrinsics: (4, 4) camera-to-world (pose_mat).

        Returns:
            (3,) float64 point in the frame extrinsics maps to (world for pose_mat), metres.

        Raises:
            ValueError: non-finite or non-positive z, or wrong shapes.
        """
        u, v, z = float(u), float(v), float(z)
        if not np.isfinite(z) or z <= 0 or not (np.isfinite(u) and np.isfinite(v)):
            raise ValueError(f"no valid depth: z = {z} m at pixel ({u}, {v})")
        K = geo.as_array(intrinsics, (3, 3), "intrinsics")
        cam = np.array([(u - K[0, 2]) * z / K[0, 0], (v - K[1, 2]) * z / K[1, 1], z])
        return geo.transform_points(geo.as_array(extrinsics, (4, 4), "extrinsics"), cam)[0]

    @primitive(profiles=(PUBLISHED,), name="depth_to_point_cloud")
    def depth_to_point_cloud_published(self, ctx: CallContext, depth_img, intrinsics) -> np.ndarray:
        """Organised point cloud of a depth image in the CAMERA frame (the published form).

        Args:
            depth_img: (H, W) or (H, W, 1) metres. intrinsics: (3, 3).

        Returns:
            (H, W, 3) float64 camera-frame points (OpenCV axes), one per pixel; pixels without valid
            depth (0.0) give [0, 0, 0]. Flatten with reshape(-1, 3) and drop points with z <= 0.
        """
        depth = np.nan_to_num(_depth_image(depth_img, "depth_img"), nan=0.0)
        K = geo.as_array(intrinsics, (3, 3), "intrinsics")
        h, w = depth.shape
        xs, ys = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
        return np.stack([(xs - K[0, 2]) * depth / K[0, 0], (ys - K[1, 2]) * depth / K[1, 1], depth], axis=-1)

    @primitive(profiles=(PUBLISHED,), name="mask_to_world_points")
    def mask_to_world_points_published(self, ctx: CallContext, mask, depth, intrinsics, extrinsics) -> np.ndarray:
        """mask_to_world_points with the published argument names: (mask, depth, intrinsics, extrinsics);
        depth may be (H, W, 1). Returns (N, 3) world-frame points, (0, 3) for an empty mask."""
        depth_arr = _depth_image(depth)
        mask_arr = np.asarray(mask)
        if mask_arr.ndim == 3 and mask_arr.shape[-1] == 1:
            mask_arr = mask_arr[..., 0]
        return self.mask_to_world_points(ctx, mask_arr, depth_arr, intrinsics, extrinsics)

    @primitive(profiles=(PUBLISHED,), name="transform_points")
    def transform_points_published(self, ctx: CallContext, points, transform_matrix) -> np.ndarray:
        """Apply a (4, 4) transform to (N, 3) or organised (H, W, 3) points; returns the same shape."""
        pts = np.asarray(points, dtype=np.float64)
        if pts.ndim < 1 or pts.shape[-1] != 3:
            raise ValueError(f"points must be (N, 3) or (H, W, 3), got shape {pts.shape}")
        flat = pts.reshape(-1, 3)
        return geo.transform_points(geo.as_array(transform_matrix, (4, 4), "transform_matrix"), flat).reshape(pts.shape)

    @primitive(profiles=(PUBLISHED,), name="decompose_transform")
    def decompose_transform_published(self, ctx: CallContext, T) -> tuple:
        """(position (3,), quaternion_wxyz (4,)) of a (4, 4) pose (published argument name ``T``)."""
        return self.decompose_transform(ctx, T)

    @primitive(profiles=(PUBLISHED,))
    def rotation_matrix_to_quaternion(self, ctx: CallContext, R) -> np.ndarray:
        """Unit quaternion [w, x, y, z] (w >= 0) of a (3, 3) rotation matrix.

        Raises:
            ValueError: R is not (3, 3) or not a rotation.
        """
        rot = geo.as_array(R, (3, 3), "R")
        if not np.allclose(rot.T @ rot, np.eye(3), atol=1e-3) or np.linalg.det(rot) < 0:
            raise ValueError("R is not a rotation matrix")
        return geo.matrix_to_quat(rot)

    @primitive(profiles=(PUBLISHED,))
    def normalize_vector(self, ctx: CallContext, v) -> np.ndarray:
        """v / |v| as float64; v unchanged when its norm is below 1e-6 (the published rule)."""
        arr = np.asarray(v, dtype=np.float64)
        norm = float(np.linalg.norm(arr))
        return arr if norm < 1e-6 else arr / norm

    @primitive(profiles=(PUBLISHED,), name="interpolate_segment")
    def interpolate_segment_published(self, ctx: CallContext, p1, p2, step: float = 0.03) -> list:
        """Points from p1 to p2, both included, at most ``step`` metres apart (the published form).

        Args:
            p1, p2: equal-shape vectors, e.g. (3,) positions in metres.
            step: largest spacing in metres (> 0); default 0.03 as published.

        Returns:
            list of ceil(|p2 - p1| / step) + 1 float64 arrays shaped like p1 ([p1] when p1 and p2 are
            less than 1e-6 apart).
        """
        a = np.asarray(p1, dtype=np.float64)
        b = np.asarray(p2, dtype=np.float64)
        if a.shape != b.shape or a.ndim != 1:
            raise ValueError(f"p1 and p2 must be vectors of one shape, got {a.shape} and {b.shape}")
        step = float(step)
        if not step > 0:
            raise ValueError("step must be positive")
        distance = float(np.linalg.norm(b - a))
        if distance < 1e-6:
            return [a]
        n = int(np.ceil(distance / step))
        if n > 100_000:
            raise ValueError(f"{n + 1} points requested; use a larger step")
        return [a + (b - a) * t for t in np.linspace(0.0, 1.0, n + 1)]

    @primitive(profiles=(PUBLISHED,))
    def subsample_point_cloud(self, ctx: CallContext, pc, max_points: int = 10000) -> np.ndarray:
        """At most ``max_points`` of the (N, 3) points, drawn without replacement (seeded by the
        episode, so a replay draws the same); the cloud itself when it is no larger."""
        pts = _as_cloud(pc, "pc")
        limit = int(max_points)
        if limit < 1:
            raise ValueError("max_points must be at least 1")
        if len(pts) <= limit:
            return pts
        rng = np.random.default_rng([self.episode_seed, len(pts), limit])
        return pts[np.sort(rng.choice(len(pts), size=limit, replace=False))]

    @primitive(profiles=(PUBLISHED,))
    def filter_noise(self, ctx: CallContext, points, colors=None) -> tuple:
        """Drop isolated points, as the published API's DBSCAN (eps 0.005 m, 10 samples) does; the radius
        grows to 2.5 median point spacings on clouds sparser than the published cameras' (noise_radius).

        Args:
            points: (N, 3) metres. colors: optional (N, 3) per-point colours, filtered alike.

        Returns:
            (points (M, 3), colors (M, 3) or None): the points DBSCAN does not call noise.
        """
        pts = _as_cloud(points, "points")
        keep = non_noise(pts)
        ctx.artifact("filter_noise", {"points": int(len(pts)), "kept": int(keep.sum())})
        if len(pts) and not keep.any():
            ctx.set_status(st.NO_DETECTION, f"all {len(pts)} points are isolated (noise)")
        if colors is None:
            return pts[keep], None
        cols = np.asarray(colors)
        if cols.shape[0] != len(pts):
            raise ValueError(f"colors must have one row per point ({len(pts)}), got shape {cols.shape}")
        return pts[keep], cols[keep]

    # -- grasps ----------------------------------------------------------------------------------------
    @primitive(profiles=(PUBLISHED,), name="plan_grasp")
    def plan_grasp_published(self, ctx: CallContext, depth, intrinsics, segmentation):
        """Grasp candidates for the object under ``segmentation`` (the published form).

        Args:
            depth: (H, W) or (H, W, 1) metres. intrinsics: (3, 3). segmentation: (H, W) or (H, W, 1)
                bool / 0-1 mask of the object.

        Returns:
            (grasp_poses (K, 4, 4) camera frame, grasp_scores (K,)): the same candidates as the native
            plan_grasp (grasp point between the fingertips, z the approach, y the closing direction).

        Raises:
            AssertionError: no grasp candidate (as the published API does; programs catch it).
            ValueError: shapes do not match or fewer than 20 valid object pixels.
        """
        poses, scores = self.plan_grasp(ctx, depth, intrinsics, mask=segmentation)
        if len(poses) == 0:
            raise AssertionError("No grasp candidates found")
        return poses, scores

    @primitive(profiles=(PUBLISHED,))
    def plan_grasp_from_point_clouds(self, ctx: CallContext, pc_full, pc_segment):
        """Grasp candidates for an object given as points (the published LIBERO form).

        Args:
            pc_full: (N, 3) or (H, W, 3) points of the scene, in the same frame as pc_segment (checked
                for shape; this planner uses the object's points, and the motion planner the scene).
            pc_segment: (M, 3) points of the object, M >= 20; points with z = 0 in a camera-frame
                cloud (no depth) are dropped.

        Returns:
            (grasp_poses (K, 4, 4), grasp_scores (K,)) in the clouds' frame, best first; each pose the
            grasp point between the fingertips, z the approach direction, y the closing direction. The
            planner prefers approaches from the frame origin's side (the camera for a camera-frame
            cloud).

        Raises:
            AssertionError: no grasp candidate. ValueError: wrong shapes or too few points.
        """
        _as_cloud(pc_full, "pc_full")
        obj = _as_cloud(pc_segment, "pc_segment")
        obj = obj[np.isfinite(obj).all(axis=1) & (np.abs(obj).sum(axis=1) > 0)]
        poses, scores = grasping.plan_grasps(obj)
        ctx.artifact(
            "grasps",
            [{"score": float(s), "position": np.round(p[:3, 3], 4).tolist()} for p, s in zip(poses[:10], scores[:10])],
        )
        if len(poses) == 0:
            ctx.set_status(st.NO_DETECTION, f"no grasp fits the gripper on these {len(obj)} points")
            raise AssertionError("No grasp candidates found")
        return poses, scores

    @primitive(profiles=(PUBLISHED,), name="select_top_down_grasp")
    def select_top_down_grasp_published(self, ctx: CallContext, grasps, scores, cam_to_world, vertical_threshold=0.8):
        """The best-scoring grasp that points down (the published form).

        A grasp qualifies when its approach direction (world frame) has a downward component above
        ``vertical_threshold`` (-approach_z > 0.8: within about 37 degrees of straight down). As in the
        native form, of a grasp and its half turn about the approach axis the one needing less wrist
        rotation from arm 0's current orientation is returned.

        Args:
            grasps: (K, 4, 4) camera-frame poses from plan_grasp. scores: (K,).
            cam_to_world: (4, 4) camera-to-world pose (the camera's pose_mat).
            vertical_threshold: minimum downward component of the unit approach vector, in [-1, 1].

        Returns:
            (best_grasp_world (4, 4), best_score) or (None, -inf) when no grasp qualifies.
        """
        threshold = float(vertical_threshold)
        if not -1.0 <= threshold <= 1.0:
            raise ValueError(f"vertical_threshold must be in [-1, 1], got {vertical_threshold!r}")
        if np.asarray(scores).size == 0:  # the published form answers an empty candidate list, never raises
            ctx.set_status(st.NO_DETECTION, "no grasp candidates were given")
            return None, float("-inf")
        tilt = float(np.degrees(np.arccos(threshold)))
        choice = self.select_top_down_grasp(ctx, grasps, scores, cam_to_world, max_tilt_deg=tilt)
        if choice is None:
            return None, float("-inf")
        return choice["pose"], choice["score"]
