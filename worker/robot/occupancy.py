"""The perceived world of one episode: occupied space fused from the depth images the program rendered.

What the planner may know about the scene is what a real robot with these cameras would know: the
points the program's ``get_observation`` calls saw, and nothing of the simulator's objects. Each
camera's latest depth image is back-projected to sim-world points, cropped to the robots' workspace,
thinned to one point per ``POINT_VOXEL`` cube, and self-filtered (points within ``SELF_FILTER`` of the
robot's own collision volume at render time are dropped: the robot sees itself and must not plan
around itself). A camera that observes again replaces its own points; the others keep theirs.

Representation: an (N, 3) point cloud with a KD-tree (scipy.spatial.cKDTree); a robot configuration
collides when one of the robot's surface samples (worker.robot.motion.RobotModel) lies within its
clearance (``LINK_CLEARANCE`` ...) of a perceived point. Held objects are the perceived points inside
a gripper's closing region when it closed on something; they ride with that gripper's grasp site until
it opens, when they are put back where they are (under the camera that saw them, until that camera
observes again).

Unknown space (``unknown_space``): what no camera saw, behind and under surfaces or outside every
view. ``"free"`` (the default) plans through it, as MoveIt's OctoMap monitor does: with the two or
three fixed cameras of these tasks most of the workspace behind objects, under the table top and
around the robot's own base is unseen, and treating it as occupied leaves few paths; the price is that
an object no camera has seen does not stop a plan (the robot then meets it and reports COLLISION with
the force it felt). ``"occupied"`` refuses configurations that put a robot sample in a ``KNOWN_VOXEL``
cube that no camera saw in front of its depth measurement and that the robot has not occupied itself.

All positions here are in the simulator's world frame (metres); the API converts to its own frame
(robot0 base) when it writes messages.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from . import geometry as geo

#: Edge (m) of the cubes a fused cloud is thinned to: one point per cube. 5 mm keeps a 5 cm cube's
#: faces at about 100 points each while a full three-camera 256 px frame set drops from ~200k to ~30k
#: points (measured on Lift), so a tree builds in ~20 ms.
POINT_VOXEL = 0.005
#: A robot surface sample closer than its clearance (m) to a perceived point is a collision. Samples
#: s apart leave a point touching the surface at most ~0.7 s from one (worker.robot.motion's
#: LINK_SPACING 2 cm, HAND_SPACING 6 mm, FINGER_SPACING 4 mm), so the clearance is about that: a point
#: touching the surface is caught, one a few mm off it may be.
LINK_CLEARANCE = 0.015
HAND_CLEARANCE = 0.0045
FINGER_CLEARANCE = 0.004
#: Clearance (m) of carried points (perceived, POINT_VOXEL apart on the object's seen faces).
CARRIED_CLEARANCE = 0.005
#: Perceived points this close (m) to the robot's collision volume when the image was rendered are the
#: robot itself and are dropped (volume samples are 1 cm apart, so an interior point is <= 8.7 mm from
#: one; 1.5 cm also absorbs the gap between the visual meshes the camera sees and the collision hulls).
SELF_FILTER = 0.015
#: Points within this distance (m) of the start configuration's robot samples or carried points are
#: ignored for the whole motion: contact that exists at the start (fingers around a held object, a
#: held object resting on the table as the lift begins, a gripper touching a drawer) must not block
#: the move that ends it. The perceived counterpart of the old "pairs touching at the start" rule.
START_MARGIN = 0.02
#: How far from a robot base (m) points are kept: the Panda reaches 0.855 m; 1.3 m leaves room for a
#: held object and for everything a swinging elbow can meet.
WORKSPACE_RADIUS = 1.3
#: Cube edge (m) of the grid that screens samples before the KD-tree: at least the largest clearance,
#: so a point within any clearance of a sample lies in the sample's cube or a neighbouring one.
COARSE_VOXEL = 0.02
#: Cube edge (m) of the seen/unseen grid used only with unknown_space="occupied".
KNOWN_VOXEL = 0.02
#: Thickness (m) of the z slices in which support_height looks for the largest horizontal surface.
SUPPORT_SLICE = 0.01
#: Default policy for space no camera saw (see the module docstring for why "free"), and the choices.
UNKNOWN_SPACE = "free"
UNKNOWN_SPACE_POLICIES = ("free", "occupied")


@dataclass
class Hit:
    """Why a configuration is blocked.

    kind: "occupied" (a perceived point), "unknown" (unseen space, unknown_space="occupied") or
    "robot" (two arms meet); sample: the index of the robot/carried sample that met it (-1 for
    "robot"); point: (3,) sim-world position of the perceived point (or of the sample for "unknown"
    and of the contact for "robot"), metres; camera: the camera that saw the point ("" otherwise);
    labels: for "robot" the two links in program terms.
    """

    kind: str
    sample: int
    point: np.ndarray
    camera: str = ""
    labels: tuple[str, ...] = ()


class PerceivedScene:
    """Occupied space fused from the depth images of one episode, plus what the grippers carry.

    Args:
        bases: (A, 3) sim-world positions of the robots' bases, metres (the workspace is the union of
            balls of WORKSPACE_RADIUS around them).
        unknown_space: "free" or "occupied" (see the module docstring).

    Raises:
        ValueError: an unknown ``unknown_space``.
    """

    def __init__(self, bases: np.ndarray, unknown_space: str = UNKNOWN_SPACE):
        if unknown_space not in UNKNOWN_SPACE_POLICIES:
            raise ValueError(f'unknown_space must be "free" or "occupied", got {unknown_space!r}')
        self.bases = np.asarray(bases, dtype=np.float64).reshape(-1, 3)
        self.unknown_space = unknown_space
        self.cameras: list[str] = []
        self._points: dict[str, np.ndarray] = {}  # camera -> (N, 3) sim-world points
        #: arm -> ((M, 3) points in that arm's grasp-site frame, (M,) camera indices)
        self.carried: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._cloud: tuple[np.ndarray, np.ndarray] | None = None
        self._support: float | None = None  # support_height's cache (NaN: no points)
        self._known: np.ndarray | None = None
        lo = self.bases.min(axis=0) - WORKSPACE_RADIUS
        hi = self.bases.max(axis=0) + WORKSPACE_RADIUS
        self._grid_lo = lo
        self._grid_shape = np.ceil((hi - lo) / KNOWN_VOXEL).astype(int)
        if unknown_space == "occupied":
            self._known = np.zeros(tuple(self._grid_shape), dtype=bool)

    # -- building ----------------------------------------------------------------------------------
    def observe(self, camera: str, depth, intrinsics, pose, robot_volume: np.ndarray, holding=()) -> int:
        """Replace ``camera``'s points with those of a new depth image; returns how many were kept.

        Args:
            depth: (H, W) float32 metres along the optical axis. intrinsics: (3, 3).
            pose: (4, 4) camera-to-sim-world, OpenCV axes.
            robot_volume: (R, 3) sim-world samples of the robot's collision volume at render time
                (for the self-filter).
            holding: [(arm, (4, 4) sim-world grasp-site pose, finger opening m)] grippers holding
                something now; perceived points in their closing regions become their carried points.
        """
        if camera not in self.cameras:
            self.cameras.append(camera)
        depth = np.asarray(depth, dtype=np.float64)
        pose = np.asarray(pose, dtype=np.float64)
        pts = geo.transform_points(pose, geo.backproject(depth, intrinsics))
        near = np.zeros(len(pts), dtype=bool)
        for base in self.bases:
            near |= np.einsum("ij,ij->i", pts - base, pts - base) < WORKSPACE_RADIUS**2
        pts = pts[near]
        if len(pts):
            pts = pts[_first_per_voxel(pts, POINT_VOXEL)]
        if len(pts) and len(robot_volume):
            d, _ = _distance_tree(robot_volume).query(pts, distance_upper_bound=SELF_FILTER)
            pts = pts[~np.isfinite(d)]
        if self._known is not None:
            self._mark_seen(depth, np.asarray(intrinsics, dtype=np.float64), pose)
            self.mark_robot(robot_volume)
        self._points[camera] = pts
        self._cloud = None
        self._support = None
        cam = self.cameras.index(camera)
        for arm, site_pose, width in holding:
            inside = closing_region(pts, site_pose, width)
            if inside.any():
                # This camera's view of the held object replaces its earlier one; other cameras' stay.
                local = geo.transform_points(geo.invert_transform(site_pose), pts[inside])
                old_local, old_cams = self.carried.get(arm, (np.zeros((0, 3)), np.zeros(0, dtype=np.int32)))
                keep = old_cams != cam
                self.carried[arm] = (
                    np.concatenate([old_local[keep], local]),
                    np.concatenate([old_cams[keep], np.full(len(local), cam, dtype=np.int32)]),
                )
                self._points[camera] = pts[~inside]
        return len(self._points[camera])

    def grasp(self, arm: int, site_pose: np.ndarray, width: float) -> int:
        """The gripper of ``arm`` closed on something ``width`` m wide: the perceived points in its
        closing region (every camera's) become its carried points. Returns how many."""
        local_all, cams_all = [], []
        inv = geo.invert_transform(site_pose)
        for camera, pts in self._points.items():
            inside = closing_region(pts, site_pose, width)
            if inside.any():
                local_all.append(geo.transform_points(inv, pts[inside]))
                cams_all.append(np.full(int(inside.sum()), self.cameras.index(camera), dtype=np.int32))
                self._points[camera] = pts[~inside]
        if local_all:
            self.carried[arm] = (np.concatenate(local_all), np.concatenate(cams_all))
            self._cloud = None
            self._support = None
            return len(self.carried[arm][0])
        self.carried.pop(arm, None)
        return 0

    def release(self, arm: int, site_pose: np.ndarray) -> None:
        """The gripper of ``arm`` opened: its carried points stay where they are now (sim world),
        under the cameras that saw them, until those cameras observe again."""
        held = self.carried.pop(arm, None)
        if held is None:
            return
        world = geo.transform_points(site_pose, held[0])
        for cam in np.unique(held[1]):
            camera = self.cameras[int(cam)]
            self._points[camera] = np.concatenate([self._points[camera], world[held[1] == cam]])
        self._cloud = None
        self._support = None

    def cloud(self) -> tuple[np.ndarray, np.ndarray]:
        """The fused static cloud: ((N, 3) sim-world points, (N,) camera indices into ``cameras``)."""
        if self._cloud is None:
            parts = [self._points[c] for c in self.cameras]
            cams = [np.full(len(self._points[c]), i, dtype=np.int32) for i, c in enumerate(self.cameras)]
            self._cloud = (
                np.concatenate(parts) if parts else np.zeros((0, 3)),
                np.concatenate(cams) if cams else np.zeros(0, dtype=np.int32),
            )
        return self._cloud

    def support_height(self) -> float | None:
        """Sim-world z (m) of the support surface: the horizontal surface with the most perceived area
        (the table top in these tasks), or None before any observation.

        The fused cloud holds one point per POINT_VOXEL cube, so a 1 cm slice of z holds points in
        proportion to the horizontal area seen at that height; the fullest slice is the largest seen
        horizontal surface and its median z the estimate (within ~5 mm of the true top). A real robot
        finds its support plane the same way (a dominant-plane fit of its depth), without a scene model.
        """
        if self._support is not None:
            return self._support if self._support == self._support else None  # NaN: no points
        points, _ = self.cloud()
        if not len(points):
            self._support = float("nan")
            return None
        z = points[:, 2]
        bins = np.floor(z / SUPPORT_SLICE).astype(np.int64)
        values, counts = np.unique(bins, return_counts=True)
        fullest = values[int(np.argmax(counts))]
        self._support = float(np.median(z[bins == fullest]))
        return self._support

    # -- unknown space -----------------------------------------------------------------------------
    def _voxel_index(self, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        idx = np.floor((pts - self._grid_lo) / KNOWN_VOXEL).astype(np.int64)
        valid = np.all((idx >= 0) & (idx < self._grid_shape), axis=1)
        return idx, valid

    def _mark_seen(self, depth: np.ndarray, K: np.ndarray, pose: np.ndarray) -> None:
        """Voxels whose centre projects into the image in front of (or at) the measured depth."""
        shape = self._grid_shape
        axes = [self._grid_lo[i] + (np.arange(shape[i]) + 0.5) * KNOWN_VOXEL for i in range(3)]
        centres = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
        cam = geo.transform_points(geo.invert_transform(pose), centres)
        z = cam[:, 2]
        front = z > 1e-3
        u = np.full(len(z), -1, dtype=np.int64)
        v = np.full(len(z), -1, dtype=np.int64)
        u[front] = np.floor(K[0, 0] * cam[front, 0] / z[front] + K[0, 2]).astype(np.int64)
        v[front] = np.floor(K[1, 1] * cam[front, 1] / z[front] + K[1, 2]).astype(np.int64)
        h, w = depth.shape
        inside = front & (u >= 0) & (u < w) & (v >= 0) & (v < h)
        measured = np.zeros(len(z))
        measured[inside] = depth[v[inside], u[inside]]
        seen = inside & (measured > 0) & (z <= measured + KNOWN_VOXEL)
        self._known |= seen.reshape(tuple(shape))

    def mark_robot(self, robot_points: np.ndarray) -> None:
        """Space the robot occupies (or occupied) is known free: it was there."""
        if self._known is None or len(robot_points) == 0:
            return
        idx, valid = self._voxel_index(robot_points)
        idx = idx[valid]
        self._known[idx[:, 0], idx[:, 1], idx[:, 2]] = True

    def unknown(self, pts: np.ndarray) -> np.ndarray:
        """(N,) bool: the points lie in space no camera saw (always False with unknown_space="free")."""
        if self._known is None:
            return np.zeros(len(pts), dtype=bool)
        idx, valid = self._voxel_index(pts)
        out = np.zeros(len(pts), dtype=bool)
        ii = idx[valid]
        out[valid] = ~self._known[ii[:, 0], ii[:, 1], ii[:, 2]]
        return out

    # -- per motion ----------------------------------------------------------------------------------
    def obstacles(self, start_points: np.ndarray) -> "Obstacles":
        """The obstacles of one motion: the static cloud less the points within START_MARGIN of
        ``start_points`` ((K, 3) sim-world robot and carried samples at the start configuration)."""
        pts, cams = self.cloud()
        if len(pts) and len(start_points):
            d, _ = _distance_tree(start_points).query(pts, distance_upper_bound=START_MARGIN)
            keep = ~np.isfinite(d)
            pts, cams = pts[keep], cams[keep]
        return Obstacles(self, pts, cams)


class Obstacles:
    """The perceived points that count for one motion: a KD-tree, and in front of it a grid of
    ``COARSE_VOXEL`` cubes marking every cube within one cube of a point, so that only the samples
    that may be near a point are looked up in the tree (most samples of a configuration are not)."""

    def __init__(self, scene: PerceivedScene, points: np.ndarray, cameras: np.ndarray):
        from scipy import ndimage

        self.scene = scene
        self.points = points
        self.cameras = cameras
        self.tree = cKDTree(points) if len(points) else None
        if len(points):
            self._lo = points.min(axis=0) - COARSE_VOXEL
            idx = np.floor((points - self._lo) / COARSE_VOXEL).astype(np.int64)
            self._shape = idx.max(axis=0) + 2
            near = np.zeros(tuple(self._shape), dtype=bool)
            near[idx[:, 0], idx[:, 1], idx[:, 2]] = True
            self._near = ndimage.binary_dilation(near, structure=np.ones((3, 3, 3), dtype=bool))

    def _candidates(self, samples: np.ndarray) -> np.ndarray:
        """Indices of the samples in a cube next to a perceived point."""
        idx = np.floor((samples - self._lo) / COARSE_VOXEL).astype(np.int64)
        inside = np.all((idx >= 0) & (idx < self._shape), axis=1)
        out = np.flatnonzero(inside)
        ii = idx[out]
        return out[self._near[ii[:, 0], ii[:, 1], ii[:, 2]]]

    def first_hit(self, samples: np.ndarray, clearances: np.ndarray) -> Hit | None:
        """The sample of ``samples`` ((K, 3) sim-world) deepest inside its clearance ((K,) metres) of a
        perceived point or, with unknown_space="occupied", the first in unseen space; None when all
        are clear."""
        if self.tree is not None:
            cand = self._candidates(samples)
            if len(cand):
                d, i = self.tree.query(samples[cand], distance_upper_bound=float(clearances[cand].max()))
                close = np.flatnonzero(d < clearances[cand])
                if len(close):
                    j = int(close[np.argmin(d[close] - clearances[cand][close])])
                    k, p = int(cand[j]), int(i[j])
                    return Hit("occupied", k, self.points[p], self.scene.cameras[int(self.cameras[p])])
        if self.scene.unknown_space == "occupied":
            unseen = np.flatnonzero(self.scene.unknown(samples))
            if len(unseen):
                k = int(unseen[0])
                return Hit("unknown", k, samples[k])
        return None


def _distance_tree(points: np.ndarray) -> cKDTree:
    """A KD-tree over ``points`` ((N, 3)) for one batch of nearest-distance queries: built without
    balancing or shrinking its nodes, which halves the build (measured: a 47k-sample robot volume
    queried by 32k points, 23 -> 14 ms of CPU) and leaves every returned distance the same (the
    nearest neighbour's distance does not depend on the tree's shape; only which of two equally near
    points is named could, and these callers use distances only)."""
    return cKDTree(points, balanced_tree=False, compact_nodes=False)


def _first_per_voxel(pts: np.ndarray, voxel: float) -> np.ndarray:
    """Ascending indices of the first of ``pts`` ((N, 3), N >= 1) in each occupied ``voxel`` cube.

    The same indices as ``np.unique(keys, axis=0, return_index=True)`` on the integer cube coordinates,
    sorted (np.unique's sort is stable, so each index is the cube's first point); the coordinates are
    folded into one int64 per point first, which sorts far faster than rows (measured on the 65k points
    of a Lift depth frame on the busy 2-core machine: 111 ms -> 23 ms per observation). Points lie
    within WORKSPACE_RADIUS of a robot base here, so each axis spans a few hundred cubes and the folded
    code cannot overflow."""
    keys = np.floor(pts / voxel).astype(np.int64)
    keys -= keys.min(axis=0)
    span = keys.max(axis=0) + 1
    codes = (keys[:, 0] * span[1] + keys[:, 1]) * span[2] + keys[:, 2]
    _, first = np.unique(codes, return_index=True)
    return np.sort(first)


def closing_region(pts: np.ndarray, site_pose: np.ndarray, width: float) -> np.ndarray:
    """(N,) bool: sim-world ``pts`` between the finger pads of a gripper whose grasp site is at
    ``site_pose`` ((4, 4) sim world) with the fingers ``width`` m apart.

    The region in the grasp-site frame (robosuite's grip site: fingers close along x, z points from the
    hand to the fingertips): |x| <= width/2 + 5 mm, |y| <= 3 cm (an object is wider than the 1.6 cm
    pads), -4.5 cm <= z <= 1 cm (the Panda's pads reach about 4.5 cm up from the grip site, measured on
    the model's finger geoms).
    """
    if len(pts) == 0:
        return np.zeros(0, dtype=bool)
    local = geo.transform_points(geo.invert_transform(site_pose), pts)
    return (
        (np.abs(local[:, 0]) <= width / 2 + 0.005)
        & (np.abs(local[:, 1]) <= 0.03)
        & (local[:, 2] >= -0.045)
        & (local[:, 2] <= 0.01)
    )
