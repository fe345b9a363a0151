"""The 3D view of an episode: what its calls saw and planned, and where the robot went, in one file.

While a traced episode keeps keyframes or a recording, the engine hands the robot API a
:class:`Scene3D` collector. Primitives report what they already computed, tagged with the seq of the
call in progress (never an extra render):

- ``clouds``: each camera's point cloud of a get_observation call, subsampled to at most
  ``max_points`` points per call (float32 xyz + uint8 rgb), and the points of segmentation masks
  (segment_* calls: each detection's mask back-projected on that observation's depth;
  mask_to_world_points: the points it returned), subsampled to ``max_mask_points``; an episode keeps
  at most MAX_CLOUDS clouds and MAX_TOTAL_POINTS points (then ``truncated``);
- ``grasps``: grasp candidates of plan_grasp (world frame, best first) and select_top_down_grasp's
  pick among them (``best`` is the index of the highlighted one);
- ``targets``: each motion's target grasp-point pose (drawn as a gripper ghost);
- ``plans``: the planned grasp-point path of each motion, by forward kinematics of the planner's
  joint-space waypoints (each straight joint segment sampled at a few points);
- ``samples``: the executed path and joint state over time, read every ``every_steps`` control steps
  (the adapter's step hook) and at the start and end of the episode: sim time, the call in progress,
  and per arm the grasp-point pose [x, y, z, qw, qx, qy, qz], the joint angles (rad) and the gripper
  opening (m). At most ``max_samples`` are kept: when full, every second one is dropped and the
  sampling interval doubles.

Frames and units: everything is in the robot API's world frame (robot0 base frame, metres,
quaternions wxyz), grasp poses with the solve_ik convention (z the approach, y the closing direction);
a pose in the file (grasps, targets) is 12 numbers, the 3 x 4 [R | t] of its 4 x 4 matrix row by row.

:meth:`Scene3D.finish` returns gzip'd JSON (``scene3d.json.gz``, schema ``SCHEMA`` below); arrays of
points are base64 of little-endian float32 (xyz, row-major) or uint8 (rgb). Plain Python (no Django).
"""

from __future__ import annotations

import base64
import gzip
import json
import logging
from typing import Callable

import numpy as np

log = logging.getLogger(__name__)

SCHEMA = "aspire.scene3d/1"
#: Most points one call's clouds keep (all its cameras together): a 256 x 256 camera subsampled ~1 in 8.
MAX_POINTS = 8000
#: Most points one segmentation mask keeps.
MAX_MASK_POINTS = 1500
#: Detections per segmentation call whose mask points are kept (best first).
MAX_DETECTIONS = 3
#: Grasp candidates kept per grasp call (best first).
MAX_GRASPS = 20
#: Control steps between two samples of the robot's state (20 Hz control: 2 steps = 10 per simulated second).
EVERY_STEPS = 2
#: Most robot-state samples one episode keeps (the interval doubles when full).
MAX_SAMPLES = 4000
#: Points of a scene cloud farther than this from the robot base (m) are dropped (walls, far floor).
MAX_RANGE = 2.5
#: Forward-kinematics samples per straight joint-space segment of a planned path.
PLAN_SEGMENT_SAMPLES = 6
#: Most clouds (scene and mask) and points in all one episode keeps (about 20 bytes a point in the
#: file: 150k points is 3 MB); later clouds are dropped and ``truncated`` says so.
MAX_CLOUDS = 120
MAX_TOTAL_POINTS = 150_000


def _b64(arr: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(arr).tobytes()).decode("ascii")


def _round(arr, digits: int = 4) -> list:
    return np.round(np.asarray(arr, dtype=np.float64), digits).tolist()


