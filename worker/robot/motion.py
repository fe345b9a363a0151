"""Collision-checked joint-space motion against the perceived scene: check the straight path, plan
around collisions with OMPL.

What the planner knows: the robot's own model (its links' collision geometry, joint limits, kinematics:
a robot knows itself) and the occupied space its cameras saw (worker.robot.occupancy.PerceivedScene).
Nothing of the simulator's objects, their poses or their contacts enters a plan or a message. The
robot's model is compiled from the robots' own MJCF descriptions (arm, mount, gripper: what a real
robot's planner builds from its URDF; RobotModel.from_adapter), never from the simulator's model, so it
holds no scene object at all; joint values come from the robot's proprioception, matched by name.

Robot geometry: every collision geom of each robot (arm links, hand, fingers, mount) is sampled on its
surface 4 mm to 2 cm apart (``LINK_SPACING`` ...) (meshes by their convex hull, which is what MuJoCo collides)
and on its volume (for the self-filter). A configuration is blocked when a surface sample of a moving
arm, or a point that arm carries, lies within its clearance of a perceived point (or in unseen
space with unknown_space="occupied"), or when two arms' collision geoms penetrate (MuJoCo's collision on
the robots' own model; links of one arm are not checked against each other, as before). Perceived
points within occupancy.START_MARGIN of the start configuration are ignored for the whole motion
(contact that exists at the start must not block the move that ends it).

Cost of one configuration check (measured on the 2-core CPU of this project's CI machine, robosuite
Lift, Panda, after a three-camera get_observation: ~42k perceived points, ~4100 surface samples):
0.3-0.65 ms (mj_kinematics 0.01 ms, placing the samples 0.25-0.45 ms, the coarse-grid screen and the
KD-tree lookup of the few samples near a point ~0.15 ms); building a motion's obstacles (the start-margin
filter, the KD-tree and the screening grid) 25-110 ms once per move. test_perceived_motion checks the
per-configuration cost stays under 3 ms.
Planning uses OMPL's RRTConnect in the joint space of the moving arm(s) with the joint limits as
bounds, then OMPL's path simplification.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

import numpy as np
from scipy.spatial import ConvexHull

from .occupancy import (
    CARRIED_CLEARANCE,
    FINGER_CLEARANCE,
    HAND_CLEARANCE,
    LINK_CLEARANCE,
    Hit,
    Obstacles,
    PerceivedScene,
)

#: Penetration (m) beyond which two arms' geoms count as colliding; grazing contacts are not collisions.
PENETRATION_TOL = 0.002
#: Joint-space resolution (rad) at which a straight segment is checked.
CHECK_RESOLUTION = 0.02
PLANNING_TIME = 3.0  # seconds RRTConnect may search
#: Spacing (m) of the samples of each kind of robot part and the clearance (m) they are checked with
#: (occupancy.LINK_CLEARANCE ...): on a surface sampled s apart, a point is at most ~0.7 s from a sample.
#: The arm links, which stay far from what a program manipulates, are sampled coarsely (2 cm, 1.5 cm
#: clearance) to keep a check near a millisecond; the hand at 6 mm (4.5 mm clearance: a top-down grasp
#: 2-3 cm below a can's rim brings the hand's collision hull within a few mm of it, which the reference
#: PickPlaceCan program relies on); the fingers finely (4 mm) because an open Panda gripper around a
#: 4-5 cm cube leaves only about 1.5 cm on each side.
LINK_SPACING = 0.02
HAND_SPACING = 0.006
FINGER_SPACING = 0.004
#: Spacing (m) of the samples the self-filter uses (surface and interior of every robot geom).
SELF_SPACING = 0.015


@dataclass
class MotionPlan:
    """Outcome of planning: ``waypoints`` (list of {arm: (7,) joints}) ending at the goal, or none.

    ``collision`` says in program terms what blocked the straight path or the goal (robot link, the
    perceived point in the sim world frame, the camera); ``hit`` is the raw Hit, ``link`` its link."""

    ok: bool
    method: str  # "straight" | "rrt_connect" | "none"
    waypoints: list[dict[int, np.ndarray]] = field(default_factory=list)
    planning_ms: float = 0.0
    checks: int = 0
    collision: str = ""
    message: str = ""
    hit: Hit | None = None
    link: str = ""


class PlannerCache:
    """One JointPlanner per set of robots (a hard reset builds new robot models, and a new planner).

    The planner's RobotModel is compiled from the robots' own descriptions (RobotModel.from_adapter);
    the cache keys on those robot-model objects and the robots' proprioception layout, never on (or
    holding) the simulator's model."""

    def __init__(self):
        self._key: tuple = ()
        self._planner: JointPlanner | None = None

    @staticmethod
    def _robots_key(adapter) -> tuple:
        return tuple(
            (robot.robot_model, tuple(robot._ref_joint_pos_indexes), tuple(robot._ref_gripper_joint_pos_indexes))
            for robot in adapter.robots
        )

    def _current(self, key: tuple) -> bool:
        return len(key) == len(self._key) and all(
            new[0] is old[0] and new[1:] == old[1:] for new, old in zip(key, self._key)
        )

    def get(self, adapter) -> "JointPlanner":
        key = self._robots_key(adapter)
        if self._planner is None or not self._current(key):
            robot = RobotModel.from_adapter(adapter)
            self._planner = JointPlanner(robot, {a: robot.joint_limits(a) for a in range(robot.arms)})
            self._key = key
        return self._planner


