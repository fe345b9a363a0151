"""The camera-only robot API that programs call, with names from the public CaP-X / ASPIRE reduced API.

Every public primitive is traced. Frames: "world" below is the robot0 base frame (x forward, y left,
z up, origin at the arm's base), positions in metres, orientations as unit quaternions [w, x, y, z].
Images are (H, W, 3) uint8 with row 0 at the top, depth (H, W) float32 metres (0.0 where the sensor
has no valid depth), intrinsics (3, 3), camera poses (4, 4) camera-to-world with OpenCV axes (x right,
y down, z forward). Perception behaves like a real camera and segmentation model: depth is noisy and
masks are imperfect (see get_observation and segment_text_prompt).

The gripper pose used by solve_ik / move_to_pose is the grasp point midway between the fingertips;
its z axis points from the hand towards the fingertips (the approach direction) and its y axis along
the line joining the fingers. Top-down grasp: quaternion [0, 1, 0, 0] (z down, fingers along world y).
"""

from __future__ import annotations

import collections
import hashlib
import inspect
import sys

import numpy as np

from worker.sim.base import CameraFrame

from . import geometry as geo
from . import status as st
from .api_grasp import GraspPrimitives
from .api_motion import SITE_TO_API, MotionPrimitives
from .api_published import PublishedPrimitives
from .ik import IKSolver
from .media import draw_detections
from .motion import PlannerCache
from .perception import DepthNoise, check_perception_mode, noise_rng
from .primitive import NATIVE, PROFILES, PUBLISHED, PrimitiveSpec, primitive
from .segmenter import CpuSegmenter, default_segmenter, oracle_segmenter
from .tracer import CallContext, Tracer

OBSERVATION_CACHE = 12
#: The published reduced API's tool-centre offset: its hand frame sits 0.107 m behind the grasp point
#: along the approach axis (NVlabs/ASPIRE aspire/sim/cap/integrations/franka/common.py, robosuite).
HAND_TO_GRASP_POINT = 0.107
#: Travel of one Panda finger joint, metres: the published API normalises the gripper reading by it.
PUBLISHED_FINGER_TRAVEL = 0.04