def backproject(depth: np.ndarray, intrinsics: np.ndarray, pixels: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Camera-frame points (N, 3) of pixel rows/columns ``pixels`` = (v, u) of an (H, W) depth image in
    metres with (3, 3) ``intrinsics`` (OpenCV axes)."""
    v, u = pixels
    z = depth[v, u].astype(np.float64)
    K = np.asarray(intrinsics, dtype=np.float64)
    x = (u - K[0, 2]) * z / K[0, 0]
    y = (v - K[1, 2]) * z / K[1, 1]
    return np.stack([x, y, z], axis=1)


def _to_world(T: np.ndarray, pts: np.ndarray) -> np.ndarray:
    T = np.asarray(T, dtype=np.float64)
    return pts @ T[:3, :3].T + T[:3, 3]


class Scene3D:
    """Collects one episode's 3D view (see the module docstring); every method is cheap and never raises
    into the episode (a failure stops the collection and is reported in the file's ``error``).

    ``seq()`` returns the seq of the traced call in progress (0 before the first); ``sim_time()`` the
    simulator's clock; ``state(arm)`` the arm's (pose (7,), joints (7,), gripper opening m) now, in
    the API world frame; ``arms``: the task's arm count."""

    def __init__(
        self,
        seq: Callable[[], int],
        sim_time: Callable[[], float],
        state: Callable[[int], tuple],
        arms: int = 1,
        *,
        every_steps: int = EVERY_STEPS,
        max_points: int = MAX_POINTS,
        max_mask_points: int = MAX_MASK_POINTS,
        max_samples: int = MAX_SAMPLES,
    ):
        self.seq = seq
        self.sim_time = sim_time
        self.state = state
        self.arms = int(arms)
        self.every_steps = max(1, int(every_steps))
        self.max_points = int(max_points)
        self.max_mask_points = int(max_mask_points)
        self.max_samples = max(2, int(max_samples))
        self.clouds: list[dict] = []
        self.grasps: list[dict] = []
        self.targets: list[dict] = []
        self.plans: list[dict] = []
        self.samples: list[tuple] = []  # (t, seq, [(pose7, joints, gripper) per arm])
        self.n_points = 0
        self.truncated = False
        self.error = ""
        self._last_step: int | None = None

    def guard(self, what: str, fn: Callable, *args) -> None:
        """``fn(*args)``; an exception stops the collection (reported in ``error``), never the episode."""
        if self.error:
            return
        try:
            fn(*args)
        except Exception as exc:  # the 3D view must never fail the episode
            log.exception("3D view collection failed at %s; the rest of the episode is not collected", what)
            self.error = f"{what}: {type(exc).__name__}: {exc}"[:300]

    def _room(self) -> bool:
        if len(self.clouds) >= MAX_CLOUDS or self.n_points >= MAX_TOTAL_POINTS:
            self.truncated = True
            return False
        return True

    # -- perception ---------------------------------------------------------------------------------
    def observation(self, views: list[tuple]) -> None:
        """One get_observation call's cameras: [(camera, rgb (H, W, 3) uint8, depth (H, W) m,
        intrinsics (3, 3), camera-to-world pose (4, 4))]; at most ``max_points`` points in all."""
        self.guard("observation", self._observation, views)

    def _observation(self, views: list[tuple]) -> None:
        if not views:
            return
        budget = max(1, self.max_points // len(views))
        for camera, rgb, depth, intrinsics, pose in views:
            if not self._room():
                return
            d = np.asarray(depth)
            if d.ndim == 3:
                d = d[..., 0]
            valid = np.isfinite(d) & (d > 0)
            n = int(valid.sum())
            if n == 0:
                continue
            stride = max(1, int(np.ceil(np.sqrt(n / budget))))
            sub = np.zeros_like(valid)
            sub[::stride, ::stride] = valid[::stride, ::stride]
            v, u = np.nonzero(sub)
            pts = _to_world(pose, backproject(d, intrinsics, (v, u)))
            keep = np.linalg.norm(pts, axis=1) <= MAX_RANGE
            v, u, pts = v[keep], u[keep], pts[keep]
            if len(pts) > budget:
                idx = np.linspace(0, len(pts) - 1, budget).astype(int)
                v, u, pts = v[idx], u[idx], pts[idx]
            colors = np.asarray(rgb)[v, u] if rgb is not None else np.full((len(pts), 3), 160, np.uint8)
            self._add_cloud("scene", camera, camera, pts, colors)

    def masks(self, camera: str, depth, intrinsics, pose, masks: list[tuple]) -> None:
        """A segmentation call's detections [(label, score, (H, W) bool mask)], best first, back-projected
        on ``depth`` (H, W) m of the camera at camera-to-world ``pose`` (4, 4) with ``intrinsics``."""
        self.guard("masks", self._masks, camera, depth, intrinsics, pose, masks)

    def _masks(self, camera, depth, intrinsics, pose, masks) -> None:
        if depth is None:
            return
        d = np.asarray(depth)
        for rank, (label, score, mask) in enumerate(masks[:MAX_DETECTIONS]):
            if not self._room():
                return
            m = np.asarray(mask, dtype=bool) & np.isfinite(d) & (d > 0)
            v, u = np.nonzero(m)
            if len(v) > self.max_mask_points:
                idx = np.linspace(0, len(v) - 1, self.max_mask_points).astype(int)
                v, u = v[idx], u[idx]
            if len(v) == 0:
                continue
            pts = _to_world(pose, backproject(d, intrinsics, (v, u)))
            self._add_cloud("mask", camera, f"{label} {float(score):.2f}", pts, None, rank=rank)

    def points(self, label: str, points) -> None:
        """World points (N, 3) a call computed from a mask (mask_to_world_points)."""
        self.guard("points", self._points, label, points)

    def _points(self, label, points) -> None:
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        pts = pts[np.isfinite(pts).all(axis=1)]
        if len(pts) == 0 or not self._room():
            return
        if len(pts) > self.max_mask_points:
            pts = pts[np.linspace(0, len(pts) - 1, self.max_mask_points).astype(int)]
        self._add_cloud("mask", "", label, pts, None)

    def _add_cloud(self, kind, camera, label, pts, colors, rank: int = 0) -> None:
        self.n_points += len(pts)
        entry = {
            "seq": int(self.seq()),
            "kind": kind,
            "camera": camera,
            "label": label,
            "rank": rank,
            "n": int(len(pts)),
            "xyz": _b64(np.asarray(pts, dtype="<f4")),
        }
        if colors is not None:
            entry["rgb"] = _b64(np.asarray(colors, dtype=np.uint8).reshape(-1, 3))
        self.clouds.append(entry)

    # -- grasps and motions ----------------------------------------------------------------------------
    def grasp_candidates(self, poses_world, scores, best: int = 0, selected: bool = False) -> None:
        """Grasp candidates (K, 4, 4) world frame with (K,) scores; ``best``: the highlighted one's index;
        ``selected``: a selection among earlier candidates (select_top_down_grasp) rather than a plan."""
        self.guard("grasps", self._grasps, poses_world, scores, best, selected)

    def _grasps(self, poses_world, scores, best, selected) -> None:
        poses = np.asarray(poses_world, dtype=np.float64).reshape(-1, 4, 4)
        scores = np.asarray(scores, dtype=np.float64).ravel()
        if len(poses) == 0:
            return
        order = list(range(min(len(poses), MAX_GRASPS)))
        if best not in order:
            order = [best] + order[:-1]
        self.grasps.append(
            {
                "seq": int(self.seq()),
                "selected": bool(selected),
                "best": order.index(best),
                "scores": _round(scores[order], 3),
                "poses": [_round(poses[i][:3, :4].ravel(), 4) for i in order],  # 3x4 row-major [R | t]
            }
        )

    def motion(self, targets: dict, paths: dict, method: str, ok: bool) -> None:
        """One motion: ``targets`` {arm: (4, 4) world grasp-point pose}, ``paths`` {arm: (N, 3) planned
        world grasp-point positions}; ``method`` the planner's ("straight", "rrt_connect", ...)."""
        self.guard("motion", self._motion, targets, paths, method, ok)

    def _motion(self, targets, paths, method, ok) -> None:
        seq = int(self.seq())
        for arm, T in sorted(targets.items()):
            self.targets.append({"seq": seq, "arm": int(arm), "pose": _round(np.asarray(T)[:3, :4].ravel(), 4)})
        for arm, path in sorted(paths.items()):
            self.plans.append({"seq": seq, "arm": int(arm), "method": method, "ok": bool(ok), "path": _round(path, 4)})

    # -- the robot over time ---------------------------------------------------------------------------
    def on_step(self, steps: int) -> None:
        """After each control step (the adapter's step hook): a sample every ``every_steps`` steps."""
        if self._last_step is None or steps - self._last_step >= self.every_steps:
            self._last_step = steps
            self.sample()

    def sample(self) -> None:
        """Read the robot's state now."""
        self.guard("sample", self._sample)

    def _sample(self) -> None:
        arms = []
        for arm in range(self.arms):
            pose, joints, gripper = self.state(arm)
            arms.append((_round(pose, 4), _round(joints, 4), round(float(gripper), 4)))
        self.samples.append((round(float(self.sim_time()), 3), int(self.seq()), arms))
        if len(self.samples) >= self.max_samples:
            self.samples = self.samples[::2]
            self.every_steps *= 2
            self.truncated = True

    # -- end ----------------------------------------------------------------------------------------
    def data(self) -> dict:
        """The JSON-safe document (see the module docstring)."""
        return {
            "schema": SCHEMA,
            "frame": "world: robot0 base frame, metres; quaternions wxyz; grasp z = approach, y = closing",
            "arms": self.arms,
            "every_steps": self.every_steps,
            "clouds": self.clouds,
            "grasps": self.grasps,
            "targets": self.targets,
            "plans": self.plans,
            "samples": {
                "t": [s[0] for s in self.samples],
                "seq": [s[1] for s in self.samples],
                "pose": [[s[2][a][0] for s in self.samples] for a in range(self.arms)],
                "joints": [[s[2][a][1] for s in self.samples] for a in range(self.arms)],
                "gripper": [[s[2][a][2] for s in self.samples] for a in range(self.arms)],
            },
            "truncated": self.truncated,
            "error": self.error,
        }

    def finish(self) -> bytes:
        """The episode's 3D view as gzip'd JSON bytes."""
        self.sample()
        raw = json.dumps(self.data(), separators=(",", ":")).encode()
        return gzip.compress(raw, compresslevel=5, mtime=0)


def load(data: bytes) -> dict:
    """The document of a ``scene3d.json.gz`` file (gzip'd or plain JSON bytes)."""
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return json.loads(data)


def decode_points(entry: dict) -> tuple[np.ndarray, np.ndarray | None]:
    """A cloud entry's (N, 3) float32 world points and (N, 3) uint8 colours (None for a mask's)."""
    xyz = np.frombuffer(base64.b64decode(entry["xyz"]), dtype="<f4").reshape(-1, 3)
    rgb = np.frombuffer(base64.b64decode(entry["rgb"]), dtype=np.uint8).reshape(-1, 3) if "rgb" in entry else None
    return xyz, rgb