@dataclass
class ArmDescription:
    """One robot as its own description knows it (names, never simulator ids).

    ``xml``: its MJCF (arm, mount and gripper merged, the base placed in the world frame), mesh paths
    absolute; ``root``: its root body; ``joints`` / ``fingers``: its arm and finger joint names with
    ``qpos`` / ``finger_qpos``, where the robot's proprioception vector (the simulator's qpos layout,
    SimAdapter.robot_qpos) holds each; ``site``: its grasp site; ``finger_geoms``: {"left finger":
    geom names, "right finger": geom names}."""

    xml: str
    root: str
    joints: list[str]
    qpos: list[int]
    fingers: list[str]
    finger_qpos: list[int]
    site: str
    finger_geoms: dict[str, list[str]]


def compile_robots(xmls: list[str]):
    """A standalone MjModel of the given robots' MJCF descriptions and nothing else.

    Each description's bodies and assets go into robosuite's empty world (its base.xml: the compiler
    and option settings every robosuite and LIBERO task is compiled with), as robosuite's own
    ManipulationTask merges robots into a task; actuators, sensors, tendons and equalities (the
    dynamics) are left out, as the planner only needs kinematics and collision geometry."""
    import xml.etree.ElementTree as ET

    from robosuite.models.world import MujocoWorldBase

    world = MujocoWorldBase()
    assets = set()
    for text in xmls:
        root = ET.fromstring(text)
        for body in root.find("worldbody"):
            world.worldbody.append(body)
        for asset in root.find("asset") if root.find("asset") is not None else ():
            if (asset.tag, asset.get("name")) not in assets:
                assets.add((asset.tag, asset.get("name")))
                world.asset.append(asset)
        for exclude in root.find("contact") if root.find("contact") is not None else ():
            world.contact.append(exclude)
    return world.get_model(mode="mujoco")


