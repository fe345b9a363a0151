"""Collision-checked joint-space motion: check the straight path, plan around collisions with OMPL.

Collision model: the simulator's own geoms. A configuration collides when a geom of a robot (arm,
gripper, mount) penetrates a geom that is not part of the same robot deeper than ``PENETRATION_TOL``.
An object held between both finger pads at the start is attached to that gripper: in every checked
configuration it moves rigidly with the grasp site, it is ignored against its own gripper and checked
against everything else. An object held by both arms (a pot lifted by its two handles) moves with
the first arm's grasp site and is ignored against both robots holding it; a both-arm move that keeps
the grippers' relative pose carries it consistently. Contacts present (or within 2 mm) in the start
configuration are allowed for the whole motion (a held object resting on the table as the lift
begins, a gripper touching a drawer).

Checks run on a scratch MjData (set qpos, mj_kinematics + mj_collision): about 0.1 ms per
configuration in robosuite scenes (SIM_FACTS.md). Planning uses OMPL's RRTConnect in the joint space
of the moving arm(s) with the joint limits as bounds, then OMPL's path simplification.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

#: Penetration (m) beyond which two geoms count as colliding; grazing contacts are not collisions.
PENETRATION_TOL = 0.002
#: Joint-space resolution (rad) at which a straight segment is checked.
CHECK_RESOLUTION = 0.02
PLANNING_TIME = 3.0  # seconds RRTConnect may search


@dataclass
class MotionPlan:
    """Outcome of planning: ``waypoints`` (list of {arm: (7,) joints}) ending at the goal, or none."""

    ok: bool
    method: str  # "straight" | "rrt_connect" | "none"
    waypoints: list[dict[int, np.ndarray]] = field(default_factory=list)
    planning_ms: float = 0.0
    checks: int = 0
    collision: str = ""  # "<robot geom> x <other geom>" that blocked the straight path or the goal
    message: str = ""


class PlannerCache:
    """One JointPlanner per simulator model (a hard reset builds a new model)."""

    def __init__(self):
        self._model = None
        self._planner: JointPlanner | None = None

    def get(self, adapter) -> "JointPlanner":
        model = adapter.sim.model._model
        if self._model is not model:
            sim_model = adapter.sim.model
            arms = range(len(adapter.robots))
            roots = [sim_model.body_name2id(adapter.robots[a].robot_model.root_body) for a in arms]
            fingers = {}
            for a in arms:
                geoms = adapter.robots[a].gripper.important_geoms
                fingers[a] = tuple(
                    {sim_model.geom_name2id(n) for n in geoms.get(side, [])} for side in ("left_finger", "right_finger")
                )
            self._planner = JointPlanner(
                CollisionChecker(model, roots),
                {a: list(adapter.robots[a]._ref_joint_pos_indexes) for a in arms},
                {a: adapter.joint_limits(a) for a in arms},
                {a: sim_model.site_name2id(adapter.grip_site(a)) for a in arms},
                fingers,
            )
            self._model = model
        return self._planner


class CollisionChecker:
    """Kinematic collision queries on a scratch copy of the simulator state."""

    def __init__(self, model, robot_roots: list[int]):
        import mujoco

        self.mujoco = mujoco
        self.model = model
        self.data = mujoco.MjData(model)
        # Geom -> owning robot index (-1 for the rest of the scene).
        owner = np.full(model.ngeom, -1, dtype=np.int32)
        for g in range(model.ngeom):
            root = model.body_rootid[model.geom_bodyid[g]]
            if root in robot_roots:
                owner[g] = robot_roots.index(root)
        self.owner = owner
        self.checks = 0

    def colliding_pairs(
        self,
        qpos: np.ndarray,
        tol: float = PENETRATION_TOL,
        attached: list | None = None,
        owner: np.ndarray | None = None,
        shared: dict | None = None,
    ) -> set[tuple[int, int]]:
        """Geom pairs (sorted ids) where a robot penetrates something that is not itself deeper than
        ``tol`` metres (a negative ``tol`` also returns pairs that merely touch or nearly touch).

        attached: [(site id, free-joint qpos address, (4, 4) site-to-object transform)] objects carried
        by grippers; ``owner`` then assigns their geoms to the carrying robot, and ``shared`` ({geom:
        frozenset of arms}) names the other robots that hold the same object.
        """
        mj, data = self.mujoco, self.data
        data.qpos[:] = qpos
        mj.mj_kinematics(self.model, data)
        if attached:
            for site, adr, site_to_object in attached:
                T = np.eye(4)
                T[:3, :3] = data.site_xmat[site].reshape(3, 3)
                T[:3, 3] = data.site_xpos[site]
                pose = T @ site_to_object
                data.qpos[adr : adr + 3] = pose[:3, 3]
                quat = np.empty(4)
                mj.mju_mat2Quat(quat, pose[:3, :3].ravel())
                data.qpos[adr + 3 : adr + 7] = quat
            mj.mj_kinematics(self.model, data)
        mj.mj_collision(self.model, data)
        self.checks += 1
        owner = self.owner if owner is None else owner
        pairs = set()
        for i in range(data.ncon):
            c = data.contact[i]
            if c.dist > -tol:
                continue
            a, b = owner[c.geom1], owner[c.geom2]
            if (a >= 0 or b >= 0) and a != b:
                if shared and (b in shared.get(c.geom1, ()) or a in shared.get(c.geom2, ())):
                    continue
                pairs.add((min(c.geom1, c.geom2), max(c.geom1, c.geom2)))
        return pairs

    def held_objects(
        self, qpos: np.ndarray, finger_geoms: dict[int, tuple[set, set]], sites: dict[int, int]
    ) -> tuple[list, np.ndarray, dict]:
        """Objects pinched between both finger pads of an arm: (attachments, owner array, {geom:
        frozenset of every arm holding it} for objects held by more than one arm).

        finger_geoms: {arm: (left pad geom ids, right pad geom ids)}; sites: {arm: grasp site id}.
        """
        mj, model, data = self.mujoco, self.model, self.data
        data.qpos[:] = qpos
        mj.mj_kinematics(model, data)
        mj.mj_collision(model, data)
        touching: dict[tuple[int, int], set] = {}
        for i in range(data.ncon):
            c = data.contact[i]
            if c.dist > 0.002:
                continue
            for pad, other in ((c.geom1, c.geom2), (c.geom2, c.geom1)):
                for arm, (left, right) in finger_geoms.items():
                    side = "left" if pad in left else "right" if pad in right else None
                    if side:
                        body = model.body_rootid[model.geom_bodyid[other]]
                        touching.setdefault((arm, body), set()).add(side)
        holders: dict[int, list[int]] = {}
        for (arm, body), sides in sorted(touching.items()):
            joint = model.body_jntadr[body]
            if sides == {"left", "right"} and joint >= 0 and model.jnt_type[joint] == mj.mjtJoint.mjJNT_FREE:
                holders.setdefault(body, []).append(arm)
        attached, owner, shared = [], self.owner.copy(), {}
        for body, arms in holders.items():
            arm = arms[0]  # the object's pose follows this arm's grasp site
            joint = model.body_jntadr[body]
            site_pose = np.eye(4)
            site_pose[:3, :3] = data.site_xmat[sites[arm]].reshape(3, 3)
            site_pose[:3, 3] = data.site_xpos[sites[arm]]
            object_pose = np.eye(4)
            object_pose[:3, :3] = data.xmat[body].reshape(3, 3)
            object_pose[:3, 3] = data.xpos[body]
            attached.append((sites[arm], int(model.jnt_qposadr[joint]), np.linalg.inv(site_pose) @ object_pose))
            geoms = np.isin(model.body_rootid[model.geom_bodyid], [body])
            owner[geoms] = arm
            if len(arms) > 1:
                shared.update({int(g): frozenset(arms) for g in np.flatnonzero(geoms)})
        return attached, owner, shared

    def describe_all(self, pairs: set, limit: int = 3, owner: np.ndarray | None = None) -> str:
        """Up to ``limit`` colliding pairs, named; pairs with a carried object first (``owner`` gives
        carried objects' geoms to their robot), the rest in a stable order."""
        carried = set() if owner is None else set(np.flatnonzero(owner != self.owner))
        ordered = sorted(pairs, key=lambda p: (not (p[0] in carried or p[1] in carried), p))
        names = [self.describe(p) for p in ordered[:limit]]
        more = len(pairs) - limit
        return "; ".join(names) + (f" (+{more} more)" if more > 0 else "")

    def describe(self, pair: tuple[int, int]) -> str:
        names = [self.mujoco.mj_id2name(self.model, self.mujoco.mjtObj.mjOBJ_GEOM, g) or f"geom{g}" for g in pair]
        bodies = [
            self.mujoco.mj_id2name(self.model, self.mujoco.mjtObj.mjOBJ_BODY, self.model.geom_bodyid[g]) for g in pair
        ]
        return " x ".join(f"{n} ({b})" for n, b in zip(names, bodies))


class JointPlanner:
    """Plans joint-space motions for one or both arms of a scene."""

    def __init__(
        self,
        checker: CollisionChecker,
        qpos_indexes: dict[int, list[int]],
        limits: dict[int, np.ndarray],
        sites: dict[int, int],
        finger_geoms: dict[int, tuple[set, set]],
    ):
        self.checker = checker
        self.qpos_indexes = qpos_indexes
        self.limits = limits
        self.sites = sites
        self.finger_geoms = finger_geoms

    def tcp_positions(self, qpos: np.ndarray, joints: dict[int, np.ndarray]) -> dict[int, np.ndarray]:
        """Grasp-site positions (sim world frame) of the given arms at ``joints`` (others at ``qpos``)."""
        full = qpos.copy()
        for arm, q in joints.items():
            full[self.qpos_indexes[arm]] = q
        data = self.checker.data
        data.qpos[:] = full
        self.checker.mujoco.mj_kinematics(self.checker.model, data)
        return {arm: np.array(data.site_xpos[self.sites[arm]]) for arm in joints}

    def _full(self, base: np.ndarray, arms: list[int], q: np.ndarray) -> np.ndarray:
        full = base.copy()
        for k, arm in enumerate(arms):
            full[self.qpos_indexes[arm]] = q[7 * k : 7 * k + 7]
        return full

    def plan(self, qpos: np.ndarray, goals: dict[int, np.ndarray], planning_time: float = PLANNING_TIME) -> MotionPlan:
        """Plan from the full configuration ``qpos`` to ``goals`` ({arm: (7,) joints})."""
        started = time.perf_counter()
        checker = self.checker
        checker.checks = 0
        arms = sorted(goals)
        start = np.concatenate([qpos[self.qpos_indexes[a]] for a in arms])
        goal = np.concatenate([np.asarray(goals[a], dtype=np.float64) for a in arms])
        attached, owner, shared = checker.held_objects(qpos, self.finger_geoms, self.sites)
        # Everything touching at the start stays allowed (a held object still resting on the table).
        allowed = checker.colliding_pairs(qpos, tol=-0.002, attached=attached, owner=owner, shared=shared)

        def blocking(q: np.ndarray) -> set:
            return (
                checker.colliding_pairs(self._full(qpos, arms, q), attached=attached, owner=owner, shared=shared)
                - allowed
            )

        def finish(plan: MotionPlan) -> MotionPlan:
            plan.planning_ms = round((time.perf_counter() - started) * 1000.0, 2)
            plan.checks = checker.checks
            return plan

        hit = blocking(goal)
        if hit:
            return finish(
                MotionPlan(
                    False,
                    "none",
                    collision=checker.describe_all(hit, owner=owner),
                    message="the target configuration is in collision",
                )
            )
        steps = max(1, int(np.ceil(np.abs(goal - start).max() / CHECK_RESOLUTION)))
        first_hit = None
        for i in range(1, steps):
            hit = blocking(start + (goal - start) * (i / steps))
            if hit:
                first_hit = hit
                break
        if first_hit is None:
            return finish(MotionPlan(True, "straight", [self._split(arms, goal)]))
        path = self._rrt_connect(arms, start, goal, blocking, planning_time)
        if path is None:
            return finish(
                MotionPlan(
                    False,
                    "none",
                    collision=checker.describe_all(first_hit, owner=owner),
                    message=f"no collision-free path found in {planning_time:g} s",
                )
            )
        return finish(
            MotionPlan(
                True,
                "rrt_connect",
                [self._split(arms, q) for q in path[1:]],
                collision=checker.describe_all(first_hit, owner=owner),
            )
        )

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