class RobotAPI(GraspPrimitives, MotionPrimitives, PublishedPrimitives):
    """The primitives of one episode, bound to a simulator adapter and a tracer.

    perception_mode: "realistic" (noisy depth, model-like segmentation; see worker.robot.perception)
    or "oracle" (the simulator's exact depth, masks and object names). depth_noise: add the depth
    sensor noise in realistic mode (oracle depth is always exact). episode_seed: seeds the
    perception noise, so an episode replays exactly. api_profile: "native" (this module's calling
    conventions) or "published" (the CaP-X / ASPIRE reduced API's, where they differ; see
    worker.robot.profiles). Raises ValueError for an unknown mode or profile.
    """

    def __init__(
        self,
        adapter,
        tracer: Tracer,
        ik: IKSolver | None = None,
        segmenter: CpuSegmenter | None = None,
        planners: PlannerCache | None = None,
        perception_mode: str = "realistic",
        depth_noise: bool = True,
        episode_seed: int = 0,
        api_profile: str = NATIVE,
    ):
        if api_profile not in PROFILES:
            raise ValueError(f"api_profile must be one of {PROFILES}, not {api_profile!r}")
        self.api_profile = api_profile
        self.adapter = adapter
        self.spec = adapter.spec
        self.tracer = tracer
        self.ik = ik or IKSolver()
        self.perception_mode = check_perception_mode(perception_mode)
        self.segmenter = segmenter or default_segmenter()
        if self.perception_mode == "oracle" and not getattr(self.segmenter, "needs_render", True):
            self.segmenter = oracle_segmenter()  # a model server cannot give the exact render
        self.depth_noise = DepthNoise() if depth_noise and self.perception_mode == "realistic" else None
        self.episode_seed = int(episode_seed)
        self.planners = planners or PlannerCache()
        # rgb digest -> the exact render (rgb, exact depth, segmentation) of a get_observation camera
        self._observations: collections.OrderedDict[bytes, object] = collections.OrderedDict()
        self._observation_index: dict[bytes, int] = {}  # rgb digest -> observation number (seeds noise)
        self._served_depth: dict[bytes, bytes] = {}  # rgb digest -> digest of the depth the program got
        self._depths: dict[bytes, object] = {}  # digest of a served depth -> rgb digest
        self._n_observations = 0
        self._T_sim_api = adapter.base_pose(0)
        self._T_api_sim = geo.invert_transform(self._T_sim_api)
        # The arms' joints when the episode started: goto_home_joint_position's target.
        self._home_joints = {arm: np.array(adapter.joint_positions(arm)) for arm in range(self.spec.arms)}
        self._primitives = self._collect(self.api_profile)
        #: worker.robot.scene3d.Scene3D of the episode's 3D view (the engine sets it while tracing), or None.
        self.scene3d = None

    # -- registry --------------------------------------------------------------------------------
    @classmethod
    def _collect(cls, profile: str = NATIVE) -> dict[str, PrimitiveSpec]:
        """Program name -> PrimitiveSpec of every primitive the ``profile`` offers. A published-only
        method carrying the name of a native primitive replaces it under the published profile."""
        out, replaced = {}, {}
        for attr, fn in inspect.getmembers(cls, predicate=inspect.isfunction):
            meta = getattr(fn, "_primitive", None)
            if meta is None or profile not in meta["profiles"]:
                continue
            name = meta["name"]
            spec = PrimitiveSpec(name, attr, meta["after_frame"], meta["min_arms"])
            if meta["profiles"] == (profile,) and name != attr:
                replaced[name] = spec
            else:
                out.setdefault(name, spec)
            for alias in meta["aliases"]:
                out[alias] = PrimitiveSpec(alias, attr, meta["after_frame"], meta["min_arms"], alias_of=name)
        out.update(replaced)
        return out

    @classmethod
    def signature(cls, method: str) -> inspect.Signature:
        sig = inspect.signature(getattr(cls, method), eval_str=True)
        params = list(sig.parameters.values())[2:]  # drop self, ctx
        return sig.replace(parameters=params, return_annotation=inspect.Signature.empty)

    @classmethod
    def reference(cls, arms: int = 2, profile: str = NATIVE) -> list[dict]:
        """[{"name", "signature", "doc", "alias_of", "min_arms"}] for every primitive a task with
        ``arms`` arms offers under ``profile``, from the docstrings."""
        out = []
        for name, spec in sorted(cls._collect(profile).items()):
            if spec.min_arms > arms:
                continue
            doc = inspect.getdoc(getattr(cls, spec.method)) or ""
            if spec.alias_of:
                doc = f"Alias of {spec.alias_of}, kept so programs written for the published API run unchanged."
            out.append(
                {
                    "name": name,
                    "signature": f"{name}{cls.signature(spec.method)}",
                    "doc": doc,
                    "alias_of": spec.alias_of,
                    "min_arms": spec.min_arms,
                }
            )
        return out

    def sandbox_specs(self) -> list[dict]:
        return [
            {"name": r["name"], "doc": f"{r['signature']}\n\n{r['doc']}"}
            for r in self.reference(self.spec.arms, self.api_profile)
        ]

    def dispatch(self, name: str, args: list, kwargs: dict, line: int = 0, stack: list | None = None):
        """Run one primitive for the sandbox; raises TypeError/ValueError for bad arguments."""
        spec = self._primitives.get(name)
        if spec is None or spec.min_arms > self.spec.arms:
            raise TypeError(f"{name} is not a robot API function of this task")
        method = getattr(self, spec.method)
        ctx = CallContext(self.tracer.enabled)
        try:
            bound = self.signature(spec.method).bind(*args, **kwargs)
            bound.apply_defaults()
            arguments = dict(bound.arguments)
        except TypeError as exc:
            arguments = {"args": list(args), **kwargs}
            message = f"{name}{self.signature(spec.method)}: {exc}"

            def call(_ctx, **_):
                raise TypeError(message)

            return self.tracer.invoke(name, call, arguments, line, stack or [], False, ctx)
        return self.tracer.invoke(
            name, lambda c, **kw: method(c, **kw), arguments, line, stack or [], spec.after_frame, ctx
        )

    # -- frames ----------------------------------------------------------------------------------
    def _to_api(self, T_sim: np.ndarray) -> np.ndarray:
        return self._T_api_sim @ T_sim

    def _to_sim(self, T_api: np.ndarray) -> np.ndarray:
        return self._T_sim_api @ T_api

    def capture_frame(self) -> tuple[np.ndarray, str]:
        """A keyframe of the task's keyframe camera as it is now: (rgb, camera name)."""
        camera = self.spec.keyframe_camera
        return self.adapter.render_keyframe(camera), camera

    def _cartesian(self, arm: int) -> np.ndarray:
        T = self._to_api(self.adapter.ee_pose(arm)) @ SITE_TO_API
        fraction = self.adapter.gripper_width(arm) / max(self.adapter.gripper_max_width(arm), 1e-9)
        return np.concatenate([T[:3, 3], geo.matrix_to_quat(T[:3, :3]), [min(1.0, fraction)]])

    def scene3d_state(self, arm: int) -> tuple[np.ndarray, np.ndarray, float]:
        """Arm ``arm`` now, for the 3D view: grasp-point pose (7,) [x, y, z, qw, qx, qy, qz] in the world
        frame (metres), joint angles (7,) radians, gripper opening in metres."""
        T = self._to_api(self.adapter.ee_pose(arm)) @ SITE_TO_API
        pose = np.concatenate([T[:3, 3], geo.matrix_to_quat(T[:3, :3])])
        return pose, self.adapter.joint_positions(arm), self.adapter.gripper_width(arm)

    def _has_fingers(self, arm: int) -> bool:
        return self.adapter.gripper_max_width(arm) > 0

    def _published_gripper(self, arm: int) -> float:
        """The published API's normalised gripper reading: one finger joint / 0.04 m (about 1 open, 0 closed)."""
        return self.adapter.gripper_width(arm) / 2.0 / PUBLISHED_FINGER_TRAVEL

    def _hand_cartesian(self, arm: int) -> np.ndarray:
        """The published API's robot cartesian reading: the hand frame (the grasp point moved back
        HAND_TO_GRASP_POINT along the approach axis), [x, y, z, qw, qx, qy, qz] plus the normalised
        gripper reading when the arm has fingers."""
        T = self._to_api(self.adapter.ee_pose(arm)) @ SITE_TO_API
        hand = T[:3, 3] - HAND_TO_GRASP_POINT * T[:3, 2]
        out = [hand, geo.matrix_to_quat(T[:3, :3])]
        if self._has_fingers(arm):
            out.append([self._published_gripper(arm)])
        return np.concatenate(out)

    def _camera_aliases(self) -> dict[str, str]:
        """Published camera names this task lacks -> the camera that stands in for them (the reduced
        robosuite API offers "robot0_robotview" on every task; two-arm tasks answer it with agentview)."""
        if "robot0_robotview" not in self.spec.cameras and "agentview" in self.spec.cameras:
            return {"robot0_robotview": "agentview"}
        return {}

    # -- perception ------------------------------------------------------------------------------
    @primitive()
    def get_observation(self, ctx: CallContext, camera_names: list[str] | None = None) -> dict:
        """Render the task's cameras and read the robot's proprioception.

        Args:
            camera_names: optional list of camera names to render (default: every camera of the task;
                fewer cameras is faster, each costs about 50-100 ms on a CPU).

        Returns:
            dict with, for each camera name (e.g. "agentview", "robot0_robotview", "robot0_eye_in_hand"):
                {"images": {"rgb": (H, W, 3) uint8, "depth": (H, W) float32 metres},
                 "intrinsics": (3, 3) float64, "pose_mat": (4, 4) float64 camera-to-world,
                 "pose": (7,) the same pose as [x, y, z, qw, qx, qy, qz]}
            Depth is along the camera's optical axis and noisy like a depth camera's: Gaussian noise
            of standard deviation 0.0012 + 0.0019 (z - 0.4)^2 m at depth z (about 2 mm at 1 m;
            Nguyen, Izadi & Lovell 2012), and pixels with no valid depth (0.0), mostly on the far
            side of object edges. Average several pixels; skip 0.0 pixels (mask_to_world_points,
            depth_to_point_cloud and plan_grasp do).
            "robot0_robotview" is offered on every robosuite task (on two-arm tasks it is the
            agentview camera, under both names), as in the published reduced API.
            and for each arm i:
                "robot{i}_cartesian_pos": (8,) [x, y, z, qw, qx, qy, qz, gripper_fraction] of the grasp
                    point in world frame; gripper_fraction is 1 fully open, 0 closed. (Under the
                    published API profile: the published hand frame, as "robot_cartesian_pos" below.)
                "robot{i}_joint_pos": (7,) joint angles in radians.
                "robot{i}_gripper_qpos": (2,) finger joint positions in metres (+w/2, -w/2 for a
                    finger opening w; about 0.04 each fully open), on arms with fingers.
            and, on one-arm tasks, the published reduced API's readings of arm 0:
                "robot_joint_pos": (8,) the 7 joint angles and the gripper reading
                    (robot0_gripper_qpos[0] / 0.04: about 1 open, 0 closed);
                "robot_cartesian_pos": (8,) [x, y, z, qw, qx, qy, qz, gripper reading] of the hand
                    frame, 0.107 m behind the grasp point along the approach axis (the published
                    API's convention; solve_ik still takes the grasp point).
                (Both (7,) without the gripper entry on an arm without fingers, e.g. Wipe's tool.)

        Raises:
            ValueError: an unknown camera name.
        """
        cameras = list(self.spec.cameras)
        aliases = self._camera_aliases()
        if camera_names is not None:
            if isinstance(camera_names, str):
                camera_names = [camera_names]
            known = cameras + list(aliases)
            unknown = [c for c in camera_names if c not in known]
            if unknown:
                raise ValueError(f"unknown camera(s) {unknown}; this task's cameras are {known}")
            cameras = list(dict.fromkeys(aliases.get(c, c) for c in camera_names))
        obs: dict = {}
        views = []  # the 3D view's clouds (worker.robot.scene3d): what was rendered anyway
        for camera in cameras:
            frame = self.adapter.render(camera, depth=True, segmentation=True)
            pose = self._to_api(frame.pose)
            depth = frame.depth
            if self.depth_noise is not None:
                rng = noise_rng(self.episode_seed, "depth", self._n_observations, camera)
                depth = self.depth_noise.apply(depth, rng)
            self._remember(frame, depth)
            self._perceive(frame, depth)  # the motion planner's perceived scene (worker.robot.occupancy)
            obs[camera] = {
                "images": {"rgb": frame.rgb, "depth": depth},
                "intrinsics": frame.intrinsics,
                "pose_mat": pose,
                "pose": np.concatenate([pose[:3, 3], geo.matrix_to_quat(pose[:3, :3])]),
            }
            ctx.keyframe(frame.rgb, "frame", camera, camera)
            views.append((camera, frame.rgb, depth, frame.intrinsics, pose))
        if self.scene3d is not None:
            self.scene3d.observation(views)
        for alias, camera in aliases.items():
            if camera in obs:
                obs[alias] = obs[camera]
        published = self.api_profile == PUBLISHED
        for arm in range(self.spec.arms):
            obs[f"robot{arm}_cartesian_pos"] = self._hand_cartesian(arm) if published else self._cartesian(arm)
            obs[f"robot{arm}_joint_pos"] = self.adapter.joint_positions(arm)
            if self._has_fingers(arm):
                half = self.adapter.gripper_width(arm) / 2.0
                obs[f"robot{arm}_gripper_qpos"] = np.array([half, -half])
        if self.spec.arms == 1:
            joints = [self.adapter.joint_positions(0)]
            if self._has_fingers(0):
                joints.append([self._published_gripper(0)])
            obs["robot_joint_pos"] = np.concatenate(joints)
            obs["robot_cartesian_pos"] = self._hand_cartesian(0)
        return obs

    def _remember(self, frame, depth) -> None:
        """Keep the exact render ``frame`` of an observation whose program-facing depth is ``depth``."""
        key = _digest(frame.rgb)
        if key in self._served_depth:
            self._depths.pop(self._served_depth[key], None)
        self._observations[key] = frame
        self._observations.move_to_end(key)
        self._observation_index[key] = self._n_observations
        self._n_observations += 1
        self._served_depth[key] = _digest(depth)
        self._depths[self._served_depth[key]] = key
        while len(self._observations) > OBSERVATION_CACHE:
            old_key, _ = self._observations.popitem(last=False)
            self._observation_index.pop(old_key, None)
            self._depths.pop(self._served_depth.pop(old_key, b""), None)

    def _frame_for_depth(self, depth):
        """The remembered observation whose depth image this is (for drawing overlays), or None."""
        arr = np.asarray(depth)
        if arr.dtype != np.float32:
            return None
        key = self._depths.get(_digest(arr))
        return self._observations.get(key) if key else None

    def _latest_frame(self, camera: str):
        for frame in reversed(self._observations.values()):
            if frame.camera == camera:
                return frame
        return None

    def _frame_for(self, rgb, fn: str):
        arr = np.asarray(rgb)
        if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
            raise ValueError(f"rgb must be an (H, W, 3) uint8 image, got shape {arr.shape} dtype {arr.dtype}")
        frame = self._observations.get(_digest(arr))
        if frame is None:
            raise ValueError(
                f"{fn} needs an rgb image exactly as returned by get_observation in this episode "
                "(the CPU segmenter works on the camera frame it was rendered with; crop or edit masks, not the image)"
            )
        return frame

    def _image_frame(self, rgb, fn: str):
        """The camera frame for an image: the remembered render for the CPU segmenter (which reads the
        simulator's segmentation of that exact frame); any RGB image for a model backend."""
        if getattr(self.segmenter, "needs_render", True):
            return self._frame_for(rgb, fn)
        arr = np.asarray(rgb)
        if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
            raise ValueError(f"rgb must be an (H, W, 3) uint8 image, got shape {arr.shape} dtype {arr.dtype}")
        remembered = self._observations.get(_digest(arr))
        return remembered or CameraFrame("image", arr, None, None, np.eye(3), np.eye(4))

    def _objects(self):
        return self.adapter.scene_objects()

    def _segmenter_options(self, frame) -> dict:
        """Keyword arguments for a CPU segmenter call on ``frame``: the perception mode and the noise
        key (episode seed, observation number, camera). A model backend takes none."""
        if not getattr(self.segmenter, "needs_render", True):
            return {}
        index = self._observation_index.get(_digest(frame.rgb), -1)
        return {"mode": self.perception_mode, "key": (self.episode_seed, index, frame.camera)}

    @primitive(aliases=("segment_sam3_text_prompt",))
    def segment_text_prompt(self, ctx: CallContext, rgb, text_prompt: str) -> list[dict]:
        """Segment the objects a text prompt describes in a camera image.

        Args:
            rgb: (H, W, 3) uint8 image exactly as returned by get_observation.
            text_prompt: what to find, e.g. "red cube", "table", "gripper".

        Returns:
            list of detections, best first (empty when nothing matches): each a dict with
                "mask": (H, W) bool, the pixels the model assigns to the object;
                "box": [x1, y1, x2, y2] pixel extents of the mask;
                "score": float in [0, 1], the model's confidence (vague prompts, heavily occluded
                    objects and worse masks score lower);
                "label": the text prompt (the model does not name what it found; only the "oracle"
                    perception mode, for ablations, gives exact masks and the simulator's object names).
            Like a real segmentation model (SAM class), masks are imperfect: boundaries are off by a
            pixel or two (typical IoU with the true object 0.9-0.98, lower for small or occluded
            objects), a partly hidden object can be missed or only partly segmented, and a vague
            prompt can add a low-scoring detection of something else. Filter by score and use
            robust statistics (medians, percentiles) of the mask's points.
            No poses: locate objects with mask_to_world_points on the same camera's depth.

        Raises:
            ValueError: rgb is not an image from get_observation, or text_prompt is empty.
        """
        if not isinstance(text_prompt, str) or not text_prompt.strip():
            raise ValueError("text_prompt must be a non-empty string")
        frame = self._image_frame(rgb, "segment_text_prompt")
        found = self.segmenter.segment_text(frame, self._objects(), text_prompt, **self._segmenter_options(frame))
        detections = [d.as_dict() for d in found]
        self._annotate_detections(ctx, frame, detections, text_prompt)
        return detections

    @primitive(aliases=("segment_sam3_point_prompt",))
    def segment_point_prompt(self, ctx: CallContext, rgb, point_coords) -> list[dict]:
        """Segment what lies under pixel point prompts.

        Args:
            rgb: (H, W, 3) uint8 image exactly as returned by get_observation.
            point_coords: one (x, y) pixel or a list of them (x = column, y = row).

        Returns:
            list of detections (same dict layout as segment_text_prompt), one per distinct segment
            under the points, in point order; background points give nothing. A segment is the
            connected visible region of the surface under the point, with the same mask errors as
            segment_text_prompt; its "label" is "segment" (a point prompt names nothing).

        Raises:
            ValueError: a point outside the image, or rgb not from get_observation.
        """
        frame = self._image_frame(rgb, "segment_point_prompt")
        pts = np.asarray(point_coords, dtype=np.float64)
        if pts.shape == (2,):
            pts = pts.reshape(1, 2)
        if pts.ndim != 2 or pts.shape[1] != 2 or len(pts) == 0:
            raise ValueError(f"point_coords must be (x, y) or a list of (x, y) pixels, got shape {pts.shape}")
        h, w = frame.rgb.shape[:2]
        for x, y in pts:
            if not (0 <= x < w and 0 <= y < h):
                raise ValueError(f"point ({x}, {y}) is outside the {w}x{h} image")
        found = self.segmenter.segment_points(frame, self._objects(), pts, **self._segmenter_options(frame))
        detections = [d.as_dict() for d in found]
        self._annotate_detections(ctx, frame, detections, f"points {pts.astype(int).tolist()}"[:40])
        return detections

    def _annotate_detections(self, ctx: CallContext, frame, detections: list[dict], title: str) -> None:
        if not detections:
            ctx.set_status(st.NO_DETECTION, f"nothing in the {frame.camera} image matched {title!r}")
        ctx.artifact(
            "detections",
            [
                {"label": d["label"], "score": d["score"], "box": d["box"], "pixels": int(d["mask"].sum())}
                for d in detections
            ],
        )
        ctx.keyframe(lambda: draw_detections(frame.rgb, detections, title), "overlay", frame.camera, "masks")
        if self.scene3d is not None and detections and frame.depth is not None:
            self.scene3d.masks(
                frame.camera,
                frame.depth,
                frame.intrinsics,
                self._to_api(frame.pose),
                [(d["label"], d["score"], d["mask"]) for d in detections],
            )

    # -- geometry --------------------------------------------------------------------------------
    @primitive()
    def mask_to_world_points(self, ctx: CallContext, mask, depth, intrinsics, pose_mat) -> np.ndarray:
        """Back-project the masked pixels of a depth image to 3-D points in the world frame.

        Args:
            mask: (H, W) bool (or 0/1) pixel mask, e.g. a detection's "mask".
            depth: (H, W) float32 depth in metres from the same camera and observation.
            intrinsics: (3, 3) camera intrinsics of that camera.
            pose_mat: (4, 4) camera-to-world pose of that camera.

        Returns:
            (N, 3) float64 world-frame points in metres, one per masked pixel with valid depth
            (pixels reading 0.0, negative or NaN are skipped). Only the surfaces the camera sees are
            returned: the centroid of a box's points is biased towards the camera (use the top-face
            points for x, y); mask errors add a few points of whatever borders the object.

        Raises:
            ValueError: shapes do not match.
        """
        depth_arr = np.asarray(depth, dtype=np.float64)
        mask_arr = np.asarray(mask)
        if depth_arr.ndim != 2:
            raise ValueError(f"depth must be (H, W), got shape {depth_arr.shape}")
        if mask_arr.shape != depth_arr.shape:
            raise ValueError(f"mask shape {mask_arr.shape} does not match depth shape {depth_arr.shape}")
        K = geo.as_array(intrinsics, (3, 3), "intrinsics")
        T = geo.as_array(pose_mat, (4, 4), "pose_mat")
        points = geo.transform_points(T, geo.backproject(depth_arr, K, mask_arr.astype(bool)))
        if len(points) == 0:
            ctx.set_status(st.NO_DETECTION, "the mask selects no pixels with valid depth")
        else:
            if self.scene3d is not None:
                self.scene3d.points("mask_to_world_points", points)
            ctx.artifact(
                "points",
                {"count": int(len(points)), "centroid": geo.as_array(points.mean(axis=0), (3,), "c").round(4).tolist()},
            )
        return points

    @primitive()
    def depth_to_point_cloud(self, ctx: CallContext, depth, intrinsics, pose_mat=None) -> np.ndarray:
        """Back-project every valid depth pixel.

        Args:
            depth: (H, W) float32 metres. intrinsics: (3, 3).
            pose_mat: optional (4, 4) camera-to-world pose; without it points stay in the camera frame.

        Returns:
            (N, 3) float64 points in metres (world frame if pose_mat is given, else camera frame),
            one per pixel with valid depth (0.0, negative and NaN pixels are skipped).
        """
        depth_arr = np.asarray(depth, dtype=np.float64)
        if depth_arr.ndim != 2:
            raise ValueError(f"depth must be (H, W), got shape {depth_arr.shape}")
        points = geo.backproject(depth_arr, geo.as_array(intrinsics, (3, 3), "intrinsics"))
        if pose_mat is not None:
            points = geo.transform_points(geo.as_array(pose_mat, (4, 4), "pose_mat"), points)
        return points

    @primitive()
    def pixel_to_world_point(self, ctx: CallContext, pixel, depth, intrinsics, pose_mat) -> np.ndarray:
        """World-frame 3-D point seen at one pixel.

        Args:
            pixel: (x, y) pixel coordinates (column, row). depth: (H, W) metres. intrinsics: (3, 3).
            pose_mat: (4, 4) camera-to-world.

        Returns:
            (3,) float64 point in metres.

        Raises:
            ValueError: the pixel is outside the image or has no valid depth (0.0, negative or NaN;
                the depth camera gives no depth on some pixels, mostly along object edges: try a
                neighbouring pixel or use mask_to_world_points).
        """
        x, y = geo.as_array(pixel, (2,), "pixel")
        depth_arr = np.asarray(depth, dtype=np.float64)
        h, w = depth_arr.shape[:2]
        xi, yi = int(round(x)), int(round(y))
        if not (0 <= xi < w and 0 <= yi < h):
            raise ValueError(f"pixel ({x}, {y}) is outside the {w}x{h} depth image")
        z = depth_arr[yi, xi]
        if not np.isfinite(z) or z <= 0:
            raise ValueError(f"no valid depth at pixel ({xi}, {yi})")
        K = geo.as_array(intrinsics, (3, 3), "intrinsics")
        cam = np.array([(x - K[0, 2]) * z / K[0, 0], (y - K[1, 2]) * z / K[1, 1], z])
        return geo.transform_points(geo.as_array(pose_mat, (4, 4), "pose_mat"), cam)[0]

    @primitive()
    def get_oriented_bounding_box_from_3d_points(self, ctx: CallContext, points) -> dict:
        """Oriented bounding box of a point set by principal component analysis.

        Args:
            points: (N, 3) points in metres, N >= 3 (e.g. from mask_to_world_points).

        Returns:
            {"center": (3,) box centre, "extent": (3,) full side lengths in metres, largest first,
             "R": (3, 3) rotation whose columns are the box axes in the points' frame}.
            A box seen from one camera covers only its visible faces, so the extent along the viewing
            direction is underestimated.

        Raises:
            ValueError: fewer than 3 points.
        """
        pts = np.asarray(points, dtype=np.float64)
        if pts.ndim != 2 or pts.shape[1] != 3:
            raise ValueError(f"points must be (N, 3), got shape {pts.shape}")
        box = geo.oriented_bounding_box(pts)
        ctx.artifact("obb", {k: np.round(v, 4).tolist() for k, v in box.items()})
        return box

    @primitive()
    def transform_points(self, ctx: CallContext, points, transform) -> np.ndarray:
        """Apply a (4, 4) homogeneous transform to (N, 3) points; returns (N, 3)."""
        pts = np.asarray(points, dtype=np.float64)
        if pts.ndim == 1 and pts.shape[0] == 3:
            pts = pts.reshape(1, 3)
        if pts.ndim != 2 or pts.shape[1] != 3:
            raise ValueError(f"points must be (N, 3), got shape {pts.shape}")
        return geo.transform_points(geo.as_array(transform, (4, 4), "transform"), pts)

    @primitive()
    def decompose_transform(self, ctx: CallContext, transform) -> tuple:
        """Split a (4, 4) pose into (position (3,) metres, quaternion_wxyz (4,)).

        Raises:
            ValueError: not a 4x4 matrix, or its rotation part is not a rotation.
        """
        T = geo.as_array(transform, (4, 4), "transform")
        R = T[:3, :3]
        if not np.allclose(R.T @ R, np.eye(3), atol=1e-3) or np.linalg.det(R) < 0:
            raise ValueError("the upper-left 3x3 block of transform is not a rotation matrix")
        return T[:3, 3].copy(), geo.matrix_to_quat(R)

    @primitive()
    def interpolate_segment(self, ctx: CallContext, start, end, max_step: float = 0.01) -> np.ndarray:
        """Evenly spaced points from ``start`` to ``end`` (both included), at most ``max_step`` apart.

        Args:
            start, end: (3,) positions in metres, or (7,) poses [x, y, z, qw, qx, qy, qz] whose
                orientations are interpolated by spherical linear interpolation.
            max_step: largest distance in metres between consecutive positions (> 0).

        Returns:
            (N, 3) or (N, 7) float64 array, N >= 2.
        """
        a = np.asarray(start, dtype=np.float64).ravel()
        b = np.asarray(end, dtype=np.float64).ravel()
        if a.shape != b.shape or a.shape not in ((3,), (7,)):
            raise ValueError(f"start and end must both be (3,) positions or (7,) poses, got {a.shape} and {b.shape}")
        if not max_step > 0:
            raise ValueError("max_step must be positive")
        n = max(2, int(np.ceil(np.linalg.norm(b[:3] - a[:3]) / float(max_step))) + 1)
        if n > 100_000:
            raise ValueError(f"{n} points requested; use a larger max_step")
        t = np.linspace(0.0, 1.0, n)
        positions = a[:3] + np.outer(t, b[:3] - a[:3])
        if a.shape == (3,):
            return positions
        from scipy.spatial.transform import Rotation, Slerp

        rotations = Rotation.from_quat(np.stack([a[3:], b[3:]]), scalar_first=True)
        quats = Slerp([0.0, 1.0], rotations)(t).as_quat(scalar_first=True)
        quats[quats[:, 0] < 0] *= -1
        return np.concatenate([positions, quats], axis=1)


def _digest(arr: np.ndarray) -> bytes:
    return hashlib.blake2b(np.ascontiguousarray(arr).tobytes(), digest_size=16).digest()


def api_reference_markdown(arms: int = 1, include_aliases: bool = False, profile: str = NATIVE) -> str:
    """The API reference shown to agents and in the docs, generated from the docstrings above; under
    the published profile it lists the published forms and functions (worker.robot.profiles)."""
    parts = [inspect.getdoc(sys.modules[__name__]) or ""]
    if profile == PUBLISHED:
        from . import profiles

        parts.append("## API profiles\n\n" + (inspect.getdoc(profiles) or ""))
    for entry in RobotAPI.reference(arms, profile):
        if entry["alias_of"] and not include_aliases:
            continue
        parts.append(f"### {entry['signature']}\n\n{entry['doc']}")
    return "\n\n".join(parts)