def _geom_frame_samples(model, g: int, spacing: float) -> tuple[np.ndarray, np.ndarray]:
    """(surface, volume) samples of geom ``g`` in its own frame, metres.

    A grid of ``spacing`` over the geom's extent; the volume keeps grid points inside, the surface
    projects the points within one spacing of the boundary onto it and thins them to one per cube.
    Meshes use their convex hull (MuJoCo collides convex hulls); boxes are six planes too.
    """
    import mujoco

    kind, size = model.geom_type[g], model.geom_size[g]
    if kind == mujoco.mjtGeom.mjGEOM_MESH:
        mesh = model.geom_dataid[g]
        adr, n = model.mesh_vertadr[mesh], model.mesh_vertnum[mesh]
        verts = np.asarray(model.mesh_vert[adr : adr + n], dtype=np.float64)
        planes = ConvexHull(verts).equations  # (F, 4) outward normal, offset
        lo, hi = verts.min(axis=0), verts.max(axis=0)
    elif kind == mujoco.mjtGeom.mjGEOM_BOX:
        eye = np.vstack([np.eye(3), -np.eye(3)])
        planes = np.hstack([eye, -np.concatenate([size, size])[:, None]])
        lo, hi = -size, size
    else:
        planes = None
        r = size[0]
        h = size[1] if kind in (mujoco.mjtGeom.mjGEOM_CYLINDER, mujoco.mjtGeom.mjGEOM_CAPSULE) else 0.0
        extra = r if kind == mujoco.mjtGeom.mjGEOM_CAPSULE else 0.0
        lo, hi = -np.array([r, r, h + extra]), np.array([r, r, h + extra])
    axes = [np.arange(lo[i], hi[i] + spacing, spacing) for i in range(3)]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    grid = grid + (lo + hi) / 2 - (np.array([a[0] + a[-1] for a in axes]) / 2)  # centre the grid
    if planes is not None:
        dist = grid @ planes[:, :3].T + planes[:, 3]
        sdf = dist.max(axis=1)
        nearest = planes[dist.argmax(axis=1), :3]
        surface = grid - sdf[:, None] * nearest
    else:
        radial = np.linalg.norm(grid[:, :2], axis=1)
        if kind == mujoco.mjtGeom.mjGEOM_SPHERE:
            norm = np.linalg.norm(grid, axis=1)
            sdf = norm - r
            surface = grid * (r / np.maximum(norm, 1e-9))[:, None]
        elif kind == mujoco.mjtGeom.mjGEOM_CAPSULE:
            axis_point = np.zeros_like(grid)
            axis_point[:, 2] = np.clip(grid[:, 2], -h, h)
            off = grid - axis_point
            norm = np.linalg.norm(off, axis=1)
            sdf = norm - r
            surface = axis_point + off * (r / np.maximum(norm, 1e-9))[:, None]
        else:  # cylinder
            side, cap = radial - r, np.abs(grid[:, 2]) - h
            sdf = np.maximum(side, cap)
            surface = grid.copy()
            on_side = side >= cap
            surface[on_side, :2] *= (r / np.maximum(radial[on_side], 1e-9))[:, None]
            surface[~on_side, 2] = np.sign(grid[~on_side, 2]) * h
    volume = grid[sdf <= 0]
    shell = surface[np.abs(sdf) <= spacing]
    if len(shell):
        _, first = np.unique(np.floor(shell / spacing).astype(np.int64), axis=0, return_index=True)
        shell = shell[np.sort(first)]
    return shell, volume


