"""Motion and gripper primitives: IK, collision-checked joint moves, poses, per-arm variants.

Frames and units as in worker.robot.api: world = robot0 base frame, metres, radians, wxyz.
"""

from __future__ import annotations

import numpy as np

from . import geometry as geo
from . import status as st
from .media import draw_path
from .motion import MotionPlan
from .primitive import primitive
from .tracer import CallContext

#: robosuite's grip site closes the fingers along its x axis (measured); the published API follows the
#: panda_hand convention with the fingers along y. So pose_site = pose_api @ API_TO_SITE, a +90 degree
#: turn about the approach axis z, and pose_api = pose_site @ SITE_TO_API.
API_TO_SITE = np.array([[0.0, -1.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]])
SITE_TO_API = API_TO_SITE.T

#: A closed Panda gripper with nothing between the fingers measures about 1-2 mm (measured).
EMPTY_GRIPPER_WIDTH = 0.005
#: Joint error (rad) under which a joint move counts as reached.
REACHED_TOL = 0.01
#: Waypoints of a planned path are passed within this joint error (rad) before moving on.
WAYPOINT_TOL = 0.03


class MotionPrimitives:
    """Mixed into RobotAPI; uses its adapter, ik, planners, frame conversions and observations."""

    # -- helpers -----------------------------------------------------------------------------------
    def _arm(self, arm: int) -> int:
        if arm >= self.spec.arms:
            raise ValueError(f"this task has {self.spec.arms} arm(s); arm{arm} does not exist")
        return arm

    def _solve_ik(self, ctx: CallContext, arm: int, position, quaternion_wxyz, artifact: str = "ik"):
        arm = self._arm(arm)
        pos = geo.as_array(position, (3,), "position")
        quat = geo.as_array(quaternion_wxyz, (4,), "quaternion_wxyz")
        target = self._to_sim(geo.make_transform(pos, quat)) @ API_TO_SITE
        robot = self.adapter.robots[arm]
        result = self.ik.solve(
            self.adapter.sim.model._model,
            self.adapter.sim.data.qpos,
            self.adapter.grip_site(arm),
            robot._ref_joint_pos_indexes,
            target,
            home=np.asarray(robot.init_qpos, dtype=np.float64),
        )
        ctx.artifact(
            artifact,
            {
                "arm": arm,
                "iterations": result.iterations,
                "position_error_m": round(result.position_error, 5),
                "orientation_error_rad": round(result.orientation_error, 5),
            },
        )
        if not result.ok:
            ctx.set_status(
                st.IK_FAILED,
                f"no IK solution for arm{arm} at position {np.round(pos, 3).tolist()}: best residual "
                f"{result.position_error * 1000:.1f} mm / {result.orientation_error:.3f} rad "
                "(out of reach, or an orientation the wrist cannot take)",
            )
        return result.joints

    def _check_joints(self, arm: int, joints, name: str = "joints") -> np.ndarray:
        if joints is None:
            raise ValueError(f"{name} is None: the solve_ik call before this one found no solution (IK_FAILED)")
        q = geo.as_array(joints, (7,), name)
        limits = self.adapter.joint_limits(arm)
        for i in range(7):
            if not limits[i, 0] - 1e-6 <= q[i] <= limits[i, 1] + 1e-6:
                raise ValueError(
                    f"{name}[{i}] = {q[i]:.3f} rad is outside its limits [{limits[i, 0]:.3f}, {limits[i, 1]:.3f}]"
                )
        return q

    def _move(
        self,
        ctx: CallContext,
        goals: dict[int, np.ndarray],
        target_positions: dict[int, np.ndarray] | None = None,
        collision_check: bool = True,
    ) -> str:
        """Plan (straight, or RRTConnect around collisions) and execute; returns the move status.
        Without ``collision_check`` the straight joint path is followed as is (deliberate contact)."""
        adapter = self.adapter
        planner = self.planners.get(adapter)
        contacts_before = adapter.robot_contacts(list(goals))
        start_qpos = np.array(adapter.sim.data.qpos)
        if collision_check:
            plan = planner.plan(np.array(adapter.sim.data.qpos), goals)
        else:
            plan = MotionPlan(True, "straight_unchecked", [goals])
        ctx.artifact(
            "plan",
            {
                "method": plan.method,
                "planning_ms": plan.planning_ms,
                "collision_checks": plan.checks,
                "waypoints": [{f"arm{a}": np.round(q, 4).tolist() for a, q in wp.items()} for wp in plan.waypoints],
                **({"blocked_by": plan.collision} if plan.collision else {}),
            },
        )
        if not plan.ok:
            ctx.set_status(st.PLANNING_ERROR, f"{plan.message}: {plan.collision}" if plan.collision else plan.message)
            self._motion_overlay(ctx, start_qpos, goals, plan, target_positions, "no path")
            return st.PLANNING_ERROR
        steps = 0
        for i, waypoint in enumerate(plan.waypoints):
            last = i == len(plan.waypoints) - 1
            distance = max(float(np.abs(q - adapter.joint_positions(a)).max()) for a, q in waypoint.items())
            steps += adapter.drive_joints(
                waypoint,
                max_steps=int(distance / adapter.JOINT_STEP) + (60 if last else 20),
                tol=2e-3 if last else WAYPOINT_TOL,
                settle=last,
            )
        error = max(float(np.abs(goals[a] - adapter.joint_positions(a)).max()) for a in goals)
        ctx.artifact("motion", {"control_steps": steps, "joint_error_rad": round(error, 5)})
        if plan.method == "rrt_connect":
            self._motion_overlay(ctx, start_qpos, goals, plan, target_positions, "planned path")
        if error <= REACHED_TOL:
            return st.REACHED
        contacts = adapter.robot_contacts(list(goals)) - contacts_before
        if contacts:
            ctx.set_status(
                st.COLLISION,
                f"the arm stopped {error:.3f} rad short of the target, in contact with {', '.join(sorted(contacts))}",
            )
            return st.COLLISION
        ctx.set_status(st.NOT_REACHED, f"the arm stopped {error:.3f} rad short of the target")
        return st.NOT_REACHED

    def _motion_overlay(self, ctx: CallContext, start_qpos, goals, plan, target_positions, title: str) -> None:
        """The planned grasp-point path (from where the move started) and the target, drawn on the
        last image of the keyframe camera."""
        frame = self._latest_frame(self.spec.keyframe_camera)
        if frame is None:
            return
        planner = self.planners.get(self.adapter)
        start = {arm: start_qpos[planner.qpos_indexes[arm]] for arm in goals}
        tcp = [planner.tcp_positions(start_qpos, wp) for wp in [start] + (plan.waypoints or [goals])]
        camera_pose = frame.pose  # sim world frame, like the positions below
        points = {arm: np.array([p[arm] for p in tcp]) for arm in goals}
        targets = {
            arm: (self._to_sim(geo.make_transform(t))[:3, 3] if t is not None else None)
            for arm, t in (target_positions or {}).items()
        }
        ctx.keyframe(
            lambda: draw_path(frame.rgb, frame.intrinsics, camera_pose, points, targets, title),
            "overlay",
            frame.camera,
            "path",
        )

    def _move_to_pose(self, ctx: CallContext, arm: int, position, quaternion_wxyz, collision_check: bool) -> str:
        joints = self._solve_ik(ctx, arm, position, quaternion_wxyz)
        if joints is None:
            return st.IK_FAILED
        return self._move(ctx, {arm: joints}, {arm: np.asarray(position, dtype=np.float64)}, bool(collision_check))

    def _gripper(self, ctx: CallContext, arm: int, close: bool) -> float:
        arm = self._arm(arm)
        width = self.adapter.actuate_gripper(arm, close)
        ctx.artifact("gripper", {"arm": arm, "width_m": round(width, 5), "closed": close})
        if close and width < EMPTY_GRIPPER_WIDTH:
            ctx.set_status(st.GRASP_EMPTY, f"the gripper closed to {width * 1000:.1f} mm: nothing between the fingers")
        return width

    # -- IK ----------------------------------------------------------------------------------------
    @primitive()
    def solve_ik(self, ctx: CallContext, position, quaternion_wxyz):
        """Inverse kinematics for the grasp point of arm 0.

        Args:
            position: (3,) target position of the grasp point in world frame, metres.
            quaternion_wxyz: (4,) target orientation [w, x, y, z] in world frame (see module notes;
                [0, 1, 0, 0] points the gripper straight down).

        Returns:
            (7,) float64 joint angles in radians reaching the pose within 1 mm / 0.01 rad, starting
            from the current configuration; or None when no solution exists (status IK_FAILED).

        Raises:
            ValueError: wrong shapes or non-finite values.
        """
        return self._solve_ik(ctx, 0, position, quaternion_wxyz)

    @primitive()
    def solve_ik_arm0(self, ctx: CallContext, position, quaternion_wxyz):
        """solve_ik for arm 0 (robot0). Same arguments, frames and return value as solve_ik."""
        return self._solve_ik(ctx, 0, position, quaternion_wxyz)

    @primitive(min_arms=2)
    def solve_ik_arm1(self, ctx: CallContext, position, quaternion_wxyz):
        """solve_ik for arm 1 (robot1). The target is given in the same world frame (robot0's base);
        returns robot1's (7,) joint angles or None (IK_FAILED)."""
        return self._solve_ik(ctx, 1, position, quaternion_wxyz)

    # -- joint moves -------------------------------------------------------------------------------
    @primitive()
    def move_to_joints(self, ctx: CallContext, joints, collision_check: bool = True) -> str:
        """Move arm 0 to a joint configuration (blocking), holding the gripper's current command.

        The straight joint-space path is checked for collisions against the scene first; when it
        collides, a collision-free path is planned (RRTConnect) and followed. Speed up to 1 rad/s.

        Args:
            joints: (7,) joint angles in radians, within the arm's joint limits.
            collision_check: False skips the check and the planning and follows the straight path:
                for deliberate contact (pushing a drawer shut, wiping), which a static collision check
                would refuse. Contact that stops the arm is still reported.

        Returns:
            "REACHED"; "PLANNING_ERROR" (the target is in collision or no path was found; the arm
            does not move); "COLLISION" (stopped by new contact on the way) or "NOT_REACHED".

        Raises:
            ValueError: wrong shape, None (from a failed solve_ik) or a joint outside its limits.
        """
        return self._move(ctx, {0: self._check_joints(0, joints)}, collision_check=bool(collision_check))

    @primitive()
    def move_to_joints_arm0(self, ctx: CallContext, joints, collision_check: bool = True) -> str:
        """move_to_joints for arm 0 (robot0)."""
        return self._move(ctx, {0: self._check_joints(0, joints)}, collision_check=bool(collision_check))

    @primitive(min_arms=2)
    def move_to_joints_arm1(self, ctx: CallContext, joints, collision_check: bool = True) -> str:
        """move_to_joints for arm 1 (robot1); arm 0 holds its position."""
        return self._move(ctx, {1: self._check_joints(1, joints)}, collision_check=bool(collision_check))

    @primitive(min_arms=2)
    def move_to_joints_both(self, ctx: CallContext, joints0, joints1, collision_check: bool = True) -> str:
        """Move both arms at once (blocking), each along its straight joint-space line, planning around
        collisions (including between the arms) in the 14-D joint space when needed.

        Args:
            joints0: (7,) arm 0 joint angles, radians. joints1: (7,) arm 1 joint angles, radians.

        Returns:
            Same statuses as move_to_joints.
        """
        return self._move(
            ctx,
            {0: self._check_joints(0, joints0, "joints0"), 1: self._check_joints(1, joints1, "joints1")},
            collision_check=bool(collision_check),
        )

    # -- pose moves --------------------------------------------------------------------------------
    @primitive()
    def move_to_pose(self, ctx: CallContext, position, quaternion_wxyz, collision_check: bool = True) -> str:
        """Move arm 0's grasp point to a pose: solve_ik, then a collision-checked move_to_joints.

        Args:
            position: (3,) world-frame position in metres. quaternion_wxyz: (4,) [w, x, y, z].
            collision_check: see move_to_joints (False for deliberate contact such as pushing).

        Returns:
            "REACHED", "IK_FAILED" (no joint solution; the arm does not move), "PLANNING_ERROR",
            "COLLISION" or "NOT_REACHED" (see move_to_joints).
        """
        return self._move_to_pose(ctx, 0, position, quaternion_wxyz, collision_check)

    @primitive()
    def move_to_pose_arm0(self, ctx: CallContext, position, quaternion_wxyz, collision_check: bool = True) -> str:
        """move_to_pose for arm 0 (robot0)."""
        return self._move_to_pose(ctx, 0, position, quaternion_wxyz, collision_check)

    @primitive(min_arms=2)
    def move_to_pose_arm1(self, ctx: CallContext, position, quaternion_wxyz, collision_check: bool = True) -> str:
        """move_to_pose for arm 1 (robot1); the target is in the world frame (robot0's base)."""
        return self._move_to_pose(ctx, 1, position, quaternion_wxyz, collision_check)

    @primitive(min_arms=2)
    def move_to_pose_both(
        self, ctx: CallContext, position0, quaternion0_wxyz, position1, quaternion1_wxyz, collision_check: bool = True
    ) -> str:
        """Move both arms' grasp points to poses at once (blocking): both IK solutions first, then one
        move_to_joints_both. For carrying an object held by both grippers, which moving one arm at a
        time would tilt or pull apart.

        Args:
            position0, position1: (3,) world-frame positions in metres (robot0's base frame for both arms).
            quaternion0_wxyz, quaternion1_wxyz: (4,) orientations [w, x, y, z] in the world frame.
            collision_check: see move_to_joints.

        Returns:
            "REACHED", "IK_FAILED" (either arm has no solution; neither moves; the trace names the arm),
            "PLANNING_ERROR", "COLLISION" or "NOT_REACHED" (see move_to_joints).
        """
        joints0 = self._solve_ik(ctx, 0, position0, quaternion0_wxyz, "ik_arm0")
        if joints0 is None:
            return st.IK_FAILED
        joints1 = self._solve_ik(ctx, 1, position1, quaternion1_wxyz, "ik_arm1")
        if joints1 is None:
            return st.IK_FAILED
        targets = {0: np.asarray(position0, dtype=np.float64), 1: np.asarray(position1, dtype=np.float64)}
        return self._move(ctx, {0: joints0, 1: joints1}, targets, bool(collision_check))

    # -- grippers ----------------------------------------------------------------------------------
    @primitive(after_frame=True)
    def open_gripper(self, ctx: CallContext) -> float:
        """Open arm 0's gripper fully (blocking). Returns the finger opening in metres (Panda: about 0.08).

        Raises:
            ValueError: the arm has no fingers (e.g. the Wipe task's wiping tool).
        """
        return self._gripper(ctx, 0, close=False)

    @primitive(after_frame=True)
    def close_gripper(self, ctx: CallContext) -> float:
        """Close arm 0's gripper until the fingers stop (blocking).

        Returns:
            Finger opening in metres: about the object's width when something is held, under 0.005
            when the fingers closed on nothing (the trace marks that GRASP_EMPTY).

        Raises:
            ValueError: the arm has no fingers.
        """
        return self._gripper(ctx, 0, close=True)

    @primitive(after_frame=True)
    def open_gripper_arm0(self, ctx: CallContext) -> float:
        """open_gripper for arm 0 (robot0)."""
        return self._gripper(ctx, 0, close=False)

    @primitive(after_frame=True)
    def close_gripper_arm0(self, ctx: CallContext) -> float:
        """close_gripper for arm 0 (robot0)."""
        return self._gripper(ctx, 0, close=True)

    @primitive(after_frame=True, min_arms=2)
    def open_gripper_arm1(self, ctx: CallContext) -> float:
        """open_gripper for arm 1 (robot1)."""
        return self._gripper(ctx, 1, close=False)

    @primitive(after_frame=True, min_arms=2)
    def close_gripper_arm1(self, ctx: CallContext) -> float:
        """close_gripper for arm 1 (robot1)."""
        return self._gripper(ctx, 1, close=True)