class RobotModel:
    """The robot's knowledge of itself: kinematics on a model compiled from the robots' own
    descriptions (their MJCF: arm, mount, gripper; no scene object), and surface/volume samples of
    its links.

    Args:
        arms: one ArmDescription per arm (arm index = position). Everything is looked up by name in
            the compiled model; joint values come from the robot's proprioception vector (the
            simulator's qpos layout: ``qpos_indexes`` / ``finger_indexes`` address it).
    """

    def __init__(self, arms: list[ArmDescription]):
        import mujoco

        self.mujoco = mujoco
        self.model = compile_robots([arm.xml for arm in arms])
        m = self.model
        bodies = mujoco.mjtObj.mjOBJ_BODY
        roots = [mujoco.mj_name2id(m, bodies, arm.root) for arm in arms]
        owner = np.full(m.ngeom, -1, dtype=np.int32)
        for g in range(m.ngeom):
            root = m.body_rootid[m.geom_bodyid[g]]
            if root in roots:
                owner[g] = roots.index(root)
        self.owner = owner
        collides = (m.geom_contype != 0) | (m.geom_conaffinity != 0)
        m.geom_contype[owner < 0] = 0
        m.geom_conaffinity[owner < 0] = 0
        self.data = mujoco.MjData(m)
        self._joint_ids = {a: [m.joint(n).id for n in arm.joints] for a, arm in enumerate(arms)}
        #: {arm: addresses of its 7 joints in the proprioception vector (simulator qpos layout)}
        self.qpos_indexes = {a: list(arm.qpos) for a, arm in enumerate(arms)}
        self.finger_indexes = [i for arm in arms for i in arm.finger_qpos]
        # ... and where the compiled model keeps the same joints (matched by name).
        self._model_qpos = {a: [int(m.jnt_qposadr[j]) for j in ids] for a, ids in self._joint_ids.items()}
        self._model_finger_qpos = [int(m.joint(n).qposadr[0]) for arm in arms for n in arm.fingers]
        self.sites = {a: m.site(arm.site).id for a, arm in enumerate(arms)}
        #: geom name -> geom id of the compiled model (every robot geom is named)
        self.geom_ids = {m.geom(g).name: g for g in range(m.ngeom) if m.geom(g).name}
        finger_geoms = {
            a: {side: {self.geom_ids[n] for n in names} for side, names in arm.finger_geoms.items()}
            for a, arm in enumerate(arms)
        }
        self.arms = len(arms)
        labels: list[str] = []
        surf: dict[int, list] = {a: [] for a in range(self.arms)}
        vol: dict[int, list] = {a: [] for a in range(self.arms)}
        self.geom_label = {}
        supported = (
            mujoco.mjtGeom.mjGEOM_MESH,
            mujoco.mjtGeom.mjGEOM_BOX,
            mujoco.mjtGeom.mjGEOM_SPHERE,
            mujoco.mjtGeom.mjGEOM_CAPSULE,
            mujoco.mjtGeom.mjGEOM_CYLINDER,
        )
        # Collision geoms are checked; every robot geom, visual ones included (the camera sees the
        # visual meshes, and the Panda's link7 has no collision geom), feeds the self-filter.
        for g in np.flatnonzero((owner >= 0) & np.isin(m.geom_type, supported)):
            arm = int(owner[g])
            label = self._label(arm, int(g), finger_geoms.get(arm, {}))
            if collides[g]:
                self.geom_label[int(g)] = label
            if label not in labels:
                labels.append(label)
            finger = "finger" in label
            spacing, clearance = (
                (FINGER_SPACING, FINGER_CLEARANCE)
                if finger
                else (HAND_SPACING, HAND_CLEARANCE)
                if "hand" in label
                else (LINK_SPACING, LINK_CLEARANCE)
            )
            shell = _geom_frame_samples(m, int(g), spacing)[0] if collides[g] else np.zeros((0, 3))
            self_shell, volume = _geom_frame_samples(m, int(g), SELF_SPACING)
            if "mount" in label:
                volume = volume[:0]  # the pedestal's interior is far below anything a camera sees
            # Parts that no arm joint moves (the mount, link0) never collide differently: not checked.
            moves = collides[g] and any(j in self._joint_ids[arm] for j in self._ancestor_joints(int(m.geom_bodyid[g])))
            R = np.empty(9)
            mujoco.mju_quat2Mat(R, m.geom_quat[g])
            R = R.reshape(3, 3)
            body = int(m.geom_bodyid[g])
            for out, pts in ((surf, shell if moves else shell[:0]), (vol, np.concatenate([self_shell, volume]))):
                local = pts @ R.T + m.geom_pos[g]
                n = len(local)
                out[arm].append((np.full(n, body), local, np.full(n, labels.index(label)), np.full(n, clearance)))
        self.labels = labels
        #: arm -> (body ids (K,), body-frame points (K, 3), label indices (K,), clearances (K,) m)
        self.surface = {a: self._stack(surf[a]) for a in surf}
        self.volume = {a: self._stack(vol[a]) for a in vol}

    @classmethod
    def from_adapter(cls, adapter) -> "RobotModel":
        """The RobotModel of an adapter's robosuite robots, from their robot models alone (never the
        simulator's model): each robot's MJCF as robosuite assembled it (gripper and mount merged,
        base pose set), its joint and geom names, and its proprioception layout."""
        arms = []
        for a, robot in enumerate(adapter.robots):
            gripper = robot.gripper
            arms.append(
                ArmDescription(
                    xml=robot.robot_model.get_xml(),
                    root=robot.robot_model.root_body,
                    joints=list(robot.robot_joints),
                    qpos=[int(i) for i in robot._ref_joint_pos_indexes],
                    fingers=list(gripper.joints),
                    finger_qpos=[int(i) for i in robot._ref_gripper_joint_pos_indexes],
                    site=adapter.grip_site(a),
                    finger_geoms={
                        side: list(gripper.important_geoms.get(key, []))
                        for side, key in (("left finger", "left_finger"), ("right finger", "right_finger"))
                    },
                )
            )
        return cls(arms)

    def joint_limits(self, arm: int) -> np.ndarray:
        """(7, 2) lower/upper limits (radians) of the arm's joints, from its description."""
        return np.array(self.model.jnt_range[self._joint_ids[arm]], dtype=np.float64)

    def geom_of(self, name: str | None) -> int:
        """The compiled model's id of the robot geom called ``name``; -1 for anything else."""
        return self.geom_ids.get(name, -1) if name else -1

    @staticmethod
    def _stack(parts):
        if not parts:
            return np.zeros(0, dtype=np.int64), np.zeros((0, 3)), np.zeros(0, dtype=np.int64), np.zeros(0)
        return tuple(np.concatenate([p[i] for p in parts]) for i in range(4))

    def _ancestor_joints(self, body: int) -> list[int]:
        """Joint ids on the kinematic chain from the world down to ``body``."""
        m, out = self.model, []
        while body > 0:
            out.extend(range(m.body_jntadr[body], m.body_jntadr[body] + m.body_jntnum[body]))
            body = m.body_parentid[body]
        return out

    def _label(self, arm: int, g: int, fingers: dict) -> str:
        """A geom's link in program terms: "arm0 link3", "arm0 hand", "arm0 left finger", "arm0 mount"."""
        for side, geoms in fingers.items():
            if g in geoms:
                return f"arm{arm} {side}"
        name = self.mujoco.mj_id2name(self.model, self.mujoco.mjtObj.mjOBJ_BODY, int(self.model.geom_bodyid[g])) or ""
        match = re.search(r"link(\d+)$", name)
        if match:
            return f"arm{arm} link{match.group(1)}"
        if "finger" in name:
            return f"arm{arm} finger"
        if "gripper" in name or "hand" in name or "eef" in name:
            return f"arm{arm} hand"
        if "mount" in name or "pedestal" in name or "base" in name:
            return f"arm{arm} mount"
        return f"arm{arm} body"

    # -- kinematics --------------------------------------------------------------------------------
    def set_config(self, joints: dict[int, np.ndarray]) -> None:
        """Forward kinematics for the given arms' joints (other arms keep their last setting)."""
        for arm, q in joints.items():
            self.data.qpos[self._model_qpos[arm]] = q
        self.mujoco.mj_kinematics(self.model, self.data)

    def set_fingers(self, qpos: np.ndarray) -> None:
        """Take the finger joints from a full simulator qpos (proprioception; fingers do not move
        during an arm motion). Call set_config afterwards for the kinematics."""
        self.data.qpos[self._model_finger_qpos] = np.asarray(qpos)[self.finger_indexes]

    def arm_joints(self, qpos: np.ndarray) -> dict[int, np.ndarray]:
        """Each arm's (7,) joints read from a full simulator qpos (the robot's proprioception)."""
        return {a: np.asarray(qpos[idx], dtype=np.float64) for a, idx in self.qpos_indexes.items()}

    def site_pose(self, arm: int) -> np.ndarray:
        """(4, 4) sim-world pose of the arm's grasp site at the current setting."""
        T = np.eye(4)
        T[:3, :3] = self.data.site_xmat[self.sites[arm]].reshape(3, 3)
        T[:3, 3] = self.data.site_xpos[self.sites[arm]]
        return T

    def points(self, arm: int, which: str = "surface") -> np.ndarray:
        """(K, 3) sim-world samples of the arm at the current setting (``which``: surface/volume)."""
        bodies, local, _, _ = (self.surface if which == "surface" else self.volume)[arm]
        return np.einsum("kij,kj->ki", self.data.xmat[bodies].reshape(-1, 3, 3), local) + self.data.xpos[bodies]

    def arm_contacts(self, arms: list[int]) -> list[tuple[str, str, np.ndarray]]:
        """Penetrations deeper than PENETRATION_TOL between different arms at the current setting:
        [(link, link, (3,) sim-world contact position)]."""
        if self.arms < 2:
            return []
        self.mujoco.mj_collision(self.model, self.data)
        out = []
        for i in range(self.data.ncon):
            c = self.data.contact[i]
            a, b = self.owner[c.geom1], self.owner[c.geom2]
            if c.dist < -PENETRATION_TOL and a >= 0 and b >= 0 and a != b and (a in arms or b in arms):
                out.append((self.geom_label.get(c.geom1, ""), self.geom_label.get(c.geom2, ""), np.array(c.pos)))
        return out


class JointPlanner:
    """Plans joint-space motions for one or both arms against a PerceivedScene."""

    def __init__(self, robot: RobotModel, limits: dict[int, np.ndarray]):
        self.robot = robot
        self.limits = limits
        self.qpos_indexes = robot.qpos_indexes
        self.checks = 0

    def tcp_positions(self, qpos: np.ndarray, joints: dict[int, np.ndarray]) -> dict[int, np.ndarray]:
        """Grasp-site positions (sim world frame) of the given arms at ``joints`` (others at ``qpos``)."""
        self.robot.set_fingers(qpos)
        self.robot.set_config({**self.robot.arm_joints(qpos), **joints})
        return {arm: np.array(self.robot.data.site_xpos[self.robot.sites[arm]]) for arm in joints}

    def site_poses(self, joints: dict[int, np.ndarray]) -> dict[int, np.ndarray]:
        """(4, 4) sim-world grasp-site poses of the given arms at ``joints``."""
        self.robot.set_config(joints)
        return {arm: self.robot.site_pose(arm) for arm in joints}

    def robot_volume(self, qpos: np.ndarray) -> np.ndarray:
        """(R, 3) sim-world volume samples of every arm at the configuration in ``qpos``."""
        self.robot.set_fingers(qpos)
        self.robot.set_config(self.robot.arm_joints(qpos))
        return np.concatenate([self.robot.points(a, "volume") for a in range(self.robot.arms)])

    def _samples(self, arms: list[int], scene: PerceivedScene) -> tuple[np.ndarray, np.ndarray, list]:
        """Sim-world samples of the moving arms and what they carry at the current setting: ((K, 3)
        points, (K,) clearances in metres, [(arm, count, carried?)] blocks in order)."""
        parts, clear, owners = [], [], []
        for arm in arms:
            pts = self.robot.points(arm)
            parts.append(pts)
            clear.append(self.robot.surface[arm][3])
            owners.append((arm, len(pts), False))
            held = scene.carried.get(arm)
            if held is not None and len(held[0]):
                T = self.robot.site_pose(arm)
                parts.append(held[0] @ T[:3, :3].T + T[:3, 3])
                clear.append(np.full(len(held[0]), CARRIED_CLEARANCE))
                owners.append((arm, len(held[0]), True))
        if not parts:
            return np.zeros((0, 3)), np.zeros(0), owners
        return np.concatenate(parts), np.concatenate(clear), owners

    def _label_of(self, arms: list[int], owners, k: int) -> str:
        """The program-terms name of sample ``k`` of a _samples() block list."""
        for arm, count, carried in owners:
            if k < count:
                if carried:
                    return f"the object held by arm{arm}"
                return self.robot.labels[int(self.robot.surface[arm][2][k])]
            k -= count
        return "the robot"

    def plan(
        self,
        qpos: np.ndarray,
        goals: dict[int, np.ndarray],
        scene: PerceivedScene,
        describe,
        planning_time: float = PLANNING_TIME,
    ) -> MotionPlan:
        """Plan from the robot configuration in ``qpos`` (only the arms' joints are read) to ``goals``
        ({arm: (7,) joints}) through the perceived ``scene``. ``describe(link, hit)`` turns a blocking
        Hit into the program-terms text of MotionPlan.collision."""
        started = time.perf_counter()
        self.checks = 0
        robot = self.robot
        arms = sorted(goals)
        current = robot.arm_joints(qpos)
        start = np.concatenate([current[a] for a in arms])
        goal = np.concatenate([np.asarray(goals[a], dtype=np.float64) for a in arms])
        robot.set_fingers(qpos)
        robot.set_config(current)
        start_samples, _, _ = self._samples(arms, scene)
        scene.mark_robot(start_samples)
        obstacles: Obstacles = scene.obstacles(start_samples)
        allowed_arm_contacts = {(a, b) for a, b, _ in robot.arm_contacts(arms)}

        def blocking(q: np.ndarray) -> tuple[str, Hit] | None:
            self.checks += 1
            robot.set_config(self._split(arms, q))
            samples, clearances, owners = self._samples(arms, scene)
            hit = obstacles.first_hit(samples, clearances)
            if hit is not None:
                return self._label_of(arms, owners, hit.sample), hit
            for a, b, pos in robot.arm_contacts(arms):
                if (a, b) not in allowed_arm_contacts:
                    return f"{a} and {b}", Hit("robot", -1, pos, labels=(a, b))
            return None

        def finish(plan: MotionPlan) -> MotionPlan:
            plan.planning_ms = round((time.perf_counter() - started) * 1000.0, 2)
            plan.checks = self.checks
            robot.set_config(current)
            return plan

        def blocked(found, method, waypoints=(), message="", ok=False) -> MotionPlan:
            link, hit = found
            return MotionPlan(
                ok, method, list(waypoints), collision=describe(link, hit), message=message, hit=hit, link=link
            )

        found = blocking(goal)
        if found:
            return finish(blocked(found, "none", message="the target configuration is in occupied space"))
        steps = max(1, int(np.ceil(np.abs(goal - start).max() / CHECK_RESOLUTION)))
        first_hit = None
        for i in range(1, steps):
            first_hit = blocking(start + (goal - start) * (i / steps))
            if first_hit:
                break
        if first_hit is None:
            return finish(MotionPlan(True, "straight", [self._split(arms, goal)]))
        path = self._rrt_connect(arms, start, goal, lambda q: blocking(q) is not None, planning_time)
        if path is None:
            return finish(blocked(first_hit, "none", message=f"no collision-free path found in {planning_time:g} s"))
        return finish(blocked(first_hit, "rrt_connect", [self._split(arms, q) for q in path[1:]], ok=True))

    def _split(self, arms: list[int], q: np.ndarray) -> dict[int, np.ndarray]:
        return {arm: np.array(q[7 * k : 7 * k + 7]) for k, arm in enumerate(arms)}

    def _rrt_connect(self, arms, start, goal, blocking, planning_time):
        from ompl import base as ob
        from ompl import geometric as og
        from ompl import util as ou

        ou.setLogLevel(ou.LOG_WARN)
        dim = len(start)
        space = ob.RealVectorStateSpace(dim)
        bounds = ob.RealVectorBounds(dim)
        for k, arm in enumerate(arms):
            for j in range(7):
                bounds.setLow(7 * k + j, float(self.limits[arm][j, 0]))
                bounds.setHigh(7 * k + j, float(self.limits[arm][j, 1]))
        space.setBounds(bounds)
        setup = og.SimpleSetup(space)
        setup.setStateValidityChecker(lambda s: not blocking(np.array([s[i] for i in range(dim)])))
        info = setup.getSpaceInformation()
        # Resolution is a fraction of the space's extent; make it CHECK_RESOLUTION radians.
        info.setStateValidityCheckingResolution(CHECK_RESOLUTION / space.getMaximumExtent())
        s, g = space.allocState(), space.allocState()
        for i in range(dim):
            s[i], g[i] = float(start[i]), float(goal[i])
        setup.setStartAndGoalStates(s, g)
        setup.setPlanner(og.RRTConnect(info))
        status = setup.solve(planning_time)
        if str(status) != "Exact solution":
            return None
        setup.simplifySolution()
        path = setup.getSolutionPath()
        return [np.array([path.getState(i)[j] for j in range(dim)]) for i in range(path.getStateCount())]


def contact_forces(model, data, robot: RobotModel, arms: list[int]) -> dict[str, float]:
    """External contact force (N) on each link of the given arms, as the robot senses it.

    The magnitude of the contact force (normal and friction, mujoco.mj_contactForce) of every contact
    between a link of one of ``arms`` and anything that is not part of that same arm, summed per link
    in program terms ({"arm0 left finger": 12.3, ...}). On a real arm this is the joint-torque residual
    or a wrist force-torque sensor; the other side of the contact is never named.
    """
    import mujoco

    out: dict[str, float] = {}
    wrench = np.zeros(6)
    # The simulator's geoms are matched to the robot's own model by name (geom names are unique in a
    # MuJoCo model); a geom that is not the robot's maps to -1.
    mine_of: dict[int, int] = {}

    def robot_geom(g: int) -> int:
        if g not in mine_of:
            mine_of[g] = robot.geom_of(mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_GEOM, g))
        return mine_of[g]

    for i in range(data.ncon):
        c = data.contact[i]
        for mine, other in ((robot_geom(c.geom1), robot_geom(c.geom2)), (robot_geom(c.geom2), robot_geom(c.geom1))):
            arm = robot.owner[mine] if mine >= 0 else -1
            theirs = robot.owner[other] if other >= 0 else -1
            if arm in arms and theirs != arm and mine in robot.geom_label:
                mujoco.mj_contactForce(model, data, i, wrench)
                label = robot.geom_label[mine]
                out[label] = out.get(label, 0.0) + float(np.linalg.norm(wrench[:3]))
                break
    return out
